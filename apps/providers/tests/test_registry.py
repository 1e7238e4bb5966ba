"""Each vendor builds its Pipecat service from configuration (construction only, no network)."""
import pytest

from apps.agents.selectors import ProviderSpec
from apps.core.errors import ApplicationError
from apps.providers import registry

CASES = [
    ("stt", "deepgram", {"model": "nova-2", "language": "en"}, {}, "DeepgramSTTService"),
    ("stt", "openai", {"model": "whisper-1"}, {}, "OpenAISTTService"),
    ("stt", "openai_compatible", {"model": "Systran/faster-whisper-small"}, {"base_url": "http://127.0.0.1:9/v1"}, "OpenAISTTService"),
    ("stt", "speechmatics", {"language": "en"}, {}, "SpeechmaticsSTTService"),
    ("stt", "sarvam", {"model": "saaras:v3", "language": "hi-IN"}, {}, "SarvamSTTService"),
    ("llm", "openai", {"model": "gpt-4o-mini", "temperature": 0.3}, {}, "OpenAILLMService"),
    ("llm", "openai_compatible", {"model": "llama-3.1-8b-instant"}, {"base_url": "https://api.groq.com/openai/v1"}, "OpenAILLMService"),
    ("llm", "azure_openai", {"model": "gpt4o-deploy", "api_version": "2024-10-21"}, {"base_url": "https://x.openai.azure.com"}, "AzureLLMService"),
    ("llm", "gemini", {"model": "gemini-2.0-flash"}, {}, "GoogleLLMService"),
    ("llm", "bedrock", {"model": "anthropic.claude-3-haiku-20240307-v1:0"}, {"secret": "aws-secret", "region": "eu-west-1"}, "AWSBedrockLLMService"),
    ("tts", "elevenlabs", {"voice": "21m00Tcm4TlvDq8ikWAM", "model": "eleven_flash_v2_5"}, {}, "ElevenLabsTTSService"),
    ("tts", "cartesia", {"voice": "a0e99841-438c-4a64-b679-ae501e7d6091", "model": "sonic-2"}, {}, "CartesiaTTSService"),
    ("tts", "deepgram", {"voice": "aura-2-thalia-en"}, {}, "DeepgramTTSService"),
    ("tts", "openai", {"voice": "alloy", "model": "gpt-4o-mini-tts"}, {}, "OpenAITTSService"),
    ("tts", "openai_compatible", {"voice": "alloy"}, {"base_url": "http://127.0.0.1:9/v1"}, "OpenAITTSService"),
    ("tts", "piper", {}, {}, "PiperTTSService"),
]


@pytest.mark.parametrize(("kind", "provider", "settings", "account", "class_name"), CASES)
def test_each_vendor_builds_its_pipecat_service(kind, provider, settings, account, class_name):
    registry.settings_validate(kind=kind, provider=provider, settings=settings)
    spec = ProviderSpec(kind=kind, provider=provider, settings=settings, api_key="sk-test", key_id=1, **account)
    builder = {"stt": registry.build_stt, "llm": registry.build_llm, "tts": registry.build_tts}[kind]
    service = builder(spec)
    assert type(service).__name__ == class_name
    if not (kind == "llm" or (kind == "tts" and provider in ("openai", "openai_compatible"))):
        # telephony audio: 8 kHz is asked for at construction (applied when the pipeline starts)
        assert service._init_sample_rate == 8000
    if "model" in settings:
        assert service._settings.model == settings["model"]
    if "voice" in settings:
        assert service._settings.voice == settings["voice"]


def test_openai_tts_is_labelled_24khz_whatever_is_asked():
    spec = ProviderSpec(kind="tts", provider="openai", settings={"voice": "alloy"}, api_key="sk")
    assert registry.build_tts(spec, sample_rate=8000)._init_sample_rate == 24000


def test_openai_compatible_llm_uses_the_account_base_url():
    spec = ProviderSpec(kind="llm", provider="openai_compatible", settings={"model": "m"}, api_key="k",
                        base_url="http://127.0.0.1:8111/v1")
    service = registry.build_llm(spec)
    assert str(service._client.base_url) == "http://127.0.0.1:8111/v1/"


@pytest.mark.parametrize(
    ("kind", "provider", "settings", "message"),
    [
        ("tts", "elevenlabs", {}, "ElevenLabs TTS needs 'voice'."),
        ("llm", "openai", {"model": "gpt-4o-mini", "temprature": 0.2}, "OpenAI LLM has no setting temprature; known: max_tokens, model, temperature."),
        ("llm", "openai", {"model": "gpt-4o-mini", "temperature": "hot"}, "OpenAI LLM 'temperature' must be int or float, not 'hot'."),
        ("llm", "deepgram", {}, "Deepgram does not offer LLM."),
        ("stt", "whisperx", {}, "Unknown provider 'whisperx'; choose one of ['azure_openai', 'bedrock', 'cartesia', 'deepgram', 'elevenlabs', 'gemini', 'gemini_live', 'openai', 'openai_compatible', 'openai_realtime', 'piper', 'sarvam', 'speechmatics', 'wordllama']."),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(kind, provider, settings, message):
    with pytest.raises(ApplicationError) as error:
        registry.settings_validate(kind=kind, provider=provider, settings=settings)
    assert error.value.message == message
