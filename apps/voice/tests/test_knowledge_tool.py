"""The `search_knowledge_base` tool in the runtime (no Django): a workflow node offers it, a
search's passages go to the LLM with source and position and into the trace as JSON; a
missing, failing or slow search is an error the LLM can talk about."""
import asyncio
import json

from apps.agents.graph import graph_problems
from apps.voice.flow import GraphRuntime
from apps.voice.knowledge_tool import knowledge_search_run

PASSAGE = {"source": "faq.txt", "position": 3, "page": None, "score": 0.71, "chunk_id": 12, "document_id": 2,
           "start": 10, "end": 60, "text": "Before we can open any account you must complete KYC."}
GRAPH = {"version": 1, "nodes": [
    {"id": "global", "type": "global", "prompt": "Bank."},
    {"id": "start", "type": "start", "greeting": "Hi.", "prompt": "Help.", "tools": ["search_knowledge_base"]},
    {"id": "bye", "type": "end", "line": "Bye."}],
    "edges": [{"id": "e1", "from": "start", "to": "bye", "condition": "Done"}]}


def _runtime(search, recorded):
    async def noop(*args):
        return None

    return GraphRuntime(graph=GRAPH, http_tools=(), variables={}, time_zone="UTC", transfer_number="",
                        goodbye_line="Bye", transfer_line="", record_tool_call=lambda **kw: recorded.append(kw),
                        on_node=lambda node: None, on_end=noop, on_transfer=noop, search_knowledge=search)


def test_a_node_may_use_the_tool_and_the_graph_check_accepts_it():
    assert graph_problems(GRAPH) == []
    functions = _runtime(None, [])._functions(GRAPH["nodes"][1])
    tool = next(function for function in functions if function.name == "search_knowledge_base")
    assert (tool.required, list(tool.properties)) == (["query"], ["query"])


def test_passages_go_to_the_llm_and_the_trace():
    recorded, asked = [], []

    async def search(query):
        asked.append(query)
        return {"passages": [PASSAGE]}

    result = asyncio.run(_runtime(search, recorded).run_knowledge_search({"query": "KYC first?"}))
    assert asked == ["KYC first?"]
    assert result == {"passages": [{"source": "faq.txt", "position": 3, "text": PASSAGE["text"]}]}
    [trace] = recorded
    assert (trace["name"], trace["arguments"], trace["error"]) == ("search_knowledge_base", {"query": "KYC first?"}, "")
    assert json.loads(trace["result"]) == {"query": "KYC first?", "passages": [
        {"source": "faq.txt", "position": 3, "page": None, "score": 0.71, "chunk_id": 12, "text": PASSAGE["text"]}]}


def test_failures_become_errors_the_llm_can_talk_about():
    async def broken(query):
        raise RuntimeError("database gone")

    async def slow(query):
        await asyncio.sleep(1)

    async def empty(query):
        return {"passages": []}

    outcome = asyncio.run(knowledge_search_run(broken, {"query": "x"}))
    assert (outcome.result, outcome.error) == (
        {"error": "The knowledge base could not be searched; tell the caller you could not check."},
        "search failed: RuntimeError: database gone")
    outcome = asyncio.run(knowledge_search_run(slow, {"query": "x"}, timeout_secs=0.05))
    assert outcome.error == "timed out after 0.05 s"
    outcome = asyncio.run(knowledge_search_run(None, {"query": "x"}))
    assert outcome.error == "knowledge base not available"
    outcome = asyncio.run(knowledge_search_run(empty, {"query": ""}))
    assert (outcome.error, outcome.result) == ("empty query", {"error": "Give the question to search for in `query`."})
    outcome = asyncio.run(knowledge_search_run(empty, {"query": "x"}))
    assert (outcome.error, outcome.result) == (
        "", {"passages": [], "note": "Nothing in the knowledge base matches; do not guess."})
