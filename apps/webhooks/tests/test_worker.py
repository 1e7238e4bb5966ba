"""Deliveries through a real Celery worker process (the Procfile's `celery -A config
worker`) against the test database and Redis: retries until the receiver takes it,
and a worker killed (SIGKILL) mid-request loses nothing and sends nothing under a
new id once another worker runs the sweep."""
import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection, transaction
from django_tenants.utils import tenant_context
from standardwebhooks import Webhook

from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from apps.webhooks.services import webhook_endpoint_create, webhook_event_emit
from conftest import BASE_DIR, child_env_for_test_database
from devtools.doubles.webhook_receiver import WebhookReceiver


@contextlib.contextmanager
def worker_process(env: dict, log_path):
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
             "--without-mingle", "--without-gossip", "--hostname", f"webhooks-test-{time.monotonic_ns()}@%h"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


@pytest.fixture
def worker_env(committed_db):
    env = child_env_for_test_database()
    env.update(WEBHOOK_ALLOW_PRIVATE_URLS="1", WEBHOOK_RETRY_BASE_SECS="0.5", WEBHOOK_MAX_ATTEMPTS="5")
    return env


@pytest.fixture
def acme(committed_db, settings):
    from apps.tenancy.models import Client

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    connection.close()  # start on a fresh connection (a worker fixture may have closed it)
    client = Client.objects.get(slug="acme")
    yield client
    with tenant_context(client):
        WebhookEvent.objects.all().delete()
        WebhookEndpoint.objects.all().delete()


def wait_until(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def delivery_state(client, delivery_id):
    with tenant_context(client):
        return WebhookDelivery.objects.get(pk=delivery_id)


def emit(client, url: str):
    with tenant_context(client):
        endpoint = webhook_endpoint_create(url=url, events=["call.ended"])
        with transaction.atomic():  # the deliveries are enqueued when this commits
            event = webhook_event_emit(event_type="call.ended", data={"call_id": "worker-test"})
        return endpoint, WebhookDelivery.objects.get(event=event)


def test_a_worker_retries_until_the_receiver_takes_it(acme, worker_env, tmp_path):
    with WebhookReceiver(statuses=[500, 502]) as receiver, worker_process(worker_env, tmp_path / "worker.log"):
        endpoint, delivery = emit(acme, receiver.url)
        assert wait_until(lambda: delivery_state(acme, delivery.pk).status == "succeeded"), \
            (tmp_path / "worker.log").read_text()[-3000:]
        with tenant_context(acme):
            log = list(WebhookAttempt.objects.filter(delivery_id=delivery.pk).values_list("number", "status_code"))
    assert log == [(1, 500), (2, 502), (3, 200)]
    assert [request.headers["webhook-id"] for request in receiver.requests] == [delivery.message_id] * 3
    for request in receiver.requests:
        assert Webhook(endpoint.secret).verify(request.body, request.headers)["data"] == {"call_id": "worker-test"}


def test_a_worker_killed_mid_delivery_loses_nothing_and_the_retry_keeps_the_id(acme, worker_env, tmp_path):
    from apps.webhooks.tasks import sweep

    log_path = tmp_path / "worker.log"
    with WebhookReceiver(hold_first=True) as receiver:
        with worker_process(worker_env, log_path) as first_worker:
            endpoint, delivery = emit(acme, receiver.url)
            assert receiver.wait_held(60), log_path.read_text()[-3000:]
            os.kill(first_worker.pid, signal.SIGKILL)  # mid-request: the receiver has not answered
            first_worker.wait(10)
        receiver.release()
        # The killed attempt left the row as it was: still due, nothing logged, not delivered.
        assert wait_until(lambda: delivery_state(acme, delivery.pk).attempts == 0, 10)
        state = delivery_state(acme, delivery.pk)
        assert (state.status, state.attempts, state.delivered_at) == ("pending", 0, None)
        with worker_process(worker_env, log_path):
            sweep.delay()  # beat's job: re-enqueue due deliveries of every client
            assert wait_until(lambda: delivery_state(acme, delivery.pk).status == "succeeded"), log_path.read_text()[-3000:]
    state = delivery_state(acme, delivery.pk)
    assert (state.status, state.attempts, state.last_status_code) == ("succeeded", 1, 200)
    assert len(receiver.requests) == 2
    assert [request.headers["webhook-id"] for request in receiver.requests] == [delivery.message_id] * 2
    assert receiver.requests[0].body == receiver.requests[1].body
    with tenant_context(acme):
        assert list(WebhookAttempt.objects.filter(delivery_id=delivery.pk).values_list("number", "status_code")) == [(1, 200)]
        assert WebhookDelivery.objects.filter(event_id=delivery.event_id).count() == 1
    assert Webhook(endpoint.secret).verify(receiver.requests[1].body, receiver.requests[1].headers)
