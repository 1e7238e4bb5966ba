"""Carrier media websockets: doors into the voice runtime.

Each consumer accepts the socket, hands every message to a `StreamBridge`, and
on the stream's `start` finds the call in the tenant's schema, marks it
answered, and starts a `CallSession` with the agent's configuration. Every ORM
call runs inside `tenant_context(scope["tenant"])`."""
from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django_tenants.utils import tenant_context

from apps.telephony.carriers.registry import CARRIERS
from apps.voice.bridge import StreamBridge
from apps.voice.config import VoiceConfig
from apps.voice.media_protocol import CLOSE_POLICY, StreamProtocolError, StreamStart
from apps.voice.records import TenantCallHooks
from apps.voice.session import CallSession
from apps.voice.transport import MediaStreamTransport

logger = logging.getLogger(__name__)


def voice_config(runtime) -> VoiceConfig:
    """The runtime's view of an AgentRuntimeConfig."""
    defaults = VoiceConfig()
    return VoiceConfig(
        greeting=runtime.greeting,
        system_prompt=runtime.system_prompt,
        vad_stop_secs=runtime.vad_stop_secs,
        allow_interruptions=runtime.allow_interruptions,
        idle_timeout_secs=runtime.idle_timeout_secs,
        max_call_secs=runtime.max_call_secs,
        end_call_phrases=tuple(runtime.end_call_phrases),
        tools=tuple(runtime.tools),
        transfer_number=runtime.transfer_number,
        fallback_line=runtime.fallback_line or defaults.fallback_line,
        # Platform-wide: how long an LLM may stay silent before the caller hears the fallback line.
        provider_timeout_secs=settings.VOICE_PROVIDER_TIMEOUT_SECS,
    )


def _prepare_call(*, start: StreamStart) -> tuple[str, object]:
    """Find and answer the call this stream belongs to; its runtime configuration."""
    from apps.agents.selectors import agent_runtime_config
    from apps.calls.selectors import call_get
    from apps.calls.services import call_answered
    from apps.core.errors import NotFound

    call_id = start.parameters.get("call_id")
    try:
        call = call_get(call_id=call_id) if call_id else None
    except NotFound:
        call = None
    if call is None:
        raise StreamProtocolError(f"unknown stream: no call {call_id!r} here", close_code=CLOSE_POLICY)
    if call.is_ended or call.agent_version is None:
        raise StreamProtocolError(f"call {call.pk} is not live", close_code=CLOSE_POLICY)
    if call.carrier_call_id and start.carrier_call_id and call.carrier_call_id != start.carrier_call_id:
        raise StreamProtocolError(f"stream for carrier call {start.carrier_call_id!r} does not match call {call.pk}",
                                  close_code=CLOSE_POLICY)
    call_answered(call_id=call.pk, stream_id=start.stream_id, carrier_call_id=start.carrier_call_id)
    runtime = agent_runtime_config(agent_version=call.agent_version, call_id=str(call.pk))
    return str(call.pk), runtime


class MediaStreamConsumer(AsyncWebsocketConsumer):
    """One per carrier in `CARRIERS`: `MediaStreamConsumer.as_asgi(carrier_name="twilio")`."""

    # No channel layer: nothing is sent to a media stream from elsewhere, and a
    # Redis BLPOP per live call would only add load (and a failure mode) to the audio path.
    channel_layer_alias = "media-streams-use-no-channel-layer"

    def __init__(self, *args, carrier_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.carrier_name = carrier_name

    async def connect(self):
        self.tenant = self.scope["tenant"]
        self.bridge = StreamBridge(
            carrier=CARRIERS[self.carrier_name],
            send=self._send_payload,
            close=self._close,
            start_session=self._start_session,
        )
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        await self.bridge.receive(text_data if text_data is not None else bytes_data)

    async def disconnect(self, code):
        try:
            await self.bridge.disconnected()
        except Exception:
            logger.exception("call on %s stream %s did not wind down cleanly", self.carrier_name, self.bridge.stream_id)

    async def _send_payload(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            await self.send(bytes_data=payload)
        else:
            await self.send(text_data=payload)

    async def _close(self, code: int) -> None:
        await self.close(code=code)

    async def _start_session(self, start: StreamStart, transport: MediaStreamTransport) -> CallSession:
        call_id, runtime = await self._prepare(start)
        from apps.providers.registry import build_llm, build_stt, build_tts

        sample_rate = self.bridge.carrier.sample_rate

        def build_services():
            return (build_stt(runtime.stt, sample_rate=sample_rate), build_llm(runtime.llm),
                    build_tts(runtime.tts, sample_rate=sample_rate))

        # Off the event loop: each service builds an HTTP client with its own TLS
        # context (~10-20 ms of CPU apiece), which would stall every other live call.
        stt, llm, tts = await asyncio.to_thread(build_services)
        return CallSession(
            config=voice_config(runtime),
            transport=transport,
            stt=stt,
            llm=llm,
            tts=tts,
            hooks=TenantCallHooks(tenant=self.tenant, call_id=call_id),
            key_ids={"stt": runtime.stt.key_id, "llm": runtime.llm.key_id, "tts": runtime.tts.key_id},
        )

    @database_sync_to_async
    def _prepare(self, start: StreamStart):
        with tenant_context(self.tenant):
            return _prepare_call(start=start)

