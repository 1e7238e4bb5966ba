"""Reads of agents, including the frozen runtime configuration the voice
pipeline runs from."""
from __future__ import annotations

from dataclasses import dataclass, field

from apps.agents.models import Agent, AgentVersion
from apps.core.errors import NotFound


@dataclass(frozen=True)
class ProviderSpec:
    """One pipeline stage's vendor: hand it to apps.providers.registry.build_stt /
    build_llm / build_tts. `key_id` is the key ref that served: "12" for the
    client's ProviderAccount 12, "agency:3" for the agency's key 3 (None when the
    vendor needs no key, e.g. local Piper). Pass it back as-is to
    apps.providers.services.provider_error_report / provider_key_mark_rate_limited."""

    kind: str  # "stt" | "llm" | "tts"
    provider: str  # registry name: "deepgram", "openai", "azure_openai", "piper"...
    settings: dict = field(default_factory=dict)  # model, voice, temperature... (validated on agent save)
    api_key: str = ""
    key_id: str | None = None
    base_url: str = ""
    region: str = ""
    secret: str = ""  # a second credential where the vendor needs one (AWS secret key)


@dataclass(frozen=True)
class AgentRuntimeConfig:
    agent_id: int
    agent_version_id: int
    agent_name: str
    greeting: str
    system_prompt: str
    language: str
    stt: ProviderSpec
    llm: ProviderSpec
    tts: ProviderSpec
    vad_stop_secs: float
    allow_interruptions: bool
    idle_timeout_secs: float
    max_call_secs: float
    end_call_phrases: tuple[str, ...]
    tools: tuple[str, ...]  # subset of ("end_call", "transfer_to_human")
    transfer_number: str
    fallback_line: str
    # Another key of the LLM's vendor, not leased: the call moves to it if its key is throttled.
    llm_standby: ProviderSpec | None = None


def agent_get(*, agent_id: int) -> Agent:
    try:
        return Agent.objects.select_related("current_version").get(pk=agent_id)
    except Agent.DoesNotExist:
        raise NotFound("No such agent.") from None


def agent_list():
    return Agent.objects.select_related("current_version").all()


def agent_version_list(*, agent_id: int):
    """Every version of one agent, newest first."""
    return AgentVersion.objects.filter(agent_id=agent_id).order_by("-number")


def agent_runtime_config(*, agent_version: AgentVersion | int) -> AgentRuntimeConfig:
    """Everything the pipeline needs for one call, read from the agent version. Call
    inside the tenant schema. Only reads: the stages' specs carry vendor and settings
    but no key; apps.calls.services.call_stream_start leases the keys of a live call,
    and previews take `provider_spec_for` without a call (no lease)."""
    version = agent_version if isinstance(agent_version, AgentVersion) else AgentVersion.objects.get(pk=agent_version)
    specs = {
        kind: ProviderSpec(kind=kind, provider=getattr(version, f"{kind}_provider"),
                           settings=dict(getattr(version, f"{kind}_settings") or {}))
        for kind in ("stt", "llm", "tts")
    }
    return AgentRuntimeConfig(
        agent_id=version.agent_id,
        agent_version_id=version.pk,
        agent_name=version.name,
        greeting=version.greeting,
        system_prompt=version.system_prompt,
        language=version.language,
        stt=specs["stt"],
        llm=specs["llm"],
        tts=specs["tts"],
        vad_stop_secs=float(version.vad_stop_secs),
        allow_interruptions=bool(version.allow_interruptions),
        idle_timeout_secs=float(version.idle_timeout_secs),
        max_call_secs=float(version.max_call_secs),
        end_call_phrases=tuple(version.end_call_phrases or ()),
        tools=tuple(version.tools or ()),
        transfer_number=version.transfer_number,
        fallback_line=version.fallback_line,
    )


# Languages offered in the agent editor (BCP-47). An agent saved with another code keeps it (added to the list).
AGENT_LANGUAGES = (
    ("en", "English"), ("en-US", "English (US)"), ("en-GB", "English (UK)"), ("en-AU", "English (Australia)"),
    ("en-IN", "English (India)"), ("es", "Spanish"), ("es-MX", "Spanish (Mexico)"), ("fr", "French"),
    ("fr-CA", "French (Canada)"), ("de", "German"), ("it", "Italian"), ("pt", "Portuguese"),
    ("pt-BR", "Portuguese (Brazil)"), ("nl", "Dutch"), ("sv", "Swedish"), ("da", "Danish"), ("no", "Norwegian"),
    ("fi", "Finnish"), ("pl", "Polish"), ("tr", "Turkish"), ("ru", "Russian"), ("uk", "Ukrainian"),
    ("hi", "Hindi"), ("ta", "Tamil"), ("te", "Telugu"), ("bn", "Bengali"), ("ar", "Arabic"), ("he", "Hebrew"),
    ("ja", "Japanese"), ("ko", "Korean"), ("zh", "Chinese"), ("id", "Indonesian"), ("vi", "Vietnamese"),
)


def agent_model_suggestions() -> dict[str, dict[str, list[str]]]:
    """{kind: {vendor: [model names]}} for the editor's model pickers: the models each vendor module prices
    for the kind's metrics (a suggestion list; any model name the vendor accepts may be typed)."""
    from apps.providers.registry import KINDS, vendors

    suggestions: dict[str, dict[str, list[str]]] = {}
    for kind, info in KINDS.items():
        per_vendor = {}
        for vendor in vendors().values():
            if kind not in vendor.kinds:
                continue
            names = {name for metric in info.metrics for name in vendor.prices.get(metric, {}) if name != "*"}
            per_vendor[vendor.name] = sorted(names)
        suggestions[kind] = per_vendor
    return suggestions
