"""Writes of users made by people (the agency admin): role changes are audited."""
from __future__ import annotations

from django.db import transaction

from apps.accounts.models import User
from apps.tenancy.audit import CURRENT, AuditEvent, audit_changes, audit_log_record

AUDITED_FIELDS = ("role", "client_id", "is_active")


def _snapshot(user: User) -> dict:
    return {name: getattr(user, name) for name in AUDITED_FIELDS}


def user_save(*, user: User, actor=CURRENT) -> User:
    """Save a user as edited (admin form): a new user, or a change of role,
    client or active flag, writes an audit row in the same transaction."""
    stored = User.objects.filter(pk=user.pk).first() if user.pk else None
    before = _snapshot(stored) if stored is not None else None
    with transaction.atomic():
        user.save()
        changes = audit_changes(before, _snapshot(user))
        if before is None:
            audit_log_record(actor=actor, client=user.client_id, event_type=AuditEvent.USER_CREATED, target=user,
                             changes=changes)
        elif changes:
            audit_log_record(actor=actor, client=user.client_id or before["client_id"],
                             event_type=AuditEvent.USER_ROLE_CHANGED, target=user, changes=changes)
    return user
