"""Carrier media websockets: doors into the voice runtime.

Each consumer accepts the socket and hands every message to a `StreamBridge`. On
the stream's `start`, `call_stream_start` (apps.calls.services) decides whether
this stream may carry the call (capability token, live call, the carrier's call)
and leases the agent's keys; `session_for_call` (apps.voice.launch) builds the
session. The database work runs on the call database pool in the tenant's schema
(apps.core.tenant_db), never on the event loop.

`BrowserCallConsumer` is the same door for a browser test call ("Talk to this agent",
apps.voice.browser_media): the browser's protocol instead of a carrier's, hooks that
show the trace live and have no carrier leg to hang up."""
from __future__ import annotations

import asyncio
import json
import logging

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.calls.services import call_stream_failed, call_stream_start
from apps.core.errors import ApplicationError
from apps.core.tenant_db import in_tenant
from apps.telephony.carriers.registry import CARRIERS
from apps.voice.bridge import StreamBridge
from apps.voice.browser_media import BROWSER
from apps.voice.launch import session_for_call
from apps.voice.media_protocol import CLOSE_POLICY, StreamProtocolError, StreamStart
from apps.voice.records import TenantCallHooks
from apps.voice.transport import MediaStreamTransport

logger = logging.getLogger(__name__)


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
            carrier=self.media_protocol(),
            send=self._send_payload,
            close=self._close,
            start_session=self._start_session,
        )
        await self.accept()

    async def __call__(self, scope, receive, send):
        # Channels' AsyncConsumer.__call__ without its await_many_dispatch: with no channel
        # layer the socket is the one source of messages, so each is awaited directly instead
        # of through a new task and an asyncio.wait per message (50 a second per call).
        # Pinned by apps/telephony/tests/test_media_consumer_loop.py.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message):
        # Channels (4.3) awaits `close_old_connections` on its one shared sync thread before
        # every message: for a media stream that is a thread hop per 20 ms frame, all calls of
        # the process queued on one thread, before the frame reaches the call. Nothing here uses
        # that thread's connection (call database work runs on apps.core.tenant_db's pool), so
        # media messages skip it; connect and disconnect keep Channels' handling.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def receive(self, text_data=None, bytes_data=None):
        await self.bridge.receive(text_data if text_data is not None else bytes_data)

    async def disconnect(self, code):
        try:
            await self.bridge.disconnected()
        except Exception:
            logger.exception("call on %s stream %s did not wind down cleanly", self.carrier_name, self.bridge.stream_id)

    def media_protocol(self):
        return CARRIERS[self.carrier_name]

    def call_hooks(self, call_id: str):
        return TenantCallHooks(tenant=self.tenant, call_id=call_id)

    async def _send_payload(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            await self.send(bytes_data=payload)
        else:
            await self.send(text_data=payload)

    async def _close(self, code: int) -> None:
        await self.close(code=code)

    async def _start_session(self, start: StreamStart, transport: MediaStreamTransport):
        try:
            started = await in_tenant(
                self.tenant, call_stream_start, client=self.tenant, call_id=start.parameters.get("call_id"),
                stream_id=start.stream_id, carrier_call_id=start.carrier_call_id, token=start.parameters.get("token"),
            )
        except ApplicationError as refusal:
            raise StreamProtocolError(refusal.message, close_code=CLOSE_POLICY) from None

        async def on_build_failed(error: str) -> None:
            await in_tenant(self.tenant, call_stream_failed, client=self.tenant, call_id=started.call_id, error=error)

        return await session_for_call(
            started=started, transport=transport, hooks=self.call_hooks(started.call_id),
            sample_rate=self.bridge.carrier.sample_rate, on_build_failed=on_build_failed,
        )


class BrowserCallHooks(TenantCallHooks):
    """A browser test call's record is written like any call's; there is no carrier leg
    (the socket closing is the hang-up), and the browser sees each turn as it changes."""

    def __init__(self, *, tenant, call_id: str, send_event):
        super().__init__(tenant=tenant, call_id=call_id)
        self._send_event = send_event

    def on_live(self, turn: dict) -> None:
        self._send_event({"event": "turn", **turn})

    async def hang_up(self) -> None:
        """Nothing to tell a carrier: the consumer closes the socket when the session ends."""

    async def transfer(self, to_number: str) -> None:
        from apps.calls.services import call_transfer_failed_record

        await self._in_tenant(call_transfer_failed_record, call_id=self.call_id, to_number=to_number,
                              error="a browser test call cannot be transferred")

    async def on_end(self, *, end_reason: str, error: str, usage: dict) -> None:
        await super().on_end(end_reason=end_reason, error=error, usage=usage)
        self._send_event({"event": "ended", "end_reason": end_reason, "error": error})


class BrowserCallConsumer(MediaStreamConsumer):
    """/ws/test-call/ on a client host: a browser test call, joined with the single-use
    token the portal minted for a signed-in user (apps.calls.services.call_test_create)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, carrier_name=BROWSER.name, **kwargs)
        self._pending_events: set[asyncio.Task] = set()

    def media_protocol(self):
        return BROWSER

    def call_hooks(self, call_id: str):
        return BrowserCallHooks(tenant=self.tenant, call_id=call_id, send_event=self._send_event)

    def _send_event(self, event: dict) -> None:
        """From the pipeline's task: hand the event to the socket without waiting on it."""
        if self.bridge.closed_with is not None:
            return
        task = asyncio.get_running_loop().create_task(self._send_text(json.dumps(event, default=str)))
        self._pending_events.add(task)
        task.add_done_callback(self._pending_events.discard)

    async def _send_text(self, text: str) -> None:
        try:
            await self.send(text_data=text)
        except Exception:  # noqa: BLE001 - the browser went away; the call record is written regardless
            logger.debug("browser test call: event not delivered", exc_info=True)
