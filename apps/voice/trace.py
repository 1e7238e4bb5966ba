"""Per-turn trace and usage of one call, collected from the frames of its pipeline.

`CallTracer` owns two small processors, placed where each can see what it needs
(the way Pipecat's transcript processors come in a user/assistant pair):

- `caller_side()` right after STT: caller speech start/stop (VAD), final transcripts,
  acknowledgements said over the agent (`UserBackchannelFrame`).
- `agent_side()` right after the output transport: spoken text, barge-ins,
  metrics (LLM TTFT, TTS TTFB) and usage.

The first agent audio actually sent comes from the transport (`agent_audio_sent`),
which no longer pushes sent audio down the pipeline. Both processors run in
Pipecat's direct mode (no queue or task of their own: they only look at frames
and pass them on), and they note the last caller/agent activity for the
session's idle timer (Pipecat's idle observer would see every frame).

It never touches the ORM: finished turns go to an async `on_turn(turn: dict)`
callback, run as tasks so a slow database never holds up the audio.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from pipecat.frames.frames import (
    BotSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    MetricsFrame,
    TranscriptionFrame,
    TTSTextFrame,
    UserBackchannelFrame,
    UserSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import (
    LLMUsageMetricsData,
    STTUsageMetricsData,
    TTFBMetricsData,
    TTSUsageMetricsData,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

TurnCallback = Callable[[dict], Awaitable[None]]
# Sees a turn's state each time it changes (a browser test call's live transcript and latencies);
# called on the pipeline's task, so it must only hand the dict over (never wait).
LiveCallback = Callable[[dict], None]


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class TurnTrace:
    index: int
    user_text: str = ""
    bot_text: str = ""
    started_at: str = field(default_factory=_now_iso)
    ended_at: str = ""
    interrupted: bool = False
    stt_final_ms: int | None = None
    llm_ttft_ms: int | None = None
    tts_ttfb_ms: int | None = None
    voice_to_voice_ms: int | None = None
    # Why the caller's turn ended: "end_of_turn_model", "silence" or "timeout" ("" without caller speech).
    end_of_turn: str = ""
    # Acknowledgements the caller said while the agent spoke ("Mm-hmm."): not turns of their own.
    backchannels: list[str] = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    node: str = ""  # the workflow node the agent answered from
    # Pre-recorded clips played instead of text-to-speech: [{"name", "source"}], source one of
    # "llm" (the LLM chose it), "greeting", "hold" (a tool call or pre-call fetch ran), "transition".
    clips: list[dict] = field(default_factory=list)
    # Monotonic bookkeeping, not reported.
    speech_end_mono: float | None = field(default=None, repr=False)
    agent_audio_started: bool = field(default=False, repr=False)
    # Begun by words said over the agent: audio before this turn's own reply text is the old reply's tail.
    opened_over_agent: bool = field(default=False, repr=False)

    def as_dict(self) -> dict:
        data = asdict(self)
        for bookkeeping in ("speech_end_mono", "agent_audio_started", "opened_over_agent"):
            data.pop(bookkeeping)
        return data


@dataclass
class CallUsage:
    """Usage quantities per model, in the shape apps.calls.services.call_end takes."""

    call_secs: float = 0.0
    stt_secs: dict[str, float] = field(default_factory=dict)
    llm_input_tokens: dict[str, int] = field(default_factory=dict)
    llm_output_tokens: dict[str, int] = field(default_factory=dict)
    tts_characters: dict[str, int] = field(default_factory=dict)
    clip_plays: int = 0
    # Speech to speech: {metric (registry KINDS["speech_to_speech"]): {model: tokens}}.
    s2s_tokens: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        usage = {
            "call_seconds": round(self.call_secs, 3),
            "stt_seconds": {model: round(secs, 3) for model, secs in self.stt_secs.items()},
            "llm_input_tokens": dict(self.llm_input_tokens),
            "llm_output_tokens": dict(self.llm_output_tokens),
            "tts_characters": dict(self.tts_characters),
            **{metric: dict(per_model) for metric, per_model in self.s2s_tokens.items()},
        }
        if self.clip_plays:
            usage["clip_plays"] = self.clip_plays
        return usage

    def add_s2s_tokens(self, model: str, tokens) -> None:
        """One response's LLMTokenUsage from a speech-to-speech model, by modality."""
        audio_in, audio_out = tokens.input_audio_tokens or 0, tokens.output_audio_tokens or 0
        for metric, value in (("s2s_input_audio_tokens", audio_in), ("s2s_output_audio_tokens", audio_out),
                              ("s2s_input_text_tokens", max(0, (tokens.prompt_tokens or 0) - audio_in)),
                              ("s2s_output_text_tokens", max(0, (tokens.completion_tokens or 0) - audio_out))):
            per_model = self.s2s_tokens.setdefault(metric, {})
            per_model[model] = per_model.get(model, 0) + value


