"""The shape of a call: one literal list of stages. The transport and the
provider services are chosen outside (see `apps.voice.session`)."""
from __future__ import annotations

from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.dtmf_aggregator import DTMFAggregator
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.turns.user_start import TranscriptionUserTurnStartStrategy, VADUserTurnStartStrategy
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from apps.voice.config import VoiceConfig
from apps.voice.trace import CallTracer
from apps.voice.transport import MediaStreamTransport
from apps.voice.vad import SharedSileroVADAnalyzer


def turn_strategies(config: VoiceConfig) -> UserTurnStrategies:
    """The caller's turn ends when VAD has heard `vad_stop_secs` of silence and the
    transcript is in: the agent's stop seconds are the only pause we wait for."""
    return UserTurnStrategies(
        start=[
            VADUserTurnStartStrategy(enable_interruptions=config.allow_interruptions),
            TranscriptionUserTurnStartStrategy(enable_interruptions=config.allow_interruptions),
        ],
        stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)],
    )


def build_pipeline(
    *,
    config: VoiceConfig,
    transport: MediaStreamTransport,
    stt: FrameProcessor,
    llm: FrameProcessor,
    tts: FrameProcessor,
    context: LLMContext,
    tracer: CallTracer,
    end_phrases: FrameProcessor,
    watchdog: FrameProcessor,
) -> Pipeline:
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(user_turn_strategies=turn_strategies(config)),
    )
    # One Silero model per process, calls' windows scored in batches (apps.voice.vad).
    vad = SharedSileroVADAnalyzer(params=VADParams(stop_secs=config.vad_stop_secs))
    return Pipeline(
        [
            transport.input(),  # carrier media in: 8 kHz caller audio (teed to the recording), keypad digits
            # Silero: caller started / stopped speaking. Direct mode: run in the input
            # transport's audio task rather than through a queue and task of its own.
            VADProcessor(vad_analyzer=vad, enable_direct_mode=True),
            stt,  # each speech segment becomes a final transcript; caller audio goes no further
            DTMFAggregator(timeout=1.0),  # keypad digits become caller text "DTMF: 5"
            tracer.caller_side(),  # trace: end of speech, transcript, STT latency
            end_phrases,  # an end-call phrase ends the call (the LLM never sees it)
            aggregators.user(),  # turn taking, barge-in, caller text into the context
            llm,  # the reply, streamed, and tool calls (end_call, transfer_to_human)
            watchdog,  # an LLM that stays silent becomes the fallback line
            tts,  # reply text to speech
            transport.output(),  # carrier media out, paced (teed to the recording); `clear` on barge-in
            tracer.agent_side(),  # trace: spoken text, barge-ins, metrics, usage
            aggregators.assistant(),  # what the agent said into the context
        ]
    )
