"""A vendor is one module named in settings.PROVIDER_VENDOR_MODULES; provider kinds are
a table; what a vendor bills and what its errors mean live in its module."""
from decimal import Decimal

import httpx
import openai
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from apps.agents.selectors import ProviderSpec
from apps.core.errors import ApplicationError
from apps.providers import registry
from apps.providers.prices import provider_cost

OUTSIDE = "apps.providers.tests.vendor_modules.outside"
BUNDLED = ["azure_openai", "bedrock", "cartesia", "deepgram", "elevenlabs", "gemini", "gemini_live", "openai",
           "openai_compatible", "openai_realtime", "piper", "sarvam", "speechmatics", "wordllama"]


@pytest.fixture
def vendor_modules():
    """Register a list of vendor modules for one test; the registry's cache is cleared both ways."""
    overrides = []

    def use(modules):
        override = override_settings(PROVIDER_VENDOR_MODULES=list(modules))
        override.enable()
        overrides.append(override)
        registry.vendors.cache_clear()

    yield use
    for override in reversed(overrides):
        override.disable()
    registry.vendors.cache_clear()


def test_the_vendor_list_is_the_settings_line():
    assert settings.PROVIDER_VENDOR_MODULES == [f"apps.providers.vendors.{name}" for name in (
        "deepgram", "openai", "openai_compatible", "azure_openai", "gemini", "bedrock", "speechmatics", "sarvam",
        "elevenlabs", "cartesia", "piper", "openai_realtime", "gemini_live", "wordllama")]
    assert sorted(registry.vendors()) == BUNDLED
    assert "outside" not in registry.vendors()


def test_a_vendor_module_the_project_does_not_ship_registers_through_settings(vendor_modules):
    vendor_modules([*settings.PROVIDER_VENDOR_MODULES, OUTSIDE])
    assert sorted(registry.vendors()) == sorted([*BUNDLED, "outside"])
    assert ("outside", "Outside Speech") in registry.vendor_choices("stt")
    assert registry.vendor_choices("embeddings") == [
        ("openai", "OpenAI"), ("openai_compatible", "OpenAI-compatible server"),
        ("wordllama", "WordLlama (local, offline)"), ("outside", "Outside Speech")]
    assert registry.vendor_choices("speech_to_speech") == [("openai_realtime", "OpenAI Realtime"),
                                                           ("gemini_live", "Google Gemini Live")]

    registry.settings_validate(kind="stt", provider="outside", settings={"model": "o-1", "beam": 4})
    with pytest.raises(ApplicationError) as error:
        registry.settings_validate(kind="stt", provider="outside", settings={"model": "o-1", "beam": 9})
    assert error.value.message == "Outside Speech STT 'beam' must be between 1 and 8, not 9."
    with pytest.raises(ApplicationError) as error:
        registry.settings_validate(kind="tts", provider="outside", settings={})
    assert error.value.message == "Outside Speech does not offer TTS."

    spec = ProviderSpec(kind="stt", provider="outside", settings={"model": "o-1"}, api_key="ok-1")
    service = registry.build_stt(spec)
    assert (service.kind, service.api_key, service.settings, service.sample_rate) == ("stt", "ok-1", {"model": "o-1"}, 8000)
    registry.settings_validate(kind="embeddings", provider="outside", settings={"dimensions": 256})
    embedder = registry.build("embeddings", ProviderSpec(kind="embeddings", provider="outside",
                                                         settings={"dimensions": 256}, api_key="ok-2"))
    assert (embedder.kind, embedder.api_key, embedder.settings) == ("embeddings", "ok-2", {"dimensions": 256})
    assert registry.vendor_metrics("outside", "embeddings") == ("embedding_tokens",)
    assert registry.usage_provider_for(metric="stt_seconds", providers={"stt": "outside", "llm": "openai"}) == "outside"
    assert provider_cost(provider="outside", metric="stt_seconds", dimension="o-1", quantity=Decimal("120")) == (
        Decimal("0.0200"), "USD")


def test_a_vendor_left_out_of_the_settings_line_is_gone(vendor_modules):
    vendor_modules([m for m in settings.PROVIDER_VENDOR_MODULES if not m.endswith(".piper")])
    assert "piper" not in registry.vendors()
    assert ("piper", "Piper (local)") not in registry.vendor_choices("tts")
    with pytest.raises(ApplicationError) as error:
        registry.settings_validate(kind="tts", provider="piper", settings={})
    assert error.value.message.startswith("Unknown provider 'piper'; choose one of ['azure_openai', ")


@pytest.mark.parametrize(("module", "message"), [
    ("apps.providers.tests.vendor_modules.misbilled",
     "apps.providers.tests.vendor_modules.misbilled: vendor 'misbilled' declares ['llm_input_tokens'] for tts, "
     "which bills only ['tts_characters']."),
    ("apps.providers.tests.vendor_modules.unbilled",
     "apps.providers.tests.vendor_modules.unbilled: vendor 'unbilled' must declare the usage metrics its stt bills "
     "(Vendor.metrics['stt'])."),
    ("apps.providers.tests.vendor_modules", "apps.providers.tests.vendor_modules has no VENDOR = Vendor(...)."),
    ("apps.providers.vendors.openai", "apps.providers.vendors.openai: a vendor named 'openai' is already registered."),
])
def test_a_vendor_module_that_would_misbill_is_refused_at_load(vendor_modules, module, message):
    vendor_modules([*settings.PROVIDER_VENDOR_MODULES, module])
    with pytest.raises(ImproperlyConfigured) as error:
        registry.vendors()
    assert str(error.value) == message


