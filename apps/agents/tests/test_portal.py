"""Portal agent pages: admins edit through agent_save (a new version), viewers
read only, validation errors show on the form with nothing changed, and another
client's agent ids are not found."""
import pytest
from django_tenants.utils import tenant_context

from apps.agents.models import Agent, AgentVersion
from apps.agents.services import agent_save
from apps.providers.models import ProviderAccount
from apps.telephony.tests.conftest import make_agent

HOST = {"HTTP_HOST": "acme.localhost"}


def _form(agent, **changes):
    data = {
        "name": agent.name, "greeting": agent.greeting, "system_prompt": agent.system_prompt,
        "language": agent.language, "stt_provider": agent.stt_provider, "stt_settings": '{"model": "nova-2"}',
        "llm_provider": agent.llm_provider, "llm_settings": '{"model": "gpt-4o-mini"}',
        "tts_provider": agent.tts_provider, "tts_settings": "{}", "vad_stop_secs": "0.5",
        "allow_interruptions": "on", "idle_timeout_secs": "30", "max_call_secs": "600", "end_call_phrases": "",
        "transfer_number": "", "fallback_line": agent.fallback_line,
    }
    data.update(changes)
    return data


@pytest.fixture
def acme_agent(tenant_a):
    with tenant_context(tenant_a):
        return make_agent("Reception")


def test_admin_edit_makes_a_new_version(client, tenant_a, acme_agent, acme_admin):
    client.force_login(acme_admin)
    page = client.get(f"/agents/{acme_agent.pk}/edit/", **HOST)
    assert page.status_code == 200
    response = client.post(f"/agents/{acme_agent.pk}/edit/", _form(
        acme_agent, greeting="Good morning, Acme Dental.", end_call_phrases="goodbye\nbye now",
        tools=["end_call"]), **HOST)
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{acme_agent.pk}/"
    with tenant_context(tenant_a):
        agent = Agent.objects.get(pk=acme_agent.pk)
        version = agent.current_version
        assert (version.number, version.greeting, version.end_call_phrases, version.tools) == (
            2, "Good morning, Acme Dental.", ["goodbye", "bye now"], ["end_call"])
        assert list(AgentVersion.objects.filter(agent=agent).values_list("number", flat=True)) == [2, 1]
    history = client.get(f"/agents/{acme_agent.pk}/versions/", **HOST).content.decode()
    assert "v2 (current)" in history and "v1" in history


def test_admin_creates_an_agent(client, tenant_a, acme_agent, acme_admin):
    client.force_login(acme_admin)
    response = client.post("/agents/new/", _form(acme_agent, name="After hours"), **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        created = Agent.objects.get(name="After hours")
        assert (created.current_version.number, response["Location"]) == (1, f"/agents/{created.pk}/")


def test_validation_error_is_shown_and_nothing_changes(client, tenant_a, acme_agent, acme_admin):
    client.force_login(acme_admin)
    response = client.post(f"/agents/{acme_agent.pk}/edit/", _form(
        acme_agent, greeting="Changed", tts_provider="elevenlabs", tts_settings='{"voice": "v1"}'), **HOST)
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "tts_provider": ["No ElevenLabs credential is configured: add a key for ElevenLabs under Provider accounts first."]
    }
    assert "No ElevenLabs credential is configured" in response.content.decode()
    with tenant_context(tenant_a):
        agent = Agent.objects.get(pk=acme_agent.pk)
        assert (agent.greeting, agent.tts_provider, agent.current_version.number) == ("Hello!", "piper", 1)
        assert AgentVersion.objects.filter(agent=agent).count() == 1


def test_bad_json_settings_are_a_form_error(client, tenant_a, acme_agent, acme_admin):
    client.force_login(acme_admin)
    response = client.post(f"/agents/{acme_agent.pk}/edit/", _form(acme_agent, stt_settings="{model: nova"), **HOST)
    assert response.status_code == 200
    assert response.context["form"].errors == {"stt_settings": ["Enter a valid JSON."]}
    with tenant_context(tenant_a):
        assert AgentVersion.objects.filter(agent_id=acme_agent.pk).count() == 1


