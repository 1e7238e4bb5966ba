"""The baseline: a bare Pipecat pipeline (Pipecat's own websocket server transport,
Twilio serializer, the same Silero VAD, services and doubles) with none of
Switchboard around it. Serves one call at a time on --port.

    python benchmarks/bare_pipecat.py --port 8790 --base-url http://127.0.0.1:8765/v1 --vad-stop 0.5
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger  # noqa: E402
from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402
from pipecat.audio.vad.vad_analyzer import VADParams  # noqa: E402
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import (  # noqa: E402
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.vad_processor import VADProcessor  # noqa: E402
from pipecat.serializers.twilio import TwilioFrameSerializer  # noqa: E402
from pipecat.transports.websocket.server import WebsocketServerParams, WebsocketServerTransport  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

from apps.voice.config import VoiceConfig  # noqa: E402
from apps.voice.pipeline import turn_strategies  # noqa: E402
from apps.voice.testing import openai_services  # noqa: E402

STREAM_SID = "MZbare"


async def serve_one(port: int, base_url: str, vad_stop: float) -> None:
    config = VoiceConfig(vad_stop_secs=vad_stop)
    transport = WebsocketServerTransport(
        host="127.0.0.1",
        port=port,
        params=WebsocketServerParams(
            serializer=TwilioFrameSerializer(
                stream_sid=STREAM_SID, params=TwilioFrameSerializer.InputParams(auto_hang_up=False, sample_rate=8000)
            ),
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=8000,
            audio_out_sample_rate=8000,
            audio_out_10ms_chunks=2,
        ),
    )
    stt, llm, tts = openai_services(base_url)
    context = LLMContext([{"role": "system", "content": config.system_prompt}])
    aggregators = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(user_turn_strategies=turn_strategies(config))
    )
    pipeline = Pipeline(
        [
            transport.input(),
            VADProcessor(vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=vad_stop))),
            stt,
            aggregators.user(),
            llm,
            tts,
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        enable_rtvi=False,
        idle_timeout_secs=None,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_disconnected(transport, client):
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--vad-stop", type=float, default=0.5)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    while True:  # one call at a time, as long as the benchmark wants
        await serve_one(args.port, args.base_url, args.vad_stop)


if __name__ == "__main__":
    asyncio.run(main())
