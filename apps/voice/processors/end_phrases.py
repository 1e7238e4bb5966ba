"""Ends the call when the caller says one of the agent's end-call phrases."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from pipecat.frames.frames import Frame, TranscriptionFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class EndPhraseDetector(FrameProcessor):
    """Consumes a transcript that contains an end-call phrase (the LLM need not
    answer it) and calls `on_phrase(phrase)`."""

    def __init__(self, *, phrases: tuple[str, ...], on_phrase: Callable[[str], Awaitable[None]], consume: bool = True):
        """`consume=False`: the transcript goes on (a speech-to-speech model heard the phrase
        anyway; the trace still records the caller's words)."""
        # Direct mode: it only looks at frames, so no queue and task of its own.
        super().__init__(name="end-phrases", enable_direct_mode=True)
        self._phrases = tuple(phrase.lower() for phrase in phrases if phrase.strip())
        self._on_phrase = on_phrase
        self._consume = consume
        self._fired = False

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame) and self._phrases and not self._fired:
            text = frame.text.lower()
            for phrase in self._phrases:
                if phrase in text:
                    self._fired = True
                    await self._on_phrase(phrase)
                    if self._consume:
                        return
                    break
        await self.push_frame(frame, direction)
