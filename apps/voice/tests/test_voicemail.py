"""Voicemail detection in the runtime, without Django: the rules on the callee's words
(both shared fixtures), and whole calls over a real Twilio Media Streams websocket with
the OpenAI double as STT/LLM/TTS: a mailbox greeting gets the message after it ends and
a hang-up (end reason voicemail); a person who says the callee "is not available" gets
a conversation; the carrier's verdict alone is enough."""
from __future__ import annotations

import asyncio
import time

import pytest

from apps.voice.config import VoiceConfig
from apps.voice.testing import PlainMediaServer, RecordingHooks
from apps.voice.voicemail import HUMAN, MACHINE, classify_greeting
from devtools.doubles.audio import FIXTURES_DIR, read_wav
from devtools.doubles.openai_server import OpenAIDouble, Rule
from devtools.doubles.twilio_caller import TwilioCaller

pytestmark = pytest.mark.timeout(60)

TRANSCRIPTS = dict(line.split("\t", 1) for line in (FIXTURES_DIR / "TRANSCRIPTS.tsv").read_text().splitlines() if line)
MESSAGE = "Hi, this is Acme Dental. Please call us back. Goodbye."


@pytest.mark.parametrize(("text", "verdict"), [
    (TRANSCRIPTS["voicemail-greeting.wav"], MACHINE),
    (TRANSCRIPTS["not-available.wav"], HUMAN),
    ("Hi, you have reached Sarah.", MACHINE),  # the greeting's first sentence alone already tells
    ("The person you are calling is not available. Please leave a message after the beep.", MACHINE),
    ("He's not available right now, who's calling?", HUMAN),
    ("Sorry, she can't come to the phone, may I take a message?", HUMAN),
    ("Hello?", None),
    (TRANSCRIPTS["hello.wav"], HUMAN),
    ("", None),
])
def test_the_rules_tell_a_mailbox_from_a_person(text, verdict):
    assert classify_greeting(text) == verdict


@pytest.fixture
def double():
    with OpenAIDouble(rules=[Rule(when="take a message", reply="Yes please, ask him to call Acme Dental.")]) as double:
        yield double


async def _call(double, fixture, *, hooks_factory=None):
    config = VoiceConfig(greeting="Hi, Acme Dental here.", vad_stop_secs=0.5, voicemail_detection=True,
                         voicemail_message=MESSAGE)
    server = await PlainMediaServer(base_url=double.base_url, config=config, hooks_factory=hooks_factory).start()
    caller = TwilioCaller(server.url)
    started = time.monotonic()
    await caller.connect()
    await caller.wait_for_agent_audio(after=started, timeout=10)
    await caller.wait_for_agent_quiet(quiet_secs=0.6)
    utterance = None
    if fixture:
        utterance = await caller.say(read_wav(FIXTURES_DIR / fixture)[0], fixture)
        await utterance.done.wait()
    return server, caller, utterance


async def test_a_mailbox_greeting_gets_the_message_after_it_ends_then_a_hang_up(double):
    server, caller, utterance = await _call(double, "voicemail-greeting.wav")
    heard = await caller.wait_for_agent_audio(after=utterance.speech_end_at, timeout=10)
    await caller.wait_closed(timeout=15)
    hooks = server.hooks[0]
    await asyncio.wait_for(hooks.ended.wait(), 15)
    await server.stop()

    assert hooks.end["end_reason"] == "voicemail"
    assert [e for e in hooks.events if e[0] in ("answered_by", "hang_up", "end")] == [
        ("answered_by", "machine"), ("hang_up",), ("end", "voicemail")]
    assert heard - utterance.speech_end_at >= 1.0  # waited out the greeting (and its tone)
    assert [r["text"] for r in double.requests_of("speech")] == ["Hi, Acme Dental here.", MESSAGE]
    assert double.requests_of("chat") == []  # nobody answered the recording


async def test_a_person_saying_he_is_not_available_gets_a_conversation(double):
    server, caller, utterance = await _call(double, "not-available.wav")
    await caller.wait_for_agent_audio(after=utterance.speech_end_at, timeout=10)
    await caller.wait_for_agent_quiet(quiet_secs=0.6)
    await caller.hang_up()
    hooks = server.hooks[0]
    await asyncio.wait_for(hooks.ended.wait(), 15)
    await server.stop()

    assert hooks.end["end_reason"] == "caller_hung_up"
    assert ("answered_by", "human") in hooks.events and ("hang_up",) not in hooks.events
    assert [r["text"] for r in double.requests_of("speech")] == [
        "Hi, Acme Dental here.", "Yes please, ask him to call Acme Dental."]
    assert [t["user_text"] for t in hooks.turns if t["user_text"]] == [TRANSCRIPTS["not-available.wav"]]


class CarrierSaysMachine(RecordingHooks):
    """The carrier's AMD verdict (its status webhook wrote "machine" to the record)."""

    async def carrier_answered_by(self) -> str:
        self.events.append(("carrier_asked",))
        return "machine"


async def test_the_carriers_machine_verdict_alone_leaves_the_message(double):
    server, caller, _ = await _call(double, None, hooks_factory=CarrierSaysMachine)  # the callee says nothing
    await caller.wait_closed(timeout=15)
    hooks = server.hooks[0]
    await asyncio.wait_for(hooks.ended.wait(), 15)
    await server.stop()

    assert hooks.end["end_reason"] == "voicemail"
    assert hooks.events.count(("carrier_asked",)) == 1  # asked until it answered
    assert ("answered_by", "machine") not in hooks.events  # the carrier's own verdict is already on the record
    assert [r["text"] for r in double.requests_of("speech")] == ["Hi, Acme Dental here.", MESSAGE]


async def test_the_llm_second_opinion_is_asked_when_the_rules_cannot_tell(double):
    # "Yes, that works for me." tells the rules nothing; the call's LLM (the double) says "machine".
    double.rules.insert(0, Rule(when="Heard when the callee picked up", reply="machine"))
    config = VoiceConfig(greeting="Hi, Acme Dental here.", vad_stop_secs=0.5, voicemail_detection=True,
                         voicemail_message=MESSAGE, voicemail_llm=True)
    server = await PlainMediaServer(base_url=double.base_url, config=config).start()
    caller = TwilioCaller(server.url)
    started = time.monotonic()
    await caller.connect()
    await caller.wait_for_agent_audio(after=started, timeout=10)
    await caller.wait_for_agent_quiet(quiet_secs=0.6)
    utterance = await caller.say(read_wav(FIXTURES_DIR / "yes.wav")[0], "yes.wav")
    await utterance.done.wait()
    await caller.wait_closed(timeout=15)
    hooks = server.hooks[0]
    await asyncio.wait_for(hooks.ended.wait(), 15)
    await server.stop()

    assert hooks.end["end_reason"] == "voicemail"
    assert ("answered_by", "machine") in hooks.events
    [asked] = double.requests_of("chat")
    assert asked["user_text"] == f'Heard when the callee picked up: "{TRANSCRIPTS["yes.wav"]}"'
    assert [r["text"] for r in double.requests_of("speech")] == ["Hi, Acme Dental here.", MESSAGE]
