"""What every carrier media-stream protocol shares (no Django): how a validated
message looks, how a stream starts, why a stream is closed, and the checks each
carrier's parser is made of. The carriers' own protocol objects live with the
rest of the carrier, in `apps/telephony/carriers/<carrier>.py`.

Validation happens before anything reaches the pipeline: a malformed, oversized,
mistyped or foreign message is a `StreamProtocolError` and the stream is closed
with a 44xx code (the call record gets end reason "protocol_error"). A parser
never raises anything else, whatever the bytes (tests/…/test_media_fuzz.py).

Each message is parsed once: `parse` decodes the JSON and the base64 and, for
caller audio, hands back 16-bit PCM at the carrier's rate, which the transport
pushes as it is. The Pipecat serializers only write outbound messages (audio,
`clear`) and read the rare keypad message, which `parse` has checked first.
"""
from __future__ import annotations

import base64
import binascii
import json
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

with warnings.catch_warnings():
    # Deprecated since 3.11 (removed in 3.13, where Pipecat uses audioop-lts); Pipecat's serializers use it too.
    # μ-law → PCM for a 20 ms frame: 0.15 µs here, 2.1 µs through a numpy lookup table (measured).
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

# A 20 ms μ-law frame is 160 bytes (~220 base64 + JSON). Carriers send at most a
# few hundred ms per message; anything near this is not a media stream.
MAX_MESSAGE_BYTES = 64 * 1024
# Ids, names and parameters a carrier sends us are short; longer is not a carrier.
MAX_ID_CHARS = 200

# ASGI servers (daphne) let an application close with 1000 or 3000-4999 only,
# so the reasons use the private range (4403/4404 are the tenant and unknown-path refusals,
# apps/core/websockets.py).
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 4400  # malformed message, unknown event, media before start
CLOSE_POLICY = 4410  # unknown stream id / call, or a call that is not live here
CLOSE_TOO_BIG = 4413  # message over MAX_MESSAGE_BYTES

DTMF_DIGITS = frozenset("0123456789*#")


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
    """`parameters` carries what our answer markup gave the stream: "call_id" and
    the single-use "token" (apps.calls.stream_tokens), as strings."""

    stream_id: str
    carrier_call_id: str
    account_id: str = ""
    parameters: dict = field(default_factory=dict)


class MediaProtocol(Protocol):
    """What the media consumer and `StreamBridge` need from a carrier's protocol."""

    name: str
    sample_rate: int

    def parse(self, data: str | bytes, *, expected_stream: str | None) -> StreamMessage: ...

    def start_of(self, message: dict) -> StreamStart: ...

    def serializer(self, start: StreamStart): ...


# -- checks the carrier parsers are made of ---------------------------------------------------

def check_size(data: str | bytes) -> None:
    if len(data) > MAX_MESSAGE_BYTES:
        raise StreamProtocolError(f"message of {len(data)} bytes is over {MAX_MESSAGE_BYTES}", close_code=CLOSE_TOO_BIG)


def json_object(data: str | bytes) -> dict:
    """A text frame's JSON object (a list, number or string is refused)."""
    if isinstance(data, bytes):
        try:
            data = data.decode()
        except UnicodeDecodeError as error:
            raise StreamProtocolError("binary frame where JSON text was expected") from error
    try:
        message = json.loads(data)
    except json.JSONDecodeError as error:
        raise StreamProtocolError(f"malformed JSON: {error.msg}") from error
    except RecursionError as error:  # [[[[...]]]] deeper than the decoder's stack
        raise StreamProtocolError("JSON nested too deeply") from error
    if not isinstance(message, dict):
        raise StreamProtocolError("message is not a JSON object")
    return message


def event_of(message: dict, events: frozenset[str]) -> str:
    event = message.get("event")
    if not isinstance(event, str) or event not in events:
        raise StreamProtocolError(f"unknown event {str(event)[:40]!r}")
    return event


def section(message: dict, key: str) -> dict:
    """`message[key]` as an object: {} when absent or null, refused when another type."""
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StreamProtocolError(f"{key!r} is not an object")
    return value


def identifier(value: object, what: str) -> str:
    """A non-empty id of reasonable length (string, or a number carriers sometimes send)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise StreamProtocolError(f"{what} missing or not a string")
    text = str(value)
    if not text or len(text) > MAX_ID_CHARS or not text.isprintable():
        raise StreamProtocolError(f"{what} missing, too long or not printable")
    return text


def optional_identifier(value: object, what: str) -> str:
    return "" if value is None or value == "" else identifier(value, what)


def string_parameters(value: object, what: str) -> dict[str, str]:
    """The parameters our answer markup set ({name: value}, strings only)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StreamProtocolError(f"{what} is not an object")
    parameters = {}
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > MAX_ID_CHARS or len(item) > MAX_ID_CHARS:
            raise StreamProtocolError(f"{what} must map short names to short strings")
        parameters[key] = item
    return parameters


def ulaw_media(message: dict) -> bytes:
    """A media message's base64 μ-law payload, checked and decoded to 16-bit PCM."""
    payload = section(message, "media").get("payload")
    if not isinstance(payload, str):
        raise StreamProtocolError("media without payload")
    try:
        ulaw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise StreamProtocolError("media payload is not base64") from error
    return audioop.ulaw2lin(ulaw, 2)


def check_stream(event: str, stream: object, expected_stream: str | None) -> None:
    if expected_stream is None:
        raise StreamProtocolError(f"{event} before start")
    if stream != expected_stream:
        raise StreamProtocolError(f"unknown stream id {str(stream)[:80]!r}", close_code=CLOSE_POLICY)


def check_encoding(found: object, expected: str) -> None:
    if found != expected:
        raise StreamProtocolError(f"media format {str(found)[:40]!r}: this stream must be {expected}")


def check_digit(digit: object) -> None:
    """A keypad press the serializer's KeypadEntry accepts (it raises on anything else)."""
    if not isinstance(digit, str | int) or isinstance(digit, bool) or str(digit) not in DTMF_DIGITS:
        raise StreamProtocolError(f"dtmf digit {str(digit)[:10]!r} is not a keypad key")


class JsonMediaStream:
    """What Twilio, Telnyx and Plivo streams share: JSON text frames with an `event`,
    a `start` checked by `check_start`, the stream id under `STREAM_KEY` on the
    events in `STREAM_EVENTS`, base64 μ-law `media`, `dtmf` with a keypad digit.
    Events in `OTHER_EVENTS` are accepted and reported as "other"."""

    name = ""
    sample_rate = 8000
    EVENTS: frozenset[str] = frozenset()
    STREAM_EVENTS: frozenset[str] = frozenset()
    OTHER_EVENTS: frozenset[str] = frozenset()
    STREAM_KEY = ""

    def parse(self, data: str | bytes, *, expected_stream: str | None) -> StreamMessage:
        """Validate one message (and decode its audio)."""
        check_size(data)
        message = json_object(data)
        event = event_of(message, self.EVENTS)
        if event == "start":
            self.start_of(message)  # validates every field the stream's start is read for
        elif event in self.STREAM_EVENTS:
            check_stream(event, message.get(self.STREAM_KEY), expected_stream)
            if event == "media":
                return self.media(message)
            if event == "dtmf":
                check_digit(section(message, "dtmf").get("digit"))
        elif event in self.OTHER_EVENTS:
            return StreamMessage("other", message)
        return StreamMessage(event, message)

    def start_of(self, message: dict) -> StreamStart:
        raise NotImplementedError

    def media(self, message: dict) -> StreamMessage:
        return StreamMessage("media", message, ulaw_media(message))
