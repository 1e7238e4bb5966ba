"""Liveness of everything a call depends on: database, Redis, storage, workers."""
from __future__ import annotations

import time
import uuid

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


def _check_redis() -> dict:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def _check_storage() -> dict:
    name = default_storage.save(f"healthz/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name) as handle:
            if handle.read() != b"ok":
                return {"ok": False, "error": "storage read back different bytes"}
    finally:
        default_storage.delete(name)
    return {"ok": True}


def _check_workers() -> dict:
    from config.celery import app

    replies = app.control.ping(timeout=1.0)
    if not replies:
        return {"ok": False, "workers": [], "error": "no Celery worker answered a ping within 1 s"}
    return {"ok": True, "workers": sorted(name for reply in replies for name in reply)}


CHECKS = {
    "database": _check_database,
    "redis": _check_redis,
    "storage": _check_storage,
    "workers": _check_workers,
}


def health_report(checks: dict = CHECKS) -> tuple[bool, dict]:
    report = {}
    for name, check in checks.items():
        if name == "workers" and not report.get("redis", {"ok": True})["ok"]:
            # Workers are reached through the Redis broker; pinging them would only hang.
            report[name] = {"ok": False, "error": "broker (Redis) unreachable", "ms": 0.0}
            continue
        started = time.monotonic()
        try:
            result = check()
        except Exception as exc:  # a health check reports failures, it never raises
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        result["ms"] = round((time.monotonic() - started) * 1000, 1)
        report[name] = result
    return all(item["ok"] for item in report.values()), report
