"""Carriers: one module each (`<name>.py`, exposing `CARRIER`), registered in
settings.TELEPHONY_CARRIER_MODULES; see `registry.py`."""
from __future__ import annotations

# Twilio's call statuses, which Telnyx TeXML and Plivo reuse; values are apps.calls Call.Status.
COMMON_STATUSES = {
    "queued": "queued", "initiated": "queued", "ringing": "ringing", "in-progress": "in_progress",
    "answered": "in_progress", "completed": "completed", "busy": "busy", "no-answer": "no_answer",
    "failed": "failed", "canceled": "canceled",
}


def status_from_carrier(carrier_status: str, *, carrier: str = "twilio") -> str | None:
    """A carrier's call status in our vocabulary (None: not one we track)."""
    from apps.telephony.carriers.registry import status_from_carrier as lookup

    return lookup(carrier=carrier, carrier_status=carrier_status)
