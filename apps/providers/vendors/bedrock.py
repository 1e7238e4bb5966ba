"""AWS Bedrock: api_key is the access key id, secret the secret access key, region on the account."""
from __future__ import annotations

from apps.providers.registry import Setting, Vendor
from apps.providers.vendors._common import LLM_METRICS, MAX_TOKENS, TEMPERATURE, pipecat_settings


def build_llm(spec, _sample_rate=None):
    from pipecat.services.aws.llm import AWSBedrockLLMService

    return AWSBedrockLLMService(
        aws_access_key=spec.api_key, aws_secret_key=spec.secret, aws_region=spec.region or "us-east-1",
        settings=pipecat_settings(AWSBedrockLLMService, spec.settings),
    )


VENDOR = Vendor(
    name="bedrock",
    label="AWS Bedrock",
    settings_schema={"llm": {"model": Setting(str, required=True), "temperature": TEMPERATURE, "max_tokens": MAX_TOKENS}},
    builders={"llm": build_llm},
    metrics={"llm": LLM_METRICS},
    needs_secret=True,
)
