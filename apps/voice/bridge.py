"""Bridges one carrier media websocket to one `CallSession`, whatever owns the socket
(a Channels consumer in production, a plain websockets server in the runtime tests).
The carrier is its media-stream protocol (apps.telephony.carriers.registry.CARRIERS).

    bridge = StreamBridge(carrier=CARRIERS["twilio"], send=..., close=..., start_session=...)
    await bridge.receive(text_or_bytes)     # every message
    await bridge.disconnected()             # socket gone
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from apps.voice.media_protocol import CLOSE_NORMAL, StreamProtocolError, StreamStart
from apps.voice.session import PROTOCOL_ERROR, CallOutcome, CallSession
from apps.voice.transport import MediaStreamParams, MediaStreamTransport

logger = logging.getLogger(__name__)

StartSession = Callable[[StreamStart, MediaStreamTransport], Awaitable[CallSession]]


def media_transport(carrier, start: StreamStart, send) -> MediaStreamTransport:
    return MediaStreamTransport(
        send=send,
        params=MediaStreamParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=carrier.sample_rate,
            audio_out_sample_rate=carrier.sample_rate,
            audio_out_10ms_chunks=2,  # 20 ms frames, what carriers send and expect
            audio_out_end_silence_secs=0,
            serializer=carrier.serializer(start),
        ),
        name=f"{carrier.name}-{start.stream_id}",
    )


class StreamBridge:
    def __init__(
        self,
        *,
        carrier,
        send: Callable[[str | bytes], Awaitable[None]],
        close: Callable[[int], Awaitable[None]],
        start_session: StartSession,
    ):
        self.carrier = carrier
        self._send = send
        self._close = close
        self._start_session = start_session
        self.stream_id: str | None = None
        self.session: CallSession | None = None
        self.task: asyncio.Task | None = None
        self.closed_with: int | None = None
        self.rejection: str = ""

    async def receive(self, data: str | bytes) -> None:
        if self.closed_with is not None:
            return
        try:
            event, message, audio = self.carrier.parse(data, expected_stream=self.stream_id)
            if event == "media":
                if self.session is not None and audio:
                    await self.session.feed_audio(audio)
            elif event == "start":
                if self.stream_id is not None:
                    raise StreamProtocolError("second start on one stream")
                start = self.carrier.start_of(message)
                self.stream_id = start.stream_id
                self.session = await self._start_session(start, media_transport(self.carrier, start, self._send))
                self.task = asyncio.create_task(self.session.run(), name=f"call-{start.stream_id}")
                self.task.add_done_callback(self._on_session_done)
            elif event == "stop":
                if self.session is not None:
                    await self.session.caller_hung_up()
            elif event == "dtmf" and self.session is not None:
                await self.session.feed(data)  # rare: the carrier's serializer reads the digit
        except StreamProtocolError as error:
            await self._refuse(error)

    async def disconnected(self) -> CallOutcome | None:
        """The socket is gone: end the session (if any) and wait for its records."""
        if self.session is not None and self.task is not None and not self.task.done():
            await self.session.caller_hung_up()
        if self.task is not None:
            return await asyncio.shield(self.task)
        return None

    async def _refuse(self, error: StreamProtocolError) -> None:
        self.rejection = str(error)
        logger.warning("closing %s media stream %s: %s", self.carrier.name, self.stream_id, error)
        self.closed_with = error.close_code
        if self.session is not None:
            await self.session.abort(PROTOCOL_ERROR, str(error))
        await self._close(error.close_code)

    def _on_session_done(self, task: asyncio.Task) -> None:
        """The call ended on our side (end_call, transfer, timeout...): close the socket."""
        if self.closed_with is None:
            self.closed_with = CLOSE_NORMAL
            asyncio.get_running_loop().create_task(self._close(CLOSE_NORMAL))
