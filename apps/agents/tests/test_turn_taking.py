"""An agent's turn-taking settings (interrupt after N words, acknowledgement words,
the end-of-turn model): checked in agent_config_problems behind every door, shown and
edited in the portal, and carried to the call's VoiceConfig."""
import pytest
from django_tenants.utils import tenant_context

from apps.agents.models import Agent, AgentVersion
from apps.agents.selectors import agent_runtime_config
from apps.agents.services import agent_save
from apps.agents.tests.test_portal import _form
from apps.core.errors import ApplicationError
from apps.telephony.tests.conftest import make_agent
from apps.voice.launch import voice_config

HOST = {"HTTP_HOST": "acme.localhost"}
WORDS = "Interrupt after a whole number of words from 0 (any speech) to 10."


@pytest.fixture
def acme_agent(tenant_a):
    with tenant_context(tenant_a):
        return make_agent("Reception")


@pytest.mark.parametrize(("changes", "details"), [
    ({"interrupt_after_words": 11}, {"interrupt_after_words": WORDS}),
    ({"interrupt_after_words": -1}, {"interrupt_after_words": WORDS}),
    ({"interrupt_after_words": 2.5}, {"interrupt_after_words": WORDS}),
    ({"interrupt_after_words": "two"}, {"interrupt_after_words": WORDS}),
    ({"acknowledgements": "mm-hmm"}, {"acknowledgements": "Acknowledgement words must be a list of words or short phrases."}),
    ({"acknowledgements": ["okay", ""]}, {"acknowledgements": "Acknowledgement words must not be blank."}),
    ({"acknowledgements": [f"w{n}" for n in range(41)]}, {"acknowledgements": "At most 40 acknowledgement words, not 41."}),
    ({"acknowledgements": ["x" * 41]}, {"acknowledgements": "Each acknowledgement must be at most 40 characters."}),
    ({"end_of_turn_model": "yes"}, {"end_of_turn_model": "Must be on or off (true or false)."}),
])
def test_out_of_range_turn_taking_is_refused_and_nothing_changes(tenant_a, acme_agent, changes, details):
    with tenant_context(tenant_a):
        before = Agent.objects.get(pk=acme_agent.pk).config_dict()
        with pytest.raises(ApplicationError) as error:
            agent_save(agent=acme_agent, **changes)
        assert error.value.details == details
        assert Agent.objects.get(pk=acme_agent.pk).config_dict() == before
        assert AgentVersion.objects.filter(agent=acme_agent).count() == 1


def test_the_defaults_interrupt_at_the_first_word_that_is_not_an_acknowledgement_and_leave_the_end_of_turn_model_to_the_agent(tenant_a, acme_agent):
    with tenant_context(tenant_a):
        config = voice_config(agent_runtime_config(agent_version=acme_agent.current_version))
    assert (config.allow_interruptions, config.interrupt_after_words, config.acknowledgements,
            config.end_of_turn_model, config.language) == (True, 1, (), False, "en")


def test_the_portal_edits_turn_taking_and_the_call_gets_it(client, tenant_a, acme_agent, acme_admin):
    client.force_login(acme_admin)
    response = client.post(f"/agents/{acme_agent.pk}/edit/", _form(
        acme_agent, interrupt_after_words="3", acknowledgements=" roger \n\nright on ", end_of_turn_model=""), **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        version = Agent.objects.get(pk=acme_agent.pk).current_version
        assert (version.number, version.interrupt_after_words, version.acknowledgements, version.end_of_turn_model) == (
            2, 3, ["roger", "right on"], False)
        config = voice_config(agent_runtime_config(agent_version=version))
    assert (config.interrupt_after_words, config.acknowledgements, config.end_of_turn_model) == (
        3, ("roger", "right on"), False)
    page = client.get(f"/agents/{acme_agent.pk}/", **HOST).content.decode()
    assert "<dt>Interruptions</dt><dd>after 3 words (acknowledgements not counted)</dd>" in page
    assert "<dt>Acknowledgement words</dt><dd>roger, right on</dd>" in page


def test_the_portal_shows_a_bad_word_count_under_its_field(client, tenant_a, acme_agent, acme_admin):
    client.force_login(acme_admin)
    response = client.post(f"/agents/{acme_agent.pk}/edit/", _form(acme_agent, interrupt_after_words="50"), **HOST)
    assert response.status_code == 200
    assert response.context["form"].errors == {"interrupt_after_words": [WORDS]}
    with tenant_context(tenant_a):
        assert AgentVersion.objects.filter(agent=acme_agent).count() == 1
