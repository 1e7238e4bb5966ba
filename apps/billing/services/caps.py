"""Usage caps: alert agency staff once per period when a client crosses its soft
cap; at the hard cap also pause its campaigns. New calls are refused by the call
runtime, which asks `selectors.usage_cap_status` at call start."""

from __future__ import annotations

import importlib
import logging

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.billing.models import BillingSettings, CapAlert
from apps.billing.periods import period_containing
from apps.billing.selectors import usage_cap_status

logger = logging.getLogger(__name__)


def _staff_emails() -> list[str]:
    configured = BillingSettings.load().cap_alert_emails
    if configured.strip():
        return [email.strip() for email in configured.split(",") if email.strip()]
    from apps.accounts.models import User

    return list(
        User.objects.filter(is_active=True, role__in=User.AGENCY_ROLES)
        .exclude(email="")
        .values_list("email", flat=True)
    )


def _pause_campaigns(client) -> None:
    """Campaigns live in another app (apps.campaigns); pause them if it is installed."""
    try:
        services = importlib.import_module("apps.campaigns.services")
    except ImportError:
        return
    pause = getattr(services, "campaign_pause_all_for_client", None)
    if pause is not None:
        pause(client=client, reason="usage_cap_reached")


def cap_check_after_usage(*, client_id: int, now=None) -> CapAlert | None:
    """Evaluate the caps after new usage. Idempotent: the unique (client, period,
    level) row means each level alerts once per period, even when many calls end
    at the same moment."""
    from apps.tenancy.models import Client

    client = Client.objects.get(pk=client_id)
    now = now or timezone.now()
    status = usage_cap_status(client=client, at=now)
    if status.state == "allowed":
        return None
    period_start = period_containing(now, client.timezone)
    try:
        with transaction.atomic():
            alert = CapAlert.objects.create(
                client=client, period_start=period_start, level=status.state, detail="; ".join(status.reasons)[:300]
            )
    except IntegrityError:
        return None  # already alerted for this level and period
    from apps.webhooks.tasks import cap_reached_later  # the client's usage.cap_reached webhook

    transaction.on_commit(lambda: cap_reached_later(cap_alert_id=alert.pk), robust=True)
    recipients = _staff_emails()
    subject = f"[Switchboard] {client.name} reached its {status.state} usage cap"
    body = (
        f"{client.name} ({client.slug}) reached its {status.state} usage cap for {period_start:%Y-%m}:\n"
        + "\n".join(f"- {reason}" for reason in status.reasons)
        + ("\n\nNew calls are refused and campaigns paused until the cap is raised." if status.state == "hard" else "")
    )
    if recipients:
        transaction.on_commit(lambda: send_mail(subject, body, None, recipients, fail_silently=True))
    logger.warning("usage cap: %s", subject)
    if status.state == "hard":
        _pause_campaigns(client)
    return alert
