"""Telnyx, Plivo and Vonage media-stream callers: `TwilioCaller` speaking each carrier's
wire format (same clock, same measurements). Each is built `from_answer(...)` our
webhook gave the carrier, and sends back what the carrier would: the call id and
stream token in the start (custom parameters, client_state, extra_headers, or the
NCCO's websocket headers). `caller_class(carrier)` finds a carrier's caller through
the registry (Carrier.caller_double).

- Telnyx (TeXML `<Stream bidirectionalMode="rtp">` / Call Control): `connected`, `start`
  (stream_id, call_control_id, custom_parameters or client_state), base64 PCMU `media`,
  `stop`; the agent sends `media` and `clear`.
- Plivo (`<Stream bidirectional="true">`): `start` (streamId, callId, extra_headers), base64
  μ-law `media`, no stop (the socket closes); the agent sends `playAudio` and `clearAudio`.
- Vonage (NCCO websocket, audio/l16;rate=8000): `websocket:connected` with the NCCO
  headers, then binary 16-bit PCM frames both ways; the agent's `clear` is JSON.
"""
from __future__ import annotations

import base64
import importlib
import json
import uuid
import xml.etree.ElementTree as ET

from devtools.doubles.audio import pcm16_to_ulaw, ulaw_to_pcm16
from devtools.doubles.twilio_caller import TwilioCaller


def caller_class(carrier: str) -> type[TwilioCaller]:
    """The caller double speaking `carrier`'s media wire format (the registry's Carrier.caller_double)."""
    from apps.telephony.carriers.registry import carrier_get

    module, _, name = carrier_get(carrier).caller_double.rpartition(".")
    return getattr(importlib.import_module(module), name)


class TelnyxCaller(TwilioCaller):
    def __init__(self, url: str, *, call_control_id: str | None = None, client_state: str = "", **kwargs):
        kwargs.setdefault("call_sid", call_control_id or "v3:" + uuid.uuid4().hex)
        kwargs.setdefault("stream_sid", str(uuid.uuid4()))
        super().__init__(url, **kwargs)
        self.client_state = client_state

    @classmethod
    def from_call_control_answer(cls, answer: dict, **kwargs) -> TelnyxCaller:
        """Call Control: the `answer` action's body names the stream and our client_state,
        which Telnyx hands back in the stream's start."""
        return cls(answer["stream_url"], client_state=answer["client_state"], **kwargs)

    def _connected_message(self) -> dict:
        return {"event": "connected", "version": "1.0.0"}

    def _start_message(self) -> dict:
        start = {
            "user_id": str(uuid.UUID(int=0)),
            "call_control_id": self.call_sid,
            "from": "+15557654321",
            "to": "",
            "custom_parameters": self.custom_parameters,
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
        }
        if self.client_state:
            start["client_state"] = self.client_state
        return {"event": "start", "sequence_number": self._next_sequence(), "stream_id": self.stream_sid, "start": start}

    def _stop_message(self) -> dict:
        return {"event": "stop", "sequence_number": self._next_sequence(), "stream_id": self.stream_sid,
                "stop": {"user_id": str(uuid.UUID(int=0)), "call_control_id": self.call_sid}}

    async def _send_media(self, ulaw: bytes, chunk: int) -> None:
        await self.send_json({
            "event": "media", "sequence_number": self._next_sequence(), "stream_id": self.stream_sid,
            "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                      "payload": base64.b64encode(ulaw).decode()},
        })

    async def press(self, digit: str) -> None:
        await self.send_json({"event": "dtmf", "stream_id": self.stream_sid, "sequence_number": self._next_sequence(),
                              "dtmf": {"digit": digit}})


class PlivoCaller(TwilioCaller):
    _CLEAR_EVENT = "clearAudio"

    def __init__(self, url: str, *, extra_headers: str = "", **kwargs):
        kwargs.setdefault("call_sid", str(uuid.uuid4()))
        kwargs.setdefault("stream_sid", str(uuid.uuid4()))
        kwargs.setdefault("account_sid", "MA" + "0" * 18)
        super().__init__(url, **kwargs)
        self.extra_headers = extra_headers

    @classmethod
    def from_answer(cls, markup: str, **kwargs) -> PlivoCaller:
        """The `<Stream>` URL and its extraHeaders (callid, token), sent back in the start as Plivo does."""
        stream = ET.fromstring(markup).find("./Stream")
        if stream is None:
            raise ValueError(f"the answer connects no stream: {markup[:200]}")
        return cls(stream.text.strip(), extra_headers=stream.get("extraHeaders", ""), **kwargs)

    def _connected_message(self) -> None:
        return None

    def _start_message(self) -> dict:
        return {
            "event": "start",
            "sequenceNumber": int(self._next_sequence()),
            "start": {"callId": self.call_sid, "streamId": self.stream_sid, "accountId": self.account_sid,
                      "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}},
            "extra_headers": self.extra_headers,
        }

    def _stop_message(self) -> None:
        return None  # Plivo just closes the socket

    async def _send_media(self, ulaw: bytes, chunk: int) -> None:
        await self.send_json({
            "event": "media", "sequenceNumber": int(self._next_sequence()), "streamId": self.stream_sid,
            "media": {"track": "inbound", "timestamp": str(chunk * 20), "chunk": chunk,
                      "payload": base64.b64encode(ulaw).decode()},
            "extra_headers": self.extra_headers,
        })

    def _agent_audio(self, raw):
        message = json.loads(raw)
        if message.get("event") == "playAudio":
            return base64.b64decode(message["media"]["payload"]), message
        return None, message

    async def press(self, digit: str) -> None:
        await self.send_json({"event": "dtmf", "streamId": self.stream_sid, "sequenceNumber": int(self._next_sequence()),
                              "dtmf": {"digit": digit}})


class VonageCaller(TwilioCaller):
    """Audio is 16-bit linear PCM at 8 kHz on the wire; kept as μ-law internally so the
    measurements of TwilioCaller apply unchanged."""

    _CLEAR_EVENT = "clear"

    def __init__(self, url: str, *, headers_in_connect: dict | None = None, **kwargs):
        kwargs.setdefault("call_sid", str(uuid.uuid4()))
        super().__init__(url, **kwargs)
        self.ncco_headers = dict(headers_in_connect or {})

    @classmethod
    def from_answer(cls, ncco: list, **kwargs) -> VonageCaller:
        """The NCCO's websocket endpoint: its URI, and its headers (call id, token) sent back in
        `websocket:connected` as Vonage does."""
        [endpoint] = [e for action in ncco if action.get("action") == "connect" for e in action.get("endpoint", [])
                      if e.get("type") == "websocket"]
        return cls(endpoint["uri"], headers_in_connect=endpoint.get("headers", {}), **kwargs)

    def _connected_message(self) -> None:
        return None

    def _start_message(self) -> dict:
        return {"event": "websocket:connected", "content-type": "audio/l16;rate=8000", **self.ncco_headers}

    def _stop_message(self) -> None:
        return None  # Vonage closes the socket

    async def _send_media(self, ulaw: bytes, chunk: int) -> None:
        await self.send_raw(ulaw_to_pcm16(ulaw))

    def _agent_audio(self, raw):
        if isinstance(raw, bytes):
            return pcm16_to_ulaw(raw), {"event": "media"}
        return None, json.loads(raw)

    async def press(self, digit: str) -> None:
        await self.send_json({"event": "websocket:dtmf", "digit": digit, "duration": 100})
