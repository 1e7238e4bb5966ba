"""A Pipecat transport fed by a Channels consumer (or any other socket owner).

The consumer owns the websocket and gives the transport an async `send` callable.
Caller audio arrives already decoded (the carrier's media protocol parses each
message once) through `MediaStreamTransport.feed_audio()`; keypad messages go through
`feed()` to the carrier's Pipecat `FrameSerializer` (Twilio, Telnyx, Plivo,
Vonage), which also writes every outbound message. Audio stays at the carrier's
rate (8 kHz for the μ-law carriers): the pipeline runs at that rate, so nothing
resamples.

Caller audio is pushed straight from the socket's receive into the pipeline
(the VAD runs in direct mode right after this transport): Pipecat's input
transport would put each frame on a queue for a task of its own that waits on
it with `asyncio.wait_for`, a hop per frame that buys nothing here, since the
consumer already receives one message at a time.

Outbound audio is paced in real time with a small lead (carriers play what they
receive; sending faster only grows their buffer and makes barge-in `clear`s
throw more away). The pacing clock is absolute: chunk n of a burst is due at
burst start + n × chunk length, so a late wake-up is caught up on the next
chunk instead of pushing every later chunk back.

The transport also tees the audio it moves into the call's `CallRecorder` and
reports each sent agent chunk to a callback (the tracer's "first agent audio"):
neither needs a processor of its own, so agent audio is not pushed on past the
output transport and caller audio stops at STT (see `CallSession`).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
    StopFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

from apps.voice.recording import CallRecorder

SendCallable = Callable[[str | bytes], Awaitable[None]]

# How far ahead of real time outbound audio may run.
OUTPUT_LEAD_SECS = 0.06
# A barge-in clears the carrier's queue until this long after our last audio should have played out.
CLEAR_MARGIN_SECS = 0.2
# Caller audio that arrives while the pipeline is still starting is kept for it, up to this much.
EARLY_AUDIO_SECS = 10.0


class MediaStreamParams(TransportParams):
    serializer: FrameSerializer | None = None
    # Carriers send 20 ms frames. Every frame costs a trip through each processor's
    # queue and task, so caller audio is pushed in 40 ms frames: half the
    # per-call CPU of the frame machinery. Except while the caller may just have
    # finished (see `_MediaStreamInput.push_at_once_while`): then each 20 ms goes at
    # once, so the end of a turn is not heard up to 20 ms late.
    audio_in_frame_ms: int = 40


class _MediaStreamInput(BaseInputTransport):
    def __init__(self, transport: MediaStreamTransport, params: MediaStreamParams, **kwargs):
        super().__init__(params, **kwargs)
        self._transport = transport
        self._serializer = params.serializer
        self._started = False
        self._stopped = False
        self._pending = bytearray()
        self._frame_bytes = 0
        self._at_once: Callable[[], bool] | None = None
        # Caller audio from before the pipeline had started (the stream's messages queue up while the
        # call is set up, then come all at once): pushed, in order, with the first audio after the start.
        self._early = bytearray()

    async def setup(self, setup: FrameProcessorSetup):
        await super().setup(setup)
        if self._serializer:
            await self._serializer.setup(setup)

    async def start(self, frame: StartFrame):
        await super().start(frame)
        self._frame_bytes = self.sample_rate * 2 * self._params.audio_in_frame_ms // 1000
        await self.set_transport_ready(frame)

    async def set_transport_ready(self, frame: StartFrame):
        # Not super(): that starts the audio queue and task this transport does without.
        self._started = True

    async def stop(self, frame: EndFrame):
        self._started, self._stopped = False, True
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame):
        self._started, self._stopped = False, True
        await super().cancel(frame)

    async def pause(self, frame: StopFrame):
        # Not super(): it restarts the audio task. Audio is dropped until the next StartFrame.
        self._paused = True

    async def push_audio_frame(self, frame: InputAudioRawFrame):
        """Direct mode: what BaseInputTransport's audio task does with a frame, done here."""
        if not (self._started and self._params.audio_in_enabled) or self._paused:
            return
        if self._params.audio_in_filter:
            frame.audio = await self._params.audio_in_filter.filter(frame.audio)
            if not frame.audio:
                return
        if self._params.audio_in_passthrough:
            await self.push_frame(frame)

    def push_at_once_while(self, condition: Callable[[], bool]) -> None:
        """While `condition()` holds (the VAD is counting down to "stopped speaking"), caller
        audio is pushed as it comes instead of in audio_in_frame_ms frames."""
        self._at_once = condition

    async def receive_audio(self, pcm: bytes) -> None:
        """Caller audio (16-bit PCM at the carrier's rate): recorded, pushed in audio_in_frame_ms frames."""
        if not self._started:
            if not self._stopped and len(self._early) < EARLY_AUDIO_SECS * (self._params.audio_in_sample_rate or 8000) * 2:
                self._early += pcm  # the caller may already be talking: not a word lost
            return
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            for offset in range(0, len(early), self._frame_bytes):
                await self._receive(early[offset : offset + self._frame_bytes])
        await self._receive(pcm)

    async def _receive(self, pcm: bytes) -> None:
        self._transport.recorder.caller_audio(pcm)
        self._pending += pcm
        if len(self._pending) >= self._frame_bytes or (self._at_once is not None and self._at_once()):
            audio, self._pending = bytes(self._pending), bytearray()
            await self.push_audio_frame(InputAudioRawFrame(audio=audio, sample_rate=self.sample_rate, num_channels=1))

    async def receive(self, message: str | bytes) -> None:
        """Deserialize one non-audio carrier message (a keypad digit) and push what it carries."""
        if not self._started or self._serializer is None:
            return
        # Only keypad messages come here: the bridge hands caller audio to receive_audio().
        frame = await self._serializer.deserialize(message)
        if frame is not None:
            await self.push_frame(frame)


