"""Telnyx: ed25519-signed webhooks (telnyx-signature-ed25519 over "<timestamp>|<body>"),
TeXML / Call Control answers that stream to our media websocket, Call Control REST
(hang-up, transfer) at settings.TELNYX_API_BASE_URL."""
from __future__ import annotations

import base64
import time
from xml.sax.saxutils import quoteattr

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings

from apps.billing.pricing import VendorPrice
from apps.telephony.carriers._rest import rest_request

# What Telnyx charges us (US local, list price, USD per started minute); settings.PROVIDER_PRICES overrides.
PRICES = {"carrier_seconds": {"voice-inbound": VendorPrice.of("0.0035", per=60, increment=60),
                              "voice-outbound": VendorPrice.of("0.0070", per=60, increment=60)},
          "phone_number_months": {"local": VendorPrice.of("1.00")}}

MAX_SKEW_SECS = 300
ALREADY_ENDED = "90018"  # Telnyx error code: "Call has already ended"


def verify(*, request, public_key_b64: str, now: float | None = None) -> bool:
    signature = request.headers.get("telnyx-signature-ed25519", "")
    timestamp = request.headers.get("telnyx-timestamp", "")
    if not (signature and timestamp and public_key_b64):
        return False
    try:
        if abs((now or time.time()) - int(timestamp)) > MAX_SKEW_SECS:
            return False
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
        key.verify(base64.b64decode(signature), f"{timestamp}|".encode() + request.body)
        return True
    except (InvalidSignature, ValueError):
        return False


def stream_texml(*, stream_url: str, call_id: str) -> str:
    """Connect the call to our media websocket. bidirectionalMode="rtp" so the agent's
    PCMU frames are played (the default, mp3, expects whole files)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f'<Stream url={quoteattr(stream_url)} bidirectionalMode="rtp" bidirectionalCodec="PCMU">'
        f'<Parameter name="call_id" value={quoteattr(call_id)}/>'
        "</Stream></Connect></Response>"
    )


def client_state(call_id: str) -> str:
    """Call Control carries our call id through the stream's `start` as client_state (base64)."""
    return base64.b64encode(call_id.encode()).decode()


def _api(path: str) -> str:
    return settings.TELNYX_API_BASE_URL.rstrip("/") + "/v2" + path


def _headers(api_key: str) -> dict:
    return {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Accept": "application/json"}


def _already_ended(response) -> bool:
    if response.status_code != 422:
        return False
    try:
        return any(str(error.get("code")) == ALREADY_ENDED for error in response.json().get("errors", []))
    except ValueError:
        return False


def answer_with_stream(*, number, call_control_id: str, stream_url: str, call_id: str) -> None:
    """Call Control: answer an incoming call, streaming both ways (RTP, PCMU) to our websocket."""
    rest_request(
        "Telnyx", "POST", _api(f"/calls/{call_control_id}/actions/answer"), ok={200}, headers=_headers(number.auth_token),
        json={"stream_url": stream_url, "stream_track": "inbound_track", "stream_bidirectional_mode": "rtp",
              "stream_bidirectional_codec": "PCMU", "client_state": client_state(call_id)},
    )


def reject(*, number, call_control_id: str) -> None:
    """Call Control refusal (suspended client, usage cap): reject without answering."""
    rest_request("Telnyx", "POST", _api(f"/calls/{call_control_id}/actions/reject"), ok={200},
                 gone=_already_ended, headers=_headers(number.auth_token), json={"cause": "CALL_REJECTED"})


def hang_up(*, number, carrier_call_id: str) -> None:
    rest_request("Telnyx", "POST", _api(f"/calls/{carrier_call_id}/actions/hangup"), ok={200},
                 gone=_already_ended, headers=_headers(number.auth_token), json={})


def transfer(*, number, carrier_call_id: str, to_number: str) -> None:
    rest_request("Telnyx", "POST", _api(f"/calls/{carrier_call_id}/actions/transfer"), ok={200},
                 headers=_headers(number.auth_token), json={"to": to_number})
