"""The speech-to-speech vendors build Pipecat's services pointed at the account's endpoint
(a self-hosted proxy or a local double), configured from the agent, and price audio and
text tokens apart; a speech-to-speech call bills them to its s2s vendor."""
from decimal import Decimal

from apps.agents.selectors import ProviderSpec
from apps.providers import registry
from apps.providers.prices import provider_cost


def test_openai_realtime_builds_the_realtime_service_at_the_accounts_websocket_endpoint():
    from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

    spec = ProviderSpec(kind="speech_to_speech", provider="openai_realtime", api_key="sk-rt",
                        base_url="http://127.0.0.1:9999/v1", settings={"model": "gpt-realtime", "voice": "marin"})
    service = registry.build_s2s(spec, silence_secs=0.7, language_code="en-GB")
    assert isinstance(service, OpenAIRealtimeLLMService)
    assert (service.base_url, service.api_key) == ("ws://127.0.0.1:9999/v1/realtime?model=gpt-realtime", "sk-rt")
    session = service._settings.session_properties
    assert session.audio.input.turn_detection.silence_duration_ms == 700
    assert (session.audio.input.transcription.model, session.audio.input.transcription.language) == (
        "gpt-4o-transcribe", "en")
    assert session.audio.output.voice == "marin"
    default = registry.build_s2s(ProviderSpec(kind="speech_to_speech", provider="openai_realtime", api_key="k",
                                              settings={"model": "gpt-realtime-mini"}))
    assert default.base_url == "wss://api.openai.com/v1/realtime?model=gpt-realtime-mini"


def test_gemini_live_builds_the_live_service_with_the_accounts_base_url():
    from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService

    spec = ProviderSpec(kind="speech_to_speech", provider="gemini_live", api_key="g-key",
                        base_url="http://127.0.0.1:9998", settings={"model": "gemini-live-2.5-flash-preview",
                                                                    "voice": "Puck"})
    service = registry.build_s2s(spec, silence_secs=0.4)
    assert isinstance(service, GeminiLiveLLMService)
    assert service._http_options.base_url == "http://127.0.0.1:9998"
    assert (service._settings.model, service._settings.voice, service._settings.vad.silence_duration_ms) == (
        "gemini-live-2.5-flash-preview", "Puck", 400)


def test_audio_and_text_tokens_are_priced_apart():
    cost = {metric: provider_cost(provider="openai_realtime", metric=metric, dimension="gpt-realtime",
                                  quantity=Decimal(1_000_000))[0]
            for metric in registry.KINDS["speech_to_speech"].metrics}
    assert cost == {"s2s_input_audio_tokens": Decimal("32"), "s2s_output_audio_tokens": Decimal("64"),
                    "s2s_input_text_tokens": Decimal("4"), "s2s_output_text_tokens": Decimal("16")}
    assert provider_cost(provider="gemini_live", metric="s2s_output_audio_tokens", dimension="some-new-model",
                         quantity=Decimal(500_000))[0] == Decimal("6")


def test_a_speech_to_speech_call_bills_its_tokens_to_the_s2s_vendor():
    providers = {"stt": "", "llm": "", "tts": "", "speech_to_speech": "openai_realtime"}
    assert registry.usage_provider_for(metric="s2s_output_audio_tokens", providers=providers) == "openai_realtime"


def test_gemini_live_resource_exhausted_is_a_throttled_key():
    quota = registry.vendor_error_classify("gemini_live", "Gemini Live failed 3 times in a row: 1011 None. "
                                                          "RESOURCE_EXHAUSTED: You exceeded your current quota.")
    assert (quota.outcome, quota.status_code, quota.cooldown_secs) == ("rate_limited", 429, 60.0)
    internal = registry.vendor_error_classify("gemini_live", "1011 None. INTERNAL: Internal error encountered.")
    assert (internal.outcome, internal.status_code) == ("retryable", None)


def test_gemini_live_trusts_the_extra_certificate_authorities(settings, tmp_path):
    from devtools.doubles.tls import LocalCertificate

    spec = ProviderSpec(kind="speech_to_speech", provider="gemini_live", api_key="g-key",
                        base_url="https://127.0.0.1:9998", settings={"model": "gemini-live-2.5-flash-preview"})
    settings.PROVIDER_EXTRA_CA_CERTS = ""
    assert (registry.build_s2s(spec)._http_options.async_client_args or {}).get("ssl") is None
    certificate = LocalCertificate(tmp_path)
    settings.PROVIDER_EXTRA_CA_CERTS = str(certificate.cert_path)
    context = registry.build_s2s(spec)._http_options.async_client_args["ssl"]
    assert any(ca["subject"] == ((("commonName", "Switchboard test double"),),) for ca in context.get_ca_certs())
