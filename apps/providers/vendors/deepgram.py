"""Deepgram: streaming STT and TTS."""
from __future__ import annotations

from apps.billing.pricing import VendorPrice
from apps.providers.registry import Setting, Vendor
from apps.providers.vendors._common import LANGUAGE, MODEL, STT_METRICS, TTS_METRICS, VOICE, pipecat_settings


def build_stt(spec, sample_rate):
    from pipecat.services.deepgram.stt import DeepgramSTTService

    values = dict(spec.settings)
    if spec.vocabulary:
        # Nova-3 boosts key terms (phrases too); older models take single keywords.
        model = str(values.get("model") or "nova-3")
        if model.startswith("nova-3"):
            values["keyterm"] = list(spec.vocabulary)
        else:
            values["keywords"] = [term for term in spec.vocabulary if " " not in term.strip()]
    return DeepgramSTTService(
        api_key=spec.api_key, base_url=spec.base_url, sample_rate=sample_rate,
        settings=pipecat_settings(DeepgramSTTService, values),
    )


def build_tts(spec, sample_rate):
    from pipecat.services.deepgram.tts import DeepgramTTSService

    extra = {"base_url": spec.base_url} if spec.base_url else {}
    return DeepgramTTSService(
        api_key=spec.api_key, sample_rate=sample_rate, settings=pipecat_settings(DeepgramTTSService, spec.settings), **extra
    )


VENDOR = Vendor(
    name="deepgram",
    label="Deepgram",
    settings_schema={
        "stt": {"model": MODEL, "language": LANGUAGE, "smart_format": Setting(bool), "endpointing": Setting(int)},
        "tts": {"voice": VOICE},
    },
    builders={"stt": build_stt, "tts": build_tts},
    metrics={"stt": STT_METRICS, "tts": TTS_METRICS},
    boosts_vocabulary=True,
    # Pay-as-you-go list prices (USD): streaming STT per minute, Aura TTS per 1,000 characters.
    prices={
        "stt_seconds": {"nova-2": VendorPrice.of("0.0058", per=60), "nova-3": VendorPrice.of("0.0077", per=60),
                        "*": VendorPrice.of("0.0077", per=60)},
        "tts_characters": {"*": VendorPrice.of("0.030", per=1000)},
    },
)
