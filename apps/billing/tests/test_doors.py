"""Command, month-end task, margins, admin and portal pages."""

from datetime import date
from decimal import Decimal as D
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from apps.billing.models import Invoice
from apps.billing.selectors import margin_report
from apps.billing.services import invoice_generate_and_finalize, usage_ingest
from apps.billing.tasks import month_end_due
from apps.billing.tests.conftest import at
from apps.billing.tests.test_invoices import MARCH, march_usage

PASSWORD = "correct-horse-battery"


@pytest.fixture
def media(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }


def test_generate_invoices_command_is_idempotent(tenant_a, tenant_b, default_card, media):
    usage_ingest(march_usage(tenant_a))
    out = StringIO()
    call_command("generate_invoices", "--period", "2025-03", "--finalize", stdout=out)
    assert out.getvalue().splitlines() == [
        "[1/2] acme: INV-000001 finalised total 56.30 USD",
        "[2/2] globex: INV-000002 finalised total 53.90 USD",  # fee 49 + 10 % tax
    ]
    out = StringIO()
    call_command("generate_invoices", "--period", "2025-03", "--client", "acme", "--finalize", stdout=out)
    assert out.getvalue().splitlines() == ["[1/1] acme: INV-000001 finalised total 56.30 USD"]
    assert Invoice.objects.count() == 2
    assert Invoice.objects.get(number="INV-000001").pdf.name == "billing/invoices/acme/INV-000001.pdf"


def test_generate_invoices_command_refusals(tenant_a, default_card):
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("generate_invoices", "--period", "March")
    with pytest.raises(CommandError, match="No client with slug"):
        call_command("generate_invoices", "--period", "2025-03", "--client", "nope")
    assert Invoice.objects.count() == 0


def test_month_end_waits_for_each_clients_local_midnight(tenant_a, tenant_b, default_card):
    tenant_b.timezone = ZoneInfo("America/Los_Angeles")
    tenant_b.save()
    # 1 April 00:20 UTC: acme (UTC) is past its March end + grace. In LA it is still 31 March,
    # so the last month LA has finished is February (never invoiced here: the run catches up).
    assert month_end_due(now=at(2025, 4, 1, 0, 20)) == [(tenant_a.pk, "2025-03"), (tenant_b.pk, "2025-02")]
    invoice_generate_and_finalize(client=tenant_b, period_start=date(2025, 2, 1))
    assert month_end_due(now=at(2025, 4, 1, 0, 10)) == []  # acme inside the 15-minute grace
    assert month_end_due(now=at(2025, 4, 1, 7, 20)) == [(tenant_a.pk, "2025-03"), (tenant_b.pk, "2025-03")]
    invoice_generate_and_finalize(client=tenant_a, period_start=MARCH, finalize=True)
    assert month_end_due(now=at(2025, 4, 1, 7, 20)) == [(tenant_b.pk, "2025-03")]


def test_margin_report_from_the_finalised_invoice(tenant_a, default_card):
    usage_ingest(march_usage(tenant_a))
    live = margin_report(client=tenant_a, period_start=MARCH)
    invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)
    report = margin_report(client=tenant_a, period_start=MARCH)
    assert report.source == "invoice INV-000001" and live.source == "live rating"
    assert [(r.metric, r.dimension, r.revenue, r.cost) for r in report.rows] == [
        ("call_seconds_inbound", "", D("0.80"), D("0")),
        ("call_seconds_outbound", "", D("0.36"), D("0")),
        ("llm_input_tokens", "gpt-4o", D("0.12"), D("0.10")),
        ("qa_runs", "", D("0.00"), D("0")),
        ("tts_characters", "", D("0.90"), D("0")),
        ("", "", D("49.00"), D("0")),
    ]
    assert (report.revenue, report.cost, report.margin) == (D("51.18"), D("0.10"), D("51.08"))
    assert (live.revenue, live.cost) == (report.revenue, report.cost)
    assert report.rows[2].margin_percent == D("16.7")


