"""Reads of the call record."""
from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from apps.calls.models import Call
from apps.core.errors import NotFound


def call_get(*, call_id) -> Call:
    try:
        return (
            Call.objects.select_related("agent", "agent_version", "phone_number")
            .prefetch_related("turns__tool_calls", "usage")
            .get(pk=call_id)
        )
    except (Call.DoesNotExist, ValidationError, ValueError):
        raise NotFound("No such call.", details={"call_id": str(call_id)}) from None


def call_list(*, direction: str = "", status: str = "", end_reason: str = "", agent_id: int | None = None,
              number: str = "", since=None, until=None) -> QuerySet[Call]:
    calls = Call.objects.select_related("agent", "agent_version")
    if direction:
        calls = calls.filter(direction=direction)
    if status:
        calls = calls.filter(status=status)
    if end_reason:
        calls = calls.filter(end_reason=end_reason)
    if agent_id:
        calls = calls.filter(agent_id=agent_id)
    if number:
        calls = calls.filter(from_number__contains=number) | calls.filter(to_number__contains=number)
    if since:
        calls = calls.filter(created_at__gte=since)
    if until:
        calls = calls.filter(created_at__lt=until)
    return calls.order_by("-created_at")


def call_dashboard_figures() -> dict:
    """Figures for the portal dashboard tile (current tenant)."""
    since = timezone.now() - timedelta(days=30)
    return {"calls_total": Call.objects.filter(created_at__gte=since).count()}
