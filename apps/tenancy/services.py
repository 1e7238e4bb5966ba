"""Writes for clients (tenants): create, suspend, reactivate, delete, support access."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django_tenants.postgresql_backend.base import is_valid_schema_name
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.core.errors import ApplicationError, PermissionDenied
from apps.tenancy.audit import CURRENT, AuditEvent, audit_changes, audit_log_record
from apps.tenancy.models import Client, Domain, SupportAccessLog

logger = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
RESERVED_SLUGS = {"public", "www", "admin", "api", "static", "media", "pg_catalog", "information_schema"}
HOSTNAME_RE = re.compile(r"^(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\Z")
SUPPORT_TOKEN_SALT = "switchboard.support-access"
SUPPORT_TOKEN_MAX_AGE_SECONDS = 60


def default_client_domain(slug: str) -> str:
    return f"{slug.replace('_', '-')}.{settings.CLIENT_DOMAIN_SUFFIX}"


def client_create_check(*, slug: str, domain: str | None, admin_email: str | None) -> tuple[str, str]:
    """Everything that would make client_create refuse, checked up front (forms
    call it too). Returns the normalised slug and domain."""
    slug = slug.strip().lower()
    if slug.startswith("pg_"):
        raise ApplicationError(
            f"'{slug}' cannot be a client slug: PostgreSQL reserves schema names starting with 'pg_'. "
            "Choose another slug.", details={"slug": slug},
        )
    if slug in RESERVED_SLUGS:
        raise ApplicationError(f"'{slug}' cannot be a client slug: it is reserved; choose another.", details={"slug": slug})
    if not SLUG_RE.match(slug) or not is_valid_schema_name(slug):
        raise ApplicationError(
            f"'{slug}' cannot be a client slug: use 2-41 lowercase letters, digits or _ starting with a letter.",
            details={"slug": slug},
        )
    domain = (domain or default_client_domain(slug)).strip().lower()
    if not HOSTNAME_RE.match(domain) or len(domain) > 253:
        raise ApplicationError(
            f"'{domain}' is not a host name: use letters, digits, '-' and dots, e.g. acme.example.com.",
            details={"domain": domain},
        )
    if Client.objects.filter(slug=slug).exists() or Client.objects.filter(schema_name=slug).exists():
        raise ApplicationError(f"A client with slug '{slug}' already exists.", details={"slug": slug})
    if Domain.objects.filter(domain=domain).exists():
        raise ApplicationError(f"The domain '{domain}' is already in use.", details={"domain": domain})
    if admin_email and User.objects.filter(email__iexact=admin_email).exists():
        raise ApplicationError(f"A user with email {admin_email} already exists.", details={"email": admin_email})
    return slug, domain


def client_create(
    *,
    slug: str,
    name: str,
    domain: str | None = None,
    admin_email: str | None = None,
    admin_password: str | None = None,
    actor=CURRENT,
    **details,
) -> tuple[Client, Domain, User | None]:
    """Create a client: its row, its schema (migrated), its portal domain and,
    optionally, its first client-admin user. Fails whole or not at all."""
    slug, domain = client_create_check(slug=slug, domain=domain, admin_email=admin_email)

    # The schema is created (and migrated) in Client.save(); doing it inside the
    # transaction means a failure leaves neither row nor schema behind.
    with transaction.atomic():
        client = Client(schema_name=slug, slug=slug, name=name, **details)
        client.save(verbosity=0)
        client_domain = Domain.objects.create(domain=domain, tenant=client, is_primary=True)
        admin_user = None
        if admin_email:
            admin_user = User(
                username=admin_email.lower(),
                email=admin_email.lower(),
                role=User.Role.CLIENT_ADMIN,
                client=client,
            )
            if admin_password:
                admin_user.set_password(admin_password)
            else:
                admin_user.set_unusable_password()
            admin_user.save()
        audit_log_record(actor=actor, client=client, event_type=AuditEvent.CLIENT_CREATED, target=client,
                         changes=audit_changes(None, {"name": name, "slug": slug, "domain": domain}))
        if admin_user:
            audit_log_record(actor=actor, client=client, event_type=AuditEvent.USER_CREATED, target=admin_user,
                             changes=audit_changes(None, {"email": admin_user.email, "role": admin_user.role}))
    logger.info("client created", extra={"client": slug, "domain": domain})
    return client, client_domain, admin_user


def _client_status_set(*, client: Client, status: str, reason: str, event_type: str, actor) -> Client:
    with transaction.atomic():
        before = {"status": client.status, "suspended_reason": client.suspended_reason}
        client.status = status
        client.suspended_reason = reason
        client.save(update_fields=["status", "suspended_reason", "updated_at"])
        changes = audit_changes(before, {"status": client.status, "suspended_reason": client.suspended_reason})
        if "status" in changes:
            audit_log_record(actor=actor, client=client, event_type=event_type, target=client, changes=changes)
    return client


def client_suspend(*, client: Client, reason: str = "", actor=CURRENT) -> Client:
    if client.is_agency:
        raise ApplicationError("The agency itself cannot be suspended.")
    return _client_status_set(client=client, status=Client.Status.SUSPENDED, reason=reason,
                              event_type=AuditEvent.CLIENT_SUSPENDED, actor=actor)


def client_reactivate(*, client: Client, actor=CURRENT) -> Client:
    return _client_status_set(client=client, status=Client.Status.ACTIVE, reason="",
                              event_type=AuditEvent.CLIENT_RESUMED, actor=actor)


def client_delete(*, client: Client, actor=CURRENT) -> None:
    """Delete the client, its domains, its users and its schema (DROP SCHEMA CASCADE).
    Its audit rows stay (agency side), with the client's name and no link."""
    if client.is_agency:
        raise ApplicationError("The agency itself cannot be deleted.")
    with schema_context("public"), transaction.atomic():
        audit_log_record(actor=actor, client=client, event_type=AuditEvent.CLIENT_DELETED, target=client,
                         changes=audit_changes({"slug": client.slug, "name": client.name}, {"slug": None, "name": None}))
        client.delete(force_drop=True)


