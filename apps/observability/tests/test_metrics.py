"""The agency's /metrics endpoint: bearer token, and its exact Prometheus output for a seeded
state (calls and turns in the clients' schemas, vendor errors and a Celery queue in Redis)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.calls.services import call_answered, call_create_inbound
from apps.observability.services import VENDOR_ERRORS_KEY
from apps.portal.tests.data import finished_call, turn
from apps.providers.services import provider_error_report

AGENCY = {"HTTP_HOST": "localhost"}
QUEUE = "metrics-test-queue"


@pytest.fixture
def metrics_settings(settings):
    settings.METRICS_BEARER_TOKEN = "scrape-me"
    settings.METRICS_CELERY_QUEUES = [QUEUE]
    connection = redis.Redis.from_url(settings.REDIS_URL)
    keys = [VENDOR_ERRORS_KEY, QUEUE, QUEUE + "\x06\x169"]
    connection.delete(*keys)
    yield connection
    connection.delete(*keys)


def test_metrics_need_the_bearer_token(client, db, metrics_settings, settings):
    assert client.get("/metrics", **AGENCY).status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **AGENCY)
    assert (response.status_code, response["WWW-Authenticate"]) == (401, 'Bearer realm="metrics"')
    assert client.post("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me", **AGENCY).status_code == 405
    # Not on a client's host: the agency's endpoint only.
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me", HTTP_HOST="acme.localhost").status_code == 404
    settings.METRICS_BEARER_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ", **AGENCY).status_code == 404


def _seed(tenant_a, connection):
    with tenant_context(tenant_a):
        start = timezone.now() - timedelta(seconds=20)
        finished_call(tenant_a, number="+15550001000", from_number="+15557000001", seconds=40, turns=[
            turn(0, at=start, said="", answered="Hi", v2v=800, stt=150, llm=300, tts=100),
            turn(1, at=start + timedelta(seconds=5), said="Book me", answered="Done", v2v=1200, stt=400, llm=700,
                 tts=90),
        ])
        finished_call(tenant_a, number="+15550001000", from_number="+15557000002", seconds=5, end_reason="error",
                      error="llm: terminal", days_ago=2)
        live = call_create_inbound(to_number="+15550001000", from_number="+15557000003", carrier_call_id="CA-live")
        call_answered(call_id=live.pk, stream_id="MZ-live")
        for error in ("HTTP 429", "HTTP 429"):
            provider_error_report(call_id=str(live.pk), key_id=None, error=error, provider="openai")
        provider_error_report(call_id=str(live.pk), key_id=None, error="HTTP 401 invalid api key", provider="deepgram")
    connection.lpush(QUEUE, "a", "b", "c")
    connection.lpush(QUEUE + "\x06\x169", "d")


def test_metrics_exposition_for_a_seeded_state(client, tenant_a, tenant_b, metrics_settings):
    _seed(tenant_a, metrics_settings)
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me", **AGENCY)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.content.decode() == EXPECTED


BOUNDS = ("0.1", "0.25", "0.5", "0.75", "1.0", "1.5", "2.0", "3.0", "5.0", "10.0", "+Inf")


def _histogram(name: str, help_text: str, acme: tuple[list[int], str]) -> str:
    """The exposition of one latency histogram: Acme's cumulative bucket counts (hand-computed from the
    seeded turns) and sum, Globex all zero."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for client, (counts, total) in (("acme", acme), ("globex", ([0] * 11, "0.0"))):
        lines += [f'{name}_bucket{{client="{client}",le="{bound}"}} {count:.1f}' for bound, count in zip(BOUNDS, counts, strict=True)]
        lines += [f'{name}_count{{client="{client}"}} {counts[-1]:.1f}', f'{name}_sum{{client="{client}"}} {total}']
    return "\n".join(lines) + "\n"


EXPECTED = """\
# HELP switchboard_live_calls Calls in progress (answered, not ended).
# TYPE switchboard_live_calls gauge
switchboard_live_calls{client="acme"} 1.0
switchboard_live_calls{client="globex"} 0.0
# HELP switchboard_calls_total Calls created.
# TYPE switchboard_calls_total counter
switchboard_calls_total{client="acme",direction="inbound"} 3.0
switchboard_calls_total{client="acme",direction="outbound"} 0.0
switchboard_calls_total{client="globex",direction="inbound"} 0.0
switchboard_calls_total{client="globex",direction="outbound"} 0.0
# HELP switchboard_calls_last_minute Calls created in the last 60 seconds.
# TYPE switchboard_calls_last_minute gauge
switchboard_calls_last_minute{client="acme"} 2.0
switchboard_calls_last_minute{client="globex"} 0.0
# HELP switchboard_calls_failed_total Calls that ended with an error.
# TYPE switchboard_calls_failed_total counter
switchboard_calls_failed_total{client="acme"} 1.0
switchboard_calls_failed_total{client="globex"} 0.0
""" + _histogram(  # voice-to-voice 800 and 1200 ms
    "switchboard_turn_voice_to_voice_seconds", "From the end of the caller's speech to the agent's first audio.",
    ([0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 2], "2.0"),
) + _histogram(  # STT 150 and 400 ms
    "switchboard_turn_stt_final_seconds", "From the end of the caller's speech (VAD) to the final transcript.",
    ([0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2], "0.55"),
) + _histogram(  # LLM 300 and 700 ms
    "switchboard_turn_llm_ttft_seconds", "LLM time to first token.", ([0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2], "1.0"),
) + _histogram(  # TTS 100 and 90 ms
    "switchboard_turn_tts_ttfb_seconds", "TTS time to first byte.", ([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], "0.19"),
) + """\
# HELP switchboard_vendor_errors_total Provider errors during calls, by vendor and how they were classified.
# TYPE switchboard_vendor_errors_total counter
switchboard_vendor_errors_total{outcome="terminal",vendor="deepgram"} 1.0
switchboard_vendor_errors_total{outcome="rate_limited",vendor="openai"} 2.0
# HELP switchboard_queue_length Celery messages waiting in the broker.
# TYPE switchboard_queue_length gauge
switchboard_queue_length{queue="metrics-test-queue"} 4.0
"""
