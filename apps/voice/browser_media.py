"""The browser's media protocol ("Talk to this agent"): the same pipeline a phone call
runs, with a browser tab instead of a carrier at the other end of the websocket.

Browser → server:
- text `{"event": "start", "call_id": "<uuid>", "token": "<single-use token>"}` once, first
  (the portal handed out both; `apps.calls.services.call_test_create`);
- binary frames: the microphone as 16-bit little-endian mono PCM at `SAMPLE_RATE` (8 kHz,
  the pipeline's telephony rate; static/calls/test_call.js downsamples);
- text `{"event": "stop"}`: the person hung up (closing the socket means the same).

Server → browser:
- binary frames: the agent's voice, 16-bit little-endian mono PCM at `SAMPLE_RATE`;
- text `{"event": "clear"}`: the caller barged in, drop the agent audio still queued;
- text `{"event": "turn", ...}`: the live trace, one turn's state each time it changes
  (index, user_text, bot_text, stt_final_ms, llm_ttft_ms, tts_ttfb_ms, voice_to_voice_ms...);
- text `{"event": "ended", "end_reason": ...}` before the socket closes.

Validation as for the carriers (apps.voice.media_protocol): anything else is a
`StreamProtocolError` and the socket closes with a 44xx code.
"""
from __future__ import annotations

import json

from pipecat.frames.frames import Frame, InterruptionFrame, OutputAudioRawFrame
from pipecat.serializers.base_serializer import FrameSerializer

from apps.voice.media_protocol import (
    StreamMessage,
    StreamProtocolError,
    StreamStart,
    check_size,
    event_of,
    identifier,
    json_object,
)

SAMPLE_RATE = 8000
_EVENTS = frozenset({"start", "stop"})


class BrowserFrameSerializer(FrameSerializer):
    """Writes what the pipeline sends to the browser: raw PCM, and `clear` on a barge-in."""

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame):
            return frame.audio
        if isinstance(frame, InterruptionFrame):
            return json.dumps({"event": "clear"})
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        return None  # a browser has no keypad


class BrowserMediaStream:
    """The media protocol of a browser test call (same surface as a carrier's)."""

    name = "browser"
    sample_rate = SAMPLE_RATE

    def parse(self, data: str | bytes, *, expected_stream: str | None) -> StreamMessage:
        check_size(data)
        if isinstance(data, bytes):
            if expected_stream is None:
                raise StreamProtocolError("media before start")
            if len(data) % 2:
                raise StreamProtocolError("audio frame of an odd number of bytes: 16-bit PCM expected")
            return StreamMessage("media", {}, data)
        message = json_object(data)
        event = event_of(message, _EVENTS)
        if event == "start":
            self.start_of(message)
        elif expected_stream is None:
            raise StreamProtocolError(f"{event} before start")
        return StreamMessage(event, message)

    def start_of(self, message: dict) -> StreamStart:
        call_id = identifier(message.get("call_id"), "call_id")
        token = identifier(message.get("token"), "token")
        # No carrier: the stream is the call's own.
        return StreamStart(stream_id=f"browser-{call_id}", carrier_call_id="",
                           parameters={"call_id": call_id, "token": token})

    def serializer(self, start: StreamStart) -> BrowserFrameSerializer:
        return BrowserFrameSerializer()


BROWSER = BrowserMediaStream()