def client_user_create(*, client: Client, email: str, password: str, role: str = User.Role.CLIENT_VIEWER,
                       actor=CURRENT) -> User:
    if role not in User.CLIENT_ROLES:
        raise ApplicationError(f"'{role}' is not a client role.")
    with transaction.atomic():
        user = User(username=email.lower(), email=email.lower(), role=role, client=client)
        user.set_password(password)
        user.save()
        audit_log_record(actor=actor, client=client, event_type=AuditEvent.USER_CREATED, target=user,
                         changes=audit_changes(None, {"email": user.email, "role": user.role}))
    return user


# --- support access -----------------------------------------------------------------------------------------
#
# How agency staff enter a client's host, and why it takes three hops.
#
# The agency admin (agency host) issues a signed 60-second ticket naming the staff user, the client, the action
# and a random ticket id, and sends the browser to the client host's /support/enter/?token=... . The client host
# cannot see the agency host's session cookie (another host), so on its own it cannot tell who holds the link: a
# link copied into another browser would let whoever holds it in. So:
#
# 1. The client host checks the ticket (signature, age, this client, not yet used). If the browser is already
#    logged in on this host as the ticket's user, that session is the proof: go to 3. If it is logged in as
#    anyone else, refuse (log out first; we never swap a session for another user's). If it is anonymous, it
#    gets a random binding nonce in an HttpOnly cookie on the client host and is sent to the agency host with
#    the ticket and sha256(nonce).
# 2. The agency host (an admin view: the agency session must be the ticket's user) signs a proof binding
#    (ticket id, user, sha256(nonce)) and sends the browser back to the client host with it.
# 3. The client host checks the proof against the nonce cookie this very browser carries, then redeems: the
#    SupportAccessLog row with the ticket id under a unique constraint is inserted, so a ticket works once even
#    under concurrent redemptions. Only then is the browser logged in.
#
# A copied first link ends on the agency host in a browser that is not the ticket's user; a copied last link
# lacks the nonce cookie; a replay finds the ticket used. Every refusal happens before anything is written.

SUPPORT_PROOF_SALT = "switchboard.support-access.proof"
SUPPORT_BINDING_COOKIE = "sb_support_binding"
SUPPORT_ACTIONS = ("open_portal", "open_admin")


def support_binding_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def support_access_token_issue(*, staff_user: User, client: Client, action: str, next_path: str = "/") -> str:
    """A short-lived signed single-use ticket that lets agency staff enter a
    client's host (portal or client admin). Redeeming it writes the audit entry."""
    if not staff_user.is_agency:
        raise PermissionDenied("Only agency staff can act as a client.")
    if action not in SUPPORT_ACTIONS:
        raise ApplicationError(f"Unknown support action '{action}'.")
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/"
    return signing.dumps(
        {"user": staff_user.pk, "client": client.pk, "action": action, "next": next_path,
         "ticket": secrets.token_urlsafe(18)},
        salt=SUPPORT_TOKEN_SALT,
    )


