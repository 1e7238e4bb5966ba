"""Reads of agents, including the frozen runtime configuration the voice
pipeline runs from."""
from __future__ import annotations

from dataclasses import dataclass, field

from apps.agents.models import Agent, AgentVersion, HttpTool, McpServer
from apps.core.errors import NotFound


@dataclass(frozen=True)
class ProviderSpec:
    """One pipeline stage's vendor: hand it to apps.providers.registry.build_stt /
    build_llm / build_tts. `key_id` is the key ref that served: "12" for the
    client's ProviderAccount 12, "agency:3" for the agency's key 3 (None when the
    vendor needs no key, e.g. local Piper). Pass it back as-is to
    apps.providers.services.provider_error_report / provider_key_mark_rate_limited."""

    kind: str  # "stt" | "llm" | "tts" | "speech_to_speech"
    provider: str  # registry name: "deepgram", "openai", "azure_openai", "piper"...
    settings: dict = field(default_factory=dict)  # model, voice, temperature... (validated on agent save)
    api_key: str = ""
    key_id: str | None = None
    base_url: str = ""
    region: str = ""
    secret: str = ""  # a second credential where the vendor needs one (AWS secret key)
    # STT only: the agent's dictionary, for vendors that boost keywords (Vendor.boosts_vocabulary).
    vocabulary: tuple[str, ...] = ()


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
    # Turn taking: interrupt after N words (0: any speech), acknowledgements that never
    # interrupt (empty: the language's list), Smart Turn end of turn.
    interrupt_after_words: int = 1
    acknowledgements: tuple[str, ...] = ()
    end_of_turn_model: bool = False
    # Another key of the LLM's vendor, not leased: the call moves to it if its key is throttled.
    llm_standby: ProviderSpec | None = None
    # "cascade" (stt, llm, tts) or "speech_to_speech" (`s2s` hears and speaks; the others are unused).
    pipeline_mode: str = "cascade"
    s2s: ProviderSpec | None = None
    # The conversation (apps/agents/graph.schema.json) and the HTTP tools its nodes use, secrets decrypted.
    graph: dict = field(default_factory=dict)
    http_tools: tuple[dict, ...] = ()
    mcp_servers: tuple[dict, ...] = ()
    # {"caller": {"number": ...}, "call": {"direction": ..., ...}}; `now` is filled in during the call.
    variables: dict = field(default_factory=dict)
    time_zone: str = "UTC"
    # The clips the agent may play ({"name", "words", "tags", "interruptible", "pcm"}: apps.clips.selectors),
    # audio loaded before the call starts; and the STT dictionary (apps/agents/models.py).
    clips: tuple[dict, ...] = ()
    stt_dictionary: tuple[str, ...] = ()
    # Outbound: listen for an answering machine; on one, say this after the beep and hang up.
    voicemail_detection: bool = False
    voicemail_message: str = ""


def agent_get(*, agent_id: int) -> Agent:
    try:
        return Agent.objects.select_related("current_version").get(pk=agent_id)
    except Agent.DoesNotExist:
        raise NotFound("No such agent.") from None


def agent_list():
    return Agent.objects.select_related("current_version").all()


def agent_version_get(*, agent_id: int, number: int) -> AgentVersion:
    try:
        return AgentVersion.objects.get(agent_id=agent_id, number=number)
    except AgentVersion.DoesNotExist:
        raise NotFound("No such version.") from None


def agent_version_list(*, agent_id: int):
    """Every version of one agent, newest first."""
    return AgentVersion.objects.filter(agent_id=agent_id).order_by("-number")


def http_tool_list():
    return HttpTool.objects.all()


def http_tool_get(*, tool_id: int) -> HttpTool:
    try:
        return HttpTool.objects.get(pk=tool_id)
    except HttpTool.DoesNotExist:
        raise NotFound("No such tool.") from None


def http_tool_shapes() -> dict[str, dict]:
    """{name: {"url", "parameters"}} of this client's HTTP tools: what the graph check needs."""
    return {name: {"url": url, "parameters": parameters}
            for name, url, parameters in HttpTool.objects.values_list("name", "url", "parameters")}


def http_tools_for_runtime(*, names) -> tuple[dict, ...]:
    """The named tools as the voice runtime runs them (apps.voice.http_tools), secrets decrypted."""
    return tuple(
        {"name": tool.name, "description": tool.description, "parameters": tool.parameters or {},
         "method": tool.method, "url": tool.url, "headers": {**(tool.headers or {}), **tool.secret_header_dict()},
         "timeout_secs": float(tool.timeout_secs), "response_fields": list(tool.response_fields or [])}
        for tool in HttpTool.objects.filter(name__in=sorted(set(names)))
    )


