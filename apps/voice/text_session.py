"""An agent run as text, turn by turn: the voice runtime's conversation half without
audio, for test personas and call replays (apps.quality).

Same parts as a call (`apps.voice.session.CallSession`): the agent's LLM service built by
the provider registry, the same LLMContext and context aggregators, the workflow graph
run by `GraphRuntime` on Pipecat Flows (node changes, extracted variables, HTTP and MCP
tools, end and transfer nodes), the built-in `end_call` / `transfer_to_human` tools and the
agent's end-call phrases. What differs: the caller's words arrive as text (no VAD, STT or
turn taking) and what the agent would say is written down instead of spoken (no TTS, no
carrier). So the prompt, the graph and the tools behave as in a call; timing does not.

No Django here: the caller of `TextSession` builds the LLM service and the config.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    LLMAssistantPushAggregationFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMTextFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from apps.voice.config import VoiceConfig
from apps.voice.flow import GraphRuntime
from apps.voice.session import AGENT_HANGUP, END_PHRASE, TRANSFERRED
from apps.voice.tools import register_tools, tools_schema

logger = logging.getLogger(__name__)

# How long the agent's side must stay quiet (no response, no tool call running) before its
# turn counts as finished: a tool result or a node change starts another response at once.
SETTLE_SECS = 0.25


@dataclass
class AgentTurn:
    """What the agent did after one caller line (or at the start: the greeting)."""

    text: str = ""
    node: str = ""
    tool_calls: list[dict] = field(default_factory=list)
    first_text_ms: int | None = None  # caller line sent → the agent's first words (LLM or a spoken line)
    ended: bool = False
    end_reason: str = ""
    error: str = ""

    def as_dict(self) -> dict:
        return {"text": self.text, "node": self.node, "tool_calls": self.tool_calls,
                "first_text_ms": self.first_text_ms, "ended": self.ended, "end_reason": self.end_reason,
                "error": self.error}


class _Speaker(FrameProcessor):
    """Stands where TTS and the carrier stand in a call: writes down what the agent says
    (the LLM's words and the lines it is given: greeting, transition, goodbye) and hands the
    lines to the assistant aggregator as a TTS would, so the context reads as in a call."""

    def __init__(self, session: TextSession):
        super().__init__(name="text-speaker")
        self._session = session

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        session = self._session
        session.last_frame_at = time.monotonic()
        if isinstance(frame, TTSSpeakFrame):
            session.heard(frame.text)
            await self.push_frame(TTSStartedFrame(append_to_context=frame.append_to_context), direction)
            spoken = TTSTextFrame(text=frame.text, text_type="sentence")
            spoken.append_to_context = frame.append_to_context
            await self.push_frame(spoken, direction)
            await self.push_frame(TTSStoppedFrame(), direction)
            await self.push_frame(LLMAssistantPushAggregationFrame(), direction)
            return
        if isinstance(frame, LLMTextFrame):
            session.heard(frame.text, streamed=True)
        elif isinstance(frame, LLMFullResponseStartFrame):
            session.responding += 1
        elif isinstance(frame, LLMFullResponseEndFrame):
            session.responding = max(0, session.responding - 1)
            session.heard_break()
        elif isinstance(frame, FunctionCallInProgressFrame):
            session.tools_running.add(frame.tool_call_id)
        elif isinstance(frame, FunctionCallResultFrame):
            session.tools_running.discard(frame.tool_call_id)
        await self.push_frame(frame, direction)


class TextSession:
    """`await start()` (the greeting), then `await say(text)` per caller line, then `await close()`."""

    def __init__(self, *, config: VoiceConfig, llm, turn_timeout_secs: float = 30.0):
        self.config = config
        self.turn_timeout_secs = turn_timeout_secs
        self.responding = 0
        self.tools_running: set[str] = set()
        self.last_frame_at = time.monotonic()
        self.end_reason = ""
        self.transferred_to = ""
        self.error = ""
        self._turn = AgentTurn()
        self._turn_started = time.monotonic()
        self._pieces: list[str] = []
        self._node = ""
        self._ended = asyncio.Event()
        self._runner_task: asyncio.Task | None = None

        self.graph = GraphRuntime(
            graph=config.graph, http_tools=config.http_tools, variables=config.variables, time_zone=config.time_zone,
            transfer_number=config.transfer_number, mcp_servers=config.mcp_servers, goodbye_line=config.goodbye_line,
            transfer_line=config.transfer_line, record_tool_call=self._record_tool_call,
            on_node=self._entered_node, on_end=lambda line: self.end(AGENT_HANGUP, say=line),
            on_transfer=lambda number, line: self._transfer(number, line=line),
        ) if config.graph else None
        if self.graph is not None:
            self._node = self.graph.start.get("id", "")
        uses_flows = self.graph is not None and self.graph.uses_flows
        schema = None if uses_flows else tools_schema(config, extra=self._http_schemas())
        messages = [{"role": "system", "content": config.system_prompt}]
        self._context = LLMContext(messages, tools=schema) if schema else LLMContext(messages)
        if not uses_flows:
            register_tools(llm, config, on_end_call=lambda reason: self.end(AGENT_HANGUP, say=config.goodbye_line),
                           on_transfer=self._transfer, record=self._record_tool_call)
            for function in self._http_schemas():
                llm.register_function(function.name, self._http_tool_function)
        self._llm = llm
        self._aggregators = LLMContextAggregatorPair(self._context)
        pipeline = Pipeline([
            self._aggregators.user(),  # the caller's line into the context, then the LLM runs
            llm,  # the reply, streamed, and tool calls (built-ins, HTTP, MCP, the graph's edges)
            _Speaker(self),  # instead of TTS and the carrier: what the agent says, written down
            self._aggregators.assistant(),  # what the agent said into the context
        ])
        self.worker = PipelineWorker(
            pipeline, params=PipelineParams(), enable_rtvi=False, enable_turn_tracking=False,
            check_dangling_tasks=False, idle_timeout_secs=None,
        )
        self.worker.add_event_handler("on_pipeline_error", self._on_error)
        self.flow_manager = None
        if uses_flows:
            from pipecat.flows import FlowManager

            self.flow_manager = FlowManager(llm=llm, context_aggregator=self._aggregators, worker=self.worker)

    # -- the conversation ----------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return bool(self.end_reason)

    @property
    def variables(self) -> dict:
        return dict(self.graph.variables) if self.graph is not None else {}

    async def start(self) -> AgentTurn:
        """Start the pipeline; the agent's opening (greeting) is the first turn."""
        started = asyncio.Event()
        self.worker.add_event_handler("on_pipeline_started", lambda *args: started.set())
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(self.worker)
        self._runner_task = asyncio.get_running_loop().create_task(runner.run())
        await asyncio.wait_for(started.wait(), 10)
        self._begin_turn()
        if self.graph is not None:
            await self._start_graph()
        elif self.config.greeting:
            await self.worker.queue_frame(TTSSpeakFrame(self.config.greeting))
        return await self._finish_turn()

    async def say(self, text: str) -> AgentTurn:
        """One caller line; returns once the agent has answered (tools and node changes included)."""
        if self.ended:
            return AgentTurn(node=self._node, ended=True, end_reason=self.end_reason)
        self._begin_turn()
        lowered = text.lower()
        phrase = next((p for p in self.config.end_call_phrases if p.strip() and p.lower() in lowered), None)
        if phrase is not None:  # as EndPhraseDetector: the LLM never sees it
            await self.end(END_PHRASE, say=self.config.goodbye_line)
        else:
            await self.worker.queue_frame(
                LLMMessagesAppendFrame(messages=[{"role": "user", "content": text}], run_llm=True))
        return await self._finish_turn()

    async def end(self, end_reason: str, *, say: str = "") -> None:
        if self.end_reason:
            return
        self.end_reason = end_reason
        if say:
            await self.worker.queue_frame(TTSSpeakFrame(say))

    async def close(self) -> None:
        if self._runner_task is None:
            return
        try:
            await self.worker.queue_frame(EndFrame())
            await asyncio.wait_for(self._runner_task, 10)
        except Exception:  # noqa: BLE001 - a stuck pipeline is cancelled instead
            await self.worker.cancel()
        finally:
            if self.graph is not None:
                await self.graph.close()
            self._runner_task = None

    # -- turn bookkeeping -------------------------------------------------------------------------

    def _begin_turn(self) -> None:
        self._turn = AgentTurn(node=self._node)
        self._pieces = []
        self._turn_started = time.monotonic()
        self.last_frame_at = time.monotonic()

    async def _finish_turn(self) -> AgentTurn:
        deadline = time.monotonic() + self.turn_timeout_secs
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            quiet = not self.responding and not self.tools_running and now - self.last_frame_at >= SETTLE_SECS
            if quiet and (self._pieces or self.ended or now - self._turn_started >= SETTLE_SECS * 4):
                break
            if now >= deadline:
                self._turn.error = f"the agent did not finish its turn within {self.turn_timeout_secs:g} s"
                break
        turn = self._turn
        turn.text = " ".join(" ".join(self._pieces).split())
        turn.node = self._node
        turn.ended, turn.end_reason = self.ended, self.end_reason
        if self.error and not turn.error:
            turn.error = self.error
        return turn

    def heard(self, text: str, *, streamed: bool = False) -> None:
        if self._turn.first_text_ms is None and text.strip():
            self._turn.first_text_ms = int((time.monotonic() - self._turn_started) * 1000)
        if streamed and self._pieces and not self._pieces[-1].endswith("\n"):
            self._pieces[-1] += text
        else:
            self._pieces.append(text + ("" if streamed else "\n"))

    def heard_break(self) -> None:
        if self._pieces and not self._pieces[-1].endswith("\n"):
            self._pieces[-1] += "\n"

    def _record_tool_call(self, *, name: str, arguments: dict, result, duration_secs: float, error: str = "") -> None:
        self._turn.tool_calls.append({"name": name, "arguments": dict(arguments or {}), "result": result,
                                      "duration_ms": int(duration_secs * 1000), "error": error or ""})

    def _entered_node(self, node_id: str) -> None:
        self._node = node_id

    async def _transfer(self, to_number: str, *, line: str = "") -> None:
        self.transferred_to = to_number
        await self.end(TRANSFERRED, say=line or self.config.transfer_line)

    async def _on_error(self, worker, frame) -> None:
        self.error = str(frame.error)

    # -- as CallSession does -----------------------------------------------------------------------

    def _http_schemas(self):
        if self.graph is None or self.graph.uses_flows:
            return []
        return self.graph.http_function_schemas(self.graph.start.get("tools") or self.config.tools)

    async def _http_tool_function(self, params) -> None:
        result = await self.graph.run_http_tool(params.function_name, dict(params.arguments))
        await params.result_callback(result)

    async def _mcp_tool_function(self, params) -> None:
        result = await self.graph.run_mcp_tool(params.function_name, dict(params.arguments))
        await params.result_callback(result)

    async def _start_graph(self) -> None:
        """As CallSession._start_graph, less the pre-call fetch's payload of a real caller: the
        prompt and greeting rendered from the variables, then the start node."""
        graph = self.graph
        start = graph.start
        if graph.mcp:
            await graph.connect_mcp()
            mcp_tools = [] if graph.uses_flows else graph.mcp_function_schemas(start.get("tools") or [])
            if mcp_tools:
                tools = self._context.tools
                existing = list(tools.standard_tools) if isinstance(tools, ToolsSchema) else []
                self._context.set_tools(ToolsSchema(standard_tools=existing + mcp_tools))
                for tool in mcp_tools:
                    self._llm.register_function(tool.name, self._mcp_tool_function)
        prompt = graph.global_prompt
        if not graph.uses_flows and start.get("prompt"):
            prompt = f"{prompt}\n\n{start['prompt']}" if prompt else start["prompt"]
        self._context.set_messages([{"role": "system", "content": graph.render(prompt or self.config.system_prompt)}])
        greeting = graph.render(start.get("greeting") or "")
        if greeting:
            await self.worker.queue_frame(TTSSpeakFrame(greeting))
        if self.flow_manager is not None:
            graph.set_state(self.flow_manager.state)
            await self.flow_manager.initialize(graph.node_config(start, respond=False))
