"""Usage that arrives after its month was invoiced is carried into the next
invoice as dated lines, priced by its own month's rate card -- never dropped."""

from datetime import date
from decimal import Decimal as D

import pytest

from apps.billing.models import Invoice, InvoiceLine
from apps.billing.services import (
    invoice_generate,
    invoice_generate_and_finalize,
    invoice_render_documents,
    invoice_void,
    metric_rate_set,
    rate_card_create,
    usage_ingest,
)
from apps.billing.tests.conftest import at, event
from apps.billing.tests.test_invoices import march_usage

MARCH, APRIL, MAY = date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)


def lines_of(invoice):
    return list(
        InvoiceLine.objects.filter(invoice=invoice).values_list(
            "kind", "description", "quantity", "unit_price", "amount"
        )
    )


@pytest.fixture
def march_closed(tenant_a, default_card):
    """March invoiced (56.30, see test_invoices); from April the client pays 0.20 / inbound minute."""
    usage_ingest(march_usage(tenant_a))
    march = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)
    assert (march.number, march.total) == ("INV-000001", D("56.30"))
    april_card = rate_card_create(
        client=tenant_a,
        effective_from=APRIL,
        platform_fee=D("49"),
        tax_rate_percent=D("10"),
        call_billing_increment_seconds=60,
    )
    metric_rate_set(
        card=april_card,
        metric="call_seconds_inbound",
        model="per_unit",
        unit_price=D("0.20"),
        unit_divisor=D("60"),
        unit_label="min",
    )
    return march


def test_late_usage_is_carried_into_the_next_invoice_at_its_own_months_prices(tenant_a, march_closed):
    march_lines = lines_of(march_closed)
    # Late March usage: a 125 s inbound call (3 started minutes) and 500 TTS characters.
    usage_ingest(
        [
            event(tenant_a, "late1", "call_seconds_inbound", 125, at(2025, 3, 31, 23)),
            event(tenant_a, "late1", "tts_characters", 500, at(2025, 3, 31, 23)),
            event(tenant_a, "a1", "call_seconds_outbound", 60, at(2025, 4, 5)),
        ]
    )
    april = invoice_generate(client=tenant_a, period_start=APRIL)
    assert lines_of(april) == [
        # April's own: the "apr" call of march_usage, 600 s = 10 min at April's 0.20, and 1 outbound minute
        ("usage", "Call seconds inbound", D("10"), D("0.20000000"), D("2.00")),
        ("usage", "Call seconds outbound", D("1"), D("0.12000000"), D("0.12")),
        ("platform_fee", "Monthly platform fee", D("1"), D("49.00000000"), D("49.00")),
        # March had 18 billable minutes (10 included); 21 now: 3 more at March's 0.10
        ("late_usage", "Usage from March 2025: Call seconds inbound", D("3"), D("0.10000000"), D("0.30")),
        # 2,100 -> 2,600 characters is still 3 started packages of 1,000: listed, 0.00
        ("late_usage", "Usage from March 2025: Tts characters", D("500"), D("0.30000000"), D("0.00")),
    ]
    # 2.00 + 0.12 + 49.00 + 0.30 = 51.42; tax 10 % = 5.142 -> 5.14
    assert (april.subtotal, april.tax, april.total) == (D("51.42"), D("5.14"), D("56.56"))
    assert lines_of(Invoice.objects.get(pk=march_closed.pk)) == march_lines  # March untouched
    # Regenerating the draft carries the same, once.
    assert lines_of(invoice_generate(client=tenant_a, period_start=APRIL)) == lines_of(april)


def test_each_late_row_is_billed_exactly_once_across_later_invoices(tenant_a, march_closed):
    usage_ingest([event(tenant_a, "late1", "call_seconds_inbound", 125, at(2025, 3, 31, 23))])
    april = invoice_generate_and_finalize(client=tenant_a, period_start=APRIL)
    assert [line[1:] for line in lines_of(april) if line[0] == "late_usage"] == [
        ("Usage from March 2025: Call seconds inbound", D("3"), D("0.10000000"), D("0.30"))
    ]
    # More late usage for March (continues from 21 minutes) and for April (after April closed).
    usage_ingest(
        [
            event(tenant_a, "late2", "call_seconds_inbound", 30, at(2025, 3, 15)),
            event(tenant_a, "late3", "call_seconds_inbound", 61, at(2025, 4, 30, 23)),
        ]
    )
    may = invoice_generate_and_finalize(client=tenant_a, period_start=MAY)
    assert lines_of(may) == [
        ("platform_fee", "Monthly platform fee", D("1"), D("49.00000000"), D("49.00")),
        ("late_usage", "Usage from March 2025: Call seconds inbound", D("1"), D("0.10000000"), D("0.10")),
        ("late_usage", "Usage from April 2025: Call seconds inbound", D("2"), D("0.20000000"), D("0.40")),
    ]
    assert (may.subtotal, may.tax, may.total) == (D("49.50"), D("4.95"), D("54.45"))
    # June: nothing late any more, nothing carried twice.
    june = invoice_generate(client=tenant_a, period_start=date(2025, 6, 1))
    assert [line[0] for line in lines_of(june)] == ["platform_fee"]


