"""Writes of API keys (tenant schema)."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.api.models import ApiKey
from apps.core.errors import ApplicationError, NotFound
from apps.tenancy.audit import CURRENT, AuditEvent, audit_changes, audit_log_record

KEY_PREFIX = "sb_"
# last_used_at is refreshed at most this often, so a busy key does not write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_key_create(*, name: str, created_by: str = "", actor=CURRENT) -> tuple[ApiKey, str]:
    """Make a key; returns (row, the key itself). The key is not stored: show it once."""
    name = name.strip()
    if not name:
        raise ApplicationError("Give the key a name, e.g. the system that will use it.", details={"name": "required"})
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(name=name[:100], prefix=token[:11], key_hash=_hash(token), created_by=created_by)
        audit_log_record(actor=actor, client=CURRENT, event_type=AuditEvent.API_KEY_CREATED, target=key,
                         changes=audit_changes(None, {"name": key.name, "prefix": key.prefix}))
    return key, token


def api_key_revoke(*, key_id: int, actor=CURRENT) -> ApiKey:
    """Stop a key from working. Idempotent."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
        if key is None:
            raise NotFound("No such API key.", details={"key_id": key_id})
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_log_record(actor=actor, client=CURRENT, event_type=AuditEvent.API_KEY_REVOKED, target=key,
                             changes={"revoked_at": {"before": None, "after": key.revoked_at}})
    return key


def api_key_authenticate(*, token: str) -> ApiKey | None:
    """The active key of this client matching `token`, or None."""
    if not token or not token.startswith(KEY_PREFIX):
        return None
    key = ApiKey.objects.filter(key_hash=_hash(token), revoked_at__isnull=True).first()
    if key is None:
        return None
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    return key
