import threading
from datetime import date
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connections, transaction

from apps.billing.models import Invoice, InvoiceLine, MetricRate
from apps.billing.selectors import rate_card_is_locked
from apps.billing.services import (
    credit_note_create,
    invoice_finalize,
    invoice_generate,
    invoice_generate_and_finalize,
    invoice_mark_paid,
    invoice_void,
    metric_rate_set,
    rate_card_create,
    usage_ingest,
)
from apps.billing.testing import truncate_billing_tables
from apps.billing.tests.conftest import at, event
from apps.core.errors import ApplicationError

MARCH = date(2025, 3, 1)


def march_usage(client):
    return [
        event(client, "c1", "call_seconds_inbound", "61", at(2025, 3, 1, 0, 0, 0)),  # -> 120 s
        event(client, "c2", "call_seconds_inbound", "30", at(2025, 3, 10)),  # -> 60 s
        event(client, "c3", "call_seconds_inbound", "900", at(2025, 3, 31, 23, 59, 59)),  # -> 900 s
        event(client, "c4", "call_seconds_outbound", "125", at(2025, 3, 12)),  # -> 180 s
        event(client, "c1", "llm_input_tokens", "10000", at(2025, 3, 1), dimension="gpt-4o", provider_cost=D("0.025")),
        event(client, "c3", "llm_input_tokens", "30000", at(2025, 3, 31), dimension="gpt-4o", provider_cost=D("0.075")),
        event(client, "c1", "tts_characters", "1200", at(2025, 3, 1)),
        event(client, "c3", "tts_characters", "900", at(2025, 3, 31)),
        event(client, "c1", "qa_runs", "1", at(2025, 3, 2)),
        event(client, "c3", "qa_runs", "1", at(2025, 3, 31)),
        event(client, "feb", "call_seconds_inbound", "600", at(2025, 2, 28, 23, 59, 59)),  # February
        event(client, "apr", "call_seconds_inbound", "600", at(2025, 4, 1, 0, 0, 0)),  # April
    ]


def lines_of(invoice):
    return list(
        InvoiceLine.objects.filter(invoice=invoice).values_list("kind", "metric", "dimension", "quantity", "amount")
    )


EXPECTED_MARCH_LINES = [
    ("usage", "call_seconds_inbound", "", D("18"), D("1.80")),  # 1080 s = 18 min x 0.10
    ("allowance", "call_seconds_inbound", "", D("-10"), D("-1.00")),
    ("usage", "call_seconds_outbound", "", D("3"), D("0.36")),  # 180 s = 3 min x 0.12
    ("usage", "llm_input_tokens", "gpt-4o", D("40000"), D("0.12")),  # 0.10 cost x 1.2
    ("usage", "qa_runs", "", D("2"), D("0.00")),  # not priced, still listed
    ("usage", "tts_characters", "", D("2100"), D("0.90")),  # 3 started packages x 0.30
    ("platform_fee", "", "", D("1"), D("49.00")),
]


def test_generate_rates_the_month_exactly(tenant_a, default_card):
    usage_ingest(march_usage(tenant_a))
    invoice = invoice_generate(client=tenant_a, period_start=MARCH)
    assert lines_of(invoice) == EXPECTED_MARCH_LINES
    # 1.80 - 1.00 + 0.36 + 0.12 + 0.90 + 49 = 51.18; tax 10 % = 5.118 -> 5.12
    assert (invoice.status, invoice.currency, invoice.subtotal, invoice.tax, invoice.total, invoice.provider_cost) == (
        "draft",
        "USD",
        D("51.18"),
        D("5.12"),
        D("56.30"),
        D("0.10"),
    )
    assert invoice.number is None


def test_regenerating_a_draft_refreshes_it_without_duplicating(tenant_a, default_card):
    usage_ingest(march_usage(tenant_a))
    first = invoice_generate(client=tenant_a, period_start=MARCH)
    usage_ingest([event(tenant_a, "c5", "call_seconds_outbound", "60", at(2025, 3, 20))])
    again = invoice_generate(client=tenant_a, period_start=MARCH)
    assert again.pk == first.pk
    assert Invoice.objects.filter(client=tenant_a).count() == 1
    assert lines_of(again)[2] == ("usage", "call_seconds_outbound", "", D("4"), D("0.48"))
    assert again.subtotal == D("51.30")


def test_finalised_invoice_never_changes_on_regeneration(tenant_a, default_card):
    usage_ingest(march_usage(tenant_a))
    invoice = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)
    assert (invoice.status, invoice.number) == ("finalised", "INV-000001")
    usage_ingest([event(tenant_a, "late", "call_seconds_outbound", "600", at(2025, 3, 20))])  # late event
    again = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)
    assert (again.pk, again.number, again.total) == (invoice.pk, "INV-000001", D("56.30"))
    assert lines_of(again) == EXPECTED_MARCH_LINES
    assert invoice_finalize(invoice_id=invoice.pk).number == "INV-000001"
    assert Invoice.objects.count() == 1


