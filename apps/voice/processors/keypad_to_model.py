"""Keypad digits for a speech-to-speech model: the DTMF aggregator's "DTMF: 5#" (a caller
transcript coming down the pipeline; the model's own transcripts go up) becomes a message
appended to the model's conversation, which it answers."""
from __future__ import annotations

from pipecat.frames.frames import Frame, LLMMessagesAppendFrame, TranscriptionFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class KeypadToModel(FrameProcessor):
    def __init__(self):
        # Direct mode: a few frames a call, no queue and task of its own.
        super().__init__(name="keypad-to-model", enable_direct_mode=True)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame) and direction == FrameDirection.DOWNSTREAM:
            # The model's service sends it (a conversation item / client content); the assistant
            # aggregator then asks the model for its answer.
            await self.push_frame(LLMMessagesAppendFrame(
                messages=[{"role": "user", "content": frame.text}], run_llm=True))
            return
        await self.push_frame(frame, direction)