def support_access_ticket_check(*, token: str, client_id: int | None = None) -> dict:
    """The ticket's payload if it is genuine, fresh, unused and (given client_id)
    for that client; PermissionDenied otherwise. Writes nothing."""
    try:
        payload = signing.loads(token, salt=SUPPORT_TOKEN_SALT, max_age=SUPPORT_TOKEN_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise PermissionDenied("This support link has expired; open the client again from the agency admin.") from None
    except signing.BadSignature:
        raise PermissionDenied("This support link is not valid.") from None
    if not isinstance(payload, dict) or not payload.get("ticket") or payload.get("action") not in SUPPORT_ACTIONS:
        raise PermissionDenied("This support link is not valid.")
    if client_id is not None and payload["client"] != client_id:
        raise PermissionDenied("This support link is for another client.")
    if SupportAccessLog.objects.filter(ticket_id=payload["ticket"]).exists():
        raise PermissionDenied("This support link was already used; open the client again from the agency admin.")
    return payload


def support_access_binding_confirm(*, token: str, binding: str, user: User) -> tuple[Client, str]:
    """Hop 2, on the agency host: the logged-in agency user vouches that the
    browser holding the nonce hashed in `binding` is theirs. Returns (client, proof)."""
    payload = support_access_ticket_check(token=token)
    if payload["user"] != user.pk:
        raise PermissionDenied("This support link was issued to another user.")
    if not re.fullmatch(r"[0-9a-f]{64}", binding or ""):
        raise PermissionDenied("This support link is not valid.")
    client = Client.objects.exclude(schema_name="public").filter(pk=payload["client"]).first()
    if client is None:
        raise PermissionDenied("This support link's client no longer exists.")
    proof = signing.dumps({"ticket": payload["ticket"], "user": user.pk, "binding": binding}, salt=SUPPORT_PROOF_SALT)
    return client, proof


def support_access_redeem(
    *, token: str, client: Client, ip_address: str | None, session_user: User | None = None,
    proof: str = "", binding_nonce: str = "",
) -> tuple[User, str, str]:
    """Hop 3, on the client host: redeem the ticket once, for its own user only,
    and log the access. `session_user` is who this browser is logged in as on the
    client host (None if anonymous); an anonymous browser must bring the proof of
    hop 2 and the nonce cookie of hop 1. Returns (staff user, action, next path)."""
    payload = support_access_ticket_check(token=token, client_id=client.pk)
    if session_user is not None:
        if session_user.pk != payload["user"]:
            raise PermissionDenied(
                "This support link was issued to another user. Log out of this client's portal first."
            )
    else:
        try:
            vouched = signing.loads(proof, salt=SUPPORT_PROOF_SALT, max_age=SUPPORT_TOKEN_MAX_AGE_SECONDS)
        except signing.BadSignature:
            raise PermissionDenied("This support link must be opened from the agency admin, in the same browser.") from None
        if not (
            binding_nonce
            and vouched.get("ticket") == payload["ticket"]
            and vouched.get("user") == payload["user"]
            and hmac.compare_digest(str(vouched.get("binding")), support_binding_hash(binding_nonce))
        ):
            raise PermissionDenied("This support link must be opened from the agency admin, in the same browser.")
    with schema_context("public"):
        staff_user = User.objects.filter(pk=payload["user"], is_active=True).first()
        if staff_user is None or not staff_user.is_agency:
            raise PermissionDenied("This support link's user is no longer agency staff.")
        try:
            with transaction.atomic():
                entry = SupportAccessLog.objects.create(
                    staff_user=staff_user, client=client, action=payload["action"], ip_address=ip_address,
                    ticket_id=payload["ticket"],
                )
                audit_log_record(
                    actor=staff_user, client=client, target=entry,
                    event_type=(AuditEvent.SUPPORT_PORTAL_OPENED if payload["action"] == "open_portal"
                                else AuditEvent.SUPPORT_ADMIN_OPENED),
                )
        except IntegrityError:
            raise PermissionDenied(
                "This support link was already used; open the client again from the agency admin."
            ) from None
    logger.info("support access", extra={"client": client.slug, "staff": staff_user.pk, "action": payload["action"]})
    return staff_user, payload["action"], payload["next"]
