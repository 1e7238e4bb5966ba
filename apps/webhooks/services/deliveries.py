"""Webhooks out: endpoints, events, deliveries (tenant schema).

A delivery row is the state: `webhooks.deliver` (a door) calls
`webhook_delivery_attempt`, which locks the row (SKIP LOCKED: a second copy of the
task walks away), posts the signed body, logs the attempt and either marks it
succeeded, schedules the next attempt (exponential backoff with jitter) or
dead-letters it after WEBHOOK_MAX_ATTEMPTS. A worker killed mid-request rolls its
transaction back, so the row is still due; the beat sweep (`webhooks.sweep`)
re-enqueues due rows, and the retry carries the same `webhook-id`.

Signatures follow Standard Webhooks (the `standardwebhooks` package signs):
`webhook-id`, `webhook-timestamp` (the attempt's time) and
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`."""
from __future__ import annotations

import base64
import ipaddress
import logging
import random
import secrets
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlparse

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from standardwebhooks import Webhook

from apps.core.errors import ApplicationError, NotFound
from apps.webhooks.events import EVENT_TYPES
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger(__name__)

USER_AGENT = "Switchboard-Webhooks/1"


def _setting(name: str, default):
    return getattr(settings, name, default)


# --- endpoints -----------------------------------------------------------------------------------------------


def webhook_secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_url_check(url: str) -> None:
    """http(s) only; unless WEBHOOK_ALLOW_PRIVATE_URLS, the host must resolve to public
    addresses only (no loopback, private, link-local: the platform's own network)."""
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ApplicationError("A webhook URL must start with http:// or https:// and name a host.",
                               details={"field": "url"})
    if _setting("WEBHOOK_ALLOW_PRIVATE_URLS", False):
        return
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        raise ApplicationError(f"{parsed.hostname} does not resolve: check the URL.", details={"field": "url"}) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            raise ApplicationError(f"{parsed.hostname} is a private or local address; webhooks go to public hosts.",
                                   details={"field": "url", "address": str(address)})


def _events_check(events) -> list[str]:
    if not isinstance(events, (list, tuple)) or not events:
        raise ApplicationError("Pick at least one event.", details={"field": "events"})
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise ApplicationError(f"Unknown event {', '.join(unknown)}; choose from {', '.join(EVENT_TYPES)}.",
                               details={"field": "events", "unknown": unknown})
    return [name for name in EVENT_TYPES if name in events]


@transaction.atomic
def webhook_endpoint_create(*, url: str, events: list[str], description: str = "") -> WebhookEndpoint:
    webhook_url_check(url)
    return WebhookEndpoint.objects.create(url=url, events=_events_check(events), description=description[:200],
                                          secret=webhook_secret_new())


@transaction.atomic
def webhook_endpoint_update(*, endpoint_id: int, url: str, events: list[str], description: str = "",
                            is_active: bool = True) -> WebhookEndpoint:
    endpoint = _endpoint_for_update(endpoint_id)
    webhook_url_check(url)
    endpoint.url, endpoint.events = url, _events_check(events)
    endpoint.description, endpoint.is_active = description[:200], is_active
    endpoint.save()
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint_id: int) -> WebhookEndpoint:
    endpoint = _endpoint_for_update(endpoint_id)
    endpoint.secret = webhook_secret_new()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint_id: int) -> None:
    _endpoint_for_update(endpoint_id).delete()


