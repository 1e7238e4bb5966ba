"""Billing tasks: doors that take primitive ids, call one service and are safe to
run twice (state guards + unique keys live in the services)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from apps.billing.periods import format_period, parse_period, period_bounds, period_containing, previous_period
from apps.core.errors import ApplicationError, ProviderError

logger = logging.getLogger(__name__)

# Late usage (a call that ended at 23:59:58) gets this long to arrive before the month is invoiced.
MONTH_END_GRACE = timedelta(minutes=15)


def month_end_due(*, now=None) -> list[tuple[int, str]]:
    """(client id, period) pairs whose previous month has ended (+ grace) in the
    client's timezone and has no finalised invoice yet."""
    from apps.billing.selectors import clients_to_invoice, invoices_closed

    now = now or timezone.now()
    due = []
    for client in clients_to_invoice():
        period = previous_period(period_containing(now, client.timezone))
        if period_bounds(period, client.timezone)[1] + MONTH_END_GRACE > now:
            continue
        if not invoices_closed().filter(client=client, period_start=period).exists():
            due.append((client.pk, format_period(period)))
    return due


@shared_task(name="billing.month_end")
def billing_month_end() -> int:
    """Beat: hourly on the 1st and 2nd (every timezone's month end falls inside).
    Fans out one task per client and month still to invoice."""
    due = month_end_due()
    for client_id, period in due:
        invoice_generate_task.delay(client_id, period, True)
    return len(due)


@shared_task(name="billing.invoice_generate", bind=True, max_retries=5, default_retry_delay=60)
def invoice_generate_task(self, client_id: int, period: str, finalize: bool = True) -> int | None:
    from apps.billing.services import invoice_generate_and_finalize
    from apps.tenancy.models import Client

    client = Client.objects.get(pk=client_id)
    try:
        invoice = invoice_generate_and_finalize(client=client, period_start=parse_period(period), finalize=finalize)
    except ApplicationError as exc:
        logger.error("invoice for %s %s not generated: %s", client.slug, period, exc.message)
        return None
    if finalize:
        if not invoice.pdf:  # a worker killed between commit and rendering
            from apps.billing.services import invoice_render_documents

            invoice_render_documents(invoice_id=invoice.pk)
        invoice_push_to_stripe_task.delay(invoice.pk)
    return invoice.pk


@shared_task(name="billing.invoice_render_documents")
def invoice_render_documents_task(invoice_id: int) -> None:
    from apps.billing.services import invoice_render_documents

    invoice_render_documents(invoice_id=invoice_id)


@shared_task(name="billing.invoice_push_to_stripe", bind=True, max_retries=8, default_retry_delay=120)
def invoice_push_to_stripe_task(self, invoice_id: int) -> str | None:
    from apps.billing.services.stripe_sync import invoice_push_to_stripe

    try:
        invoice = invoice_push_to_stripe(invoice_id=invoice_id)
    except ProviderError as exc:
        if exc.retryable:
            raise self.retry(exc=exc) from exc
        logger.error("stripe push of invoice %s failed for good: %s", invoice_id, exc.message)
        return None
    return invoice.stripe_invoice_id if invoice else None


@shared_task(name="billing.cap_check")
def cap_check_task(client_id: int) -> None:
    from apps.billing.services import cap_check_after_usage

    cap_check_after_usage(client_id=client_id)
