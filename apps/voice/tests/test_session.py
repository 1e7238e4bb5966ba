"""The voice runtime end to end without Django: a Twilio Media Streams caller over a
real websocket, the production bridge/session/pipeline, Pipecat's OpenAI services
talking HTTP to the OpenAI-compatible double."""
from __future__ import annotations

import asyncio
import io
import json
import wave

import numpy as np
import pytest

from apps.voice.config import VoiceConfig
from apps.voice.testing import PlainMediaServer
from devtools.doubles.audio import FIXTURES_DIR, read_wav
from devtools.doubles.openai_server import OpenAIDouble, Rule
from devtools.doubles.twilio_caller import TwilioCaller

pytestmark = pytest.mark.timeout(60)


def fixture_pcm(name: str) -> bytes:
    return read_wav(FIXTURES_DIR / name)[0]


@pytest.fixture
def double():
    with OpenAIDouble(
        rules=[
            Rule(when="who is this", reply="This is Acme Dental."),
            Rule(when="that is all", tool="end_call", arguments={"reason": "caller is done"}),
            Rule(when="real person", tool="transfer_to_human", arguments={"reason": "asked for a person"}),
            Rule(when="opening hours", reply=" ".join(["We are open from nine to five on Saturday."] * 6)),
            Rule(when="DTMF", reply="You pressed a key."),
        ]
    ) as double:
        yield double


async def start_call(double, *, trace=None, **config):
    config.setdefault("vad_stop_secs", 0.5)  # the fixtures pause up to 410 ms mid-sentence
    server = await PlainMediaServer(base_url=double.base_url, config=VoiceConfig(**config), trace=trace).start()
    caller = TwilioCaller(server.url)
    await caller.connect()
    return server, caller


async def say(caller, name: str):
    utterance = await caller.say(fixture_pcm(name), name)
    await utterance.done.wait()
    return utterance


async def finish(server, caller, *, hang_up=True):
    if hang_up:
        await caller.hang_up()
    hooks = server.hooks[0]
    await asyncio.wait_for(hooks.ended.wait(), 15)
    await server.stop()
    return hooks


