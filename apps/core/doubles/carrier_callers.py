"""Telnyx, Plivo and Vonage media-stream callers: `TwilioCaller` speaking each carrier's
wire format (same clock, same measurements).

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
import json
import uuid

from apps.core.doubles.audio import pcm16_to_ulaw, ulaw_to_pcm16
from apps.core.doubles.twilio_caller import TwilioCaller


class TelnyxCaller(TwilioCaller):
    def __init__(self, url: str, *, call_control_id: str | None = None, client_state: str = "", **kwargs):
        kwargs.setdefault("call_sid", call_control_id or "v3:" + uuid.uuid4().hex)
        kwargs.setdefault("stream_sid", str(uuid.uuid4()))
        super().__init__(url, **kwargs)
        self.client_state = client_state

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
