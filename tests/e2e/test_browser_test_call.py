"""The browser test call ("Talk to this agent") through real daphne, without a browser: a
websocket client speaks the browser's media protocol (apps/voice/browser_media.py) to
/ws/test-call/ the way static/calls/test_call.js does, with the OpenAI double as every
provider. The call runs the agent's draft, streams the trace live, is recorded like a phone
call, and its usage never reaches the client's ledger."""
from __future__ import annotations

import asyncio
import io
import json
import wave
from decimal import Decimal

import numpy as np
import pytest
import websockets
from django_tenants.utils import tenant_context

from devtools.doubles.audio import FIXTURES_DIR, read_wav

from .test_inbound_calls import _wait_ended

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

FRAME_BYTES = 320  # 20 ms of 16-bit PCM at 8 kHz


def _draft_agent(tenant, greeting: str):
    """The Reception agent with an unpublished builder draft whose greeting is `greeting`."""
    from apps.agents.models import Agent
    from apps.agents.services import agent_draft_save

    with tenant_context(tenant):
        agent = Agent.objects.get(name="Reception")
        draft = json.loads(json.dumps(agent.current_version.graph))
        next(node for node in draft["nodes"] if node["type"] == "start")["greeting"] = greeting
        assert agent_draft_save(agent=agent, graph=draft) == []
        return Agent.objects.select_related("current_version").get(pk=agent.pk)


def _ticket(tenant, agent):
    from apps.calls.services import call_test_create

    with tenant_context(tenant):
        return call_test_create(client=tenant, agent=agent)


class BrowserSocket:
    """What the page's script does on the wire."""

    def __init__(self, voice_server):
        self.port = int(voice_server["url"].rsplit(":", 1)[1])
        self.events: list[dict] = []
        self.audio = bytearray()
        self.audio_before_speech = 0
        self.close_code: int | None = None
        self.changed = asyncio.Event()

    async def __aenter__(self):
        self.ws = await websockets.connect(f"ws://acme.localhost:{self.port}/ws/test-call/", host="127.0.0.1",
                                           port=self.port, max_size=None, open_timeout=10)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc):
        await self.ws.close()
        await asyncio.wait_for(self._reader, 10)

    async def _read(self):
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.audio += message
                else:
                    self.events.append(json.loads(message))
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        self.close_code = self.ws.close_code
        self.changed.set()

    async def wait_for(self, predicate, timeout=20.0):
        async def loop():
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(f"not seen in {timeout} s; events {self.events[-5:]}, "
                                 f"{len(self.audio)} audio bytes, close code {self.close_code}") from None

    def turn(self, index: int) -> dict:
        """The latest state of one turn, as the page would show it."""
        states = [event for event in self.events if event["event"] == "turn" and event["index"] == index]
        return states[-1] if states else {}

    async def speak(self, pcm: bytes, trailing_silence_secs: float = 1.2):
        pcm = pcm + bytes(int(8000 * 2 * trailing_silence_secs))
        for offset in range(0, len(pcm), FRAME_BYTES):
            await self.ws.send(pcm[offset:offset + FRAME_BYTES])
            await asyncio.sleep(0.02)


