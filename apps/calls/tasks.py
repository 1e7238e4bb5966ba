"""Call tasks: doors that take primitive ids and call one service; safe to run twice.

- `calls.ship_usage` (enqueued when a call ends): the usage outbox's delivery to the
  billing ledger, retried with backoff while billing is unreachable.
- `calls.sweep` (beat, every minute, public schema): per client, `call_sweep` ends
  calls whose process died, ends streams that never connected and re-sends usage
  the outbox has not delivered.
"""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import connection

logger = logging.getLogger(__name__)


@shared_task(name="calls.ship_usage", bind=True, autoretry_for=(Exception,), retry_backoff=5, retry_backoff_max=600,
             retry_jitter=True, max_retries=12)
def ship_usage(self, call_id: str) -> int:
    """Runs in the call's client schema (tenant-aware Celery carries it)."""
    from apps.calls.services import call_usage_ship

    client = getattr(connection, "tenant", None)
    if client is None or connection.schema_name == "public":
        logger.warning("calls.ship_usage for %s sent outside a client schema; ignored", call_id)
        return 0
    return call_usage_ship(client=client, call_id=call_id)


@shared_task(name="calls.sweep")
def sweep() -> dict:
    from apps.calls.services import call_sweep
    from apps.core.tasks import in_every_client

    totals: dict[str, int] = {}
    for counts in in_every_client(lambda client: call_sweep(client=client), what="call sweep"):
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
    return totals
