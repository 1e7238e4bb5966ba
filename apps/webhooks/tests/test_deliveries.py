"""Webhooks out against a local receiver over real HTTP: Standard Webhooks signatures
checked with the `standardwebhooks` reference code, retries with backoff, the dead
letter, replay, subscriptions, once-only events."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from apps.core.errors import ApplicationError
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from apps.webhooks.services import (
    webhook_backoff_secs,
    webhook_delivery_attempt,
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_event_emit,
)
from devtools.doubles.webhook_receiver import WebhookReceiver


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_RETRY_BASE_SECS = 60.0
    settings.WEBHOOK_MAX_ATTEMPTS = 3


def verify(endpoint, request) -> dict:
    """What a client does: the reference implementation, the endpoint's secret."""
    return Webhook(endpoint.secret).verify(request.body, request.headers)


def test_signature_verifies_with_the_reference_code_and_fails_when_tampered(tenant_a):
    with WebhookReceiver() as receiver, tenant_context(tenant_a):
        endpoint = webhook_endpoint_create(url=receiver.url, events=["call.started"])
        event = webhook_event_emit(event_type="call.started", data={"call_id": "c-1", "from": "+1555"})
        delivery = WebhookDelivery.objects.get(event=event)
        assert webhook_delivery_attempt(delivery_id=delivery.pk).status == "succeeded"
        [request] = receiver.requests
        assert verify(endpoint, request) == {"type": "call.started", "timestamp": event.created_at.isoformat(),
                                             "data": {"call_id": "c-1", "from": "+1555"}}
        assert request.headers["webhook-id"] == delivery.message_id
        assert request.headers["webhook-signature"].startswith("v1,")
        assert endpoint.secret.startswith("whsec_")
        with pytest.raises(WebhookVerificationError):
            Webhook(endpoint.secret).verify(request.body.replace(b"c-1", b"c-2"), request.headers)
        other = webhook_endpoint_create(url=receiver.url, events=["call.started"])
        with pytest.raises(WebhookVerificationError):
            verify(other, request)


def test_fails_twice_then_succeeds_with_backoff_and_one_webhook_id(tenant_a):
    with WebhookReceiver(statuses=[500, 503]) as receiver, tenant_context(tenant_a):
        endpoint = webhook_endpoint_create(url=receiver.url, events=["qa.completed"])
        event = webhook_event_emit(event_type="qa.completed", data={"score": 7})
        delivery = WebhookDelivery.objects.get(event=event)
        before = timezone.now()
        first = webhook_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert (first.status, delivery.status, delivery.attempts, delivery.last_status_code) == ("retry", "pending", 1, 500)
        # Equal jitter: between half the step and the step (base 60 s after the first failure).
        assert 30 <= first.retry_in_secs <= 60
        assert before + timedelta(seconds=30) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=60)
        # Not due yet: a duplicate task does nothing.
        assert webhook_delivery_attempt(delivery_id=delivery.pk).status == "skipped"
        assert len(receiver.requests) == 1
        second = webhook_delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
        assert second.status == "retry" and 60 <= second.retry_in_secs <= 120
        delivery.refresh_from_db()
        third = webhook_delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
        delivery.refresh_from_db()
        assert (third.status, delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", "succeeded", 3, 200)
        assert delivery.delivered_at is not None
        log = list(WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "status_code", "error"))
        assert log == [(1, 500, "HTTP 500"), (2, 503, "HTTP 503"), (3, 200, "")]
        assert all(ms is not None for ms in WebhookAttempt.objects.filter(delivery=delivery).values_list("response_ms", flat=True))
        assert [request.headers["webhook-id"] for request in receiver.requests] == [delivery.message_id] * 3
        assert [verify(endpoint, request)["data"] for request in receiver.requests] == [{"score": 7}] * 3
        # Done: another attempt sends nothing.
        assert webhook_delivery_attempt(delivery_id=delivery.pk).status == "skipped"
        assert len(receiver.requests) == 3


def test_backoff_grows_and_is_capped(settings):
    settings.WEBHOOK_RETRY_BASE_SECS, settings.WEBHOOK_RETRY_MAX_SECS = 10.0, 100.0
    for attempts, (low, high) in {1: (5, 10), 2: (10, 20), 3: (20, 40), 4: (40, 80), 5: (50, 100), 9: (50, 100)}.items():
        draws = [webhook_backoff_secs(attempts) for _ in range(50)]
        assert low <= min(draws) and max(draws) <= high, attempts
        assert len(set(draws)) > 1  # jittered


