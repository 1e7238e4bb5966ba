"""Writes on users that belong to no client (client users: apps/tenancy/services.py)."""
from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q

from apps.accounts.models import User
from apps.core.errors import ApplicationError


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
    user.save()
    return user
