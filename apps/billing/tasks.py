"""Billing tasks: doors that take primitive ids, call one service and are safe to
run twice (state guards + unique keys live in the services). Transient failures
(storage, SMTP, a retryable Stripe error) retry with exponential backoff."""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from apps.billing.periods import format_period, parse_period, period_bounds, period_containing, previous_period
from apps.core.errors import ApplicationError, ProviderError

logger = logging.getLogger(__name__)

# Late usage (a call that ended at 23:59:58) gets this long to arrive before the month is invoiced.
MONTH_END_GRACE = timedelta(minutes=15)


class TransientError(Exception):
    """A failure worth retrying (a vendor said so, or the network / storage hiccuped)."""


# Storage backends raise OSError subclasses (and botocore's connection errors are
# ConnectionError / OSError); SMTP failures are SMTPException or OSError.
RETRY = {"retry_backoff": True, "retry_backoff_max": 600, "retry_jitter": True}


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


@shared_task(
    name="billing.invoice_generate",
    autoretry_for=(TransientError, ConnectionError),
    max_retries=5,
    **RETRY,
)
def invoice_generate_task(client_id: int, period: str, finalize: bool = True) -> int | None:
    """Generate (and finalise) one client's month. The finalisation enqueues the
    documents and the Stripe push on commit; a finalised invoice that still lacks
    its PDF (a worker killed between commit and enqueue) gets them enqueued again."""
    from apps.billing.selectors import invoice_generation_failure_key
    from apps.billing.services import invoice_generate_and_finalize
    from apps.billing.services.invoices import invoice_enqueue_after_finalize
    from apps.tenancy.models import Client

    client = Client.objects.get(pk=client_id)
    failure_key = invoice_generation_failure_key(client_id=client_id, period=period)
    try:
        invoice = invoice_generate_and_finalize(client=client, period_start=parse_period(period), finalize=finalize)
    except ApplicationError as exc:
        logger.error("invoice for %s %s not generated: %s", client.slug, period, exc.message)
        cache.set(failure_key, exc.message, 7 * 24 * 3600)  # the admin's progress page shows it
        return None
    cache.delete(failure_key)
    if finalize and not invoice.is_draft and not invoice.pdf:
        invoice_enqueue_after_finalize(invoice_id=invoice.pk, kind=invoice.kind)
    return invoice.pk


@shared_task(
    name="billing.invoice_render_documents",
    autoretry_for=(OSError, ConnectionError),
    max_retries=5,
    **RETRY,
)
def invoice_render_documents_task(invoice_id: int, force: bool = False) -> str:
    """PDF (WeasyPrint) + usage CSV into storage. Idempotent (services.invoice_render_documents)."""
    from apps.billing.models import Invoice
    from apps.billing.services import invoice_render_documents

    try:
        invoice = invoice_render_documents(invoice_id=invoice_id, force=force)
    except Invoice.DoesNotExist:
        logger.error("documents of invoice %s not rendered: no such invoice", invoice_id)
        return ""
    except ApplicationError as exc:
        logger.error("documents of invoice %s not rendered: %s", invoice_id, exc.message)
        return ""
    return invoice.pdf.name


@shared_task(name="billing.invoice_push_to_stripe", autoretry_for=(TransientError,), max_retries=8, **RETRY)
def invoice_push_to_stripe_task(invoice_id: int) -> str | None:
    """Idempotent: Stripe idempotency keys derived from our ids + the stored hosted URL as a state guard."""
    from apps.billing.models import Invoice
    from apps.billing.services.stripe_sync import invoice_push_to_stripe

    try:
        invoice = invoice_push_to_stripe(invoice_id=invoice_id)
    except Invoice.DoesNotExist:
        logger.error("stripe push of invoice %s: no such invoice", invoice_id)
        return None
    except ProviderError as exc:
        if exc.retryable:
            raise TransientError(exc.message) from exc
        logger.error("stripe push of invoice %s failed for good: %s", invoice_id, exc.message)
        return None
    except ApplicationError as exc:
        logger.error("stripe push of invoice %s refused: %s", invoice_id, exc.message)
        return None
    return invoice.stripe_invoice_id if invoice else None


@shared_task(name="billing.cap_check", autoretry_for=(ConnectionError,), max_retries=3, **RETRY)
def cap_check_task(client_id: int) -> str | None:
    """After usage lands. Idempotent: one CapAlert per (client, period, level)."""
    from apps.billing.services import cap_check_after_usage

    alert = cap_check_after_usage(client_id=client_id)
    return alert.level if alert else None


@shared_task(
    name="billing.cap_alert_notify",
    autoretry_for=(smtplib.SMTPException, OSError),
    max_retries=6,
    **RETRY,
)
def cap_alert_notify_task(alert_id: int) -> bool:
    """Email agency staff about a cap alert. Idempotent: CapAlert.notified_at."""
    from apps.billing.services.caps import cap_alert_notify

    return cap_alert_notify(alert_id=alert_id)
