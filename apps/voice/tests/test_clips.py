"""Pre-recorded clips and the STT dictionary in the voice runtime without Django: a Twilio
caller over a real websocket, the production bridge/session/pipeline, the OpenAI double.

A clip is a 1 kHz tone and the double's speech a 440 Hz tone, so what the caller hears
says which of the two played."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiohttp import web

from apps.voice.config import VoiceConfig
from apps.voice.testing import PlainMediaServer
from apps.voice.tests.test_session import finish, say, start_call
from devtools.doubles.audio import tone, ulaw_to_pcm16
from devtools.doubles.openai_server import OpenAIDouble, Rule
from devtools.doubles.twilio_caller import TwilioCaller

pytestmark = pytest.mark.timeout(60)

CLIP_HZ, TTS_HZ = 1000.0, 440.0


def clip(name: str, words: str, *, secs: float = 0.6, tags=(), interruptible=True) -> dict:
    return {"name": name, "words": words, "tags": list(tags), "interruptible": interruptible,
            "pcm": tone(secs, 8000, frequency=CLIP_HZ)}


def dominant_hz(frames) -> float:
    """The strongest frequency of the caller-side agent audio in `frames`."""
    pcm = np.frombuffer(b"".join(ulaw_to_pcm16(frame.ulaw) for frame in frames if frame.audible), dtype=np.int16)
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(pcm.size, 1 / 8000)[int(np.argmax(spectrum))])


@pytest.fixture
def double():
    with OpenAIDouble(rules=[
        Rule(when="who is this", reply="[[clip:acme-intro]]"),
        Rule(when="opening hours", reply="We are open from nine to five."),
        Rule(when="book an appointment", tool="check_slots", arguments={"day": "tuesday"}, offered_only=True),
    ], after_tool_reply="Tuesday at two is free.") as double:
        yield double


async def test_a_clip_turn_and_a_tts_turn_in_one_call_both_traced_and_metered(double):
    intro = clip("acme-intro", "This is Acme Dental, how can I help?", secs=0.8)
    server, caller = await start_call(double, greeting="Hi there!", clips=(intro,))
    await caller.wait_for_agent_audio(timeout=10)
    await caller.wait_for_agent_quiet()
    asked = await say(caller, "hello.wav")  # the LLM answers with the clip's reference
    await caller.wait_for_agent_audio(after=asked.speech_end_at)
    await caller.wait_for_agent_quiet()
    clip_heard = [f for f in caller.agent_frames if f.at > asked.speech_end_at]
    hours = await say(caller, "opening-hours.wav")  # the LLM improvises: text-to-speech
    await caller.wait_for_agent_audio(after=hours.speech_end_at)
    await caller.wait_for_agent_quiet()
    tts_heard = [f for f in caller.agent_frames if f.at > hours.speech_end_at]
    hooks = await finish(server, caller)

    greeting, clip_turn, tts_turn = hooks.turns
    assert (clip_turn["user_text"], clip_turn["bot_text"]) == ("Hello, who is this?", "This is Acme Dental, how can I help?")
    assert clip_turn["clips"] == [{"name": "acme-intro", "source": "llm"}]
    assert clip_turn["tts_ttfb_ms"] is None and isinstance(clip_turn["voice_to_voice_ms"], int)
    assert (tts_turn["user_text"], tts_turn["bot_text"]) == ("What are your opening hours on Saturday?",
                                                             "We are open from nine to five.")
    assert tts_turn["clips"] == [] and greeting["clips"] == []
    assert isinstance(tts_turn["tts_ttfb_ms"], int)
    # The clip's audio reached the caller, the TTS's the other turn; the TTS never saw the clip.
    assert abs(dominant_hz(clip_heard) - CLIP_HZ) < 20
    assert abs(dominant_hz(tts_heard) - TTS_HZ) < 20
    assert sum(f.audible for f in clip_heard) * 0.02 == pytest.approx(0.8, abs=0.1)
    assert [r["text"] for r in double.requests_of("speech")] == ["Hi there!", "We are open from nine to five."]
    usage = hooks.end["usage"]
    assert usage["clip_plays"] == 1
    assert usage["tts_characters"] == {"gpt-4o-mini-tts": len("Hi there!") + len("We are open from nine to five.")}
    # The LLM was told which clips exist and how to play one; its own reference is what the context keeps.
    chat = double.requests_of("chat")
    assert '[[clip:acme-intro]] says "This is Acme Dental, how can I help?"' in chat[0]["messages"][0]["content"]
    assert {"role": "assistant", "content": "[[clip:acme-intro]]"} in chat[1]["messages"]
    assert "Agent: This is Acme Dental, how can I help?" in hooks.transcript


async def test_a_reference_mid_reply_plays_after_the_sentence_before_it(double):
    double.rules.insert(0, Rule(when="who is this", reply="Good question. [[clip:acme-intro]] Anything else?"))
    server, caller = await start_call(double, clips=(clip("acme-intro", "This is Acme Dental."),))
    asked = await say(caller, "hello.wav")
    await caller.wait_for_agent_audio(after=asked.speech_end_at)
    await caller.wait_for_agent_quiet(quiet_secs=3)
    heard = [f for f in caller.agent_frames if f.at > asked.speech_end_at and f.audible]
    hooks = await finish(server, caller)

    turn = hooks.turns[0]
    assert turn["clips"] == [{"name": "acme-intro", "source": "llm"}]
    assert [r["text"] for r in double.requests_of("speech")] == ["Good question.", "Anything else?"]
    # In order: "Good question." (0.28 s of 440 Hz), the clip (0.6 s of 1 kHz), "Anything else?" (0.28 s).
    assert len(heard) == pytest.approx(58, abs=4)
    assert abs(dominant_hz(heard[:10]) - TTS_HZ) < 20
    assert abs(dominant_hz(heard[20:40]) - CLIP_HZ) < 20
    assert abs(dominant_hz(heard[-10:]) - TTS_HZ) < 20


async def test_an_unknown_clip_is_not_spoken_and_is_traced_as_an_error(double):
    double.rules.insert(0, Rule(when="who is this", reply="[[clip:nope]] Acme Dental."))
    server, caller = await start_call(double, clips=(clip("acme-intro", "This is Acme Dental."),))
    asked = await say(caller, "hello.wav")
    await caller.wait_for_agent_audio(after=asked.speech_end_at)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    assert [r["text"] for r in double.requests_of("speech")] == ["Acme Dental."]
    assert hooks.turns[0]["errors"] == ["clip: no clip named 'nope'"]
    assert hooks.turns[0]["clips"] == [] and "clip_plays" not in hooks.end["usage"]


class SlowSystem:
    """The client's API: a slow pre-call lookup and a slow slots endpoint."""

    def __init__(self, delay_secs: float):
        self.delay_secs = delay_secs
        self._runner = None
        self.url = ""
        self.precall_at = 0.0

    async def start(self):
        app = web.Application()

        async def precall(request):
            self.precall_at = asyncio.get_running_loop().time()
            await asyncio.sleep(self.delay_secs)
            return web.json_response({"customer_name": "Ann"})

        async def slots(request):
            await asyncio.sleep(self.delay_secs)
            return web.json_response({"slots": ["14:00"]})

        app.router.add_post("/precall", precall)
        app.router.add_get("/slots/{day}", slots)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self):
        await self._runner.cleanup()


