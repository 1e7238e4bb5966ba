"""Webhook tasks: doors that take primitive ids and call one service; safe to run twice.

- `webhooks.deliver` (tenant): one attempt of one delivery; schedules its own retry.
- `webhooks.sweep` (beat, every minute, public): per client, re-enqueue due deliveries
  (a worker died mid-request, a retry message was lost).
- `webhooks.call_started`, `webhooks.invoice_finalized`, `webhooks.cap_reached`: build
  and emit one event each (the call path and billing only enqueue them).

The `*_later` functions are what other apps' on-commit hooks call: they enqueue and
never raise (a broker outage must not break a call or an invoice)."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import connection
from django_tenants.utils import schema_context

logger = logging.getLogger(__name__)


def _in_client_schema(task_name: str, subject) -> object | None:
    """The Client the task runs for (a real row: eager runs carry only a stand-in tenant)."""
    from apps.tenancy.selectors import client_list

    client = None
    if connection.schema_name != "public":
        client = client_list().filter(schema_name=connection.schema_name).first()
    if client is None:
        logger.warning("%s for %s sent outside a client schema; ignored", task_name, subject)
    return client


@shared_task(name="webhooks.deliver")
def deliver(delivery_id: int) -> str:
    from apps.webhooks.services import webhook_delivery_attempt

    if _in_client_schema("webhooks.deliver", delivery_id) is None:
        return "skipped"
    outcome = webhook_delivery_attempt(delivery_id=int(delivery_id))
    if outcome.status == "retry":
        deliver.apply_async((delivery_id,), countdown=outcome.retry_in_secs)
    return outcome.status


@shared_task(name="webhooks.sweep")
def sweep() -> int:
    from apps.core.tasks import in_every_client
    from apps.webhooks.services import webhook_deliveries_requeue_due

    return sum(in_every_client(lambda client: webhook_deliveries_requeue_due(), what="webhook sweep"))


@shared_task(name="webhooks.call_started", autoretry_for=(Exception,), retry_backoff=5, max_retries=5)
def call_started(call_id: str) -> None:
    from apps.webhooks.services import webhook_call_started_emit

    client = _in_client_schema("webhooks.call_started", call_id)
    if client is not None:
        webhook_call_started_emit(client=client, call_id=call_id)


@shared_task(name="webhooks.invoice_finalized", autoretry_for=(Exception,), retry_backoff=5, max_retries=8)
def invoice_finalized(invoice_id: int) -> None:
    from apps.webhooks.services import webhook_invoice_finalized_emit

    webhook_invoice_finalized_emit(invoice_id=int(invoice_id))


@shared_task(name="webhooks.cap_reached", autoretry_for=(Exception,), retry_backoff=5, max_retries=8)
def cap_reached(cap_alert_id: int) -> None:
    from apps.webhooks.services import webhook_cap_reached_emit

    webhook_cap_reached_emit(cap_alert_id=int(cap_alert_id))


def _send_later(task, *args, schema: str | None = None) -> None:
    try:
        if schema:
            with schema_context(schema):
                task.delay(*args)
        else:
            task.delay(*args)
    except Exception:  # noqa: BLE001 - the broker is down: log, never break the caller
        logger.exception("could not enqueue %s%r", task.name, args)


def call_started_later(*, call_id, schema: str) -> None:
    _send_later(call_started, str(call_id), schema=schema)


def invoice_finalized_later(*, invoice_id: int) -> None:
    _send_later(invoice_finalized, invoice_id, schema="public")


def cap_reached_later(*, cap_alert_id: int) -> None:
    _send_later(cap_reached, cap_alert_id, schema="public")
