"""Invoice lifecycle: draft -> finalised (numbered, immutable) -> sent -> paid | void.
Corrections after finalisation are credit notes, never edits.

Every function here is safe to run twice and under concurrency: the invoice row is
locked with SELECT ... FOR UPDATE before any change and each transition checks the
current state (a state guard), so a retried or duplicated task is a no-op.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.billing.models import BillingSettings, DocumentSequence, Invoice, InvoiceLine
from apps.billing.money import ZERO, quantize
from apps.billing.periods import period_bounds
from apps.billing.pricing import Line, LineKind, totals_for
from apps.billing.selectors import (
    LedgerIds,
    carried_ranges,
    invoice_for_period,
    late_usage_lines,
    late_usage_windows,
    period_rate,
)
from apps.core.errors import ApplicationError
from apps.tenancy.audit import CURRENT, INVOICE_STATUS_EVENTS, audit_log_record

logger = logging.getLogger(__name__)

Status = Invoice.Status


def _save_lines(invoice: Invoice, lines) -> None:
    InvoiceLine.objects.filter(invoice=invoice).delete()
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice,
                position=position,
                kind=str(line.kind),
                metric=line.metric,
                dimension=line.dimension,
                description=line.description[:300],
                quantity=line.quantity,
                unit=line.unit,
                unit_price=line.unit_price,
                amount=line.amount,
                provider_cost=line.provider_cost,
            )
            for position, line in enumerate(lines, start=1)
        ]
    )


def invoice_generate(*, client, period_start: date, now=None) -> Invoice:
    """Create or refresh the draft invoice of `client` for the month `period_start`.

    Idempotent: re-running replaces a draft's lines with a fresh rating of the
    ledger and returns a finalised (or later) invoice untouched. Refuses periods
    that have not ended yet in the client's timezone.

    Late usage is never dropped: the invoice bills its month's ledger rows up to a
    watermark id (`usage_through_id`); rows of an invoiced month stored later are
    carried into the next invoice generated for the client as dated lines
    ("Usage from November 2026: ..."), priced by their own month's rate card
    (selectors.late_usage_lines), and recorded in `late_usage_windows`.
    """
    now = now or timezone.now()
    period_start = period_start.replace(day=1)
    starts_at, ends_at = period_bounds(period_start, client.timezone)
    if ends_at > now:
        raise ApplicationError(
            f"{period_start:%Y-%m} has not ended yet for {client.name} (ends {ends_at:%Y-%m-%d %H:%M} UTC); "
            "generate it after the month is over.",
            details={"client": client.slug, "period": f"{period_start:%Y-%m}"},
        )
    invoice = invoice_for_period(client=client, period_start=period_start)
    if invoice is None:
        try:
            with transaction.atomic():
                invoice = Invoice.objects.create(
                    client=client,
                    period_start=period_start,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    currency=client.currency,
                )
        except IntegrityError:
            # Another worker created it a moment ago (unique live invoice per period).
            invoice = invoice_for_period(client=client, period_start=period_start)
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if not invoice.is_draft:
            return invoice
        through_id = _ledger_watermark(client_id=client.pk)
        rating = period_rate(
            client=client,
            period_start=period_start,
            ids=LedgerIds(
                through_id=through_id, excluded=carried_ranges(client_id=client.pk, period_start=period_start)
            ),
        )
        windows = late_usage_windows(
            client=client, period_start=period_start, through_id=through_id, invoice_id=invoice.pk
        )
        late_lines = late_usage_lines(client=client, windows=windows, currency=rating.rated.currency)
        rated = totals_for(
            lines=[*rating.rated.lines, *late_lines],
            currency=rating.rated.currency,
            tax_rate_percent=rating.rated.tax_rate_percent,
        )
        _save_lines(invoice, rated.lines)
        invoice.usage_through_id = through_id
        invoice.late_usage_windows = [window.as_json() for window in windows]
        invoice.currency = rated.currency
        invoice.subtotal = rated.subtotal
        invoice.tax_label = rating.card.terms.tax_label
        invoice.tax_rate_percent = rated.tax_rate_percent
        invoice.tax = rated.tax
        invoice.total = rated.total
        invoice.provider_cost = rated.provider_cost
        invoice.rate_card = rating.card.client_card
        invoice.default_rate_card = rating.card.default_card
        invoice.save()
    return invoice


def _ledger_watermark(*, client_id: int) -> int:
    """The ledger id up to which this invoice bills its month.

    Read under the client's ledger lock, held exclusively only for this read
    (ingestion holds it shared from its INSERT to its commit): at that moment no
    row of the client is in flight, so every row with an id up to the one read is
    committed and visible to the rating that follows (READ COMMITTED), and every
    row inserted later gets a larger sequence value. No row can fall between this
    invoice and the late usage of the next one, and call-end ingestion waits only
    for this one read, not for the rating."""
    from apps.billing.services.usage import LEDGER_LOCK_CLASS

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [LEDGER_LOCK_CLASS, client_id])
        try:
            cursor.execute("SELECT COALESCE(max(id), 0) FROM public.billing_usageevent")
            return cursor.fetchone()[0]
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [LEDGER_LOCK_CLASS, client_id])


def _next_number(kind: str) -> str:
    """Gap-free: lock the sequence row and bump it in the caller's transaction."""
    settings_row = BillingSettings.load()
    name = "credit_note" if kind == Invoice.Kind.CREDIT_NOTE else "invoice"
    prefix = settings_row.credit_note_prefix if name == "credit_note" else settings_row.invoice_prefix
    DocumentSequence.objects.get_or_create(name=name)
    sequence = DocumentSequence.objects.select_for_update().get(name=name)
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    return f"{prefix}{sequence.last_value:06d}"


