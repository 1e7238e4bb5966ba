"""The shape of a call: one literal list of stages. The transport and the
provider services are chosen outside (see `apps.voice.session`)."""
from __future__ import annotations

from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
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
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies, UserTurnStrategies

from apps.voice.config import VoiceConfig
from apps.voice.processors.backchannels import BackchannelFilter
from apps.voice.processors.caller_audio_gate import CallerAudioGate
from apps.voice.processors.caller_audio_sink import CallerAudioSink
from apps.voice.processors.clips import ClipPlayer
from apps.voice.processors.keypad_to_model import KeypadToModel
from apps.voice.processors.s2s_output_gate import S2SOutputGate
from apps.voice.processors.stt_dictionary import SttDictionaryCorrector
from apps.voice.smart_turn import SILENCE, SharedSmartTurnAnalyzer
from apps.voice.trace import CallTracer
from apps.voice.transport import MediaStreamTransport
from apps.voice.turns import (
    TIMEOUT,
    BargeInUserTurnStartStrategy,
    EndOfTurnUserTurnStopStrategy,
    acknowledgements_for,
)
from apps.voice.vad import SharedSileroVADAnalyzer


def listens_to_caller_audio(config: VoiceConfig) -> bool:
    """Whether the turn strategies need the caller's audio past STT."""
    return config.end_of_turn_model or (config.allow_interruptions and config.interrupt_after_words > 0)


def turn_strategies(config: VoiceConfig, *, vad: SharedSileroVADAnalyzer | None = None) -> UserTurnStrategies:
    """Start: with interruptions off or at any speech, voice activity or a transcript
    (Pipecat's); after N words, `BargeInUserTurnStartStrategy`. Stop: Smart Turn plus
    the transcript (`EndOfTurnUserTurnStopStrategy`), or, without the model, the VAD's
    `vad_stop_secs` of silence and the transcript."""
    if config.allow_interruptions and config.interrupt_after_words > 0:
        start = [BargeInUserTurnStartStrategy(
            min_words=config.interrupt_after_words,
            acknowledgements=acknowledgements_for(config.language, config.acknowledgements),
            vad_analyzer=vad,
        )]
    else:
        start = [
            VADUserTurnStartStrategy(enable_interruptions=config.allow_interruptions),
            TranscriptionUserTurnStartStrategy(enable_interruptions=config.allow_interruptions),
        ]
    if config.end_of_turn_model:
        # Smart Turn's own silence limit counts from the VAD's stop.
        params = SmartTurnParams(stop_secs=max(0.2, config.max_pause_secs - config.vad_stop_secs))
        stop = [EndOfTurnUserTurnStopStrategy(turn_analyzer=SharedSmartTurnAnalyzer(params=params, vad_analyzer=vad),
                                              language=config.language, max_pause_secs=config.max_pause_secs)]
    else:
        stop = [SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)]
    return UserTurnStrategies(start=start, stop=stop)


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
    clips: ClipPlayer,
    voicemail: FrameProcessor | None = None,
) -> Pipeline:
    # One Silero model per process, calls' windows scored in batches (apps.voice.vad).
    vad = SharedSileroVADAnalyzer(params=VADParams(stop_secs=config.vad_stop_secs))
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(user_turn_strategies=turn_strategies(config, vad=vad)),
    )
    backchannels = BackchannelFilter(
        acknowledgements=acknowledgements_for(config.language, config.acknowledgements), context=context
    )
    # The caller may just have finished: their audio reaches the VAD as it comes, not 40 ms at a time.
    transport.input().push_at_once_while(lambda: vad.counting_down)
    _trace_turn_ends(aggregators, tracer)
    aggregators.assistant().add_event_handler("on_assistant_turn_started", backchannels.on_assistant_turn_started)
    aggregators.assistant().add_event_handler("on_assistant_turn_stopped", backchannels.on_assistant_turn_stopped)
    return Pipeline(
        [
            transport.input(),  # carrier media in: 8 kHz caller audio (teed to the recording), keypad digits
            # Silero: caller started / stopped speaking. Direct mode: run in the input
            # transport's audio task rather than through a queue and task of its own.
            VADProcessor(vad_analyzer=vad, enable_direct_mode=True),
            stt,  # each speech segment becomes a final transcript
            # Caller audio goes on only while the caller speaks (all of it for the end-of-turn model).
            CallerAudioGate(all_audio=config.end_of_turn_model),
            # The agent's dictionary corrects near misses ("kayc" -> "KYC") unless the STT vendor boosted it.
            SttDictionaryCorrector(terms=() if config.stt_dictionary_boosted else config.stt_dictionary),
            # Outbound with voicemail detection: a machine's greeting is heard here and goes no further.
            *([voicemail] if voicemail is not None else []),
            backchannels,  # "mm-hmm" while the agent talks: no turn, no answer, kept in the context
            DTMFAggregator(timeout=1.0),  # keypad digits become caller text "DTMF: 5"
            tracer.caller_side(),  # trace: end of speech, transcript, STT latency, acknowledgements
            end_phrases,  # an end-call phrase ends the call (the LLM never sees it)
            aggregators.user(),  # turn taking (barge-in after N words, Smart Turn), caller text into the context
            CallerAudioSink(),  # caller audio goes no further
            llm,  # the reply, streamed, and tool calls (end_call, transfer_to_human)
            watchdog,  # an LLM that stays silent becomes the fallback line
            clips,  # [[clip:name]] in the reply plays the recorded clip; other text goes on to the TTS
            tts,  # reply text to speech (clip audio queues behind the speech before it)
            transport.output(),  # carrier media out, paced (teed to the recording); `clear` on barge-in
            tracer.agent_side(),  # trace: spoken text, barge-ins, metrics, usage
            aggregators.assistant(),  # what the agent said into the context
        ]
    )


