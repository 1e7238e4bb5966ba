"""A Twilio Media Streams caller: plays Twilio's side of a `<Connect><Stream>` websocket.

Like Twilio it sends `connected`, `start`, then a 20 ms μ-law `media` frame every
20 ms for as long as the call lasts (silence between utterances), `dtmf` on
keypresses and `stop` at hang-up. It keeps what the agent sends: media (with
arrival times, to measure voice-to-voice latency and frame lateness), `clear`s
and `mark`s.

    caller = TwilioCaller.from_answer(twiml)     # the stream URL and parameters our answer named
    await caller.connect()
    await caller.say(pcm_8k)                    # queued behind what is playing
    first = await caller.wait_for_agent_audio(after=caller.last_speech_end)
"""
from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np
import websockets

from devtools.doubles.audio import pcm16_to_ulaw, speech_bounds, ulaw_to_pcm16

FRAME_SECS = 0.02
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
ULAW_SILENCE = b"\xff" * FRAME_BYTES
AGENT_AUDIBLE = 300  # peak |sample| above this counts as agent speech


@dataclass
class AgentFrame:
    at: float
    ulaw: bytes
    audible: bool


@dataclass
class Utterance:
    """One stretch of caller speech that was sent."""

    text: str
    started_at: float = 0.0
    speech_end_at: float = 0.0  # when the last audible 20 ms frame went out
    done: asyncio.Event = field(default_factory=asyncio.Event)


