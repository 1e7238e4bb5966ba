"""Reads for the agency console: every client's month at a glance, and calls across clients. Each client's
calls live in its own schema, so these visit the clients one by one (a few queries each)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django_tenants.utils import tenant_context

ERROR_RATE_ALERT = Decimal("0.10")  # a tenth of the month's calls failed
ERROR_RATE_MIN_CALLS = 5
CAP_ALERT_PERCENT = 80


@dataclass(frozen=True)
class ClientMonth:
    client: object
    calls: int
    minutes: Decimal
    failed: int
    revenue: Decimal | None  # the estimated invoice so far (None: no rate card)
    usage_amount: Decimal
    provider_cost: Decimal
    currency: str
    cap_percent: int | None
    alerts: tuple[str, ...] = field(default_factory=tuple)
    # Browser test calls ("Talk to this agent"): not billed to the client, the agency's own cost.
    test_calls: int = 0
    test_minutes: Decimal = Decimal("0.0")

    @property
    def margin(self) -> Decimal | None:
        return None if self.revenue is None else self.usage_amount - self.provider_cost


def agency_overview(*, at: datetime | None = None) -> list[ClientMonth]:
    """Each client's month so far (its own time zone): calls, minutes, revenue, margin, cap use, alerts."""
    from apps.billing.periods import period_bounds
    from apps.billing.selectors import month_to_date
    from apps.calls.selectors import call_period_figures
    from apps.telephony.selectors import phone_numbers_without_agent
    from apps.tenancy.selectors import client_list

    at = at or timezone.now()
    rows = []
    for client in client_list():
        month = month_to_date(client=client, at=at)
        start, _ = period_bounds(month.period_start, client.timezone)
        with tenant_context(client):
            figures = call_period_figures(start=start, end=at)
            unanswered = phone_numbers_without_agent()
        alerts = []
        if not client.is_active:
            alerts.append("suspended")
        if month.cap_state == "hard":
            alerts.append("hard cap reached: calls refused")
        elif month.cap_state == "soft":
            alerts.append("soft cap reached")
        elif month.cap_percent is not None and month.cap_percent >= CAP_ALERT_PERCENT:
            alerts.append(f"{month.cap_percent}% of cap")
        if figures["calls"] >= ERROR_RATE_MIN_CALLS and figures["failed"] / figures["calls"] >= ERROR_RATE_ALERT:
            alerts.append(f"{figures['failed']} of {figures['calls']} calls failed")
        if unanswered:
            alerts.append(f"no agent on {', '.join(unanswered[:3])}{'…' if len(unanswered) > 3 else ''}")
        if month.estimated_total is None:
            alerts.append("no rate card")
        rows.append(ClientMonth(
            client=client, calls=figures["calls"], minutes=figures["minutes"], failed=figures["failed"],
            revenue=month.estimated_total, usage_amount=month.usage_amount, provider_cost=month.provider_cost,
            currency=month.currency, cap_percent=month.cap_percent, alerts=tuple(alerts),
            test_calls=figures["test_calls"], test_minutes=figures["test_minutes"],
        ))
    return rows


@dataclass(frozen=True)
class ClientCall:
    client: object
    call: object


def calls_across_clients(*, limit: int = 50, failed_only: bool = False, client_slug: str = "") -> list[ClientCall]:
    """The newest calls of every client (or one), newest first."""
    from apps.calls.selectors import call_recent
    from apps.tenancy.selectors import client_list

    clients = client_list()
    if client_slug:
        clients = clients.filter(slug=client_slug)
    rows = []
    for client in clients:
        with tenant_context(client):
            rows.extend(ClientCall(client, call) for call in call_recent(limit=limit, failed_only=failed_only))
    rows.sort(key=lambda row: row.call.created_at, reverse=True)
    return rows[:limit]
