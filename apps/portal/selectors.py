"""Reads for the portal dashboard: the calls' figures and this month's bill, in the client's time zone."""
from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from apps.billing.selectors import month_to_date
from apps.calls.selectors import call_dashboard


def dashboard_default_range(*, client) -> tuple[date, date]:
    """The client's current month so far (local days)."""
    today = timezone.localtime(timezone=client.timezone).date()
    return today.replace(day=1), today


def dashboard_presets(*, client, today: date | None = None) -> list[tuple[str, date, date]]:
    """(label, since, until) of the ranges offered beside the date pickers, in the client's days."""
    today = today or dashboard_default_range(client=client)[1]
    month_start = today.replace(day=1)
    last_month_end = month_start - timedelta(days=1)
    return [("This month", month_start, today), ("Last 7 days", today - timedelta(days=6), today),
            ("Last 30 days", today - timedelta(days=29), today),
            ("Last month", last_month_end.replace(day=1), last_month_end)]


def dashboard_summary(*, client, since: date | None = None, until: date | None = None) -> dict:
    default_since, default_until = dashboard_default_range(client=client)
    since, until = since or default_since, until or default_until
    if until - since > timedelta(days=366):
        since = until - timedelta(days=366)
    figures = call_dashboard(since=since, until=until, tz=str(client.timezone))
    return {
        "client": client,
        "presets": dashboard_presets(client=client),
        "figures": figures,
        "month": month_to_date(client=client),
        "top_end_reasons": figures.outcomes[:5],
        "chart": {
            "days": [day.day.isoformat() for day in figures.days],
            "calls": [day.calls for day in figures.days],
            "minutes": [float(day.minutes) for day in figures.days],
            "avg_ms": [day.avg_voice_to_voice_ms for day in figures.days],
            "p95_ms": [day.p95_voice_to_voice_ms for day in figures.days],
            "outcome_labels": [label for _, label, _ in figures.outcomes],
            "outcome_counts": [count for _, _, count in figures.outcomes],
        },
    }
