"""A workflow agent through real daphne: the Twilio webhook, call_stream_start handing
the graph, the HTTP tools (secret headers decrypted) and the call's numbers to the
runtime, Pipecat Flows walking three nodes, and the record: the node of each turn and
every tool call (pre-call fetch, edge with its extracted variable, HTTP tool)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django_tenants.utils import tenant_context

from .conftest import ACME_NUMBER
from .test_inbound_calls import _simulate, _wait_ended

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


class _ClientSystem(BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args):
        pass

    def _answer(self, body: dict):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # the pre-call fetch
        length = int(self.headers.get("Content-Length", 0))
        self.seen.append(("POST", self.path, json.loads(self.rfile.read(length)), None))
        self._answer({"customer_name": "Ann"})

    def do_GET(self):  # the HTTP tool
        self.seen.append(("GET", self.path, None, self.headers.get("X-Api-Key")))
        self._answer({"slots": ["14:00"], "internal": "x"})


@pytest.fixture
def client_system():
    _ClientSystem.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ClientSystem)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_workflow_call_walks_its_nodes_and_records_them(acme_line, llm, voice_server, client_system):
    from apps.agents.models import HttpTool
    from apps.agents.services import http_tool_save
    from apps.calls.models import Call
    from devtools.doubles.openai_server import Rule

    tenant = acme_line(vad_stop_secs=0.5)
    graph = {
        "version": 1,
        "nodes": [
            {"id": "global", "type": "global", "prompt": "You answer the phone for Acme Dental."},
            {"id": "start", "type": "start", "greeting": "Hi {{customer_name}}.", "prompt": "Ask what they need.",
             "extract": [{"name": "day"}],
             "pre_call_fetch": {"url": f"{client_system}/precall", "variables": ["customer_name"]}},
            {"id": "booking", "type": "conversation", "prompt": "Offer slots on {{day}}.", "tools": ["check_slots"]},
            {"id": "bye", "type": "end", "line": "Goodbye {{customer_name}}."},
        ],
        "edges": [
            {"id": "e1", "from": "start", "to": "booking", "condition": "They want an appointment"},
            {"id": "e2", "from": "booking", "to": "bye", "condition": "A slot is agreed", "name": "done"},
        ],
    }
    llm.rules[:] = [
        Rule(when="book an appointment", tool="go_to_booking", arguments={"day": "tuesday"}, offered_only=True),
        Rule(when="book an appointment", tool="check_slots", arguments={"day": "tuesday"}, offered_only=True),
        Rule(when="that works", tool="done", offered_only=True),
    ]
    llm.after_tool_reply = "Tuesday at two is free."
    try:
        with tenant_context(tenant):
            http_tool_save(name="check_slots", description="Free slots of a day",
                           parameters={"type": "object", "properties": {"day": {"type": "string"}}},
                           method="GET", url=client_system + "/slots/{{day}}", headers={},
                           secret_headers={"X-Api-Key": "k3y"}, timeout_secs=2, response_fields=["slots"])
            from apps.agents.models import Agent
            from apps.agents.services import agent_save

            agent_save(agent=Agent.objects.get(name="Reception"), graph=graph)
        result = _simulate(voice_server, "book-appointment.wav", "yes.wav", hang_up=False)
        call = _wait_ended(tenant, result.call_id)
    finally:
        llm.after_tool_reply = ""
        with tenant_context(tenant):
            HttpTool.objects.all().delete()

    assert (call.end_reason, call.error) == (Call.EndReason.AGENT_ENDED, "")
    assert call.agent_version.number == 2
    assert _ClientSystem.seen == [
        ("POST", "/precall", {"caller_number": "+15557654321", "called_number": ACME_NUMBER, "direction": "inbound"},
         None),
        ("GET", "/slots/tuesday", None, "k3y"),
    ]
    assert [(t.node, t.bot_text) for t in call.turn_rows] == [
        ("start", "Hi Ann."), ("booking", "Tuesday at two is free."), ("bye", "Goodbye Ann.")]
    assert [(t.name, t.arguments, t.error) for t in call.tool_rows] == [
        ("pre_call_fetch", {"caller_number": "+15557654321", "called_number": ACME_NUMBER, "direction": "inbound"}, ""),
        ("go_to_booking", {"day": "tuesday"}, ""),
        ("check_slots", {"day": "tuesday"}, ""),
        ("done", {}, ""),
    ]
    assert "14:00" in call.tool_rows[2].result and "internal" not in call.tool_rows[2].result
    assert all(isinstance(t.duration_ms, int) for t in call.tool_rows)