def test_admin_margins_page_and_pdf_download(client, agency_owner, tenant_a, default_card, media):
    usage_ingest(march_usage(tenant_a))
    invoice = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)
    from apps.billing.services import invoice_render_documents

    invoice_render_documents(invoice_id=invoice.pk)
    client.force_login(agency_owner)
    page = client.get("/admin/billing/invoice/margins/?period=2025-03", HTTP_HOST="localhost")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Acme Dental" in html and "invoice INV-000001" in html and "51.18 USD" in html and "51.08" in html
    pdf = client.get(f"/admin/billing/invoice/{invoice.pk}/download/pdf/", HTTP_HOST="localhost")
    assert (pdf.status_code, pdf["Content-Type"]) == (200, "application/pdf")
    assert b"".join(pdf.streaming_content)[:5] == b"%PDF-"
    listing = client.get("/admin/billing/invoice/", HTTP_HOST="localhost")
    assert listing.status_code == 200 and "INV-000001" in listing.content.decode()


def test_portal_lists_own_invoices_and_refuses_others(client, tenant_a, tenant_b, default_card, media):
    a = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)
    b = invoice_generate_and_finalize(client=tenant_b, period_start=MARCH)
    from apps.billing.services import invoice_render_documents

    invoice_render_documents(invoice_id=a.pk)
    invoice_render_documents(invoice_id=b.pk)
    assert (
        client.login(username="admin@acme.test", password=PASSWORD)
        or client.post(
            "/login/", {"username": "admin@acme.test", "password": PASSWORD}, HTTP_HOST="acme.localhost"
        ).status_code
        == 302
    )
    page = client.get("/billing/invoices/", HTTP_HOST="acme.localhost")
    assert page.status_code == 200
    html = page.content.decode()
    assert a.number in html and b.number not in html
    own = client.get(f"/billing/invoices/{a.pk}/pdf/", HTTP_HOST="acme.localhost")
    assert own.status_code == 200
    other = client.get(f"/billing/invoices/{b.pk}/pdf/", HTTP_HOST="acme.localhost")
    assert other.status_code == 404
    assert date(2025, 3, 1) == a.period_start


def test_invoice_document_shows_agency_branding_and_client_billing_details(tenant_a, default_card):
    from django.template.loader import render_to_string

    from apps.billing.services.documents import invoice_document_context
    from apps.tenancy.models import AgencySettings

    agency = AgencySettings.load()
    agency.name, agency.address, agency.primary_color = "Northwind Voice", "1 Harbour St\nBristol", "#0f766e"
    agency.save()
    tenant_a.billing_name, tenant_a.billing_address, tenant_a.tax_id = "Acme Dental Ltd", "9 Molar Rd", "GB123"
    tenant_a.save()
    usage_ingest(march_usage(tenant_a))
    invoice = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH)
    tenant_a.billing_name = "Renamed later"  # the invoice keeps the details it was issued with
    tenant_a.save()
    invoice.refresh_from_db()
    html = render_to_string("billing/invoice_pdf.html", invoice_document_context(invoice))
    for text in (
        "Northwind Voice",
        "1 Harbour St",
        "#0f766e",
        "Acme Dental Ltd",
        "9 Molar Rd",
        "Tax ID: GB123",
        "INV-000001",
        "51.18 USD",
        "5.12 USD",
        "56.30 USD",
        "Tax (10%)",
        "Included allowance",
        "-1.00",
    ):
        assert text in html, text
    assert "Renamed later" not in html


