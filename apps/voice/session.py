"""One live call: runs the pipeline and decides how and why it ends.

A `CallSession` knows nothing of Django. Whoever owns the socket (the Channels
consumer, or a test) builds the provider services and a `CallHooks` object; the
hooks are where the records are written and the carrier is told to hang up or
transfer, each time after the agent's last words have played.

End reasons: caller_hung_up, agent_ended (end_call tool or an end-call phrase),
transfer, idle_timeout, max_duration, voicemail (an outbound call reached an answering
machine: the message was left after the greeting), error (provider or protocol; `error`
says what).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
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
from pipecat.processors.aggregators.llm_response_universal import LLMAssistantAggregator, LLMUserAggregator
from pipecat.workers.runner import WorkerRunner

from apps.voice.config import S2S_GREETING_INSTRUCTION, VoiceConfig
from apps.voice.flow import GraphRuntime
from apps.voice.http_tools import pre_call_fetch, trimmed
from apps.voice.pipeline import build_pipeline, build_s2s_pipeline, listens_to_caller_audio
from apps.voice.processors.clips import ClipFrame, ClipPlayer, clip_prompt, clips_from_config
from apps.voice.processors.end_phrases import EndPhraseDetector
from apps.voice.processors.s2s_output_gate import S2SOutputGate
from apps.voice.processors.watchdog import ProviderWatchdog
from apps.voice.telemetry import CallTelemetry, CallTraceSettings
from apps.voice.tools import register_tools, tools_schema
from apps.voice.trace import CallTracer
from apps.voice.transport import MediaStreamTransport
from apps.voice.voicemail import VoicemailDetector, classify_with_llm

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
VOICEMAIL = "voicemail"  # an answering machine took the call (apps.voice.voicemail)
# While voicemail detection listens, how often the carrier's verdict is read from the record.
CARRIER_VERDICT_POLL_SECS = 1.0

# A pre-call fetch or tool call still running after this long plays the hold clip ("One moment").
HOLD_AFTER_SECS = 0.3


def _key_cannot_serve(report) -> bool:
    """A vendor error report (apps.providers.vendor_errors) after which the stage's key will not
    serve this call: throttled, or refused by the vendor itself (401/403/400, not our own bug)."""
    outcome = getattr(report, "outcome", None)
    return outcome == "rate_limited" or (outcome == "terminal" and getattr(report, "status_code", None) is not None)


# After these the carrier leg is still up and we must hang it up ourselves.
_WE_HANG_UP = {AGENT_HANGUP, END_PHRASE, IDLE_TIMEOUT, MAX_DURATION, PROVIDER_ERROR, VOICEMAIL}


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

    # Optional (outbound voicemail detection): record who answered ("human" / "machine" / "unknown"),
    # and read the carrier's answering-machine verdict so far ("" while it has none).
    async def on_answered_by(self, answered_by: str) -> None: ...

    async def carrier_answered_by(self) -> str: ...

    # Optional: the client's knowledge base search (the `search_knowledge_base` tool);
    # {"passages": [{"source", "position", "page", "score", "text", "chunk_id"}]}.
    async def search_knowledge(self, *, query: str) -> dict: ...


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
        stt=None,
        llm=None,
        tts=None,
        hooks: CallHooks,
        key_ids: dict[str, str | None] | None = None,
        llm_standby=None,
        llm_standby_key: str | None = None,
        s2s=None,
        lines_tts=None,
        trace: CallTraceSettings | None = None,
    ):
        """`key_ids`: the provider key ref each stage ("stt"/"llm"/"tts") was built with,
        so a vendor error can be reported against the key that failed. `llm_standby`: the
        same LLM built with another key (`llm_standby_key`): when the vendor throttles the
        call's key, Pipecat's LLMSwitcher moves the call to it and the turn is asked again.
        `s2s` (instead of stt, llm and tts): a speech-to-speech service that hears and speaks
        (key_ids["speech_to_speech"]); `lines_tts` speaks the fixed lines (goodbye, fallback).
        `trace`: where this call's spans go (apps.voice.telemetry); None: not traced."""
        self.config = config
        self.transport = transport
        self.hooks = hooks
        self._s2s = s2s
        if s2s is not None:
            llm, tts = s2s, lines_tts  # the model stands where the LLM does: tools, context, errors
            self._stage_of = {id(s2s): "speech_to_speech"}
        else:
            self._stage_of = {id(stt): "stt", id(llm): "llm", id(tts): "tts"}
        if llm_standby is not None:
            self._stage_of[id(llm_standby)] = "llm"
        self._key_ids = dict(key_ids or {})
        self._llm_standby, self._llm_standby_key = llm_standby, llm_standby_key
        llm_names = (llm.name,) if llm_standby is None else (llm.name, llm_standby.name)
        # Spans (call → turn → stt/llm/tts/tool) only when the call has somewhere to send them.
        self.telemetry = CallTelemetry(trace) if trace is not None and trace.destinations else None
        # Hooks that show the call live (a browser test call) see each turn as it changes.
        self.tracer = CallTracer(on_turn=self._on_turn, llm_name=llm_names, tts_name=tts.name,
                                 s2s_name=s2s.name if s2s is not None else "",
                                 speech_stop_secs=config.vad_stop_secs if s2s is not None else 0.0,
                                 on_live=getattr(hooks, "on_live", None), telemetry=self.telemetry)
        self._end_reason: str | None = None
        self._error = ""
        self._transfer_to = ""
        self._hang_up_anyway = False
        # Idle timer (instead of Pipecat's idle observer, which sees every frame pushed).
        self._idle_timer: asyncio.TimerHandle | None = None
        self._interruptions_allowed = config.allow_interruptions
        self._uninterruptible_until = 0.0
        self._restore_timer: asyncio.TimerHandle | None = None

        # Pre-recorded clips: the LLM writes [[clip:name]]; greeting, hold and transition clips.
        self.clips = ClipPlayer(clips=clips_from_config(config.clips), sample_rate=config.sample_rate,
                                on_play=self._clip_played,
                                on_unknown=lambda name: self.tracer.record_error(f"clip: no clip named {name!r}"))
        self._clip_prompt = clip_prompt(self.clips.clips)

        # The workflow graph (None: a plain prompt, e.g. the runtime tests' VoiceConfig).
        self.graph = GraphRuntime(
            graph=config.graph, http_tools=config.http_tools, variables=config.variables, time_zone=config.time_zone,
            transfer_number=config.transfer_number, mcp_servers=config.mcp_servers, goodbye_line=config.goodbye_line,
            transfer_line=config.transfer_line, record_tool_call=self.tracer.record_tool_call,
            on_node=self._entered_node, on_end=lambda line: self.end(AGENT_HANGUP, say=line),
            on_transfer=lambda number, line: self._transfer(number, line=line),
            on_hold=self._hold, play_clip=self._play_clip,
            search_knowledge=self._knowledge_search(),
        ) if config.graph else None
        self.flow_manager = None
        if self.graph is not None:
            self.tracer.set_node(self.graph.start.get("id", ""))
        messages = [{"role": "system", "content": self._with_clips(config.system_prompt)}]
        uses_flows = self.graph is not None and self.graph.uses_flows
        # With Flows each node sets the tools; otherwise the start node's (or the config's) are fixed.
        schema = None if uses_flows else tools_schema(config, extra=self._http_schemas())
        context = LLMContext(messages, tools=schema) if schema else LLMContext(messages)
        self._context = context
        self._llms = (llm,) if llm_standby is None else (llm, llm_standby)
        for service in (llm,) if llm_standby is None else (llm, llm_standby):
            if uses_flows:
                continue
            register_tools(
                service,
                config,
                on_end_call=lambda reason: self.end(AGENT_HANGUP, say=config.goodbye_line),
                on_transfer=self._transfer,
                record=self.tracer.record_tool_call,
                on_search=self._knowledge_search(),
            )
            for function in self._http_schemas():
                service.register_function(function.name, self._http_tool_function)
        # Outbound voicemail detection: the callee's first words (and the carrier's verdict).
        self.voicemail = VoicemailDetector(
            listen_secs=config.voicemail_listen_secs, quiet_secs=config.voicemail_quiet_secs,
            on_verdict=self._on_voicemail_verdict, on_greeting_over=self._leave_voicemail,
            second_opinion=(lambda text: classify_with_llm(llm, text)) if config.voicemail_llm else None,
        ) if config.voicemail_detection else None
        self._carrier_poll: asyncio.Task | None = None
        # The transport records and reports sent agent audio itself (no processors for either).
        transport.on_audio_sent(self.tracer.agent_audio_sent)
        # Unless the turn strategies listen to it (Smart Turn, barge-in by words),
        # nothing after STT needs caller audio: stop it there rather than carry every
        # 40 ms frame further. (Pipecat only takes this at construction; the registry
        # builds the service.)
        if hasattr(stt, "_audio_passthrough"):
            stt._audio_passthrough = listens_to_caller_audio(config)
        # One LLM, or Pipecat's switcher over it and its standby (another key of the same vendor).
        llm_stage = llm if llm_standby is None else LLMSwitcher(llms=[llm, llm_standby])
        # An end-call phrase: the goodbye line and hang up. A speech-to-speech model heard it too (the
        # words go on, for the trace) and answers it: its answer is shut out by the gate.
        end_phrases = EndPhraseDetector(
            phrases=config.end_call_phrases,
            on_phrase=(self._s2s_end_phrase if s2s is not None
                       else lambda phrase: self.end(END_PHRASE, say=config.goodbye_line)),
            consume=s2s is None,
        )
        self._s2s_gate = S2SOutputGate() if s2s is not None else None
        pipeline = build_s2s_pipeline(
            config=config, transport=transport, s2s=s2s, lines_tts=lines_tts, context=context, tracer=self.tracer,
            end_phrases=end_phrases, gate=self._s2s_gate,
        ) if s2s is not None else build_pipeline(
            config=config,
            transport=transport,
            stt=stt,
            llm=llm_stage,
            tts=tts,
            context=context,
            tracer=self.tracer,
            end_phrases=end_phrases,
            watchdog=ProviderWatchdog(timeout_secs=config.provider_timeout_secs, on_timeout=self._provider_failed),
            clips=self.clips,
            voicemail=self.voicemail,
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
            # Pipecat's service spans (stt/llm/tts); the call and turn spans are ours (apps.voice.telemetry).
            enable_tracing=self.telemetry is not None,
            conversation_id=trace.attributes.get("call.id") if self.telemetry is not None else None,
        )
        if self.telemetry is not None:
            # The worker makes a TracingContext only for its own turn observer, which counts turns
            # unlike our Turn rows; hand it ours (pinned by apps/voice/tests/test_telemetry.py).
            self.worker._tracing_context = self.telemetry.tracing_context
        self.worker.add_event_handler("on_pipeline_started", self._on_started)
        self.worker.add_event_handler("on_pipeline_error", self._on_error)
        self._aggregators = _AggregatorPair(pipeline)
        if uses_flows:
            from pipecat.flows import FlowManager

            self.flow_manager = FlowManager(llm=llm_stage, context_aggregator=self._aggregators, worker=self.worker)
        self._max_duration_timer: asyncio.TimerHandle | None = None
        self._heartbeat_timer: asyncio.TimerHandle | None = None

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> CallOutcome:
        if self.telemetry is not None:
            self.telemetry.start()
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(self.worker)
        try:
            await runner.run()
        finally:
            for timer in (self._max_duration_timer, self._idle_timer, self._heartbeat_timer, self._restore_timer):
                if timer is not None:
                    timer.cancel()
            if self._carrier_poll is not None:
                self._carrier_poll.cancel()
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
        if self.voicemail is not None and hasattr(self.hooks, "carrier_answered_by"):
            self._carrier_poll = loop.create_task(self._poll_carrier_verdict())
        if self.graph is not None:
            try:
                await self._start_graph(worker)
            except Exception as error:  # noqa: BLE001 - a graph the runtime cannot start: the fallback line, not silence
                logger.exception("the workflow could not start")
                await self._provider_failed(f"workflow: could not start: {error}")
        elif self._s2s is not None:
            await self._start_s2s(self.config.system_prompt, self.config.greeting)
        elif self.config.greeting:
            await worker.queue_frame(TTSSpeakFrame(self.config.greeting))

    async def _start_s2s(self, prompt: str, greeting: str) -> None:
        """A speech-to-speech model speaks first, in its own voice: the greeting is an instruction,
        and the first run sends it the context (prompt and tools)."""
        if greeting:
            prompt = f"{prompt}\n\n{S2S_GREETING_INSTRUCTION.format(greeting=greeting)}"
        self._context.set_messages([{"role": "system", "content": prompt}])
        await self.worker.queue_frame(LLMRunFrame())

    async def _s2s_end_phrase(self, phrase: str) -> None:
        """The caller said an end-call phrase to a speech-to-speech model, which heard it too and
        answers: its answer is dropped (and what the carrier queued of it cleared), the goodbye
        line plays, the call ends."""
        if self._end_reason is not None or self._s2s_gate is None:
            return
        self._s2s_gate.close()
        await self.worker.queue_frame(InterruptionFrame())
        await self.end(END_PHRASE, say=self.config.goodbye_line)

    async def _start_graph(self, worker) -> None:
        """Pre-call fetch (time-boxed, the caller hears silence), then the rendered prompt and
        greeting, then the start node."""
        graph = self.graph
        start = graph.start
        self._entered_node(start.get("id", ""))
        fetch = start.get("pre_call_fetch")
        # The MCP servers list their tools while the pre-call fetch runs.
        mcp = asyncio.get_running_loop().create_task(graph.connect_mcp()) if graph.mcp else None
        if fetch:
            variables = graph.variables
            payload = {"caller_number": variables.get("caller", {}).get("number", ""),
                       "called_number": variables.get("call", {}).get(
                           "to_number" if variables.get("call", {}).get("direction") == "inbound" else "from_number", ""),
                       "direction": variables.get("call", {}).get("direction", "")}
            if variables.get("contact"):  # a campaign call: the contact's columns too
                payload["contact"] = variables["contact"]
            outcome = await self._hold_while(pre_call_fetch(fetch, payload, session=await graph.http_session()))
            from apps.voice.variables import merge_fetched

            graph.variables = merge_fetched(graph.variables, outcome.result["variables"])
            self.tracer.record_tool_call(name="pre_call_fetch", arguments=payload,
                                         result=trimmed({"status": outcome.status, "data": outcome.result["variables"]}),
                                         duration_secs=outcome.duration_secs, error=outcome.error)
        if mcp is not None:
            await mcp
            mcp_tools = [] if graph.uses_flows else graph.mcp_function_schemas(start.get("tools") or [])
            if mcp_tools:
                tools = self._context.tools
                existing = list(tools.standard_tools) if isinstance(tools, ToolsSchema) else []
                self._context.set_tools(ToolsSchema(standard_tools=existing + mcp_tools))
                for service in self._llms:
                    for tool in mcp_tools:
                        service.register_function(tool.name, self._mcp_tool_function)
        prompt = graph.global_prompt
        if not graph.uses_flows and start.get("prompt"):
            prompt = f"{prompt}\n\n{start['prompt']}" if prompt else start["prompt"]
        self._context.set_messages([{"role": "system",
                                     "content": self._with_clips(graph.render(prompt or self.config.system_prompt))}])
        greeting = graph.render(start.get("greeting") or "")
        greeting_clip = start.get("greeting_clip") or ""
        if self._s2s is not None:
            await self._start_s2s(graph.render(prompt or self.config.system_prompt), greeting)
        elif greeting_clip and greeting_clip in self.clips.clips:
            await worker.queue_frame(ClipFrame(clip_name=greeting_clip))
        elif greeting:
            await worker.queue_frame(TTSSpeakFrame(greeting))
        if self.flow_manager is not None:
            graph.set_state(self.flow_manager.state)
            # The caller speaks first after the greeting: the start node waits for them.
            await self.flow_manager.initialize(graph.node_config(start, respond=False))

    def _entered_node(self, node_id: str) -> None:
        self.tracer.set_node(node_id)
        node = self.graph.nodes.get(node_id, {}) if self.graph is not None else {}
        self._interruptions_allowed = bool(node.get("allow_interruptions", self.config.allow_interruptions))
        if time.monotonic() >= self._uninterruptible_until:
            self._set_interruptions(self._interruptions_allowed)

    # -- clips ---------------------------------------------------------------------------------

    def _with_clips(self, prompt: str) -> str:
        return f"{prompt}\n\n{self._clip_prompt}" if self._clip_prompt else prompt

    def _clip_played(self, clip, source: str) -> None:
        """Trace and meter the play; an uninterruptible clip turns barge-in off while it plays."""
        self.tracer.record_clip(clip.name, source)
        if clip.interruptible:
            return
        now = time.monotonic()
        # It plays after whatever is queued before it: count from the later of now and the last such clip.
        self._uninterruptible_until = max(now, self._uninterruptible_until) + clip.duration_secs(self.config.sample_rate)
        self._set_interruptions(False)
        if self._restore_timer is not None:
            self._restore_timer.cancel()
        loop = asyncio.get_running_loop()
        self._restore_timer = loop.call_later(self._uninterruptible_until - now + 0.2, self._restore_interruptions)

    def _restore_interruptions(self) -> None:
        self._restore_timer = None
        self._set_interruptions(self._interruptions_allowed)

    def _hold_clip(self) -> str:
        """The start node's hold clip, else the first clip tagged `hold` ("" if none)."""
        named = (self.graph.start.get("hold_clip") if self.graph is not None else "") or ""
        if named in self.clips.clips:
            return named
        return next((clip.name for clip in self.clips.clips.values() if "hold" in clip.tags), "")

    async def _hold(self) -> None:
        """A pre-call fetch or tool call is taking a moment: the caller hears the hold clip."""
        name = self._hold_clip()
        if name:
            await self.clips.play(name, source="hold")

    async def _hold_while(self, awaitable):
        """Await `awaitable`; if it is still running after HOLD_AFTER_SECS, play the hold clip meanwhile."""
        task = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait({task}, timeout=HOLD_AFTER_SECS)
        if not done:
            await self._hold()
        return await task

    async def _play_clip(self, name: str, source: str) -> bool:
        return await self.clips.play(name, source=source)

    def _set_interruptions(self, allowed: bool) -> None:
        """A node's own interruption setting: flips `enable_interruptions` on the caller's turn-start
        strategies, whichever build_pipeline chose (Pipecat reads it at each turn start; pinned by
        apps/voice/tests/test_workflow.py's barge-in tests)."""
        controller = getattr(self._aggregators.user(), "_user_turn_controller", None)
        strategies = getattr(controller, "_user_turn_strategies", None)
        for strategy in getattr(strategies, "start", None) or []:
            if hasattr(strategy, "_enable_interruptions"):
                strategy._enable_interruptions = bool(allowed)

    def _http_schemas(self):
        if self.graph is None or self.graph.uses_flows:
            return []
        return self.graph.http_function_schemas(self.graph.start.get("tools") or self.config.tools)

    async def _mcp_tool_function(self, params) -> None:
        result = await self.graph.run_mcp_tool(params.function_name, dict(params.arguments))
        await params.result_callback(result)

    async def _http_tool_function(self, params) -> None:
        result = await self.graph.run_http_tool(params.function_name, dict(params.arguments))
        await params.result_callback(result)

    def _knowledge_search(self):
        """search(query) through the hooks (the client's schema, off the event loop), or None."""
        search = getattr(self.hooks, "search_knowledge", None)
        if search is None:
            return None

        async def run(query: str) -> dict:
            return await search(query=query)

        return run

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
        elif stage == "speech_to_speech":
            # A realtime session does not survive its errors (Pipecat stops reading the socket): the
            # fallback line now, whatever the error (its key was cooled down above if throttled).
            await self._provider_failed(f"speech_to_speech: {frame.error}")
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

    async def _transfer(self, to_number: str, *, line: str = "") -> None:
        self._transfer_to = to_number
        await self.end(TRANSFERRED, say=line or self.config.transfer_line)

    # -- voicemail (outbound) ----------------------------------------------------------------

    async def _poll_carrier_verdict(self) -> None:
        """While the detector has no verdict, read the carrier's answering-machine result
        (its status webhook writes it to the record) off the audio path, once a second."""
        deadline = time.monotonic() + max(self.config.voicemail_listen_secs * 4, 30.0)
        while time.monotonic() < deadline and self.voicemail.verdict is None and self._end_reason is None:
            await asyncio.sleep(CARRIER_VERDICT_POLL_SECS)
            verdict = await self._call_hook(self.hooks.carrier_answered_by())
            if verdict == "machine":
                await self.voicemail.machine_detected("carrier")
            elif verdict == "human":
                return  # the transcript may still tell a mailbox the carrier took for a person

    async def _on_voicemail_verdict(self, verdict: str, source: str) -> None:
        if source == "transcript" and hasattr(self.hooks, "on_answered_by"):
            await self._call_hook(self.hooks.on_answered_by(verdict))
        if verdict != "machine" or self._end_reason is not None:
            return
        logger.info("voicemail: an answering machine picked up (%s); waiting for its greeting to end", source)
        # Stop the agent mid-sentence (and any reply being written): a recording is not listening.
        await self.worker.queue_frame(InterruptionFrame())

    async def _leave_voicemail(self) -> None:
        """The machine's greeting (and its beep) is over: the message, then hang up."""
        message = self.config.voicemail_message
        if message and self.graph is not None:
            message = self.graph.render(message)
        await self.end(VOICEMAIL, say=message)

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
        if self.telemetry is not None:
            self.telemetry.finish(end_reason=end_reason, error=self._error)
        if self.graph is not None:
            await self.graph.close()
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


class _AggregatorPair:
    """What FlowManager asks of a context aggregator pair, found in the built pipeline
    (build_pipeline makes the pair; the session does not reach into how)."""

    def __init__(self, pipeline):
        self._user = next(p for p in pipeline.processors if isinstance(p, LLMUserAggregator))
        self._assistant = next(p for p in pipeline.processors if isinstance(p, LLMAssistantAggregator))

    def user(self):
        return self._user

    def assistant(self):
        return self._assistant


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
