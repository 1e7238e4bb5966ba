"""Carrier media-stream protocols: how a stream starts, what a valid message looks
like, how it stops, and which Pipecat serializer speaks its audio.

Validation happens here, before anything reaches the pipeline: a malformed,
oversized or foreign message is a `StreamProtocolError` and the stream is closed
with a reason (the carrier gets a clear close code; the call record gets
end reason "protocol_error").

Each message is parsed once: `parse` decodes the JSON and the base64 and, for
caller audio, hands back 16-bit PCM at the carrier's rate, which the transport
pushes as it is. The Pipecat serializers only write outbound messages (audio,
`clear`) and read the rare keypad message.
"""
from __future__ import annotations

import base64
import binascii
import json
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.serializers.vonage import VonageFrameSerializer

with warnings.catch_warnings():
    # Deprecated since 3.11 (removed in 3.13, where Pipecat uses audioop-lts); Pipecat's serializers use it too.
    # μ-law → PCM for a 20 ms frame: 0.15 µs here, 2.1 µs through a numpy lookup table (measured).
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

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


class StreamMessage(NamedTuple):
    """One validated carrier message. `audio`: the caller's 16-bit PCM at the
    carrier's rate, for "media" events only (may be empty)."""

    event: str
    message: dict
    audio: bytes = b""


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


def _ulaw_media(message: dict) -> bytes:
    """A media message's base64 μ-law payload, checked and decoded to 16-bit PCM."""
    payload = (message.get("media") or {}).get("payload")
    if not isinstance(payload, str):
        raise StreamProtocolError("media without payload")
    try:
        ulaw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise StreamProtocolError("media payload is not base64") from error
    return audioop.ulaw2lin(ulaw, 2)


def _check_stream(event: str, stream: object, expected_stream: str | None) -> None:
    if expected_stream is None:
        raise StreamProtocolError(f"{event} before start")
    if stream != expected_stream:
        raise StreamProtocolError(f"unknown stream id {stream!r}", close_code=CLOSE_POLICY)


class _JsonMediaStream:
    """What Twilio, Telnyx and Plivo streams share: JSON text frames with an `event`,
    a `start` checked by `_check_start`, the stream id under `_STREAM_KEY` on the
    events in `_STREAM_EVENTS`, base64 μ-law `media`. Events in `_OTHER_EVENTS` are
    accepted and reported as "other"."""

    sample_rate = 8000
    _EVENTS: frozenset[str] = frozenset()
    _STREAM_EVENTS: frozenset[str] = frozenset()
    _OTHER_EVENTS: frozenset[str] = frozenset()
    _STREAM_KEY = ""

    def parse(self, data: str | bytes, *, expected_stream: str | None) -> StreamMessage:
        """Validate one message (and decode its audio)."""
        _check_size(data)
        message = _json(data)
        event = message.get("event")
        if event not in self._EVENTS:
            raise StreamProtocolError(f"unknown event {event!r}")
        if event == "start":
            self._check_start(message)
        elif event in self._STREAM_EVENTS:
            _check_stream(event, message.get(self._STREAM_KEY), expected_stream)
            if event == "media":
                return self._media(message)
        elif event in self._OTHER_EVENTS:
            return StreamMessage("other", message)
        return StreamMessage(event, message)

    def _check_start(self, message: dict) -> None:
        raise NotImplementedError

    def _media(self, message: dict) -> StreamMessage:
        return StreamMessage("media", message, _ulaw_media(message))


def _start_section(message: dict) -> dict:
    start = message.get("start")
    return start if isinstance(start, dict) else {}


def _check_encoding(found: object, expected: str) -> None:
    if found != expected:
        raise StreamProtocolError(f"media format {found!r}: this stream must be {expected}")


class TwilioMediaStreams(_JsonMediaStream):
    """Twilio `<Connect><Stream>`: JSON text frames, base64 μ-law 8 kHz."""

    name = "twilio"
    _EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop"})
    _STREAM_EVENTS = frozenset({"media", "dtmf", "mark", "stop"})
    _STREAM_KEY = "streamSid"

    def _check_start(self, message: dict) -> None:
        start = _start_section(message)
        if not start.get("streamSid") or not start.get("callSid"):
            raise StreamProtocolError("start without streamSid/callSid")

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

    def parse(self, data: str | bytes, *, expected_stream: str | None) -> StreamMessage:
        _check_size(data)
        if isinstance(data, bytes):
            if expected_stream is None:
                raise StreamProtocolError("audio before websocket:connected")
            if len(data) % 2:
                raise StreamProtocolError("odd-length linear16 frame")
            return StreamMessage("media", {}, data)  # already 16-bit PCM at our rate
        message = _json(data)
        event = message.get("event")
        if event not in self._EVENTS:
            raise StreamProtocolError(f"unknown event {event!r}")
        if event == "websocket:connected":
            if not message.get("stream_id") or not message.get("call_uuid"):
                raise StreamProtocolError("websocket:connected without stream_id/call_uuid headers")
            return StreamMessage("start", message)
        return StreamMessage("dtmf" if event == "websocket:dtmf" else "other", message)

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


