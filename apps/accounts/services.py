"""Writes on users: agency owners created from the command line, users edited by people
in the agency admin (role changes are audited), and a client's team: client admins invite users (an email with
a set-password link), set their role and remove them (the acting user and the client are passed in; a refusal
changes nothing). Client users created with a client: apps/tenancy/services.py."""
from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from apps.accounts.models import User
from apps.core.errors import ApplicationError, NotFound, PermissionDenied
from apps.tenancy.audit import CURRENT, AuditEvent, audit_changes, audit_log_record

AUDITED_FIELDS = ("role", "client_id", "is_active")
CLIENT_ROLE_VALUES = {role.value for role in User.CLIENT_ROLES}


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


# A client's team.


def _assert_can_manage(*, client, acting_user: User) -> None:
    if not acting_user.can_edit_client_data(client):
        raise PermissionDenied("Only this client's admins manage its team.")


def _member(*, client, user_id) -> User:
    try:
        return User.objects.get(pk=int(user_id), client_id=client.pk)
    except (User.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such team member.", details={"user_id": str(user_id)}) from None


def _check_role(role: str) -> None:
    if role not in CLIENT_ROLE_VALUES:
        raise ApplicationError("Choose admin or viewer.", details={"role": "Choose admin or viewer."})


def _admins_left_without(*, client, user: User) -> int:
    return User.objects.filter(client_id=client.pk, role=User.Role.CLIENT_ADMIN, is_active=True).exclude(
        pk=user.pk).count()


def invite_link_path(user: User) -> str:
    return f"/team/accept/{urlsafe_base64_encode(force_bytes(user.pk))}/{default_token_generator.make_token(user)}/"


@transaction.atomic
def team_member_invite(*, client, acting_user: User, email: str, role: str) -> User:
    """A new user of `client` without a password; an email (a task, after commit) carries a link to set it."""
    _assert_can_manage(client=client, acting_user=acting_user)
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ApplicationError("Enter a valid email address.", details={"email": "Enter a valid email address."}) \
            from None
    _check_role(role)
    if User.objects.filter(email__iexact=email).exists() or User.objects.filter(username__iexact=email).exists():
        raise ApplicationError("That email already has an account.",
                               details={"email": "That email already has an account."}, status_code=409)
    user = User(username=email, email=email, role=role, client=client)
    user.set_unusable_password()
    user_save(user=user, actor=acting_user)
    from apps.accounts.tasks import send_invite_email

    transaction.on_commit(lambda: send_invite_email.delay(user.pk, acting_user.email))
    return user


@transaction.atomic
def team_member_set_role(*, client, acting_user: User, user_id, role: str) -> User:
    _assert_can_manage(client=client, acting_user=acting_user)
    user = _member(client=client, user_id=user_id)
    _check_role(role)
    if role != User.Role.CLIENT_ADMIN and user.role == User.Role.CLIENT_ADMIN and \
            _admins_left_without(client=client, user=user) == 0:
        raise ApplicationError("The last admin cannot become a viewer: make someone else admin first.")
    user.role = role
    user_save(user=user, actor=acting_user)
    return user


@transaction.atomic
def team_member_remove(*, client, acting_user: User, user_id) -> None:
    _assert_can_manage(client=client, acting_user=acting_user)
    user = _member(client=client, user_id=user_id)
    if user.pk == acting_user.pk:
        raise ApplicationError("You cannot remove yourself; ask another admin.")
    if user.role == User.Role.CLIENT_ADMIN and _admins_left_without(client=client, user=user) == 0:
        raise ApplicationError("The last admin cannot be removed.")
    user.delete()


def team_invite_user(*, client, uidb64: str, token: str) -> User | None:
    """The invited user of `client` a link names, if the link is still good (None otherwise)."""
    try:
        user_id = int(urlsafe_base64_decode(uidb64).decode())
        user = User.objects.get(pk=user_id, client_id=client.pk)
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError, User.DoesNotExist):
        return None
    return user if default_token_generator.check_token(user, token) else None


@transaction.atomic
def team_invite_accept(*, client, uidb64: str, token: str, password: str) -> User:
    """Set the password of an invited user (the link then stops working: the token depends on it)."""
    user = team_invite_user(client=client, uidb64=uidb64, token=token)
    if user is None:
        raise ApplicationError("This invitation link is no longer valid; ask your admin for a new one.")
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


def team_invite_email_send(*, user_id: int, invited_by: str) -> bool:
    """Mail an invited user their set-password link (the accounts.send_invite_email task). Safe to repeat:
    nothing is sent to a user who was removed or has already set a password."""
    from django.core.mail import send_mail
    from django_tenants.utils import schema_context

    from apps.core.hosts import client_url
    from apps.tenancy.models import AgencySettings

    with schema_context("public"):
        user = User.objects.select_related("client").filter(pk=user_id).first()
        if user is None or user.client is None or user.has_usable_password():
            return False  # removed, or already accepted
        agency = AgencySettings.objects.filter(pk=1).first() or AgencySettings()
        link = client_url(user.client, invite_link_path(user))
        send_mail(
            subject=f"You are invited to {user.client.name} on {agency.name}",
            message=(f"{invited_by} invited you to the {user.client.name} portal as "
                     f"{user.get_role_display().lower()}.\n\nSet your password here (the link works once, "
                     f"for a few days):\n{link}\n\nThen log in with {user.email}.\n"),
            from_email=None,
            recipient_list=[user.email],
        )
    return True
