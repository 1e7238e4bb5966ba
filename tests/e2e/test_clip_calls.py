"""Clips and the STT dictionary through real daphne: the agent's clips (uploaded through
clip_create, read from storage when the call starts) and dictionary reach the runtime; the
greeting is a clip, the LLM answers one turn with a clip and another with text-to-speech,
the caller's "KYC" comes out right, and the record keeps which clip played where and
meters the plays."""
from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from .test_inbound_calls import _simulate, _wait_ended

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def _tone_wav(secs: float, hz: float) -> bytes:
    from devtools.doubles.audio import tone, wav_bytes

    return wav_bytes(tone(secs, 8000, frequency=hz), 8000)


def test_a_call_with_a_greeting_clip_a_clip_turn_a_tts_turn_and_the_dictionary(acme_line, llm, voice_server):
    from apps.agents.models import Agent
    from apps.agents.services import agent_save
    from apps.calls.models import CallUsage
    from apps.clips.services import clip_create
    from devtools.doubles.openai_server import Rule

    tenant = acme_line(vad_stop_secs=0.5, stt_dictionary=["KYC"])
    llm.rules[:0] = [Rule(when="who is this", reply="[[clip:acme-intro]]")]
    llm.mishears = {"KYC": "kayc"}
    try:
        with tenant_context(tenant):
            agent = Agent.objects.get(name="Reception")
            clip_create(name="welcome", words="Welcome to Acme Dental.", tags=["greeting"],
                        audio=_tone_wav(0.6, 1000), agent=agent)
            clip_create(name="acme-intro", words="This is Acme Dental, how can I help?", audio=_tone_wav(0.8, 1000))
            graph = {"version": 1, "nodes": [
                {"id": "global", "type": "global", "prompt": "You answer the phone for Acme Dental."},
                {"id": "start", "type": "start", "greeting": "Welcome to Acme Dental.", "greeting_clip": "welcome",
                 "tools": []}]}
            agent_save(agent=agent, graph=graph)
        result = _simulate(voice_server, "hello.wav", "kyc-question.wav")
        call = _wait_ended(tenant, result.call_id)
    finally:
        llm.mishears = {}
    turns = [(t.user_text, t.bot_text, t.clips) for t in call.turn_rows]
    assert turns == [
        ("", "Welcome to Acme Dental.", [{"name": "welcome", "source": "greeting"}]),
        ("Hello, who is this?", "This is Acme Dental, how can I help?", [{"name": "acme-intro", "source": "llm"}]),
        ("Do I need to complete my KYC before opening the account?",
         "You said: Do I need to complete my KYC before opening the account?", []),
    ]
    assert [r["text"] for r in llm.requests_of("speech")] == [
        "You said: Do I need to complete my KYC before opening the account?"]
    with tenant_context(tenant):
        assert CallUsage.objects.get(call=call, metric="clip_plays").quantity == 2
