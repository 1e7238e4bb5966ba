"""The platform's events, each built from the record and emitted once (a dedupe key
per subject), so a task that runs twice sends nothing twice."""
from __future__ import annotations

from django_tenants.utils import tenant_context

from apps.webhooks import events, payloads
from apps.webhooks.models import WebhookEvent
from apps.webhooks.services.deliveries import webhook_event_emit


def webhook_call_started_emit(*, client, call_id) -> WebhookEvent | None:
    from apps.calls.models import Call

    call = Call.objects.select_related("agent", "agent_version").filter(pk=call_id).first()
    if call is None:
        return None
    return webhook_event_emit(event_type=events.CALL_STARTED, data=payloads.call_data(client=client, call=call),
                              dedupe_key=f"{events.CALL_STARTED}:{call.pk}")


def webhook_call_ended_emit(*, client, call_id) -> WebhookEvent | None:
    """`call.ended` with the transcript, a signed recording URL and what QA found (if it
    ran). Sent by quality's post-call task once QA is done or skipped."""
    from apps.calls.models import Call
    from apps.quality.selectors import qa_result_for_call

    call = Call.objects.select_related("agent", "agent_version").filter(pk=call_id).first()
    if call is None or not call.is_ended:
        return None
    data = payloads.call_data(client=client, call=call, qa=qa_result_for_call(call_id=call.pk), with_record=True)
    return webhook_event_emit(event_type=events.CALL_ENDED, data=data, dedupe_key=f"{events.CALL_ENDED}:{call.pk}")


def webhook_qa_completed_emit(*, qa) -> WebhookEvent:
    """Once per QA run (a re-run is a new run, a new event)."""
    return webhook_event_emit(event_type=events.QA_COMPLETED, data=payloads.qa_data(qa=qa),
                              dedupe_key=f"{events.QA_COMPLETED}:{qa.call_id}:{qa.run_number}")


def webhook_invoice_finalized_emit(*, invoice_id: int) -> WebhookEvent | None:
    """From the public schema: the event goes to the invoice's client."""
    from apps.billing.models import Invoice

    invoice = Invoice.objects.select_related("client").filter(pk=invoice_id).first()
    if invoice is None or invoice.is_draft:
        return None
    with tenant_context(invoice.client):
        return webhook_event_emit(event_type=events.INVOICE_FINALIZED, data=payloads.invoice_data(invoice=invoice),
                                  dedupe_key=f"{events.INVOICE_FINALIZED}:{invoice.pk}")


def webhook_cap_reached_emit(*, cap_alert_id: int) -> WebhookEvent | None:
    """From the public schema (billing's CapAlert row: one per client, month and level)."""
    from apps.billing.models import CapAlert

    alert = CapAlert.objects.select_related("client").filter(pk=cap_alert_id).first()
    if alert is None:
        return None
    data = {"level": alert.level, "period": f"{alert.period_start:%Y-%m}",
            "reasons": [reason for reason in alert.detail.split("; ") if reason],
            "calls_refused": alert.level == "hard"}
    with tenant_context(alert.client):
        return webhook_event_emit(event_type=events.USAGE_CAP_REACHED, data=data,
                                  dedupe_key=f"{events.USAGE_CAP_REACHED}:{alert.pk}")
