"""Choosing and leasing provider keys.

A call leases one key per vendor it uses. Keys rotate round-robin; a key at its
concurrency cap or in a rate-limit cooldown is skipped. The lease book is a
Redis sorted set per key (member = call id, score = lease expiry), changed by one
Lua script so two calls can never both take the last slot. Leases expire on
their own, so a crashed call cannot hold a slot forever."""
from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.errors import ProviderError
from apps.providers.models import ProviderAccount

logger = logging.getLogger(__name__)

# A lease outlives the longest call a little; it is released at call end.
LEASE_GRACE_SECS = 120

_LEASE_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local cap = tonumber(ARGV[4])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _lease_key(account_id: int) -> str:
    return f"sb:provider-lease:{connection.schema_name}:{account_id}"


def _rotation_key(provider: str) -> str:
    return f"sb:provider-rotation:{connection.schema_name}:{provider}"


def provider_key_in_use(*, account: ProviderAccount) -> int:
    """How many live leases the key holds now."""
    key = _lease_key(account.pk)
    _redis().zremrangebyscore(key, "-inf", time.time())
    return _redis().zcard(key)


def provider_key_lease(*, provider: str, call_id: str, max_secs: float = 3600) -> ProviderAccount:
    """Lease a key of `provider` for one call. Rotates across the active keys,
    skipping keys in cooldown or at their concurrency cap. Raises ProviderError
    (retryable) when every key is busy, (terminal) when there is none."""
    now = timezone.now()
    accounts = list(ProviderAccount.objects.filter(provider=provider, is_active=True).order_by("id"))
    if not accounts:
        raise ProviderError(f"No {provider} key is configured for this client: add one under Provider accounts.",
                            retryable=False, details={"provider": provider})
    start = _redis().incr(_rotation_key(provider)) - 1
    ordered = [accounts[(start + offset) % len(accounts)] for offset in range(len(accounts))]
    expires_at = time.time() + max_secs + LEASE_GRACE_SECS
    script = _redis().register_script(_LEASE_SCRIPT)
    for account in ordered:
        if account.cooldown_until and account.cooldown_until > now:
            continue
        taken = script(
            keys=[_lease_key(account.pk)],
            args=[time.time(), expires_at, str(call_id), account.max_concurrency, int(max_secs + LEASE_GRACE_SECS)],
        )
        if taken:
            return account
    raise ProviderError(f"Every {provider} key is busy or rate-limited; try again shortly.",
                        retryable=True, details={"provider": provider})


def provider_key_release(*, account_id: int, call_id: str) -> None:
    _redis().zrem(_lease_key(account_id), str(call_id))


def provider_key_mark_rate_limited(*, account_id: int, cooldown_secs: float = 60) -> None:
    """The vendor said 429 for this key: skip it until the cooldown ends."""
    until = timezone.now() + timedelta(seconds=cooldown_secs)
    ProviderAccount.objects.filter(pk=account_id).update(cooldown_until=until)
    logger.warning("provider key %s rate-limited until %s", account_id, until.isoformat())
