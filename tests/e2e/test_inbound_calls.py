"""Whole inbound calls through real daphne: Twilio's webhook (signed), the media
websocket, the Pipecat runtime, the provider registry reaching the OpenAI double
by base_url, and the call record in the client's schema."""
from __future__ import annotations

import asyncio
import io
import json
import time
import wave
from decimal import Decimal

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django_tenants.utils import tenant_context

from devtools.doubles.audio import FIXTURES_DIR
from devtools.doubles.twilio_caller import TwilioCaller
from devtools.simulate import line_from_wav, simulate_call

from .conftest import ACME_NUMBER, GLOBEX_NUMBER, TRANSFER_TO

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def test_both_clients_exist(db):
    """Also makes pytest-django create the test database when only this module runs
    (it looks for `db`/`django_db` users; `committed_db` alone does not count)."""
    from apps.tenancy.models import Client

    assert sorted(Client.objects.filter(slug__in=["acme", "globex"]).values_list("slug", flat=True)) == [
        "acme", "globex"]


def _call(tenant, call_id):
    """Everything a test asserts about a call, read inside the client's schema."""
    from apps.calls.selectors import call_get

    with tenant_context(tenant):
        call = call_get(call_id=call_id)
        call.turn_rows = list(call.turns.order_by("index"))
        call.tool_rows = list(call.tool_calls.order_by("id"))
        call.usage_by_key = {(u.metric, u.dimension): u.quantity for u in call.usage.all()}
        call.transcript_text = default_storage.open(call.transcript.name).read().decode() if call.transcript else ""
        call.recording_bytes = default_storage.open(call.recording.name).read() if call.recording else b""
        return call


def _wait_ended(tenant, call_id, timeout=15.0):
    for _ in range(int(timeout / 0.2)):
        call = _call(tenant, call_id)
        if call.is_ended:
            return call
        time.sleep(0.2)
    raise AssertionError(f"call {call_id} did not end")


def _simulate(voice_server, *names, host="acme.localhost", number=ACME_NUMBER, token="twilio-auth-token-acme",
              hang_up=True):
    return asyncio.run(simulate_call(
        server=voice_server["url"], host=host, to_number=number, auth_token=token,
        lines=[line_from_wav(str(FIXTURES_DIR / name)) for name in names], hang_up=hang_up,
    ))


def _address(voice_server):
    return "127.0.0.1", int(voice_server["url"].rsplit(":", 1)[1])


def _turns(call):
    return [(t.index, t.user_text, t.bot_text) for t in call.turn_rows]


