"""Google Gemini (AI Studio API key)."""
from __future__ import annotations

from apps.providers.registry import Setting, Vendor
from apps.providers.vendors._common import LLM_METRICS, MAX_TOKENS, TEMPERATURE, pipecat_settings


def build_llm(spec, _sample_rate=None):
    from pipecat.services.google.llm import GoogleLLMService

    return GoogleLLMService(api_key=spec.api_key, settings=pipecat_settings(GoogleLLMService, spec.settings))


VENDOR = Vendor(
    name="gemini",
    label="Google Gemini",
    settings_schema={"llm": {"model": Setting(str, required=True), "temperature": TEMPERATURE, "max_tokens": MAX_TOKENS}},
    builders={"llm": build_llm},
    metrics={"llm": LLM_METRICS},
)
