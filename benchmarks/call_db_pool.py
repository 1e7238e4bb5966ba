"""Database work of concurrent live calls: Channels' `database_sync_to_async` (one shared
thread per process) against the call database pool (apps/core/tenant_db.py), same run,
same PostgreSQL. Not a test: `--write` appends the figures to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/call_db_pool.py [--calls 1 4 16] [--query-secs 0.5] [--write]

Each "call" runs one query that takes `--query-secs` inside PostgreSQL (pg_sleep), all
calls at once; the figure is the wall time until the last one is done, and the event
loop's worst stall meanwhile (a sleeping query must not block the loop either way).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def _sleep_query(*, secs: float) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [secs])


async def _loop_lag(stop: asyncio.Event) -> float:
    worst = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        worst = max(worst, time.perf_counter() - started - 0.005)
    return worst


async def _run(calls: int, secs: float, how: str) -> tuple[float, float]:
    from channels.db import database_sync_to_async
    from django_tenants.utils import get_public_schema_name, get_tenant_model, tenant_context

    from apps.core.tenant_db import in_tenant

    public = get_tenant_model()(schema_name=get_public_schema_name())

    @database_sync_to_async
    def channels_way():
        with tenant_context(public):
            _sleep_query(secs=secs)

    stop = asyncio.Event()
    lag = asyncio.create_task(_loop_lag(stop))
    started = time.perf_counter()
    if how == "channels":
        await asyncio.gather(*(channels_way() for _ in range(calls)))
    else:
        await asyncio.gather(*(in_tenant(public, _sleep_query, secs=secs) for _ in range(calls)))
    elapsed = time.perf_counter() - started
    stop.set()
    return elapsed, await lag


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--query-secs", type=float, default=0.5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    rows = []
    for calls in args.calls:
        for how in ("channels", "pool"):
            elapsed, lag = asyncio.run(_run(calls, args.query_secs, how))
            rows.append((calls, how, elapsed, lag))
            print(f"{calls:>3} calls, {how:>8}: all done in {elapsed:.2f} s (loop stall max {lag * 1000:.1f} ms)")
    if args.write:
        command = "`.venv/bin/python benchmarks/call_db_pool.py " + " ".join(sys.argv[1:]) + "`"
        lines = [
            "", f"## Call database work: one shared thread vs the call pool ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)", "",
            f"Command: {command}  ",
            f"Each call runs one {args.query_secs} s query (pg_sleep), all at once; CALL_DB_THREADS = "
            f"{settings.CALL_DB_THREADS}. Wall time until the last is done.", "",
            "| calls | Channels' database_sync_to_async (shared thread) s | call pool (apps/core/tenant_db) s | ratio |",
            "| --- | --- | --- | --- |",
        ]
        by = {(calls, how): elapsed for calls, how, elapsed, _ in rows}
        for calls in args.calls:
            before, after = by[(calls, "channels")], by[(calls, "pool")]
            lines.append(f"| {calls} | {before:.2f} | {after:.2f} | {before / after:.1f}× |")
        with open(BASE_DIR / "benchmarks" / "RESULTS.md", "a") as results:
            results.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