def test_kinds_are_a_table_with_disjoint_metrics():
    assert [(kind.name, kind.label) for kind in registry.KINDS.values()] == [
        ("stt", "Speech to text"), ("llm", "Language model"), ("tts", "Text to speech"),
        ("speech_to_speech", "Speech to speech"), ("embeddings", "Embeddings")]
    metrics = [metric for kind in registry.KINDS.values() for metric in kind.metrics]
    assert len(metrics) == len(set(metrics))
    with pytest.raises(ApplicationError) as error:
        registry.vendor_choices("payments")
    assert error.value.message == (
        "Unknown provider kind 'payments'; choose one of ['embeddings', 'llm', 'speech_to_speech', 'stt', 'tts'].")


@pytest.mark.parametrize(("provider", "kind", "metrics"), [
    ("deepgram", "stt", ("stt_seconds",)),
    ("deepgram", "tts", ("tts_characters",)),
    ("openai", "llm", ("llm_input_tokens", "llm_output_tokens", "llm_cached_tokens")),
    ("elevenlabs", "tts", ("tts_characters",)),
    ("piper", "tts", ("tts_characters",)),
    ("openai_realtime", "speech_to_speech",
     ("s2s_input_audio_tokens", "s2s_output_audio_tokens", "s2s_input_text_tokens", "s2s_output_text_tokens")),
    ("gemini_live", "speech_to_speech",
     ("s2s_input_audio_tokens", "s2s_output_audio_tokens", "s2s_input_text_tokens", "s2s_output_text_tokens")),
])
def test_each_vendor_says_what_it_bills(provider, kind, metrics):
    assert registry.vendor_metrics(provider, kind) == metrics


def test_the_provider_billed_for_each_metric_of_a_call():
    providers = {"stt": "deepgram", "llm": "openai", "tts": "elevenlabs"}
    billed = {metric: registry.usage_provider_for(metric=metric, providers=providers) for metric in (
        "stt_seconds", "llm_input_tokens", "llm_output_tokens", "llm_cached_tokens", "tts_characters")}
    assert billed == {"stt_seconds": "deepgram", "llm_input_tokens": "openai", "llm_output_tokens": "openai",
                      "llm_cached_tokens": "openai", "tts_characters": "elevenlabs"}
    # one vendor on two stages: each metric still has one provider
    assert registry.usage_provider_for(metric="tts_characters",
                                       providers={"stt": "deepgram", "llm": "gemini", "tts": "deepgram"}) == "deepgram"
    with pytest.raises(ApplicationError) as error:
        registry.usage_provider_for(metric="carrier_seconds", providers=providers)
    assert error.value.message == (
        "No provider of this call (stt=deepgram, llm=openai, tts=elevenlabs) bills 'carrier_seconds'.")
    with pytest.raises(ApplicationError) as error:
        registry.vendor_metrics("cartesia", "stt")
    assert error.value.message == "Cartesia does not offer STT."


@pytest.mark.parametrize(("settings_", "message"), [
    ({"model": "gpt-4o-mini", "temperature": 2.5}, "OpenAI LLM 'temperature' must be between 0 and 2, not 2.5."),
    ({"model": "gpt-4o-mini", "temperature": -0.1}, "OpenAI LLM 'temperature' must be between 0 and 2, not -0.1."),
    ({"model": "gpt-4o-mini", "temperature": float("nan")}, "OpenAI LLM 'temperature' must be between 0 and 2, not nan."),
    ({"model": "gpt-4o-mini", "max_tokens": 0}, "OpenAI LLM 'max_tokens' must be between 1 and 16384, not 0."),
    ({"model": "gpt-4o-mini", "max_tokens": 10**12}, "OpenAI LLM 'max_tokens' must be between 1 and 16384, not 1000000000000."),
])
def test_llm_numbers_out_of_range_are_refused(settings_, message):
    with pytest.raises(ApplicationError) as error:
        registry.settings_validate(kind="llm", provider="openai", settings=settings_)
    assert (error.value.message, error.value.details["setting"]) == (message, next(k for k in settings_ if k != "model"))


def _httpx_response(status):
    return httpx.Response(status, request=httpx.Request("POST", "https://api.openai.com/v1/chat/completions"))


def test_a_vendor_classifies_its_own_errors_before_the_default(vendor_modules):
    out_of_credit = openai.RateLimitError("You exceeded your current quota", response=_httpx_response(429),
                                          body={"code": "insufficient_quota", "type": "insufficient_quota"})
    report = registry.vendor_error_classify("openai", out_of_credit)
    assert (report.outcome, report.category, report.status_code, report.cooldown_secs) == (
        "rate_limited", "quota", 429, 900.0)
    # the default alone reads the same error as a passing throttle
    report = registry.vendor_error_classify(None, out_of_credit)
    assert (report.outcome, report.category, report.cooldown_secs) == ("rate_limited", "rate_limit", 60.0)
    # ElevenLabs says "out of credit" with a 401
    text = 'HTTP 401: {"detail": {"status": "quota_exceeded", "message": "This request exceeds your quota."}}'
    assert registry.vendor_error_classify("elevenlabs", text).category == "quota"
    assert registry.vendor_error_classify("deepgram", text).outcome == "terminal"
    assert registry.vendor_error_classify("elevenlabs", "voice_not_found: no voice abc").outcome == "terminal"
    # a vendor classifier that answers None leaves the error to the default
    vendor_modules([*settings.PROVIDER_VENDOR_MODULES, OUTSIDE])
    assert registry.vendor_error_classify("outside", "OUTSIDE-BUSY try later").outcome == "rate_limited"
    report = registry.vendor_error_classify("outside", "HTTP 503 upstream")
    assert (report.outcome, report.status_code) == ("retryable", 503)
    # an unknown vendor gets the default, not an exception
    assert registry.vendor_error_classify("gone", "HTTP 401").outcome == "terminal"
