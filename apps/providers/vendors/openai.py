"""OpenAI: Whisper / gpt-4o-transcribe STT, chat LLM, TTS. `openai_compatible`
reuses these builders with a required base_url."""
from __future__ import annotations

from apps.providers.registry import Setting, Vendor
from apps.providers.vendors._common import LANGUAGE, MAX_TOKENS, MODEL, TEMPERATURE, pipecat_settings

STT_SCHEMA = {"model": Setting(str, required=True), "language": LANGUAGE, "prompt": Setting(str)}
LLM_SCHEMA = {"model": Setting(str, required=True), "temperature": TEMPERATURE, "max_tokens": MAX_TOKENS}
OPENAI_TTS_SAMPLE_RATE = 24000
TTS_SCHEMA = {"voice": Setting(str, required=True), "model": MODEL, "speed": Setting((int, float))}


def _base_url(spec) -> dict:
    return {"base_url": spec.base_url} if spec.base_url else {}


def build_stt(spec, sample_rate):
    from pipecat.services.openai.stt import OpenAISTTService

    return OpenAISTTService(
        api_key=spec.api_key or "none", sample_rate=sample_rate,
        settings=pipecat_settings(OpenAISTTService, spec.settings), **_base_url(spec),
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
    )


VENDOR = Vendor(
    name="openai",
    label="OpenAI",
    settings_schema={"stt": STT_SCHEMA, "llm": LLM_SCHEMA, "tts": TTS_SCHEMA},
    builders={"stt": build_stt, "llm": build_llm, "tts": build_tts},
)
