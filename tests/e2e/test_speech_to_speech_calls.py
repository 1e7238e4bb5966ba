"""Speech-to-speech calls end to end through real daphne: Twilio's signed webhook, the
media websocket, the agent's `speech_to_speech` pipeline with Pipecat's OpenAI Realtime
service (or Gemini Live, over TLS) reaching its double through the provider account's base
URL (a leased key), a barge-in, a tool call, and the call record (turns, recording, usage, ledger)."""
from __future__ import annotations

import asyncio
import io
import time
import wave
from decimal import Decimal

import numpy as np
import pytest
from django_tenants.utils import tenant_context

from devtools.doubles.audio import FIXTURES_DIR, read_wav
from devtools.doubles.gemini_live_server import GeminiLiveDouble
from devtools.doubles.openai_realtime_server import OpenAIRealtimeDouble
from devtools.doubles.openai_server import Rule
from devtools.doubles.twilio_caller import TwilioCaller
from devtools.simulate import fetch_twiml

from .conftest import ACME_NUMBER, TWILIO_SID, _cleanup, _client
from .test_inbound_calls import _wait_ended

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]

LONG_ANSWER = " ".join(["We are open from nine to five on Saturday."] * 3)


@pytest.fixture(scope="module")
def realtime():
    with OpenAIRealtimeDouble(rules=[
        Rule(when="opening hours", reply=LONG_ANSWER),
        Rule(when="that is all", tool="end_call", arguments={"reason": "caller is done"}),
    ]) as double:
        yield double


def _s2s_agent_on_acme(double, *, provider: str, api_key: str, name: str, s2s_settings: dict):
    """Acme's number answered by a speech-to-speech agent on `double` (yields the client and its key)."""
    from apps.agents.services import agent_save
    from apps.providers.models import ProviderAccount
    from apps.telephony.models import PhoneNumber

    tenant = _client("acme")
    double.reset()
    with tenant_context(tenant):
        account = ProviderAccount.objects.create(provider=provider, api_key=api_key, base_url=double.base_url)
        agent = agent_save(
            name=name, greeting="Hi, Acme Dental here.",
            system_prompt="You answer the phone for Acme Dental.", pipeline_mode="speech_to_speech",
            s2s_provider=provider, s2s_settings=s2s_settings, tools=["end_call"], vad_stop_secs=0.5,
        )
        PhoneNumber.objects.update_or_create(
            number=ACME_NUMBER, defaults={"agent": agent, "carrier": "twilio", "account_sid": TWILIO_SID,
                                          "auth_token": "twilio-auth-token-acme"})
    yield tenant, account
    _cleanup(tenant)


@pytest.fixture
def s2s_line(committed_db, realtime, voice_server):
    """Acme's number answered by a speech-to-speech agent on the Realtime double."""
    yield from _s2s_agent_on_acme(realtime, provider="openai_realtime", api_key="sk-realtime",
                                  name="Realtime reception", s2s_settings={"model": "gpt-realtime", "voice": "marin"})


async def _say(caller, name: str):
    utterance = await caller.say(read_wav(FIXTURES_DIR / name)[0], name)
    await utterance.done.wait()
    return utterance


async def _conversation(voice_server) -> tuple[str, str, TwilioCaller, dict]:
    port = int(voice_server["url"].rsplit(":", 1)[1])
    call_sid = "CA-s2s-" + str(time.time_ns())
    stream_url, parameters = await fetch_twiml(
        server=voice_server["url"], host="acme.localhost", to_number=ACME_NUMBER, from_number="+15557654321",
        auth_token="twilio-auth-token-acme", account_sid=TWILIO_SID, call_sid=call_sid)
    caller = TwilioCaller(stream_url, call_sid=call_sid, custom_parameters=parameters, connect_to=("127.0.0.1", port))
    await caller.connect()
    marks = {}
    await caller.wait_for_agent_audio(timeout=60)  # the greeting, in the model's voice
    await caller.wait_for_agent_quiet()
    question = await _say(caller, "opening-hours.wav")
    marks["answer_started"] = await caller.wait_for_agent_audio(after=question.speech_end_at, timeout=20)
    await asyncio.sleep(0.8)
    marks["interruption"] = await _say(caller, "interrupt.wav")  # over the 7 s answer
    await caller.wait_for_agent_audio(after=marks["interruption"].speech_end_at, timeout=20)
    await caller.wait_for_agent_quiet()
    await _say(caller, "thanks-bye.wav")  # the model calls end_call: goodbye line, then we hang up
    await caller.wait_closed(timeout=30)
    return parameters["call_id"], call_sid, caller, marks