def test_a_voided_invoice_releases_its_late_usage_to_the_next_one(tenant_a, march_closed):
    usage_ingest([event(tenant_a, "late1", "call_seconds_inbound", 125, at(2025, 3, 31, 23))])
    april = invoice_generate_and_finalize(client=tenant_a, period_start=APRIL)
    invoice_void(invoice_id=april.pk, reason="wrong address")
    again = invoice_generate(client=tenant_a, period_start=APRIL)
    assert again.pk != april.pk
    assert [line[1:] for line in lines_of(again) if line[0] == "late_usage"] == [
        ("Usage from March 2025: Call seconds inbound", D("3"), D("0.10000000"), D("0.30"))
    ]


def test_late_usage_is_in_the_pdf_and_the_csv(tenant_a, march_closed, settings, tmp_path):
    from django.template.loader import render_to_string

    from apps.billing.services.documents import invoice_document_context

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    usage_ingest([event(tenant_a, "late1", "call_seconds_inbound", 125, at(2025, 3, 31, 23))])
    april = invoice_generate_and_finalize(client=tenant_a, period_start=APRIL)
    usage_ingest([event(tenant_a, "after", "call_seconds_inbound", 5, at(2025, 4, 20))])  # after April's watermark
    html = render_to_string("billing/invoice_pdf.html", invoice_document_context(april))
    assert "Usage from March 2025: Call seconds inbound" in html and "0.30" in html
    april = invoice_render_documents(invoice_id=april.pk)
    with april.usage_csv.open("rb") as handle:
        assert handle.read().decode().splitlines() == [
            "occurred_at,call_id,metric,dimension,quantity,unit,provider,idempotency_key",
            '2025-03-31 23:00:00+00,late1,call_seconds_inbound,"",125.000000,second,"",late1:call_seconds_inbound:',
            '2025-04-01 00:00:00+00,apr,call_seconds_inbound,"",600.000000,second,"",apr:call_seconds_inbound:',
        ]


@pytest.fixture
def clean_billing_after(committed_db):
    yield
    from apps.billing.testing import truncate_billing_tables

    truncate_billing_tables(
        "billing_usageevent",
        "billing_invoiceline",
        "billing_invoice",
        "billing_metricrate",
        "billing_ratecard",
        "billing_documentsequence",
        "billing_billingsettings",
        cascade=True,
    )


def test_usage_in_flight_while_the_next_invoice_is_generated_is_carried_not_lost(clean_billing_after):
    """A late row whose transaction is still open when April is generated: April
    waits for it (its id is below April's watermark, so it must be visible)."""
    import threading

    from django.db import connections, transaction

    from apps.tenancy.models import Client

    client = Client.objects.get(slug="acme")
    card = rate_card_create(effective_from=date(2025, 1, 1), call_billing_increment_seconds=60)
    metric_rate_set(
        card=card, metric="call_seconds_inbound", model="per_unit", unit_price=D("0.10"), unit_divisor=D("60")
    )
    usage_ingest([event(client, "m1", "call_seconds_inbound", 60, at(2025, 3, 2))])
    invoice_generate_and_finalize(client=client, period_start=MARCH)
    inserted, release, results = threading.Event(), threading.Event(), {}

    def late_ingest():
        try:
            with transaction.atomic():
                results["ingested"] = usage_ingest(
                    [event(client, "late", "call_seconds_inbound", 120, at(2025, 3, 30))]
                )
                inserted.set()
                release.wait(20)
        finally:
            connections.close_all()

    def generate_april():
        try:
            results["april"] = invoice_generate(client=Client.objects.get(pk=client.pk), period_start=APRIL).pk
        finally:
            connections.close_all()

    ingest = threading.Thread(target=late_ingest)
    ingest.start()
    assert inserted.wait(20)
    generate = threading.Thread(target=generate_april)
    generate.start()
    generate.join(1.0)
    assert generate.is_alive()  # waiting for the open ingestion
    release.set()
    ingest.join(20)
    generate.join(20)
    assert results["ingested"] == 1
    assert [line[1:] for line in lines_of(Invoice.objects.get(pk=results["april"])) if line[0] == "late_usage"] == [
        ("Usage from March 2025: Call seconds inbound", D("2"), D("0.10000000"), D("0.20"))
    ]
