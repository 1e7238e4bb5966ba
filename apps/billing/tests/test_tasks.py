"""Slow work runs in Celery tasks (eager here: `.delay` runs in-process), each safe
to run twice; the usage-cap check on the hot path is cheap and agrees with a full
rating."""

import os
from datetime import date
from decimal import Decimal as D

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.billing.models import BillingAccount, CapAlert, Invoice, UsageMeter
from apps.billing.selectors import usage_cap_status, usage_cap_status_exact
from apps.billing.services import (
    UsageEventIn,
    invoice_finalize,
    invoice_generate,
    metric_rate_set,
    usage_ingest,
    usage_record_call,
)
from apps.billing.tasks import (
    cap_alert_notify_task,
    cap_check_task,
    invoice_push_to_stripe_task,
    invoice_render_documents_task,
)
from apps.billing.tests.conftest import at, event
from apps.billing.tests.test_stripe import march_invoice, stripe_double, stripe_on  # noqa: F401 - fixtures

MARCH = date(2025, 3, 1)


@pytest.fixture
def media(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


def _files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_finalising_enqueues_the_documents_task_and_running_it_twice_changes_nothing(
    tenant_a, default_card, media, eager_celery, django_capture_on_commit_callbacks
):
    usage_ingest([event(tenant_a, "c1", "call_seconds_outbound", 600, at(2025, 3, 3))])
    draft = invoice_generate(client=tenant_a, period_start=MARCH)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        invoice_finalize(invoice_id=draft.pk)
    assert Invoice.objects.get(pk=draft.pk).pdf.name == ""  # nothing rendered on the caller's path
    for callback in callbacks:
        callback()  # the commit: enqueues the task (eager: runs it)
    invoice = Invoice.objects.get(pk=draft.pk)
    assert (invoice.pdf.name, invoice.usage_csv.name) == (
        "billing/invoices/acme/INV-000001.pdf",
        "billing/usage/acme/INV-000001-usage.csv",
    )
    files = _files(media)
    assert invoice_render_documents_task.delay(invoice.pk).get() == "billing/invoices/acme/INV-000001.pdf"
    invoice_render_documents_task.apply(args=[invoice.pk])
    assert _files(media) == files == ["billing/invoices/acme/INV-000001.pdf", "billing/usage/acme/INV-000001-usage.csv"]
    again = Invoice.objects.get(pk=draft.pk)
    assert (again.pdf.name, again.usage_csv.name) == (invoice.pdf.name, invoice.usage_csv.name)


def test_documents_task_retries_a_transient_storage_failure(tenant_a, default_card, media, eager_celery, monkeypatch):
    from apps.billing.services import documents

    usage_ingest([event(tenant_a, "c1", "call_seconds_outbound", 600, at(2025, 3, 3))])
    invoice = invoice_finalize(
        invoice_id=invoice_generate(client=tenant_a, period_start=MARCH).pk, render_documents=False
    )
    real, attempts = documents.render_invoice_pdf, []

    def flaky(inv):
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionResetError("storage went away")
        return real(inv)

    monkeypatch.setattr(documents, "render_invoice_pdf", flaky)
    # throw=False: an eager retry re-runs in place instead of raising celery's Retry
    result = invoice_render_documents_task.apply(args=[invoice.pk], throw=False)
    assert result.get() == "billing/invoices/acme/INV-000001.pdf"
    assert len(attempts) == 2
    assert invoice_render_documents_task.max_retries == 5 and OSError in invoice_render_documents_task.autoretry_for


def test_stripe_push_task_retries_a_retryable_failure_and_twice_pushes_once(
    stripe_double,  # noqa: F811 - fixtures imported from test_stripe
    stripe_on,  # noqa: F811
    march_invoice,  # noqa: F811
    eager_celery,
):
    stripe_double.fail_next["/v1/invoiceitems"] = 3  # the Stripe client's own two retries fail too
    remote_id = invoice_push_to_stripe_task.apply(args=[march_invoice.pk], throw=False).get()
    [remote] = stripe_double.of_type("invoice")
    assert remote_id == remote["id"]
    requests = len(stripe_double.requests)
    assert invoice_push_to_stripe_task.apply(args=[march_invoice.pk]).get() == remote_id
    assert len(stripe_double.requests) == requests  # the second run asked Stripe nothing
    assert [i["amount"] for i in stripe_double.of_type("invoiceitem")] == [120, 4900, 502]
    march_invoice.refresh_from_db()
    assert (march_invoice.status, march_invoice.stripe_invoice_id) == ("sent", remote_id)


def test_usage_landing_enqueues_the_cap_check_and_the_alert_email_is_sent_once(
    tenant_a, default_card, agency_owner, eager_celery, django_capture_on_commit_callbacks
):
    BillingAccount.objects.create(client=tenant_a, soft_cap_minutes=D("10"))
    events = [UsageEventIn(metric="call_seconds_inbound", quantity=D("600"), provider="twilio")]
    with django_capture_on_commit_callbacks(execute=True):
        usage_record_call(client=tenant_a, call_id="big", events=events, ended_at=at(2025, 3, 3))
        usage_record_call(client=tenant_a, call_id="big", events=events, ended_at=at(2025, 3, 3))  # a retry
    # The task checked "now" (not March 2025): run it for March by hand, twice.
    from apps.billing.services import cap_check_after_usage

    with django_capture_on_commit_callbacks(execute=True):
        first = cap_check_after_usage(client_id=tenant_a.pk, now=at(2025, 3, 20))
        second = cap_check_after_usage(client_id=tenant_a.pk, now=at(2025, 3, 20))
    assert (first.level, second) == ("soft", None)
    assert [m.subject for m in mail.outbox] == ["[Switchboard] Acme Dental reached its soft usage cap"]
    assert "- 10.00 of 10.00 minutes (soft cap)" in mail.outbox[0].body
    assert cap_alert_notify_task.apply(args=[first.pk]).get() is False  # already notified
    assert len(mail.outbox) == 1
    assert CapAlert.objects.get().notified_at is not None
    assert cap_check_task.apply(args=[tenant_a.pk]).get() is None  # this month: nothing used
    assert CapAlert.objects.count() == 1


def test_usage_record_call_enqueues_the_cap_check_on_commit_only_when_something_new_landed(
    tenant_a, django_capture_on_commit_callbacks, monkeypatch
):
    from apps.billing import tasks

    sent = []
    monkeypatch.setattr(tasks.cap_check_task, "delay", lambda client_id: sent.append(client_id))
    events = [UsageEventIn(metric="qa_runs", quantity=1)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        usage_record_call(client=tenant_a, call_id="q1", events=events, ended_at=at(2025, 3, 3))
        usage_record_call(client=tenant_a, call_id="q1", events=events, ended_at=at(2025, 3, 3))
    assert (len(callbacks), sent) == (1, [tenant_a.pk])


def test_alert_email_failure_is_retried_and_sent_once(tenant_a, agency_owner, eager_celery, monkeypatch):
    import smtplib

    from apps.billing.services import caps

    alert = CapAlert.objects.create(client=tenant_a, period_start=MARCH, level="hard", detail="20 of 20 minutes")
    real, attempts = caps.send_mail, []

    def flaky(*args, **kwargs):
        attempts.append(1)
        if len(attempts) == 1:
            raise smtplib.SMTPServerDisconnected("gone")
        return real(*args, **kwargs)

    monkeypatch.setattr(caps, "send_mail", flaky)
    assert cap_alert_notify_task.apply(args=[alert.pk], throw=False).get() is True
    assert cap_alert_notify_task.apply(args=[alert.pk], throw=False).get() is False
    assert (len(attempts), len(mail.outbox)) == (2, 1)
    assert mail.outbox[0].subject == "[Switchboard] Acme Dental reached its hard usage cap"


# ----------------------------------------------------------------------------- the meter and the cheap cap check


def _meter_from_ledger(client_id):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, metric, dimension,
                   provider_cost_currency, count(*), count(*) FILTER (WHERE quantity > 0), sum(quantity),
                   sum(ceil(quantity)), sum(ceil(quantity / 6) * 6), sum(ceil(quantity / 60) * 60), sum(provider_cost)
            FROM billing_usageevent WHERE client_id = %s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            """,
            [client_id],
        )
        return cursor.fetchall()


def _meter(client_id):
    return list(
        UsageMeter.objects.filter(client_id=client_id)
        .order_by("period_start", "metric", "dimension", "cost_currency")
        .values_list(
            "period_start",
            "metric",
            "dimension",
            "cost_currency",
            "events",
            "positive_events",
            "quantity",
            "seconds_ceil_1",
            "seconds_ceil_6",
            "seconds_ceil_60",
            "provider_cost",
        )
    )


def test_meter_counts_exactly_what_the_ledger_stored(tenant_a):
    batch = [
        event(tenant_a, f"c{i}", "call_seconds_inbound", D(i) + D("0.5"), at(2025, 3, 1 + i % 28)) for i in range(50)
    ]
    batch += [
        event(tenant_a, "x", "llm_input_tokens", 1000, at(2025, 4, 2), dimension="gpt-4o", provider_cost=D("0.01"))
    ]
    assert usage_ingest(batch + batch[:10]) == 51  # duplicates are not metered twice
    assert usage_ingest(batch) == 0
    big = [event(tenant_a, f"b{i}", "tts_characters", i, at(2025, 3, 5), provider_cost=D("0.001")) for i in range(1500)]
    assert usage_ingest(big) == 1500  # the COPY path meters too
    assert _meter(tenant_a.pk) == [tuple(row) for row in _meter_from_ledger(tenant_a.pk)]
    assert _meter(tenant_a.pk)[0][:7] == (MARCH, "call_seconds_inbound", "", "USD", 50, 50, D("1250.000000"))


def test_meter_months_follow_the_clients_timezone(tenant_b):
    from zoneinfo import ZoneInfo

    tenant_b.timezone = ZoneInfo("America/New_York")
    tenant_b.save()
    usage_ingest([event(tenant_b, "late", "qa_runs", 1, at(2025, 4, 1, 2))])  # 31 March 22:00 in New York
    assert list(UsageMeter.objects.filter(client=tenant_b).values_list("period_start", "quantity")) == [
        (MARCH, D("1.000000"))
    ]


@pytest.fixture
def busy_month(tenant_a, default_card):
    """240 calls in March (inbound, outbound, tokens, TTS) on the default card
    (per started minute, inbound 10 min included) plus a volume-priced metric."""
    metric_rate_set(
        card=default_card,
        metric="qa_runs",
        model="volume",
        tiers=[{"up_to": "100", "unit_price": "0.50"}, {"up_to": None, "unit_price": "0.40", "flat_fee": "5"}],
    )
    batch = []
    for i in range(240):
        day = at(2025, 3, 1 + i % 28, 12)
        batch += [
            event(tenant_a, f"c{i}", "call_seconds_inbound" if i % 3 else "call_seconds_outbound", 17 + i, day),
            event(tenant_a, f"c{i}", "llm_input_tokens", 900, day, dimension="gpt-4o", provider_cost=D("0.0021")),
            event(tenant_a, f"c{i}", "tts_characters", 333, day),
            event(tenant_a, f"c{i}", "qa_runs", 1, day),
        ]
    usage_ingest(batch)
    return tenant_a


def test_cheap_cap_status_agrees_with_a_full_rating_at_every_cap(busy_month, monkeypatch):
    from apps.billing import selectors

    client = busy_month
    account = BillingAccount.objects.create(client=client, hard_cap_minutes=D("100000"))
    exact = usage_cap_status_exact(client=client, at=at(2025, 3, 30))
    minutes, amount = exact.minutes_used, exact.amount_used
    # by hand: 160 inbound calls = 444 started minutes (0.10, 10 included) = 43.40, 80 outbound = 220 min
    # x 0.12 = 26.40, tokens 0.504 cost + 20 % = 0.60, TTS 79,920 chars = 80 packages x 0.30 = 24.00,
    # 240 QA runs at the volume tier above 100: 240 x 0.40 + 5 = 101.00
    assert (minutes, amount) == (D("664"), D("195.40"))
    ratings = []
    real_exact = selectors.usage_cap_status_exact
    monkeypatch.setattr(selectors, "usage_cap_status_exact", lambda **kw: ratings.append(kind) or real_exact(**kw))
    for cap in [D(0), D("1"), minutes - 60, minutes - 1, minutes, minutes + 1, minutes + 100, minutes * 3]:
        for kind in ("minutes", "amount"):
            value = cap if kind == "minutes" else (cap * amount / minutes).quantize(D("0.01"))
            for level in ("soft", "hard"):
                caps = dict.fromkeys(("soft_cap_minutes", "hard_cap_minutes", "soft_cap_amount", "hard_cap_amount"))
                caps[f"{level}_cap_{kind}"] = value
                BillingAccount.objects.filter(pk=account.pk).update(**caps)
                cheap = usage_cap_status(client=client, at=at(2025, 3, 30))
                full = real_exact(client=client, at=at(2025, 3, 30))
                assert (cheap.state, cheap.allowed) == (full.state, full.allowed), (kind, level, value)
    # Minutes lie in [546 raw, 664 rounded]: only caps 604, 663 and 664 (x soft, hard) needed a rating.
    assert ratings.count("minutes") == 6
    assert ratings.count("amount") < 16  # far caps (0, 1, 3x) were answered from the bounds


def test_cheap_cap_status_reads_no_ledger_rows_when_far_from_the_caps(busy_month, django_assert_max_num_queries):
    BillingAccount.objects.create(client=busy_month, soft_cap_minutes=D("5000"), hard_cap_amount=D("10000"))
    with CaptureQueriesContext(connection) as queries:
        status = usage_cap_status(client=busy_month, at=at(2025, 3, 30))
    assert status.state == "allowed"
    assert not [q["sql"] for q in queries.captured_queries if "billing_usageevent" in q["sql"]]
    # account, client card, default card, its rates, the month's meter rows (django-tenants adds SET search_path)
    assert len([q for q in queries.captured_queries if not q["sql"].startswith("SET ")]) == 5
    BillingAccount.objects.filter(client=busy_month).update(soft_cap_minutes=D("664"))  # exactly at the cap
    with CaptureQueriesContext(connection) as queries:
        status = usage_cap_status(client=busy_month, at=at(2025, 3, 30))
    assert (status.state, status.minutes_used) == ("soft", D("664"))
    assert [q for q in queries.captured_queries if "billing_usageevent" in q["sql"]]  # near the cap: rated
