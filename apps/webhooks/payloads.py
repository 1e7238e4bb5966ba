"""The `data` object of each webhook event (documented in README.md, "Webhooks out").
Reads only."""
from __future__ import annotations


def _iso(value):
    return value.isoformat() if value else None


def call_data(*, client, call, qa=None, with_record: bool = False) -> dict:
    """A call as webhooks describe it. `with_record`: also the transcript, a signed
    expiring recording URL, and what post-call QA found (`qa`: a QAResult or None)."""
    data = {
        "call_id": str(call.pk),
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "agent": {"id": call.agent_id, "name": call.agent.name if call.agent_id else None,
                  "version": call.agent_version.number if call.agent_version_id else None},
        "status": call.status,
        "created_at": _iso(call.created_at),
        "answered_at": _iso(call.answered_at),
    }
    if not with_record:
        return data
    from apps.webhooks.recording_links import recording_url_sign

    recording_url, expires_at = (None, None)
    if call.recording:
        recording_url, expires_at = recording_url_sign(client=client, call_id=call.pk)
    data.update({
        "ended_at": _iso(call.ended_at),
        "duration_secs": str(call.duration_secs) if call.duration_secs is not None else None,
        "end_reason": call.end_reason,
        "transferred_to": call.transferred_to or None,
        "transcript": [{"index": turn.index, "caller": turn.user_text, "agent": turn.bot_text}
                       for turn in call.turns.all()],
        "recording_url": recording_url,
        "recording_url_expires_at": _iso(expires_at),
        "qa": qa_summary(qa),
        "extraction": qa.extraction if qa is not None and qa.extraction_valid else None,
        "disposition": (qa.disposition or None) if qa is not None else None,
    })
    return data


def qa_summary(qa) -> dict | None:
    if qa is None:
        return None
    return {"status": qa.status, "score": qa.score, "sentiment": qa.sentiment, "tags": qa.tags,
            "summary": qa.summary, "flag_reason": qa.flag_reason or None}


def qa_data(*, qa) -> dict:
    return {
        "call_id": str(qa.call_id),
        "run": qa.run_number,
        "status": qa.status,
        "score": qa.score,
        "score_reasons": qa.score_reasons,
        "sentiment": qa.sentiment,
        "summary": qa.summary,
        "tags": qa.tags,
        "confusion_moments": qa.confusion_moments,
        "dead_air": qa.dead_air,
        "instruction_adherence": qa.instruction_adherence,
        "tools": qa.tools,
        "disposition": qa.disposition or None,
        "extraction": qa.extraction if qa.extraction_valid else None,
        "extraction_valid": qa.extraction_valid,
        "flag_reason": qa.flag_reason or None,
        "completed_at": _iso(qa.updated_at),
    }


def invoice_data(*, invoice) -> dict:
    return {
        "invoice_id": invoice.pk,
        "number": invoice.number,
        "kind": invoice.kind,
        "status": invoice.status,
        "period": f"{invoice.period_start:%Y-%m}",
        "currency": invoice.currency,
        "subtotal": str(invoice.subtotal),
        "tax": str(invoice.tax),
        "total": str(invoice.total),
        "finalised_at": _iso(invoice.finalised_at),
        "due_on": _iso(invoice.due_on),
    }
