"""Uploaded audio to the telephony format clips are stored in: 8 kHz mono 16-bit PCM
WAV, peak-normalised. Decoding is libsndfile's (through soundfile: WAV, MP3, FLAC,
OGG), resampling soxr's; no ffmpeg. Pure: no Django."""
from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np

from apps.core.errors import ApplicationError

CLIP_SAMPLE_RATE = 8000
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_CLIP_SECS = 30.0
MIN_CLIP_SECS = 0.2
PEAK = 0.7  # about -3 dBFS: clips play at one level, below clipping after μ-law


@dataclass(frozen=True)
class NormalisedClip:
    wav: bytes  # 8 kHz mono 16-bit PCM WAV
    duration_ms: int

    @property
    def pcm(self) -> bytes:
        return wav_pcm(self.wav)


def clip_audio_normalise(data: bytes, *, filename: str = "") -> NormalisedClip:
    """Decode `data` (WAV, MP3, FLAC or OGG) and bring it to the stored format. Refuses
    empty, undecodable, silent, too short and too long audio with a message saying so."""
    import soundfile
    import soxr

    label = filename or "the file"
    if not data:
        raise ApplicationError(f"{label} is empty: upload a WAV or MP3 recording.", details={"field": "audio"})
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApplicationError(f"{label} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: upload a shorter clip.",
                               details={"field": "audio"})
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception:  # noqa: BLE001 - libsndfile's errors all mean "not audio we can read"
        raise ApplicationError(f"{label} is not audio we can read: upload a WAV or MP3 file.",
                               details={"field": "audio"}) from None
    if samples.size == 0:
        raise ApplicationError(f"{label} holds no audio.", details={"field": "audio"})
    secs = samples.shape[0] / rate
    if secs > MAX_CLIP_SECS:
        raise ApplicationError(f"{label} lasts {secs:.1f} s; a clip may last at most {MAX_CLIP_SECS:g} s.",
                               details={"field": "audio"})
    if secs < MIN_CLIP_SECS:
        raise ApplicationError(f"{label} lasts {secs:.2f} s; a clip must last at least {MIN_CLIP_SECS:g} s.",
                               details={"field": "audio"})
    mono = samples.mean(axis=1)
    if rate != CLIP_SAMPLE_RATE:
        mono = soxr.resample(mono, rate, CLIP_SAMPLE_RATE, quality="HQ")
    peak = float(np.abs(mono).max()) if mono.size else 0.0
    if peak < 1e-3:  # below -60 dBFS: silence
        raise ApplicationError(f"{label} is silent.", details={"field": "audio"})
    pcm = np.clip(mono * (PEAK / peak), -1.0, 1.0)
    pcm16 = (pcm * 32767).astype("<i2").tobytes()
    return NormalisedClip(wav=pcm_wav(pcm16), duration_ms=round(len(pcm16) / 2 / CLIP_SAMPLE_RATE * 1000))


def pcm_wav(pcm: bytes, sample_rate: int = CLIP_SAMPLE_RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


def wav_pcm(wav_bytes: bytes) -> bytes:
    """The 16-bit PCM frames of a stored clip."""
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        return wav.readframes(wav.getnframes())
