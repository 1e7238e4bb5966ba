"""Workflow graphs: the one check (messages naming the node or edge), saving through
agent_save, drafts and publishing, version pinning, import/export and HTTP tools."""
import copy
import json

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.agents.graph import graph_diff, graph_problems, single_prompt_graph
from apps.agents.models import Agent, AgentVersion, HttpTool
from apps.agents.selectors import agent_runtime_config
from apps.agents.services import (
    agent_draft_save,
    agent_export,
    agent_import,
    agent_publish,
    agent_save,
    http_tool_save,
)
from apps.core.errors import ApplicationError
from apps.providers.models import ProviderAccount

PROVIDERS = dict(stt_provider="deepgram", stt_settings={"model": "nova-2"}, llm_provider="openai",
                 llm_settings={"model": "gpt-4o-mini"}, tts_provider="piper", tts_settings={})
SLOTS = {"url": "https://clinic.example/slots/{{day}}", "parameters": {"type": "object", "properties": {"day": {}}}}


def graph(**changes) -> dict:
    base = {
        "version": 1,
        "nodes": [
            {"id": "global", "type": "global", "prompt": "You are Acme Dental's receptionist."},
            {"id": "start", "type": "start", "greeting": "Hi {{customer_name}}!", "prompt": "Ask what they need.",
             "extract": [{"name": "day"}],
             "pre_call_fetch": {"url": "https://crm.example/lookup", "variables": ["customer_name"]}},
            {"id": "booking", "type": "conversation", "prompt": "Offer slots on {{day}}.", "tools": ["check_slots"]},
            {"id": "human", "type": "transfer", "transfer_number": "+15550001111", "line": "Connecting you."},
            {"id": "bye", "type": "end", "line": "Goodbye {{customer_name}}."},
        ],
        "edges": [
            {"id": "e1", "from": "start", "to": "booking", "condition": "They want an appointment"},
            {"id": "e2", "from": "start", "to": "human", "condition": "They ask for a person"},
            {"id": "e3", "from": "booking", "to": "bye", "condition": "A slot is agreed",
             "transition_line": "Booked for {{day}}."},
        ],
    }
    base.update(changes)
    return base


def messages(problems) -> list[tuple]:
    return [(problem.node, problem.edge, problem.message) for problem in problems]


def test_a_sound_graph_has_no_problems():
    assert graph_problems(graph(), http_tools={"check_slots": SLOTS}) == []


def test_each_problem_names_its_node_or_edge():
    broken = graph()
    broken["nodes"] = [node for node in broken["nodes"] if node["type"] != "start"]
    # The start node also declared `day` (extracted) and `customer_name` (pre-call fetch).
    assert messages(graph_problems(broken, http_tools={"check_slots": SLOTS})) == [
        (None, None, "The graph has no start node: add one (it greets the caller)."),
        (None, "e1", "Edge 'e1' (start → booking) starts at a node that does not exist."),
        (None, "e2", "Edge 'e2' (start → human) starts at a node that does not exist."),
        ("booking", "e3", "Edge 'e3' (booking → bye): the transition line uses the unknown variable {{day}}."),
        ("booking", None, "Node 'booking': the prompt uses the unknown variable {{day}}."),
        ("bye", None, "Node 'bye': the line uses the unknown variable {{customer_name}}."),
    ]

    broken = graph()
    broken["edges"][2]["to"] = "nowhere"
    broken["nodes"].append({"id": "orphan", "type": "conversation", "prompt": "Lost.", "tools": ["end_call"]})
    broken["nodes"][2]["tools"] = ["check_slots", "send_fax"]
    broken["nodes"][2]["prompt"] = "Offer slots on {{day}} to {{customer.vip_level}} and {{weather}}."
    assert messages(graph_problems(broken, http_tools={"check_slots": SLOTS})) == [
        ("booking", "e3", "Edge 'e3' (booking → nowhere) goes to a node that does not exist."),
        ("booking", None, "Node 'booking' uses the tool 'send_fax', which does not exist; create it under HTTP tools "
                          "or remove it."),
        ("booking", None, "Node 'booking': the prompt uses the unknown variable {{customer.vip_level}}."),
        ("booking", None, "Node 'booking': the prompt uses the unknown variable {{weather}}."),
        ("booking", None, "Node 'booking' is a dead end: add an edge to an end node (or another node), or give it "
                          "the end_call tool."),
        ("bye", None, "Node 'bye' cannot be reached from the start node."),
        ("orphan", None, "Node 'orphan' cannot be reached from the start node."),
    ]


