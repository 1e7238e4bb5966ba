"""Telephony tasks. Tenant-aware: the beat entry lives in each client's schema
(migration 0002), so the task runs inside that client's schema."""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from celery import shared_task
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(name="telephony.phone_number_months")
def phone_number_months(now: str | None = None) -> int:
    """Beat: hourly on the 1st and 2nd (UTC). Records this client's numbers for the
    month that has begun in the client's timezone; until it has begun there (a
    client behind UTC early on the 1st) it waits for a later run. Safe to run any
    number of times: one event per number and month."""
    from apps.billing.periods import format_period, period_containing
    from apps.telephony.services import telephony_phone_number_months_record

    client = getattr(connection, "tenant", None)
    if client is None or connection.schema_name == "public":
        return 0
    moment = datetime.fromisoformat(now) if now else timezone.now()
    period = period_containing(moment, client.timezone)
    if period != period_containing(moment, UTC):
        return 0  # still last month in the client's timezone
    recorded = telephony_phone_number_months_record(period_start=period)
    logger.info("phone numbers of %s for %s: %s new", client.schema_name, format_period(period), recorded)
    return recorded


@shared_task(name="telephony.hang_up_retry", bind=True, max_retries=6)
def hang_up_retry(self, call_id: str) -> None:
    """A carrier hang-up that failed on the live path, tried again with backoff
    (retryable refusals only; the carrier's "already ended" counts as done)."""
    from apps.calls.selectors import call_get
    from apps.core.errors import ProviderError
    from apps.telephony.services import telephony_hang_up

    try:
        telephony_hang_up(call=call_get(call_id=call_id))
    except ProviderError as error:
        if error.retryable:
            raise self.retry(exc=error, countdown=min(300, 5 * 2 ** self.request.retries)) from error
        logger.warning("carrier refused to hang up call %s: %s", call_id, error.message)