def test_whole_inbound_call_is_recorded(acme_line, llm, voice_server, twilio_rest):
    tenant = acme_line(vad_stop_secs=0.5)
    result = _simulate(voice_server, "hello.wav")
    call = _wait_ended(tenant, result.call_id)

    assert (call.status, call.end_reason, call.error) == ("completed", "caller_hung_up", "")
    assert call.stream_id and call.carrier_call_id == result.call_sid and call.answered_at
    assert _turns(call) == [
        (0, "", "Hi, Acme Dental here."),
        (1, "Hello, who is this?", "This is Acme Dental."),
    ]
    reply = call.turn_rows[1]
    assert reply.voice_to_voice_ms is not None and reply.llm_ttft_ms is not None and reply.tts_ttfb_ms is not None
    assert result.greeting_ms is not None and result.lines[0].voice_to_voice_ms is not None
    # The caller's figure and the trace's measure the same gap from different ends of
    # the wire; on a loaded 2-core machine they drift apart by a few hundred ms, so
    # this checks they describe the same turn, not how fast it was (that is the benchmark's job).
    assert abs(result.lines[0].voice_to_voice_ms - reply.voice_to_voice_ms) < 1500

    assert call.transcript_text == ("Agent: Hi, Acme Dental here.\nCaller: Hello, who is this?\n"
                          "Agent: This is Acme Dental.\n")
    with wave.open(io.BytesIO(call.recording_bytes)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert np.abs(stereo.astype(np.int32)).max(axis=0).min() > 1000  # caller left and agent right both there

    usage = call.usage_by_key
    assert usage[("tts_characters", "gpt-4o-mini-tts")] == Decimal(len("Hi, Acme Dental here.") + len("This is Acme Dental."))
    assert usage[("llm_output_tokens", "gpt-4o-mini")] == Decimal(4)
    assert usage[("stt_seconds", "whisper-1")] > Decimal("1.0")
    assert usage[("call_seconds_inbound", "")] == call.duration_secs > Decimal("2")
    assert twilio_rest.requests == [] or all(call.carrier_call_id not in r.path for r in twilio_rest.requests)


def test_end_call_tool_hangs_up_through_the_carrier(acme_line, llm, voice_server, twilio_rest):
    tenant = acme_line(tools=["end_call"])
    result = _simulate(voice_server, "thanks-bye.wav", hang_up=False)
    call = _wait_ended(tenant, result.call_id)

    assert (call.end_reason, call.error) == ("agent_ended", "")
    hang_ups = [r for r in twilio_rest.requests if r.path.endswith(f"/Calls/{result.call_sid}.json")]
    assert [r.form for r in hang_ups] == [{"Status": ["completed"]}]
    assert result.close_code == 1000
    [tool] = call.tool_rows
    assert (tool.name, tool.arguments) == ("end_call", {"reason": "caller is done"})
    assert [r["text"] for r in llm.requests_of("speech")] == ["Hi, Acme Dental here.", "Goodbye!"]


def test_transfer_dials_the_human_and_never_completes_the_call(acme_line, llm, voice_server, twilio_rest):
    tenant = acme_line(tools=["end_call", "transfer_to_human"], transfer_number=TRANSFER_TO)
    result = _simulate(voice_server, "human-please.wav", hang_up=False)
    call = _wait_ended(tenant, result.call_id)

    assert (call.end_reason, call.transferred_to) == ("transfer", TRANSFER_TO)
    updates = [r.form for r in twilio_rest.requests if r.path.endswith(f"/Calls/{result.call_sid}.json")]
    assert len(updates) == 1 and "Status" not in updates[0]  # never "completed"
    assert TRANSFER_TO in updates[0]["Twiml"][0] and "<Dial" in updates[0]["Twiml"][0]


def test_llm_timeout_plays_the_fallback_line_and_closes_the_call_with_the_error(
    acme_line, llm, voice_server, twilio_rest
):
    tenant = acme_line(fallback_line="Sorry, we are having trouble. Please call back.")
    llm.hang_llm = True
    result = _simulate(voice_server, "hello.wav", hang_up=False)
    call = _wait_ended(tenant, result.call_id)

    assert (call.end_reason, call.error) == ("error", "llm: no response within 1.5 s")
    assert [r["text"] for r in llm.requests_of("speech")] == [
        "Hi, Acme Dental here.", "Sorry, we are having trouble. Please call back."]
    assert result.lines[0].voice_to_voice_ms is not None  # the caller heard the fallback line
    hang_ups = [r.form for r in twilio_rest.requests if r.path.endswith(f"/Calls/{result.call_sid}.json")]
    assert hang_ups == [{"Status": ["completed"]}]


def test_client_b_number_on_client_a_route_is_refused(acme_line, globex_line, llm, voice_server):
    from apps.calls.services import call_create_inbound

    acme = acme_line()
    # The webhook: Globex's number dialled on Acme's host gets <Reject/>.
    with pytest.raises(RuntimeError, match="did not connect a stream"):
        _simulate(voice_server, "hello.wav", number=GLOBEX_NUMBER, token="twilio-auth-token-globex")

    # The media socket: a real Globex call's id presented on Acme's host is an unknown stream there.
    def globex_call():
        with tenant_context(globex_line):
            return call_create_inbound(to_number=GLOBEX_NUMBER, from_number="+15557654321", carrier="twilio",
                                       carrier_call_id="CA" + "7" * 32)

    call = globex_call()
    async def present_globex_call():
        caller = TwilioCaller("ws://acme.localhost/ws/media/twilio/", call_sid="CA" + "7" * 32,
                              custom_parameters={"call_id": str(call.pk)}, connect_to=_address(voice_server))
        await caller.connect()
        await caller.wait_closed(timeout=10)
        return caller.close_code

    assert asyncio.run(present_globex_call()) == 4410
    untouched = _call(globex_line, call.pk)
    assert (untouched.answered_at, untouched.stream_id, untouched.end_reason) == (None, "", "")
    with tenant_context(acme):
        from apps.calls.models import Call

        assert Call.objects.count() == 0


@pytest.mark.parametrize(
    ("message", "close_code", "error"),
    [
        ("{not json", 4400, "malformed JSON: Expecting property name enclosed in double quotes"),
        (json.dumps({"event": "media", "streamSid": "MZ-not-this-one", "media": {"payload": ""}}), 4410,
         "unknown stream id 'MZ-not-this-one'"),
        ("x" * 70000, 4413, "message of 70000 bytes is over 65536"),
    ],
)
def test_bad_media_messages_close_the_stream_and_end_the_call(
    acme_line, llm, voice_server, message, close_code, error
):
    from devtools.simulate import fetch_twiml

    tenant = acme_line()
    call_sid = "CA" + "5" * 32

    async def send_bad_message():
        _url, parameters = await fetch_twiml(
            server=voice_server["url"], host="acme.localhost", to_number=ACME_NUMBER, from_number="+15557654321",
            auth_token="twilio-auth-token-acme", account_sid="AC" + "0" * 32, call_sid=call_sid)
        caller = TwilioCaller("ws://acme.localhost/ws/media/twilio/", call_sid=call_sid,
                              custom_parameters=parameters, connect_to=_address(voice_server))
        await caller.connect()
        await caller.wait_for_agent_audio(timeout=10)  # the call is up: the greeting plays
        await caller.send_raw(message)
        await caller.wait_closed(timeout=10)
        return caller.close_code, parameters

    code, parameters = asyncio.run(send_bad_message())
    assert code == close_code
    call = _wait_ended(tenant, parameters["call_id"])
    assert (call.end_reason, call.error) == ("error", error)

    # daphne lives on: the next call goes through.
    result = _simulate(voice_server, "yes.wav")
    assert result.lines[0].voice_to_voice_ms is not None
    assert _wait_ended(tenant, result.call_id).end_reason == "caller_hung_up"


def test_simulate_call_command_prints_the_calls_turns_and_latencies(acme_line, llm, voice_server):
    from io import StringIO

    from django.core.management import call_command

    from apps.voice.management.commands.simulate_call import Command

    acme_line()
    out = StringIO()
    call_command(Command(), client="acme", number=ACME_NUMBER, wav=[str(FIXTURES_DIR / "hello.wav")],
                 server=voice_server["url"], json=True, stdout=out)
    summary = json.loads(out.getvalue())
    assert (summary["status"], summary["end_reason"]) == ("completed", "caller_hung_up")
    assert [(t["index"], t["user_text"], t["bot_text"]) for t in summary["turns"]] == [
        (0, "", "Hi, Acme Dental here."), (1, "Hello, who is this?", "This is Acme Dental.")]
    assert summary["lines"][0]["said"] == "hello.wav" and summary["lines"][0]["voice_to_voice_ms"] > 0
    assert summary["transcript"].startswith("Agent: Hi, Acme Dental here.\nCaller: Hello, who is this?\n")


def test_llm_rate_limit_cools_the_key_down_and_ends_the_call_with_the_fallback_line(
    acme_line, llm, voice_server, twilio_rest
):
    from django.utils import timezone

    from apps.providers.models import ProviderAccount
    from devtools.doubles.openai_server import Rule

    tenant = acme_line(fallback_line="Sorry, we are having trouble. Please call back.")
    # 429 on every attempt (the SDK's own retries wait retry-after-ms); Retry-After: 30 s for the cooldown.
    llm.rules.insert(0, Rule(when="who is this", status=429, headers={"retry-after": "30", "retry-after-ms": "10"}))
    result = _simulate(voice_server, "hello.wav", hang_up=False)
    call = _wait_ended(tenant, result.call_id)

    assert call.end_reason == "error"
    assert call.error.startswith("llm: rate_limited: Error during completion:") and "429" in call.error
    assert [r["text"] for r in llm.requests_of("speech")] == [
        "Hi, Acme Dental here.", "Sorry, we are having trouble. Please call back."]
    assert result.lines[0].voice_to_voice_ms is not None  # the caller heard the fallback line
    hang_ups = [r.form for r in twilio_rest.requests if r.path.endswith(f"/Calls/{result.call_sid}.json")]
    assert hang_ups == [{"Status": ["completed"]}]
    with tenant_context(tenant):
        key = ProviderAccount.objects.get(pk=int(call.llm_key_id))
        remaining = (key.cooldown_until - timezone.now()).total_seconds()
    assert 15 < remaining <= 30  # cooling down for the vendor's Retry-After
