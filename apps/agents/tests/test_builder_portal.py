"""The portal's workflow pages: the builder page (vendored Drawflow, no CDN), drafts
and publishing through JSON posts with problems named per node, version graphs and
diffs, import/export files and HTTP tools whose secrets are never shown again."""
import json
import re

import pytest
from django_tenants.utils import tenant_context

from apps.agents.models import Agent, HttpTool
from apps.agents.services import agent_save, http_tool_save
from apps.agents.tests.test_graph import PROVIDERS, SLOTS, graph
from apps.providers.models import ProviderAccount

HOST = {"HTTP_HOST": "acme.localhost"}


@pytest.fixture
def clinic_agent(tenant_a):
    with tenant_context(tenant_a):
        ProviderAccount.objects.create(provider="deepgram", api_key="dg")
        ProviderAccount.objects.create(provider="openai", api_key="oa")
        http_tool_save(name="check_slots", description="Free slots", parameters=SLOTS["parameters"], method="GET",
                       url=SLOTS["url"], headers={}, secret_headers={"Authorization": "Bearer s3cret"},
                       timeout_secs=2, response_fields=["slots"])
        return agent_save(name="Clinic", **PROVIDERS, graph=graph())


def test_the_builder_page_serves_the_vendored_library_and_the_graph(client, clinic_agent, acme_admin):
    client.force_login(acme_admin)
    page = client.get(f"/agents/{clinic_agent.pk}/builder/", **HOST).content.decode()
    assert '<script src="/static/vendor/drawflow-0.0.60/drawflow.min.js">' in page
    # Every script and stylesheet is served from our own static files (works offline, no CDN).
    assert re.findall(r'<script src="([^"]+)"', page) == ["/static/vendor/drawflow-0.0.60/drawflow.min.js",
                                                          "/static/agents/builder.js"]
    assert all(href.startswith("/static/") for href in re.findall(r'<link rel="stylesheet" href="([^"]+)"', page))
    data = json.loads(page.split('<script id="builder-data" type="application/json">')[1].split("</script>")[0])
    assert data["graph"] == graph() and data["problems"] == [] and data["editable"] is True
    assert data["tools"] == ["end_call", "transfer_to_human", "search_knowledge_base", "check_slots"]


def test_draft_then_publish_through_the_builder(client, tenant_a, clinic_agent, acme_admin):
    client.force_login(acme_admin)
    draft = graph()
    draft["nodes"][2]["tools"] = ["send_fax"]
    answer = client.post(f"/agents/{clinic_agent.pk}/builder/draft/", json.dumps(draft),
                         content_type="application/json", **HOST)
    assert answer.status_code == 200
    assert answer.json()["problems"] == [{"node": "booking", "edge": None, "message": (
        "Node 'booking' uses the tool 'send_fax', which does not exist; create it under HTTP tools or remove it.")}]
    refused = client.post(f"/agents/{clinic_agent.pk}/builder/publish/", "", content_type="application/json", **HOST)
    assert refused.status_code == 400 and refused.json()["problems"][0]["node"] == "booking"
    with tenant_context(tenant_a):
        agent = Agent.objects.get(pk=clinic_agent.pk)
        assert agent.current_version.number == 1 and agent.draft_graph == draft

    draft["nodes"][2]["tools"] = ["check_slots", "end_call"]
    published = client.post(f"/agents/{clinic_agent.pk}/builder/publish/", json.dumps(draft),
                            content_type="application/json", **HOST)
    assert published.json() == {"published": True, "version": 2, "problems": []}
    with tenant_context(tenant_a):
        agent = Agent.objects.get(pk=clinic_agent.pk)
        assert agent.current_version.graph == draft and agent.draft_graph is None

    diff = client.get(f"/agents/{clinic_agent.pk}/versions/diff/?a=1&b=2", **HOST).content.decode()
    assert "~ node booking.tools: [&quot;check_slots&quot;] → [&quot;check_slots&quot;, &quot;end_call&quot;]" in diff
    old = client.get(f"/agents/{clinic_agent.pk}/versions/1/graph/", **HOST).content.decode()
    assert "(read-only)" in old and '"editable": false' in old


def test_viewers_cannot_save_drafts(client, tenant_a, clinic_agent, acme_viewer):
    client.force_login(acme_viewer)
    response = client.post(f"/agents/{clinic_agent.pk}/builder/draft/", json.dumps(graph()),
                           content_type="application/json", **HOST)
    assert response.status_code == 403
    assert '"editable": false' in client.get(f"/agents/{clinic_agent.pk}/builder/", **HOST).content.decode()
    with tenant_context(tenant_a):
        assert Agent.objects.get(pk=clinic_agent.pk).draft_graph is None