def test_admin_credit_note_and_void_pages(client, agency_owner, tenant_a, default_card):
    usage_ingest(march_usage(tenant_a))
    invoice = invoice_generate_and_finalize(client=tenant_a, period_start=MARCH, finalize=True)
    client.force_login(agency_owner)
    url = f"/admin/billing/invoice/{invoice.pk}/credit-note/"
    refused = client.post(url, {"amount": "60", "reason": "too much"}, HTTP_HOST="localhost")
    assert refused.status_code == 200 and "exceeds what is left to credit" in refused.content.decode()
    assert Invoice.objects.filter(kind="credit_note").count() == 0
    done = client.post(url, {"amount": "5", "reason": "outage"}, HTTP_HOST="localhost")
    assert done.status_code == 302
    note = Invoice.objects.get(kind="credit_note")
    assert (note.number, note.total, note.credit_note_for_id) == ("CN-000001", D("-5.50"), invoice.pk)
    voided = client.post(f"/admin/billing/invoice/{invoice.pk}/void/", {"reason": "wrong month"}, HTTP_HOST="localhost")
    assert voided.status_code == 302
    assert Invoice.objects.get(pk=invoice.pk).status == "void"
    page = client.get(f"/admin/billing/invoice/{invoice.pk}/change/", HTTP_HOST="localhost")
    assert page.status_code == 200


def test_month_end_is_scheduled_in_celery_beat(db):
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    task = PeriodicTask.objects.get(name="billing: month-end invoices")
    assert (task.task, task.enabled, task.crontab.minute, task.crontab.hour, task.crontab.day_of_month) == (
        "billing.month_end",
        True,
        "20",
        "*",
        "1,2",
    )
    app.loader.import_default_modules()
    assert {"billing.month_end", "billing.invoice_generate", "billing.invoice_push_to_stripe"} <= set(app.tasks)


def test_admin_generates_a_month_with_progress(client, agency_owner, tenant_a, tenant_b, default_card, media,
                                                 celery_eager):
    usage_ingest(march_usage(tenant_a))
    client.force_login(agency_owner)
    listing = client.get("/admin/billing/invoice/", HTTP_HOST="localhost").content.decode()
    assert '<a href="/admin/billing/invoice/generate/">Generate invoices</a>' in listing
    refused = client.post("/admin/billing/invoice/generate/", {"period": "March", "finalize": "on"},
                          HTTP_HOST="localhost")
    assert refused.status_code == 200 and "Use YYYY-MM, e.g. 2026-11." in refused.content.decode()
    assert Invoice.objects.count() == 0

    response = client.post("/admin/billing/invoice/generate/", {"period": "2025-03", "finalize": "on"},
                           HTTP_HOST="localhost")
    assert (response.status_code, response["Location"]) == (302, "/admin/billing/invoice/generate/2025-03/")
    page = client.get(response["Location"], HTTP_HOST="localhost").content.decode()
    assert "Invoices for 2025-03: 2 of 2 done" in page
    assert '<progress value="2" max="2"' in page and 'http-equiv="refresh"' not in page
    assert page.count('class="generate-documents"') == 2
    assert "56.30 USD" in page and "53.90 USD" in page
    assert sorted(Invoice.objects.values_list("number", "status")) == [
        ("INV-000001", "finalised"), ("INV-000002", "finalised")]


def test_generation_progress_shows_waiting_and_failed_clients(client, agency_owner, tenant_a, tenant_b,
                                                              default_card, media, celery_eager):
    from apps.billing.tasks import invoice_generate_task

    client.force_login(agency_owner)
    page = client.get("/admin/billing/invoice/generate/2025-03/", HTTP_HOST="localhost").content.decode()
    assert "0 of 2 done" in page and page.count('class="generate-waiting"') == 2
    assert '<meta http-equiv="refresh" content="2">' in page  # keeps refreshing until every client is done

    assert invoice_generate_task(tenant_a.pk, "2024-12", True) is None  # before any rate card was in force
    page = client.get("/admin/billing/invoice/generate/2024-12/", HTTP_HOST="localhost").content.decode()
    assert "1 of 2 done" in page and page.count('class="generate-failed"') == 1
    assert "failed: No rate card applies to Acme Dental for 2024-12" in page
    assert not Invoice.objects.exclude(status="draft").exists()
    assert client.get("/admin/billing/invoice/generate/2025-13/", HTTP_HOST="localhost").status_code == 404
