"""Writes on users: agency owners created from the command line, users edited by people
in the agency admin (role changes are audited). Client users: apps/tenancy/services.py."""
from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q

from apps.accounts.models import User
from apps.core.errors import ApplicationError
from apps.tenancy.audit import CURRENT, AuditEvent, audit_changes, audit_log_record

AUDITED_FIELDS = ("role", "client_id", "is_active")


def agency_owner_create(*, email: str, password: str) -> User:
    """An agency owner: full access to the agency admin. Refuses a taken email or a weak password."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ApplicationError(f"'{email}' is not an email address.", details={"email": exc.messages}) from exc
    if User.objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).exists():
        raise ApplicationError(f"A user with the email {email} already exists.", details={"email": ["taken"]})
    user = User(username=email, email=email, role=User.Role.AGENCY_OWNER)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError("Password refused: " + " ".join(exc.messages), details={"password": exc.messages}) \
            from exc
    user.set_password(password)
    return user_save(user=user, actor=None)


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
