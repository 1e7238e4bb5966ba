"""What Pipecat's tracing costs a call that is not traced (no destination configured).

With opentelemetry-sdk installed, Pipecat's `traced_stt` wraps every STT service's
`push_frame` (pipecat/utils/tracing/service_decorators.py); an untraced call only pays the
wrapper's check of `_tracing_enabled` on each frame the STT pushes (caller audio passes
through it when the turn strategies listen). This times the wrapped `push_frame` against the
function it wraps, on the same started service, per 20 ms audio frame.

    .venv/bin/python benchmarks/tracing_overhead.py
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

FRAMES = 50_000


async def main() -> None:
    from pipecat.frames.frames import InputAudioRawFrame
    from pipecat.processors.frame_processor import FrameDirection

    from apps.voice.testing import openai_services

    stt, _, _ = openai_services("http://127.0.0.1:9/v1")
    frame = InputAudioRawFrame(audio=b"\0" * 320, sample_rate=8000, num_channels=1)
    wrapped = type(stt).push_frame
    original = wrapped.__wrapped__
    assert getattr(stt, "_tracing_enabled", False) is False
    results: dict[str, float] = {}
    # Interleaved rounds, best of each (the machine is shared and noisy).
    for label, function in (("original", original), ("wrapped, tracing off", wrapped)) * 5:
        started = time.perf_counter()
        for _ in range(FRAMES):
            await function(stt, frame, FrameDirection.DOWNSTREAM)
        ns = (time.perf_counter() - started) / FRAMES * 1e9
        results[label] = min(results.get(label, ns), ns)
    extra = results["wrapped, tracing off"] - results["original"]
    for label, ns in results.items():
        print(f"{label:>22}: {ns:8.0f} ns per frame")
    print(f"{'added':>22}: {extra:8.0f} ns per frame = {extra * 50 / 1e9 * 100:.5f} % of one core per call "
          f"(50 frames/s)")


if __name__ == "__main__":
    import django

    django.setup()
    asyncio.run(main())