async def test_greeting_clip_and_hold_clip_while_the_pre_call_fetch_and_a_tool_call_run(double):
    system = await SlowSystem(delay_secs=1.0).start()
    graph = {"version": 1, "nodes": [
        {"id": "start", "type": "start", "greeting": "Welcome to Acme, {{customer_name}}.", "greeting_clip": "welcome",
         "prompt": "Help.", "tools": ["check_slots"],
         "pre_call_fetch": {"url": f"{system.url}/precall", "timeout_secs": 3, "variables": ["customer_name"]}},
    ], "edges": []}
    slots = {"name": "check_slots", "description": "Free slots", "method": "GET", "url": system.url + "/slots/{{day}}",
             "parameters": {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]},
             "headers": {}, "timeout_secs": 3, "response_fields": ["slots"]}
    clips = (clip("welcome", "Welcome to Acme.", secs=0.5, tags=["greeting"]),
             clip("one-moment", "One moment please.", secs=0.4, tags=["hold"]))
    try:
        server, caller = await start_call(double, graph=graph, http_tools=(slots,), clips=clips)
        first_audio = await caller.wait_for_agent_audio(timeout=10)
        await caller.wait_for_agent_quiet()
        asked = await say(caller, "book-appointment.wav")
        await caller.wait_for_agent_audio(after=asked.speech_end_at)
        for _ in range(100):  # the tool answers after a second; the LLM then speaks its reply
            if double.requests_of("speech"):
                break
            await asyncio.sleep(0.1)
        await caller.wait_for_agent_quiet(quiet_secs=1.0)
        hooks = await finish(server, caller)
    finally:
        await system.stop()

    greeting, booking = hooks.turns[0], hooks.turns[1]
    # No silence for the whole second the fetch took: the hold clip played after 0.3 s, then the greeting clip.
    assert first_audio - system.precall_at < 0.7
    assert greeting["clips"] == [{"name": "one-moment", "source": "hold"}, {"name": "welcome", "source": "greeting"}]
    assert greeting["bot_text"] == "One moment please. Welcome to Acme."
    assert [tool["name"] for tool in greeting["tool_calls"]] == ["pre_call_fetch"]
    assert booking["clips"] == [{"name": "one-moment", "source": "hold"}]
    assert [tool["name"] for tool in booking["tool_calls"]] == ["check_slots"]
    assert [r["text"] for r in double.requests_of("speech")] == ["Tuesday at two is free."]
    assert hooks.end["usage"]["clip_plays"] == 3


