"""One owner of a call's life: stream start (capability, answer, keys), the end with
its usage outbox, the heartbeat and the sweeper."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.billing.models import UsageEvent
from apps.calls.models import Call, CallUsage
from apps.calls.services import (
    call_create_inbound,
    call_heartbeat,
    call_stream_end,
    call_stream_start,
    call_sweep,
    call_usage_ship,
)
from apps.calls.stream_tokens import stream_token_mint
from apps.core.errors import NotFound, PermissionDenied
from apps.providers.models import ProviderAccount
from apps.providers.services import provider_key_in_use, provider_key_lease

pytestmark = pytest.mark.usefixtures("clean_leases")


def _statements(queries) -> list[str]:
    """The queries that do work: not the test's savepoints (BEGIN/COMMIT outside tests) nor the schema switch."""
    return [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "SET search_path"))]


def _start(tenant, call, *, token=None, carrier_call_id=None):
    return call_stream_start(
        client=tenant, call_id=str(call.pk), stream_id="MZ-1",
        carrier_call_id=call.carrier_call_id if carrier_call_id is None else carrier_call_id,
        token=stream_token_mint(schema=tenant.schema_name, call_id=str(call.pk)) if token is None else token,
    )


def test_stream_start_answers_leases_and_records_keys_in_a_fixed_number_of_queries(tenant_a, acme_call):
    with tenant_context(tenant_a):
        deepgram = ProviderAccount.objects.get(provider="deepgram")
        openai = ProviderAccount.objects.get(provider="openai")
        with CaptureQueriesContext(connection) as queries:
            started = _start(tenant_a, acme_call)
        # lock + version, the agent's clips, the own keys of deepgram and of openai (piper needs none), the
        # Langfuse projects the call's trace may go to (apps.observability), the update, then another openai key
        # to fail over to (own keys, agency keys)
        assert len(_statements(queries)) == 8, _statements(queries)
        assert started.runtime.llm_standby is None  # the client has one openai key
        assert started.failure == ""
        assert (started.runtime.stt.key_id, started.runtime.llm.key_id, started.runtime.tts.key_id) == (
            str(deepgram.pk), str(openai.pk), None)
        assert started.runtime.stt.api_key == "dg-key"
        call = Call.objects.get(pk=acme_call.pk)
        assert (call.status, call.stream_id, call.stt_key_id, call.llm_key_id, call.tts_provider) == (
            "in_progress", "MZ-1", str(deepgram.pk), str(openai.pk), "piper")
        assert call.answered_at is not None and call.last_activity_at == call.answered_at
        assert provider_key_in_use(account=deepgram) == 1


def test_a_second_key_of_the_llm_vendor_is_the_calls_standby_and_failover_moves_the_lease(tenant_a, acme_call):
    from apps.calls.services import call_key_failover

    with tenant_context(tenant_a):
        primary = ProviderAccount.objects.get(provider="openai")
        second = ProviderAccount.objects.create(provider="openai", api_key="oa-key-2")
        started = _start(tenant_a, acme_call)
        # Rotation may have given the call either key; the standby is the other one, not leased.
        leased = ProviderAccount.objects.get(pk=int(started.runtime.llm.key_id))
        other = second if leased == primary else primary
        assert (started.runtime.llm_standby.key_id, started.runtime.llm_standby.api_key) == (
            str(other.pk), other.api_key)
        assert (provider_key_in_use(account=leased), provider_key_in_use(account=other)) == (1, 0)
        assert call_key_failover(client=tenant_a, call_id=acme_call.pk, kind="llm", from_key=str(leased.pk),
                                 to_key=str(other.pk)) is True
        assert (provider_key_in_use(account=leased), provider_key_in_use(account=other)) == (0, 1)
        assert Call.objects.get(pk=acme_call.pk).llm_key_id == str(other.pk)
        other.max_concurrency = 1  # and this call holds its one slot now
        other.save()
        assert call_key_failover(client=tenant_a, call_id="another-call", kind="llm", from_key=None,
                                 to_key=str(other.pk)) is False


def test_a_second_stream_with_the_same_token_is_refused_and_changes_nothing(tenant_a, acme_call):
    with tenant_context(tenant_a):
        token = stream_token_mint(schema=tenant_a.schema_name, call_id=str(acme_call.pk))
        _start(tenant_a, acme_call, token=token)
        before = Call.objects.values().get(pk=acme_call.pk)
        with pytest.raises(PermissionDenied, match="already used"):
            call_stream_start(client=tenant_a, call_id=str(acme_call.pk), stream_id="MZ-intruder",
                              carrier_call_id=acme_call.carrier_call_id, token=token)
        assert Call.objects.values().get(pk=acme_call.pk) == before


