"""The usage-cap check and its alert email through a real Celery worker (Redis
broker), enqueued on commit from a client's schema the way the call runtime does."""

import time
from datetime import date
from decimal import Decimal as D

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.billing.models import BillingAccount, BillingSettings, CapAlert
from apps.billing.services import UsageEventIn, rate_card_create, usage_record_call
from apps.billing.testing import truncate_billing_tables
from config.celery import app


@pytest.fixture
def worker(committed_db):
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"):
        yield
    connection.close()  # the in-thread worker may have used this thread's connection settings
    truncate_billing_tables(
        "billing_usageevent",
        "billing_capalert",
        "billing_billingaccount",
        "billing_billingsettings",
        "billing_metricrate",
        "billing_ratecard",
        cascade=True,
    )


def test_call_usage_from_a_client_schema_alerts_once_through_the_worker(worker, settings):
    from apps.tenancy.models import Client

    connection.close()  # a fresh connection after the worker started (see apps/core/tests/test_celery.py)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = Client.objects.get(slug="acme")
    billing = BillingSettings.load()
    billing.cap_alert_emails = "ops@agency.test"
    billing.save()
    rate_card_create(effective_from=date(2025, 1, 1), call_billing_increment_seconds=60)
    BillingAccount.objects.create(client=client, soft_cap_minutes=D("1"))
    events = [UsageEventIn(metric="call_seconds_inbound", quantity=D("90"), provider="twilio")]
    with tenant_context(client):
        usage_record_call(client=client, call_id="w1", events=events, ended_at=timezone.now())
        usage_record_call(client=client, call_id="w2", events=events, ended_at=timezone.now())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not CapAlert.objects.filter(notified_at__isnull=False).exists():
        time.sleep(0.1)
    time.sleep(0.5)  # let the second call's check finish too
    assert list(CapAlert.objects.values_list("client__slug", "level")) == [("acme", "soft")]
    assert CapAlert.objects.get().notified_at is not None
    assert [(m.subject, m.to) for m in mail.outbox] == [
        ("[Switchboard] Acme Dental reached its soft usage cap", ["ops@agency.test"])
    ]