async def test_an_uninterruptible_clip_plays_through_caller_speech(double):
    double.rules.insert(0, Rule(when="who is this", reply="[[clip:disclaimer]]"))
    disclaimer = clip("disclaimer", "This call is recorded.", secs=3.0, interruptible=False)
    server, caller = await start_call(double, clips=(disclaimer,), interrupt_after_words=0)
    asked = await say(caller, "hello.wav")
    began = await caller.wait_for_agent_audio(after=asked.speech_end_at)
    await asyncio.sleep(0.5)
    await say(caller, "interrupt.wav")  # "Wait, wait, ..." over the disclaimer
    await caller.wait_for_agent_quiet(quiet_secs=1.0)
    hooks = await finish(server, caller)

    heard = [f for f in caller.agent_frames if began <= f.at and f.audible]
    clip_frames = [f for f in heard if f.at < began + 3.5]
    assert len(clip_frames) * 0.02 >= 2.9  # the whole 3 s clip played
    assert not [at for at in caller.clears if began < at < began + 2.9]  # no barge-in clear while it played
    assert hooks.turns[0]["clips"] == [{"name": "disclaimer", "source": "llm"}]
    assert hooks.turns[0]["interrupted"] is False


# -- the STT dictionary -------------------------------------------------------------------------------------------


@pytest.fixture
def mishearing_double():
    # Without the word in its prompt, the double's recogniser writes "KYC" as "kayc".
    with OpenAIDouble(mishears={"KYC": "kayc"}) as double:
        yield double


async def _kyc_call(double, **config):
    server, caller = await start_call(double, **config)
    asked = await say(caller, "kyc-question.wav")
    await caller.wait_for_agent_audio(after=asked.speech_end_at)
    await caller.wait_for_agent_quiet()
    return await finish(server, caller)


async def test_without_a_dictionary_the_domain_word_comes_out_wrong(mishearing_double):
    hooks = await _kyc_call(mishearing_double)
    assert hooks.turns[0]["user_text"] == "Do I need to complete my kayc before opening the account?"


async def test_the_dictionary_post_corrects_a_vendor_that_cannot_boost(mishearing_double):
    hooks = await _kyc_call(mishearing_double, stt_dictionary=("KYC", "AUM", "ESOPs"))
    assert hooks.turns[0]["user_text"] == "Do I need to complete my KYC before opening the account?"
    assert mishearing_double.requests_of("transcription")[0]["prompt"] == ""  # not boosted: corrected after
    assert mishearing_double.requests_of("chat")[0]["user_text"] == "Do I need to complete my KYC before opening the account?"


async def test_the_dictionary_is_passed_to_a_vendor_that_boosts_keywords(mishearing_double):
    from apps.agents.selectors import ProviderSpec
    from apps.providers.registry import build_stt

    spec = ProviderSpec(kind="stt", provider="openai", settings={"model": "whisper-1"},
                        base_url=mishearing_double.base_url, api_key="sk-test", vocabulary=("KYC", "AUM"))
    config = VoiceConfig(stt_dictionary=("KYC", "AUM"), stt_dictionary_boosted=True, vad_stop_secs=0.5)
    server = await PlainMediaServer(base_url=mishearing_double.base_url, config=config,
                                    stt_factory=lambda: build_stt(spec)).start()
    caller = TwilioCaller(server.url)
    await caller.connect()
    asked = await say(caller, "kyc-question.wav")
    await caller.wait_for_agent_audio(after=asked.speech_end_at)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    assert mishearing_double.requests_of("transcription")[0]["prompt"] == "Vocabulary: KYC, AUM."
    assert hooks.turns[0]["user_text"] == "Do I need to complete my KYC before opening the account?"


async def test_a_transition_clip_plays_instead_of_the_edges_line():
    from apps.voice.tests.test_workflow import ClientSystem, slots_tool, three_node_graph

    system = await ClientSystem().start()
    graph = three_node_graph(system.url)
    graph["edges"][0]["transition_clip"] = "let-me-look"
    rules = [Rule(when="book an appointment", tool="go_to_booking", arguments={"day": "tuesday"}, offered_only=True),
             Rule(when="book an appointment", reply="Tuesday at two is free.", offered_only=False)]
    try:
        with OpenAIDouble(rules=rules) as double:
            server, caller = await start_call(
                double, graph=graph, http_tools=(slots_tool(system.url),),
                clips=(clip("let-me-look", "Let me have a look.", secs=0.5, tags=["transition"]),))
            await caller.wait_for_agent_audio(timeout=10)
            await caller.wait_for_agent_quiet()
            asked = await say(caller, "book-appointment.wav")
            await caller.wait_for_agent_audio(after=asked.speech_end_at)
            for _ in range(100):
                if len(double.requests_of("speech")) >= 2:
                    break
                await asyncio.sleep(0.1)
            await caller.wait_for_agent_quiet(quiet_secs=1.0)
            hooks = await finish(server, caller)
            speech = [r["text"] for r in double.requests_of("speech")]
    finally:
        await system.stop()

    moved = hooks.turns[1]
    assert moved["clips"] == [{"name": "let-me-look", "source": "transition"}]
    assert moved["node"] == "booking"
    assert speech == ["Hi Ann!", "Tuesday at two is free."]  # "Let me look at tuesday." was not synthesised
    assert moved["bot_text"] == "Let me have a look. Tuesday at two is free."