def test_finalised_invoice_is_immutable_in_the_database(tenant_a, default_card):
    usage_ingest(march_usage(tenant_a))
    invoice = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH, finalize=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(total=D("1.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=invoice).update(amount=D("0"))
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(invoice=invoice, position=99, kind="credit", description="x", quantity=1, amount=-5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).delete()
    invoice.refresh_from_db()
    assert (invoice.total, invoice.number, invoice.status) == (D("56.30"), "INV-000001", "finalised")
    assert lines_of(invoice) == EXPECTED_MARCH_LINES
    # State changes stay possible.
    assert invoice_mark_paid(invoice_id=invoice.pk).status == "paid"


def test_numbers_are_gap_free_even_when_a_finalisation_rolls_back(tenant_a, tenant_b, default_card):
    a = invoice_generate(client=tenant_a, period_start=MARCH)
    b = invoice_generate(client=tenant_b, period_start=MARCH)
    with pytest.raises(RuntimeError), transaction.atomic():
        invoice_finalize(invoice_id=a.pk, render_documents=False)
        raise RuntimeError("worker killed before commit")
    a.refresh_from_db()
    assert (a.status, a.number) == ("draft", None)
    assert invoice_finalize(invoice_id=b.pk, render_documents=False).number == "INV-000001"
    assert invoice_finalize(invoice_id=a.pk, render_documents=False).number == "INV-000002"


def test_period_boundary_is_midnight_in_the_clients_timezone(tenant_a, default_card):
    tenant_a.timezone = ZoneInfo("America/New_York")
    tenant_a.save()
    usage_ingest(
        [
            event(tenant_a, "a", "qa_runs", 1, at(2025, 3, 1, 4, 59, 59)),  # 28 Feb 23:59:59 EST
            event(tenant_a, "b", "qa_runs", 1, at(2025, 3, 1, 5, 0, 0)),  # 1 Mar 00:00:00 EST
            event(tenant_a, "c", "qa_runs", 1, at(2025, 4, 1, 3, 59, 59)),  # 31 Mar 23:59:59 EDT
            event(tenant_a, "d", "qa_runs", 1, at(2025, 4, 1, 4, 0, 0)),  # 1 Apr 00:00:00 EDT
        ]
    )
    feb = invoice_generate(client=tenant_a, period_start=date(2025, 2, 1))
    march = invoice_generate(client=tenant_a, period_start=MARCH)
    april = invoice_generate(client=tenant_a, period_start=date(2025, 4, 1))
    assert (march.starts_at, march.ends_at) == (at(2025, 3, 1, 5), at(2025, 4, 1, 4))
    assert [line[3] for line in lines_of(feb) if line[1] == "qa_runs"] == [D("1")]
    assert [line[3] for line in lines_of(march) if line[1] == "qa_runs"] == [D("2")]
    assert [line[3] for line in lines_of(april) if line[1] == "qa_runs"] == [D("1")]


def test_open_period_is_refused(tenant_a, default_card):
    from django.utils import timezone

    today = timezone.now().date()
    with pytest.raises(ApplicationError):
        invoice_generate(client=tenant_a, period_start=today.replace(day=1))
    assert Invoice.objects.count() == 0


def test_client_card_version_overrides_from_its_month_and_closed_periods_are_locked(tenant_a, default_card):
    card = rate_card_create(
        client=tenant_a, effective_from=date(2025, 4, 1), platform_fee=D("99"), call_billing_increment_seconds=1
    )
    metric_rate_set(
        card=card,
        metric="call_seconds_outbound",
        model="per_unit",
        unit_price=D("0.20"),
        unit_divisor=D("60"),
        unit_label="min",
    )
    usage_ingest(
        [
            event(tenant_a, "m", "call_seconds_outbound", "90", at(2025, 3, 5)),
            event(tenant_a, "a", "call_seconds_outbound", "90", at(2025, 4, 5)),
            event(tenant_a, "a", "tts_characters", "10", at(2025, 4, 5)),
        ]
    )
    march = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)
    april = invoice_generate(client=tenant_a, period_start=date(2025, 4, 1))
    # March: default card, per started minute: 120 s = 2 min x 0.12 + 49
    assert lines_of(march) == [
        ("usage", "call_seconds_outbound", "", D("2"), D("0.24")),
        ("platform_fee", "", "", D("1"), D("49.00")),
    ]
    # April: client card terms (per second, fee 99) + its outbound price; TTS inherited from the default.
    assert lines_of(april) == [
        ("usage", "call_seconds_outbound", "", D("1.5"), D("0.30")),
        ("usage", "tts_characters", "", D("10"), D("0.30")),
        ("platform_fee", "", "", D("1"), D("99.00")),
    ]
    assert (april.rate_card_id, april.default_rate_card_id) == (card.pk, default_card.pk)
    # The default card priced a finalised invoice: editing it is refused, nothing changes.
    assert rate_card_is_locked(card=default_card) and not rate_card_is_locked(card=card)
    with pytest.raises(ApplicationError):
        metric_rate_set(card=default_card, metric="call_seconds_outbound", unit_price=D("9"))
    assert MetricRate.objects.get(rate_card=default_card, metric="call_seconds_outbound").unit_price == D("0.12")
    with pytest.raises(ApplicationError):
        rate_card_create(client=tenant_a, effective_from=MARCH)
    assert tenant_a.rate_cards.count() == 1


def test_credit_note_and_void(tenant_a, default_card):
    usage_ingest(march_usage(tenant_a))
    invoice = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)
    note = credit_note_create(invoice_id=invoice.pk, amount=D("10"), reason="outage on 3 March")
    assert (note.kind, note.number, note.subtotal, note.tax, note.total, note.credit_note_for_id) == (
        "credit_note",
        "CN-000001",
        D("-10.00"),
        D("-1.00"),
        D("-11.00"),
        invoice.pk,
    )
    with pytest.raises(ApplicationError):
        credit_note_create(invoice_id=invoice.pk, amount=D("41.19"), reason="too much")  # 51.18 - 10 left
    assert Invoice.objects.filter(kind="credit_note").count() == 1
    voided = invoice_void(invoice_id=invoice.pk, reason="wrong client")
    assert (voided.status, voided.number) == ("void", "INV-000001")
    replacement = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)
    assert replacement.pk != invoice.pk and replacement.number == "INV-000002"
    with pytest.raises(ApplicationError):
        invoice_void(invoice_id=replacement.pk, reason="")
    assert Invoice.objects.get(pk=replacement.pk).status == "finalised"


