"""Acknowledgements said while the agent talks ("mm-hmm", "okay", "yeah") are not a
turn: the agent keeps talking and does not answer them.

Placed right after STT. A transcript that is nothing but acknowledgements, of
speech that began while the agent was speaking and transcribed while it still is,
goes no further as a transcript (so neither the turn strategies nor the LLM see it):
it becomes Pipecat's `UserBackchannelFrame` (the tracer notes it on the agent's
turn), and the words are written into the conversation as what the caller said,
right after the agent's reply they acknowledged (`on_assistant_turn_*` of the
assistant aggregator), without asking the LLM for an answer.
"""
from __future__ import annotations

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    TranscriptionFrame,
    UserBackchannelFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from apps.voice.turns import is_acknowledgement


class BackchannelFilter(FrameProcessor):
    def __init__(self, *, acknowledgements: tuple[str, ...], context: LLMContext):
        # Direct mode: it only looks at frames, so no queue and task of its own.
        super().__init__(name="backchannels", enable_direct_mode=True)
        self._acknowledgements = acknowledgements
        self._context = context
        self._bot_speaking = False
        self._speech_over_bot = False  # the caller's current speech began while the agent spoke
        self._assistant_turn_open = False
        self._pending: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, VADUserStartedSpeakingFrame) and direction == FrameDirection.DOWNSTREAM:
            self._speech_over_bot = self._bot_speaking
        elif (isinstance(frame, TranscriptionFrame) and self._speech_over_bot and self._bot_speaking
              and is_acknowledgement(frame.text, self._acknowledgements)):
            self._remember(frame.text.strip())
            await self.push_frame(
                UserBackchannelFrame(text=frame.text.strip(), user_id=frame.user_id, timestamp=frame.timestamp)
            )
            return
        await self.push_frame(frame, direction)

    def _remember(self, text: str) -> None:
        if self._assistant_turn_open:
            self._pending.append(text)  # after the reply it acknowledges, once that is in the context
        else:
            self._context.add_message({"role": "user", "content": text})

    # -- the assistant aggregator's events (wired in apps.voice.pipeline) ---------------------

    async def on_assistant_turn_started(self, aggregator) -> None:
        self._assistant_turn_open = True

    async def on_assistant_turn_stopped(self, aggregator, message) -> None:
        self._assistant_turn_open = False
        pending, self._pending = self._pending, []
        for text in pending:
            self._context.add_message({"role": "user", "content": text})