def build_s2s_pipeline(
    *,
    config: VoiceConfig,
    transport: MediaStreamTransport,
    s2s: FrameProcessor,
    lines_tts: FrameProcessor,
    context: LLMContext,
    tracer: CallTracer,
    end_phrases: FrameProcessor,
    gate: S2SOutputGate,
) -> Pipeline:
    """A speech-to-speech agent: one model hears the caller and speaks. Its server VAD
    proposes the caller's turns (Pipecat's external turn strategies), which is also
    what interrupts the agent; fixed lines (goodbye, transfer, fallback) are the local voice."""
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=ExternalUserTurnStrategies(enable_interruptions=config.allow_interruptions)),
    )
    return Pipeline(
        [
            transport.input(),  # carrier media in: 8 kHz caller audio (teed to the recording)
            # The model's VAD starts and stops the caller's turns (barge-in: an interruption);
            # its transcript of the caller goes into the context.
            aggregators.user(),
            DTMFAggregator(timeout=1.0),  # keypad digits become caller text "DTMF: 5"
            tracer.caller_side(),  # trace: end of speech (the model's VAD), the model's transcript of the caller
            KeypadToModel(),  # ...which goes to the model as a message it answers
            lines_tts,  # goodbye / transfer / fallback lines (TTSSpeakFrame) in the local voice
            # An end-call phrase in the model's transcript of the caller ends the call: checked first
            # thing (its transcript comes up from the model) so the gate shuts before the model's answer.
            end_phrases,
            gate.before_model(),  # once the call is ending: notes the lines' frames...
            s2s,  # caller audio in; agent audio, both transcripts and tool calls out
            gate.after_model(),  # ...and lets only them through (not the model's answer to "goodbye")
            transport.output(),  # carrier media out, paced (teed to the recording); `clear` on barge-in
            tracer.agent_side(),  # trace: spoken text, barge-ins, time to first audio, token usage
            aggregators.assistant(),  # what the agent said and tool results into the context
        ]
    )


def _trace_turn_ends(aggregators: LLMContextAggregatorPair, tracer: CallTracer) -> None:
    """The trace notes why each caller turn ended: the end-of-turn model, silence, or
    the aggregator's stop timeout."""

    async def on_stopped(aggregator, strategy, message) -> None:
        reason = TIMEOUT if strategy is None else (getattr(strategy, "last_reason", "") or SILENCE)
        tracer.record_end_of_turn(reason)

    aggregators.user().add_event_handler("on_user_turn_stopped", on_stopped)
