"""Small audio helpers shared by the protocol doubles: G.711 μ-law, WAV, tones.

numpy only (no audioop: it is gone in Python 3.13)."""
from __future__ import annotations

import io
import os
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np


def _find_fixtures_dir() -> Path:
    """The caller-audio fixtures live in shared/, beside the repository (elsewhere: SWITCHBOARD_CALLER_AUDIO_DIR)."""
    override = os.environ.get("SWITCHBOARD_CALLER_AUDIO_DIR")
    if override:
        return Path(override)
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "fixtures" / "caller-audio"


FIXTURES_DIR = _find_fixtures_dir()

_BIAS = 0x84
_CLIP = 32635


@lru_cache(maxsize=1)
def _ulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def ulaw_to_pcm16(data: bytes) -> bytes:
    return _ulaw_decode_table()[np.frombuffer(data, dtype=np.uint8)].tobytes()


def pcm16_to_ulaw(data: bytes) -> bytes:
    samples = np.frombuffer(data, dtype=np.int16).astype(np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), _CLIP) + _BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def read_wav(path_or_bytes: str | Path | bytes) -> tuple[bytes, int]:
    """Return (mono 16-bit PCM, sample rate)."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with wave.open(source, "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError("expected 16-bit PCM WAV")
        pcm = wav.readframes(wav.getnframes())
        if wav.getnchannels() == 2:
            pcm = np.frombuffer(pcm, dtype=np.int16)[::2].tobytes()
        return pcm, wav.getframerate()


def wav_bytes(pcm: bytes, sample_rate: int, num_channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(num_channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def resample_linear(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Good enough for doubles and test inputs; the runtime never uses this."""
    if from_rate == to_rate:
        return pcm
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    count = int(len(samples) * to_rate / from_rate)
    positions = np.linspace(0, len(samples) - 1, count)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.int16).tobytes()


def tone(seconds: float, sample_rate: int, frequency: float = 440.0, amplitude: int = 8000) -> bytes:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16).tobytes()


def is_silent_pcm(pcm: bytes, threshold: int = 300) -> bool:
    samples = np.frombuffer(pcm, dtype=np.int16)
    return samples.size == 0 or int(np.abs(samples.astype(np.int32)).max()) < threshold


def speech_bounds(pcm: bytes, sample_rate: int, threshold_db: float = -40.0) -> tuple[float, float]:
    """(start, end) seconds of the audible part, from 10 ms frame energy."""
    envelope = energy_envelope(pcm, sample_rate)
    voiced = np.flatnonzero(envelope > threshold_db)
    if voiced.size == 0:
        return 0.0, 0.0
    return voiced[0] * 0.01, (voiced[-1] + 1) * 0.01


def energy_envelope(pcm: bytes, sample_rate: int) -> np.ndarray:
    """Log energy (dBFS) per 10 ms frame."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    hop = sample_rate // 100
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
