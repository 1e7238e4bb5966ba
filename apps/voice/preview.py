"""A voice preview (the agent editor's "Preview voice"): one short line through a TTS
service, the way a call would say it, as a WAV. No Django: the caller builds the
service through the provider registry (apps.providers.services.provider_voice_preview)."""
from __future__ import annotations

import asyncio

from pipecat.audio.utils import pcm_to_wav
from pipecat.frames.frames import EndFrame, ErrorFrame, Frame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

PREVIEW_SAMPLE_RATE = 16000
PREVIEW_TIMEOUT_SECS = 20.0


class VoicePreviewError(Exception):
    pass


class _Collector(FrameProcessor):
    def __init__(self):
        super().__init__(name="voice-preview", enable_direct_mode=True)
        self.pcm = bytearray()
        self.errors: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.pcm += frame.audio
            return
        if isinstance(frame, ErrorFrame):
            self.errors.append(str(frame.error))
        await self.push_frame(frame, direction)


async def synthesize_preview(tts, text: str, *, sample_rate: int = PREVIEW_SAMPLE_RATE,
                             timeout_secs: float = PREVIEW_TIMEOUT_SECS) -> bytes:
    """`text` spoken by `tts` (a Pipecat TTS service built at `sample_rate`) as a mono WAV.
    Raises VoicePreviewError when the service says nothing (an error, a timeout)."""
    collector = _Collector()
    worker = PipelineWorker(
        Pipeline([tts, collector]),
        params=PipelineParams(audio_out_sample_rate=sample_rate, audio_in_sample_rate=sample_rate),
        enable_rtvi=False, enable_turn_tracking=False, check_dangling_tasks=False, idle_timeout_secs=None,
    )
    worker.add_event_handler("on_pipeline_error", lambda w, frame: collector.errors.append(str(frame.error)))
    await worker.queue_frames([TTSSpeakFrame(text), EndFrame()])
    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(worker)
    try:
        await asyncio.wait_for(runner.run(), timeout_secs)
    except TimeoutError:
        await worker.cancel()
        raise VoicePreviewError(f"the voice did not finish within {timeout_secs:g} s") from None
    if not collector.pcm:
        raise VoicePreviewError("; ".join(collector.errors) or "the voice returned no audio")
    return pcm_to_wav(bytes(collector.pcm), sample_rate, 1)
