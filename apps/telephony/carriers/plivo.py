"""Plivo: X-Plivo-Signature-V3 (HMAC-SHA256 of url[?sorted key+value params].nonce, base64), Stream XML."""
from __future__ import annotations

import base64
import hashlib
import hmac
from xml.sax.saxutils import escape


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
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Stream bidirectional="true" keepCallAlive="true" contentType="audio/x-mulaw;rate=8000" '
        f'extraHeaders="call_id={escape(call_id)}">{escape(stream_url)}</Stream></Response>'
    )


def speak_hangup_xml(text: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Speak>{escape(text)}</Speak><Hangup/></Response>'


def reject_xml() -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup reason="rejected"/></Response>'
