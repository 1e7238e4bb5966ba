"""The events a client's webhook endpoints can subscribe to (the catalogue the portal,
the admin and README.md show). Pure: no Django models."""
from __future__ import annotations

CALL_STARTED = "call.started"
CALL_ENDED = "call.ended"
QA_COMPLETED = "qa.completed"
CAMPAIGN_COMPLETED = "campaign.completed"
INVOICE_FINALIZED = "invoice.finalized"
USAGE_CAP_REACHED = "usage.cap_reached"

EVENT_TYPES: dict[str, str] = {
    CALL_STARTED: "A call was answered and its agent is running.",
    CALL_ENDED: "A call ended: transcript, a signed expiring recording URL, extraction and disposition "
                "(after post-call QA, when it runs for the call).",
    QA_COMPLETED: "Post-call QA finished for a call (score, tags, summary, extraction).",
    CAMPAIGN_COMPLETED: "A campaign dialled its last contact (reserved: campaigns will send it).",
    INVOICE_FINALIZED: "An invoice of this client was finalised (number, period, total).",
    USAGE_CAP_REACHED: "This client's usage crossed its soft or hard cap for the month.",
}

EVENT_CHOICES = [(name, name) for name in EVENT_TYPES]
