"""Hostile agent settings are refused with a message naming the field, through every
door that saves an agent (the service, the portal form, the client admin), never a
500, and nothing changes."""
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client as HttpClient
from django_tenants.utils import tenant_context

from apps.agents.models import Agent, AgentVersion
from apps.agents.services import agent_save
from apps.core.errors import ApplicationError
from apps.telephony.tests.conftest import make_agent

HOST = {"HTTP_HOST": "acme.localhost"}
VAD = "The pause that ends the caller's turn must be between 0.1 and 5 seconds."
IDLE = "The idle timeout must be 0 (off) or between 1 and 3600 seconds."
MAX_CALL = "The maximum call length must be a whole number of seconds from 1 to 14400 (4 hours)."
E164 = "Use the international E.164 form, e.g. +14155550100."
TEMPERATURE = "OpenAI LLM 'temperature' must be between 0 and 2, not {}."
MAX_TOKENS = "OpenAI LLM 'max_tokens' must be between 1 and 16384, not {}."

HOSTILE = [
    ({"vad_stop_secs": 0.0}, {"vad_stop_secs": VAD}),
    ({"vad_stop_secs": 0.05}, {"vad_stop_secs": VAD}),
    ({"vad_stop_secs": 3600.0}, {"vad_stop_secs": VAD}),
    ({"vad_stop_secs": float("nan")}, {"vad_stop_secs": VAD}),
    ({"vad_stop_secs": "soon"}, {"vad_stop_secs": VAD}),
    ({"llm_settings": {"model": "gpt-4o-mini", "temperature": 7}}, {"llm_settings": TEMPERATURE.format(7)}),
    ({"llm_settings": {"model": "gpt-4o-mini", "temperature": -1}}, {"llm_settings": TEMPERATURE.format(-1)}),
    ({"llm_settings": {"model": "gpt-4o-mini", "max_tokens": 0}}, {"llm_settings": MAX_TOKENS.format(0)}),
    ({"llm_settings": {"model": "gpt-4o-mini", "max_tokens": 2**40}}, {"llm_settings": MAX_TOKENS.format(2**40)}),
    ({"idle_timeout_secs": -5.0}, {"idle_timeout_secs": IDLE}),
    ({"idle_timeout_secs": 0.5}, {"idle_timeout_secs": IDLE}),
    ({"idle_timeout_secs": 1e300}, {"idle_timeout_secs": IDLE}),
    ({"max_call_secs": -1}, {"max_call_secs": MAX_CALL}),
    ({"max_call_secs": 0}, {"max_call_secs": MAX_CALL}),
    ({"max_call_secs": 2**31}, {"max_call_secs": MAX_CALL}),
    ({"max_call_secs": 4 * 3600 + 1}, {"max_call_secs": MAX_CALL}),
    ({"max_call_secs": 90.5}, {"max_call_secs": MAX_CALL}),
    ({"transfer_number": "555-0100"}, {"transfer_number": E164}),
    ({"transfer_number": "+1 800 FLOWERS"}, {"transfer_number": E164}),
    ({"transfer_number": "+12"}, {"transfer_number": E164}),
    ({"transfer_number": "+999 123 456 789"}, {"transfer_number": E164}),
    ({"transfer_number": "+1" + "2" * 40}, {"transfer_number": E164}),
    ({"transfer_number": "tel:+14155550100"}, {"transfer_number": E164}),
    ({"end_call_phrases": ["bye " * 200]}, {"end_call_phrases": "Each end-call phrase must be at most 100 characters; one has 800."}),
    ({"end_call_phrases": [f"bye {n}" for n in range(21)]}, {"end_call_phrases": "At most 20 end-call phrases, not 21."}),
    ({"end_call_phrases": {"bye": 1}}, {"end_call_phrases": "End-call phrases must be a list of phrases."}),
    ({"end_call_phrases": ["bye", 7]}, {"end_call_phrases": "End-call phrases must be a list of phrases."}),
    ({"tools": "end_call"}, {"tools": "Tools must be a list; choose from ['end_call', 'transfer_to_human', 'search_knowledge_base']."}),
]


@pytest.fixture
def acme_agent(tenant_a):
    with tenant_context(tenant_a):
        return make_agent("Reception")


@pytest.mark.parametrize(("changes", "details"), HOSTILE)
def test_the_service_refuses_hostile_settings_and_changes_nothing(tenant_a, acme_agent, changes, details):
    with tenant_context(tenant_a):
        before = Agent.objects.get(pk=acme_agent.pk).config_dict()
        with pytest.raises(ApplicationError) as error:
            agent_save(agent=acme_agent, **changes)
        assert error.value.details == details
        assert error.value.message == f"The agent cannot be saved: {next(iter(details.values()))}"
        assert Agent.objects.get(pk=acme_agent.pk).config_dict() == before
        assert AgentVersion.objects.filter(agent=acme_agent).count() == 1
        with pytest.raises(ApplicationError):
            agent_save(name="New one", **changes)
        assert Agent.objects.count() == 1


