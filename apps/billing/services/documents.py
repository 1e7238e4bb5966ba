"""Invoice documents: the PDF (WeasyPrint) and the usage CSV, written to the
default storage (local files or S3 via django-storages)."""

from __future__ import annotations

import base64
import logging
import mimetypes
import tempfile

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.template.loader import render_to_string
from django_tenants.utils import schema_context

from apps.billing.models import BillingSettings, Invoice
from apps.billing.money import format_money, format_rate, minor_unit_exponent
from apps.billing.periods import format_period, period_last_day

# WeasyPrint's font subsetting logs every glyph at INFO.
logging.getLogger("fontTools").setLevel(logging.WARNING)
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


def _logo_data_uri(agency) -> str:
    """Embed the logo so rendering never fetches anything over the network."""
    if not agency.logo:
        return agency.logo_url or ""
    try:
        with agency.logo.open("rb") as handle:
            data = handle.read()
    except (FileNotFoundError, OSError):
        return ""
    mime = mimetypes.guess_type(agency.logo.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _fmt_quantity(value) -> str:
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return text or "0"


def invoice_document_context(invoice: Invoice) -> dict:
    from apps.tenancy.models import AgencySettings

    with schema_context("public"):
        agency = AgencySettings.load()
        billing = BillingSettings.load()
    currency = invoice.currency
    places = minor_unit_exponent(currency)
    lines = [
        {
            "description": line.description,
            "quantity": _fmt_quantity(line.quantity),
            "unit": line.unit,
            "unit_price": "" if line.unit_price is None else format_rate(line.unit_price),
            "amount": f"{line.amount:,.{places}f}",
            "kind": line.kind,
        }
        for line in invoice.lines.all()
    ]
    snapshot = invoice.billing_snapshot or {}
    return {
        "invoice": invoice,
        "agency": agency,
        "logo_src": _logo_data_uri(agency),
        "billing": billing,
        "client_billing": snapshot,
        "period_label": format_period(invoice.period_start),
        "period_last_day": period_last_day(invoice.period_start),
        "lines": lines,
        "subtotal": format_money(invoice.subtotal, currency),
        "tax": format_money(invoice.tax, currency),
        "total": format_money(invoice.total, currency),
        "tax_rate": format_rate(invoice.tax_rate_percent),
        "title": "Credit note" if invoice.kind == Invoice.Kind.CREDIT_NOTE else "Invoice",
    }


def render_invoice_pdf_bytes(invoice: Invoice) -> bytes:
    from weasyprint import HTML

    html = render_to_string("billing/invoice_pdf.html", invoice_document_context(invoice))
    return HTML(string=html, base_url=None).write_pdf()


def render_invoice_pdf(invoice: Invoice) -> str:
    name = f"billing/invoices/{invoice.client.slug}/{invoice.number}.pdf"
    return default_storage.save(name, ContentFile(render_invoice_pdf_bytes(invoice)))


USAGE_CSV_COLUMNS = (
    "occurred_at",
    "call_id",
    "metric",
    "dimension",
    "quantity",
    "unit",
    "provider",
    "provider_cost",
    "provider_cost_currency",
    "idempotency_key",
)


def write_usage_csv(invoice: Invoice) -> str:
    """Every ledger row the invoice bills -- its month's rows up to its watermark
    id, plus the late rows of earlier months it carries -- streamed by PostgreSQL
    COPY (no Python loop over rows) into a temp file, then saved to storage.
    Provider cost columns are internal: the client-facing CSV leaves them out."""
    from apps.billing.periods import period_bounds
    from apps.billing.selectors import LateWindow

    columns = [c for c in USAGE_CSV_COLUMNS if not c.startswith("provider_cost")]
    own = "(occurred_at >= %s AND occurred_at < %s" + (" AND id <= %s)" if invoice.usage_through_id is not None else ")")
    parts, params = [own], [invoice.starts_at, invoice.ends_at]
    if invoice.usage_through_id is not None:
        params.append(invoice.usage_through_id)
    for window in map(LateWindow.from_json, invoice.late_usage_windows or []):
        starts_at, ends_at = period_bounds(window.period_start, invoice.client.timezone)
        parts.append("(occurred_at >= %s AND occurred_at < %s AND id > %s AND id <= %s)")
        params += [starts_at, ends_at, window.after_id, window.through_id]
    sql = (
        f"COPY (SELECT {', '.join(columns)} FROM public.billing_usageevent "
        f"WHERE client_id = %s AND ({' OR '.join(parts)}) ORDER BY occurred_at, id) "
        "TO STDOUT WITH (FORMAT csv, HEADER true)"
    )
    with tempfile.TemporaryFile() as spool:
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor
            with raw.copy(sql, [invoice.client_id, *params]) as copy:
                for chunk in copy:
                    spool.write(chunk)
        spool.seek(0)
        name = f"billing/usage/{invoice.client.slug}/{invoice.number or invoice.pk}-usage.csv"
        return default_storage.save(name, File(spool, name=name))
