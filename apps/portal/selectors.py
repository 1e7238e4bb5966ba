"""Reads for the portal dashboard. Each area adds its figures here as it lands."""
from __future__ import annotations

from django.apps import apps


def dashboard_summary(*, client) -> dict:
    summary = {"client": client}
    if apps.is_installed("apps.calls"):
        try:
            from apps.calls.selectors import call_dashboard_figures
        except ImportError:
            return summary
        summary.update(call_dashboard_figures())
    return summary
