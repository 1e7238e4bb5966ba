"""Reads for the portal dashboard."""
from __future__ import annotations

from apps.calls.selectors import call_dashboard_figures


def dashboard_summary(*, client) -> dict:
    return {"client": client, **call_dashboard_figures()}