def _billing_snapshot(client) -> dict:
    return {
        "name": client.billing_name or client.name,
        "email": client.billing_email or client.contact_email,
        "address": client.billing_address,
        "tax_id": client.tax_id,
        "timezone": str(client.timezone),
    }


def invoice_finalize(*, invoice_id: int, render_documents: bool = True) -> Invoice:
    """Number a draft and freeze it. Already finalised (or later): returned unchanged.
    The PDF and the usage CSV are rendered after the commit (they can be re-rendered
    from the frozen rows; a failure there never un-finalises the invoice)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("client").get(pk=invoice_id)
        if not invoice.is_draft:
            return invoice
        settings_row = BillingSettings.load()
        invoice.number = _next_number(invoice.kind)
        invoice.status = Status.FINALISED
        invoice.finalised_at = timezone.now()
        invoice.due_on = timezone.localdate(invoice.finalised_at) + timedelta(days=settings_row.payment_terms_days)
        invoice.billing_snapshot = _billing_snapshot(invoice.client)
        invoice.save()
        audit_log_record(actor=CURRENT, client=invoice.client, event_type="invoice_finalised", target=invoice, changes={"status": {"before": Status.DRAFT, "after": invoice.status}, "number": {"before": "", "after": invoice.number}})
        if render_documents:
            transaction.on_commit(lambda: invoice_enqueue_after_finalize(invoice_id=invoice.pk, kind=invoice.kind))
        from apps.webhooks.tasks import invoice_finalized_later  # the client's invoice.finalized webhook

        transaction.on_commit(lambda: invoice_finalized_later(invoice_id=invoice.pk), robust=True)
    return invoice


def invoice_enqueue_after_finalize(*, invoice_id: int, kind: str) -> None:
    """After the commit of a finalisation: the PDF + CSV and (invoices, when Stripe
    is enabled) the Stripe push are Celery tasks, never work on the caller's path.
    Both tasks are idempotent, so a duplicate enqueue is harmless."""
    from apps.billing.tasks import invoice_push_to_stripe_task, invoice_render_documents_task

    try:
        invoice_render_documents_task.delay(invoice_id)
        if kind == Invoice.Kind.INVOICE and BillingSettings.load().stripe_enabled:
            invoice_push_to_stripe_task.delay(invoice_id)
    except Exception:  # noqa: BLE001 - the invoice is final; the month-end run re-enqueues what is missing
        logger.exception("could not enqueue documents / Stripe push of invoice %s", invoice_id)


def invoice_render_documents(*, invoice_id: int, force: bool = False) -> Invoice:
    """Render the PDF and usage CSV of a finalised invoice into storage.

    Idempotent: without `force` only missing documents are rendered, and each is
    recorded with a conditional UPDATE (only while the column is still empty), so
    of two runs racing, one stores its file and the other deletes its copy."""
    from django.core.files.storage import default_storage

    from apps.billing.services.documents import render_invoice_pdf, write_usage_csv

    invoice = Invoice.objects.select_related("client").get(pk=invoice_id)
    if invoice.is_draft:
        raise ApplicationError("Drafts have no PDF: finalise the invoice first.")
    renderers = [("pdf", render_invoice_pdf)]
    if invoice.kind == Invoice.Kind.INVOICE:
        renderers.append(("usage_csv", write_usage_csv))
    for field_name, render in renderers:
        current = getattr(invoice, field_name)
        if current and not force:
            continue
        name = render(invoice)
        expected = current.name if force else ""
        stored = Invoice.objects.filter(pk=invoice.pk, **{field_name: expected}).update(**{field_name: name})
        if stored:
            setattr(invoice, field_name, name)
        else:
            default_storage.delete(name)  # another run got there first
            invoice.refresh_from_db(fields=[field_name])
    return invoice


def _transition(invoice_id: int, allowed_from: set[str], to: str, **fields) -> Invoice:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status == to:
            return invoice  # replay
        if invoice.status not in allowed_from:
            raise ApplicationError(
                f"Invoice {invoice} is {invoice.status}; it cannot become {to}.",
                details={"status": invoice.status, "wanted": to},
                status_code=409,
            )
        audit_log_record(actor=CURRENT, client=invoice.client_id, event_type=INVOICE_STATUS_EVENTS[to], target=invoice, changes={"status": {"before": invoice.status, "after": to}, **{name: {"before": getattr(invoice, name), "after": value} for name, value in fields.items()}})
        invoice.status = to
        for name, value in fields.items():
            setattr(invoice, name, value)
        invoice.save(update_fields=["status", "updated_at", *fields])
    return invoice


def invoice_mark_sent(*, invoice_id: int) -> Invoice:
    return _transition(invoice_id, {Status.FINALISED}, Status.SENT, sent_at=timezone.now())


def invoice_mark_paid(*, invoice_id: int, paid_at=None) -> Invoice:
    return _transition(invoice_id, {Status.FINALISED, Status.SENT}, Status.PAID, paid_at=paid_at or timezone.now())


def invoice_mark_payment_failed(*, invoice_id: int) -> Invoice:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status in (Status.FINALISED, Status.SENT):
            invoice.payment_failed_at = timezone.now()
            invoice.save(update_fields=["payment_failed_at", "updated_at"])
    return invoice


def invoice_void(*, invoice_id: int, reason: str) -> Invoice:
    """Void a finalised / sent invoice (keeps its number; the period can then be
    invoiced again). Paid invoices are corrected with a credit note instead."""
    if not reason.strip():
        raise ApplicationError("Say why the invoice is voided.")
    return _transition(
        invoice_id, {Status.FINALISED, Status.SENT}, Status.VOID, voided_at=timezone.now(), reason=reason
    )


def invoice_discard_draft(*, invoice_id: int) -> None:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if not invoice.is_draft:
            raise ApplicationError("Only drafts can be discarded; void or credit a finalised invoice.", status_code=409)
        invoice.delete()


def credit_note_create(*, invoice_id: int, amount: Decimal, reason: str, finalize: bool = True) -> Invoice:
    """A credit note against a finalised invoice: one negative line of `amount`
    (pre-tax, positive number), taxed at the invoice's rate. The credited total
    can never exceed what the invoice charged."""
    if amount <= 0:
        raise ApplicationError("Credit amount must be positive.")
    if not reason.strip():
        raise ApplicationError("Say why the credit is given.")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("client").get(pk=invoice_id)
        if invoice.kind != Invoice.Kind.INVOICE or invoice.status in (Status.DRAFT, Status.VOID):
            raise ApplicationError("Credit notes apply to finalised invoices only.", status_code=409)
        amount = quantize(amount, invoice.currency)
        already = sum(
            (note.subtotal for note in invoice.credit_notes.exclude(status=Status.VOID)), ZERO
        )  # negative numbers
        if amount > invoice.subtotal + already:
            raise ApplicationError(
                f"Credit of {amount} exceeds what is left to credit ({invoice.subtotal + already}).",
                details={"invoice": invoice.number},
            )
        line = Line(
            kind=LineKind.CREDIT,
            description=f"Credit for {invoice.number}: {reason}"[:300],
            quantity=Decimal(1),
            unit="",
            unit_price=None,
            amount=-amount,
        )
        rated = totals_for(lines=[line], currency=invoice.currency, tax_rate_percent=invoice.tax_rate_percent)
        note = Invoice.objects.create(
            client=invoice.client,
            kind=Invoice.Kind.CREDIT_NOTE,
            period_start=invoice.period_start,
            starts_at=invoice.starts_at,
            ends_at=invoice.ends_at,
            currency=invoice.currency,
            subtotal=rated.subtotal,
            tax_label=invoice.tax_label,
            tax_rate_percent=invoice.tax_rate_percent,
            tax=rated.tax,
            total=rated.total,
            credit_note_for=invoice,
            reason=reason,
        )
        _save_lines(note, rated.lines)
        audit_log_record(actor=CURRENT, client=invoice.client, event_type="invoice_credited", target=invoice, changes={"credit_note": {"before": None, "after": note.pk}, "credited": {"before": None, "after": amount}})
    if finalize:
        note = invoice_finalize(invoice_id=note.pk)
    return note


def invoice_generate_and_finalize(*, client, period_start: date, finalize: bool = True) -> Invoice:
    invoice = invoice_generate(client=client, period_start=period_start)
    if finalize and invoice.is_draft:
        invoice = invoice_finalize(invoice_id=invoice.pk)
    return invoice
