"""Vendor errors during a call: classified as rate-limited / retryable / terminal;
a 429 cools the key down (real PostgreSQL + the Redis lease book) and a terminal
error changes nothing."""
from datetime import timedelta

import httpx
import openai
import pytest
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context
from pipecat.frames.frames import ErrorFrame
from pipecat.utils.errors import ErrorCategory
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from apps.providers.models import ProviderAccount
from apps.providers.services import provider_error_report, provider_key_lease
from apps.providers.vendor_errors import vendor_error_classify
from apps.providers_agency.models import AgencyProviderAccount


def _httpx_response(status, headers=None):
    return httpx.Response(status, headers=headers or {},
                          request=httpx.Request("POST", "https://api.openai.com/v1/chat/completions"))


class AiohttpLikeError(Exception):
    """aiohttp.ClientResponseError's shape: .status and .headers on the exception."""

    def __init__(self, status, headers=None):
        super().__init__(f"{status}, message='upstream'")
        self.status, self.headers = status, headers or {}


@pytest.mark.parametrize(("error", "expected"), [
    (openai.RateLimitError("Rate limit reached", response=_httpx_response(429, {"retry-after": "12"}), body=None),
     ("rate_limited", "rate_limit", 429, 12.0, True)),
    (openai.AuthenticationError("Incorrect API key", response=_httpx_response(401), body=None),
     ("terminal", "authentication", 401, None, False)),
    (openai.InternalServerError("boom", response=_httpx_response(503), body=None),
     ("retryable", "server", 503, None, True)),
    (httpx.HTTPStatusError("not found", request=httpx.Request("GET", "https://x"), response=_httpx_response(404)),
     ("terminal", "invalid_request", 404, None, False)),
    (InvalidStatus(Response(429, "Too Many Requests", Headers({"Retry-After": "5"}))),
     ("rate_limited", "rate_limit", 429, 5.0, True)),
    (InvalidStatus(Response(403, "Forbidden", Headers())), ("terminal", "authorization", 403, None, False)),
    (AiohttpLikeError(402), ("rate_limited", "quota", 402, 900.0, True)),
    (AiohttpLikeError(429, {"Retry-After": "99999"}), ("rate_limited", "rate_limit", 429, 3600.0, True)),
    (ConnectionResetError("reset by peer"), ("retryable", "connectivity", None, None, True)),
    (TimeoutError(), ("retryable", "connectivity", None, None, True)),
    (ErrorFrame(error="Cartesia said slow down", category=ErrorCategory.RATE_LIMIT),
     ("rate_limited", "rate_limit", None, 60.0, True)),
    (ErrorFrame(error="ElevenLabs: invalid voice", category=ErrorCategory.INVALID_REQUEST),
     ("terminal", "invalid_request", None, None, False)),
    ("Deepgram websocket closed: HTTP 429 Too Many Requests", ("rate_limited", "rate_limit", 429, 60.0, True)),
    ("server rejected WebSocket connection: HTTP 401", ("terminal", "authentication", 401, None, False)),
    ("something odd happened", ("retryable", "unknown", None, None, True)),
])
def test_vendor_errors_are_classified(error, expected):
    report = vendor_error_classify(error)
    assert (report.outcome, report.category, report.status_code, report.cooldown_secs, report.retryable) == expected


def test_a_429_cools_the_key_down_so_calls_lease_the_other_key(tenant_a, clean_leases):
    with tenant_context(tenant_a):
        throttled = ProviderAccount.objects.create(provider="openai", api_key="k1")
        healthy = ProviderAccount.objects.create(provider="openai", api_key="k2")
        error = openai.RateLimitError("Rate limit reached", response=_httpx_response(429, {"retry-after": "30"}),
                                      body=None)
        before = timezone.now()
        report = provider_error_report(call_id="call-1", key_id=str(throttled.pk), error=error)
        assert (report.outcome, report.cooldown_secs) == ("rate_limited", 30.0)
        throttled.refresh_from_db()
        assert before + timedelta(seconds=30) <= throttled.cooldown_until <= timezone.now() + timedelta(seconds=30)
        served = [provider_key_lease(provider="openai", call_id=f"c{n}").pk for n in range(4)]
        assert served == [healthy.pk] * 4
        healthy.refresh_from_db()
        assert healthy.cooldown_until is None


