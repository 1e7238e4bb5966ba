"""A speech-to-speech call through the production bridge, session and pipeline, without
Django: a Twilio Media Streams caller over a real websocket, Pipecat's OpenAI Realtime
service (built by the `openai_realtime` vendor module) talking to the Realtime double."""
from __future__ import annotations

import asyncio
import io
import wave

import numpy as np
import pytest

from apps.voice.config import VoiceConfig
from apps.voice.testing import PlainMediaServer
from devtools.doubles.audio import FIXTURES_DIR, read_wav
from devtools.doubles.openai_realtime_server import OpenAIRealtimeDouble
from devtools.doubles.openai_server import Rule
from devtools.doubles.twilio_caller import TwilioCaller

pytestmark = pytest.mark.timeout(150)

LONG_ANSWER = " ".join(["We are open from nine to five on Saturday."] * 3)


@pytest.fixture
def realtime():
    with OpenAIRealtimeDouble(rules=[
        Rule(when="opening hours", reply=LONG_ANSWER),
        Rule(when="that is all", tool="end_call", arguments={"reason": "caller is done"}),
        Rule(when="who is this", status=429),
    ]) as double:
        yield double


async def _say(caller, name: str):
    utterance = await caller.say(read_wav(FIXTURES_DIR / name)[0], name)
    await utterance.done.wait()
    return utterance