def test_tool_urls_and_transition_lines_may_only_use_known_variables():
    broken = graph()
    broken["edges"][2]["transition_line"] = "Booked for {{daay}}."
    tools = {"check_slots": {**SLOTS, "url": "https://clinic.example/slots/{{day}}?who={{secret_env}}"}}
    assert messages(graph_problems(broken, http_tools=tools)) == [
        ("booking", "e3", "Edge 'e3' (booking → bye): the transition line uses the unknown variable {{daay}}."),
        ("booking", None, "Node 'booking': the tool 'check_slots' URL uses {{secret_env}}, which is neither a "
                          "parameter nor a known variable."),
    ]


def test_shape_errors_come_from_the_documented_schema():
    broken = graph()
    broken["nodes"][2]["prompt"] = 42
    broken["edges"][0].pop("condition")
    assert messages(graph_problems(broken, http_tools={"check_slots": SLOTS})) == [
        (None, "e1", "Edge 'e1': 'condition' is a required property"),
        ("booking", None, "Node 'booking' prompt: 42 is not of type 'string'"),
    ]


def test_a_single_prompt_agent_is_a_one_node_graph():
    one = single_prompt_graph(system_prompt="Be brief.", greeting="Hi {{caller.number}}", tools=["end_call"])
    assert graph_problems(one) == []
    assert [node["type"] for node in one["nodes"]] == ["global", "start"] and one["edges"] == []


def test_graph_diff_says_what_changed():
    old, new = graph(), graph()
    new["nodes"][2]["prompt"] = "Offer two slots on {{day}}."
    new["edges"].pop()
    assert graph_diff(old, new) == [
        "- edge e3",
        '~ node booking.prompt: "Offer slots on {{day}}." → "Offer two slots on {{day}}."',
    ]


@pytest.fixture
def clinic(tenant_a):
    with tenant_context(tenant_a):
        ProviderAccount.objects.create(provider="deepgram", api_key="dg-key")
        ProviderAccount.objects.create(provider="openai", api_key="oa-key")
        http_tool_save(name="check_slots", description="Free slots of a day", parameters=SLOTS["parameters"],
                       method="GET", url=SLOTS["url"], headers={"Accept": "application/json"},
                       secret_headers={"Authorization": "Bearer s3cret"}, timeout_secs=3, response_fields=["slots"])
        yield tenant_a


def test_agent_save_refuses_a_broken_graph_and_writes_nothing(clinic):
    agent = agent_save(name="Clinic", **PROVIDERS, graph=graph())
    broken = graph()
    broken["nodes"][2]["tools"] = ["send_fax"]
    with pytest.raises(ApplicationError) as refused:
        agent_save(agent=agent, graph=broken)
    assert refused.value.details["graph"] == ("Node 'booking' uses the tool 'send_fax', which does not exist; create "
                                              "it under HTTP tools or remove it.")
    agent.refresh_from_db()
    assert agent.graph == graph() and agent.current_version.number == 1
    assert AgentVersion.objects.filter(agent=agent).count() == 1


def test_the_graph_and_the_flat_fields_stay_in_step(clinic):
    agent = agent_save(name="Clinic", **PROVIDERS, graph=graph())
    assert (agent.system_prompt, agent.greeting) == ("You are Acme Dental's receptionist.", "Hi {{customer_name}}!")
    agent = agent_save(agent=agent, system_prompt="Be brief.")
    assert agent.graph["nodes"][0]["prompt"] == "Be brief."
    assert agent.graph["edges"] == graph()["edges"]
    # A single-prompt agent edited through the old form stays a one-node graph.
    simple = agent_save(name="Simple", **PROVIDERS, greeting="Hello!", tools=["end_call"])
    assert simple.current_version.graph == single_prompt_graph(system_prompt="You are a helpful phone agent.",
                                                               greeting="Hello!", tools=["end_call"])