class CallTracer:
    def __init__(self, *, on_turn: TurnCallback, llm_name: str | tuple[str, ...] = "", tts_name: str = "",
                 s2s_name: str = "", speech_stop_secs: float = 0.0,
                 on_live: LiveCallback | None = None, telemetry=None):
        """`s2s_name`: a speech-to-speech service (no STT/LLM/TTS): its VAD's turn stops (reported
        `speech_stop_secs` after the caller went quiet) open turns, its transcripts of the caller
        (pushed upstream) fill them, its usage is billed by modality, and the local voice of the
        fixed lines (`tts_name`) is not billed."""
        self._on_turn = on_turn
        self._on_live = on_live
        # apps.voice.telemetry.CallTelemetry when the call is traced (spans per turn), else None.
        self._telemetry = telemetry
        self._s2s_name = s2s_name
        self._speech_stop_secs = speech_stop_secs
        self._awaiting_transcript: TurnTrace | None = None
        # Several when the LLM has a standby service (key failover): any of them is "the LLM".
        self._llm_names = (llm_name,) if isinstance(llm_name, str) else tuple(llm_name)
        self._tts_name = tts_name
        self._started_mono = time.monotonic()
        self._turns: list[TurnTrace] = []
        self._current: TurnTrace | None = None
        self._pending_speech_end: float | None = None
        self._vad_stopped_at: float | None = None
        self._bot_speaking = False
        self._words_over_agent: list[str] = []
        self._stt_streams = False  # an interim transcript came
        self._tasks: set[asyncio.Task] = set()
        self.node = ""
        # Last caller or agent activity (speech, transcripts, agent audio), for the idle timer.
        self.last_activity = self._started_mono
        self.usage = CallUsage()
        self.transcript_lines: list[str] = []
        self._caller = _CallerSide(self)
        self._agent = _AgentSide(self)

    # -- the two processors ------------------------------------------------------------------

    def caller_side(self) -> FrameProcessor:
        return self._caller

    def agent_side(self) -> FrameProcessor:
        return self._agent

    # -- turns -------------------------------------------------------------------------------

    @property
    def turns(self) -> list[TurnTrace]:
        return list(self._turns)

    @property
    def current(self) -> TurnTrace:
        if self._current is None:
            self._open_turn()
        assert self._current is not None
        return self._current

    def _open_turn(self) -> TurnTrace:
        self._close_turn()
        self._current = TurnTrace(index=len(self._turns), node=self.node)
        self._turns.append(self._current)
        if self._telemetry is not None:
            self._telemetry.turn_opened(self._current.index)
        return self._current

    def _close_turn(self) -> None:
        turn = self._current
        if turn is None:
            return
        self._current = None
        turn.ended_at = _now_iso()
        self._live(turn)
        if turn.user_text:
            self.transcript_lines.append(f"Caller: {turn.user_text}")
        if turn.bot_text:
            self.transcript_lines.append(f"Agent: {turn.bot_text.strip()}")
        self.transcript_lines.extend(f"Caller: {text}" for text in turn.backchannels)
        if self._telemetry is not None:
            self._telemetry.turn_closed(turn.as_dict())
        task = asyncio.get_running_loop().create_task(self._on_turn(turn.as_dict()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _live(self, turn: TurnTrace) -> None:
        if self._on_live is not None:
            self._on_live(turn.as_dict())

    def record_tool_call(self, *, name: str, arguments: dict, result, duration_secs: float, error: str = "") -> None:
        self.current.tool_calls.append(
            {"name": name, "arguments": arguments, "result": result, "duration_ms": _ms(duration_secs), "error": error}
        )
        if self._telemetry is not None:
            self._telemetry.tool_call(name=name, arguments=arguments, duration_secs=duration_secs, error=error)

    def record_clip(self, name: str, source: str) -> None:
        """A pre-recorded clip was played in this turn (metered as one clip play)."""
        self.current.clips.append({"name": name, "source": source})
        self.usage.clip_plays += 1

    def set_node(self, node: str) -> None:
        """The call moved to `node`: this turn's answer and the next turns come from it."""
        self.node = node
        if self._current is not None:
            self._current.node = node

    def record_end_of_turn(self, reason: str) -> None:
        """Why the caller's turn just ended (the user aggregator's turn stop)."""
        turn = self._current
        if turn is not None and turn.user_text and not turn.end_of_turn:
            turn.end_of_turn = reason

    def record_error(self, message: str) -> None:
        self.current.errors.append(message)

    def record_bot_text(self, text: str) -> None:
        """Text spoken outside the LLM (greeting, fallback line, goodbye)."""
        turn = self.current
        turn.bot_text = f"{turn.bot_text} {text}".strip()
        self._live(turn)

    async def finish(self) -> None:
        """Close the last turn and wait until every turn has been handed over."""
        self.usage.call_secs = time.monotonic() - self._started_mono
        self._close_turn()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def transcript(self) -> str:
        lines = list(self.transcript_lines)
        return "\n".join(lines) + ("\n" if lines else "")

    # -- frame handlers (called by the processors) -------------------------------------------

    def agent_audio_sent(self) -> None:
        """The transport sent a chunk of agent audio to the carrier."""
        turn = self.current
        if turn.opened_over_agent and not turn.bot_text:
            return
        if not turn.agent_audio_started:
            turn.agent_audio_started = True
            if turn.speech_end_mono is not None:
                turn.voice_to_voice_ms = _ms(time.monotonic() - turn.speech_end_mono)
            self._live(turn)

    def _open_turn_said_over_agent(self) -> None:
        if self._words_over_agent:
            turn = self._open_turn()
            turn.user_text, turn.opened_over_agent = " ".join(self._words_over_agent), True
            self._words_over_agent.clear()

    def _caller_frame(self, frame: Frame) -> None:
        if not isinstance(frame, _CALLER_FRAMES):  # caller audio never gets here (it stops at STT)
            return
        now = time.monotonic()
        self.last_activity = now
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            self._vad_stopped_at = now
            # VAD reports the stop `stop_secs` after the caller actually went quiet.
            self._pending_speech_end = now - (frame.stop_secs or 0.0)
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._vad_stopped_at = None
            if self._telemetry is not None and _opens_new_turn(self._current):
                # The STT span of this speech starts before its turn row: under the turn to come.
                self._telemetry.expect_turn()
        elif isinstance(frame, InterimTranscriptionFrame):
            self._stt_streams = True
        elif isinstance(frame, UserBackchannelFrame):
            self.current.backchannels.append(frame.text)
        elif isinstance(frame, TranscriptionFrame) and frame.text.strip():
            if (self._stt_streams and self._bot_speaking and self._current is not None
                    and self._current.agent_audio_started):
                # Words over the agent's reply (only a streaming STT is that quick): they begin the caller's
                # next turn, opened once the agent stops, so the rest of the reply is not taken for its answer.
                self._words_over_agent.append(frame.text.strip())
                return
            turn = self._current
            if _opens_new_turn(turn):
                turn = self._open_turn()
            turn.user_text = f"{turn.user_text} {frame.text.strip()}".strip()
            if self._vad_stopped_at is not None:
                turn.stt_final_ms = _ms(now - self._vad_stopped_at)
                turn.speech_end_mono = self._pending_speech_end
            else:  # keypad digits: no speech, the "end of speech" is now
                turn.speech_end_mono = now
            self._vad_stopped_at = None
            self._live(turn)

    def _s2s_caller_frame(self, frame: Frame) -> None:
        """A speech-to-speech call: the turn opens when the model's VAD ends the caller's speech
        (the answer is on its way); the transcript may come before or after its first audio."""
        if isinstance(frame, UserStartedSpeakingFrame):
            self.last_activity = time.monotonic()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            now = time.monotonic()
            self.last_activity = now
            turn = self._open_turn()
            turn.speech_end_mono = now - self._speech_stop_secs
            self._vad_stopped_at = now
            self._awaiting_transcript = turn
        elif isinstance(frame, TranscriptionFrame) and frame.text.strip():
            now = time.monotonic()
            self.last_activity = now
            turn = self._awaiting_transcript
            if turn is None:  # a model that reports no turn stops (Gemini Live): the words start the turn
                turn = self._current
                if turn is None or turn.bot_text or turn.agent_audio_started:
                    turn = self._open_turn()
                # Its transcript of the caller streams while they speak: its last words are the
                # nearest thing to the end of speech it tells (voice to voice is timed from them).
                if not turn.agent_audio_started:
                    turn.speech_end_mono = now
            turn.user_text = f"{turn.user_text} {frame.text.strip()}".strip()
            if turn is self._awaiting_transcript and self._vad_stopped_at is not None:
                turn.stt_final_ms = _ms(now - self._vad_stopped_at)
            self._awaiting_transcript = None

    def _agent_frame(self, frame: Frame) -> None:
        if isinstance(frame, BotSpeakingFrame):
            self.last_activity = time.monotonic()
        elif isinstance(frame, TTSTextFrame):
            turn = self.current
            turn.bot_text = f"{turn.bot_text} {frame.text}".strip() if frame.text else turn.bot_text
            self._live(turn)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            self._open_turn_said_over_agent()
        elif isinstance(frame, InterruptionFrame):
            turn = self._current
            if turn is not None and self._bot_speaking:
                turn.interrupted = True
            self._open_turn_said_over_agent()
        elif isinstance(frame, MetricsFrame):
            for data in frame.data:
                self._metric(data)

    def _metric(self, data) -> None:
        if isinstance(data, TTFBMetricsData):
            turn = self.current
            if data.processor in self._llm_names and turn.llm_ttft_ms is None and data.value > 0:
                turn.llm_ttft_ms = _ms(data.value)
            elif data.processor == self._tts_name and turn.tts_ttfb_ms is None and data.value > 0:
                turn.tts_ttfb_ms = _ms(data.value)
        elif isinstance(data, LLMUsageMetricsData) and self._s2s_name and data.processor == self._s2s_name:
            self.usage.add_s2s_tokens(data.model or "unknown", data.value)
        elif isinstance(data, TTSUsageMetricsData) and self._s2s_name:
            return  # a speech-to-speech call's fixed lines are the local voice: nothing to bill
        elif isinstance(data, LLMUsageMetricsData):
            model = data.model or "unknown"
            usage = self.usage
            usage.llm_input_tokens[model] = usage.llm_input_tokens.get(model, 0) + data.value.prompt_tokens
            usage.llm_output_tokens[model] = usage.llm_output_tokens.get(model, 0) + data.value.completion_tokens
        elif isinstance(data, TTSUsageMetricsData):
            model = data.model or "unknown"
            self.usage.tts_characters[model] = self.usage.tts_characters.get(model, 0) + data.value
        elif isinstance(data, STTUsageMetricsData):
            model = data.model or "unknown"
            self.usage.stt_secs[model] = self.usage.stt_secs.get(model, 0.0) + data.value.audio_seconds


def _opens_new_turn(turn: TurnTrace | None) -> bool:
    """Whether the caller's next transcript starts a turn of its own: unless the current
    turn is still empty or the caller is still talking in it (no agent audio yet)."""
    fresh = turn is not None and not turn.user_text and not turn.bot_text and not turn.agent_audio_started
    still_talking = turn is not None and bool(turn.user_text) and not turn.agent_audio_started
    return not (fresh or still_talking)


_CALLER_FRAMES = (
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    TranscriptionFrame,
    InterimTranscriptionFrame,
    UserSpeakingFrame,
    UserBackchannelFrame,
)


_S2S_CALLER_FRAMES = (UserStartedSpeakingFrame, UserStoppedSpeakingFrame, TranscriptionFrame)


class _CallerSide(FrameProcessor):
    def __init__(self, tracer: CallTracer):
        super().__init__(name="trace-caller", enable_direct_mode=True)
        self._tracer = tracer

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if self._tracer._s2s_name:  # turn stops come down from the aggregator, transcripts up from the model
            if isinstance(frame, _S2S_CALLER_FRAMES):
                self._tracer._s2s_caller_frame(frame)
        elif direction == FrameDirection.DOWNSTREAM:
            self._tracer._caller_frame(frame)
        await self.push_frame(frame, direction)


class _AgentSide(FrameProcessor):
    def __init__(self, tracer: CallTracer):
        super().__init__(name="trace-agent", enable_direct_mode=True)
        self._tracer = tracer

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            self._tracer._agent_frame(frame)
        await self.push_frame(frame, direction)
