"""ElevenLabs streaming TTS."""
from __future__ import annotations

from pipecat.utils.errors import ErrorCategory

from apps.billing.pricing import VendorPrice
from apps.providers.registry import Vendor
from apps.providers.vendor_errors import vendor_error_parts, vendor_error_report, vendor_error_status
from apps.providers.vendors._common import MODEL, TTS_METRICS, VOICE, pipecat_settings


def build_tts(spec, sample_rate):
    from pipecat.services.elevenlabs.tts import ElevenLabsTTSService

    extra = {"url": spec.base_url} if spec.base_url else {}
    return ElevenLabsTTSService(
        api_key=spec.api_key, sample_rate=sample_rate, settings=pipecat_settings(ElevenLabsTTSService, spec.settings),
        **extra,
    )


def classify_error(error):
    """ElevenLabs says "out of credit" with a 401 (status quota_exceeded), which by
    its code alone reads as a wrong key; and an unknown voice (voice_not_found)
    fails the same way every time. Else the default."""
    exception, message = vendor_error_parts(error)
    status = vendor_error_status(exception, message)
    if "quota_exceeded" in message:
        return vendor_error_report(category=ErrorCategory.QUOTA, status_code=status, exception=exception,
                                   message=message)
    if "voice_not_found" in message:
        return vendor_error_report(category=ErrorCategory.INVALID_REQUEST, status_code=status, exception=exception,
                                   message=message)
    return None


VENDOR = Vendor(
    name="elevenlabs",
    label="ElevenLabs",
    settings_schema={"tts": {"voice": VOICE, "model": MODEL}},
    builders={"tts": build_tts},
    metrics={"tts": TTS_METRICS},
    # API list prices (USD) per character: Flash/Turbo half of Multilingual; any other voice/model at the higher.
    prices={"tts_characters": {"eleven_flash_v2_5": VendorPrice.of("0.05", per=1000),
                               "eleven_turbo_v2_5": VendorPrice.of("0.05", per=1000),
                               "*": VendorPrice.of("0.10", per=1000)}},
    classify_error=classify_error,
)
