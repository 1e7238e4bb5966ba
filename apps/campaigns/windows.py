"""Calling windows: local times per weekday in a time zone (pure, no database).

`windows` is {"mon": [["09:00", "17:00"]], "sat": [["10:00", "13:00"]], ...}; a weekday that is
missing has no window; an empty dict means any time. Each moment is converted to the zone's
local time (zoneinfo), so a window keeps its local hours across a daylight-saving change."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apps.core.errors import ApplicationError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")


def zone_get(name: str) -> ZoneInfo:
    """The ZoneInfo called `name`; ApplicationError naming it when there is none."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ApplicationError(f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin.",
                               details={"timezone": name}) from None


def _clock(text) -> time | None:
    """"09:30" -> time(9, 30); "24:00" -> None (the end of the day)."""
    if not isinstance(text, str) or not _CLOCK.fullmatch(text):
        raise ApplicationError(f"Window times must be HH:MM (00:00-24:00), not {text!r}.",
                               details={"windows": text})
    return None if text == "24:00" else time(int(text[:2]), int(text[3:]))


def windows_clean(windows) -> dict:
    """Validated, normalised windows ({} = any time); ApplicationError naming what is wrong."""
    if windows in (None, ""):
        return {}
    if not isinstance(windows, dict):
        raise ApplicationError("Windows must be an object of weekday -> [[start, end], ...].",
                               details={"windows": windows})
    cleaned = {}
    for day, spans in windows.items():
        if day not in WEEKDAYS:
            raise ApplicationError(f"Unknown weekday {day!r}: use {', '.join(WEEKDAYS)}.", details={"windows": day})
        if not isinstance(spans, list):
            raise ApplicationError(f"{day}: give a list of [start, end] pairs.", details={"windows": day})
        day_spans = []
        for span in spans:
            if not isinstance(span, list | tuple) or len(span) != 2:
                raise ApplicationError(f"{day}: each window is [start, end], e.g. [\"09:00\", \"17:00\"].",
                                       details={"windows": day})
            start, end = _clock(span[0]), _clock(span[1])
            if start is None or (end is not None and end <= start):
                raise ApplicationError(f"{day}: a window must end after it starts ({span[0]}-{span[1]}).",
                                       details={"windows": day})
            day_spans.append([span[0], span[1]])
        if day_spans:
            cleaned[day] = sorted(day_spans)
    return cleaned


def _spans(windows: dict, day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The windows of one local calendar day as aware datetimes (end exclusive)."""
    spans = []
    for start_text, end_text in windows.get(WEEKDAYS[day.weekday()], ()):
        start = datetime.combine(day, _clock(start_text), tzinfo=zone)
        end_clock = _clock(end_text)
        end = (datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone) if end_clock is None
               else datetime.combine(day, end_clock, tzinfo=zone))
        spans.append((start, end))
    return spans


def _utc(moment: datetime) -> datetime:
    # Through UTC: a local time that does not exist (spring forward) lands just after the gap.
    return moment.astimezone(ZoneInfo("UTC"))


def window_open(*, moment: datetime, zone: ZoneInfo, windows: dict) -> bool:
    """Is `moment` (aware) inside one of the windows, read in `zone`'s local time?"""
    if not windows:
        return True
    local = moment.astimezone(zone)
    return any(_utc(start) <= moment < _utc(end) for start, end in _spans(windows, local.date(), zone))


def window_next_open(*, moment: datetime, zone: ZoneInfo, windows: dict) -> datetime | None:
    """`moment` when a window is open, else when the next one opens (aware, UTC); None when
    the windows never open (no weekday has one)."""
    if window_open(moment=moment, zone=zone, windows=windows):
        return moment
    local_day = moment.astimezone(zone).date()
    for offset in range(0, 8):
        for start, _end in _spans(windows, local_day + timedelta(days=offset), zone):
            if _utc(start) > moment:
                return _utc(start)
    return None
