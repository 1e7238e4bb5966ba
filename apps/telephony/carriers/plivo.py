"""Plivo: X-Plivo-Signature-V3 (HMAC-SHA256 of url[?sorted key+value params].nonce, base64), Stream XML,
Call REST (hang-up) at settings.PLIVO_API_BASE_URL."""
from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from xml.sax.saxutils import escape

from django.conf import settings

from apps.billing.pricing import VendorPrice
from apps.telephony.carriers._rest import rest_request

# What Plivo charges us (US local, list price, USD per started minute); settings.PROVIDER_PRICES overrides.
PRICES = {"carrier_seconds": {"voice-inbound": VendorPrice.of("0.0055", per=60, increment=60),
                              "voice-outbound": VendorPrice.of("0.0100", per=60, increment=60)},
          "phone_number_months": {"local": VendorPrice.of("0.50")}}


def signature_v3(*, url: str, params: dict, nonce: str, auth_token: str) -> str:
    joined = "".join(f"{key}{value}" for key in sorted(params) for value in sorted(params.getlist(key) if hasattr(params, "getlist") else [params[key]]))
    payload = f"{url}{'?' if joined else ''}{joined}.{nonce}"
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha256).digest()).decode()


def verify(*, request, urls: list[str], auth_token: str) -> bool:
    header = request.headers.get("X-Plivo-Signature-V3", "")
    nonce = request.headers.get("X-Plivo-Signature-V3-Nonce", "")
    if not (header and nonce and auth_token):
        return False
    offered = [part.strip() for part in header.split(",")]
    for url in urls:
        expected = signature_v3(url=url, params=request.POST, nonce=nonce, auth_token=auth_token)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return True
    return False


def stream_xml(*, stream_url: str, call_id: str) -> str:
    """Stream both ways as μ-law 8 kHz. extraHeaders allow only [A-Za-z0-9] in keys and
    values, so our call id travels as `callid=<uuid hex>` (the media consumer maps it back)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Stream bidirectional="true" keepCallAlive="true" contentType="audio/x-mulaw;rate=8000" '
        f'extraHeaders="callid={uuid.UUID(call_id).hex}">{escape(stream_url)}</Stream></Response>'
    )


def speak_hangup_xml(text: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Speak>{escape(text)}</Speak><Hangup/></Response>'


def reject_xml() -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup reason="rejected"/></Response>'


def hang_up(*, number, carrier_call_id: str) -> None:
    """DELETE the call (204); 404 means it had already ended."""
    url = f"{settings.PLIVO_API_BASE_URL.rstrip('/')}/v1/Account/{number.account_sid}/Call/{carrier_call_id}/"
    rest_request("Plivo", "DELETE", url, ok={204}, gone=lambda response: response.status_code == 404,
                 auth=(number.account_sid, number.auth_token))