def test_a_429_on_an_agency_key_cools_it_down_for_every_client(tenant_a, tenant_b, clean_leases):
    with schema_context("public"):
        first = AgencyProviderAccount.objects.create(provider="deepgram", api_key="a1", all_clients=True)
        second = AgencyProviderAccount.objects.create(provider="deepgram", api_key="a2", all_clients=True)
    with tenant_context(tenant_a):
        provider_error_report(call_id="call-1", key_id=f"agency:{first.pk}",
                              error="Deepgram websocket closed: HTTP 429 Too Many Requests")
    with tenant_context(tenant_b):
        served = [provider_key_lease(provider="deepgram", call_id=f"g{n}").pk for n in range(3)]
        assert served == [second.pk] * 3
    with schema_context("public"):
        first.refresh_from_db()
        second.refresh_from_db()
        assert first.cooldown_until > timezone.now() + timedelta(seconds=55)
        assert second.cooldown_until is None


@pytest.mark.parametrize("error", [
    openai.AuthenticationError("Incorrect API key", response=_httpx_response(401), body=None),
    ConnectionResetError("reset by peer"),
])
def test_terminal_and_retryable_errors_leave_the_key_alone(tenant_a, clean_leases, error):
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.create(provider="openai", api_key="k1")
        provider_error_report(call_id="call-1", key_id=str(account.pk), error=error)
        account.refresh_from_db()
        assert (account.cooldown_until, account.is_active) == (None, True)
        assert provider_key_lease(provider="openai", call_id="next").pk == account.pk


def test_a_keyless_vendor_error_is_classified_without_touching_any_key(tenant_a):
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.create(provider="openai", api_key="k1")
        report = provider_error_report(call_id="call-1", key_id=None, error="HTTP 429")
        assert report.outcome == "rate_limited"
        account.refresh_from_db()
        assert account.cooldown_until is None


def _out_of_credit():
    return openai.RateLimitError("You exceeded your current quota", response=_httpx_response(429),
                                 body={"code": "insufficient_quota", "type": "insufficient_quota"})


def test_the_key_s_vendor_classifies_the_error_when_no_provider_is_given(tenant_a, clean_leases):
    """The runtime's existing call (call_id, key_id, error): the vendor is the key's, so
    OpenAI's "out of credit" 429 cools the key for the quota time, not a minute."""
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.create(provider="openai", api_key="k1")
        before = timezone.now()
        report = provider_error_report(call_id="call-1", key_id=str(account.pk), error=_out_of_credit())
        assert (report.outcome, report.category, report.cooldown_secs) == ("rate_limited", "quota", 900.0)
        account.refresh_from_db()
        assert before + timedelta(seconds=900) <= account.cooldown_until <= timezone.now() + timedelta(seconds=900)


def test_an_agency_key_s_vendor_classifies_too(tenant_a, clean_leases):
    with schema_context("public"):
        agency = AgencyProviderAccount.objects.create(provider="elevenlabs", api_key="a1", all_clients=True)
    with tenant_context(tenant_a):
        report = provider_error_report(call_id="call-1", key_id=f"agency:{agency.pk}",
                                       error='HTTP 401 {"detail": {"status": "quota_exceeded"}}')
    assert (report.outcome, report.category, report.status_code, report.cooldown_secs) == (
        "rate_limited", "quota", 401, 900.0)
    with schema_context("public"):
        agency.refresh_from_db()
        assert agency.cooldown_until > timezone.now() + timedelta(seconds=890)


def test_an_explicit_provider_is_used_even_without_a_key(tenant_a):
    with tenant_context(tenant_a):
        assert provider_error_report(call_id="c", key_id=None, error=_out_of_credit(), provider="openai").category == "quota"
        assert provider_error_report(call_id="c", key_id=None, error=_out_of_credit()).category == "rate_limit"