def test_a_draft_that_is_not_json_is_a_400(client, clinic_agent, acme_admin):
    client.force_login(acme_admin)
    response = client.post(f"/agents/{clinic_agent.pk}/builder/draft/", "{nope", content_type="application/json",
                           **HOST)
    assert response.status_code == 400
    assert response.json()["error"] == "The draft must be a JSON object with nodes and edges."


def test_export_file_and_import_page(client, tenant_a, clinic_agent, acme_admin):
    client.force_login(acme_admin)
    exported = client.get(f"/agents/{clinic_agent.pk}/export/", **HOST)
    assert exported["Content-Disposition"] == f'attachment; filename="agent-{clinic_agent.pk}.json"'
    assert "s3cret" not in exported.content.decode()
    bad = client.post("/agents/import/", {"document": "{nope"}, **HOST)
    assert bad.status_code == 400 and "That is not JSON" in bad.content.decode()
    good = client.post("/agents/import/", {"document": exported.content.decode(), "name": "Clinic 2"}, **HOST)
    assert good.status_code == 302
    with tenant_context(tenant_a):
        assert Agent.objects.get(name="Clinic 2").graph == graph()


def test_tool_secrets_are_never_shown_and_blank_keeps_them(client, tenant_a, clinic_agent, acme_admin):
    client.force_login(acme_admin)
    with tenant_context(tenant_a):
        tool = HttpTool.objects.get(name="check_slots")
    page = client.get(f"/agents/tools/{tool.pk}/", **HOST).content.decode()
    assert "s3cret" not in page and "Authorization" in page
    form = {"name": "check_slots", "description": "Free slots", "parameters": json.dumps(SLOTS["parameters"]),
            "method": "GET", "url": "https://clinic.example/v2/slots/{{day}}", "headers": "{}",
            "secret_header_names": "Authorization", "secret_header_values": "", "timeout_secs": "3",
            "response_fields": "slots"}
    assert client.post(f"/agents/tools/{tool.pk}/", form, **HOST).status_code == 302
    refused = client.post(f"/agents/tools/{tool.pk}/", {**form, "secret_header_values": "Bearer new-secret",
                                                        "timeout_secs": "99"}, **HOST)
    assert refused.status_code == 200 and "new-secret" not in refused.content.decode()
    with tenant_context(tenant_a):
        tool.refresh_from_db()
        assert tool.url == "https://clinic.example/v2/slots/{{day}}" and tool.timeout_secs == 3.0
        assert tool.secret_header_dict() == {"Authorization": "Bearer s3cret"}


def test_the_simple_form_keeps_a_single_prompt_agents_http_tool(client, tenant_a, clinic_agent, acme_admin):
    from apps.agents.graph import single_prompt_graph
    from apps.agents.tests.test_portal import _form

    with tenant_context(tenant_a):
        simple = agent_save(name="Simple", **PROVIDERS, tools=["end_call", "check_slots"])
    client.force_login(acme_admin)
    response = client.post(f"/agents/{simple.pk}/edit/", _form(simple, greeting="Hello again.",
                                                               tools=["end_call", "check_slots"]), **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        version = Agent.objects.get(pk=simple.pk).current_version
        assert version.graph == single_prompt_graph(system_prompt=simple.system_prompt, greeting="Hello again.",
                                                    tools=["end_call", "check_slots"])


def test_mcp_server_pages_never_show_the_secret(client, tenant_a, clinic_agent, acme_admin, acme_viewer):
    from apps.agents.models import McpServer

    client.force_login(acme_admin)
    form = {"name": "calendar", "url": "https://mcp.clinic.example/mcp", "secret_header_names": "Authorization",
            "secret_header_values": "Bearer m3cp", "timeout_secs": "4"}
    assert client.post("/agents/mcp-servers/new/", form, **HOST).status_code == 302
    with tenant_context(tenant_a):
        server = McpServer.objects.get(name="calendar")
    page = client.get(f"/agents/mcp-servers/{server.pk}/", **HOST).content.decode()
    assert "m3cp" not in page and "Authorization" in page
    refused = client.post(f"/agents/mcp-servers/{server.pk}/", {**form, "url": "ftp://mcp.clinic.example/"}, **HOST)
    assert refused.status_code == 200 and "m3cp" not in refused.content.decode()
    assert client.post(f"/agents/mcp-servers/{server.pk}/", {**form, "secret_header_values": ""}, **HOST).status_code == 302
    with tenant_context(tenant_a):
        server.refresh_from_db()
        assert server.secret_header_dict() == {"Authorization": "Bearer m3cp"} and server.timeout_secs == 4.0
    client.force_login(acme_viewer)
    assert client.post("/agents/mcp-servers/new/", {**form, "name": "other"}, **HOST).status_code == 403
