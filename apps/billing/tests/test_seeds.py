"""`make run`'s demo seed makes a fresh install invoiceable."""

from datetime import date
from decimal import Decimal as D
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from apps.billing.models import Invoice, InvoiceLine, RateCard
from apps.billing.periods import format_period, period_containing, previous_period


def test_generate_invoices_works_on_the_seeded_demo(db, monkeypatch, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-1")
    assert RateCard.objects.count() == 0
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # idempotent: still one card
    assert list(RateCard.objects.values_list("client", "effective_from", "platform_fee")) == [
        (None, date(2020, 1, 1), D("49.0000"))
    ]
    from apps.tenancy.models import Client

    demo = Client.objects.get(slug="demo")
    period = previous_period(period_containing(timezone.now(), demo.timezone))  # ended in the demo's timezone
    out = StringIO()
    call_command("generate_invoices", "--period", format_period(period), "--client", "demo", "--finalize", stdout=out)
    invoice = Invoice.objects.get(client=demo)
    assert out.getvalue().splitlines() == [f"[1/1] demo: {invoice.number} finalised total 49.00 USD"]
    assert (invoice.period_start, invoice.status, invoice.total) == (period, "finalised", D("49.0000"))
    assert list(InvoiceLine.objects.filter(invoice=invoice).values_list("kind", "amount")) == [
        ("platform_fee", D("49.0000"))
    ]
    assert invoice.pdf.name.endswith(f"{invoice.number}.pdf")
