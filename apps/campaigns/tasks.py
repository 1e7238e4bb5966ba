"""Campaign tasks: doors that take primitive ids and call one service; safe to run twice.

- `campaigns.tick` (beat, every 5 seconds, in each client's schema): enqueue a dispatcher turn
  for every campaign with work.
- `campaigns.dispatch` (in the client's schema): settle, gate, claim and dial for a few seconds.
  A second turn for the same campaign while one runs returns at once (Redis lock); a worker killed
  mid-turn leaves its claimed contacts under leases that expire.
"""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import connection

logger = logging.getLogger(__name__)


@shared_task(name="campaigns.tick")
def tick() -> int:
    from apps.campaigns.services import campaigns_tick

    client = getattr(connection, "tenant", None)
    if client is None or connection.schema_name == "public":
        return 0
    return campaigns_tick(client=client)


@shared_task(name="campaigns.dispatch")
def dispatch(campaign_id: int) -> dict:
    from apps.campaigns.services import campaign_dispatch

    client = getattr(connection, "tenant", None)
    if client is None or connection.schema_name == "public":
        logger.warning("campaigns.dispatch for %s sent outside a client schema; ignored", campaign_id)
        return {}
    if not client.is_active:
        return {"status": "client suspended"}
    return campaign_dispatch(client=client, campaign_id=campaign_id)
