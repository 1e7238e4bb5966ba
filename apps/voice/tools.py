"""LLM tools every agent can enable: `end_call`, `transfer_to_human` and
`search_knowledge_base` (apps.voice.knowledge_tool).

The handlers only decide; the carrier side (hang-up, `<Dial>` transfer) is done
by the session after the agent's last words have played, through the telephony
services, never through the serializer."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import FunctionCallResultProperties
from pipecat.services.llm_service import FunctionCallParams, LLMService

from apps.voice.config import TOOL_END_CALL, TOOL_KNOWLEDGE, TOOL_TRANSFER, VoiceConfig
from apps.voice.knowledge_tool import KNOWLEDGE_SCHEMA, Search, knowledge_search_run

END_CALL_SCHEMA = FunctionSchema(
    name=TOOL_END_CALL,
    description="Say goodbye and hang up when the conversation is over.",
    properties={"reason": {"type": "string", "description": "Why the call is ending."}},
    required=[],
)
TRANSFER_SCHEMA = FunctionSchema(
    name=TOOL_TRANSFER,
    description="Transfer the caller to a human colleague when they ask for a person.",
    properties={"reason": {"type": "string", "description": "Why the caller needs a person."}},
    required=[],
)


def tools_schema(config: VoiceConfig, *, extra: list[FunctionSchema] | None = None) -> ToolsSchema | None:
    """The built-in tools the config enables, plus `extra` (the start node's HTTP tools)."""
    schemas = []
    if TOOL_END_CALL in config.tools:
        schemas.append(END_CALL_SCHEMA)
    if TOOL_TRANSFER in config.tools and config.transfer_number:
        schemas.append(TRANSFER_SCHEMA)
    if TOOL_KNOWLEDGE in config.tools:
        schemas.append(KNOWLEDGE_SCHEMA)
    schemas.extend(extra or [])
    return ToolsSchema(standard_tools=schemas) if schemas else None


def register_tools(
    llm: LLMService,
    config: VoiceConfig,
    *,
    on_end_call: Callable[[str], Awaitable[None]],
    on_transfer: Callable[[str], Awaitable[None]],
    record: Callable[..., None],
    on_search: Search | None = None,
) -> None:
    """`record(name=, arguments=, result=, duration_secs=)` goes to the turn trace.
    `on_search(query)`: the client's knowledge base search (CallHooks.search_knowledge)."""

    async def end_call(params: FunctionCallParams):
        started = time.monotonic()
        result = {"status": "ending"}
        # The LLM has nothing more to say: the session speaks the goodbye line.
        await params.result_callback(result, properties=FunctionCallResultProperties(run_llm=False))
        record(name=TOOL_END_CALL, arguments=dict(params.arguments), result=result,
               duration_secs=time.monotonic() - started)
        await on_end_call(str(params.arguments.get("reason", "")))

    async def transfer_to_human(params: FunctionCallParams):
        started = time.monotonic()
        result = {"status": "transferring", "to": config.transfer_number}
        await params.result_callback(result, properties=FunctionCallResultProperties(run_llm=False))
        record(name=TOOL_TRANSFER, arguments=dict(params.arguments), result=result,
               duration_secs=time.monotonic() - started)
        await on_transfer(config.transfer_number)

    async def search_knowledge_base(params: FunctionCallParams):
        outcome = await knowledge_search_run(on_search, dict(params.arguments))
        record(name=TOOL_KNOWLEDGE, arguments=dict(params.arguments), result=outcome.trace["record"],
               duration_secs=outcome.duration_secs, error=outcome.error)
        await params.result_callback(outcome.result)

    # Registered as ordinary (synchronous) tools: both handlers answer at once, so they
    # need not survive a barge-in, and an async tool (cancel_on_interruption=False)
    # makes Pipecat add a ~130-token "async tools" system message to every request.
    if TOOL_END_CALL in config.tools:
        llm.register_function(TOOL_END_CALL, end_call)
    if TOOL_TRANSFER in config.tools and config.transfer_number:
        llm.register_function(TOOL_TRANSFER, transfer_to_human)
    if TOOL_KNOWLEDGE in config.tools:
        llm.register_function(TOOL_KNOWLEDGE, search_knowledge_base)
