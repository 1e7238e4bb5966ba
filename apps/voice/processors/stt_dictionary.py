"""The agent's STT dictionary as a post-correction of transcripts, for STT vendors that
cannot boost keywords: a near miss of a dictionary word or phrase ("kayc", "K Y C",
"mono crystalline") is replaced by the dictionary's spelling ("KYC", "monocrystalline").

Matching is on letters and digits only, case-insensitive: a window of one to a few
transcript words whose joined letters equal a term's, or come close enough (difflib
ratio, stricter for short terms so "am" never becomes "AUM")."""
from __future__ import annotations

import re
from difflib import SequenceMatcher

from pipecat.frames.frames import Frame, InterimTranscriptionFrame, TranscriptionFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

_TOKEN = re.compile(r"\S+")
_EDGE = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)


def _letters(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _threshold(key: str) -> float:
    # Short terms are easy to hit by accident: near-exact only.
    return 1.0 if len(key) <= 2 else 0.85 if len(key) <= 5 else 0.8


class Dictionary:
    def __init__(self, terms):
        self.terms = [(term.strip(), _letters(term)) for term in terms if _letters(term)]

    def correct(self, text: str) -> str:
        """`text` with every near miss of a term replaced by the term (punctuation around it kept)."""
        if not self.terms or not text:
            return text
        tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
        out, position, index = [], 0, 0
        while index < len(tokens):
            best = None  # (score, span, term, lead, trail)
            for term, key in self.terms:
                words = len(term.split())
                for span in range(1, min(len(tokens) - index, words + 3) + 1):
                    start, end = tokens[index][0], tokens[index + span - 1][1]
                    lead, core, trail = _EDGE.match(text[start:end]).groups()
                    candidate = _letters(core)
                    # A near miss starts like the term: "the asset..." is not "assets...".
                    if not candidate or candidate[0] != key[0] or abs(len(candidate) - len(key)) > max(2, len(key) // 3):
                        continue
                    score = 1.0 if candidate == key else SequenceMatcher(None, candidate, key).ratio()
                    if score >= _threshold(key) and (best is None or (score, span) > (best[0], best[1])):
                        best = (score, span, term, lead, trail)
            if best is None:
                index += 1
                continue
            score, span, term, lead, trail = best
            start, end = tokens[index][0], tokens[index + span - 1][1]
            out.append(text[position:start])
            out.append(f"{lead}{term}{trail}")
            position = end
            index += span
        out.append(text[position:])
        return "".join(out)


class SttDictionaryCorrector(FrameProcessor):
    """Right after STT: transcripts (final and interim) corrected against the dictionary."""

    def __init__(self, *, terms):
        # Direct mode: it only rewrites text, no queue and task of its own.
        super().__init__(name="stt-dictionary", enable_direct_mode=True)
        self._dictionary = Dictionary(terms)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame | InterimTranscriptionFrame) and self._dictionary.terms:
            frame.text = self._dictionary.correct(frame.text)
        await self.push_frame(frame, direction)
