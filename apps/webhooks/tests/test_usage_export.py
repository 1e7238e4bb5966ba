"""Usage export: Stripe Billing meter events through the stripe SDK against the local
Stripe double, and a signed webhook of usage batches against a loopback receiver.
Resumable, and exactly once per event at the receiving end."""
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from standardwebhooks import Webhook

from apps.billing.models import BillingAccount
from apps.billing.services import UsageEventIn, usage_ingest
from apps.core.errors import ProviderError
from apps.webhooks.usage_export.models import UsageExportBatch, UsageExportItem, UsageExportSettings
from apps.webhooks.usage_export.services import usage_export_run, usage_export_settings_save
from devtools.doubles.stripe_server import StripeDouble, _error
from devtools.doubles.webhook_receiver import WebhookReceiver

METER_PATH = "/v1/billing/meter_events"


class MeterStripeDouble(StripeDouble):
    """Billing's Stripe double plus meter events, with Stripe's identifier uniqueness."""

    def __init__(self):
        super().__init__()
        self.meter_events: dict[str, dict] = {}
        self.meter_requests = 0
        self.fail_meter_requests: set[int] = set()  # 1-based ordinals answered with a 500

    def _route(self, method, path, form):
        if not (method == "POST" and path == METER_PATH):
            return super()._route(method, path, form)
        self.meter_requests += 1
        if self.meter_requests in self.fail_meter_requests:
            return 500, _error("Something went wrong", None, "api_error")
        identifier = form["identifier"]
        if identifier in self.meter_events:
            return 400, _error(f"An event already exists with identifier {identifier}.", "resource_already_exists")
        event = {"object": "billing.meter_event", "identifier": identifier, "event_name": form["event_name"],
                 "payload": {"stripe_customer_id": form["payload[stripe_customer_id]"],
                             "value": form["payload[value]"]},
                 "timestamp": int(form["timestamp"]), "created": int(form["timestamp"])}
        self.meter_events[identifier] = event
        return 200, event


@pytest.fixture
def stripe_double(settings):
    double = MeterStripeDouble().start()
    settings.STRIPE_API_BASE = double.url
    yield double
    double.stop()


@pytest.fixture
def ledger(tenant_a, tenant_b):
    when = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    events = [
        UsageEventIn(client_id=tenant_a.pk, call_id="call-1", metric="call_seconds_inbound", quantity=Decimal("73.400"),
                     occurred_at=when, provider="twilio"),
        UsageEventIn(client_id=tenant_a.pk, call_id="call-1", metric="llm_input_tokens", quantity=900,
                     dimension="gpt-4o-mini", occurred_at=when, provider="openai"),
        UsageEventIn(client_id=tenant_a.pk, call_id="call-2", metric="call_seconds_inbound", quantity=12,
                     occurred_at=when, provider="twilio"),
        UsageEventIn(client_id=tenant_b.pk, call_id="call-3", metric="call_seconds_inbound", quantity=5,
                     occurred_at=when, provider="twilio"),
    ]
    assert usage_ingest(events) == 4
    BillingAccount.objects.update_or_create(client=tenant_a, defaults={"stripe_customer_id": "cus_acme"})
    from apps.billing.models import UsageEvent

    return list(UsageEvent.objects.order_by("id"))


def items(target):
    return list(UsageExportItem.objects.filter(target=target).order_by("event_id").values_list("event_id", "status"))