class TelnyxMediaStreams(_JsonMediaStream):
    """Telnyx media streaming (TeXML `<Stream bidirectionalMode="rtp">` or Call Control
    `stream_url`): JSON text frames, base64 PCMU 8 kHz, `stream_id` on every message."""

    name = "telnyx"
    _EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop", "error"})
    _STREAM_EVENTS = frozenset({"media", "dtmf", "mark", "stop"})
    _OTHER_EVENTS = frozenset({"error"})
    _STREAM_KEY = "stream_id"

    def _check_start(self, message: dict) -> None:
        start = _start_section(message)
        if not message.get("stream_id") or not start.get("call_control_id"):
            raise StreamProtocolError("start without stream_id/call_control_id")
        _check_encoding((start.get("media_format") or {}).get("encoding", "PCMU"), "PCMU")

    def _media(self, message: dict) -> StreamMessage:
        if (message.get("media") or {}).get("track", "inbound") != "inbound":
            return StreamMessage("other", message)  # only the caller's track is ours to hear
        return super()._media(message)

    def start_of(self, message: dict) -> StreamStart:
        start = message["start"]
        parameters = dict(start.get("custom_parameters") or {})
        if start.get("client_state") and "call_id" not in parameters:
            # Call Control answers carry our call id base64-encoded in client_state.
            try:
                parameters["call_id"] = base64.b64decode(start["client_state"]).decode()
            except (binascii.Error, ValueError, UnicodeDecodeError):
                pass
        return StreamStart(
            stream_id=str(message["stream_id"]),
            carrier_call_id=str(start["call_control_id"]),
            account_id=str(start.get("user_id", "")),
            parameters=parameters,
        )

    def serializer(self, start: StreamStart) -> FrameSerializer:
        # auto_hang_up=False: the telephony service hangs up (Call Control REST), see TwilioMediaStreams.
        return TelnyxFrameSerializer(
            stream_id=start.stream_id,
            outbound_encoding="PCMU",
            inbound_encoding="PCMU",
            params=TelnyxFrameSerializer.InputParams(
                telnyx_sample_rate=self.sample_rate, sample_rate=self.sample_rate, auto_hang_up=False
            ),
        )


def plivo_extra_headers(value: object) -> dict:
    """Plivo's `extra_headers`: "k1=v1,k2=v2" as given in the Stream XML (also seen
    separated by ";"), or already a JSON object."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        return {}
    pairs = (part.split("=", 1) for part in value.replace(";", ",").split(",") if "=" in part)
    return {key.strip(): item.strip() for key, item in pairs}


class PlivoAudioStreams(_JsonMediaStream):
    """Plivo `<Stream bidirectional="true" contentType="audio/x-mulaw;rate=8000">`: JSON
    text frames, base64 μ-law 8 kHz. No stop event: the socket closes when the call does."""

    name = "plivo"
    _EVENTS = frozenset({"start", "media", "dtmf", "playedStream", "clearedAudio"})
    _STREAM_EVENTS = frozenset({"media", "dtmf"})
    _OTHER_EVENTS = frozenset({"playedStream", "clearedAudio"})
    _STREAM_KEY = "streamId"

    def _check_start(self, message: dict) -> None:
        start = _start_section(message)
        if not start.get("streamId") or not start.get("callId"):
            raise StreamProtocolError("start without streamId/callId")
        _check_encoding((start.get("mediaFormat") or {}).get("encoding", "audio/x-mulaw"), "audio/x-mulaw")

    def start_of(self, message: dict) -> StreamStart:
        start = message["start"]
        headers = plivo_extra_headers(message.get("extra_headers") or start.get("extra_headers"))
        # extraHeaders allow only [A-Za-z0-9]: the Stream XML names our call "callid" (hex uuid).
        if "callid" in headers and "call_id" not in headers:
            headers["call_id"] = headers["callid"]
        return StreamStart(
            stream_id=str(start["streamId"]),
            carrier_call_id=str(start["callId"]),
            account_id=str(start.get("accountId", "")),
            parameters=headers,
        )

    def serializer(self, start: StreamStart) -> FrameSerializer:
        # auto_hang_up=False: the telephony service hangs up (Call DELETE), see TwilioMediaStreams.
        return PlivoFrameSerializer(
            stream_id=start.stream_id,
            params=PlivoFrameSerializer.InputParams(
                plivo_sample_rate=self.sample_rate, sample_rate=self.sample_rate, auto_hang_up=False
            ),
        )


CARRIERS = {
    carrier.name: carrier
    for carrier in (TwilioMediaStreams(), TelnyxMediaStreams(), PlivoAudioStreams(), VonageAudioConnector())
}
