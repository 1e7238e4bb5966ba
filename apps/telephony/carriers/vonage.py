"""Vonage Voice API: signed webhooks (JWT HS256 with the signature secret, payload_hash
= sha256 of the body), NCCO answer with a websocket endpoint (audio connector)."""
from __future__ import annotations

import hashlib

import jwt


def verify(*, request, signature_secret: str) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not signature_secret:
        return False
    try:
        claims = jwt.decode(header.removeprefix("Bearer "), signature_secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return False
    if request.body and claims.get("payload_hash") != hashlib.sha256(request.body).hexdigest():
        return False
    return True


def stream_ncco(*, stream_url: str, call_id: str, carrier_call_id: str) -> list:
    return [{
        "action": "connect",
        "endpoint": [{
            "type": "websocket", "uri": stream_url, "content-type": "audio/l16;rate=8000",
            "headers": {"call_id": call_id, "stream_id": call_id, "call_uuid": carrier_call_id},
        }],
    }]


def talk_hangup_ncco(text: str) -> list:
    return [{"action": "talk", "text": text}]
