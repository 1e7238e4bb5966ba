"""Sarvam AI STT (Indian languages)."""
from __future__ import annotations

from apps.providers.registry import Setting, Vendor
from apps.providers.vendors._common import LANGUAGE, STT_METRICS, pipecat_settings


def build_stt(spec, sample_rate):
    from pipecat.services.sarvam.stt import SarvamSTTService

    return SarvamSTTService(
        api_key=spec.api_key, sample_rate=sample_rate, settings=pipecat_settings(SarvamSTTService, spec.settings)
    )


def _models() -> tuple[str, ...]:
    from pipecat.services.sarvam.stt import MODEL_CONFIGS

    return tuple(sorted(MODEL_CONFIGS))


VENDOR = Vendor(
    name="sarvam",
    label="Sarvam AI",
    settings_schema={"stt": {"model": Setting(str, choices=_models()), "language": LANGUAGE}},
    builders={"stt": build_stt},
    metrics={"stt": STT_METRICS},
)