class TwilioCaller:
    def __init__(
        self,
        url: str,
        *,
        account_sid: str = "AC" + "0" * 32,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        custom_parameters: dict | None = None,
        headers: dict | None = None,
        connect_to: tuple[str, int] | None = None,
    ):
        """`connect_to` (host, port): where to open the TCP connection when the URL's
        host (sent as the Host header, e.g. a tenant's `acme.localhost:8000`) does not resolve."""
        self.url = url
        self.connect_to = connect_to
        self.account_sid = account_sid
        self.call_sid = call_sid or "CA" + uuid.uuid4().hex
        self.stream_sid = stream_sid or "MZ" + uuid.uuid4().hex
        self.custom_parameters = custom_parameters or {}
        self.headers = headers or {}
        self.agent_frames: list[AgentFrame] = []
        self.clears: list[float] = []
        self.marks: list[str] = []
        self.other_messages: list[dict] = []
        self.utterances: list[Utterance] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self._ws = None
        self._sequence = 0
        self._outbox: asyncio.Queue[tuple[bytes, Utterance | None, bool]] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._audio_event = asyncio.Event()

    @classmethod
    def from_answer(cls, markup: str, **kwargs) -> TwilioCaller:
        """The caller Twilio would connect for this TwiML (Telnyx: TeXML): the `<Stream>`'s URL, and
        every `<Parameter>` (our call id and stream token) sent back as the start's custom parameters."""
        stream = ET.fromstring(markup).find("./Connect/Stream")
        if stream is None:
            raise ValueError(f"the answer connects no stream: {markup[:200]}")
        parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        return cls(stream.get("url"), custom_parameters=parameters, **kwargs)

    # -- connection --------------------------------------------------------------------------

    async def connect(self, *, send_start: bool = True) -> None:
        extra = {"host": self.connect_to[0], "port": self.connect_to[1]} if self.connect_to else {}
        self._ws = await websockets.connect(
            self.url, additional_headers=self.headers, max_size=None, open_timeout=10, **extra
        )
        self._tasks.append(asyncio.create_task(self._receive()))
        connected = self._connected_message()
        if connected is not None:
            await self.send_json(connected)
        if send_start:
            await self.send_start()
            self._tasks.append(asyncio.create_task(self._media_clock()))

    async def send_start(self) -> None:
        await self.send_json(self._start_message())

    def _connected_message(self) -> dict | None:
        return {"event": "connected", "protocol": "Call", "version": "1.0.0"}

    def _start_message(self) -> dict:
        return (
            {
                "event": "start",
                "sequenceNumber": self._next_sequence(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": self.custom_parameters,
                },
                "streamSid": self.stream_sid,
            }
        )

    # Carrier-specific wire format (TelnyxCaller, PlivoCaller, VonageCaller override these).

    def _stop_message(self) -> dict | None:
        return {
            "event": "stop",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        }

    async def _send_media(self, ulaw: bytes, chunk: int) -> None:
        await self.send_json(
            {
                "event": "media",
                "sequenceNumber": self._next_sequence(),
                "media": {
                    "track": "inbound",
                    "chunk": str(chunk),
                    "timestamp": str(chunk * 20),
                    "payload": base64.b64encode(ulaw).decode(),
                },
                "streamSid": self.stream_sid,
            }
        )

    def _agent_audio(self, raw: str | bytes) -> tuple[bytes | None, dict]:
        """(μ-law audio, None if the message carries none; the JSON message)."""
        message = json.loads(raw)
        if message.get("event") == "media":
            return base64.b64decode(message["media"]["payload"]), message
        return None, message

    _CLEAR_EVENT = "clear"

    async def send_json(self, message: dict) -> None:
        await self._ws.send(json.dumps(message))

    async def send_raw(self, data: str | bytes) -> None:
        await self._ws.send(data)

    async def hang_up(self) -> None:
        """Twilio's `stop`, then the socket closes."""
        if self.closed.is_set():
            return
        try:
            stop = self._stop_message()
            if stop is not None:
                await self.send_json(stop)
        except websockets.ConnectionClosed:
            pass
        await self.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._ws is not None:
            await self._ws.close()
            self.close_code = self._ws.close_code if self.close_code is None else self.close_code
        self.closed.set()

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    # -- sending -----------------------------------------------------------------------------

    async def say(self, pcm_8k: bytes, text: str = "") -> Utterance:
        """Queue caller speech (16-bit 8 kHz PCM); returns at once. `await utterance.done.wait()`."""
        utterance = Utterance(text=text)
        _start, end = speech_bounds(pcm_8k, 8000)
        last_audible_frame = max(0, int(np.ceil(end / FRAME_SECS)) - 1)
        ulaw = pcm16_to_ulaw(pcm_8k)
        frames = [ulaw[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff") for i in range(0, len(ulaw), FRAME_BYTES)]
        self.utterances.append(utterance)
        for index, frame in enumerate(frames):
            await self._outbox.put((frame, utterance, index == last_audible_frame))
        await self._outbox.put((b"", utterance, False))  # end marker
        return utterance

    async def press(self, digit: str) -> None:
        await self.send_json(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_sequence(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    @property
    def last_speech_end(self) -> float:
        return self.utterances[-1].speech_end_at if self.utterances else 0.0

    async def _media_clock(self) -> None:
        """One frame every 20 ms on an absolute schedule: speech if queued, else silence."""
        chunk = 0
        next_at = time.monotonic()
        try:
            while True:
                payload = ULAW_SILENCE
                try:
                    while True:
                        frame, utterance, is_speech_end = self._outbox.get_nowait()
                        if frame:
                            payload = frame
                            if utterance and not utterance.started_at:
                                utterance.started_at = time.monotonic()
                            if utterance and is_speech_end:
                                utterance.speech_end_at = time.monotonic() + FRAME_SECS
                            break
                        if utterance:  # end marker
                            utterance.done.set()
                except asyncio.QueueEmpty:
                    pass
                chunk += 1
                await self._send_media(payload, chunk)
                next_at += FRAME_SECS
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        except (websockets.ConnectionClosed, asyncio.CancelledError):
            return

    # -- receiving ---------------------------------------------------------------------------

    async def _receive(self) -> None:
        try:
            async for raw in self._ws:
                now = time.monotonic()
                ulaw, message = self._agent_audio(raw)
                event = message.get("event") or message.get("action")
                if ulaw is not None:
                    samples = np.frombuffer(ulaw_to_pcm16(ulaw), dtype=np.int16)
                    audible = bool(samples.size) and int(np.abs(samples.astype(np.int32)).max()) > AGENT_AUDIBLE
                    self.agent_frames.append(AgentFrame(at=now, ulaw=ulaw, audible=audible))
                    if audible:
                        self._audio_event.set()
                elif event == self._CLEAR_EVENT:
                    self.clears.append(now)
                elif event == "mark":
                    self.marks.append(message.get("mark", {}).get("name", ""))
                else:
                    self.other_messages.append(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self.closed.set()
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()

    async def wait_for_agent_audio(self, *, after: float = 0.0, timeout: float = 10.0) -> float:
        """Arrival time of the first audible agent frame after `after`."""
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.agent_frames:
                if frame.audible and frame.at > after:
                    return frame.at
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed.is_set():
                raise TimeoutError(f"no agent audio after {after:.3f} within {timeout} s")
            self._audio_event.clear()
            try:
                await asyncio.wait_for(self._audio_event.wait(), min(remaining, 0.05))
            except TimeoutError:
                pass

    async def wait_for_agent_quiet(self, *, quiet_secs: float = 0.4, timeout: float = 15.0) -> float:
        """Wait until the agent has sent no audible audio for `quiet_secs`; returns the last one's time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = max((f.at for f in self.agent_frames if f.audible), default=0.0)
            if last and time.monotonic() - last >= quiet_secs:
                return last
            if self.closed.is_set():
                return last
            await asyncio.sleep(0.05)
        raise TimeoutError("agent kept talking")

    async def wait_closed(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.closed.wait(), timeout)

    # -- analysis ----------------------------------------------------------------------------

    def agent_audio_pcm(self) -> bytes:
        return ulaw_to_pcm16(b"".join(frame.ulaw for frame in self.agent_frames))

    def audible_agent_secs(self, *, after: float = 0.0) -> float:
        return FRAME_SECS * sum(1 for f in self.agent_frames if f.audible and f.at > after)

    def frame_lateness(self, gap_secs: float = 0.2) -> list[float]:
        """For every agent frame: how late it arrived against a 20 ms playout clock
        started by the first frame of its burst (negative = early, buffered)."""
        lateness: list[float] = []
        burst_start = None
        index = 0
        previous = None
        for frame in self.agent_frames:
            if previous is None or frame.at - previous > gap_secs or (self.clears and previous < self.clears[-1] <= frame.at):
                burst_start, index = frame.at, 0
            lateness.append(frame.at - (burst_start + index * FRAME_SECS))
            index += 1
            previous = frame.at
        return lateness