async def test_speech_to_speech_call_with_barge_in_and_a_tool_call(realtime):
    config = VoiceConfig(greeting="Hi, Acme Dental here.", system_prompt="You answer the phone for Acme Dental.",
                         tools=("end_call",), vad_stop_secs=0.5, speech_to_speech=True)
    server = await PlainMediaServer(base_url=realtime.base_url, config=config, s2s_provider="openai_realtime").start()
    caller = TwilioCaller(server.url)
    await caller.connect()
    await caller.wait_for_agent_audio(timeout=60)  # the greeting, in the model's voice
    await caller.wait_for_agent_quiet()
    question = await _say(caller, "opening-hours.wav")
    answer_started = await caller.wait_for_agent_audio(after=question.speech_end_at, timeout=15)
    await asyncio.sleep(0.8)
    interruption = await _say(caller, "interrupt.wav")  # over the 7 s answer
    await caller.wait_for_agent_audio(after=interruption.speech_end_at, timeout=15)
    await caller.wait_for_agent_quiet()
    await _say(caller, "thanks-bye.wav")  # the model calls end_call; the goodbye line; we hang up
    hooks = server.hooks[0]
    await asyncio.wait_for(hooks.ended.wait(), 30)
    await caller.wait_closed(timeout=10)
    await server.stop()

    [session] = realtime.sessions
    assert (session.api_key, session.model) == ("sk-test", "gpt-realtime")
    assert session.session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    assert [tool["name"] for tool in session.session["tools"]] == ["end_call"]
    assert 'open it by saying exactly: "Hi, Acme Dental here."' in session.session["instructions"]
    assert session.transcripts == ["What are your opening hours on Saturday?", "Wait, wait, sorry, I have a question.",
                                   "Thank you, that is all. Goodbye."]

    # Barge-in: the carrier was told to drop the answer's queued audio, and little more came.
    clears = [at for at in caller.clears if interruption.started_at < at < interruption.speech_end_at]
    assert clears and answer_started < clears[0]
    assert len([f for f in caller.agent_frames if clears[0] + 0.1 < f.at < clears[0] + 1.0 and f.audible]) <= 1
    assert session.truncations and session.truncations[0]["audio_end_ms"] < 3000

    turns = [(t["index"], t["user_text"], t["bot_text"], t["interrupted"]) for t in hooks.turns]
    assert turns == [
        (0, "", "Hi, Acme Dental here.", False),
        (1, "What are your opening hours on Saturday?", LONG_ANSWER, True),
        (2, "Wait, wait, sorry, I have a question.", "You said: Wait, wait, sorry, I have a question.", False),
        (3, "Thank you, that is all. Goodbye.", "Goodbye!", False),
    ]
    assert [(c["name"], c["arguments"], c["result"]) for c in hooks.turns[3]["tool_calls"]] == [
        ("end_call", {"reason": "caller is done"}, {"status": "ending"})]
    for turn in hooks.turns[1:3]:
        assert isinstance(turn["voice_to_voice_ms"], int) and isinstance(turn["llm_ttft_ms"], int)
    assert hooks.end["end_reason"] == "agent_ended" and ("hang_up",) in hooks.events

    # Usage: the double's response.done figures, summed per modality under the model.
    done = [response["usage"] for response in realtime.responses]
    usage = hooks.end["usage"]
    expected = {
        "s2s_input_audio_tokens": sum(u["input_token_details"]["audio_tokens"] for u in done),
        "s2s_output_audio_tokens": sum(u["output_token_details"]["audio_tokens"] for u in done),
        "s2s_input_text_tokens": sum(u["input_token_details"]["text_tokens"] for u in done),
        "s2s_output_text_tokens": sum(u["output_token_details"]["text_tokens"] for u in done),
    }
    assert {metric: usage[metric] for metric in expected} == {m: {"gpt-realtime": v} for m, v in expected.items()}
    assert expected["s2s_input_audio_tokens"] > 0 and expected["s2s_output_audio_tokens"] > 0
    assert usage["tts_characters"] == {} and usage["llm_input_tokens"] == {}  # Piper's goodbye is not billed

    transcript = hooks.transcript
    assert transcript.startswith("Agent: Hi, Acme Dental here.\nCaller: What are your opening hours on Saturday?\n")
    with wave.open(io.BytesIO(hooks.recording)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert np.abs(samples.astype(np.int32)).max(axis=0).min() > 1000  # caller left, agent right


async def test_a_speech_to_speech_error_plays_the_fallback_line_and_ends_the_call(realtime):
    config = VoiceConfig(greeting="Hi.", fallback_line="Sorry, we are having trouble.", vad_stop_secs=0.5,
                         speech_to_speech=True)
    server = await PlainMediaServer(base_url=realtime.base_url, config=config, s2s_provider="openai_realtime").start()
    caller = TwilioCaller(server.url)
    await caller.connect()
    await caller.wait_for_agent_audio(timeout=60)
    await caller.wait_for_agent_quiet()
    question = await _say(caller, "hello.wav")  # the double answers 429
    await caller.wait_for_agent_audio(after=question.speech_end_at, timeout=30)  # the fallback line (Piper)
    hooks = server.hooks[0]
    await asyncio.wait_for(hooks.ended.wait(), 30)
    await caller.wait_closed(timeout=10)
    await server.stop()

    assert hooks.end["end_reason"] == "error"
    assert hooks.end["error"].startswith("speech_to_speech: Error: ") and "rate_limit_exceeded" in hooks.end["error"]
    assert ("vendor_error", "1") in hooks.events and ("hang_up",) in hooks.events
    assert hooks.turns[-1]["bot_text"] == "Sorry, we are having trouble."


@pytest.mark.parametrize("vendor", ["openai_realtime", "gemini_live"])
async def test_an_end_call_phrase_ends_a_speech_to_speech_call_over_the_models_answer(vendor, settings):
    from devtools.doubles.gemini_live_server import GeminiLiveDouble

    # (Gemini's double answering at once, as the Realtime one does: the answer races the phrase.)
    double = OpenAIRealtimeDouble() if vendor == "openai_realtime" else GeminiLiveDouble(first_audio_delay_secs=0.0)
    with double:
        if vendor == "gemini_live":
            settings.PROVIDER_EXTRA_CA_CERTS = double.ca_file
        model = "gpt-realtime" if vendor == "openai_realtime" else "gemini-2.5-flash-native-audio-preview-09-2025"
        config = VoiceConfig(greeting="Hi, Acme Dental here.", end_call_phrases=("goodbye",), vad_stop_secs=0.5,
                             speech_to_speech=True)
        server = await PlainMediaServer(base_url=double.base_url, config=config, s2s_provider=vendor,
                                        s2s_settings={"model": model}).start()
        caller = TwilioCaller(server.url)
        await caller.connect()
        await caller.wait_for_agent_audio(timeout=60)
        await caller.wait_for_agent_quiet()
        bye = await _say(caller, "thanks-bye.wav")  # "Thank you, that is all. Goodbye."
        hooks = server.hooks[0]
        await asyncio.wait_for(hooks.ended.wait(), 30)
        await caller.wait_closed(timeout=10)
        await server.stop()
        answers = [r["reply"] for r in (double.responses if vendor == "openai_realtime" else double.turns)]

    # The model heard the phrase and answered it; the caller heard the goodbye line instead.
    assert answers[-1] == "You said: Thank you, that is all. Goodbye."
    assert hooks.end["end_reason"] == "agent_ended" and ("hang_up",) in hooks.events
    turns = [(t["index"], t["user_text"], t["bot_text"]) for t in hooks.turns]
    assert turns == [(0, "", "Hi, Acme Dental here."), (1, "Thank you, that is all. Goodbye.", "Goodbye!")]
    # Piper's "Goodbye!" is under a second; the model's answer alone would be 2.5 s of tone.
    assert 0.2 < caller.audible_agent_secs(after=bye.speech_end_at) < 1.5


@pytest.mark.parametrize("vendor", ["openai_realtime", "gemini_live"])
async def test_keypad_digits_reach_a_speech_to_speech_model(vendor, settings):
    from devtools.doubles.gemini_live_server import GeminiLiveDouble

    double = OpenAIRealtimeDouble() if vendor == "openai_realtime" else GeminiLiveDouble()
    with double:
        if vendor == "gemini_live":
            settings.PROVIDER_EXTRA_CA_CERTS = double.ca_file
        model = "gpt-realtime" if vendor == "openai_realtime" else "gemini-2.5-flash-native-audio-preview-09-2025"
        config = VoiceConfig(greeting="Hi, Acme Dental here.", vad_stop_secs=0.5, speech_to_speech=True)
        server = await PlainMediaServer(base_url=double.base_url, config=config, s2s_provider=vendor,
                                        s2s_settings={"model": model}).start()
        caller = TwilioCaller(server.url)
        await caller.connect()
        await caller.wait_for_agent_audio(timeout=60)
        greeting_over = await caller.wait_for_agent_quiet()
        await caller.press("5")
        await caller.press("#")  # ends the digits at once (no aggregation timeout)
        await caller.wait_for_agent_audio(after=greeting_over, timeout=20)
        await caller.wait_for_agent_quiet()
        hooks = server.hooks[0]
        await caller.hang_up()
        await asyncio.wait_for(hooks.ended.wait(), 30)
        await server.stop()
        answers = [r["reply"] for r in (double.responses if vendor == "openai_realtime" else double.turns)]

    assert answers == ["Hi, Acme Dental here.", "You said: DTMF: 5#"]
    turns = [(t["index"], t["user_text"], t["bot_text"]) for t in hooks.turns]
    assert turns == [(0, "", "Hi, Acme Dental here."), (1, "DTMF: 5#", "You said: DTMF: 5#")]
