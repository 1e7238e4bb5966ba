"""Outbound calls through real daphne with voicemail detection: `telephony_call_outbound`
dials through the Twilio REST double (asking for async AMD), the callee's side is a
Twilio caller double built from the TwiML we handed Twilio, the Pipecat runtime hears the
shared fixtures through the OpenAI double's STT.

- A mailbox greeting ("Hi, you have reached Sarah ... leave a message after the tone"):
  the agent stops, waits for the greeting to end, leaves its voicemail message, hangs up
  through Twilio; the call is `voicemail`, answered by a machine, and the LLM never
  answered the recording.
- A person ("He is not available right now, can I take a message?"): a conversation.
"""
from __future__ import annotations

import asyncio
import time

import pytest
from django_tenants.utils import tenant_context

from devtools.doubles.audio import FIXTURES_DIR
from devtools.doubles.twilio_caller import TwilioCaller
from devtools.simulate import line_from_wav

from .conftest import ACME_NUMBER
from .test_inbound_calls import _address, _wait_ended

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

MESSAGE = "Hi, this is Acme Dental about your appointment. Please call us back. Goodbye."
CALLEE = "+15557770000"


def _place_call(tenant, twilio_rest, settings, key):
    from apps.telephony.models import PhoneNumber
    from apps.telephony.services import telephony_call_outbound

    settings.TWILIO_API_BASE_URL = twilio_rest.url
    before = len(twilio_rest.requests)
    with tenant_context(tenant):
        call = telephony_call_outbound(phone_number=PhoneNumber.objects.get(number=ACME_NUMBER), to_number=CALLEE,
                                       idempotency_key=key)
    [dialled] = twilio_rest.requests[before:]
    return call, dialled


async def _callee(voice_server, call, dialled, fixture):
    """The callee picks up: the greeting plays, then `fixture` is what they (or their mailbox) say."""
    caller = TwilioCaller.from_answer(dialled.form["Twiml"][0], call_sid=call.carrier_call_id,
                                      connect_to=_address(voice_server))
    started = time.monotonic()
    await caller.connect()
    await caller.wait_for_agent_audio(after=started, timeout=15)
    await caller.wait_for_agent_quiet(quiet_secs=0.6)
    utterance = await caller.say(line_from_wav(str(FIXTURES_DIR / fixture)).pcm_8k, fixture)
    await utterance.done.wait()
    return caller, utterance


def test_a_mailbox_greeting_gets_the_voicemail_message_after_the_tone_then_a_hang_up(
        acme_line, llm, voice_server, twilio_rest, settings):
    tenant = acme_line(voicemail_detection=True, voicemail_message=MESSAGE, tools=["end_call"])
    call, dialled = _place_call(tenant, twilio_rest, settings, "voicemail-1")
    assert (dialled.form["MachineDetection"], dialled.form["AsyncAmd"]) == (["DetectMessageEnd"], ["true"])

    async def run():
        caller, utterance = await _callee(voice_server, call, dialled, "voicemail-greeting.wav")
        heard = await caller.wait_for_agent_audio(after=utterance.speech_end_at, timeout=15)
        await caller.wait_closed(timeout=20)
        return caller, utterance, heard

    caller, utterance, heard = asyncio.run(run())
    ended = _wait_ended(tenant, call.pk)
    assert (ended.end_reason, ended.status, ended.answered_by, ended.error) == ("voicemail", "completed", "machine", "")
    # The message waited for the greeting to end: at least the quiet after the callee's last word.
    assert heard - utterance.speech_end_at >= 1.0
    assert caller.audible_agent_secs(after=utterance.speech_end_at) > 1.0  # the message was played out
    assert [r["text"] for r in llm.requests_of("speech")] == ["Hi, Acme Dental here.", MESSAGE]
    # The recording was never answered by the LLM: no chat request carries the greeting's words.
    assert not any("leave a message" in (r["user_text"] or "").lower() for r in llm.requests_of("chat"))
    hang_ups = [r.form for r in twilio_rest.requests if r.path.endswith(f"/Calls/{call.carrier_call_id}.json")]
    assert hang_ups == [{"Status": ["completed"]}]
    assert ended.duration_secs > 0  # billed as an answered call: call_seconds_outbound and carrier seconds
    assert ended.usage_by_key[("call_seconds_outbound", "")] == ended.duration_secs


def test_a_person_saying_he_is_not_available_is_not_taken_for_a_machine(
        acme_line, llm, voice_server, twilio_rest, settings):
    from devtools.doubles.openai_server import Rule

    llm.rules.insert(0, Rule(when="take a message", reply="Yes please, ask him to call Acme Dental."))
    tenant = acme_line(voicemail_detection=True, voicemail_message=MESSAGE)
    call, dialled = _place_call(tenant, twilio_rest, settings, "voicemail-2")

    async def run():
        caller, utterance = await _callee(voice_server, call, dialled, "not-available.wav")
        await caller.wait_for_agent_audio(after=utterance.speech_end_at, timeout=15)
        await caller.wait_for_agent_quiet(quiet_secs=0.6)
        await caller.hang_up()

    asyncio.run(run())
    ended = _wait_ended(tenant, call.pk)
    assert (ended.end_reason, ended.answered_by) == ("caller_hung_up", "human")
    assert [r["text"] for r in llm.requests_of("speech")] == [
        "Hi, Acme Dental here.", "Yes please, ask him to call Acme Dental."]
    assert [(t.user_text, t.bot_text) for t in ended.turn_rows if t.user_text] == [
        ("He is not available right now, can I take a message?", "Yes please, ask him to call Acme Dental.")]
