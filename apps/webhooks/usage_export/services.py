"""Usage export (public schema): the usage ledger pushed, once per event, to

- Stripe Billing meter events (`stripe` SDK; the meter event's `identifier` is
  "sb_<ledger event id>", so Stripe refuses a resend instead of counting it twice);
- a generic webhook of usage batches, signed per Standard Webhooks, for Lago /
  OpenMeter-style systems (`webhook-id` "usagebatch_<batch id>" is the same on every
  resend; each event carries its ledger idempotency key).

`usage_export_run` claims the next events no batch of that target holds yet (a NOT
EXISTS on the per-event state, so an event committed late is still picked up), sends
the batch, and marks it; a failure leaves the batch pending and the next run sends
the same batch again (resumable). One exporter per target at a time (advisory lock)."""
from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass
from decimal import Decimal

import httpx
import stripe
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from apps.core.errors import ApplicationError, ProviderError
from apps.webhooks.usage_export.models import Target, UsageExportBatch, UsageExportItem, UsageExportSettings

logger = logging.getLogger(__name__)


@dataclass
class ExportReport:
    batches: int = 0
    sent: int = 0
    skipped: int = 0
    busy: bool = False


def usage_export_settings_save(*, stripe_enabled: bool, stripe_secret_key: str = "", stripe_event_names=None,
                               webhook_enabled: bool = False, webhook_url: str = "", batch_size: int = 200,
                               export_from=None) -> UsageExportSettings:
    from apps.webhooks.services import webhook_secret_new, webhook_url_check

    if webhook_enabled:
        webhook_url_check(webhook_url)
    names = stripe_event_names or {}
    if not isinstance(names, dict) or not all(isinstance(v, str) and v for v in names.values()):
        raise ApplicationError("Stripe event names are an object of metric: event name.")
    if not 1 <= int(batch_size) <= 5000:
        raise ApplicationError("The batch size is between 1 and 5000.")
    with transaction.atomic():
        row = UsageExportSettings.objects.select_for_update().get(pk=UsageExportSettings.load().pk)
        row.stripe_enabled, row.stripe_event_names = bool(stripe_enabled), names
        if stripe_secret_key:
            row.stripe_secret_key = stripe_secret_key
        row.webhook_enabled, row.webhook_url = bool(webhook_enabled), webhook_url
        if webhook_enabled and not row.webhook_secret:
            row.webhook_secret = webhook_secret_new()
        row.batch_size, row.export_from = int(batch_size), export_from
        row.save()
    return row


def _enabled(row: UsageExportSettings, target: str) -> bool:
    return row.stripe_enabled if target == Target.STRIPE else (row.webhook_enabled and bool(row.webhook_url))


def usage_export_run(*, target: str, max_batches: int = 50) -> ExportReport:
    """Export what is not exported yet to `target`. Raises ProviderError when the
    receiver fails (the batch stays pending; run again to resume)."""
    if target not in Target.values:
        raise ApplicationError(f"Unknown export target {target!r}.")
    report = ExportReport()
    row = UsageExportSettings.load()
    if not _enabled(row, target):
        return report
    lock = zlib.crc32(f"usage_export:{target}".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock])
        if not cursor.fetchone()[0]:
            report.busy = True
            return report
    try:
        for _ in range(max_batches):
            batch = _claim_batch(target=target, row=row)
            if batch is None:
                break
            sent, skipped = (_send_stripe if target == Target.STRIPE else _send_webhook)(batch=batch, row=row)
            report.batches += 1
            report.sent += sent
            report.skipped += skipped
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock])
    return report


def _claim_batch(*, target: str, row: UsageExportSettings) -> UsageExportBatch | None:
    from apps.billing.models import UsageEvent

    pending = UsageExportBatch.objects.filter(target=target, status=UsageExportBatch.Status.PENDING).order_by("id")
    if pending.exists():
        return pending.first()
    with transaction.atomic():
        events = UsageEvent.objects.filter(
            ~Exists(UsageExportItem.objects.filter(target=target, event_id=OuterRef("pk"))))
        if row.export_from:
            events = events.filter(recorded_at__gte=row.export_from)
        event_ids = list(events.order_by("id").values_list("pk", flat=True)[: row.batch_size])
        if not event_ids:
            return None
        batch = UsageExportBatch.objects.create(target=target)
        UsageExportItem.objects.bulk_create(
            [UsageExportItem(target=target, event_id=event_id, batch=batch) for event_id in event_ids])
    return batch


def _failed(batch: UsageExportBatch, message: str, *, retryable: bool = True):
    UsageExportBatch.objects.filter(pk=batch.pk).update(attempts=batch.attempts + 1, last_error=message[:2000])
    logger.warning("usage export %s: %s", batch, message)
    return ProviderError(message, retryable=retryable, details={"batch": batch.pk})