def mcp_server_names() -> set[str]:
    return set(McpServer.objects.values_list("name", flat=True))


def mcp_server_list():
    return McpServer.objects.all()


def mcp_server_get(*, server_id: int) -> McpServer:
    try:
        return McpServer.objects.get(pk=server_id)
    except McpServer.DoesNotExist:
        raise NotFound("No such MCP server.") from None


def mcp_servers_for_runtime(*, names) -> tuple[dict, ...]:
    """The named MCP servers as the runtime connects to them, secrets decrypted."""
    return tuple({"name": server.name, "url": server.url, "headers": server.secret_header_dict(),
                  "timeout_secs": float(server.timeout_secs)}
                 for server in McpServer.objects.filter(name__in=sorted(set(names))))


def call_variables(*, call) -> dict:
    """The built-in variables of one call ({{caller.number}}, {{call.direction}}...) and
    {{contact.<column>}}: the campaign contact's extra CSV columns ({} on other calls)."""
    caller = call.from_number if call.direction == "inbound" else call.to_number
    contact = getattr(call, "variables", None)
    return {"caller": {"number": caller or ""},
            "call": {"direction": call.direction, "from_number": call.from_number or "",
                     "to_number": call.to_number or ""},
            "contact": {str(key): "" if value is None else str(value)
                        for key, value in contact.items()} if isinstance(contact, dict) else {}}


def agent_draft_version(*, agent: Agent) -> AgentVersion:
    """The agent as its editor has it now, as an unsaved (never saved) version: the head's
    settings (the last save) with the builder's unpublished draft graph when there is one.
    What a browser test call runs; `agent_runtime_config` takes it like any version."""
    config = agent.config_dict()
    if agent.draft_graph is not None:
        config["graph"] = agent.draft_graph
    return AgentVersion(agent_id=agent.pk, number=0, name=agent.name, **config)


def agent_runtime_config(*, agent_version: AgentVersion | int, call=None, client=None) -> AgentRuntimeConfig:
    """Everything the pipeline needs for one call, read from the agent version. Call
    inside the tenant schema. Only reads: the stages' specs carry vendor and settings
    but no key; apps.calls.services.call_stream_start leases the keys of a live call,
    and previews take `provider_spec_for` without a call (no lease)."""
    from apps.agents.graph import single_prompt_graph
    from apps.clips.selectors import clips_for_runtime

    version = agent_version if isinstance(agent_version, AgentVersion) else AgentVersion.objects.get(pk=agent_version)
    graph = version.graph or single_prompt_graph(system_prompt=version.system_prompt, greeting=version.greeting,
                                                 tools=version.tools)
    specs = {
        kind: ProviderSpec(kind=kind, provider=getattr(version, f"{kind}_provider"),
                           settings=dict(getattr(version, f"{kind}_settings") or {}),
                           vocabulary=tuple(version.stt_dictionary or ()) if kind == "stt" else ())
        for kind in ("stt", "llm", "tts")
    }
    s2s = (ProviderSpec(kind="speech_to_speech", provider=version.s2s_provider,
                        settings=dict(version.s2s_settings or {}))
           if version.pipeline_mode == "speech_to_speech" else None)
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
        pipeline_mode=version.pipeline_mode,
        s2s=s2s,
        vad_stop_secs=float(version.vad_stop_secs),
        allow_interruptions=bool(version.allow_interruptions),
        interrupt_after_words=int(version.interrupt_after_words),
        acknowledgements=tuple(version.acknowledgements or ()),
        end_of_turn_model=bool(version.end_of_turn_model),
        idle_timeout_secs=float(version.idle_timeout_secs),
        max_call_secs=float(version.max_call_secs),
        end_call_phrases=tuple(version.end_call_phrases or ()),
        tools=tuple(version.tools or ()),
        transfer_number=version.transfer_number,
        fallback_line=version.fallback_line,
        graph=graph,
        http_tools=http_tools_for_runtime(names={tool for node in graph.get("nodes") or []
                                                 for tool in node.get("tools") or []} | set(version.tools or ())),
        mcp_servers=mcp_servers_for_runtime(names={tool[4:] for node in graph.get("nodes") or []
                                                    for tool in node.get("tools") or [] if tool.startswith("mcp:")}),
        variables=call_variables(call=call) if call is not None else {},
        time_zone=str(getattr(client, "timezone", "") or "UTC"),
        clips=clips_for_runtime(agent_id=version.agent_id),
        stt_dictionary=tuple(version.stt_dictionary or ()),
        voicemail_detection=bool(version.voicemail_detection),
        voicemail_message=version.voicemail_message or "",
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
