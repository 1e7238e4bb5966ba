"""One live call: runs the pipeline and decides how and why it ends.

A `CallSession` knows nothing of Django. Whoever owns the socket (the Channels
consumer, or a test) builds the provider services and a `CallHooks` object; the
hooks are where the records are written and the carrier is told to hang up or
transfer, each time after the agent's last words have played.

End reasons: caller_hung_up, agent_ended (end_call tool or an end-call phrase),
transfer, idle_timeout, max_duration, error (provider or protocol; `error` says what).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from pipecat.audio.utils import pcm_to_wav
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    InterruptionFrame,
    LLMRunFrame,
    ManuallySwitchServiceFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.llm_switcher import LLMSwitcher
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.workers.runner import WorkerRunner

from apps.voice.config import VoiceConfig
from apps.voice.pipeline import build_pipeline, listens_to_caller_audio
from apps.voice.processors.end_phrases import EndPhraseDetector
from apps.voice.processors.watchdog import ProviderWatchdog
from apps.voice.tools import register_tools, tools_schema
from apps.voice.trace import CallTracer
from apps.voice.transport import MediaStreamTransport

logger = logging.getLogger(__name__)

# End reasons, as apps.calls.models.Call.EndReason spells them.
CALLER_HANGUP = "caller_hung_up"
AGENT_HANGUP = "agent_ended"  # the end_call tool
END_PHRASE = "agent_ended"  # the caller said an end-call phrase
TRANSFERRED = "transfer"
IDLE_TIMEOUT = "idle_timeout"
MAX_DURATION = "max_duration"
PROVIDER_ERROR = "error"  # `error` says which provider and what
PROTOCOL_ERROR = "error"  # malformed / oversized / foreign media messages


def _key_cannot_serve(report) -> bool:
    """A vendor error report (apps.providers.vendor_errors) after which the stage's key will not
    serve this call: throttled, or refused by the vendor itself (401/403/400, not our own bug)."""
    outcome = getattr(report, "outcome", None)
    return outcome == "rate_limited" or (outcome == "terminal" and getattr(report, "status_code", None) is not None)


# After these the carrier leg is still up and we must hang it up ourselves.
_WE_HANG_UP = {AGENT_HANGUP, END_PHRASE, IDLE_TIMEOUT, MAX_DURATION, PROVIDER_ERROR}


class CallHooks(Protocol):
    async def on_answered(self) -> None: ...

    async def on_heartbeat(self) -> None: ...

    async def on_turn(self, turn: dict) -> None: ...

    async def hang_up(self) -> None: ...

    async def transfer(self, to_number: str) -> None: ...

    async def on_recording(self, wav: bytes, transcript: str) -> None: ...

    # A stage's vendor failed; returns a report with `.outcome` ("rate_limited",
    # "retryable", "terminal"), e.g. apps.providers.vendor_errors.VendorErrorReport.
    async def on_vendor_error(self, *, key_id: str | None, error) -> object: ...

    # Move a stage to another key (lease it); False when it cannot serve either.
    async def on_key_failover(self, *, kind: str, from_key: str | None, to_key: str) -> bool: ...

    async def on_end(self, *, end_reason: str, error: str, usage: dict) -> None: ...


@dataclass
class CallOutcome:
    end_reason: str
    error: str = ""
    usage: dict = field(default_factory=dict)
    turns: list[dict] = field(default_factory=list)
    transcript: str = ""


class CallSession:
    def __init__(
        self,
        *,
        config: VoiceConfig,
        transport: MediaStreamTransport,
        stt,
        llm,
        tts,
        hooks: CallHooks,
        key_ids: dict[str, str | None] | None = None,
        llm_standby=None,
        llm_standby_key: str | None = None,
    ):
        """`key_ids`: the provider key ref each stage ("stt"/"llm"/"tts") was built with,
        so a vendor error can be reported against the key that failed. `llm_standby`: the
        same LLM built with another key (`llm_standby_key`): when the vendor throttles the
        call's key, Pipecat's LLMSwitcher moves the call to it and the turn is asked again."""
        self.config = config
        self.transport = transport
        self.hooks = hooks
        self._stage_of = {id(stt): "stt", id(llm): "llm", id(tts): "tts"}
        if llm_standby is not None:
            self._stage_of[id(llm_standby)] = "llm"
        self._key_ids = dict(key_ids or {})
        self._llm_standby, self._llm_standby_key = llm_standby, llm_standby_key
        llm_names = (llm.name,) if llm_standby is None else (llm.name, llm_standby.name)
        self.tracer = CallTracer(on_turn=self._on_turn, llm_name=llm_names, tts_name=tts.name)
        self._end_reason: str | None = None
        self._error = ""
        self._transfer_to = ""
        self._hang_up_anyway = False
        # Idle timer (instead of Pipecat's idle observer, which sees every frame pushed).
        self._idle_timer: asyncio.TimerHandle | None = None

        messages = [{"role": "system", "content": config.system_prompt}]
        schema = tools_schema(config)
        context = LLMContext(messages, tools=schema) if schema else LLMContext(messages)
        for service in (llm,) if llm_standby is None else (llm, llm_standby):
            register_tools(
                service,
                config,
                on_end_call=lambda reason: self.end(AGENT_HANGUP, say=config.goodbye_line),
                on_transfer=self._transfer,
                record=self.tracer.record_tool_call,
            )
        # The transport records and reports sent agent audio itself (no processors for either).
        transport.on_audio_sent(self.tracer.agent_audio_sent)
        # Unless the turn strategies listen to it (Smart Turn, barge-in by words),
        # nothing after STT needs caller audio: stop it there rather than carry every
        # 40 ms frame further. (Pipecat only takes this at construction; the registry
        # builds the service.)
        if hasattr(stt, "_audio_passthrough"):
            stt._audio_passthrough = listens_to_caller_audio(config)
        pipeline = build_pipeline(
            config=config,
            transport=transport,
            stt=stt,
            # One LLM, or Pipecat's switcher over it and its standby (another key of the same vendor).
            llm=llm if llm_standby is None else LLMSwitcher(llms=[llm, llm_standby]),
            tts=tts,
            context=context,
            tracer=self.tracer,
            end_phrases=EndPhraseDetector(
                phrases=config.end_call_phrases,
                on_phrase=lambda phrase: self.end(END_PHRASE, say=config.goodbye_line),
            ),
            watchdog=ProviderWatchdog(timeout_secs=config.provider_timeout_secs, on_timeout=self._provider_failed),
        )
        self.worker = PipelineWorker(
            pipeline,
            params=PipelineParams(
                audio_in_sample_rate=config.sample_rate,
                audio_out_sample_rate=config.sample_rate,
                enable_metrics=True,
                enable_usage_metrics=True,
                send_initial_empty_metrics=False,
            ),
            enable_rtvi=False,
            enable_turn_tracking=False,
            check_dangling_tasks=False,
            idle_timeout_secs=None,  # see _check_idle
        )
        self.worker.add_event_handler("on_pipeline_started", self._on_started)
        self.worker.add_event_handler("on_pipeline_error", self._on_error)
        self._max_duration_timer: asyncio.TimerHandle | None = None
        self._heartbeat_timer: asyncio.TimerHandle | None = None

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> CallOutcome:
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(self.worker)
        try:
            await runner.run()
        finally:
            for timer in (self._max_duration_timer, self._idle_timer, self._heartbeat_timer):
                if timer is not None:
                    timer.cancel()
        return await self._wrap_up()

    async def feed(self, message: str | bytes) -> None:
        await self.transport.feed(message)

    async def feed_audio(self, pcm: bytes) -> None:
        """Caller audio, already decoded by the carrier protocol (16-bit PCM at its rate)."""
        await self.transport.feed_audio(pcm)

    async def caller_hung_up(self) -> None:
        """The carrier closed the stream (caller hung up, or a transfer took the leg)."""
        self.transport.mark_closed()
        if self._end_reason is None:
            self._end_reason = CALLER_HANGUP
        await self.worker.cancel(reason=self._end_reason)

    async def abort(self, end_reason: str, error: str) -> None:
        """Stop at once (a broken stream): nothing more can be played; the carrier
        leg is hung up all the same."""
        self._hang_up_anyway = True
        if self._end_reason is None:
            self._end_reason, self._error = end_reason, error
        self.transport.mark_closed()
        await self.worker.cancel(reason=end_reason)

    async def end(self, end_reason: str, *, say: str = "", error: str = "") -> None:
        """Say `say` (if anything), let it play out, then end. The first reason wins."""
        if self._end_reason is not None:
            return
        self._end_reason, self._error = end_reason, error
        frames = []
        if say:
            speak = TTSSpeakFrame(say)
            speak.interruptible = False
            frames.append(speak)
        frames.append(EndFrame(reason=end_reason))
        await self.worker.queue_frames(frames)

    # -- events ------------------------------------------------------------------------------

    async def _on_started(self, worker, frame) -> None:
        loop = asyncio.get_running_loop()
        if self.config.max_call_secs:
            self._max_duration_timer = loop.call_later(
                self.config.max_call_secs,
                lambda: loop.create_task(self.end(MAX_DURATION, say=self.config.goodbye_line)),
            )
        self.tracer.last_activity = time.monotonic()
        if self.config.idle_timeout_secs:
            self._idle_timer = loop.call_later(self.config.idle_timeout_secs, self._check_idle)
        if self.config.heartbeat_secs and hasattr(self.hooks, "on_heartbeat"):
            self._heartbeat_timer = loop.call_later(self.config.heartbeat_secs, self._heartbeat)
        await self._call_hook(self.hooks.on_answered())
        if self.config.greeting:
            await worker.queue_frame(TTSSpeakFrame(self.config.greeting))

    def _heartbeat(self) -> None:
        """Tell the record the call is live (the sweeper ends calls whose process died)."""
        loop = asyncio.get_running_loop()
        loop.create_task(self._call_hook(self.hooks.on_heartbeat()))
        self._heartbeat_timer = loop.call_later(self.config.heartbeat_secs, self._heartbeat)

    def _check_idle(self) -> None:
        """No caller speech, transcript or agent audio for idle_timeout_secs: end."""
        loop = asyncio.get_running_loop()
        quiet = time.monotonic() - self.tracer.last_activity
        if quiet >= self.config.idle_timeout_secs:
            loop.create_task(self.end(IDLE_TIMEOUT, say=self.config.goodbye_line))
            quiet = 0.0
        self._idle_timer = loop.call_later(self.config.idle_timeout_secs - quiet, self._check_idle)

    async def _on_error(self, worker, frame: ErrorFrame) -> None:
        self.tracer.record_error(frame.error)
        stage = self._stage_of.get(id(frame.processor)) if frame.processor is not None else None
        report = None
        if stage is not None and hasattr(self.hooks, "on_vendor_error"):
            report = await self._call_hook(self.hooks.on_vendor_error(key_id=self._key_ids.get(stage), error=frame))
        if frame.fatal:
            await self._provider_failed(frame.error)
        elif stage == "llm" and getattr(report, "outcome", None) == "rate_limited" and await self._fail_over_llm():
            return
        elif _key_cannot_serve(report):
            # This key will not serve again within the call: the fallback line now, not at the watchdog.
            await self._provider_failed(f"{stage}: {report.outcome}: {frame.error}")

    async def _fail_over_llm(self) -> bool:
        """Move to the standby LLM (once per call) if its key can be leased now; ask again."""
        standby, to_key = self._llm_standby, self._llm_standby_key
        if standby is None or to_key is None or self._end_reason is not None:
            return False
        self._llm_standby = None
        from_key = self._key_ids.get("llm")
        moved = await self._call_hook(self.hooks.on_key_failover(kind="llm", from_key=from_key, to_key=to_key))
        if not moved:
            return False
        self._key_ids["llm"] = to_key
        self.tracer.record_error(f"llm: key {from_key} throttled; the call moved to key {to_key}")
        # Switch, then ask the new key the same turn (the context still ends with the caller's words).
        await self.worker.queue_frames([ManuallySwitchServiceFrame(service=standby), LLMRunFrame()])
        return True

    async def _provider_failed(self, error: str) -> None:
        """The caller hears the fallback line, then the call ends with the error."""
        if self._end_reason is not None:
            return
        self.tracer.record_error(error)
        # Cancel the stuck request (interruption restarts each processor's queue).
        await self.worker.queue_frame(InterruptionFrame())
        await self.end(PROVIDER_ERROR, say=self.config.fallback_line, error=error)

    async def _transfer(self, to_number: str) -> None:
        self._transfer_to = to_number
        await self.end(TRANSFERRED, say=self.config.transfer_line)

    async def _on_turn(self, turn: dict) -> None:
        await self._call_hook(self.hooks.on_turn(turn))

    # -- after the pipeline ------------------------------------------------------------------

    async def _wrap_up(self) -> CallOutcome:
        end_reason = self._end_reason or CALLER_HANGUP
        # Carrier first: the caller should not wait on our bookkeeping.
        if end_reason == TRANSFERRED:
            await self._call_hook(self.hooks.transfer(self._transfer_to))
        elif end_reason in _WE_HANG_UP or self._hang_up_anyway:
            await self._call_hook(self.hooks.hang_up())
        await self.tracer.finish()
        transcript = self.tracer.transcript
        recorder = self.transport.recorder
        if recorder.has_audio:
            await self._call_hook(
                self.hooks.on_recording(pcm_to_wav(recorder.stereo_pcm(), recorder.sample_rate, 2), transcript)
            )
        usage = self.tracer.usage.as_dict()
        await self._call_hook(self.hooks.on_end(end_reason=end_reason, error=self._error, usage=usage))
        return CallOutcome(
            end_reason=end_reason,
            error=self._error,
            usage=usage,
            turns=[turn.as_dict() for turn in self.tracer.turns],
            transcript=transcript,
        )

    async def _call_hook(self, awaitable):
        try:
            return await awaitable
        except Exception:  # a failing record must not take the call down with it
            logger.exception("call hook failed")
            return None


class FallbackSession:
    """A call that cannot run its agent (no provider key free, a service that would
    not build): the caller hears the fallback line, then the carrier leg is hung up.
    The call record was already ended by apps.calls.services with the reason; this
    only speaks. Same surface as CallSession for the stream bridge."""

    def __init__(self, *, line: str, error: str, transport: MediaStreamTransport, tts, hooks: CallHooks,
                 sample_rate: int = 8000):
        from pipecat.pipeline.pipeline import Pipeline

        self.transport = transport
        self.hooks = hooks
        self._line = line
        self._error = error
        self._end_reason = PROVIDER_ERROR
        transport.on_audio_sent(lambda: None)
        pipeline = Pipeline([
            transport.input(),  # caller audio is heard by nobody; it passes through to be dropped
            tts,  # the fallback line
            transport.output(),  # to the carrier, paced
        ])
        self.worker = PipelineWorker(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=sample_rate, audio_out_sample_rate=sample_rate),
            enable_rtvi=False, enable_turn_tracking=False, check_dangling_tasks=False, idle_timeout_secs=None,
        )
        self.worker.add_event_handler("on_pipeline_started", self._on_started)

    async def _on_started(self, worker, frame) -> None:
        speak = TTSSpeakFrame(self._line)
        speak.interruptible = False
        await worker.queue_frames([speak, EndFrame(reason=PROVIDER_ERROR)])

    async def run(self) -> CallOutcome:
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(self.worker)
        await runner.run()
        try:
            await self.hooks.hang_up()
        except Exception:  # noqa: BLE001 - the carrier ends the leg when the socket closes anyway
            logger.exception("could not hang up after the fallback line")
        return CallOutcome(end_reason=PROVIDER_ERROR, error=self._error)

    async def feed(self, message: str | bytes) -> None:
        return None  # keypad digits mean nothing here

    async def feed_audio(self, pcm: bytes) -> None:
        return None  # nobody listens

    async def caller_hung_up(self) -> None:
        self.transport.mark_closed()
        await self.worker.cancel(reason=CALLER_HANGUP)

    async def abort(self, end_reason: str, error: str) -> None:
        await self.caller_hung_up()