def test_stripe_export_resumes_after_a_failure_and_counts_each_event_once(stripe_double, ledger):
    acme1, acme2, acme3, globex = ledger
    usage_export_settings_save(stripe_enabled=True, stripe_secret_key="sk_test_double",
                               stripe_event_names={"call_seconds_inbound": "voice_seconds"})
    stripe_double.fail_meter_requests = {2}
    with pytest.raises(ProviderError) as raised:
        usage_export_run(target="stripe")
    assert raised.value.retryable
    assert items("stripe") == [(acme1.pk, "sent"), (acme2.pk, "pending"), (acme3.pk, "pending"), (globex.pk, "pending")]
    [batch] = UsageExportBatch.objects.filter(target="stripe")
    assert (batch.status, batch.attempts) == ("pending", 1) and "Stripe" in batch.last_error

    report = usage_export_run(target="stripe")
    assert (report.batches, report.sent, report.skipped) == (1, 2, 1)
    assert items("stripe") == [(acme1.pk, "sent"), (acme2.pk, "sent"), (acme3.pk, "sent"), (globex.pk, "skipped")]
    assert UsageExportBatch.objects.get(pk=batch.pk).status == "sent"
    assert stripe_double.meter_events == {
        f"sb_{acme1.pk}": {"object": "billing.meter_event", "identifier": f"sb_{acme1.pk}", "event_name": "voice_seconds",
                           "payload": {"stripe_customer_id": "cus_acme", "value": "73.4"},
                           "timestamp": 1793700000, "created": 1793700000},
        f"sb_{acme2.pk}": {"object": "billing.meter_event", "identifier": f"sb_{acme2.pk}",
                           "event_name": "switchboard_llm_input_tokens",
                           "payload": {"stripe_customer_id": "cus_acme", "value": "900"},
                           "timestamp": 1793700000, "created": 1793700000},
        f"sb_{acme3.pk}": {"object": "billing.meter_event", "identifier": f"sb_{acme3.pk}", "event_name": "voice_seconds",
                           "payload": {"stripe_customer_id": "cus_acme", "value": "12"},
                           "timestamp": 1793700000, "created": 1793700000},
    }
    requests_so_far = stripe_double.meter_requests
    assert requests_so_far == 4  # 1 ok + 1 failed, then 2 ok (globex has no Stripe customer: skipped, not sent)

    # A crash after Stripe took the events but before they were marked: the batch is sent again with
    # the same identifiers, which Stripe refuses as duplicates (counted once); the export marks them sent.
    UsageExportItem.objects.filter(batch=batch, status="sent").update(status="pending")
    UsageExportBatch.objects.filter(pk=batch.pk).update(status="pending")
    assert usage_export_run(target="stripe").sent == 3
    assert len(stripe_double.meter_events) == 3
    assert stripe_double.meter_requests == requests_so_far + 3

    # Nothing new: nothing sent.
    assert usage_export_run(target="stripe").batches == 0
    assert stripe_double.meter_requests == requests_so_far + 3


def test_webhook_export_resends_the_same_batch_id_until_taken(ledger):
    with WebhookReceiver(statuses=[503]) as receiver:
        from django.test import override_settings

        with override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=True):
            settings_row = usage_export_settings_save(stripe_enabled=False, webhook_enabled=True,
                                                      webhook_url=receiver.url, batch_size=3)
            with pytest.raises(ProviderError):
                usage_export_run(target="webhook")
            report = usage_export_run(target="webhook")
            assert (report.batches, report.sent) == (2, 4)
            assert usage_export_run(target="webhook").batches == 0
    first_batch, second_batch = UsageExportBatch.objects.filter(target="webhook").order_by("id")
    ids = [request.headers["webhook-id"] for request in receiver.requests]
    assert ids == [first_batch.message_id, first_batch.message_id, second_batch.message_id]
    assert receiver.requests[0].body == receiver.requests[1].body
    secret = UsageExportSettings.load().webhook_secret
    assert secret == settings_row.webhook_secret and secret.startswith("whsec_")
    first = Webhook(secret).verify(receiver.requests[1].body, receiver.requests[1].headers)
    second = Webhook(secret).verify(receiver.requests[2].body, receiver.requests[2].headers)
    assert first["batch_id"] == first_batch.message_id
    assert [event["idempotency_key"] for event in first["events"] + second["events"]] == [
        "acme:call-1:call_seconds_inbound:", "acme:call-1:llm_input_tokens:gpt-4o-mini",
        "acme:call-2:call_seconds_inbound:", "globex:call-3:call_seconds_inbound:",
    ]
    assert first["events"][0]["quantity"] == "73.4" and first["events"][0]["unit"] == "second"
    assert items("webhook") == [(event.pk, "sent") for event in ledger]


def test_nothing_is_exported_while_no_target_is_on(stripe_double, ledger):
    assert usage_export_run(target="stripe").batches == 0
    assert usage_export_run(target="webhook").batches == 0
    assert not UsageExportItem.objects.exists() and stripe_double.meter_requests == 0
