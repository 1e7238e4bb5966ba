"""Workflow graphs in the voice runtime without Django: a Twilio caller over a real
websocket walks three nodes (Pipecat Flows), the pre-call fetch and an HTTP tool
answer from a local HTTP server, and the trace shows nodes, variables and tool calls."""
from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from apps.voice.tests.test_session import finish, say, start_call
from devtools.doubles.openai_server import OpenAIDouble, Rule

pytestmark = pytest.mark.timeout(60)


class ClientSystem:
    """The client's own HTTP API: a pre-call lookup and a slots endpoint (optionally slow)."""

    def __init__(self, *, slots_delay_secs: float = 0.0):
        self.slots_delay_secs = slots_delay_secs
        self.requests: list[dict] = []
        self._runner = None
        self.port = 0

    async def start(self) -> ClientSystem:
        app = web.Application()
        app.router.add_post("/precall", self._precall)
        app.router.add_get("/slots/{day}", self._slots)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _precall(self, request):
        self.requests.append({"path": "/precall", "json": await request.json()})
        return web.json_response({"customer_name": "Ann", "customer": {"tier": "gold"}, "caller": "overwrite?"})

    async def _slots(self, request):
        self.requests.append({"path": request.path, "query": dict(request.query),
                              "auth": request.headers.get("Authorization")})
        await asyncio.sleep(self.slots_delay_secs)
        return web.json_response({"slots": ["14:00", "16:30"], "internal_note": "not for the LLM"})


def three_node_graph(system_url: str) -> dict:
    return {
        "version": 1,
        "nodes": [
            {"id": "global", "type": "global", "prompt": "You are the receptionist of Acme Dental."},
            {"id": "start", "type": "start", "greeting": "Hi {{customer_name}}!", "prompt": "Find out what they want.",
             "extract": [{"name": "day", "description": "The day the caller wants"}],
             "pre_call_fetch": {"url": f"{system_url}/precall", "timeout_secs": 2, "variables": ["customer_name"]}},
            {"id": "booking", "type": "conversation",
             "prompt": "Offer the free slots on {{day}} for {{caller.number}}.", "tools": ["check_slots"]},
            {"id": "bye", "type": "end", "line": "Goodbye {{customer_name}}."},
        ],
        "edges": [
            {"id": "e1", "from": "start", "to": "booking", "condition": "The caller wants an appointment",
             "transition_line": "Let me look at {{day}}."},
            {"id": "e2", "from": "booking", "to": "bye", "condition": "The caller accepted a slot", "name": "done"},
        ],
    }


def slots_tool(system_url: str, *, timeout_secs: float = 2.0) -> dict:
    return {"name": "check_slots", "description": "Free appointment slots of one day",
            "parameters": {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]},
            "method": "GET", "url": system_url + "/slots/{{day}}?caller={{caller.number}}",
            "headers": {"Authorization": "Bearer secret-from-the-vault"}, "timeout_secs": timeout_secs,
            "response_fields": ["slots"]}


@pytest.fixture
def double():
    with OpenAIDouble(
        rules=[
            Rule(when="book an appointment", tool="go_to_booking", arguments={"day": "tuesday"}, offered_only=True),
            Rule(when="book an appointment", tool="check_slots", arguments={"day": "tuesday"}, offered_only=True),
            Rule(when="that works", tool="done", offered_only=True),
        ],
        after_tool_reply="Tuesday at two is free.",
    ) as double:
        yield double


async def test_a_campaign_calls_pre_call_fetch_carries_the_contact(double):
    system = await ClientSystem().start()
    try:
        server, caller = await start_call(
            double, graph=three_node_graph(system.url), http_tools=(slots_tool(system.url),),
            variables={"caller": {"number": "+15550001234"}, "contact": {"first_name": "Ann", "plan": "gold"},
                       "call": {"direction": "outbound", "from_number": "+15550100100", "to_number": "+15550001234"}})
        await caller.wait_for_agent_audio(timeout=10)
        hooks = await finish(server, caller)
    finally:
        await system.stop()

    assert system.requests[0] == {"path": "/precall", "json": {
        "caller_number": "+15550001234", "called_number": "+15550100100", "direction": "outbound",
        "contact": {"first_name": "Ann", "plan": "gold"}}}
    assert hooks.end is not None


