"""Notices an LLM that has gone quiet: placed right after the LLM, it sees each
response start and whatever the LLM produces; no output within `timeout_secs`
calls `on_timeout(message)`."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class ProviderWatchdog(FrameProcessor):
    def __init__(self, *, timeout_secs: float, on_timeout: Callable[[str], Awaitable[None]]):
        # Direct mode: it only looks at frames, so no queue and task of its own.
        super().__init__(name="provider-watchdog", enable_direct_mode=True)
        self._timeout_secs = timeout_secs
        self._on_timeout = on_timeout
        self._timer: asyncio.TimerHandle | None = None

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        message = f"llm: no response within {self._timeout_secs:g} s"
        self.create_task(self._on_timeout(message), name="provider-timeout")

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMFullResponseStartFrame):
            self._disarm()
            self._timer = asyncio.get_running_loop().call_later(self._timeout_secs, self._fire)
        elif isinstance(
            frame,
            (LLMTextFrame, FunctionCallsStartedFrame, LLMFullResponseEndFrame, InterruptionFrame, EndFrame, CancelFrame),
        ):
            self._disarm()
        await self.push_frame(frame, direction)

    async def cleanup(self):
        self._disarm()
        await super().cleanup()
