"""ElevenLabs streaming TTS."""
from __future__ import annotations

from apps.billing.pricing import VendorPrice
from apps.providers.registry import Vendor
from apps.providers.vendors._common import MODEL, VOICE, pipecat_settings


def build_tts(spec, sample_rate):
    from pipecat.services.elevenlabs.tts import ElevenLabsTTSService

    extra = {"url": spec.base_url} if spec.base_url else {}
    return ElevenLabsTTSService(
        api_key=spec.api_key, sample_rate=sample_rate, settings=pipecat_settings(ElevenLabsTTSService, spec.settings),
        **extra,
    )


VENDOR = Vendor(
    name="elevenlabs",
    label="ElevenLabs",
    settings_schema={"tts": {"voice": VOICE, "model": MODEL}},
    builders={"tts": build_tts},
    # API list prices (USD) per character: Flash/Turbo half of Multilingual; any other voice/model at the higher.
    prices={"tts_characters": {"eleven_flash_v2_5": VendorPrice.of("0.05", per=1000),
                               "eleven_turbo_v2_5": VendorPrice.of("0.05", per=1000),
                               "*": VendorPrice.of("0.10", per=1000)}},
)
