"""The audit log: one service every other service calls inside its transaction,
the reads of the agency admin and the client's page, and the admin mixin that
audits the admin saves that have no service of their own.

    from apps.tenancy.audit import CURRENT, audit_log_record
    audit_log_record(actor=CURRENT, client=CURRENT, event_type="agent_published", target=agent,
                     changes={"version": {"before": 1, "after": 2}})

`actor` is a User, None for the system, or CURRENT: the user of the request being
served (AuditActorMiddleware), None outside a request (tasks, commands). `client`
is a Client, a client id, None for agency-wide changes, or CURRENT: the tenant whose
schema the connection is on (None on the agency's public schema). CURRENT lets a
service deep in another app add its audit row in one line without growing an
actor parameter through every caller; services of this app take the actor
explicitly from their doors.
"""
from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection
from django.db.models import Model, QuerySet

from apps.tenancy.models import AuditLogEntry, Client

AuditEvent = AuditLogEntry.Event
CURRENT: Any = type("CurrentFromContext", (), {"__repr__": lambda self: "CURRENT"})()
SECRET_PLACEHOLDER = "(changed)"

_request = contextvars.ContextVar("audit_request", default=None)


class AuditActorMiddleware:
    """Makes the request's user the actor of audit rows written while serving it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def audit_actor_current():
    request = _request.get()
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _client_current() -> Client | None:
    tenant = getattr(connection, "tenant", None)
    if tenant is None or getattr(tenant, "schema_name", "public") == "public" or not isinstance(tenant, Client):
        return None
    return tenant


def audit_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any], *,
                  secret_fields: Iterable[str] = ()) -> dict:
    """{"field": {"before": b, "after": a}} for the fields whose value differs;
    secrets are recorded as changed, never with their values."""
    before = before or {}
    secret_fields = set(secret_fields)
    changes = {}
    for name, new in after.items():
        old = before.get(name)
        if old == new or (old in (None, "") and new in (None, "")):
            continue  # unchanged, or a blank field of a new object
        if name in secret_fields:
            changes[name] = {"before": SECRET_PLACEHOLDER if old else "", "after": SECRET_PLACEHOLDER if new else ""}
        else:
            changes[name] = {"before": old, "after": new}
    return changes


def audit_log_record(*, actor, client, event_type: str, target: Model | None,
                     changes: Mapping[str, Any] | None = None) -> AuditLogEntry:
    """Write one audit row. Call it inside the transaction of the change it
    records, so the row exists exactly when the change does."""
    event_type = AuditEvent(event_type)  # ValueError on an undocumented event: a programming error
    if actor is CURRENT:
        actor = audit_actor_current()
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if client is CURRENT:
        client = _client_current()
    elif client is not None and not isinstance(client, Client):
        client = Client.objects.filter(pk=client).first()
    if client is not None and client.is_agency:
        client = None
    target_type = target_id = target_repr = ""
    if target is not None:
        target_type = f"{target._meta.app_label}.{target._meta.model_name}"
        target_id = "" if target.pk is None else str(target.pk)
        target_repr = str(target)[:300]
    return AuditLogEntry.objects.create(
        actor=actor,
        actor_email=getattr(actor, "email", "") or "",
        client=client,
        client_name=client.name if client is not None else "",
        event_type=event_type,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr,
        changes=dict(changes or {}),
    )


def audit_log_for_client(*, client: Client, event_type: str = "") -> QuerySet[AuditLogEntry]:
    """A client's own rows, newest first (the client admin's audit page)."""
    rows = AuditLogEntry.objects.filter(client=client)
    if event_type:
        rows = rows.filter(event_type=event_type)
    return rows.order_by("-created_at", "-id")


class AuditedAdminMixin:
    """For ModelAdmins whose saves have no service: records one row per save,
    with the before/after of `audit_fields` (values of `audit_secret_fields` are
    never written). Subclasses name the event with `audit_event(obj, created, changes)`;
    returning None records nothing (nothing audited changed)."""

    audit_fields: tuple[str, ...] = ()
    audit_secret_fields: tuple[str, ...] = ()

    def audit_event(self, obj, created: bool, changes: dict) -> str | None:
        raise NotImplementedError

    def _audit_snapshot(self, obj) -> dict:
        values = {}
        for name in self.audit_fields:
            field = obj._meta.get_field(name)
            values[name] = field.value_from_object(obj)
            if field.is_relation and values[name] is not None:
                values[name] = str(values[name])
        return values

    def save_model(self, request, obj, form, change):
        before = None
        if change and obj.pk is not None:
            stored = type(obj)._default_manager.filter(pk=obj.pk).first()
            before = self._audit_snapshot(stored) if stored is not None else None
        super().save_model(request, obj, form, change)
        changes = audit_changes(before, self._audit_snapshot(obj), secret_fields=self.audit_secret_fields)
        event = self.audit_event(obj, before is None, changes)
        if event:
            audit_log_record(actor=request.user, client=CURRENT, event_type=event, target=obj, changes=changes)


class ProviderKeyAuditMixin(AuditedAdminMixin):
    """Provider keys edited in the client admin or the agency admin."""

    audit_fields = ("provider", "label", "api_key", "secret", "base_url", "region", "max_concurrency", "is_active")
    audit_secret_fields = ("api_key", "secret")

    def audit_event(self, obj, created, changes):
        if created:
            return AuditEvent.PROVIDER_KEY_CREATED
        if changes.get("is_active", {}).get("after") is False:
            return AuditEvent.PROVIDER_KEY_DISABLED
        if "api_key" in changes or "secret" in changes:
            return AuditEvent.PROVIDER_KEY_ROTATED
        return AuditEvent.PROVIDER_KEY_CHANGED if changes else None


class PhoneNumberAuditMixin(AuditedAdminMixin):
    """Phone numbers edited in the client admin (they have no service of their own)."""

    audit_fields = ("number", "label", "agent", "carrier", "account_sid", "auth_token", "api_private_key", "webhook_public_key",
                    "is_active")
    audit_secret_fields = ("auth_token", "api_private_key")

    def audit_event(self, obj, created, changes):
        return AuditEvent.PHONE_NUMBER_CHANGED if changes else None


# An invoice's status transitions (apps/billing/services/invoices.py) and the event each writes.
INVOICE_STATUS_EVENTS = {
    "finalised": AuditEvent.INVOICE_FINALISED,
    "sent": AuditEvent.INVOICE_SENT,
    "paid": AuditEvent.INVOICE_PAID,
    "void": AuditEvent.INVOICE_VOIDED,
}