async def test_inbound_call_records_turns_transcript_recording_and_usage(double):
    server, caller = await start_call(double, greeting="Hi there!")
    await caller.wait_for_agent_audio(timeout=10)
    await caller.wait_for_agent_quiet()
    utterance = await say(caller, "hello.wav")
    first_reply_audio = await caller.wait_for_agent_audio(after=utterance.speech_end_at)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    assert [turn["index"] for turn in hooks.turns] == [0, 1]
    greeting, reply = hooks.turns
    assert (greeting["user_text"], greeting["bot_text"]) == ("", "Hi there!")
    assert (reply["user_text"], reply["bot_text"]) == ("Hello, who is this?", "This is Acme Dental.")
    assert reply["interrupted"] is False and greeting["interrupted"] is False
    for key in ("stt_final_ms", "llm_ttft_ms", "tts_ttfb_ms", "voice_to_voice_ms"):
        assert isinstance(reply[key], int) and reply[key] >= 0, key
    # The server-side figure starts at the VAD's estimate of the end of speech,
    # the caller's at the last audible frame it sent: they agree within 300 ms.
    caller_v2v_ms = (first_reply_audio - utterance.speech_end_at) * 1000
    assert abs(caller_v2v_ms - reply["voice_to_voice_ms"]) < 300
    assert hooks.transcript == "Agent: Hi there!\nCaller: Hello, who is this?\nAgent: This is Acme Dental.\n"
    assert hooks.end["end_reason"] == "caller_hung_up" and hooks.end["error"] == ""
    assert ("hang_up",) not in hooks.events  # the caller hung up: nothing for us to hang up

    usage = hooks.end["usage"]
    assert usage["tts_characters"] == {"gpt-4o-mini-tts": len("Hi there!") + len("This is Acme Dental.")}
    chat = double.requests_of("chat")
    assert len(chat) == 1
    # The double counts words: system prompt + greeting + caller line in, reply out.
    expected_in = sum(len(str(m.get("content", "")).split()) for m in chat[0]["messages"])
    assert usage["llm_input_tokens"] == {"gpt-4o-mini": expected_in}
    assert usage["llm_output_tokens"] == {"gpt-4o-mini": 4}
    assert list(usage["stt_seconds"]) == ["whisper-1"]
    assert usage["stt_seconds"]["whisper-1"] == pytest.approx(double.requests_of("transcription")[0]["audio_secs"], abs=0.01)
    assert usage["call_seconds"] > 2

    with wave.open(io.BytesIO(hooks.recording)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    caller_peak, agent_peak = np.abs(samples.astype(np.int32)).max(axis=0)
    assert caller_peak > 1000 and agent_peak > 1000  # caller on the left, agent on the right
    # The agent's tone is the only 440 Hz energy: it must be on the right channel.
    assert np.abs(samples[:, 1].astype(np.int64)).sum() > np.abs(samples[:, 0].astype(np.int64)).sum() * 0.5


async def test_barge_in_clears_audio_queued_at_the_carrier(double):
    server, caller = await start_call(double)
    await say(caller, "opening-hours.wav")  # a long answer (about 5 s of audio)
    reply_started = await caller.wait_for_agent_audio(after=caller.last_speech_end)
    await asyncio.sleep(0.8)
    interruption = await say(caller, "interrupt.wav")
    await caller.wait_for_agent_audio(after=interruption.speech_end_at)  # the answer to the interruption
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    # Every caller turn start clears the carrier's queue; the one that matters
    # came while the agent was talking and the caller had started to speak.
    barge_in_clears = [at for at in caller.clears if interruption.started_at < at < interruption.speech_end_at]
    assert len(barge_in_clears) >= 1  # ("Wait, wait, ..." has pauses a 0.3 s VAD hears as two starts)
    clear_at = barge_in_clears[0]
    assert reply_started < clear_at
    # Audio stopped coming right after the clear, long before the 5 s answer was over.
    # (One chunk already being written when the interruption lands can follow the
    # clear on a loaded machine; nothing more.)
    after_clear = [f for f in caller.agent_frames if clear_at < f.at < clear_at + 0.25 and f.audible]
    assert len(after_clear) <= 1
    answers = [t for t in hooks.turns if t["user_text"] == "What are your opening hours on Saturday?"]
    assert len(answers) == 1 and answers[0]["interrupted"] is True
    assert hooks.turns[-1]["user_text"] == "Wait, wait, sorry, I have a question."
    assert hooks.turns[-1]["bot_text"] == "You said: Wait, wait, sorry, I have a question."


async def test_dtmf_digits_reach_the_conversation(double):
    server, caller = await start_call(double)
    await asyncio.sleep(0.5)
    await caller.press("5")
    await caller.press("#")  # ends the digit run at once
    await caller.wait_for_agent_audio(timeout=10)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    assert [r["user_text"] for r in double.requests_of("chat")] == ["DTMF: 5#"]
    assert hooks.turns[0]["user_text"] == "DTMF: 5#"
    assert hooks.turns[0]["bot_text"] == "You pressed a key."


async def test_end_call_tool_says_goodbye_then_hangs_up(double):
    server, caller = await start_call(double, tools=("end_call",))
    await say(caller, "thanks-bye.wav")
    await caller.wait_closed(timeout=15)
    hooks = await finish(server, caller, hang_up=False)

    assert hooks.end["end_reason"] == "agent_ended"
    assert ("hang_up",) in hooks.events
    assert [r["text"] for r in double.requests_of("speech")] == ["Goodbye!"]
    assert caller.audible_agent_secs() > 0.1  # the goodbye was heard before the line closed
    [turn] = hooks.turns
    assert turn["user_text"] == "Thank you, that is all. Goodbye."
    assert [(t["name"], t["arguments"], t["result"]) for t in turn["tool_calls"]] == [
        ("end_call", {"reason": "caller is done"}, {"status": "ending"})
    ]
    assert double.requests_of("chat")[0]["tools"] == ["end_call"]


async def test_transfer_goes_through_telephony_and_is_not_hung_up(double):
    server, caller = await start_call(double, tools=("end_call", "transfer_to_human"), transfer_number="+15550001111")
    await say(caller, "human-please.wav")
    await caller.wait_closed(timeout=15)
    hooks = await finish(server, caller, hang_up=False)

    assert hooks.end["end_reason"] == "transfer"
    assert ("transfer", "+15550001111") in hooks.events
    assert ("hang_up",) not in hooks.events
    assert [r["text"] for r in double.requests_of("speech")] == ["Connecting you to a person now."]
    assert hooks.turns[0]["tool_calls"][0]["name"] == "transfer_to_human"
    assert hooks.turns[0]["tool_calls"][0]["result"] == {"status": "transferring", "to": "+15550001111"}


async def test_llm_timeout_plays_fallback_line_and_closes_with_error(double):
    double.hang_llm = True
    server, caller = await start_call(double, provider_timeout_secs=1.0, fallback_line="Sorry, please call back.")
    await say(caller, "hello.wav")
    await caller.wait_closed(timeout=15)
    hooks = await finish(server, caller, hang_up=False)

    assert hooks.end["end_reason"] == "error"
    assert hooks.end["error"] == "llm: no response within 1 s"
    assert [r["text"] for r in double.requests_of("speech")] == ["Sorry, please call back."]
    assert caller.audible_agent_secs() > 0.3  # the caller heard the fallback line
    assert ("hang_up",) in hooks.events
    assert hooks.turns[0]["errors"] == ["llm: no response within 1 s"]


async def test_end_call_phrase_ends_the_call(double):
    server, caller = await start_call(double, end_call_phrases=("that is all",))
    await say(caller, "thanks-bye.wav")
    await caller.wait_closed(timeout=15)
    hooks = await finish(server, caller, hang_up=False)

    assert hooks.end["end_reason"] == "agent_ended"
    assert double.requests_of("chat") == []  # the LLM never saw the phrase
    assert [r["text"] for r in double.requests_of("speech")] == ["Goodbye!"]


async def test_max_call_length_ends_with_max_duration(double):
    server, caller = await start_call(double, max_call_secs=1.0)
    await caller.wait_closed(timeout=10)
    hooks = await finish(server, caller, hang_up=False)
    assert hooks.end["end_reason"] == "max_duration"
    assert ("hang_up",) in hooks.events


async def test_idle_caller_is_timed_out(double):
    server, caller = await start_call(double, idle_timeout_secs=1.0)
    await caller.wait_closed(timeout=10)
    hooks = await finish(server, caller, hang_up=False)
    assert hooks.end["end_reason"] == "idle_timeout"


@pytest.mark.parametrize(
    ("message", "close_code", "error"),
    [
        ("{not json", 4400, "malformed JSON: Expecting property name enclosed in double quotes"),
        (json.dumps({"event": "media", "streamSid": "MZ-someone-else", "media": {"payload": ""}}), 4410,
         "unknown stream id 'MZ-someone-else'"),
        (json.dumps({"event": "media", "media": {"payload": "x" * 70000}}), 4413, "message of 70044 bytes is over 65536"),
        (json.dumps({"event": "surprise"}), 4400, "unknown event 'surprise'"),
    ],
)
async def test_bad_frames_close_the_stream_and_the_call(double, message, close_code, error):
    server, caller = await start_call(double)
    await asyncio.sleep(0.3)
    await caller.send_raw(message)
    await caller.wait_closed(timeout=10)
    hooks = await finish(server, caller, hang_up=False)

    assert caller.close_code == close_code
    assert hooks.end["end_reason"] == "error"
    assert hooks.end["error"] == error
    # The process lives on: the next call on a new server works.
    server, caller = await start_call(double, greeting="Still here.")
    await caller.wait_for_agent_audio(timeout=10)
    await finish(server, caller)


async def test_a_caller_who_speaks_while_the_agent_is_silent_gets_no_clear(double):
    server, caller = await start_call(double, greeting="Hi there!")
    await caller.wait_for_agent_audio(timeout=10)
    await caller.wait_for_agent_quiet(quiet_secs=0.8)  # the greeting has played out at the carrier
    utterance = await say(caller, "hello.wav")
    await caller.wait_for_agent_audio(after=utterance.speech_end_at)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    assert caller.clears == []  # nothing was queued at the carrier when the caller spoke
    assert [turn["bot_text"] for turn in hooks.turns] == ["Hi there!", "This is Acme Dental."]
