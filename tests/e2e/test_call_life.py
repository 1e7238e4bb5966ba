"""A call's life through real daphne when things go wrong: no provider key free at
stream start, and the web process killed in the middle of a call."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from conftest import child_env_for_test_database, run_daphne
from devtools.doubles.audio import is_silent_pcm
from devtools.doubles.twilio_caller import TwilioCaller
from devtools.simulate import fetch_twiml, simulate_call

from .conftest import ACME_NUMBER, TWILIO_SID
from .test_inbound_calls import _call, _wait_ended

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def test_every_key_busy_at_stream_start_says_the_fallback_line_and_ends_the_call(acme_line, llm, voice_server,
                                                                                twilio_rest):
    from apps.providers.models import ProviderAccount
    from apps.providers.services import provider_key_in_use, provider_key_lease, provider_key_release

    tenant = acme_line()
    with tenant_context(tenant):
        key = ProviderAccount.objects.get(provider="openai_compatible")
        key.max_concurrency = 1
        key.save()
        provider_key_lease(provider="openai_compatible", call_id="another-live-call")
    try:
        result = asyncio.run(simulate_call(server=voice_server["url"], host="acme.localhost", to_number=ACME_NUMBER,
                                           auth_token="twilio-auth-token-acme", lines=[], hang_up=False))
        call = _wait_ended(tenant, result.call_id)
        assert (call.status, call.end_reason, call.error) == (
            "completed", "error", "Every openai_compatible key is busy or rate-limited; try again shortly.")
        # The caller heard the fallback line (Piper, keyless), then the stream closed normally.
        assert result.greeting_ms is not None
        assert len(result.agent_audio_pcm) > 8000 * 2 and not is_silent_pcm(result.agent_audio_pcm)
        assert result.close_code == 1000
        assert llm.requests == []  # no vendor was asked anything
        with tenant_context(tenant):
            assert provider_key_in_use(account=key) == 1  # only the other call's lease
    finally:
        with tenant_context(tenant):
            provider_key_release(account_id=key.pk, call_id="another-live-call")


def test_a_call_whose_web_process_was_killed_is_ended_lost_and_billed_once(
    acme_line, llm, voice_server, twilio_rest, tmp_path, settings, celery_eager, django_db_blocker
):
    from apps.billing.models import UsageEvent
    from apps.calls.models import Call
    from apps.calls.services import call_sweep
    from apps.providers.models import ProviderAccount
    from apps.providers.services import provider_key_in_use

    tenant = acme_line()
    with django_db_blocker.unblock():
        env = child_env_for_test_database()
    env.update(CALL_HEARTBEAT_SECS="0.3", TWILIO_API_BASE_URL=twilio_rest.url, LOG_LEVEL="WARNING")

    async def answer_then_die(server) -> str:
        port = int(server["url"].rsplit(":", 1)[1])
        call_sid = "CA-killed-" + str(time.time_ns())
        stream_url, parameters = await fetch_twiml(
            server=server["url"], host="acme.localhost", to_number=ACME_NUMBER, from_number="+15557654321",
            auth_token="twilio-auth-token-acme", account_sid=TWILIO_SID, call_sid=call_sid)
        caller = TwilioCaller(stream_url, call_sid=call_sid, custom_parameters=parameters,
                              connect_to=("127.0.0.1", port))
        await caller.connect()
        await caller.wait_for_agent_audio(timeout=15)  # the greeting: the call is live
        await asyncio.sleep(1.0)  # a few heartbeats
        server["process"].kill()  # SIGKILL: no wind-down, no call_end
        await caller.wait_closed(timeout=10)
        return parameters["call_id"]

    with run_daphne(env, tmp_path / "daphne-killed.log") as server:
        call_id = asyncio.run(answer_then_die(server))

    with tenant_context(tenant):
        live = Call.objects.get(pk=call_id)
        assert live.ended_at is None and live.answered_at is not None
        last_beat = live.last_activity_at
        assert last_beat is not None and last_beat > live.answered_at  # the heartbeat ran
        key = ProviderAccount.objects.get(provider="openai_compatible")
        assert provider_key_in_use(account=key) == 1  # the dead call still holds its lease
        settings.CALL_LOST_AFTER_SECS = 1
        time.sleep(1.2)
        assert call_sweep(client=tenant)["lost"] == 1
        assert call_sweep(client=tenant)["lost"] == 0
        assert provider_key_in_use(account=key) == 0
    call = _call(tenant, call_id)
    expected_secs = Decimal(str((last_beat - call.answered_at).total_seconds())).quantize(Decimal("0.001"))
    assert (call.end_reason, call.ended_at, call.duration_secs) == ("lost", last_beat, expected_secs)
    billed = sorted(UsageEvent.objects.filter(client=tenant, call_id=call_id).values_list("metric", "quantity"))
    assert billed == [("call_seconds_inbound", expected_secs), ("carrier_seconds", expected_secs)]


def test_a_throttled_llm_key_moves_the_call_to_another_key_and_the_call_goes_on(acme_line, llm, voice_server,
                                                                               twilio_rest):
    from apps.providers.models import ProviderAccount
    from apps.providers.services import _redis
    from devtools.doubles.openai_server import Rule

    from .test_inbound_calls import _simulate, _turns

    tenant = acme_line()
    with tenant_context(tenant):
        first = ProviderAccount.objects.get(provider="openai_compatible")
        second = ProviderAccount.objects.create(provider="openai_compatible", api_key="sk-second",
                                                base_url=first.base_url)
    # Rotation from the start: STT takes the first key, the LLM the second, TTS the first again.
    for key in _redis().scan_iter("sb:provider-rotation:acme:*"):
        _redis().delete(key)
    llm.rules.insert(0, Rule(when="who is this", status=429, api_key="sk-second",
                             headers={"retry-after": "30", "retry-after-ms": "10"}))
    result = _simulate(voice_server, "hello.wav")
    call = _wait_ended(tenant, result.call_id)

    assert (call.end_reason, call.error) == ("caller_hung_up", "")
    assert call.llm_key_id == str(first.pk)  # the call moved off the throttled key
    chats = [(r["api_key"], r["user_text"]) for r in llm.requests_of("chat")]
    assert chats[0][0] == "sk-second" and chats[-1][0] == "sk-double"
    assert all("who is this" in text.lower() for _, text in chats)  # the same turn, asked again
    assert _turns(call)[-1][2] == "This is Acme Dental."  # the caller got the real answer
    assert result.lines[0].voice_to_voice_ms is not None
    assert any("moved to key" in turn.errors for turn in call.turn_rows)
    with tenant_context(tenant):
        second.refresh_from_db()
        assert second.cooldown_until is not None  # throttled keys cool down for the next calls too
