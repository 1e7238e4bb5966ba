"""Per-API-key rate limit: at most settings.API_RATE_LIMIT requests per key in
each fixed window of settings.API_RATE_LIMIT_WINDOW_SECS, counted in Redis with
one atomic INCR per request (so every web process shares the count). Past the
limit django-ninja answers 429 with `Retry-After`: the seconds until the window
ends, rounded up."""
from __future__ import annotations

import contextvars
import functools
import time

import redis
from django.conf import settings
from django.db import connection
from ninja.throttling import BaseThrottle

_wait = contextvars.ContextVar("api_rate_wait", default=None)


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _now() -> float:
    return time.time()


def api_rate_key(*, schema_name: str, key_id: int, window_start: int) -> str:
    return f"api-rate:{schema_name}:{key_id}:{window_start}"


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request) -> bool:
        api_key = getattr(request, "auth", None)
        if api_key is None or not getattr(api_key, "pk", None):
            return True  # unauthenticated requests never reach an endpoint
        limit, window = settings.API_RATE_LIMIT, settings.API_RATE_LIMIT_WINDOW_SECS
        now = _now()
        window_start = int(now // window) * window
        name = api_rate_key(schema_name=connection.schema_name, key_id=api_key.pk, window_start=window_start)
        pipe = _redis().pipeline()
        pipe.incr(name)
        pipe.expire(name, window + 1)
        count, _ = pipe.execute()
        if count <= limit:
            return True
        _wait.set(window_start + window - now)
        return False

    def wait(self) -> float | None:
        return _wait.get()
