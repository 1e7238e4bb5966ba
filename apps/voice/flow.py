"""An agent's workflow graph (apps/agents/graph.schema.json) run by Pipecat Flows.

Each start/conversation node becomes a `NodeConfig`: its prompt as a task message (the
global node's prompt stays the context's system message), its tools (built-ins and the
client's HTTP tools) and one function per outgoing edge, described by the edge's
condition. Taking an edge stores the variables the node extracts (the function's
arguments) in the flow state, says the transition line and enters the next node; an
edge into an end node says its line and hangs up, into a transfer node says its line
and transfers. The prompts' `{{variables}}` are rendered from the flow state by Flows
itself each time a node is entered.

No Django here: the session hands in the graph, the tools and callbacks."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.flows import NO_RESPONSE, FlowsFunctionSchema, NodeConfig

from apps.agents.graph import (
    BUILTIN_TOOLS,
    MCP_PREFIX,
    NODE_END,
    NODE_GLOBAL,
    NODE_START,
    NODE_TRANSFER,
    TOOL_END_CALL,
    TOOL_KNOWLEDGE,
    TOOL_TRANSFER,
    declared_variables,
    edge_function_name,
)
from apps.voice.http_tools import http_tool_call, trimmed
from apps.voice.knowledge_tool import DESCRIPTION as KNOWLEDGE_DESCRIPTION
from apps.voice.knowledge_tool import PROPERTIES as KNOWLEDGE_PROPERTIES
from apps.voice.knowledge_tool import SEARCH_TIMEOUT_SECS, Search, knowledge_search_run
from apps.voice.mcp_tools import McpSource
from apps.voice.variables import now_text, render, with_defaults

EndCallback = Callable[[str], Awaitable[None]]  # the line to say, then hang up
TransferCallback = Callable[[str, str], Awaitable[None]]  # number, line


class GraphRuntime:
    """One call's view of its graph. `variables` is the call's state: with Flows it is the
    FlowManager's `state` (assign `flow_state` once the manager exists)."""

    def __init__(self, *, graph: dict, http_tools: tuple[dict, ...], variables: dict, time_zone: str,
                 transfer_number: str, mcp_servers: tuple[dict, ...] = (), goodbye_line: str, transfer_line: str, record_tool_call: Callable[..., None],
                 on_node: Callable[[str], None], on_end: EndCallback, on_transfer: TransferCallback,
                 on_hold: Callable[[], Awaitable[None]] | None = None,
                 play_clip: Callable[[str, str], Awaitable[bool]] | None = None,
                 search_knowledge: Search | None = None):
        """`on_hold()`: a tool call is still running after `hold_after_secs` (the session plays the
        hold clip). `play_clip(name, source)`: play a clip (edges' transition clips); False if none."""
        self.graph = graph or {}
        self.nodes = {node["id"]: node for node in self.graph.get("nodes") or []}
        self.edges = list(self.graph.get("edges") or [])
        self.http_tools = {tool["name"]: tool for tool in http_tools}
        used = {tool[len(MCP_PREFIX):] for node in self.nodes.values() for tool in node.get("tools") or []
                if tool.startswith(MCP_PREFIX)}
        self.mcp = {server["name"]: McpSource(server) for server in mcp_servers if server["name"] in used}
        self._mcp_tool_source: dict[str, McpSource] = {}
        self.time_zone = time_zone
        self.transfer_number = transfer_number
        self.goodbye_line, self.transfer_line = goodbye_line, transfer_line
        self._record = record_tool_call
        self._on_node, self._on_end, self._on_transfer = on_node, on_end, on_transfer
        self._on_hold, self._play_clip = on_hold, play_clip
        self.hold_after_secs = 0.3
        self._search_knowledge = search_knowledge
        self.variables = with_defaults(variables, sorted(declared_variables(self.graph)))
        self.variables["now"] = now_text(time_zone)
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- the graph -----------------------------------------------------------------------------

    @property
    def uses_flows(self) -> bool:
        """A graph with edges runs on Pipecat Flows; a single node is an ordinary context."""
        return bool(self.edges)

    @property
    def start(self) -> dict:
        return next((node for node in self.nodes.values() if node.get("type") == NODE_START), {})

    @property
    def global_prompt(self) -> str:
        node = next((node for node in self.nodes.values() if node.get("type") == NODE_GLOBAL), {})
        return node.get("prompt") or ""

    def render(self, text: str) -> str:
        self.variables["now"] = now_text(self.time_zone)
        return render(text, self.variables)

    def set_state(self, state: dict) -> None:
        """Hand the variables over to the FlowManager's state (Flows renders prompts from it)."""
        state.update(self.variables)
        self.variables = state

    # -- tools ---------------------------------------------------------------------------------

    async def http_session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def connect_mcp(self) -> None:
        """List the MCP servers' tools (concurrently, each time-boxed); traced per server."""
        outcomes = await asyncio.gather(*(source.connect() for source in self.mcp.values()))
        for source, outcome in zip(self.mcp.values(), outcomes, strict=True):
            self._record(name=f"{MCP_PREFIX}{source.name}", arguments={}, result=outcome.result,
                         duration_secs=outcome.duration_secs, error=outcome.error)
            for tool in source.tools:
                self._mcp_tool_source.setdefault(tool.name, source)

    def mcp_function_schemas(self, names) -> list[FunctionSchema]:
        return [tool for name in names if name.startswith(MCP_PREFIX) and name[len(MCP_PREFIX):] in self.mcp
                for tool in self.mcp[name[len(MCP_PREFIX):]].tools]

    async def run_mcp_tool(self, name: str, arguments: dict) -> dict:
        source = self._mcp_tool_source.get(name)
        if source is None:
            result = {"error": f"The tool {name} is not available."}
            self._record(name=name, arguments=arguments, result=result, duration_secs=0.0, error="not available")
            return result
        outcome = await self._held(source.call(name, arguments))
        self._record(name=name, arguments=arguments, result=outcome.result, duration_secs=outcome.duration_secs,
                     error=outcome.error)
        return outcome.result

    async def close(self) -> None:
        for source in self.mcp.values():
            await source.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def run_http_tool(self, name: str, arguments: dict) -> dict:
        """The LLM called an HTTP tool: the result it reads (errors included); traced."""
        tool = self.http_tools.get(name)
        if tool is None:
            result = {"error": f"The tool {name} is not available."}
            self._record(name=name, arguments=arguments, result=result, duration_secs=0.0, error="not available")
            return result
        self.variables["now"] = now_text(self.time_zone)
        outcome = await self._held(http_tool_call(tool, arguments, self.variables, session=await self.http_session()))
        self._record(name=name, arguments=arguments, result=trimmed(outcome.result), duration_secs=outcome.duration_secs,
                     error=outcome.error)
        return outcome.result

    async def _held(self, awaitable):
        """Await a tool call; if it runs longer than `hold_after_secs`, the caller hears the hold clip."""
        task = asyncio.ensure_future(awaitable)
        if self._on_hold is None:
            return await task
        done, _ = await asyncio.wait({task}, timeout=self.hold_after_secs)
        if not done:
            await self._on_hold()
        return await task

    def http_function_schemas(self, names) -> list[FunctionSchema]:
        return [FunctionSchema(name=name, description=self.http_tools[name]["description"],
                               properties=(self.http_tools[name].get("parameters") or {}).get("properties") or {},
                               required=(self.http_tools[name].get("parameters") or {}).get("required") or [])
                for name in names if name in self.http_tools]

    def _later(self, awaitable) -> None:
        task = asyncio.get_running_loop().create_task(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- Flows nodes ---------------------------------------------------------------------------

    def node_config(self, node: dict, *, transition_line: str = "", respond: bool = True) -> NodeConfig:
        config: NodeConfig = {
            "name": node["id"],
            "task_messages": [{"role": "system", "content": node["prompt"]}] if node.get("prompt") else [],
            "functions": self._functions(node),
            "respond_immediately": respond,
        }
        if transition_line:
            config["pre_actions"] = [{"type": "tts_say", "text": transition_line}]
        return config

    def _functions(self, node: dict) -> list[FlowsFunctionSchema]:
        # cancel_on_interruption=True everywhere: a function that survives a barge-in is an
        # "async tool" to Pipecat, which then adds a ~130-token system message to every request.
        functions = []
        for name in node.get("tools") or []:
            if name == TOOL_END_CALL:
                functions.append(FlowsFunctionSchema(
                    name=name, description="Say goodbye and hang up when the conversation is over.",
                    properties={"reason": {"type": "string", "description": "Why the call is ending."}}, required=[],
                    handler=self._builtin_handler(name), cancel_on_interruption=True))
            elif name == TOOL_TRANSFER and self.transfer_number:
                functions.append(FlowsFunctionSchema(
                    name=name, description="Transfer the caller to a human colleague when they ask for a person.",
                    properties={"reason": {"type": "string", "description": "Why the caller needs a person."}},
                    required=[], handler=self._builtin_handler(name), cancel_on_interruption=True))
            elif name == TOOL_KNOWLEDGE:
                functions.append(FlowsFunctionSchema(
                    name=name, description=KNOWLEDGE_DESCRIPTION, properties=dict(KNOWLEDGE_PROPERTIES),
                    required=["query"], handler=self._knowledge_handler, cancel_on_interruption=True,
                    timeout_secs=SEARCH_TIMEOUT_SECS + 2.0))
            elif name.startswith(MCP_PREFIX):
                for tool in self.mcp_function_schemas([name]):
                    functions.append(FlowsFunctionSchema(
                        name=tool.name, description=tool.description, properties=tool.properties,
                        required=tool.required, handler=self._mcp_handler(tool.name), cancel_on_interruption=True))
            elif name in self.http_tools:
                parameters = self.http_tools[name].get("parameters") or {}
                functions.append(FlowsFunctionSchema(
                    name=name, description=self.http_tools[name]["description"],
                    properties=parameters.get("properties") or {}, required=parameters.get("required") or [],
                    handler=self._http_handler(name), cancel_on_interruption=True,
                    # Pipecat's own limit only backs ours up (http_tool_call answers at its timeout).
                    timeout_secs=float(self.http_tools[name].get("timeout_secs") or 5.0) + 2.0))
        extract = {item["name"]: {"type": item.get("type") or "string", "description": item.get("description") or ""}
                   for item in node.get("extract") or []}
        for edge in self.edges:
            if edge.get("from") == node["id"] and edge.get("to") in self.nodes:
                functions.append(FlowsFunctionSchema(
                    name=edge_function_name(edge), description=edge.get("condition") or "",
                    properties=dict(extract), required=[], handler=self._edge_handler(edge),
                    cancel_on_interruption=True))
        return functions

    def _builtin_handler(self, name: str):
        async def handler(args, flow_manager):
            started = time.monotonic()
            if name == TOOL_END_CALL:
                result = {"status": "ending"}
                self._later(self._on_end(self.goodbye_line))
            else:
                result = {"status": "transferring", "to": self.transfer_number}
                self._later(self._on_transfer(self.transfer_number, self.transfer_line))
            self._record(name=name, arguments=dict(args), result=result, duration_secs=time.monotonic() - started)
            return result, NO_RESPONSE

        assert name in BUILTIN_TOOLS and name != TOOL_KNOWLEDGE
        return handler

    async def run_knowledge_search(self, arguments: dict) -> dict:
        """The LLM searched the knowledge base: the passages it reads (or an error); traced."""
        outcome = await knowledge_search_run(self._search_knowledge, arguments)
        self._record(name=TOOL_KNOWLEDGE, arguments=arguments, result=outcome.trace["record"],
                     duration_secs=outcome.duration_secs, error=outcome.error)
        return outcome.result

    async def _knowledge_handler(self, args, flow_manager):
        return await self.run_knowledge_search(dict(args))

    def _mcp_handler(self, name: str):
        async def handler(args, flow_manager):
            return await self.run_mcp_tool(name, dict(args))

        return handler

    def _http_handler(self, name: str):
        async def handler(args, flow_manager):
            return await self.run_http_tool(name, dict(args))

        return handler

    def _edge_handler(self, edge: dict):
        target = self.nodes[edge["to"]]

        async def handler(args, flow_manager):
            started = time.monotonic()
            extracted = {key: value for key, value in dict(args).items()}
            self.variables.update(extracted)
            self.variables["now"] = now_text(self.time_zone)
            result = {"status": "moved", "to": target["id"]}
            self._record(name=edge_function_name(edge), arguments=extracted, result=result,
                         duration_secs=time.monotonic() - started)
            self._on_node(target["id"])
            transition_line = edge.get("transition_line") or ""
            # A transition clip plays instead of the transition line (which stays its words).
            if edge.get("transition_clip") and self._play_clip is not None \
                    and await self._play_clip(edge["transition_clip"], "transition"):
                transition_line = ""
            line = " ".join(part for part in (transition_line, target.get("line")) if part)
            if target["type"] == NODE_END:
                self._later(self._on_end(render(line, self.variables) or self.goodbye_line))
                return result, NO_RESPONSE
            if target["type"] == NODE_TRANSFER:
                self._later(self._on_transfer(target["transfer_number"],
                                              render(line, self.variables) or self.transfer_line))
                return result, NO_RESPONSE
            return result, self.node_config(target, transition_line=transition_line)

        return handler