async def test_a_call_walks_three_nodes_with_a_pre_call_fetch_and_an_http_tool(double):
    system = await ClientSystem().start()
    try:
        server, caller = await start_call(
            double, graph=three_node_graph(system.url), http_tools=(slots_tool(system.url),),
            variables={"caller": {"number": "+15550001234"}, "call": {"direction": "inbound", "from_number":
                       "+15550001234", "to_number": "+15550100100"}})
        await caller.wait_for_agent_audio(timeout=10)
        await caller.wait_for_agent_quiet()
        await say(caller, "book-appointment.wav")
        await caller.wait_for_agent_audio(after=caller.last_speech_end)
        await caller.wait_for_agent_quiet(quiet_secs=0.8)
        await say(caller, "yes.wav")
        await caller.wait_closed(timeout=15)
        hooks = await finish(server, caller, hang_up=False)
    finally:
        await system.stop()

    assert system.requests[0] == {"path": "/precall", "json": {
        "caller_number": "+15550001234", "called_number": "+15550100100", "direction": "inbound"}}
    assert system.requests[1] == {"path": "/slots/tuesday", "query": {"caller": "+15550001234"},
                                  "auth": "Bearer secret-from-the-vault"}
    assert len(system.requests) == 2
    speech = [r["text"] for r in double.requests_of("speech")]
    assert speech == ["Hi Ann!", "Let me look at tuesday.", "Tuesday at two is free.", "Goodbye Ann."]
    assert hooks.end["end_reason"] == "agent_ended"
    assert ("hang_up",) in hooks.events

    chat = double.requests_of("chat")
    assert [request["tools"] for request in chat] == [["go_to_booking"], ["check_slots", "done"],
                                                      ["check_slots", "done"], ["check_slots", "done"]]
    # The booking node's prompt, rendered from the extracted variable and the call's number.
    assert {"role": "system", "content": "Offer the free slots on tuesday for +15550001234."} in chat[1]["messages"]
    assert chat[0]["messages"][0] == {"role": "system", "content": "You are the receptionist of Acme Dental."}
    assert [request["after_tool"] for request in chat] == [False, False, True, False]

    greeting, booking, accepted = hooks.turns
    assert (greeting["node"], greeting["bot_text"]) == ("start", "Hi Ann!")
    [fetch] = greeting["tool_calls"]
    assert (fetch["name"], fetch["error"]) == ("pre_call_fetch", "")
    assert fetch["result"] == {"status": 200, "data": {"customer_name": "Ann", "customer": {"tier": "gold"},
                                                       "caller": "overwrite?"}}
    assert booking["node"] == "booking"
    assert booking["bot_text"] == "Let me look at tuesday. Tuesday at two is free."
    move, slots = booking["tool_calls"]
    assert (move["name"], move["arguments"], move["result"]) == (
        "go_to_booking", {"day": "tuesday"}, {"status": "moved", "to": "booking"})
    assert (slots["name"], slots["arguments"], slots["error"]) == ("check_slots", {"day": "tuesday"}, "")
    assert slots["result"] == {"status": 200, "data": {"slots": ["14:00", "16:30"]}}  # only the response fields
    assert isinstance(slots["duration_ms"], int)
    assert accepted["node"] == "bye"
    assert [(t["name"], t["result"]) for t in accepted["tool_calls"]] == [("done", {"status": "moved", "to": "bye"})]
    assert accepted["bot_text"] == "Goodbye Ann."


