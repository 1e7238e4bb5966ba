"""Caller audio goes no further than the user aggregator (its end-of-turn model
and barge-in strategy listen to it): nothing after it needs the audio."""
from __future__ import annotations

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class CallerAudioSink(FrameProcessor):
    def __init__(self):
        # Direct mode: no queue and task of its own for 25 audio frames a second.
        super().__init__(name="caller-audio-sink", enable_direct_mode=True)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            return
        await self.push_frame(frame, direction)
