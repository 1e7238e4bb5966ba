import hashlib
import hmac
import json
import time
from datetime import date
from decimal import Decimal as D

import pytest

from apps.billing.models import BillingAccount, BillingSettings, Invoice, StripeEvent
from apps.billing.services import invoice_generate_and_finalize, usage_ingest
from apps.billing.services.stripe_sync import invoice_push_to_stripe
from apps.billing.tests.conftest import at, event
from apps.core.errors import ProviderError
from devtools.doubles.stripe_server import StripeDouble

WEBHOOK_SECRET = "whsec_test_secret"


@pytest.fixture
def stripe_double(settings):
    double = StripeDouble().start()
    settings.STRIPE_API_BASE = double.url
    yield double
    double.stop()


@pytest.fixture
def stripe_on(db):
    billing = BillingSettings.load()
    billing.stripe_enabled = True
    billing.stripe_secret_key = "sk_test_double"
    billing.stripe_webhook_secret = WEBHOOK_SECRET
    billing.save()
    return billing


@pytest.fixture
def march_invoice(tenant_a, default_card):
    usage_ingest(
        [
            event(tenant_a, "c1", "call_seconds_outbound", "600", at(2025, 3, 3)),  # 10 min x 0.12 = 1.20
            event(tenant_a, "c1", "qa_runs", "1", at(2025, 3, 3)),  # 0.00: not sent to Stripe
        ]
    )
    return invoice_generate_and_finalize(client=tenant_a, period_start=date(2025, 3, 1))


def test_secret_key_is_encrypted_at_rest(stripe_on):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT stripe_secret_key FROM billing_billingsettings WHERE id = 1")
        stored = cursor.fetchone()[0]
    assert stored != "sk_test_double" and "sk_test" not in stored
    assert BillingSettings.load().stripe_secret_key == "sk_test_double"


def test_push_creates_customer_items_and_finalises(stripe_double, stripe_on, march_invoice):
    # subtotal 1.20 + 49.00 = 50.20; tax 10 % = 5.02; total 55.22
    invoice = invoice_push_to_stripe(invoice_id=march_invoice.pk)
    [customer] = stripe_double.of_type("customer")
    [remote] = stripe_double.of_type("invoice")
    items = stripe_double.of_type("invoiceitem")
    assert (customer["name"], customer["metadata"]) == ("Acme Dental", {"switchboard_client": "acme"})
    assert [(i["description"], i["amount"], i["currency"]) for i in items] == [
        ("Call seconds outbound", 120, "usd"),
        ("Monthly platform fee", 4900, "usd"),
        ("Tax 10%", 502, "usd"),
    ]
    assert (remote["status"], remote["total"], remote["metadata"]) == (
        "open",
        5522,
        {"switchboard_invoice_id": str(march_invoice.pk), "number": "INV-000001"},
    )
    assert (invoice.status, invoice.stripe_invoice_id, invoice.stripe_hosted_url) == (
        "sent",
        remote["id"],
        f"https://invoice.stripe.test/i/{remote['id']}",
    )
    assert BillingAccount.objects.get(client=march_invoice.client).stripe_customer_id == customer["id"]
    # Pushing again changes nothing and asks Stripe for nothing.
    requests_before = len(stripe_double.requests)
    assert invoice_push_to_stripe(invoice_id=march_invoice.pk).stripe_invoice_id == remote["id"]
    assert len(stripe_double.requests) == requests_before


def test_push_failing_midway_is_retried_without_duplicates(stripe_double, stripe_on, march_invoice):
    stripe_double.fail_next["/v1/invoiceitems"] = 100
    with pytest.raises(ProviderError) as failure:
        invoice_push_to_stripe(invoice_id=march_invoice.pk)
    assert failure.value.retryable is True
    march_invoice.refresh_from_db()
    assert (march_invoice.status, march_invoice.stripe_invoice_id, march_invoice.stripe_hosted_url) == (
        "finalised",
        None,
        "",
    )
    stripe_double.fail_next.clear()
    invoice = invoice_push_to_stripe(invoice_id=march_invoice.pk)
    assert len(stripe_double.of_type("customer")) == 1
    assert len(stripe_double.of_type("invoice")) == 1
    assert [i["amount"] for i in stripe_double.of_type("invoiceitem")] == [120, 4900, 502]
    assert invoice.status == "sent"


def test_push_with_stripe_disabled_does_nothing(stripe_double, march_invoice):
    assert invoice_push_to_stripe(invoice_id=march_invoice.pk) is None
    assert stripe_double.requests == []


def signed(payload: dict, secret: str = WEBHOOK_SECRET) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={signature}"


def post_webhook(client, body, signature):
    return client.post(
        "/billing/stripe/webhook/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
        HTTP_HOST="localhost",
    )


def invoice_event(event_id, kind, invoice):
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "api_version": "2024-06-20",
        "created": 1,
        "data": {
            "object": {"id": "in_x", "object": "invoice", "metadata": {"switchboard_invoice_id": str(invoice.pk)}}
        },
    }


def test_webhook_marks_paid_and_replays_are_no_ops(client, stripe_on, march_invoice):
    body, signature = signed(invoice_event("evt_1", "invoice.paid", march_invoice))
    response = post_webhook(client, body, signature)
    assert (response.status_code, response.json()) == (200, {"received": True, "outcome": "processed"})
    march_invoice.refresh_from_db()
    paid_at = march_invoice.paid_at
    assert march_invoice.status == "paid" and paid_at is not None
    replay = post_webhook(client, body, signature)
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    march_invoice.refresh_from_db()
    assert (march_invoice.status, march_invoice.paid_at) == ("paid", paid_at)
    assert list(StripeEvent.objects.values_list("event_id", "type", "invoice_id")) == [
        ("evt_1", "invoice.paid", march_invoice.pk)
    ]


def test_webhook_with_bad_signature_changes_nothing(client, stripe_on, march_invoice):
    body, _ = signed(invoice_event("evt_2", "invoice.paid", march_invoice))
    _, wrong = signed(invoice_event("evt_2", "invoice.paid", march_invoice), secret="whsec_other")
    response = post_webhook(client, body, wrong)
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    assert Invoice.objects.get(pk=march_invoice.pk).status == "finalised"


def test_webhook_payment_failed_flags_the_invoice(client, stripe_on, march_invoice):
    body, signature = signed(invoice_event("evt_3", "invoice.payment_failed", march_invoice))
    assert post_webhook(client, body, signature).status_code == 200
    march_invoice.refresh_from_db()
    assert march_invoice.status == "finalised" and march_invoice.payment_failed_at is not None
    assert D(march_invoice.total) == D("55.22")
