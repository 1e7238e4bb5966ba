"""Database work of live calls, off the event loop and off Channels' one shared thread.

Channels' `database_sync_to_async` is thread-sensitive: every call in a daphne
process queues its ORM work on ONE thread, so four concurrent 0.5 s queries took
2.0 s (benchmarks/RESULTS.md, "call database work"). Live calls use this pool
instead: `CALL_DB_THREADS` threads, each keeping its own connection, so one
call's slow write never waits behind another call's.

    await in_tenant(client, call_turn_record, call_id=..., turn=...)

Every function runs inside `tenant_context(client)`: the schema is set per use,
never left over from the previous call on that thread.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django_tenants.utils import tenant_context

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.CALL_DB_THREADS, thread_name_prefix="call-db")


def _run(client, function, kwargs):
    # A connection the server dropped (restart, idle timeout) fails once; reconnect and retry.
    for attempt in (1, 2):
        try:
            with tenant_context(client):
                return function(**kwargs)
        except (InterfaceError, OperationalError):
            if attempt == 2 or connection.in_atomic_block or (connection.connection is not None and connection.is_usable()):
                raise  # a real error, not a dead connection
            logger.warning("call database connection was unusable; reconnecting")
            connection.close()
    raise AssertionError("unreachable")


async def in_tenant(client, function, /, **kwargs):
    """Run `function(**kwargs)` in the client's schema on the call database pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(_run, client, function, kwargs))
