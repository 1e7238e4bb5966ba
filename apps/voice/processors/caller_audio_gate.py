"""Right after STT: which caller audio goes on to the turn strategies.

Past STT only the user aggregator's turn strategies listen to caller audio, and the
barge-in strategy (`apps.voice.turns.BargeInUserTurnStartStrategy`) only acts on audio
that arrives while the caller is speaking (between the VAD's start and stop, which it
also sees). So without the end-of-turn model (Smart Turn hears the silence after speech
too) the audio goes on only while the VAD says the caller speaks: the rest of a call's
audio, most of it, stops here instead of travelling through every processor up to the
aggregator (two of them with a queue and a task of their own) 25 times a second.
"""
from __future__ import annotations

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class CallerAudioGate(FrameProcessor):
    def __init__(self, *, all_audio: bool):
        """`all_audio`: pass every frame (the end-of-turn model listens to the silences too)."""
        # Direct mode: no queue and task of its own for 25 audio frames a second.
        super().__init__(name="caller-audio-gate", enable_direct_mode=True)
        self._all_audio = all_audio
        self._speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            if not (self._all_audio or self._speaking):
                return
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._speaking = True
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._speaking = False
        await self.push_frame(frame, direction)
