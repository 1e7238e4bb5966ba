"""Deterministic "speech recognition" for the doubles: match an uploaded audio
segment against known utterances (the shared caller-audio fixtures, plus any
audio registered at run time, e.g. Piper-synthesised `--say` lines).

Matching compares 10 ms energy envelopes by normalised cross-correlation, which
survives μ-law round trips, resampling, leading/trailing silence and the VAD
cutting a little off either end.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devtools.doubles.audio import FIXTURES_DIR, energy_envelope, read_wav, resample_linear

MATCH_RATE = 8000
MIN_SCORE = 0.75
# A partial utterance is matched against a known one's beginning, give or take a lost onset (<= 0.15 s).
PREFIX_SLACK_FRAMES = 15
PREFIX_MAX_DB = 2.0  # the same audio over μ-law differs by ~0 dB; the next closest beginnings by 2.5 dB or more


@dataclass(frozen=True)
class KnownUtterance:
    text: str
    envelope: np.ndarray
    # When each of the first words ends, in seconds from the first audible frame (see `register`).
    word_ends: tuple[float, ...] = ()

    def word_end_secs(self) -> list[float]:
        """When each word ends: the known ends, then (for the words after them) an even share of the
        rest, never before the word before; the last word at 90 % of the audio (the VAD may cut the tail)."""
        words = self.text.split()
        total = self.envelope.size / 100
        ends = []
        for end in self.word_ends[: len(words)]:
            ends.append(max(float(end), ends[-1] if ends else 0.0))
        for index in range(len(ends), len(words)):
            ends.append(max(total * (index + 1) / len(words), ends[-1] if ends else 0.0))
        if ends:
            ends[-1] = min(ends[-1], 0.9 * total)
        return ends


def _trimmed_envelope(pcm: bytes, sample_rate: int) -> np.ndarray:
    return _envelope_and_heard_secs(pcm, sample_rate)[0]


def _envelope_and_heard_secs(pcm: bytes, sample_rate: int) -> tuple[np.ndarray, float]:
    """The 10 ms envelope from the first to the last audible frame, and the seconds of audio from
    the first audible frame to the end of `pcm` (pauses and all)."""
    envelope = energy_envelope(resample_linear(pcm, sample_rate, MATCH_RATE), MATCH_RATE)
    envelope = np.maximum(envelope, -60.0)
    voiced = np.flatnonzero(envelope > -45.0)
    if voiced.size == 0:
        return np.zeros(0, dtype=np.float32), 0.0
    return envelope[voiced[0] : voiced[-1] + 1], (envelope.size - voiced[0]) / 100


def _score(segment: np.ndarray, known: np.ndarray) -> float:
    """Best Pearson correlation of the shorter envelope slid along the longer one,
    scaled down when lengths differ a lot (a partial utterance is not a match)."""
    short, long_ = (segment, known) if len(segment) <= len(known) else (known, segment)
    if len(short) < 10:
        return 0.0
    length_ratio = len(short) / len(long_)
    best = -1.0
    short_centered = short - short.mean()
    short_norm = np.linalg.norm(short_centered) or 1.0
    for offset in range(0, len(long_) - len(short) + 1):
        window = long_[offset : offset + len(short)]
        window_centered = window - window.mean()
        correlation = float(short_centered @ window_centered) / (
            short_norm * (np.linalg.norm(window_centered) or 1.0)
        )
        best = max(best, correlation)
    return best * min(1.0, length_ratio / 0.8)


class TranscriptBook:
    """Known utterances, looked up by audio."""

    def __init__(self):
        self._lock = threading.Lock()
        self._known: list[KnownUtterance] = []

    @classmethod
    def from_fixtures(cls, directory: Path = FIXTURES_DIR) -> TranscriptBook:
        book = cls()
        tsv = directory / "TRANSCRIPTS.tsv"
        if tsv.exists():
            for line in tsv.read_text().splitlines():
                if "\t" not in line:
                    continue
                name, text = line.split("\t", 1)
                pcm, rate = read_wav(directory / name)
                book.register(pcm, rate, text.strip())
        return book

    def register(self, pcm: bytes, sample_rate: int, text: str, *, word_ends: tuple[float, ...] = ()) -> None:
        """`word_ends`: when each of the first words ends, in seconds from the first audible frame
        (the words after them are spread evenly over the rest)."""
        with self._lock:
            self._known.append(KnownUtterance(text=text, envelope=_trimmed_envelope(pcm, sample_rate),
                                              word_ends=tuple(word_ends)))

    def transcribe_so_far(self, pcm: bytes, sample_rate: int, *, min_secs: float = 0.25,
                          lag_secs: float = 0.0) -> str:
        """What a streaming recogniser would have heard so far of an utterance still being spoken:
        the known utterance whose beginning `pcm` follows most closely (mean level difference of the
        10 ms envelopes, in dB: correlation alone confuses short beginnings), cut to the words whose
        audio ended at least `lag_secs` before the end of `pcm` (a word is never heard before it has
        been said); "" while nothing matches closely enough."""
        segment, heard_secs = _envelope_and_heard_secs(pcm, sample_rate)
        if segment.size < min_secs * 100:
            return ""
        with self._lock:
            known = list(self._known)
        distances = []
        for utterance in known:
            envelope = utterance.envelope
            if envelope.size < segment.size:
                continue
            distance = min(float(np.mean(np.abs(segment - envelope[offset : offset + segment.size])))
                           for offset in range(0, min(PREFIX_SLACK_FRAMES, envelope.size - segment.size) + 1))
            distances.append((distance, utterance))
        if not distances:
            return self.transcribe(pcm, sample_rate)  # longer than every known beginning: the whole of one?
        distance, utterance = min(distances, key=lambda pair: pair[0])
        if distance > PREFIX_MAX_DB:
            return ""
        said = heard_secs - lag_secs
        return " ".join(word for word, end in zip(utterance.text.split(), utterance.word_end_secs(), strict=True)
                        if end <= said)

    def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        segment = _trimmed_envelope(pcm, sample_rate)
        if segment.size == 0:
            return ""
        with self._lock:
            known = list(self._known)
        scored = [(_score(segment, utterance.envelope), utterance.text) for utterance in known]
        if not scored:
            return ""
        score, text = max(scored)
        return text if score >= MIN_SCORE else ""
