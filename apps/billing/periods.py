"""Billing periods are calendar months in the client's own timezone: March for a
client in America/New_York runs from 1 March 00:00 EST to 1 April 00:00 EDT,
i.e. [05:00Z, 04:00Z). Pure functions, no database."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")


def parse_period(text: str) -> date:
    """'2025-03' -> date(2025, 3, 1); anything else raises ValueError saying what to type."""
    match = PERIOD_RE.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"period must look like YYYY-MM (e.g. 2025-03), got {text!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def format_period(period_start: date) -> str:
    return f"{period_start.year:04d}-{period_start.month:02d}"


MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


def format_period_long(period_start: date) -> str:
    """date(2026, 11, 1) -> 'November 2026' (invoice lines; not locale-dependent)."""
    return f"{MONTH_NAMES[period_start.month - 1]} {period_start.year}"


def next_period(period_start: date) -> date:
    return date(period_start.year + (period_start.month == 12), period_start.month % 12 + 1, 1)


def previous_period(period_start: date) -> date:
    if period_start.month == 1:
        return date(period_start.year - 1, 12, 1)
    return date(period_start.year, period_start.month - 1, 1)


def _zone(tz: tzinfo | str) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def period_bounds(period_start: date, tz: tzinfo | str) -> tuple[datetime, datetime]:
    """[start, end) of the month in UTC: local midnight of the 1st to local midnight of the next 1st."""
    zone = _zone(tz)
    start = datetime.combine(period_start.replace(day=1), time(0), tzinfo=zone)
    end = datetime.combine(next_period(period_start), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def period_containing(moment: datetime, tz: tzinfo | str) -> date:
    """The first day of the local month that `moment` falls in."""
    local = moment.astimezone(_zone(tz))
    return date(local.year, local.month, 1)


def period_last_day(period_start: date) -> date:
    return next_period(period_start) - timedelta(days=1)
