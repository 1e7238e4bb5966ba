"""The platform's events reach the client's endpoints: call.started from the stream
start, call.ended after the end (through quality's post-call task), invoice.finalized
from billing's finalisation, usage.cap_reached from the cap check — each once."""
from datetime import date
from decimal import Decimal as D

import pytest
from django_tenants.utils import tenant_context

from apps.billing.models import BillingAccount
from apps.billing.services import cap_check_after_usage, invoice_finalize, invoice_generate, usage_ingest
from apps.billing.tests.conftest import at, default_card, event  # noqa: F401
from apps.calls.services import call_stream_end, call_stream_start
from apps.calls.stream_tokens import stream_token_mint
from apps.calls.tests.conftest import acme_call  # noqa: F401
from apps.providers.services import _redis
from apps.webhooks.models import WebhookDelivery, WebhookEvent
from apps.webhooks.services import webhook_endpoint_create


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    yield
    for key in _redis().scan_iter("sb:provider-*"):
        _redis().delete(key)


@pytest.fixture
def endpoint(tenant_a):
    with tenant_context(tenant_a):
        # Port 9 (discard): nothing listens; these tests look at what is queued, not at the POST.
        return webhook_endpoint_create(url="http://127.0.0.1:9/hook", events=[
            "call.started", "call.ended", "invoice.finalized", "usage.cap_reached"])


def test_call_started_then_call_ended_once_each(tenant_a, acme_call, endpoint,  # noqa: F811
                                                django_capture_on_commit_callbacks, celery_eager, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1  # the eager delivery to the closed port dead-letters at once
    with tenant_context(tenant_a):
        with django_capture_on_commit_callbacks(execute=True):
            call_stream_start(client=tenant_a, call_id=str(acme_call.pk), stream_id="MZ-1",
                              carrier_call_id=acme_call.carrier_call_id,
                              token=stream_token_mint(schema=tenant_a.schema_name, call_id=str(acme_call.pk)))
        [started] = WebhookEvent.objects.filter(type="call.started")
        assert started.data["call_id"] == str(acme_call.pk) and started.data["status"] == "in_progress"
        assert started.data["from"] == "+15557654321" and started.data["agent"]["name"] == "Reception"
        with django_capture_on_commit_callbacks(execute=True):
            call_stream_end(client=tenant_a, call_id=acme_call.pk, end_reason="caller_hung_up",
                            usage={"call_seconds": 12.5})
            call_stream_end(client=tenant_a, call_id=acme_call.pk, end_reason="caller_hung_up")  # a repeat: no-op
        [ended] = WebhookEvent.objects.filter(type="call.ended")
        assert (ended.data["end_reason"], ended.data["duration_secs"], ended.data["qa"], ended.data["extraction"],
                ended.data["recording_url"]) == ("caller_hung_up", "12.500", None, None, None)
        deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id")
                          .values_list("event__type", "status", "attempts"))
    assert deliveries == [("call.started", "dead", 1), ("call.ended", "dead", 1)]


def test_invoice_finalized_goes_to_the_invoices_client(tenant_a, tenant_b, default_card, endpoint,  # noqa: F811
                                                       django_capture_on_commit_callbacks, celery_eager):
    usage_ingest([event(tenant_a, "c1", "call_seconds_inbound", "600", at(2025, 3, 10))])
    invoice = invoice_generate(client=tenant_a, period_start=date(2025, 3, 1), now=at(2025, 4, 2))
    with django_capture_on_commit_callbacks(execute=True):
        finalised = invoice_finalize(invoice_id=invoice.pk, render_documents=False)
        invoice_finalize(invoice_id=invoice.pk, render_documents=False)  # already final: no second event
    with tenant_context(tenant_a):
        [sent] = WebhookEvent.objects.filter(type="invoice.finalized")
        assert sent.data == {
            "invoice_id": finalised.pk, "number": finalised.number, "kind": "invoice", "status": "finalised",
            "period": "2025-03", "currency": "USD", "subtotal": str(finalised.subtotal), "tax": str(finalised.tax),
            "total": str(finalised.total), "finalised_at": finalised.finalised_at.isoformat(),
            "due_on": finalised.due_on.isoformat()}
        assert WebhookDelivery.objects.filter(event=sent, endpoint=endpoint).count() == 1
    with tenant_context(tenant_b):
        assert not WebhookEvent.objects.exists()


def test_usage_cap_reached_once_per_level(tenant_a, default_card, endpoint, agency_owner,  # noqa: F811
                                          django_capture_on_commit_callbacks, celery_eager):
    BillingAccount.objects.create(client=tenant_a, soft_cap_minutes=D("10"), hard_cap_minutes=D("20"))
    usage_ingest([event(tenant_a, "c1", "call_seconds_inbound", 570, at(2025, 3, 2))])
    with django_capture_on_commit_callbacks(execute=True):
        cap_check_after_usage(client_id=tenant_a.pk, now=at(2025, 3, 15, 12))
        cap_check_after_usage(client_id=tenant_a.pk, now=at(2025, 3, 15, 12))
    with tenant_context(tenant_a):
        [reached] = WebhookEvent.objects.filter(type="usage.cap_reached")
        assert (reached.data["level"], reached.data["period"], reached.data["calls_refused"]) == ("soft", "2025-03", False)
        assert reached.data["reasons"] and all(isinstance(reason, str) for reason in reached.data["reasons"])