def _done(batch: UsageExportBatch) -> None:
    UsageExportBatch.objects.filter(pk=batch.pk).update(status=UsageExportBatch.Status.SENT, sent_at=timezone.now(),
                                                        attempts=batch.attempts + 1, last_error="")


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")


# --- Stripe meter events ---------------------------------------------------------------------------------------


def _stripe(row: UsageExportSettings) -> stripe.StripeClient:
    from apps.billing.models import BillingSettings

    key = row.stripe_secret_key or BillingSettings.load().stripe_secret_key
    if not key:
        raise ApplicationError("Usage export to Stripe needs a Stripe secret key (Usage export settings).")
    base = getattr(settings, "STRIPE_API_BASE", None)
    # No SDK retries: a failed batch is resent by the next run, with the same identifiers.
    return stripe.StripeClient(key, max_network_retries=0, **({"base_addresses": {"api": base}} if base else {}))


def _send_stripe(*, batch: UsageExportBatch, row: UsageExportSettings) -> tuple[int, int]:
    from apps.billing.models import BillingAccount

    api = _stripe(row)
    items = list(batch.items.filter(status=UsageExportItem.Status.PENDING).select_related("event").order_by("id"))
    customers = dict(BillingAccount.objects.filter(client_id__in={item.event.client_id for item in items})
                     .exclude(stripe_customer_id="").values_list("client_id", "stripe_customer_id"))
    sent = skipped = 0
    for item in items:
        event = item.event
        customer = customers.get(event.client_id)
        if not customer:
            UsageExportItem.objects.filter(pk=item.pk).update(status=UsageExportItem.Status.SKIPPED,
                                                              note="the client has no Stripe customer")
            skipped += 1
            continue
        identifier = f"sb_{event.pk}"
        params = {
            "event_name": row.stripe_event_names.get(event.metric) or f"switchboard_{event.metric}",
            "payload": {"stripe_customer_id": customer, "value": _quantity(event.quantity)},
            "identifier": identifier,
            "timestamp": int(event.occurred_at.timestamp()),
        }
        try:
            # No Idempotency-Key: Stripe would replay a stored 500 for it; the identifier is what
            # Stripe dedupes meter events on, and it is the same on every resend.
            api.v1.billing.meter_events.create(params=params)
        except stripe.InvalidRequestError as error:
            if error.code != "resource_already_exists":  # Stripe already has this identifier: it counted it
                raise _failed(batch, f"Stripe refused meter event {identifier}: {error.user_message or error}",
                              retryable=False) from error
        except stripe.StripeError as error:
            raise _failed(batch, f"Stripe: {error.user_message or error}") from error
        UsageExportItem.objects.filter(pk=item.pk).update(status=UsageExportItem.Status.SENT)
        sent += 1
    _done(batch)
    return sent, skipped


# --- the generic webhook ---------------------------------------------------------------------------------------


def usage_batch_body(*, batch: UsageExportBatch) -> str:
    items = batch.items.select_related("event", "event__client").order_by("id")
    return json.dumps({
        "type": "usage.batch",
        "batch_id": batch.message_id,
        "events": [{
            "id": item.event.pk,
            "idempotency_key": f"{item.event.client.slug}:{item.event.idempotency_key}",
            "client": item.event.client.slug,
            "metric": item.event.metric,
            "dimension": item.event.dimension,
            "quantity": _quantity(item.event.quantity),
            "unit": item.event.unit,
            "provider": item.event.provider,
            "call_id": item.event.call_id or None,
            "occurred_at": item.event.occurred_at.isoformat(),
            "properties": item.event.properties,
        } for item in items],
    }, separators=(",", ":"), sort_keys=True)


def _send_webhook(*, batch: UsageExportBatch, row: UsageExportSettings) -> tuple[int, int]:
    from apps.webhooks.services import webhook_headers, webhook_url_check

    body = usage_batch_body(batch=batch)
    headers = webhook_headers(secret=row.webhook_secret, message_id=batch.message_id, body=body)
    try:
        webhook_url_check(row.webhook_url)
        with httpx.Client(timeout=float(getattr(settings, "WEBHOOK_TIMEOUT_SECS", 10.0))) as http:
            response = http.post(row.webhook_url, content=body.encode(), headers=headers)
    except ApplicationError as error:
        raise _failed(batch, error.message) from error
    except httpx.HTTPError as error:
        raise _failed(batch, f"{type(error).__name__}: {error}") from error
    if not response.is_success:
        raise _failed(batch, f"HTTP {response.status_code} from {row.webhook_url}")
    count = batch.items.update(status=UsageExportItem.Status.SENT)
    _done(batch)
    return count, 0
