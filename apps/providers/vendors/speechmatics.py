"""Speechmatics real-time STT."""
from __future__ import annotations

from apps.providers.registry import Vendor
from apps.providers.vendors._common import LANGUAGE, STT_METRICS, pipecat_settings


def build_stt(spec, sample_rate):
    from pipecat.services.speechmatics.stt import SpeechmaticsSTTService

    extra = {"base_url": spec.base_url} if spec.base_url else {}
    values = dict(spec.settings)
    if spec.vocabulary:
        values["additional_vocab"] = [SpeechmaticsSTTService.AdditionalVocabEntry(content=term)
                                      for term in spec.vocabulary]
    return SpeechmaticsSTTService(
        api_key=spec.api_key, sample_rate=sample_rate, settings=pipecat_settings(SpeechmaticsSTTService, values),
        **extra,
    )


VENDOR = Vendor(
    name="speechmatics",
    label="Speechmatics",
    settings_schema={"stt": {"language": LANGUAGE}},
    builders={"stt": build_stt},
    metrics={"stt": STT_METRICS},
    boosts_vocabulary=True,
)