def test_pdf_and_usage_csv_are_stored(
    tenant_a, default_card, django_capture_on_commit_callbacks, eager_celery, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    usage_ingest(march_usage(tenant_a)[:2])
    draft = invoice_generate(client=tenant_a, period_start=MARCH)
    with django_capture_on_commit_callbacks(execute=True):
        invoice_finalize(invoice_id=draft.pk)
    invoice = Invoice.objects.get(pk=draft.pk)
    assert invoice.pdf.name == "billing/invoices/acme/INV-000001.pdf"
    with invoice.pdf.open("rb") as handle:
        assert handle.read(5) == b"%PDF-"
    with invoice.usage_csv.open("rb") as handle:
        assert handle.read().decode().splitlines() == [
            "occurred_at,call_id,metric,dimension,quantity,unit,provider,idempotency_key",
            '2025-03-01 00:00:00+00,c1,call_seconds_inbound,"",61.000000,second,"",c1:call_seconds_inbound:',
            '2025-03-10 00:00:00+00,c2,call_seconds_inbound,"",30.000000,second,"",c2:call_seconds_inbound:',
        ]


@pytest.fixture
def clean_billing(committed_db):
    yield
    truncate_billing_tables(
        "billing_usageevent",
        "billing_invoiceline",
        "billing_stripeevent",
        "billing_invoice",
        "billing_metricrate",
        "billing_ratecard",
        "billing_documentsequence",
        "billing_billingsettings",
        cascade=True,
    )


def test_concurrent_month_end_runs_make_one_invoice_and_one_number(clean_billing):
    """Four workers generate and finalise the same client and month at once
    (a redelivered task racing the original)."""
    from apps.tenancy.models import Client

    client = Client.objects.get(slug="acme")
    card = rate_card_create(effective_from=date(2025, 1, 1), platform_fee=D("10"))
    metric_rate_set(card=card, metric="qa_runs", model="per_unit", unit_price=D("1"))
    usage_ingest([event(client, "x", "qa_runs", 3, at(2025, 3, 2))])
    barrier = threading.Barrier(4)
    numbers, errors = [], []

    def worker():
        try:
            barrier.wait()
            invoice = invoice_generate_and_finalize(client=Client.objects.get(pk=client.pk), period_start=MARCH)
            numbers.append(invoice.number)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert numbers == ["INV-000001"] * 4
    assert list(Invoice.objects.values_list("number", "total")) == [("INV-000001", D("13.0000"))]


def test_call_rounding_applies_per_call_not_per_event_and_matches_the_pure_rule(tenant_a, default_card):
    """Per started minute: a call reported in two 20-second parts is one started
    minute, not two. Minimum seconds per call apply to each call."""
    from apps.billing.pricing import billable_call_seconds
    from apps.billing.selectors import period_rate

    usage_ingest(
        [
            event(tenant_a, "leg", "call_seconds_inbound", 20, at(2025, 3, 2), idempotency_key="leg:a"),
            event(tenant_a, "leg", "call_seconds_inbound", 20, at(2025, 3, 2), idempotency_key="leg:b"),
            event(tenant_a, "short", "call_seconds_inbound", "0.5", at(2025, 3, 2)),
            event(tenant_a, "zero", "call_seconds_inbound", 0, at(2025, 3, 2)),
        ]
    )
    default_card.call_minimum_seconds = 90
    default_card.save()
    totals = {t.metric: t.quantity for t in period_rate(client=tenant_a, period_start=MARCH).usage.totals}
    expected = sum(billable_call_seconds(s, increment=60, minimum=90) for s in (D("40"), D("0.5"), D("0")))
    assert totals["call_seconds_inbound"] == expected == D("180")  # 90 + 90 + 0
