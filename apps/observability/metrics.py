"""The agency's Prometheus metrics, computed when scraped from PostgreSQL and Redis.

Why at scrape time rather than counters kept in each process: web runs several daphne
processes (scripts/web.py) and Celery its own; a scrape reaches one of them, and
prometheus_client's multiprocess mode would need a shared directory, cleanup of dead
processes' files and a gauge policy per metric. Every figure here is already in the
database (calls, turns and their latencies) or in Redis (queues, the vendor error
counter), so any process answers with the same, complete numbers, and a restarted
process loses nothing. The cost is a few queries per client per scrape (one scan of
the turn table for the latency histograms): fine at a 15-60 s scrape interval.

    switchboard_live_calls{client}                      calls in progress (answered, not ended)
    switchboard_calls_total{client,direction}           calls ever created
    switchboard_calls_last_minute{client}               calls created in the last 60 s (calls per minute)
    switchboard_calls_failed_total{client}              calls that ended with end reason "error"
    switchboard_turn_<stage>_seconds{client}            histograms of the Turn rows' latencies
                                                        (stage: voice_to_voice, stt_final, llm_ttft, tts_ttfb)
    switchboard_vendor_errors_total{vendor,outcome}     provider errors during calls, as classified
    switchboard_queue_length{queue}                     Celery messages waiting in Redis, per queue
"""
from __future__ import annotations

from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django_tenants.utils import tenant_context
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from apps.observability.services import VENDOR_ERRORS_KEY

# Upper bounds, in seconds, shared by every latency histogram.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
STAGES = {
    "voice_to_voice": ("voice_to_voice_ms", "From the end of the caller's speech to the agent's first audio."),
    "stt_final": ("stt_final_ms", "From the end of the caller's speech (VAD) to the final transcript."),
    "llm_ttft": ("llm_ttft_ms", "LLM time to first token."),
    "tts_ttfb": ("tts_ttfb_ms", "TTS time to first byte."),
}
# Celery's Redis transport keeps a queue's priority levels in lists named "<queue>\x06\x16<n>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def _client_figures(client) -> dict:
    from apps.calls.models import Call, Turn

    now = timezone.now()
    with tenant_context(client):
        calls = Call.objects.aggregate(
            live=Count("id", filter=Q(answered_at__isnull=False, ended_at__isnull=True)),
            inbound=Count("id", filter=Q(direction=Call.Direction.INBOUND)),
            outbound=Count("id", filter=Q(direction=Call.Direction.OUTBOUND)),
            last_minute=Count("id", filter=Q(created_at__gt=now - timedelta(seconds=60))),
            failed=Count("id", filter=Q(end_reason=Call.EndReason.ERROR)),
        )
        aggregates = {}
        for stage, (column, _) in STAGES.items():
            for index, bound in enumerate(LATENCY_BUCKETS):
                aggregates[f"{stage}_{index}"] = Count("id", filter=Q(**{f"{column}__lte": round(bound * 1000)}))
            aggregates[f"{stage}_count"] = Count(column)
            aggregates[f"{stage}_sum"] = Sum(column)
        turns = Turn.objects.aggregate(**aggregates)
    return {"calls": calls, "turns": turns}


def _queue_lengths(connection: redis.Redis) -> dict[str, int]:
    lengths = {}
    for queue in settings.METRICS_CELERY_QUEUES:
        pipe = connection.pipeline()
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
        lengths[queue] = sum(pipe.execute())
    return lengths


class _SwitchboardCollector:
    def collect(self):
        from apps.tenancy.selectors import client_list

        live = GaugeMetricFamily("switchboard_live_calls", "Calls in progress (answered, not ended).",
                                 labels=["client"])
        total = CounterMetricFamily("switchboard_calls", "Calls created.", labels=["client", "direction"])
        per_minute = GaugeMetricFamily("switchboard_calls_last_minute", "Calls created in the last 60 seconds.",
                                       labels=["client"])
        failed = CounterMetricFamily("switchboard_calls_failed", "Calls that ended with an error.",
                                     labels=["client"])
        histograms = {stage: HistogramMetricFamily(f"switchboard_turn_{stage}_seconds", help_text,
                                                   labels=["client"])
                      for stage, (_, help_text) in STAGES.items()}
        for client in client_list():
            figures = _client_figures(client)
            calls, turns = figures["calls"], figures["turns"]
            live.add_metric([client.slug], calls["live"])
            total.add_metric([client.slug, "inbound"], calls["inbound"])
            total.add_metric([client.slug, "outbound"], calls["outbound"])
            per_minute.add_metric([client.slug], calls["last_minute"])
            failed.add_metric([client.slug], calls["failed"])
            for stage, histogram in histograms.items():
                buckets = [(_bound(bound), turns[f"{stage}_{index}"]) for index, bound in enumerate(LATENCY_BUCKETS)]
                buckets.append(("+Inf", turns[f"{stage}_count"]))
                histogram.add_metric([client.slug], buckets, (turns[f"{stage}_sum"] or 0) / 1000)
        yield from (live, total, per_minute, failed, *histograms.values())

        connection = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        errors = CounterMetricFamily("switchboard_vendor_errors", "Provider errors during calls, by vendor and "
                                     "how they were classified.", labels=["vendor", "outcome"])
        for field, count in sorted(connection.hgetall(VENDOR_ERRORS_KEY).items()):
            vendor, _, outcome = field.decode().partition("|")
            errors.add_metric([vendor, outcome], int(count))
        yield errors
        queues = GaugeMetricFamily("switchboard_queue_length", "Celery messages waiting in the broker.",
                                   labels=["queue"])
        for queue, length in _queue_lengths(connection).items():
            queues.add_metric([queue], length)
        yield queues


def _bound(seconds: float) -> str:
    return f"{seconds:g}" if seconds != int(seconds) else f"{seconds:.1f}"


def metrics_exposition() -> bytes:
    """Every metric, in Prometheus' text format (version 0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SwitchboardCollector())
    return generate_latest(registry)
