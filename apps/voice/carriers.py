"""Carrier media-stream protocols: how a stream starts, what a valid message looks
like, how it stops, and which Pipecat serializer speaks its audio.

Validation happens here, before anything reaches a serializer: a malformed,
oversized or foreign message is a `StreamProtocolError` and the stream is closed
with a reason (the carrier gets a clear close code; the call record gets
end reason "protocol_error").
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.serializers.vonage import VonageFrameSerializer

# A 20 ms μ-law frame is 160 bytes (~220 base64 + JSON). Carriers send at most a
# few hundred ms per message; anything near this is not a media stream.
MAX_MESSAGE_BYTES = 64 * 1024

# ASGI servers (daphne) let an application close with 1000 or 3000-4999 only,
# so the reasons use the private range (4403/4404 are the tenant refusals).
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 4400  # malformed message, unknown event, media before start
CLOSE_POLICY = 4410  # unknown stream id / call, or a call that is not live here
CLOSE_TOO_BIG = 4413  # message over MAX_MESSAGE_BYTES


class StreamProtocolError(Exception):
    def __init__(self, message: str, *, close_code: int = CLOSE_PROTOCOL_ERROR):
        super().__init__(message)
        self.close_code = close_code


@dataclass(frozen=True)
class StreamStart:
    stream_id: str
    carrier_call_id: str
    account_id: str = ""
    parameters: dict = field(default_factory=dict)


def _check_size(data: str | bytes) -> None:
    if len(data) > MAX_MESSAGE_BYTES:
        raise StreamProtocolError(f"message of {len(data)} bytes is over {MAX_MESSAGE_BYTES}", close_code=CLOSE_TOO_BIG)


def _json(data: str | bytes) -> dict:
    if isinstance(data, bytes):
        try:
            data = data.decode()
        except UnicodeDecodeError as error:
            raise StreamProtocolError("binary frame where JSON text was expected") from error
    try:
        message = json.loads(data)
    except json.JSONDecodeError as error:
        raise StreamProtocolError(f"malformed JSON: {error.msg}") from error
    if not isinstance(message, dict):
        raise StreamProtocolError("message is not a JSON object")
    return message


class TwilioMediaStreams:
    """Twilio `<Connect><Stream>`: JSON text frames, base64 μ-law 8 kHz."""

    name = "twilio"
    sample_rate = 8000
    _EVENTS = {"connected", "start", "media", "dtmf", "mark", "stop"}

    def parse(self, data: str | bytes, *, expected_stream: str | None) -> tuple[str, dict]:
        """Validate one message; returns (event, message)."""
        _check_size(data)
        message = _json(data)
        event = message.get("event")
        if event not in self._EVENTS:
            raise StreamProtocolError(f"unknown event {event!r}")
        if event == "start":
            start = message.get("start")
            if not isinstance(start, dict) or not start.get("streamSid") or not start.get("callSid"):
                raise StreamProtocolError("start without streamSid/callSid")
        elif event in {"media", "dtmf", "mark", "stop"}:
            stream = message.get("streamSid")
            if expected_stream is None:
                raise StreamProtocolError(f"{event} before start")
            if stream != expected_stream:
                raise StreamProtocolError(f"unknown stream id {stream!r}", close_code=CLOSE_POLICY)
            if event == "media":
                payload = (message.get("media") or {}).get("payload")
                if not isinstance(payload, str):
                    raise StreamProtocolError("media without payload")
                try:
                    base64.b64decode(payload, validate=True)
                except (binascii.Error, ValueError) as error:
                    raise StreamProtocolError("media payload is not base64") from error
        return event, message

    def start_of(self, message: dict) -> StreamStart:
        start = message["start"]
        return StreamStart(
            stream_id=start["streamSid"],
            carrier_call_id=start["callSid"],
            account_id=start.get("accountSid", ""),
            parameters=dict(start.get("customParameters") or {}),
        )

    def serializer(self, start: StreamStart) -> FrameSerializer:
        # auto_hang_up=False: hang-ups and transfers go through our telephony
        # service; the serializer would "complete" a call we just transferred.
        return TwilioFrameSerializer(
            stream_sid=start.stream_id,
            call_sid=start.carrier_call_id,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False, sample_rate=self.sample_rate),
        )


class VonageAudioConnector:
    """Vonage websocket audio connector: a JSON `websocket:connected` first, then
    binary 16-bit linear PCM (we ask for `audio/l16;rate=8000`)."""

    name = "vonage"
    sample_rate = 8000
    _EVENTS = {"websocket:connected", "websocket:cleared", "websocket:notify", "websocket:dtmf"}

    def parse(self, data: str | bytes, *, expected_stream: str | None) -> tuple[str, dict]:
        _check_size(data)
        if isinstance(data, bytes):
            if expected_stream is None:
                raise StreamProtocolError("audio before websocket:connected")
            if len(data) % 2:
                raise StreamProtocolError("odd-length linear16 frame")
            return "media", {}
        message = _json(data)
        event = message.get("event")
        if event not in self._EVENTS:
            raise StreamProtocolError(f"unknown event {event!r}")
        if event == "websocket:connected":
            if not message.get("stream_id") or not message.get("call_uuid"):
                raise StreamProtocolError("websocket:connected without stream_id/call_uuid headers")
            return "start", message
        return ("dtmf" if event == "websocket:dtmf" else "other"), message

    def start_of(self, message: dict) -> StreamStart:
        return StreamStart(
            stream_id=str(message["stream_id"]),
            carrier_call_id=str(message["call_uuid"]),
            parameters={k: v for k, v in message.items() if k not in {"event", "content-type"}},
        )

    def serializer(self, start: StreamStart) -> FrameSerializer:
        return VonageFrameSerializer(
            VonageFrameSerializer.InputParams(vonage_sample_rate=self.sample_rate, sample_rate=self.sample_rate)
        )


CARRIERS = {carrier.name: carrier for carrier in (TwilioMediaStreams(), VonageAudioConnector())}