def _endpoint_for_update(endpoint_id) -> WebhookEndpoint:
    try:
        return WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    except (WebhookEndpoint.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such webhook endpoint.", details={"endpoint_id": str(endpoint_id)}) from None


# --- events --------------------------------------------------------------------------------------------------


def webhook_event_emit(*, event_type: str, data: dict, dedupe_key: str = "") -> WebhookEvent:
    """Store an event and one pending delivery per active endpoint subscribed to it;
    the deliveries are enqueued once this commits. With `dedupe_key`, emitting again
    returns the stored event and delivers nothing new."""
    if event_type not in EVENT_TYPES:
        raise ApplicationError(f"Unknown webhook event {event_type!r}.", details={"event": event_type})
    with transaction.atomic():
        if dedupe_key:
            event, created = WebhookEvent.objects.get_or_create(dedupe_key=dedupe_key[:200],
                                                                defaults={"type": event_type, "data": data})
            if not created:
                return event
        else:
            event = WebhookEvent.objects.create(type=event_type, data=data)
        now = timezone.now()
        deliveries = WebhookDelivery.objects.bulk_create([
            WebhookDelivery(endpoint=endpoint, event=event, message_id=f"msg_{uuid.uuid4().hex}", next_attempt_at=now)
            for endpoint in WebhookEndpoint.objects.filter(is_active=True).order_by("id")
            if event_type in endpoint.events
        ])
        if deliveries:
            _enqueue_on_commit([delivery.pk for delivery in deliveries])
    return event


def _enqueue_on_commit(delivery_ids: list[int]) -> None:
    schema = connection.schema_name

    def enqueue():
        from apps.webhooks.tasks import deliver

        with schema_context(schema):
            for delivery_id in delivery_ids:
                deliver.delay(delivery_id)

    # robust: a broker that is down must not break the caller; the sweep sends due rows later.
    transaction.on_commit(enqueue, robust=True)


# --- deliveries ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptOutcome:
    status: str  # "succeeded" | "retry" | "dead" | "skipped" (not due, taken by another worker, gone)
    retry_in_secs: float | None = None


@dataclass(frozen=True)
class _Response:
    status_code: int | None
    response_ms: int
    error: str = ""
    excerpt: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def webhook_backoff_secs(attempts: int) -> float:
    """After the `attempts`-th failure: base·2^(attempts-1), capped, with "equal jitter"
    (half fixed, half random) so endpoints that failed together do not retry together."""
    base = float(_setting("WEBHOOK_RETRY_BASE_SECS", 30.0))
    ceiling = min(float(_setting("WEBHOOK_RETRY_MAX_SECS", 6 * 3600.0)), base * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def webhook_headers(*, secret: str, message_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
    at = at or timezone.now()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def _post(url: str, headers: dict, body: str) -> _Response:
    started = time.monotonic()
    try:
        webhook_url_check(url)  # again at send time: DNS may have changed since the endpoint was saved
        with httpx.Client(timeout=float(_setting("WEBHOOK_TIMEOUT_SECS", 10.0)), follow_redirects=False) as http:
            response = http.post(url, content=body.encode(), headers=headers)
    except ApplicationError as error:
        return _Response(None, int((time.monotonic() - started) * 1000), error.message)
    except httpx.HTTPError as error:
        return _Response(None, int((time.monotonic() - started) * 1000), f"{type(error).__name__}: {error}"[:1000])
    return _Response(response.status_code, int((time.monotonic() - started) * 1000),
                     "" if response.is_success else f"HTTP {response.status_code}", response.text[:500])


def webhook_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> AttemptOutcome:
    """One attempt of one delivery, if it is due. The row stays locked for the request
    (SKIP LOCKED keeps a duplicate task away); safe to call any number of times."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("endpoint", "event").filter(pk=delivery_id).first())
        now = now or timezone.now()
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING or delivery.next_attempt_at > now:
            return AttemptOutcome("skipped")
        endpoint = delivery.endpoint
        number = delivery.attempt_log.count() + 1
        if not endpoint.is_active:
            response = _Response(None, 0, "the endpoint is disabled")
        else:
            body = delivery.event.body()
            response = _post(endpoint.url, webhook_headers(secret=endpoint.secret, message_id=delivery.message_id,
                                                           body=body), body)
        WebhookAttempt.objects.create(
            delivery=delivery, number=number, at=now, status_code=response.status_code,
            response_ms=response.response_ms, error=response.error, response_excerpt=response.excerpt,
            replay=delivery.replayed_at is not None,
        )
        delivery.attempts += 1
        delivery.last_status_code, delivery.last_response_ms = response.status_code, response.response_ms
        delivery.last_error = response.error
        outcome = AttemptOutcome("succeeded")
        if response.ok:
            delivery.status, delivery.delivered_at = WebhookDelivery.Status.SUCCEEDED, timezone.now()
        elif not endpoint.is_active or delivery.attempts >= int(_setting("WEBHOOK_MAX_ATTEMPTS", 8)):
            delivery.status = WebhookDelivery.Status.DEAD
            outcome = AttemptOutcome("dead")
        else:
            wait = webhook_backoff_secs(delivery.attempts)
            delivery.next_attempt_at = now + timedelta(seconds=wait)
            outcome = AttemptOutcome("retry", wait)
        delivery.save()
    if outcome.status != "succeeded":
        logger.info("webhook %s to %s: %s (%s)", delivery.message_id, endpoint.url, outcome.status, response.error)
    return outcome


def webhook_delivery_replay(*, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now (a dead letter, a success the receiver lost, a retry
    not yet due), with the same webhook-id and body and a fresh attempt budget."""
    with transaction.atomic():
        try:
            delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        except (WebhookDelivery.DoesNotExist, ValueError, TypeError):
            raise NotFound("No such webhook delivery.", details={"delivery_id": str(delivery_id)}) from None
        now = timezone.now()
        delivery.status, delivery.attempts = WebhookDelivery.Status.PENDING, 0
        delivery.next_attempt_at = delivery.replayed_at = now
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "replayed_at"])
        _enqueue_on_commit([delivery.pk])
    return delivery


def webhook_deliveries_requeue_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """The sweep (per client): enqueue every pending delivery that is due, e.g. one whose
    worker died mid-request or whose retry message was lost. Duplicates are harmless."""
    from apps.webhooks.tasks import deliver

    now = now or timezone.now()
    due = list(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    for delivery_id in due:
        deliver.delay(delivery_id)
    return len(due)
