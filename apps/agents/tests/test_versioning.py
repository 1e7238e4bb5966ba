"""Editing an agent makes a new immutable version; misconfigured providers are refused on save."""
import pytest
from django_tenants.utils import tenant_context

from apps.agents.models import Agent, AgentVersion
from apps.agents.selectors import agent_runtime_config
from apps.agents.services import agent_save
from apps.core.errors import ApplicationError
from apps.providers.models import ProviderAccount


def _accounts():
    ProviderAccount.objects.create(provider="deepgram", api_key="dg-key")
    ProviderAccount.objects.create(provider="openai", api_key="oa-key")


def test_editing_an_agent_makes_a_new_version(tenant_a):
    with tenant_context(tenant_a):
        _accounts()
        agent = agent_save(
            name="Reception", greeting="Hello, Acme Dental.", stt_provider="deepgram", stt_settings={"model": "nova-2"},
            llm_provider="openai", llm_settings={"model": "gpt-4o-mini"}, tts_provider="piper", tts_settings={},
        )
        first = agent.current_version
        assert (first.number, first.greeting) == (1, "Hello, Acme Dental.")
        agent = agent_save(agent=agent, greeting="Hi there!", tools=["end_call"])
        second = agent.current_version
        assert (second.number, second.greeting, second.tools) == (2, "Hi there!", ["end_call"])
        first.refresh_from_db()
        assert (first.greeting, first.tools) == ("Hello, Acme Dental.", [])
        assert list(AgentVersion.objects.filter(agent=agent).values_list("number", flat=True)) == [2, 1]
        with pytest.raises(ValueError):
            first.greeting = "changed"
            first.save()


def test_runtime_config_carries_the_version_and_no_keys(tenant_a):
    with tenant_context(tenant_a):
        _accounts()
        agent = agent_save(
            name="Reception", system_prompt="Be brief.", stt_provider="deepgram", stt_settings={"model": "nova-2"},
            llm_provider="openai", llm_settings={"model": "gpt-4o-mini", "temperature": 0.2}, tts_provider="piper",
            tts_settings={}, tools=["end_call", "transfer_to_human"], transfer_number="+15550001111",
            end_call_phrases=["goodbye"], vad_stop_secs=0.4, max_call_secs=300,
        )
        config = agent_runtime_config(agent_version=agent.current_version)
        assert config.agent_version_id == agent.current_version.pk
        assert config.system_prompt == "Be brief."
        # A selector only reads: keys are leased by call_stream_start (apps/calls/tests/test_call_life.py).
        assert (config.stt.provider, config.stt.api_key, config.stt.key_id, config.stt.settings) == (
            "deepgram", "", None, {"model": "nova-2"})
        assert (config.llm.provider, config.llm.api_key, config.llm.settings) == (
            "openai", "", {"model": "gpt-4o-mini", "temperature": 0.2})
        assert (config.tts.provider, config.tts.api_key, config.tts.key_id) == ("piper", "", None)
        assert config.tools == ("end_call", "transfer_to_human")
        assert config.end_call_phrases == ("goodbye",)
        assert (config.vad_stop_secs, config.max_call_secs, config.transfer_number) == (0.4, 300.0, "+15550001111")


@pytest.mark.parametrize(
    ("changes", "message", "details"),
    [
        ({"tts_provider": "elevenlabs", "tts_settings": {"voice": "v1"}},
         "The agent cannot be saved: No ElevenLabs credential is configured: add a key for ElevenLabs under Provider accounts first.",
         {"tts_provider": "No ElevenLabs credential is configured: add a key for ElevenLabs under Provider accounts first."}),
        ({"llm_settings": {}}, "The agent cannot be saved: OpenAI LLM needs 'model'.",
         {"llm_settings": "OpenAI LLM needs 'model'."}),
        ({"tools": ["transfer_to_human"]}, "The agent cannot be saved: The transfer_to_human tool needs a transfer number.",
         {"transfer_number": "The transfer_to_human tool needs a transfer number."}),
    ],
)
def test_misconfigured_provider_is_refused_on_save(tenant_a, changes, message, details):
    with tenant_context(tenant_a):
        _accounts()
        agent = agent_save(name="Reception", stt_provider="deepgram", stt_settings={}, llm_provider="openai",
                           llm_settings={"model": "gpt-4o-mini"}, tts_provider="piper", tts_settings={})
        with pytest.raises(ApplicationError) as error:
            agent_save(agent=agent, **changes)
        assert error.value.message == message
        assert error.value.details == details
        agent.refresh_from_db()
        assert agent.current_version.number == 1
        assert AgentVersion.objects.filter(agent=agent).count() == 1
        assert Agent.objects.get(pk=agent.pk).tts_provider == "piper"
