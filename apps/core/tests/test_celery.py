"""Celery against the real Redis broker: tasks run inside the schema of the
client that sent them, and beat schedules stored in SQL fire."""
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_tenants.utils import schema_context, tenant_context

from apps.core.tasks import schema_probe
from config.celery import app


@pytest.fixture(scope="module")
def celery_worker_thread(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"):
            yield


def _wait_for_cache(key: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cache.get(key)
        if value is not None:
            return value
        time.sleep(0.05)
    return None


def test_task_sent_from_a_client_schema_runs_in_that_schema(committed_db, celery_worker_thread, tenant_a, tenant_b):
    markers = {}
    for tenant in (tenant_a, tenant_b):
        marker = uuid.uuid4().hex
        with tenant_context(tenant):
            schema_probe.delay(marker)
        markers[tenant.schema_name] = marker
    public_marker = uuid.uuid4().hex
    schema_probe.delay(public_marker)

    assert _wait_for_cache(f"schema-probe:{public_marker}") == "public"
    for schema, marker in markers.items():
        # The cache key is tenant-prefixed (django_tenants.cache.make_key): read it from that schema.
        with schema_context(schema):
            assert _wait_for_cache(f"schema-probe:{marker}") == schema


def test_beat_schedule_is_stored_in_sql_and_fires(committed_db, celery_worker_thread):
    from tenant_schemas_celery.db_scheduler import TenantAwareDatabaseScheduler

    marker = uuid.uuid4().hex
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.create(
        name=f"probe-{marker}", task="core.schema_probe", interval=interval, args=f'["{marker}"]'
    )
    try:
        stored = PeriodicTask.objects.get(name=f"probe-{marker}")
        assert (stored.task, stored.interval.every, stored.enabled) == ("core.schema_probe", 1, True)

        scheduler = TenantAwareDatabaseScheduler(app=app, lazy=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and cache.get(f"schema-probe:{marker}") is None:
            scheduler.tick()
            time.sleep(0.2)
        assert _wait_for_cache(f"schema-probe:{marker}") == "public"
        scheduler.sync()  # beat writes run counts back on its own sync interval; force it here
        assert PeriodicTask.objects.get(pk=task.pk).total_run_count >= 1
    finally:
        PeriodicTask.objects.filter(pk=task.pk).delete()


def test_beat_schedule_stored_in_a_client_schema_fires_in_that_schema(committed_db, celery_worker_thread):
    from tenant_schemas_celery.db_scheduler import TenantAwareDatabaseScheduler

    from apps.tenancy.models import Client

    # Celery's Django fixup in the in-thread worker closes the database socket it
    # finds at worker start; start this test on a fresh connection.
    connection.close()
    tenant_a = Client.objects.get(slug="acme")
    marker = uuid.uuid4().hex
    with tenant_context(tenant_a):
        interval, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
        task = PeriodicTask.objects.create(
            name=f"probe-{marker}", task="core.schema_probe", interval=interval, args=f'["{marker}"]'
        )
    try:
        scheduler = TenantAwareDatabaseScheduler(app=app, lazy=False)
        with schema_context("acme"):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and cache.get(f"schema-probe:{marker}") is None:
                scheduler.tick()
                time.sleep(0.2)
            assert _wait_for_cache(f"schema-probe:{marker}") == "acme"
    finally:
        with tenant_context(tenant_a):
            PeriodicTask.objects.filter(pk=task.pk).delete()
