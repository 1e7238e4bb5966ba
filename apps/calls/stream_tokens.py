"""The capability a carrier's media stream must present to join a call.

When a webhook answers a call with a stream, the answer carries a token minted
here for that call (Twilio/Telnyx `<Parameter name="token">`, Plivo
`extraHeaders`, Vonage websocket `headers`, Telnyx Call Control `client_state`).
The media consumer redeems it at the stream's `start`: it must be ours (HMAC
over client schema, call id and expiry), unexpired, and unused. A second socket
repeating a live call's `start` is refused, so nobody else can listen in.

Tokens are [0-9a-z] only, because Plivo's extraHeaders allow nothing else.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from django.conf import settings
from django.core.cache import cache

from apps.core.errors import PermissionDenied

# A carrier opens the stream within a second or two of our answer; a minute is generous.
STREAM_TOKEN_TTL_SECS = 120
_SEPARATOR = "t"


def _signature(*, schema: str, call_id: str, expires: int, nonce: str) -> str:
    key = hashlib.sha256(("switchboard-stream-token:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, f"{schema}:{call_id}:{expires}:{nonce}".encode(), hashlib.sha256).hexdigest()


def stream_token_mint(*, schema: str, call_id: str, ttl_secs: int = STREAM_TOKEN_TTL_SECS, now: float | None = None) -> str:
    """A single-use token that lets one media stream join `call_id` of client `schema`."""
    expires = int((now if now is not None else time.time()) + ttl_secs)
    nonce = secrets.token_hex(8)  # each answer its own token, even twice in one second
    signature = _signature(schema=schema, call_id=str(call_id), expires=expires, nonce=nonce)
    return f"{expires}{_SEPARATOR}{nonce}{_SEPARATOR}{signature}"


def stream_token_redeem(*, token: object, schema: str, call_id: str, now: float | None = None) -> None:
    """Accept `token` for this call once; raise PermissionDenied otherwise (missing,
    forged, for another call or client, expired, or already used)."""
    parts = token.split(_SEPARATOR) if isinstance(token, str) and len(token) <= 120 else []
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 12:
        raise PermissionDenied("media stream without a valid call token")
    expires_text, nonce, signature = parts
    expires = int(expires_text)
    expected = _signature(schema=schema, call_id=str(call_id), expires=expires, nonce=nonce)
    if not hmac.compare_digest(expected, signature):
        raise PermissionDenied("media stream token is not for this call")
    remaining = expires - (now if now is not None else time.time())
    if remaining <= 0:
        raise PermissionDenied("media stream token has expired")
    # One stream per call: the first redeemer wins, atomically (Redis SET NX).
    if not cache.add(f"sb:stream-token-used:{signature}", 1, timeout=int(remaining) + 1):
        raise PermissionDenied("media stream token was already used: one stream per call")
