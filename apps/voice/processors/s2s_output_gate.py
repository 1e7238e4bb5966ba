"""A speech-to-speech model's own output, silenced once the call is ending: the caller said an
end-call phrase, which the model heard too and is answering; the goodbye line (the local voice,
upstream of the model) must play alone.

Two processors around the model: `before_model()` notes the frames coming down from upstream
(the fixed lines' audio and text, control frames) while the gate is shut; `after_model()` lets
those through and drops the model's own audio and text. While open (the whole call until then)
both only pass frames on."""
from __future__ import annotations

from pipecat.frames.frames import DataFrame, Frame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class S2SOutputGate:
    def __init__(self):
        self.shut = False
        self._from_upstream: set[int] = set()
        self._before = _Side(self, before=True)
        self._after = _Side(self, before=False)

    def close(self) -> None:
        self.shut = True

    def before_model(self) -> FrameProcessor:
        return self._before

    def after_model(self) -> FrameProcessor:
        return self._after


class _Side(FrameProcessor):
    def __init__(self, gate: S2SOutputGate, *, before: bool):
        # Direct mode: it only looks at frames, so no queue and task of its own.
        super().__init__(name="s2s-gate-in" if before else "s2s-gate-out", enable_direct_mode=True)
        self._gate = gate
        self._before = before

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        gate = self._gate
        if gate.shut and direction == FrameDirection.DOWNSTREAM and isinstance(frame, DataFrame):
            if self._before:
                gate._from_upstream.add(frame.id)
            elif frame.id in gate._from_upstream:
                gate._from_upstream.discard(frame.id)
            else:
                return  # the model's own audio or words: not played, not in the transcript
        await self.push_frame(frame, direction)