async def test_a_tool_that_times_out_goes_back_to_the_llm_and_the_call_goes_on(double):
    system = await ClientSystem(slots_delay_secs=3.0).start()
    graph = three_node_graph(system.url)
    graph["nodes"][1].pop("pre_call_fetch")
    graph["nodes"][1]["greeting"] = ""
    try:
        server, caller = await start_call(double, graph=graph, http_tools=(slots_tool(system.url, timeout_secs=0.5),),
                                          variables={"caller": {"number": "+15550001234"}})
        await say(caller, "book-appointment.wav")
        await caller.wait_for_agent_audio(after=caller.last_speech_end)
        await caller.wait_for_agent_quiet(quiet_secs=0.8)
        hooks = await finish(server, caller)
    finally:
        await system.stop()

    assert hooks.end["end_reason"] == "caller_hung_up" and hooks.end["error"] == ""
    [turn] = hooks.turns
    move, slots = turn["tool_calls"]
    assert move["name"] == "go_to_booking"
    assert (slots["name"], slots["error"]) == ("check_slots", "timed out after 0.5 s")
    assert slots["result"] == {"error": "The tool did not answer within 0.5 seconds; tell the caller you could not "
                                        "check right now."}
    assert 450 <= slots["duration_ms"] < 1500
    # The LLM read the error and the caller heard its answer.
    tool_messages = [m for m in double.requests_of("chat")[-1]["messages"] if m.get("role") == "tool"]
    assert json.loads(tool_messages[-1]["content"]) == slots["result"]
    assert turn["bot_text"] == "Let me look at tuesday. Tuesday at two is free."


async def test_a_failed_pre_call_fetch_does_not_stop_the_call(double):
    graph = three_node_graph("http://127.0.0.1:9")  # nothing listens on the discard port
    graph["nodes"][1]["greeting"] = "Hello{{customer_name}}!"
    server, caller = await start_call(double, graph=graph, http_tools=())
    await caller.wait_for_agent_audio(timeout=10)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    [turn] = hooks.turns
    assert turn["bot_text"] == "Hello!"
    [fetch] = turn["tool_calls"]
    assert fetch["name"] == "pre_call_fetch" and fetch["error"].startswith("request failed: ClientConnectorError")
    assert hooks.end["end_reason"] == "caller_hung_up"



@pytest.fixture
def mcp_server():
    """A real MCP server (the SDK's MCPServer over streamable HTTP, served by uvicorn)."""
    import socket
    import threading
    import time

    import uvicorn
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("clinic")
    calls = []

    @server.tool()
    def opening_hours(day: str) -> str:
        """Opening hours of the clinic on one day"""
        calls.append(day)
        return f"{day}: nine to five"

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    web_server = uvicorn.Server(uvicorn.Config(server.streamable_http_app(), host="127.0.0.1", port=port,
                                               log_level="warning"))
    thread = threading.Thread(target=web_server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if web_server.started:
            break
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}/mcp", "calls": calls}
    web_server.should_exit = True
    thread.join(5)


def mcp_graph() -> dict:
    return {
        "version": 1,
        "nodes": [
            {"id": "start", "type": "start", "prompt": "Answer questions about the clinic.",
             "tools": ["mcp:clinic"]},
            {"id": "bye", "type": "end", "line": "Goodbye."},
        ],
        "edges": [{"id": "e1", "from": "start", "to": "bye", "condition": "The caller is done", "name": "done"}],
    }


async def test_an_mcp_servers_tools_are_offered_to_its_node_and_traced(mcp_server):
    with OpenAIDouble(rules=[Rule(when="opening hours", tool="opening_hours", arguments={"day": "saturday"},
                                  offered_only=True)],
                      after_tool_reply="Saturday nine to five.") as double:
        server, caller = await start_call(double, graph=mcp_graph(), mcp_servers=(
            {"name": "clinic", "url": mcp_server["url"], "headers": {"X-Key": "k"}, "timeout_secs": 5},))
        await say(caller, "opening-hours.wav")
        await caller.wait_for_agent_audio(after=caller.last_speech_end)
        await caller.wait_for_agent_quiet()
        hooks = await finish(server, caller)

    assert mcp_server["calls"] == ["saturday"]
    chat = double.requests_of("chat")
    assert chat[0]["tools"] == ["opening_hours", "done"]
    [answer] = hooks.turns  # no greeting: the listing lands on the caller's first turn
    listed, call = answer["tool_calls"]
    assert (listed["name"], listed["result"], listed["error"]) == ("mcp:clinic", {"tools": ["opening_hours"]}, "")
    assert (call["name"], call["arguments"], call["result"], call["error"]) == (
        "opening_hours", {"day": "saturday"}, {"data": "saturday: nine to five"}, "")
    assert answer["bot_text"] == "Saturday nine to five."


