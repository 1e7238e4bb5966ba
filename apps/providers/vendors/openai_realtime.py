"""OpenAI Realtime: speech to speech over one websocket (Pipecat's OpenAIRealtimeLLMService).

The account's base URL is the HTTP API root, like the other OpenAI vendors
(`https://api.openai.com/v1`, or a local double's `http://127.0.0.1:PORT/v1`); the
websocket endpoint is that root with a ws(s) scheme and `/realtime` (Pipecat adds
`?model=`). Turns are the server's VAD (silence = the agent's VAD stop seconds), the
caller's words come back from its input transcription, usage from `response.done`."""
from __future__ import annotations

from apps.billing.pricing import VendorPrice
from apps.providers.registry import Setting, Vendor
from apps.providers.vendors._common import S2S_METRICS
from apps.providers.vendors.openai import classify_error

DEFAULT_BASE_URL = "https://api.openai.com/v1"
TRANSCRIPTION_MODELS = ("gpt-realtime-whisper", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "whisper-1")
S2S_SCHEMA = {
    "model": Setting(str, required=True, help="e.g. gpt-realtime"),
    "voice": Setting(str, help="e.g. marin, cedar, alloy"),
    "transcription_model": Setting(str, choices=TRANSCRIPTION_MODELS,
                                   help="how the caller's words are written into the trace"),
}


def realtime_url(base_url: str) -> str:
    """`https://api.openai.com/v1` -> `wss://api.openai.com/v1/realtime` (http -> ws)."""
    root = (base_url or DEFAULT_BASE_URL).rstrip("/")
    if root.startswith("https://"):
        root = "wss://" + root.removeprefix("https://")
    elif root.startswith("http://"):
        root = "ws://" + root.removeprefix("http://")
    return root if root.endswith("/realtime") else f"{root}/realtime"


def build_s2s(spec, sample_rate, *, silence_secs: float = 0.5, language_code: str = ""):
    from pipecat.services.openai.realtime import events
    from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

    values = spec.settings
    transcription = events.InputAudioTranscription(
        model=values.get("transcription_model") or "gpt-4o-transcribe",
        language=(language_code or "").split("-")[0] or None,
    )
    session = events.SessionProperties(
        audio=events.AudioConfiguration(
            input=events.AudioInput(
                transcription=transcription,
                turn_detection=events.TurnDetection(silence_duration_ms=int(round(silence_secs * 1000))),
            ),
            output=events.AudioOutput(voice=values.get("voice") or None),
        ),
    )
    return OpenAIRealtimeLLMService(
        api_key=spec.api_key or "none", base_url=realtime_url(spec.base_url),
        settings=OpenAIRealtimeLLMService.Settings(model=values["model"], session_properties=session),
    )


_PER_MILLION = 1_000_000


def _price(amount: str) -> VendorPrice:
    return VendorPrice.of(amount, per=_PER_MILLION)


# List prices (USD per 1M tokens): audio in / audio out / text in / text out.
_MODELS = {
    "gpt-realtime": ("32", "64", "4", "16"),
    "gpt-realtime-mini": ("10", "20", "0.60", "2.40"),
    "gpt-4o-realtime-preview": ("40", "80", "5", "20"),
    "gpt-4o-mini-realtime-preview": ("10", "20", "0.60", "2.40"),
}
PRICES = {
    metric: {model: _price(prices[index]) for model, prices in _MODELS.items()}
    for index, metric in enumerate(S2S_METRICS)
}

VENDOR = Vendor(
    name="openai_realtime",
    label="OpenAI Realtime",
    settings_schema={"speech_to_speech": S2S_SCHEMA},
    builders={"speech_to_speech": build_s2s},
    metrics={"speech_to_speech": S2S_METRICS},
    prices=PRICES,
    classify_error=classify_error,
)
