import threading
from decimal import Decimal as D

import pytest
from django.db import connections

from apps.billing.models import UsageEvent
from apps.billing.services import UsageEventIn, usage_ingest, usage_record_call
from apps.billing.testing import truncate_billing_tables
from apps.billing.tests.conftest import at, event
from apps.core.errors import ApplicationError


def stored(client):
    return list(
        UsageEvent.objects.filter(client=client)
        .order_by("idempotency_key")
        .values_list("idempotency_key", "metric", "dimension", "quantity", "unit", "provider", "provider_cost")
    )


def test_record_call_stores_one_row_per_component_and_resending_is_a_no_op(
    tenant_a, django_capture_on_commit_callbacks
):
    events = [
        UsageEventIn(metric="call_seconds_inbound", quantity=D("73.4"), provider="twilio"),
        UsageEventIn(
            metric="llm_input_tokens",
            dimension="gpt-4o-mini",
            quantity=5123,
            provider="openai",
            provider_cost=D("0.00077"),
        ),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert usage_record_call(client=tenant_a, call_id="call-1", events=events, ended_at=at(2025, 3, 3, 10)) == 2
        assert usage_record_call(client=tenant_a, call_id="call-1", events=events, ended_at=at(2025, 3, 3, 10)) == 0
    assert stored(tenant_a) == [
        ("call-1:call_seconds_inbound:", "call_seconds_inbound", "", D("73.400000"), "second", "twilio", D("0E-8")),
        (
            "call-1:llm_input_tokens:gpt-4o-mini",
            "llm_input_tokens",
            "gpt-4o-mini",
            D("5123.000000"),
            "token",
            "openai",
            D("0.00077000"),
        ),
    ]
    assert set(UsageEvent.objects.values_list("occurred_at", flat=True)) == {at(2025, 3, 3, 10)}


def test_duplicates_inside_one_batch_are_stored_once(tenant_a, tenant_b):
    batch = [event(tenant_a, 7, "clip_plays", 1, at(2025, 3, 1))] * 3 + [
        event(tenant_b, 7, "clip_plays", 1, at(2025, 3, 1))
    ]
    assert usage_ingest(batch) == 2  # same key for two clients is two events
    assert UsageEvent.objects.count() == 2


def test_large_batch_goes_through_copy_with_the_same_rules(tenant_a):
    from apps.billing.services.usage import COPY_THRESHOLD

    batch = [
        event(
            tenant_a,
            f"c{i % 1500}",
            "tts_characters",
            i % 1500,
            at(2025, 3, 1),
            provider_cost=D("0.001"),
            properties={"n": i % 1500},
        )
        for i in range(3000)
    ]
    assert len(batch) > COPY_THRESHOLD
    assert usage_ingest(batch) == 1500  # every event twice in the batch
    assert usage_ingest(batch) == 0
    assert UsageEvent.objects.filter(client=tenant_a).count() == 1500
    row = UsageEvent.objects.get(client=tenant_a, call_id="c7")
    assert (row.quantity, row.unit, row.provider_cost, row.provider_cost_currency, row.properties) == (
        D("7.000000"),
        "character",
        D("0.00100000"),
        "USD",
        {"n": 7},
    )
    bad = [
        *batch[:1200],
        UsageEventIn(client_id=tenant_a.pk, call_id="x", metric="nope", quantity=1, occurred_at=at(2025, 3, 1)),
    ]
    with pytest.raises(ApplicationError):
        usage_ingest(bad)
    assert UsageEvent.objects.filter(client=tenant_a).count() == 1500


@pytest.mark.parametrize(
    "bad",
    [
        {"metric": "call_minutes", "quantity": 1},
        {"metric": "clip_plays", "quantity": -1},
        {"metric": "clip_plays", "quantity": 0.5},  # float refused
        {"metric": "clip_plays", "quantity": "abc"},
    ],
)
def test_invalid_event_refuses_the_whole_batch(tenant_a, bad):
    good = event(tenant_a, 1, "clip_plays", 1, at(2025, 3, 1))
    bad_event = UsageEventIn(client_id=tenant_a.pk, call_id="2", occurred_at=at(2025, 3, 1), **bad)
    with pytest.raises(ApplicationError):
        usage_ingest([good, bad_event])
    assert UsageEvent.objects.count() == 0


def test_naive_time_and_missing_key_are_refused(tenant_a):
    from datetime import datetime

    with pytest.raises(ApplicationError):
        usage_ingest(
            [
                UsageEventIn(
                    client_id=tenant_a.pk, call_id="1", metric="qa_runs", quantity=1, occurred_at=datetime(2025, 3, 1)
                )
            ]
        )
    with pytest.raises(ApplicationError):
        usage_ingest([UsageEventIn(client_id=tenant_a.pk, metric="qa_runs", quantity=1, occurred_at=at(2025, 3, 1))])
    assert UsageEvent.objects.count() == 0


def test_ledger_is_append_only(tenant_a):
    usage_ingest([event(tenant_a, 1, "qa_runs", 1, at(2025, 3, 1))])
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        UsageEvent.objects.filter(client=tenant_a).update(quantity=D("5"))
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageEvent.objects.filter(client=tenant_a).delete()
    assert stored(tenant_a)[0][3] == D("1.000000")


@pytest.fixture
def clean_ledger(committed_db):
    yield
    truncate_billing_tables("billing_usageevent")


@pytest.mark.parametrize("shared_count", [400, 1500])  # unnest path and COPY path
def test_concurrent_duplicate_ingestion_counts_each_event_once(clean_ledger, shared_count):
    """8 threads, each with its own PostgreSQL connection, send the same events
    (plus 50 of their own) at the same instant."""
    from apps.tenancy.models import Client

    client = Client.objects.get(slug="acme")
    shared = [event(client, f"c{i}", "call_seconds_inbound", 30, at(2025, 3, 1, 12)) for i in range(shared_count)]
    threads, results, errors = [], [], []
    barrier = threading.Barrier(8)

    def worker(n):
        try:
            own = [event(client, f"t{n}-{i}", "qa_runs", 1, at(2025, 3, 1, 12)) for i in range(50)]
            batch = shared + own
            barrier.wait()
            results.append(usage_ingest(batch))
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    for n in range(8):
        threads.append(threading.Thread(target=worker, args=(n,)))
        threads[-1].start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(results) == shared_count + 8 * 50
    assert UsageEvent.objects.filter(client=client).count() == shared_count + 400
    assert UsageEvent.objects.filter(client=client, metric="call_seconds_inbound").count() == shared_count


def test_record_call_retries_store_the_same_events_once_and_meter_them_once(tenant_a):
    """The call runtime's outbox may deliver a call's usage several times (worker
    killed, task redelivered), with or without the original end time."""
    from apps.billing.models import UsageMeter

    events = [
        UsageEventIn(metric="call_seconds_inbound", quantity=D("61"), provider="twilio"),
        UsageEventIn(metric="llm_output_tokens", dimension="gpt-4o-mini", quantity=812, provider_cost=D("0.0005")),
        UsageEventIn(metric="qa_runs", quantity=1, idempotency_key="qa:call-9"),
    ]
    assert usage_record_call(client=tenant_a, call_id="call-9", events=events, ended_at=at(2025, 3, 3, 10)) == 3
    first = stored(tenant_a)
    assert usage_record_call(client=tenant_a, call_id="call-9", events=events, ended_at=at(2025, 3, 3, 10)) == 0
    assert usage_record_call(client=tenant_a, call_id="call-9", events=events) == 0  # no end time: still the same
    assert usage_record_call(client=tenant_a, call_id="call-9", events=events[:1] * 2) == 0  # identical twice
    assert stored(tenant_a) == first
    assert set(UsageEvent.objects.values_list("occurred_at", flat=True)) == {at(2025, 3, 3, 10)}
    assert sorted(UsageMeter.objects.filter(client=tenant_a).values_list("metric", "events", "quantity")) == [
        ("call_seconds_inbound", 1, D("61.000000")),
        ("llm_output_tokens", 1, D("812.000000")),
        ("qa_runs", 1, D("1.000000")),
    ]


def test_record_call_refuses_two_different_events_under_one_key(tenant_a):
    events = [
        UsageEventIn(metric="llm_input_tokens", dimension="gpt-4o", quantity=100),
        UsageEventIn(metric="llm_input_tokens", dimension="gpt-4o", quantity=250),  # a second turn, same key
    ]
    with pytest.raises(ApplicationError, match="share the key 'c:llm_input_tokens:gpt-4o'"):
        usage_record_call(client=tenant_a, call_id="c", events=events, ended_at=at(2025, 3, 3))
    assert UsageEvent.objects.count() == 0