async def test_an_mcp_server_that_is_down_offers_nothing_and_the_call_goes_on(double):
    server, caller = await start_call(double, graph=mcp_graph(), mcp_servers=(
        {"name": "clinic", "url": "http://127.0.0.1:9/mcp", "headers": {}, "timeout_secs": 2},))
    await say(caller, "hello.wav")
    await caller.wait_for_agent_audio(after=caller.last_speech_end)
    await caller.wait_for_agent_quiet()
    hooks = await finish(server, caller)

    assert double.requests_of("chat")[0]["tools"] == ["done"]
    listing = hooks.turns[0]["tool_calls"][0]
    assert listing["name"] == "mcp:clinic" and listing["result"] == {"tools": []}
    assert listing["error"].startswith("could not list tools")
    assert hooks.end["end_reason"] == "caller_hung_up"


async def test_a_graph_the_runtime_cannot_start_ends_with_the_fallback_line(double):
    graph = mcp_graph()
    graph["nodes"][0]["tools"] = []
    graph["nodes"][0]["prompt"] = "Greet {{nobody_declared_this}}."  # what the save-time check would refuse
    server, caller = await start_call(double, graph=graph, fallback_line="Sorry, please call back.")
    await caller.wait_closed(timeout=15)
    hooks = await finish(server, caller, hang_up=False)

    assert hooks.end["end_reason"] == "error"
    assert hooks.end["error"].startswith("workflow: could not start: ")
    assert "nobody_declared_this" in hooks.end["error"]
    assert [r["text"] for r in double.requests_of("speech")] == ["Sorry, please call back."]
    assert ("hang_up",) in hooks.events


def _talkative_graph(*, allow_interruptions: bool) -> dict:
    return {"version": 1, "nodes": [
        {"id": "start", "type": "start", "prompt": "Answer.", "allow_interruptions": allow_interruptions,
         "tools": ["end_call"]}], "edges": []}


@pytest.mark.parametrize("allowed", [False, True])
async def test_a_nodes_own_interruption_setting(allowed):
    long_answer = " ".join(["We are open from nine to five on Saturday."] * 6)
    with OpenAIDouble(rules=[Rule(when="opening hours", reply=long_answer)]) as double:
        # The agent allows interruptions; the node decides.
        server, caller = await start_call(double, graph=_talkative_graph(allow_interruptions=allowed),
                                          allow_interruptions=True)
        await say(caller, "opening-hours.wav")
        reply_started = await caller.wait_for_agent_audio(after=caller.last_speech_end)
        await asyncio.sleep(0.8)
        interruption = await say(caller, "interrupt.wav")
        # Then the answer to the interruption (after the long one when it could not be interrupted).
        await caller.wait_for_agent_quiet(quiet_secs=2.5)
        hooks = await finish(server, caller)

    barge_in_clears = [at for at in caller.clears if reply_started < at < interruption.speech_end_at + 0.5]
    answer = next(t for t in hooks.turns if t["user_text"] == "What are your opening hours on Saturday?")
    if allowed:
        assert barge_in_clears and answer["interrupted"] is True
        assert long_answer not in " ".join(turn["bot_text"] for turn in hooks.turns)
    else:
        assert barge_in_clears == [] and answer["interrupted"] is False
        # Said to the end (the caller's words open the next turn in the trace, which gets the rest).
        assert long_answer in " ".join(turn["bot_text"] for turn in hooks.turns)
