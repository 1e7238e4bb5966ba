"""The `search_knowledge_base` tool as the runtime runs it (no Django).

The search itself runs in the client's schema on the call database pool, through the
hooks (`CallHooks.search_knowledge`, apps.voice.records), never on the event loop. Here
it is time-boxed and shaped: the LLM reads the passages' text with their source and
position; the turn trace keeps the query and which passages came back (source,
position, page, score, chunk id, the start of the text) as JSON. A failure becomes an
error the LLM can talk about; a search never ends a call."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema

from apps.voice.config import TOOL_KNOWLEDGE
from apps.voice.http_tools import ToolOutcome

SEARCH_TIMEOUT_SECS = 5.0
TRACE_TEXT_CHARS = 160
DESCRIPTION = ("Search the business's knowledge base (the documents it uploaded) for the facts needed to answer "
               "the caller's question. Call it before answering questions about policies, products, prices, opening "
               "hours or procedures, and answer from the passages it returns.")
PROPERTIES = {"query": {"type": "string", "description": "What to look up: the caller's question or key words."}}

KNOWLEDGE_SCHEMA = FunctionSchema(name=TOOL_KNOWLEDGE, description=DESCRIPTION, properties=PROPERTIES,
                                  required=["query"])

# search(query) -> {"passages": [{"source", "position", "page", "score", "text", "chunk_id", ...}]}
Search = Callable[[str], Awaitable[dict]]


async def knowledge_search_run(search: Search | None, arguments: dict,
                               *, timeout_secs: float = SEARCH_TIMEOUT_SECS) -> ToolOutcome:
    """`result` for the LLM; `trace["record"]` (a JSON string) for the turn trace."""
    started = time.monotonic()
    query = str((arguments or {}).get("query") or "").strip()
    error, passages = "", []
    if search is None:
        error = "knowledge base not available"
        result = {"error": "The knowledge base is not available on this call; say you cannot look it up."}
    elif not query:
        error = "empty query"
        result = {"error": "Give the question to search for in `query`."}
    else:
        try:
            async with asyncio.timeout(timeout_secs):
                answer = await search(query)
            passages = list(answer.get("passages") or [])
            if passages:
                result = {"passages": [{"source": item["source"], "position": item["position"],
                                        **({"page": item["page"]} if item.get("page") else {}),
                                        "text": item["text"]} for item in passages]}
            else:
                result = {"passages": [], "note": "Nothing in the knowledge base matches; do not guess."}
        except TimeoutError:
            error = f"timed out after {timeout_secs:g} s"
            result = {"error": "The knowledge base did not answer in time; tell the caller you could not check."}
        except Exception as exc:  # noqa: BLE001 - whatever failed, the call goes on
            message = getattr(exc, "message", None) or str(exc)
            error = f"search failed: {exc.__class__.__name__}: {message}"[:300]
            result = {"error": "The knowledge base could not be searched; tell the caller you could not check."}
    record = {"query": query, "passages": [
        {"source": item["source"], "position": item["position"], "page": item.get("page"),
         "score": item.get("score"), "chunk_id": item.get("chunk_id"), "text": item["text"][:TRACE_TEXT_CHARS]}
        for item in passages]}
    return ToolOutcome(result=result, error=error, duration_secs=time.monotonic() - started,
                       trace={"record": json.dumps(record, ensure_ascii=False)})
