"""Google Gemini Live: speech to speech over the Live API's BidiGenerateContent websocket
(Pipecat's GeminiLiveLLMService, through google-genai).

An account's base URL (optional) replaces `https://generativelanguage.googleapis.com`:
google-genai opens the websocket at that host, always over TLS (wss://, whatever the
base URL's scheme), so a proxy standing in must serve TLS with a certificate the
process trusts (which is why there is no local double of it yet). Turns are Gemini's own voice activity detection;
the caller's words come from its input transcription, usage from `usage_metadata`."""
from __future__ import annotations

from apps.billing.pricing import VendorPrice
from apps.providers.registry import Setting, Vendor
from apps.providers.vendors._common import S2S_METRICS, language

S2S_SCHEMA = {
    "model": Setting(str, required=True, help="e.g. gemini-2.5-flash-native-audio-preview-09-2025"),
    "voice": Setting(str, help="e.g. Charon, Puck, Kore"),
}


def build_s2s(spec, sample_rate, *, silence_secs: float = 0.5, language_code: str = ""):
    from google.genai.types import HttpOptions
    from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService, GeminiVADParams

    values = spec.settings
    options = HttpOptions(base_url=spec.base_url) if spec.base_url else None
    settings = GeminiLiveLLMService.Settings(
        model=values["model"], vad=GeminiVADParams(silence_duration_ms=int(round(silence_secs * 1000))),
        **({"voice": values["voice"]} if values.get("voice") else {}),
        **({"language": language(language_code)} if language_code else {}),
    )
    return GeminiLiveLLMService(api_key=spec.api_key, settings=settings, http_options=options)


_PER_MILLION = 1_000_000

# List prices (USD per 1M tokens): audio in / audio out / text in / text out.
_MODELS = {
    "gemini-2.5-flash-native-audio-preview-09-2025": ("3", "12", "0.50", "2"),
    "gemini-live-2.5-flash-preview": ("3", "12", "0.50", "2"),
    "*": ("3", "12", "0.50", "2"),
}
PRICES = {
    metric: {model: VendorPrice.of(prices[index], per=_PER_MILLION) for model, prices in _MODELS.items()}
    for index, metric in enumerate(S2S_METRICS)
}

VENDOR = Vendor(
    name="gemini_live",
    label="Google Gemini Live",
    settings_schema={"speech_to_speech": S2S_SCHEMA},
    builders={"speech_to_speech": build_s2s},
    metrics={"speech_to_speech": S2S_METRICS},
    prices=PRICES,
)
