"""Writes for clients (tenants): create, suspend, reactivate, delete, support access."""
from __future__ import annotations

import logging
import re

from django.conf import settings
from django.core import signing
from django.db import transaction
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.core.errors import ApplicationError, PermissionDenied
from apps.tenancy.models import Client, Domain, SupportAccessLog

logger = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
RESERVED_SLUGS = {"public", "www", "admin", "api", "static", "media", "pg_catalog", "information_schema"}
SUPPORT_TOKEN_SALT = "switchboard.support-access"
SUPPORT_TOKEN_MAX_AGE_SECONDS = 60


def default_client_domain(slug: str) -> str:
    return f"{slug.replace('_', '-')}.{settings.CLIENT_DOMAIN_SUFFIX}"


def client_create_check(*, slug: str, domain: str | None, admin_email: str | None) -> tuple[str, str]:
    """Everything that would make client_create refuse, checked up front (forms
    call it too). Returns the normalised slug and domain."""
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug) or slug in RESERVED_SLUGS:
        raise ApplicationError(
            f"'{slug}' cannot be a client slug: use 2-41 lowercase letters, digits or _ starting with a letter.",
            details={"slug": slug},
        )
    domain = (domain or default_client_domain(slug)).strip().lower()
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
    logger.info("client created", extra={"client": slug, "domain": domain})
    return client, client_domain, admin_user


def client_suspend(*, client: Client, reason: str = "") -> Client:
    if client.is_agency:
        raise ApplicationError("The agency itself cannot be suspended.")
    client.status = Client.Status.SUSPENDED
    client.suspended_reason = reason
    client.save(update_fields=["status", "suspended_reason", "updated_at"])
    return client


def client_reactivate(*, client: Client) -> Client:
    client.status = Client.Status.ACTIVE
    client.suspended_reason = ""
    client.save(update_fields=["status", "suspended_reason", "updated_at"])
    return client


def client_delete(*, client: Client) -> None:
    """Delete the client, its domains, its users and its schema (DROP SCHEMA CASCADE)."""
    if client.is_agency:
        raise ApplicationError("The agency itself cannot be deleted.")
    with schema_context("public"):
        client.delete(force_drop=True)


def client_user_create(*, client: Client, email: str, password: str, role: str = User.Role.CLIENT_VIEWER) -> User:
    if role not in User.CLIENT_ROLES:
        raise ApplicationError(f"'{role}' is not a client role.")
    user = User(username=email.lower(), email=email.lower(), role=role, client=client)
    user.set_password(password)
    user.save()
    return user


def support_access_token_issue(*, staff_user: User, client: Client, action: str, next_path: str = "/") -> str:
    """A short-lived signed ticket that lets agency staff enter a client's host
    (portal or client admin). Redeeming it writes the audit entry."""
    if not staff_user.is_agency:
        raise PermissionDenied("Only agency staff can act as a client.")
    if action not in ("open_portal", "open_admin"):
        raise ApplicationError(f"Unknown support action '{action}'.")
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/"
    return signing.dumps(
        {"user": staff_user.pk, "client": client.pk, "action": action, "next": next_path},
        salt=SUPPORT_TOKEN_SALT,
    )


def support_access_redeem(*, token: str, client: Client, ip_address: str | None) -> tuple[User, str, str]:
    """Check the ticket against the host's client; log the access. Returns
    (staff user, action, next path)."""
    try:
        payload = signing.loads(token, salt=SUPPORT_TOKEN_SALT, max_age=SUPPORT_TOKEN_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise PermissionDenied("This support link has expired; open the client again from the agency admin.") from None
    except signing.BadSignature:
        raise PermissionDenied("This support link is not valid.") from None
    if payload["client"] != client.pk:
        raise PermissionDenied("This support link is for another client.")
    with schema_context("public"):
        staff_user = User.objects.filter(pk=payload["user"], is_active=True).first()
        if staff_user is None or not staff_user.is_agency:
            raise PermissionDenied("This support link's user is no longer agency staff.")
        SupportAccessLog.objects.create(
            staff_user=staff_user, client=client, action=payload["action"], ip_address=ip_address
        )
    logger.info("support access", extra={"client": client.slug, "staff": staff_user.pk, "action": payload["action"]})
    return staff_user, payload["action"], payload["next"]

