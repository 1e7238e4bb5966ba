"""Usage caps: alert agency staff once per period when a client crosses its soft
cap; at the hard cap also pause its campaigns. New calls are refused by the call
runtime, which asks `selectors.usage_cap_status` at call start.

`cap_check_after_usage` runs in a Celery task after usage lands (tasks.cap_check_task,
enqueued on commit by usage_record_call); the staff email is a task of its own
(tasks.cap_alert_notify_task), so a slow mail server delays nobody."""

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


def _enqueue_notify(alert_id: int) -> None:
    from apps.billing.tasks import cap_alert_notify_task

    try:
        cap_alert_notify_task.delay(alert_id)
    except Exception:  # noqa: BLE001 - a broker outage must not fail the caller; the alert row stays un-notified
        logger.exception("could not enqueue the email of cap alert %s", alert_id)


def cap_check_after_usage(*, client_id: int, now=None) -> CapAlert | None:
    """Evaluate the caps after new usage (cheap: see selectors.usage_cap_status).
    Idempotent: the unique (client, period, level) row means each level alerts
    once per period, even when many calls end at the same moment."""
    from apps.tenancy.models import Client

    client = Client.objects.get(pk=client_id)
    now = now or timezone.now()
    status = usage_cap_status(client=client, at=now)
    if status.state == "allowed":
        return None
    period_start = period_containing(now, client.timezone)
    if CapAlert.objects.filter(client=client, period_start=period_start, level=status.state).exists():
        return None  # the usual case once a cap is reached: no write, no savepoint
    try:
        with transaction.atomic():
            alert = CapAlert.objects.create(
                client=client, period_start=period_start, level=status.state, detail="; ".join(status.reasons)[:300]
            )
            transaction.on_commit(lambda: _enqueue_notify(alert.pk))
    except IntegrityError:
        return None  # already alerted for this level and period
    from apps.webhooks.tasks import cap_reached_later  # the client's usage.cap_reached webhook

    transaction.on_commit(lambda: cap_reached_later(cap_alert_id=alert.pk), robust=True)
    logger.warning("usage cap: %s reached its %s cap for %s", client.slug, status.state, period_start)
    if status.state == "hard":
        _pause_campaigns(client)
    return alert


def cap_alert_notify(*, alert_id: int) -> bool:
    """Email agency staff about one cap alert. Idempotent: the alert row is locked
    and `notified_at` set in the same transaction, so a second run (a retried or
    redelivered task) sends nothing. Returns whether an email was sent."""
    with transaction.atomic():
        alert = CapAlert.objects.select_for_update().select_related("client").get(pk=alert_id)
        if alert.notified_at is not None:
            return False
        client = alert.client
        recipients = _staff_emails()
        if recipients:
            subject = f"[Switchboard] {client.name} reached its {alert.level} usage cap"
            body = (
                f"{client.name} ({client.slug}) reached its {alert.level} usage cap for {alert.period_start:%Y-%m}:\n"
                + "\n".join(f"- {reason}" for reason in alert.detail.split("; ") if reason)
                + (
                    "\n\nNew calls are refused and campaigns paused until the cap is raised."
                    if alert.level == CapAlert.Level.HARD
                    else ""
                )
            )
            # Raises on an SMTP failure: the transaction rolls back and the task retries.
            send_mail(subject, body, None, recipients, fail_silently=False)
        alert.notified_at = timezone.now()
        alert.save(update_fields=["notified_at"])
    return bool(recipients)
