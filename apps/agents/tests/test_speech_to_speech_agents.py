"""Speech-to-speech agents: the pipeline mode and its provider are checked on save like the
cascade's stages (kind, settings, credential), the runtime config carries the s2s stage, and
the portal editor saves one."""
import pytest
from django_tenants.utils import tenant_context

from apps.agents.models import Agent
from apps.agents.selectors import agent_runtime_config
from apps.agents.services import agent_save
from apps.core.errors import ApplicationError
from apps.providers.models import ProviderAccount

HOST = {"HTTP_HOST": "acme.localhost"}
S2S = {"pipeline_mode": "speech_to_speech", "s2s_provider": "openai_realtime",
       "s2s_settings": {"model": "gpt-realtime", "voice": "marin"}}


def test_a_speech_to_speech_agent_needs_only_its_s2s_key_and_runs_one_stage(tenant_a):
    with tenant_context(tenant_a):
        ProviderAccount.objects.create(provider="openai_realtime", api_key="sk-rt")
        # No Deepgram/OpenAI/Cartesia key: the cascade's defaults are unused in this mode.
        agent = agent_save(name="Realtime", greeting="Hi.", tools=["end_call"], **S2S)
        version = agent.current_version
        assert (version.pipeline_mode, version.s2s_provider, version.s2s_settings) == (
            "speech_to_speech", "openai_realtime", {"model": "gpt-realtime", "voice": "marin"})
        config = agent_runtime_config(agent_version=version)
        assert (config.pipeline_mode, config.s2s.kind, config.s2s.provider, config.s2s.settings, config.s2s.key_id) == (
            "speech_to_speech", "speech_to_speech", "openai_realtime", {"model": "gpt-realtime", "voice": "marin"},
            None)


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"s2s_provider": ""}, "s2s_provider", "A speech-to-speech agent needs a speech-to-speech provider."),
    ({"s2s_provider": "deepgram"}, "s2s_provider", "Deepgram does not offer Speech-to-speech."),
    ({"s2s_settings": {"voice": "marin"}}, "s2s_settings", "OpenAI Realtime Speech-to-speech needs 'model'."),
    ({"s2s_settings": {"model": "gpt-realtime", "transcription_model": "nope"}}, "s2s_settings",
     "OpenAI Realtime Speech-to-speech 'transcription_model' must be one of "
     "['gpt-realtime-whisper', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe', 'whisper-1']."),
    ({"s2s_provider": "gemini_live", "s2s_settings": {"model": "gemini-live-2.5-flash-preview"}}, "s2s_provider",
     "No Google Gemini Live credential is configured: add a key for Google Gemini Live under Provider accounts first."),
    ({"pipeline_mode": "telepathy"}, "pipeline_mode",
     "The pipeline mode must be one of ['cascade', 'speech_to_speech']."),
])
def test_a_misconfigured_speech_to_speech_agent_is_refused_and_nothing_is_saved(tenant_a, changes, field, message):
    with tenant_context(tenant_a):
        ProviderAccount.objects.create(provider="openai_realtime", api_key="sk-rt")
        with pytest.raises(ApplicationError) as refused:
            agent_save(name="Realtime", **{**S2S, **changes})
        assert refused.value.details[field] == message
        assert not Agent.objects.filter(name="Realtime").exists()


def test_a_speech_to_speech_agent_refuses_a_workflow_with_edges(tenant_a):
    from apps.agents.graph import single_prompt_graph

    with tenant_context(tenant_a):
        ProviderAccount.objects.create(provider="openai_realtime", api_key="sk-rt")
        graph = single_prompt_graph(system_prompt="Be brief.", greeting="Hi.", tools=["end_call"])
        start = next(node for node in graph["nodes"] if node["type"] == "start")
        graph["nodes"].append({"id": "bye", "type": "end", "line": "Bye."})
        graph["edges"] = [{"id": "done", "from": start["id"], "to": "bye", "condition": "the caller is done"}]
        with pytest.raises(ApplicationError) as refused:
            agent_save(name="Realtime", graph=graph, **S2S)
        assert refused.value.details["graph"] == ("A speech-to-speech agent runs one prompt: remove the workflow's "
                                                  "edges or choose the cascade pipeline.")


def test_the_portal_editor_saves_a_speech_to_speech_agent(client, tenant_a, acme_admin):
    with tenant_context(tenant_a):
        ProviderAccount.objects.create(provider="openai_realtime", api_key="sk-rt")
    client.force_login(acme_admin)
    page = client.get("/agents/new/", **HOST).content.decode()
    assert '<option value="openai_realtime">OpenAI Realtime</option>' in page
    assert '<option value="gemini_live">Google Gemini Live</option>' in page
    response = client.post("/agents/new/", {
        "name": "Realtime desk", "greeting": "Hi", "system_prompt": "Be brief.", "language": "en",
        "pipeline_mode": "speech_to_speech", "s2s_provider": "openai_realtime", "s2s_model": "gpt-realtime",
        "s2s_voice": "cedar", "s2s_settings": "", "stt_provider": "deepgram", "llm_provider": "openai",
        "tts_provider": "piper", "vad_stop_secs": "0.6", "idle_timeout_secs": "30", "max_call_secs": "600",
        "fallback_line": "Sorry.",
    }, **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        version = Agent.objects.get(name="Realtime desk").current_version
        assert (version.pipeline_mode, version.s2s_provider, version.s2s_settings) == (
            "speech_to_speech", "openai_realtime", {"model": "gpt-realtime", "voice": "cedar"})
    detail = client.get(response.url, **HOST).content.decode()
    assert "openai_realtime · model gpt-realtime · voice cedar" in detail