class _MediaStreamOutput(BaseOutputTransport):
    def __init__(self, transport: MediaStreamTransport, params: MediaStreamParams, **kwargs):
        super().__init__(params, **kwargs)
        self._transport = transport
        self._serializer = params.serializer
        self._chunk_secs = 0.0
        self._burst_start = 0.0  # when chunk 0 of the current burst was due
        self._burst_chunks = 0  # chunks sent in the current burst

    async def setup(self, setup: FrameProcessorSetup):
        await super().setup(setup)
        if self._serializer:
            await self._serializer.setup(setup)

    async def start(self, frame: StartFrame):
        await super().start(frame)
        self._chunk_secs = self.audio_chunk_size / (self.sample_rate * 2)
        await self.set_transport_ready(frame)

    async def stop(self, frame: EndFrame):
        await super().stop(frame)
        await self._write(frame)

    async def cancel(self, frame: CancelFrame):
        await super().cancel(frame)
        await self._write(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            # Twilio `clear`, Telnyx/Plivo `clearAudio`, ...: drop what the carrier queued,
            # when it has anything queued (a caller who speaks while the agent is silent
            # needs no clear; the audio not yet sent is dropped here by Pipecat).
            if self._carrier_is_playing():
                await self._write(frame)
            self._burst_chunks = 0
            self._burst_start = 0.0

    def _carrier_is_playing(self) -> bool:
        """Audio we sent that the carrier has not finished playing (with a margin for jitter)."""
        if self._burst_chunks == 0:
            return False
        played_out_at = self._burst_start + self._burst_chunks * self._chunk_secs
        return time.monotonic() < played_out_at + CLEAR_MARGIN_SECS

    async def send_message(self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame):
        await self._write(frame)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        # Sent agent audio goes no further: the recorder and the tracer are fed
        # here, and nothing after the output transport needs the audio itself.
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, OutputAudioRawFrame):
            return
        await super().push_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if self._transport.closed:
            return False
        if not await self._write(frame):
            return False
        self._transport.recorder.agent_audio(frame.audio)
        # Absolute schedule: chunk n plays from burst_start + n * chunk_secs. If
        # the carrier has run dry (we are past the next chunk's due time), this
        # chunk starts a new burst.
        now = time.monotonic()
        due = self._burst_start + self._burst_chunks * self._chunk_secs
        if self._burst_chunks == 0 or now > due:
            self._burst_start, self._burst_chunks = now, 0
        self._burst_chunks += 1
        ahead = self._burst_start + self._burst_chunks * self._chunk_secs - OUTPUT_LEAD_SECS - now
        if ahead > 0:
            await asyncio.sleep(ahead)
        return True

    async def _write(self, frame: Frame) -> bool:
        if self._transport.closed or self._serializer is None:
            return False
        try:
            payload = await self._serializer.serialize(frame)
            if payload:
                await self._transport.send(payload)
                if isinstance(frame, OutputAudioRawFrame):
                    self._transport.note_audio_sent()
        except Exception as error:  # the socket went away under us
            logger.warning(f"{self}: could not send {frame.name}: {error}")
            return False
        return True


class MediaStreamTransport(BaseTransport):
    """Transport whose socket lives elsewhere (a Channels consumer)."""

    def __init__(self, *, send: SendCallable, params: MediaStreamParams, name: str | None = None):
        super().__init__(name=name)
        self._send = send
        self._params = params
        self.closed = False
        self.recorder = CallRecorder(params.audio_out_sample_rate or params.audio_in_sample_rate or 8000)
        self.last_audio_sent_at = 0.0
        self._on_audio_sent: Callable[[], None] | None = None
        self._input = _MediaStreamInput(self, params, name=f"{self.name}#input")
        self._output = _MediaStreamOutput(self, params, name=f"{self.name}#output")

    def input(self) -> _MediaStreamInput:
        return self._input

    def output(self) -> _MediaStreamOutput:
        return self._output

    async def feed(self, message: str | bytes) -> None:
        await self._input.receive(message)

    async def feed_audio(self, pcm: bytes) -> None:
        await self._input.receive_audio(pcm)

    async def send(self, payload: str | bytes) -> None:
        await self._send(payload)

    def note_audio_sent(self) -> None:
        self.last_audio_sent_at = time.monotonic()
        if self._on_audio_sent is not None:
            self._on_audio_sent()

    def on_audio_sent(self, callback: Callable[[], None]) -> None:
        self._on_audio_sent = callback

    def mark_closed(self) -> None:
        """The socket is gone: stop sending."""
        self.closed = True
