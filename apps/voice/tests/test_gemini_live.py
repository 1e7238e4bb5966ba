"""A Gemini Live call through the production bridge, session and pipeline, without Django's
database: a Twilio Media Streams caller over a real websocket, Pipecat's Gemini Live service
(built by the `gemini_live` vendor module, google-genai underneath) talking to the Gemini Live
double over TLS (its certificate trusted through PROVIDER_EXTRA_CA_CERTS)."""
from __future__ import annotations

import asyncio
import io
import wave

import numpy as np
import pytest

from apps.voice.config import VoiceConfig
from apps.voice.testing import PlainMediaServer
from devtools.doubles.audio import FIXTURES_DIR, read_wav
from devtools.doubles.gemini_live_server import GeminiLiveDouble
from devtools.doubles.openai_server import Rule
from devtools.doubles.twilio_caller import TwilioCaller

pytestmark = pytest.mark.timeout(150)

LONG_ANSWER = " ".join(["We are open from nine to five on Saturday."] * 3)
MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"


@pytest.fixture
def gemini(settings):
    with GeminiLiveDouble(rules=[
        Rule(when="opening hours", reply=LONG_ANSWER),
        Rule(when="that is all", tool="end_call", arguments={"reason": "caller is done"}),
    ]) as double:
        settings.PROVIDER_EXTRA_CA_CERTS = double.ca_file
        yield double


async def _say(caller, name: str):
    utterance = await caller.say(read_wav(FIXTURES_DIR / name)[0], name)
    await utterance.done.wait()
    return utterance


async def test_gemini_live_call_with_barge_in_and_a_tool_call(gemini):
    config = VoiceConfig(greeting="Hi, Acme Dental here.", system_prompt="You answer the phone for Acme Dental.",
                         tools=("end_call",), vad_stop_secs=0.5, speech_to_speech=True)
    server = await PlainMediaServer(base_url=gemini.base_url, config=config, s2s_provider="gemini_live",
                                    s2s_settings={"model": MODEL, "voice": "Kore"}).start()
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

    # Pipecat connects at start, then again with the call's prompt and tools: the last session is the call.
    *earlier, session = gemini.sessions
    assert all(log.received == ["setup"] for log in earlier)
    assert (session.api_key, session.version) == ("sk-test", "v1beta")
    assert session.setup["model"] == f"models/{MODEL}"
    assert session.setup["generationConfig"]["speech_config"]["voice_config"] == {
        "prebuilt_voice_config": {"voice_name": "Kore"}}
    assert session.setup["realtimeInputConfig"] == {"automatic_activity_detection": {"silence_duration_ms": 500}}
    assert session.tools == {"end_call": "NON_BLOCKING"}  # so its result can go back SILENT
    assert session.audio_in_rates == {8000}  # the carrier's audio, as it came
    # The prompt and the greeting instruction: a lone system message goes as the seeded turn.
    [seed] = session.client_turns
    assert seed["role"] == "user" and 'open it by saying exactly: "Hi, Acme Dental here."' in seed["parts"][0]["text"]
    assert session.transcripts == ["What are your opening hours on Saturday?", "Wait, wait, sorry, I have a question.",
                                   "Thank you, that is all. Goodbye."]
    # end_call's result went back silent: the model said nothing over the goodbye line.
    [response] = session.function_responses
    assert (response["name"], response["response"]["status"], response["scheduling"]) == ("end_call", "ending", "SILENT")

    # Barge-in: Gemini said `interrupted`; the carrier was told to drop the answer's queued audio.
    assert session.interrupted_turns == 1
    clears = [at for at in caller.clears if interruption.started_at < at < interruption.speech_end_at]
    assert clears and answer_started < clears[0]
    assert len([f for f in caller.agent_frames if clears[0] + 0.1 < f.at < clears[0] + 1.0 and f.audible]) <= 1

    turns = [(t["index"], t["user_text"], t["bot_text"], t["interrupted"]) for t in hooks.turns]
    assert turns == [
        (0, "", "Hi, Acme Dental here.", False),
        (1, "What are your opening hours on Saturday?", LONG_ANSWER, True),
        (2, "Wait, wait, sorry, I have a question.", "You said: Wait, wait, sorry, I have a question.", False),
        (3, "Thank you, that is all. Goodbye.", "Goodbye!", False),
    ]
    assert [(c["name"], c["arguments"], c["result"]) for c in hooks.turns[3]["tool_calls"]] == [
        ("end_call", {"reason": "caller is done"}, {"status": "ending"})]
    # Voice to voice is timed from the model's transcript of the caller (Gemini reports no end of
    # speech); Pipecat times the model's first output only for the opening.
    assert isinstance(hooks.turns[0]["llm_ttft_ms"], int)
    for turn in hooks.turns[1:]:
        assert isinstance(turn["voice_to_voice_ms"], int) and turn["voice_to_voice_ms"] > 0
    assert hooks.end["end_reason"] == "agent_ended" and ("hang_up",) in hooks.events

    # Usage: each turn's usageMetadata (the cut answer's too), summed per modality under the model.
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
    usage = hooks.end["usage"]
    assert {metric: usage[metric] for metric in expected} == {m: {MODEL: v} for m, v in expected.items()}
    assert expected["s2s_input_audio_tokens"] > 0 and expected["s2s_output_audio_tokens"] > 0
    assert expected["s2s_output_text_tokens"] == 4  # the call's arguments: {"reason": "caller is done"}
    assert usage["tts_characters"] == {} and usage["llm_input_tokens"] == {}  # Piper's goodbye is not billed

    assert hooks.transcript.startswith(
        "Agent: Hi, Acme Dental here.\nCaller: What are your opening hours on Saturday?\n")
    with wave.open(io.BytesIO(hooks.recording)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert np.abs(samples.astype(np.int32)).max(axis=0).min() > 1000  # caller left, agent right


async def test_a_gemini_live_outage_plays_the_fallback_line_and_ends_the_call(settings):
    with GeminiLiveDouble(rules=[Rule(when="who is this", status=429)]) as gemini:
        settings.PROVIDER_EXTRA_CA_CERTS = gemini.ca_file
        config = VoiceConfig(greeting="Hi.", fallback_line="Sorry, we are having trouble.", vad_stop_secs=0.5,
                             speech_to_speech=True)
        server = await PlainMediaServer(base_url=gemini.base_url, config=config, s2s_provider="gemini_live",
                                        s2s_settings={"model": MODEL}).start()
        caller = TwilioCaller(server.url)
        await caller.connect()
        await caller.wait_for_agent_audio(timeout=60)
        await caller.wait_for_agent_quiet()
        question = await _say(caller, "hello.wav")  # the quota runs out; reconnecting is refused
        await caller.wait_for_agent_audio(after=question.speech_end_at, timeout=30)  # the fallback line (Piper)
        hooks = server.hooks[0]
        await asyncio.wait_for(hooks.ended.wait(), 30)
        await caller.wait_closed(timeout=10)
        await server.stop()
        refused = gemini.refused

    # The session closed on the turn, both reconnects were refused at setup: the third failure in a row
    # reached the session with its cause (a throttled key: the registry cools it down).
    assert refused == 2
    assert hooks.end["end_reason"] == "error"
    assert hooks.end["error"] == ("speech_to_speech: Gemini Live failed 3 times in a row: 1011 None. "
                                  "RESOURCE_EXHAUSTED: You exceeded your current quota.")
    assert ("vendor_error", "1") in hooks.events and ("hang_up",) in hooks.events
    assert hooks.turns[-1]["bot_text"] == "Sorry, we are having trouble."
