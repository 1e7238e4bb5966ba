"""Cartesia streaming TTS."""
from __future__ import annotations

from apps.providers.registry import Vendor
from apps.providers.vendors._common import LANGUAGE, MODEL, TTS_METRICS, VOICE, pipecat_settings


def build_tts(spec, sample_rate):
    from pipecat.services.cartesia.tts import CartesiaTTSService

    return CartesiaTTSService(
        api_key=spec.api_key, sample_rate=sample_rate, settings=pipecat_settings(CartesiaTTSService, spec.settings)
    )


VENDOR = Vendor(
    name="cartesia",
    label="Cartesia",
    settings_schema={"tts": {"voice": VOICE, "model": MODEL, "language": LANGUAGE}},
    builders={"tts": build_tts},
    metrics={"tts": TTS_METRICS},
)