@pytest.mark.parametrize("token", ["", None, "123t00t" + "0" * 64, "x" * 500, 42, {"a": 1}])
def test_a_stream_without_a_valid_token_is_refused(tenant_a, acme_call, token):
    with tenant_context(tenant_a):
        with pytest.raises(PermissionDenied):
            call_stream_start(client=tenant_a, call_id=str(acme_call.pk), stream_id="MZ-1",
                              carrier_call_id=acme_call.carrier_call_id, token=token)
        assert Call.objects.get(pk=acme_call.pk).status == "ringing"


def test_tokens_are_bound_to_the_call_and_the_client(tenant_a, tenant_b, acme_call):
    with tenant_context(tenant_a):
        other_call = call_create_inbound(to_number="+15550001000", from_number="+1555", carrier_call_id="CA-other")
        for token in (stream_token_mint(schema=tenant_a.schema_name, call_id=str(other_call.pk)),
                      stream_token_mint(schema=tenant_b.schema_name, call_id=str(acme_call.pk))):
            with pytest.raises(PermissionDenied, match="not for this call"):
                _start(tenant_a, acme_call, token=token)
        expired = stream_token_mint(schema=tenant_a.schema_name, call_id=str(acme_call.pk), now=0)
        with pytest.raises(PermissionDenied, match="expired"):
            _start(tenant_a, acme_call, token=expired)


def test_an_ended_call_an_unknown_call_or_another_carrier_call_is_refused(tenant_a, acme_call):
    with tenant_context(tenant_a):
        with pytest.raises(PermissionDenied, match="does not match"):
            _start(tenant_a, acme_call, carrier_call_id="CA-someone-else")
        with pytest.raises(NotFound):
            call_stream_start(client=tenant_a, call_id="not-a-uuid", stream_id="MZ", carrier_call_id="",
                              token=stream_token_mint(schema=tenant_a.schema_name, call_id="not-a-uuid"))
        call_stream_end(client=tenant_a, call_id=acme_call.pk, end_reason="caller_hung_up")
        with pytest.raises(PermissionDenied, match="not live"):
            _start(tenant_a, acme_call)


def test_every_key_busy_at_stream_start_ends_the_call_with_the_fallback_and_releases_the_leases(
    tenant_a, acme_call, django_capture_on_commit_callbacks
):
    with tenant_context(tenant_a):
        deepgram = ProviderAccount.objects.get(provider="deepgram")
        openai = ProviderAccount.objects.get(provider="openai")
        openai.max_concurrency = 1
        openai.save()
        provider_key_lease(provider="openai", call_id="another-live-call")
        with django_capture_on_commit_callbacks(execute=True):
            started = _start(tenant_a, acme_call)
        assert started.runtime is None
        assert started.failure == "Every openai key is busy or rate-limited; try again shortly."
        assert started.fallback_line == acme_call.agent_version.fallback_line
        call = Call.objects.get(pk=acme_call.pk)
        assert (call.status, call.end_reason, call.error) == ("completed", "error", started.failure)
        assert call.ended_at is not None and call.answered_at is not None
        # The STT key taken before the LLM failed is free again; the other call keeps its LLM key.
        assert provider_key_in_use(account=deepgram) == 0
        assert provider_key_in_use(account=openai) == 1


