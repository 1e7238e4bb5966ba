"""Small helpers shared by vendor modules."""
from __future__ import annotations

import functools
import ssl

from pipecat.transcriptions.language import Language

from apps.providers.registry import Setting

NUMBER = (int, float)
MODEL = Setting(str, help="model name")
TEMPERATURE = Setting(NUMBER, help="0-2", min=0, max=2)
MAX_TOKENS = Setting(int, help="1-16384", min=1, max=16384)
VOICE = Setting(str, required=True, help="voice id")
LANGUAGE = Setting(str, help="BCP-47, e.g. en or en-US")

# What each kind of stage bills, for vendors that bill all of their kind's metrics (registry.KINDS).
STT_METRICS = ("stt_seconds",)
LLM_METRICS = ("llm_input_tokens", "llm_output_tokens", "llm_cached_tokens")
TTS_METRICS = ("tts_characters",)
# Speech to speech bills tokens by modality (audio costs several times text): in this order.
S2S_METRICS = ("s2s_input_audio_tokens", "s2s_output_audio_tokens", "s2s_input_text_tokens", "s2s_output_text_tokens")


def pipecat_settings(service_cls, values: dict, **renames):
    """service_cls.Settings from the agent's settings, leaving out what is unset.
    `renames` maps our name to Pipecat's where they differ."""
    given = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        name = renames.get(key, key)
        if name == "language":
            value = language(value)
        given[name] = value
    return service_cls.Settings(**given)


def language(code: str):
    try:
        return Language(code)
    except ValueError:
        return code


def extra_ca_ssl_context() -> ssl.SSLContext | None:
    """The public certificate authorities plus settings.PROVIDER_EXTRA_CA_CERTS, for vendor clients
    that take an SSL context; None when no extra CAs are configured (the client's own default)."""
    from django.conf import settings

    return _ssl_context_with(settings.PROVIDER_EXTRA_CA_CERTS) if settings.PROVIDER_EXTRA_CA_CERTS else None


@functools.lru_cache(maxsize=4)
def _ssl_context_with(ca_file: str) -> ssl.SSLContext:
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    context.load_verify_locations(cafile=ca_file)
    return context


def shared_tls_context():
    """One TLS context for the vendors' HTTP clients. Each client would otherwise build its own
    by loading the CA bundle (~30 ms of CPU apiece, at every call's start; benchmarks/RESULTS.md,
    "Call path profile"). Built as httpx2 builds one for `verify=True` (plus PROVIDER_EXTRA_CA_CERTS);
    afterwards httpcore only sets the ALPN list on it per connection, the same ("http/1.1") for every
    client given it."""
    from django.conf import settings

    return _http_tls_context(settings.PROVIDER_EXTRA_CA_CERTS or "")


@functools.lru_cache(maxsize=4)
def _http_tls_context(extra_ca_file: str):
    import httpcore2

    context = httpcore2.default_ssl_context()
    if extra_ca_file:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


def openai_http_client():
    """The openai SDK's default async HTTP client, on the shared TLS context."""
    from openai import DefaultAsyncHttpxClient

    return DefaultAsyncHttpxClient(verify=shared_tls_context())
