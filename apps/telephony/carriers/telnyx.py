"""Telnyx TeXML: ed25519-signed webhooks (telnyx-signature-ed25519 over "<timestamp>|<body>")."""
from __future__ import annotations

import base64
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_SKEW_SECS = 300


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
