"""The client admin (agency staff through the support link): HTTP tools whose secret
values are never rendered back, and agents exported / imported as JSON."""
import json

from django_tenants.utils import tenant_context

from apps.agents.models import Agent, HttpTool
from apps.agents.services import agent_save, http_tool_save
from apps.agents.tests.test_graph import PROVIDERS, SLOTS, graph
from apps.agents.tests.test_hostile_input import client_admin  # noqa: F401 (fixture)
from apps.providers.models import ProviderAccount

HOST = {"HTTP_HOST": "acme.localhost"}


def _clinic(tenant):
    with tenant_context(tenant):
        ProviderAccount.objects.create(provider="deepgram", api_key="dg")
        ProviderAccount.objects.create(provider="openai", api_key="oa")
        tool = http_tool_save(name="check_slots", description="Free slots", parameters=SLOTS["parameters"],
                              method="GET", url=SLOTS["url"], headers={}, secret_headers={"Authorization": "Bearer s3cret"},
                              timeout_secs=2, response_fields=["slots"])
        return tool, agent_save(name="Clinic", **PROVIDERS, graph=graph())


def test_tool_secrets_never_render_and_blank_keeps_them(tenant_a, client_admin):  # noqa: F811
    tool, _ = _clinic(tenant_a)
    url = f"/admin/agents/httptool/{tool.pk}/change/"
    page = client_admin.get(url, **HOST).content.decode()
    assert "s3cret" not in page and 'value="Authorization"' in page
    form = {"name": "check_slots", "description": "Free slots v2", "parameters": json.dumps(SLOTS["parameters"]),
            "method": "GET", "url": SLOTS["url"], "headers": "{}", "timeout_secs": "4", "response_fields": '["slots"]',
            "secret_header_names": "Authorization", "secret_header_values": ""}
    assert client_admin.post(url, form, **HOST).status_code == 302
    refused = client_admin.post(url, {**form, "url": "ftp://x", "secret_header_values": "Bearer other"}, **HOST)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {"url": ["The URL must be an http(s) URL with a host."]}
    assert "Bearer other" not in refused.content.decode()
    with tenant_context(tenant_a):
        tool = HttpTool.objects.get(pk=tool.pk)
        assert (tool.description, tool.timeout_secs, tool.url) == ("Free slots v2", 4.0, SLOTS["url"])
        assert tool.secret_header_dict() == {"Authorization": "Bearer s3cret"}


def test_export_action_and_import_view(tenant_a, client_admin):  # noqa: F811
    _, agent = _clinic(tenant_a)
    exported = client_admin.post("/admin/agents/agent/", {"action": "export_json", "_selected_action": [agent.pk]},
                                 **HOST)
    document = json.loads(exported.content)
    assert document["graph"] == graph() and "s3cret" not in exported.content.decode()
    bad = client_admin.post("/admin/agents/agent/import/", {"document": "nope"}, **HOST)
    assert bad.status_code == 400 and "That is not JSON" in bad.content.decode()
    good = client_admin.post("/admin/agents/agent/import/", {"document": json.dumps(document), "name": "Copy"}, **HOST)
    assert good.status_code == 302
    with tenant_context(tenant_a):
        assert Agent.objects.get(name="Copy").graph == graph()