@pytest.mark.parametrize(("changes", "stored"), [
    ({"vad_stop_secs": 0.1, "idle_timeout_secs": 0.0, "max_call_secs": 4 * 3600}, {"vad_stop_secs": 0.1}),
    ({"vad_stop_secs": 5.0, "idle_timeout_secs": 3600.0, "max_call_secs": 1}, {"max_call_secs": 1}),
    ({"tools": ["transfer_to_human"], "transfer_number": "+44 (20) 7946-0958"}, {"transfer_number": "+442079460958"}),
    ({"tools": ["transfer_to_human"], "transfer_number": "+15550100999"}, {"transfer_number": "+15550100999"}),
    ({"end_call_phrases": ["  goodbye  ", "x" * 100]}, {"end_call_phrases": ["goodbye", "x" * 100]}),
    ({"llm_settings": {"model": "gpt-4o-mini", "temperature": 2, "max_tokens": 16384}},
     {"llm_settings": {"model": "gpt-4o-mini", "temperature": 2, "max_tokens": 16384}}),
])
def test_the_edges_are_accepted_and_stored_normalised(tenant_a, acme_agent, changes, stored):
    with tenant_context(tenant_a):
        saved = agent_save(agent=acme_agent, **changes)
        version = saved.current_version
        assert {name: getattr(version, name) for name in stored} == stored
        assert version.number == 2


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


PORTAL = [
    ({"vad_stop_secs": "60"}, {"vad_stop_secs": [VAD]}),
    # The editor's pickers: a setting's refusal shows under its own field.
    ({"llm_temperature": "9.5"}, {"llm_temperature": [TEMPERATURE.format(9.5)]}),
    ({"llm_settings": '{"model": "gpt-4o-mini", "temperature": 9.5}'}, {"llm_temperature": [TEMPERATURE.format(9.5)]}),
    ({"llm_settings": "{}"}, {"llm_model": ["OpenAI LLM needs 'model'."]}),
    ({"llm_settings": '{"model": "gpt-4o-mini", "max_tokens": 99999999999999999999}'},
     {"llm_settings": [MAX_TOKENS.format(99999999999999999999)]}),
    ({"idle_timeout_secs": "-1"}, {"idle_timeout_secs": [IDLE]}),
    ({"max_call_secs": "99999999999999"}, {"max_call_secs": [MAX_CALL]}),
    ({"tools": ["transfer_to_human"], "transfer_number": "call my boss"}, {"transfer_number": [E164]}),
    ({"end_call_phrases": "bye\n" + "z" * 5000}, {"end_call_phrases": [
        "Each end-call phrase must be at most 100 characters; one has 5000."]}),
]


@pytest.mark.parametrize(("changes", "errors"), PORTAL)
def test_the_portal_shows_the_refusal_under_the_field(client, tenant_a, acme_agent, acme_admin, changes, errors):
    client.force_login(acme_admin)
    response = client.post(f"/agents/{acme_agent.pk}/edit/", _form(acme_agent, **changes), **HOST)
    assert response.status_code == 200
    assert response.context["form"].errors == errors
    with tenant_context(tenant_a):
        assert AgentVersion.objects.filter(agent=acme_agent).count() == 1


@pytest.fixture
def client_admin(tenant_a, agency_owner):
    """A browser in Acme's client admin, entered through the audited support link."""
    browser = HttpClient()
    browser.force_login(agency_owner)
    link = browser.get(f"/admin/tenancy/client/{tenant_a.pk}/open-admin/", HTTP_HOST="localhost")["Location"]
    token = parse_qs(urlparse(link).query)["token"][0]
    assert browser.get(f"/support/enter/?token={token}", **HOST)["Location"] == "/admin/"
    return browser


def _admin_form(agent, **changes):
    data = {**_form(agent), "is_active": "on", "tools": "[]", "end_call_phrases": "[]",
            "interrupt_after_words": "2", "acknowledgements": "[]", "end_of_turn_model": "on",
            "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0", **changes}  # the read-only versions inline
    return {key: value for key, value in data.items() if value is not None}


ADMIN = [
    ({"vad_stop_secs": "0"}, {"vad_stop_secs": [VAD]}),
    ({"idle_timeout_secs": "1e309"}, {"idle_timeout_secs": ["Enter a number."]}),
    ({"idle_timeout_secs": "-30"}, {"idle_timeout_secs": [IDLE]}),
    ({"max_call_secs": "99999999999"}, {"max_call_secs": [MAX_CALL]}),
    ({"max_call_secs": "86400"}, {"max_call_secs": [MAX_CALL]}),
    ({"transfer_number": "0800 123 456"}, {"transfer_number": [E164]}),
    ({"end_call_phrases": '"goodbye"'}, {"end_call_phrases": ["End-call phrases must be a list of phrases."]}),
    ({"llm_settings": '{"model": "gpt-4o-mini", "temperature": 3}'}, {"llm_settings": [TEMPERATURE.format(3)]}),
]


@pytest.mark.parametrize(("changes", "errors"), ADMIN)
def test_the_client_admin_shows_the_refusal_under_the_field(tenant_a, acme_agent, client_admin, changes, errors):
    url = f"/admin/agents/agent/{acme_agent.pk}/change/"
    response = client_admin.post(url, _admin_form(acme_agent, **changes), **HOST)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == errors
    with tenant_context(tenant_a):
        assert AgentVersion.objects.filter(agent=acme_agent).count() == 1


def test_the_client_admin_saves_a_sane_edit_as_a_new_version(tenant_a, acme_agent, client_admin):
    response = client_admin.post(f"/admin/agents/agent/{acme_agent.pk}/change/", _admin_form(
        acme_agent, tools='["transfer_to_human"]', transfer_number="+1 415 555 0100", max_call_secs="14400"), **HOST)
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_context(tenant_a):
        version = Agent.objects.get(pk=acme_agent.pk).current_version
        assert (version.number, version.transfer_number, version.max_call_secs) == (2, "+14155550100", 14400)