def test_drafts_do_not_touch_calls_until_published_and_calls_keep_their_version(clinic):
    agent = agent_save(name="Clinic", **PROVIDERS, graph=graph())
    first = agent.current_version
    running = agent_runtime_config(agent_version=first)  # a call that started on version 1

    draft = graph()
    draft["nodes"][2]["prompt"] = "Offer two slots on {{day}}."
    draft["nodes"].append({"id": "lost", "type": "conversation", "tools": ["end_call"]})
    problems = agent_draft_save(agent=agent, graph=draft)
    assert messages(problems) == [("lost", None, "Node 'lost' cannot be reached from the start node.")]
    agent.refresh_from_db()
    assert agent.current_version == first and agent.draft_graph == draft
    with pytest.raises(ApplicationError):
        agent_publish(agent=agent)
    agent.refresh_from_db()
    assert agent.current_version == first and agent.draft_graph == draft

    draft["nodes"].pop()
    agent_draft_save(agent=agent, graph=draft)
    agent = agent_publish(agent=agent)
    assert agent.current_version.number == 2 and agent.draft_graph is None
    assert agent.current_version.graph["nodes"][2]["prompt"] == "Offer two slots on {{day}}."
    # The running call still has version 1's graph; a new one reads version 2.
    assert running.graph["nodes"][2]["prompt"] == "Offer slots on {{day}}."
    assert agent_runtime_config(agent_version=first).graph["nodes"][2]["prompt"] == "Offer slots on {{day}}."


def test_runtime_config_carries_the_tools_with_their_secrets(clinic):
    agent = agent_save(name="Clinic", **PROVIDERS, graph=graph())
    [tool] = agent_runtime_config(agent_version=agent.current_version).http_tools
    assert tool == {"name": "check_slots", "description": "Free slots of a day", "parameters": SLOTS["parameters"],
                    "method": "GET", "url": SLOTS["url"],
                    "headers": {"Accept": "application/json", "Authorization": "Bearer s3cret"},
                    "timeout_secs": 3.0, "response_fields": ["slots"]}
    # Encrypted at rest.
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_headers FROM agents_httptool WHERE name = 'check_slots'")
        assert "s3cret" not in cursor.fetchone()[0]


def test_export_then_import_into_another_client_round_trips(clinic, tenant_b):
    agent = agent_save(name="Clinic", **PROVIDERS, graph=graph(), end_call_phrases=["bye now"])
    document = json.loads(json.dumps(agent_export(agent=agent)))
    assert "s3cret" not in json.dumps(document)
    assert document["http_tools"][0]["secret_header_names"] == ["Authorization"]
    with tenant_context(tenant_b):
        ProviderAccount.objects.create(provider="deepgram", api_key="dg-key-b")
        ProviderAccount.objects.create(provider="openai", api_key="oa-key-b")
        copied = agent_import(document=document)
        assert copied.graph == graph() and copied.end_call_phrases == ["bye now"]
        assert agent_export(agent=copied) == document
        tool = HttpTool.objects.get(name="check_slots")
        assert tool.secret_header_dict() == {"Authorization": ""}  # the new client fills in its own secret


def test_import_refuses_what_is_not_an_export_and_writes_nothing(clinic):
    before = Agent.objects.count()
    for document in ({"name": "x"}, [], {"format": "switchboard.agent/1", "name": "X", "config": {"bogus": 1}}):
        with pytest.raises(ApplicationError):
            agent_import(document=document)
    broken = agent_export(agent=agent_save(name="Clinic", **PROVIDERS, graph=graph()))
    broken["graph"] = copy.deepcopy(broken["graph"])
    broken["graph"]["edges"][0]["to"] = "nowhere"
    broken["name"] = "Broken"
    with pytest.raises(ApplicationError):
        agent_import(document=broken)
    assert Agent.objects.count() == before + 1


