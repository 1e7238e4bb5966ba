"""Writes: the counters the metrics endpoint reads that no table keeps (vendor errors, in Redis)."""
from __future__ import annotations

import logging

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

VENDOR_ERRORS_KEY = "switchboard:metrics:vendor_errors"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def vendor_error_count(*, provider: str | None, outcome: str) -> None:
    """One more `outcome` error ("rate_limited", "retryable", "terminal") of `provider` (the vendor
    module's name). Shared by every process through Redis; a Redis hiccup loses the count, never the call."""
    field = f"{provider or 'unknown'}|{outcome or 'unknown'}"
    try:
        _redis().hincrby(VENDOR_ERRORS_KEY, field, 1)
    except redis.RedisError:
        logger.warning("could not count a %s error of %s", outcome, provider)