def _call_ended_by_the_agent(tenant, account, provider: str, voice_server, twilio_rest):
    """Run the conversation; the agent hung up through the carrier after its goodbye and the s2s key
    was leased, recorded on the call and released."""
    from apps.providers.services import provider_key_in_use

    call_id, call_sid, caller, marks = asyncio.run(_conversation(voice_server))
    call = _wait_ended(tenant, call_id, timeout=30)
    assert (call.status, call.end_reason, call.error) == ("completed", "agent_ended", "")
    assert (call.s2s_provider, call.s2s_key_id) == (provider, str(account.pk))
    assert (call.stt_provider, call.llm_provider, call.tts_provider) == ("", "", "")
    hang_ups = [r.form for r in twilio_rest.requests if r.path.endswith(f"/Calls/{call_sid}.json")]
    assert hang_ups == [{"Status": ["completed"]}]
    with tenant_context(tenant):
        assert provider_key_in_use(account=account) == 0
    return call_id, call_sid, caller, marks, call


def test_speech_to_speech_call_with_a_barge_in_and_a_tool_call(s2s_line, realtime, voice_server, twilio_rest):
    from apps.billing.models import UsageEvent
    from apps.calls.services import call_usage_ship

    tenant, account = s2s_line
    call_id, call_sid, caller, marks, call = _call_ended_by_the_agent(tenant, account, "openai_realtime", voice_server,
                                                                      twilio_rest)

    # The double saw one session, configured from the agent, with the key.
    [session] = realtime.sessions
    assert (session.api_key, session.model) == ("sk-realtime", "gpt-realtime")
    assert session.session["audio"]["output"]["voice"] == "marin"
    assert session.session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    assert [tool["name"] for tool in session.session["tools"]] == ["end_call"]
    assert [(o["output"]) for o in session.function_outputs] == ['{"status": "ending"}']

    # Barge-in: Twilio was told to drop the answer's queued audio while the caller spoke.
    clears = [at for at in caller.clears
              if marks["interruption"].started_at < at < marks["interruption"].speech_end_at]
    assert clears and marks["answer_started"] < clears[0]
    assert len([f for f in caller.agent_frames if clears[0] + 0.1 < f.at < clears[0] + 1.0 and f.audible]) <= 1
    assert len(session.truncations) == 1

    turns = [(t.index, t.user_text, t.bot_text, t.interrupted) for t in call.turn_rows]
    assert turns == [
        (0, "", "Hi, Acme Dental here.", False),
        (1, "What are your opening hours on Saturday?", LONG_ANSWER, True),
        (2, "Wait, wait, sorry, I have a question.", "You said: Wait, wait, sorry, I have a question.", False),
        (3, "Thank you, that is all. Goodbye.", "Goodbye!", False),
    ]
    assert all(turn.voice_to_voice_ms is not None and turn.llm_ttft_ms is not None for turn in call.turn_rows[1:3])
    [tool] = call.tool_rows
    assert (tool.name, tool.arguments, tool.turn_id, tool.error) == (
        "end_call", {"reason": "caller is done"}, call.turn_rows[3].pk, "")

    assert call.transcript_text == (
        "Agent: Hi, Acme Dental here.\nCaller: What are your opening hours on Saturday?\n"
        f"Agent: {LONG_ANSWER}\nCaller: Wait, wait, sorry, I have a question.\n"
        "Agent: You said: Wait, wait, sorry, I have a question.\nCaller: Thank you, that is all. Goodbye.\n"
        "Agent: Goodbye!\n")
    with wave.open(io.BytesIO(call.recording_bytes)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert np.abs(stereo.astype(np.int32)).max(axis=0).min() > 1000  # caller left, agent right

    # Usage: the double's response.done figures per modality, under the model, billed to the vendor.
    done = [response["usage"] for response in realtime.responses]
    expected = {
        "s2s_input_audio_tokens": sum(u["input_token_details"]["audio_tokens"] for u in done),
        "s2s_output_audio_tokens": sum(u["output_token_details"]["audio_tokens"] for u in done),
        "s2s_input_text_tokens": sum(u["input_token_details"]["text_tokens"] for u in done),
        "s2s_output_text_tokens": sum(u["output_token_details"]["text_tokens"] for u in done),
    }
    assert expected["s2s_input_audio_tokens"] > 0 and expected["s2s_output_audio_tokens"] > 0
    usage = {key: quantity for key, quantity in call.usage_by_key.items() if key[0].startswith("s2s_")}
    assert usage == {(metric, "gpt-realtime"): Decimal(value) for metric, value in expected.items()}
    assert sorted(metric for metric, _ in call.usage_by_key) == sorted(
        [*expected, "call_seconds_inbound", "carrier_seconds"])  # nothing for the local goodbye voice

    with tenant_context(tenant):
        call_usage_ship(client=tenant, call_id=call_id)
    ledger = {e.metric: e for e in UsageEvent.objects.filter(client=tenant, call_id=call_id)
              if e.metric.startswith("s2s_")}
    assert {metric: (e.provider, e.dimension, e.quantity) for metric, e in ledger.items()} == {
        metric: ("openai_realtime", "gpt-realtime", Decimal(value)) for metric, value in expected.items()}
    # gpt-realtime's list price: audio out $64 per 1M tokens.
    assert ledger["s2s_output_audio_tokens"].provider_cost == (
        Decimal(expected["s2s_output_audio_tokens"]) * Decimal("64") / Decimal(1_000_000)).quantize(Decimal("1e-8"))


GEMINI_MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"


@pytest.fixture(scope="module")
def gemini(double_certificate):
    """The Gemini Live double, serving the certificate daphne trusts (PROVIDER_EXTRA_CA_CERTS)."""
    with GeminiLiveDouble(certificate=double_certificate, rules=[
        Rule(when="opening hours", reply=LONG_ANSWER),
        Rule(when="that is all", tool="end_call", arguments={"reason": "caller is done"}),
    ]) as double:
        yield double


@pytest.fixture
def gemini_line(committed_db, gemini, voice_server):
    """Acme's number answered by a speech-to-speech agent on the Gemini Live double."""
    yield from _s2s_agent_on_acme(gemini, provider="gemini_live", api_key="AIza-gemini", name="Gemini reception",
                                  s2s_settings={"model": GEMINI_MODEL, "voice": "Kore"})


def test_gemini_live_call_with_a_barge_in_and_a_tool_call(gemini_line, gemini, voice_server, twilio_rest):
    from apps.billing.models import UsageEvent
    from apps.calls.services import call_usage_ship

    tenant, account = gemini_line
    call_id, call_sid, caller, marks, call = _call_ended_by_the_agent(tenant, account, "gemini_live", voice_server,
                                                                      twilio_rest)

    # The call's session (Pipecat connects, then again with the prompt and tools), with the key, over TLS.
    *earlier, session = gemini.sessions
    assert all(log.received == ["setup"] for log in earlier)
    assert (session.api_key, session.setup["model"]) == ("AIza-gemini", f"models/{GEMINI_MODEL}")
    assert session.setup["generationConfig"]["speech_config"]["voice_config"] == {
        "prebuilt_voice_config": {"voice_name": "Kore"}}
    assert session.setup["realtimeInputConfig"] == {"automatic_activity_detection": {"silence_duration_ms": 500}}
    assert session.tools == {"end_call": "NON_BLOCKING"}
    assert [(r["name"], r["scheduling"]) for r in session.function_responses] == [("end_call", "SILENT")]

    # Barge-in: Gemini said `interrupted`; Twilio was told to drop the answer's queued audio.
    assert session.interrupted_turns == 1
    clears = [at for at in caller.clears
              if marks["interruption"].started_at < at < marks["interruption"].speech_end_at]
    assert clears and marks["answer_started"] < clears[0]
    assert len([f for f in caller.agent_frames if clears[0] + 0.1 < f.at < clears[0] + 1.0 and f.audible]) <= 1

    turns = [(t.index, t.user_text, t.bot_text, t.interrupted) for t in call.turn_rows]
    assert turns == [
        (0, "", "Hi, Acme Dental here.", False),
        (1, "What are your opening hours on Saturday?", LONG_ANSWER, True),
        (2, "Wait, wait, sorry, I have a question.", "You said: Wait, wait, sorry, I have a question.", False),
        (3, "Thank you, that is all. Goodbye.", "Goodbye!", False),
    ]
    assert all(turn.voice_to_voice_ms is not None for turn in call.turn_rows[1:])
    [tool] = call.tool_rows
    assert (tool.name, tool.arguments, tool.turn_id, tool.error) == (
        "end_call", {"reason": "caller is done"}, call.turn_rows[3].pk, "")

    assert call.transcript_text == (
        "Agent: Hi, Acme Dental here.\nCaller: What are your opening hours on Saturday?\n"
        f"Agent: {LONG_ANSWER}\nCaller: Wait, wait, sorry, I have a question.\n"
        "Agent: You said: Wait, wait, sorry, I have a question.\nCaller: Thank you, that is all. Goodbye.\n"
        "Agent: Goodbye!\n")
    with wave.open(io.BytesIO(call.recording_bytes)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert np.abs(stereo.astype(np.int32)).max(axis=0).min() > 1000  # caller left, agent right

    # Usage: the double's usageMetadata per turn (the cut answer's too), per modality, under the model.
    metadata = [turn["usage_metadata"] for turn in gemini.turns]
    assert len(metadata) == 4

    def modality(details: list[dict], name: str) -> int:
        return sum(entry["tokenCount"] for entry in details if entry["modality"] == name)

    expected = {
        "s2s_input_audio_tokens": sum(modality(m["promptTokensDetails"], "AUDIO") for m in metadata),
        "s2s_output_audio_tokens": sum(modality(m["responseTokensDetails"], "AUDIO") for m in metadata),
        "s2s_input_text_tokens": sum(modality(m["promptTokensDetails"], "TEXT") for m in metadata),
        "s2s_output_text_tokens": sum(modality(m["responseTokensDetails"], "TEXT") for m in metadata),
    }
    assert expected["s2s_input_audio_tokens"] > 0 and expected["s2s_output_audio_tokens"] > 0
    usage = {key: quantity for key, quantity in call.usage_by_key.items() if key[0].startswith("s2s_")}
    assert usage == {(metric, GEMINI_MODEL): Decimal(value) for metric, value in expected.items()}
    assert sorted(metric for metric, _ in call.usage_by_key) == sorted(
        [*expected, "call_seconds_inbound", "carrier_seconds"])  # nothing for the local goodbye voice

    with tenant_context(tenant):
        call_usage_ship(client=tenant, call_id=call_id)
    ledger = {e.metric: e for e in UsageEvent.objects.filter(client=tenant, call_id=call_id)
              if e.metric.startswith("s2s_")}
    assert {metric: (e.provider, e.dimension, e.quantity) for metric, e in ledger.items()} == {
        metric: ("gemini_live", GEMINI_MODEL, Decimal(value)) for metric, value in expected.items()}
    # The model's list price: audio out $12 per 1M tokens.
    assert ledger["s2s_output_audio_tokens"].provider_cost == (
        Decimal(expected["s2s_output_audio_tokens"]) * Decimal("12") / Decimal(1_000_000)).quantize(Decimal("1e-8"))
