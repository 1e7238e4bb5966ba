"""Signed, expiring recording URLs handed to a client's systems in `call.ended`.

The token (django.core.signing, salted) names the client's schema, the call and the
expiry; the view behind it (apps.webhooks.views.recording_view) streams the WAV
without a login and refuses a token that is forged, expired or for another client."""
from __future__ import annotations

import time
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing
from django.urls import reverse

from apps.core.errors import PermissionDenied
from apps.core.hosts import client_url

SALT = "switchboard.webhooks.recording"


def recording_url_sign(*, client, call_id, ttl_secs: int | None = None, now: float | None = None) -> tuple[str, datetime]:
    """(absolute URL, expiry) of a link to the call's recording on the client's host."""
    ttl = int(ttl_secs if ttl_secs is not None else getattr(settings, "WEBHOOK_RECORDING_URL_TTL_SECS", 7 * 86400))
    expires = int((now if now is not None else time.time()) + ttl)
    token = signing.dumps({"s": client.schema_name, "c": str(call_id), "e": expires}, salt=SALT, compress=True)
    path = reverse("portal:webhooks:recording", args=[token], urlconf="config.urls_tenant")
    return client_url(client, path), datetime.fromtimestamp(expires, tz=UTC)


def recording_token_check(*, token: str, schema: str, now: float | None = None) -> str:
    """The call id a token grants, for this schema; PermissionDenied otherwise."""
    try:
        claims = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise PermissionDenied("This recording link is not valid.") from None
    if not isinstance(claims, dict) or claims.get("s") != schema:
        raise PermissionDenied("This recording link is not valid.")
    if int(claims.get("e", 0)) < (now if now is not None else time.time()):
        raise PermissionDenied("This recording link has expired.")
    return str(claims.get("c", ""))