def test_a_browser_test_call_runs_the_draft_live_and_is_recorded_but_not_billed(acme_line, llm, voice_server):
    from apps.billing.models import UsageEvent
    from apps.calls.services import call_usage_ship

    tenant = acme_line()
    agent = _draft_agent(tenant, "Hi, this is the draft.")
    ticket = _ticket(tenant, agent)
    hello = read_wav(FIXTURES_DIR / "hello.wav")[0]

    async def call():
        async with BrowserSocket(voice_server) as browser:
            await browser.ws.send(json.dumps({"event": "start", "call_id": ticket.call_id, "token": ticket.token}))
            await browser.wait_for(lambda: browser.turn(0).get("bot_text") == "Hi, this is the draft.")
            await browser.wait_for(lambda: len(browser.audio) >= 6400)  # 0.4 s of the greeting
            browser.audio_before_speech = len(browser.audio)
            await asyncio.sleep(1.5)  # let the greeting play out before the caller speaks
            await browser.speak(hello)
            await browser.wait_for(lambda: browser.turn(1).get("bot_text") == "This is Acme Dental."
                                   and browser.turn(1).get("voice_to_voice_ms") is not None)
            await browser.ws.send(json.dumps({"event": "stop"}))
            await browser.wait_for(lambda: browser.close_code is not None)
        return browser

    browser = asyncio.run(call())

    assert browser.close_code == 1000
    assert browser.audio_before_speech >= 6400 and len(browser.audio) > browser.audio_before_speech
    assert browser.turn(1)["user_text"] == "Hello, who is this?"
    live = browser.turn(1)
    assert live["llm_ttft_ms"] is not None and live["tts_ttfb_ms"] is not None and live["stt_final_ms"] is not None
    assert [e for e in browser.events if e["event"] == "ended"] == [
        {"event": "ended", "end_reason": "caller_hung_up", "error": ""}]

    call = _wait_ended(tenant, ticket.call_id)
    assert (call.is_test, call.direction, call.carrier, call.status, call.end_reason) == (
        True, "web", "browser", "completed", "caller_hung_up")
    assert call.agent_version_id == agent.current_version_id  # the draft's base; the draft ran
    assert [(t.index, t.user_text, t.bot_text) for t in call.turn_rows] == [
        (0, "", "Hi, this is the draft."), (1, "Hello, who is this?", "This is Acme Dental.")]
    assert call.turn_rows[1].voice_to_voice_ms == live["voice_to_voice_ms"]
    assert call.transcript_text == "Agent: Hi, this is the draft.\nCaller: Hello, who is this?\nAgent: This is Acme Dental.\n"
    with wave.open(io.BytesIO(call.recording_bytes)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert np.abs(stereo.astype(np.int32)).max(axis=0).min() > 1000  # the browser left, the agent right
    assert [r["text"] for r in llm.requests_of("speech")] == ["Hi, this is the draft.", "This is Acme Dental."]

    usage = call.usage_by_key
    assert usage[("call_seconds_web", "")] == call.duration_secs > Decimal("2")
    assert ("carrier_seconds", "voice-web") not in usage  # no carrier leg
    assert usage[("tts_characters", "gpt-4o-mini-tts")] == Decimal(len("Hi, this is the draft.") + len("This is Acme Dental."))
    with tenant_context(tenant):
        assert call_usage_ship(client=tenant, call_id=ticket.call_id) == 0
        from apps.calls.models import Call

        assert Call.objects.get(pk=ticket.call_id).usage_reported_at is not None
    assert UsageEvent.objects.filter(call_id=ticket.call_id).count() == 0


def test_the_test_call_socket_refuses_what_is_not_its_call(acme_line, llm, voice_server):
    tenant = acme_line()
    from apps.agents.models import Agent

    with tenant_context(tenant):
        agent = Agent.objects.select_related("current_version").get(name="Reception")
    ticket = _ticket(tenant, agent)

    async def attempts():
        codes = {}
        async with BrowserSocket(voice_server) as browser:  # audio before start
            await browser.ws.send(bytes(FRAME_BYTES))
            await browser.wait_for(lambda: browser.close_code is not None)
        codes["audio before start"] = browser.close_code
        async with BrowserSocket(voice_server) as browser:  # a token for another call
            await browser.ws.send(json.dumps({"event": "start", "call_id": ticket.call_id, "token": "1t2t3"}))
            await browser.wait_for(lambda: browser.close_code is not None)
        codes["forged token"] = browser.close_code
        async with BrowserSocket(voice_server) as browser:  # an unknown event
            await browser.ws.send(json.dumps({"event": "dial", "to": "+15550000000"}))
            await browser.wait_for(lambda: browser.close_code is not None)
        codes["unknown event"] = browser.close_code
        return codes

    assert asyncio.run(attempts()) == {"audio before start": 4400, "forged token": 4410, "unknown event": 4400}
    from apps.calls.models import Call

    with tenant_context(tenant):
        call = Call.objects.get(pk=ticket.call_id)
        assert (call.status, call.answered_at, call.is_test) == ("ringing", None, True)  # untouched