def test_http_tool_secrets_are_kept_when_left_blank(clinic):
    tool = HttpTool.objects.get(name="check_slots")
    http_tool_save(tool=tool, name="check_slots", description="Slots", parameters=SLOTS["parameters"], method="get",
                   url=SLOTS["url"], headers={}, secret_headers={"Authorization": ""}, timeout_secs=2,
                   response_fields=[])
    tool.refresh_from_db()
    assert (tool.method, tool.description, tool.secret_header_dict()) == ("GET", "Slots", {"Authorization": "Bearer s3cret"})
    with pytest.raises(ApplicationError) as refused:
        http_tool_save(tool=tool, name="end_call", description="", parameters={"type": "array"}, method="TRACE",
                       url="ftp://user:pw@host/", headers={"Bad Header": "x"}, secret_headers=None, timeout_secs=99,
                       response_fields=["a..b"])
    assert set(refused.value.details) == {"name", "description", "parameters", "method", "url", "headers",
                                          "timeout_secs", "response_fields"}
    tool.refresh_from_db()
    assert tool.name == "check_slots" and tool.timeout_secs == 2.0


def test_the_data_migration_makes_existing_agents_one_node_graphs(clinic):
    import importlib

    from django.apps import apps as django_apps

    migration = importlib.import_module("apps.agents.migrations.0002_graphs_and_http_tools")
    agent = agent_save(name="Old", **PROVIDERS, system_prompt="Be kind.", greeting="Hello.", tools=["end_call"])
    Agent.objects.filter(pk=agent.pk).update(graph={})
    AgentVersion.objects.filter(agent=agent).update(graph={})
    migration.single_prompt_agents_become_one_node_graphs(django_apps, None)
    expected = single_prompt_graph(system_prompt="Be kind.", greeting="Hello.", tools=["end_call"])
    agent.refresh_from_db()
    assert agent.graph == expected
    assert AgentVersion.objects.get(agent=agent).graph == expected


def test_nodes_may_use_the_clients_mcp_servers_only(clinic):
    from apps.agents.models import McpServer
    from apps.agents.selectors import agent_runtime_config as runtime_of
    from apps.agents.services import mcp_server_save

    with_mcp = graph()
    with_mcp["nodes"][2]["tools"] = ["check_slots", "mcp:calendar"]
    with pytest.raises(ApplicationError) as refused:
        agent_save(name="Clinic", **PROVIDERS, graph=with_mcp)
    assert refused.value.details["graph"] == ("Node 'booking' uses the MCP server 'calendar', which does not exist; "
                                              "add it under MCP servers or remove it.")
    with pytest.raises(ApplicationError) as refused:
        mcp_server_save(name="cal endar", url="ftp://x", secret_headers={"Bad Header": "x"}, timeout_secs=0)
    assert set(refused.value.details) == {"name", "url", "secret_headers", "timeout_secs"}
    assert McpServer.objects.count() == 0
    server = mcp_server_save(name="calendar", url="https://mcp.clinic.example/mcp",
                             secret_headers={"Authorization": "Bearer m"}, timeout_secs=3)
    mcp_server_save(server=server, name="calendar", url="https://mcp.clinic.example/v2/mcp",
                    secret_headers={"Authorization": ""}, timeout_secs=3)
    agent = agent_save(name="Clinic", **PROVIDERS, graph=with_mcp)
    assert runtime_of(agent_version=agent.current_version).mcp_servers == (
        {"name": "calendar", "url": "https://mcp.clinic.example/v2/mcp", "headers": {"Authorization": "Bearer m"},
         "timeout_secs": 3.0},)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/x", "http://localhost/x", "http://10.0.0.5/x",
                                 "http://169.254.169.254/latest/meta-data/", "http://[::1]/x", "http://db.internal/"])
def test_tools_and_fetches_may_not_reach_into_private_networks(clinic, settings, url):
    settings.AGENT_TOOLS_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(ApplicationError) as refused:
        http_tool_save(name="probe", description="x", parameters={}, method="GET", url=url, headers={},
                       secret_headers={}, timeout_secs=2, response_fields=[])
    assert refused.value.details == {"url": "The URL must point at a public address, not a local or private one."}
    fetching = graph()
    fetching["nodes"][1]["pre_call_fetch"]["url"] = url
    with pytest.raises(ApplicationError) as refused:
        agent_save(name="Clinic", **PROVIDERS, graph=fetching)
    assert refused.value.details["graph"] == ("Node 'start': the pre-call fetch URL must point at a public address, "
                                              "not a local or private one.")
    assert not HttpTool.objects.filter(name="probe").exists() and not Agent.objects.exists()
