"""/api/v1/agents/{id}/export and /api/v1/agents/import: an agency copies an agent
from one client to another through the API."""
import json

from django_tenants.utils import tenant_context

from apps.agents.models import Agent
from apps.agents.services import agent_save
from apps.agents.tests.test_graph import PROVIDERS, graph
from apps.api.services import api_key_create
from apps.providers.models import ProviderAccount


def _client_setup(tenant, *, with_tool: bool):
    from apps.agents.services import http_tool_save
    from apps.agents.tests.test_graph import SLOTS

    with tenant_context(tenant):
        ProviderAccount.objects.create(provider="deepgram", api_key="dg")
        ProviderAccount.objects.create(provider="openai", api_key="oa")
        if with_tool:
            http_tool_save(name="check_slots", description="Free slots", parameters=SLOTS["parameters"], method="GET",
                           url=SLOTS["url"], headers={}, secret_headers={"X-Key": "k3y"}, timeout_secs=2,
                           response_fields=[])
        return api_key_create(name="agency")[1]


def test_export_from_one_client_and_import_into_another(client, tenant_a, tenant_b):
    acme_token = _client_setup(tenant_a, with_tool=True)
    globex_token = _client_setup(tenant_b, with_tool=False)
    with tenant_context(tenant_a):
        agent = agent_save(name="Clinic", **PROVIDERS, graph=graph())
        agent_save(agent=agent, system_prompt="Version two.")
    acme = {"HTTP_AUTHORIZATION": f"Bearer {acme_token}", "HTTP_HOST": "acme.localhost"}
    globex = {"HTTP_AUTHORIZATION": f"Bearer {globex_token}", "HTTP_HOST": "globex.localhost"}

    exported = client.get(f"/api/v1/agents/{agent.pk}/export?version=1", **acme)
    assert exported.status_code == 200
    document = exported.json()
    assert document["format"] == "switchboard.agent/1" and document["graph"] == graph()
    assert document["config"]["system_prompt"] == "You are Acme Dental's receptionist."  # version 1, not 2
    assert "k3y" not in exported.content.decode()

    imported = client.post("/api/v1/agents/import?name=Clinic%20copy", data=json.dumps(document),
                           content_type="application/json", **globex)
    assert imported.status_code == 201
    assert (imported.json()["name"], imported.json()["version"]) == ("Clinic copy", 1)
    with tenant_context(tenant_b):
        assert Agent.objects.get(name="Clinic copy").graph == graph()


def test_a_broken_import_is_a_400_naming_the_problem_and_writes_nothing(client, tenant_a):
    token = _client_setup(tenant_a, with_tool=False)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_HOST": "acme.localhost"}
    document = {"format": "switchboard.agent/1", "name": "X", "config": PROVIDERS, "graph": graph(), "http_tools": []}
    response = client.post("/api/v1/agents/import", data=json.dumps(document), content_type="application/json",
                           **headers)
    assert response.status_code == 400
    assert response.json()["details"]["graph"] == ("Node 'booking' uses the tool 'check_slots', which does not exist; "
                                                   "create it under HTTP tools or remove it.")
    assert client.get("/api/v1/agents/999/export", **headers).status_code == 404
    with tenant_context(tenant_a):
        assert Agent.objects.count() == 0
