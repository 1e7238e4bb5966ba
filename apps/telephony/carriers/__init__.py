"""Carrier vocabulary mapped to ours."""
from __future__ import annotations

from apps.calls.models import Call

_STATUS = {
    "queued": Call.Status.QUEUED, "initiated": Call.Status.QUEUED, "ringing": Call.Status.RINGING,
    "in-progress": Call.Status.IN_PROGRESS, "answered": Call.Status.IN_PROGRESS, "completed": Call.Status.COMPLETED,
    "busy": Call.Status.BUSY, "no-answer": Call.Status.NO_ANSWER, "failed": Call.Status.FAILED,
    "canceled": Call.Status.CANCELED,
}


def status_from_carrier(carrier_status: str) -> str | None:
    return _STATUS.get((carrier_status or "").lower())


def carrier_module(carrier: str):
    """The module that owns a carrier's wire details (signatures, answer markup, REST)."""
    import importlib

    return importlib.import_module(f"apps.telephony.carriers.{carrier}")