def test_dead_letter_after_max_attempts_then_replay_with_the_same_id(tenant_a):
    with WebhookReceiver(statuses=[500, 500, 500]) as receiver, tenant_context(tenant_a):
        endpoint = webhook_endpoint_create(url=receiver.url, events=["call.ended"])
        event = webhook_event_emit(event_type="call.ended", data={"call_id": "c-9"})
        delivery = WebhookDelivery.objects.get(event=event)
        outcomes = []
        for _ in range(3):
            delivery.refresh_from_db()
            outcomes.append(webhook_delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at).status)
        delivery.refresh_from_db()
        assert outcomes == ["retry", "retry", "dead"]
        assert (delivery.status, delivery.attempts) == ("dead", 3)
        far_future = timezone.now() + timedelta(days=30)
        assert webhook_delivery_attempt(delivery_id=delivery.pk, now=far_future).status == "skipped"
        assert len(receiver.requests) == 3
        replayed = webhook_delivery_replay(delivery_id=delivery.pk)
        assert (replayed.status, replayed.attempts, replayed.message_id) == ("pending", 0, delivery.message_id)
        assert webhook_delivery_attempt(delivery_id=delivery.pk).status == "succeeded"
        log = list(WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "status_code", "replay"))
        assert log == [(1, 500, False), (2, 500, False), (3, 500, False), (4, 200, True)]
        assert {request.headers["webhook-id"] for request in receiver.requests} == {delivery.message_id}
        assert verify(endpoint, receiver.requests[-1])["data"] == {"call_id": "c-9"}


def test_only_active_subscribed_endpoints_get_a_delivery_and_a_deduped_event_is_stored_once(tenant_a):
    with tenant_context(tenant_a):
        ended = webhook_endpoint_create(url="http://127.0.0.1:9/a", events=["call.ended", "qa.completed"])
        qa_only = webhook_endpoint_create(url="http://127.0.0.1:9/b", events=["qa.completed"])
        disabled = webhook_endpoint_create(url="http://127.0.0.1:9/c", events=["call.ended"])
        WebhookEndpoint.objects.filter(pk=disabled.pk).update(is_active=False)
        first = webhook_event_emit(event_type="call.ended", data={"n": 1}, dedupe_key="call.ended:x")
        again = webhook_event_emit(event_type="call.ended", data={"n": 2}, dedupe_key="call.ended:x")
        assert again.pk == first.pk and again.data == {"n": 1}
        assert WebhookEvent.objects.filter(dedupe_key="call.ended:x").count() == 1
        assert list(WebhookDelivery.objects.filter(event=first).values_list("endpoint_id", flat=True)) == [ended.pk]
        qa = webhook_event_emit(event_type="qa.completed", data={})
        assert sorted(WebhookDelivery.objects.filter(event=qa).values_list("endpoint_id", flat=True)) == [ended.pk, qa_only.pk]
        message_ids = list(WebhookDelivery.objects.values_list("message_id", flat=True))
        assert len(set(message_ids)) == len(message_ids)


@pytest.mark.parametrize("url, events, message", [
    ("ftp://example.com/x", ["call.ended"], "must start with http:// or https://"),
    ("https://example.com/x", ["call.exploded"], "Unknown event call.exploded"),
    ("https://example.com/x", [], "Pick at least one event"),
])
def test_bad_endpoints_are_refused(tenant_a, url, events, message):
    with tenant_context(tenant_a):
        with pytest.raises(ApplicationError) as raised:
            webhook_endpoint_create(url=url, events=events)
        assert message in raised.value.message
        assert not WebhookEndpoint.objects.exists()


def test_private_addresses_are_refused_unless_allowed(tenant_a, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with tenant_context(tenant_a):
        for url in ("http://127.0.0.1:8000/hook", "http://10.1.2.3/hook", "http://[::1]/hook", "http://169.254.169.254/"):
            with pytest.raises(ApplicationError) as raised:
                webhook_endpoint_create(url=url, events=["call.ended"])
            assert "private or local address" in raised.value.message
        assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_that_turned_private_is_not_called(tenant_a, settings):
    with WebhookReceiver() as receiver, tenant_context(tenant_a):
        webhook_endpoint_create(url=receiver.url, events=["call.started"])
        event = webhook_event_emit(event_type="call.started", data={})
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        delivery = WebhookDelivery.objects.get(event=event)
        assert webhook_delivery_attempt(delivery_id=delivery.pk).status == "retry"
        delivery.refresh_from_db()
        assert "private or local address" in delivery.last_error and receiver.requests == []


def test_body_is_the_same_bytes_on_every_attempt(tenant_a):
    with WebhookReceiver(statuses=[500]) as receiver, tenant_context(tenant_a):
        webhook_endpoint_create(url=receiver.url, events=["usage.cap_reached"])
        event = webhook_event_emit(event_type="usage.cap_reached", data={"level": "soft", "reasons": ["90%"]})
        delivery = WebhookDelivery.objects.get(event=event)
        webhook_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        webhook_delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
        assert receiver.requests[0].body == receiver.requests[1].body == event.body().encode()
        assert json.loads(receiver.requests[0].body)["type"] == "usage.cap_reached"
