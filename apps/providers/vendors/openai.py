"""OpenAI: Whisper / gpt-4o-transcribe STT, chat LLM, TTS. `openai_compatible`
reuses these builders with a required base_url."""
from __future__ import annotations

from pipecat.utils.errors import ErrorCategory

from apps.billing.pricing import VendorPrice
from apps.providers.registry import Setting, Vendor
from apps.providers.vendor_errors import vendor_error_parts, vendor_error_report, vendor_error_status
from apps.providers.vendors._common import (
    LANGUAGE,
    LLM_METRICS,
    MAX_TOKENS,
    MODEL,
    STT_METRICS,
    TEMPERATURE,
    TTS_METRICS,
    openai_http_client,
    pipecat_settings,
)
from apps.providers.vendors._openai_embeddings import EMBEDDINGS_SCHEMA, build_embeddings

STT_SCHEMA = {"model": Setting(str, required=True), "language": LANGUAGE, "prompt": Setting(str)}
LLM_SCHEMA = {"model": Setting(str, required=True), "temperature": TEMPERATURE, "max_tokens": MAX_TOKENS}
OPENAI_TTS_SAMPLE_RATE = 24000
TTS_SCHEMA = {"voice": Setting(str, required=True), "model": MODEL, "speed": Setting((int, float))}


def _base_url(spec) -> dict:
    return {"base_url": spec.base_url} if spec.base_url else {}


def vocabulary_prompt(prompt: str, vocabulary) -> str:
    """The transcription prompt with the agent's dictionary: OpenAI's models spell words
    the prompt contains the way the prompt does (their one form of keyword boosting)."""
    if not vocabulary:
        return prompt
    terms = f"Vocabulary: {', '.join(vocabulary)}."
    return f"{prompt} {terms}" if prompt else terms


def build_stt(spec, sample_rate):
    from pipecat.services.openai.stt import OpenAISTTService

    values = dict(spec.settings)
    if spec.vocabulary:
        values["prompt"] = vocabulary_prompt(str(values.get("prompt") or ""), spec.vocabulary)
    return OpenAISTTService(
        api_key=spec.api_key or "none", sample_rate=sample_rate,
        settings=pipecat_settings(OpenAISTTService, values), **_base_url(spec), http_client=openai_http_client(),
    )


def build_llm(spec, _sample_rate=None):
    from pipecat.services.openai.llm import OpenAILLMService

    return OpenAILLMService(
        api_key=spec.api_key or "none", settings=pipecat_settings(OpenAILLMService, spec.settings), **_base_url(spec)
    )


def build_tts(spec, sample_rate):
    from pipecat.services.openai.tts import OpenAITTSService

    values = dict(spec.settings)
    speed = values.pop("speed", None)
    extra = {"speed": speed} if speed is not None else {}
    # OpenAI speech is always 24 kHz PCM: label it so; the output transport resamples to 8 kHz.
    return OpenAITTSService(
        api_key=spec.api_key or "none", sample_rate=OPENAI_TTS_SAMPLE_RATE,
        settings=pipecat_settings(OpenAITTSService, values), **_base_url(spec), **extra,
        http_client=openai_http_client(),
    )


def classify_error(error):
    """OpenAI answers 429 both for "slow down" and for "out of credit" (error code
    insufficient_quota). The second does not pass in a minute: a quota, so the key
    cools down long enough for someone to top the account up. Else the default."""
    exception, message = vendor_error_parts(error)
    if getattr(exception, "code", None) == "insufficient_quota" or "insufficient_quota" in message:
        status = vendor_error_status(exception, message)
        return vendor_error_report(category=ErrorCategory.QUOTA, status_code=status or 429, exception=exception,
                                   message=message)
    return None


_PER_MILLION = 1_000_000


def _tokens(input_price: str, output_price: str, cached_price: str) -> dict:
    return {"llm_input_tokens": VendorPrice.of(input_price, per=_PER_MILLION),
            "llm_output_tokens": VendorPrice.of(output_price, per=_PER_MILLION),
            "llm_cached_tokens": VendorPrice.of(cached_price, per=_PER_MILLION)}


# List prices (USD): tokens per 1M by model, transcription per minute, speech per 1M characters
# (gpt-4o-mini-tts is priced by audio tokens, about the same as tts-1 per character of text).
_LLM = {
    "gpt-4o-mini": _tokens("0.15", "0.60", "0.075"),
    "gpt-4o": _tokens("2.50", "10.00", "1.25"),
    "gpt-4.1-mini": _tokens("0.40", "1.60", "0.10"),
    "gpt-4.1": _tokens("2.00", "8.00", "0.50"),
}
PRICES = {
    **{metric: {model: prices[metric] for model, prices in _LLM.items()}
       for metric in ("llm_input_tokens", "llm_output_tokens", "llm_cached_tokens")},
    "stt_seconds": {"whisper-1": VendorPrice.of("0.006", per=60), "gpt-4o-transcribe": VendorPrice.of("0.006", per=60),
                    "gpt-4o-mini-transcribe": VendorPrice.of("0.003", per=60)},
    "tts_characters": {"tts-1": VendorPrice.of("15", per=_PER_MILLION), "tts-1-hd": VendorPrice.of("30", per=_PER_MILLION),
                       "gpt-4o-mini-tts": VendorPrice.of("15", per=_PER_MILLION)},
}

VENDOR = Vendor(
    name="openai",
    label="OpenAI",
    settings_schema={"stt": STT_SCHEMA, "llm": LLM_SCHEMA, "tts": TTS_SCHEMA, "embeddings": EMBEDDINGS_SCHEMA},
    builders={"stt": build_stt, "llm": build_llm, "tts": build_tts, "embeddings": build_embeddings},
    metrics={"stt": STT_METRICS, "llm": LLM_METRICS, "tts": TTS_METRICS, "embeddings": ("embedding_tokens",)},
    prices=PRICES,
    classify_error=classify_error,
    boosts_vocabulary=True,
)