def test_call_end_writes_usage_in_its_transaction_and_the_outbox_ships_it_once(
    tenant_a, acme_call, django_capture_on_commit_callbacks, celery_eager
):
    with tenant_context(tenant_a):
        _start(tenant_a, acme_call)
        deepgram = ProviderAccount.objects.get(provider="deepgram")
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            with CaptureQueriesContext(connection) as queries:
                call_stream_end(client=tenant_a, call_id=acme_call.pk, end_reason="caller_hung_up",
                                usage={"call_seconds": 12.5, "stt_seconds": {"nova-2": 11.0}})
        # lock, save, one bulk insert of the usage rows
        assert len(_statements(queries)) == 3, _statements(queries)
        assert sorted(CallUsage.objects.filter(call_id=acme_call.pk).values_list("metric", "quantity")) == [
            ("call_seconds_inbound", Decimal("12.500")), ("carrier_seconds", Decimal("12.500")),
            ("stt_seconds", Decimal("11.000"))]
        # Nothing has reached billing inside the transaction; the leases are still held.
        assert not UsageEvent.objects.filter(call_id=str(acme_call.pk)).exists()
        assert provider_key_in_use(account=deepgram) == 1
        assert len(callbacks) == 1
        callbacks[0]()  # the commit: leases freed, ship_usage enqueued (run eagerly here)
        assert provider_key_in_use(account=deepgram) == 0
        shipped_at = Call.objects.get(pk=acme_call.pk).usage_reported_at
        assert shipped_at is not None
        # A redelivered task and the sweeper's resend change nothing.
        assert call_usage_ship(client=tenant_a, call_id=acme_call.pk) == 0
        assert Call.objects.get(pk=acme_call.pk).usage_reported_at == shipped_at
    assert sorted(UsageEvent.objects.filter(client=tenant_a, call_id=str(acme_call.pk)).values_list(
        "metric", "quantity")) == [("call_seconds_inbound", Decimal("12.500")), ("carrier_seconds", Decimal("12.500")),
                                   ("stt_seconds", Decimal("11.000"))]


def test_the_sweeper_ends_a_call_whose_process_died_at_its_last_heartbeat_and_bills_it_once(
    tenant_a, acme_call, django_capture_on_commit_callbacks, celery_eager, settings
):
    settings.CALL_LOST_AFTER_SECS = 90
    with tenant_context(tenant_a):
        _start(tenant_a, acme_call)
        answered = Call.objects.get(pk=acme_call.pk).answered_at
        call_heartbeat(call_id=acme_call.pk)
        last_beat = answered + timedelta(seconds=40)
        Call.objects.filter(pk=acme_call.pk).update(last_activity_at=last_beat)
        deepgram = ProviderAccount.objects.get(provider="deepgram")
        # Still within the window: nothing happens.
        with django_capture_on_commit_callbacks(execute=True):
            assert call_sweep(client=tenant_a, now=last_beat + timedelta(seconds=60))["lost"] == 0
        assert Call.objects.get(pk=acme_call.pk).ended_at is None
        with django_capture_on_commit_callbacks(execute=True):
            counts = call_sweep(client=tenant_a, now=last_beat + timedelta(seconds=91))
        assert counts["lost"] == 1
        call = Call.objects.get(pk=acme_call.pk)
        assert (call.end_reason, call.ended_at, call.duration_secs) == ("lost", last_beat, Decimal("40.000"))
        assert provider_key_in_use(account=deepgram) == 0
        with django_capture_on_commit_callbacks(execute=True):
            again = call_sweep(client=tenant_a, now=last_beat + timedelta(seconds=600))
        assert again == {"lost": 0, "unconnected": 0, "reshipped": 0}
    assert list(UsageEvent.objects.filter(client=tenant_a, call_id=str(acme_call.pk)).order_by("metric")
                .values_list("metric", "quantity")) == [("call_seconds_inbound", Decimal("40.000")),
                                                         ("carrier_seconds", Decimal("40.000"))]


def test_the_sweeper_ends_inbound_calls_whose_stream_never_came_and_resends_unshipped_usage(
    tenant_a, acme_call, django_capture_on_commit_callbacks, celery_eager
):
    with tenant_context(tenant_a):
        Call.objects.filter(pk=acme_call.pk).update(created_at=timezone.now() - timedelta(minutes=11))
        with django_capture_on_commit_callbacks(execute=False):  # as if the broker lost the shipment
            counts = call_sweep(client=tenant_a)
        assert counts["unconnected"] == 1
        call = Call.objects.get(pk=acme_call.pk)
        assert (call.status, call.end_reason, call.error, call.usage_reported_at) == (
            "failed", "failed", "no media stream connected for this call", None)
        later = timezone.now() + timedelta(minutes=3)
        assert call_sweep(client=tenant_a, now=later)["reshipped"] == 1
        assert Call.objects.get(pk=acme_call.pk).usage_reported_at is not None
        assert call_sweep(client=tenant_a, now=later)["reshipped"] == 0


def test_a_retried_webhook_finds_the_one_call(tenant_a, acme_call):
    with tenant_context(tenant_a):
        again = call_create_inbound(to_number="+15550001000", from_number="+15557654321",
                                    carrier_call_id=acme_call.carrier_call_id)
        assert again.pk == acme_call.pk
        assert Call.objects.filter(carrier_call_id=acme_call.carrier_call_id).count() == 1