def test_viewer_reads_but_gets_403_on_post(client, tenant_a, acme_agent, acme_viewer):
    client.force_login(acme_viewer)
    assert client.get("/agents/", **HOST).status_code == 200
    detail = client.get(f"/agents/{acme_agent.pk}/", **HOST)
    assert detail.status_code == 200
    assert f"/agents/{acme_agent.pk}/edit/" not in detail.content.decode()
    assert client.get(f"/agents/{acme_agent.pk}/versions/", **HOST).status_code == 200
    response = client.post(f"/agents/{acme_agent.pk}/edit/", _form(acme_agent, greeting="Hijacked"), **HOST)
    assert response.status_code == 403
    assert client.post("/agents/new/", _form(acme_agent, name="Sneaky"), **HOST).status_code == 403
    with tenant_context(tenant_a):
        assert (Agent.objects.get(pk=acme_agent.pk).greeting, Agent.objects.count()) == ("Hello!", 1)
        assert AgentVersion.objects.count() == 1


def test_acme_user_gets_404_for_globex_agent_ids(client, tenant_b, acme_admin):
    with tenant_context(tenant_b):
        ProviderAccount.objects.create(provider="deepgram", api_key="dg")
        ProviderAccount.objects.create(provider="openai", api_key="oa")
        globex_agent = agent_save(name="Globex secret desk", stt_provider="deepgram", stt_settings={},
                                  llm_provider="openai", llm_settings={"model": "gpt-4o-mini"},
                                  tts_provider="piper", tts_settings={})
    client.force_login(acme_admin)
    for suffix in ("", "edit/", "versions/"):
        response = client.get(f"/agents/{globex_agent.pk}/{suffix}", **HOST)
        assert response.status_code == 404
        assert "Globex secret desk" not in response.content.decode()
    assert client.post(f"/agents/{globex_agent.pk}/edit/", {"name": "x"}, **HOST).status_code == 404
    assert "Globex secret desk" not in client.get("/agents/", **HOST).content.decode()
    with tenant_context(tenant_b):
        assert AgentVersion.objects.filter(agent=globex_agent).count() == 1


def test_editor_pickers_fill_the_provider_settings(client, tenant_a, acme_agent, acme_admin):
    client.force_login(acme_admin)
    page = client.get(f"/agents/{acme_agent.pk}/edit/", **HOST).content.decode()
    # The stored model shows in its picker (not in the JSON box), and the picker suggests the vendor's models.
    assert 'name="llm_model" value="gpt-4o-mini"' in page
    assert '"gpt-4.1-mini"' in page and 'list="llm-models"' in page
    assert '<option value="en-GB">English (UK)</option>' in page
    response = client.post(f"/agents/{acme_agent.pk}/edit/", {
        "name": acme_agent.name, "greeting": "Hi", "system_prompt": "Be brief.", "language": "en-GB",
        "stt_provider": "deepgram", "stt_model": "nova-3", "stt_settings": "",
        "llm_provider": "openai", "llm_model": "gpt-4.1-mini", "llm_temperature": "0.4", "llm_settings": "{}",
        "tts_provider": "piper", "tts_settings": "", "vad_stop_secs": "0.6", "idle_timeout_secs": "30",
        "max_call_secs": "600", "fallback_line": "Sorry.",
    }, **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        version = Agent.objects.get(pk=acme_agent.pk).current_version
        assert (version.language, version.stt_settings, version.llm_settings) == (
            "en-GB", {"model": "nova-3"}, {"model": "gpt-4.1-mini", "temperature": 0.4})


def test_editor_refuses_an_unknown_language(client, tenant_a, acme_agent, acme_admin):
    client.force_login(acme_admin)
    response = client.post(f"/agents/{acme_agent.pk}/edit/", _form(acme_agent, language="klingon"), **HOST)
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["language"]
    with tenant_context(tenant_a):
        assert AgentVersion.objects.filter(agent=acme_agent).count() == 1
