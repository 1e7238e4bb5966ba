"""Azure OpenAI: the account's base_url is the resource endpoint, `model` is the deployment."""
from __future__ import annotations

from apps.providers.registry import Setting, Vendor
from apps.providers.vendors._common import LLM_METRICS, MAX_TOKENS, TEMPERATURE, pipecat_settings


def build_llm(spec, _sample_rate=None):
    from pipecat.services.azure.llm import AzureLLMService

    values = dict(spec.settings)
    api_version = values.pop("api_version", None) or "2024-10-21"
    return AzureLLMService(
        endpoint=spec.base_url, api_key=spec.api_key, api_version=api_version,
        settings=pipecat_settings(AzureLLMService, values),
    )


VENDOR = Vendor(
    name="azure_openai",
    label="Azure OpenAI",
    settings_schema={"llm": {"model": Setting(str, required=True, help="deployment name"),
                             "api_version": Setting(str), "temperature": TEMPERATURE, "max_tokens": MAX_TOKENS}},
    builders={"llm": build_llm},
    metrics={"llm": LLM_METRICS},
    needs_base_url=True,
)
