"""Writes of agents. Every save makes a new immutable AgentVersion."""
from __future__ import annotations

import json
import math
import re

import phonenumbers
from django.conf import settings
from django.db import transaction

from apps.agents import graph as graphs
from apps.agents.models import (
    AGENT_PROVIDER_KINDS,
    PIPELINE_MODES,
    PIPELINE_SPEECH_TO_SPEECH,
    S2S_KIND,
    TOOL_NAMES,
    TOOL_TRANSFER,
    Agent,
    AgentConfig,
    AgentVersion,
    HttpTool,
    McpServer,
)
from apps.core.errors import ApplicationError
from apps.tenancy.audit import CURRENT, audit_log_record

# What a call can live with. Outside these a value is a typo or an attack (a bigint
# that overflows the column, a VAD pause that never ends a turn), refused at save.
VAD_STOP_SECS_MIN, VAD_STOP_SECS_MAX = 0.1, 5.0
IDLE_TIMEOUT_SECS_MIN, IDLE_TIMEOUT_SECS_MAX = 1.0, 3600.0  # or 0: no idle timeout
MAX_CALL_SECS_LIMIT = 4 * 3600
END_CALL_PHRASES_MAX = 20
END_CALL_PHRASE_MAX_CHARS = 100
INTERRUPT_AFTER_WORDS_MAX = 10
ACKNOWLEDGEMENTS_MAX = 40
ACKNOWLEDGEMENT_MAX_CHARS = 40
_PHONE_PUNCTUATION = re.compile(r"[\s().-]")


def _number(value) -> float | None:
    """A finite number from what a door handed over (int, float, Decimal, numeric text), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def transfer_number_e164(text: str) -> str:
    """`text` as an E.164 number ("+14155550100"); spaces, dots, dashes and brackets
    are dropped. Raises ApplicationError for anything else (no +, letters, a number
    no country could dial)."""
    compact = _PHONE_PUNCTUATION.sub("", text or "")
    problem = ApplicationError(
        "The transfer number must be an international number in E.164 form, e.g. +14155550100.",
        details={"transfer_number": "Use the international E.164 form, e.g. +14155550100."})
    if not re.fullmatch(r"\+[1-9]\d{1,14}", compact):
        raise problem
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        raise problem from None
    if not phonenumbers.is_possible_number(number):
        raise problem
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _call_limits_problems(config: dict) -> dict[str, str]:
    errors: dict[str, str] = {}
    vad = _number(config.get("vad_stop_secs"))
    if vad is None or not VAD_STOP_SECS_MIN <= vad <= VAD_STOP_SECS_MAX:
        errors["vad_stop_secs"] = (f"The pause that ends the caller's turn must be between {VAD_STOP_SECS_MIN:g} and "
                                   f"{VAD_STOP_SECS_MAX:g} seconds.")
    idle = _number(config.get("idle_timeout_secs"))
    if idle is None or not (idle == 0 or IDLE_TIMEOUT_SECS_MIN <= idle <= IDLE_TIMEOUT_SECS_MAX):
        errors["idle_timeout_secs"] = (f"The idle timeout must be 0 (off) or between {IDLE_TIMEOUT_SECS_MIN:g} and "
                                       f"{IDLE_TIMEOUT_SECS_MAX:g} seconds.")
    max_call = _number(config.get("max_call_secs"))
    if max_call is None or max_call != int(max_call) or not 1 <= max_call <= MAX_CALL_SECS_LIMIT:
        errors["max_call_secs"] = (f"The maximum call length must be a whole number of seconds from 1 to "
                                   f"{MAX_CALL_SECS_LIMIT} (4 hours).")
    return errors


def _end_call_phrases_problem(phrases) -> str | None:
    if not isinstance(phrases, list | tuple) or not all(isinstance(phrase, str) for phrase in phrases):
        return "End-call phrases must be a list of phrases."
    if len(phrases) > END_CALL_PHRASES_MAX:
        return f"At most {END_CALL_PHRASES_MAX} end-call phrases, not {len(phrases)}."
    too_long = [phrase for phrase in phrases if len(phrase) > END_CALL_PHRASE_MAX_CHARS]
    if too_long:
        return f"Each end-call phrase must be at most {END_CALL_PHRASE_MAX_CHARS} characters; one has {len(too_long[0])}."
    if any(not phrase.strip() for phrase in phrases):
        return "End-call phrases must not be blank."
    return None


STT_DICTIONARY_MAX = 100
STT_DICTIONARY_TERM_MAX_CHARS = 60


def _stt_dictionary_problem(terms) -> str | None:
    if not isinstance(terms, list | tuple) or not all(isinstance(term, str) for term in terms):
        return "The STT dictionary must be a list of words or phrases."
    if len(terms) > STT_DICTIONARY_MAX:
        return f"At most {STT_DICTIONARY_MAX} dictionary entries, not {len(terms)}."
    if any(not term.strip() for term in terms):
        return "Dictionary entries must not be blank."
    too_long = [term for term in terms if len(term) > STT_DICTIONARY_TERM_MAX_CHARS]
    if too_long:
        return f"Each dictionary entry must be at most {STT_DICTIONARY_TERM_MAX_CHARS} characters; {too_long[0][:20]!r}… is longer."
    return None


VOICEMAIL_MESSAGE_MAX_CHARS = 1000


def _turn_taking_problems(config: dict) -> dict[str, str]:
    errors: dict[str, str] = {}
    words = _number(config.get("interrupt_after_words"))
    if words is None or words != int(words) or not 0 <= words <= INTERRUPT_AFTER_WORDS_MAX:
        errors["interrupt_after_words"] = (f"Interrupt after a whole number of words from 0 (any speech) to "
                                           f"{INTERRUPT_AFTER_WORDS_MAX}.")
    words_list = config.get("acknowledgements")
    words_list = [] if words_list is None else words_list
    if not isinstance(words_list, list | tuple) or not all(isinstance(word, str) for word in words_list):
        errors["acknowledgements"] = "Acknowledgement words must be a list of words or short phrases."
    elif len(words_list) > ACKNOWLEDGEMENTS_MAX:
        errors["acknowledgements"] = f"At most {ACKNOWLEDGEMENTS_MAX} acknowledgement words, not {len(words_list)}."
    elif any(not word.strip() for word in words_list):
        errors["acknowledgements"] = "Acknowledgement words must not be blank."
    elif any(len(word) > ACKNOWLEDGEMENT_MAX_CHARS for word in words_list):
        errors["acknowledgements"] = f"Each acknowledgement must be at most {ACKNOWLEDGEMENT_MAX_CHARS} characters."
    for flag in ("allow_interruptions", "end_of_turn_model", "voicemail_detection"):
        if not isinstance(config.get(flag, False), bool):
            errors[flag] = "Must be on or off (true or false)."
    message = config.get("voicemail_message", "")
    if not isinstance(message, str):
        errors["voicemail_message"] = "The voicemail message must be text."
    elif len(message) > VOICEMAIL_MESSAGE_MAX_CHARS:
        errors["voicemail_message"] = (f"The voicemail message must be at most {VOICEMAIL_MESSAGE_MAX_CHARS} "
                                       f"characters, not {len(message)}.")
    return errors


def agent_config_problems(*, config: dict) -> dict[str, str]:
    """{field: message} of what would fail mid-call or is out of range: unknown
    vendor, missing, wrong or out-of-range settings, no credential, absurd
    timings, a transfer number that is not E.164, absurd end-call phrases or
    acknowledgement words, an interruption word count out of range. Empty
    when the configuration is fine. The one check behind every door that saves an
    agent (agent_save, and the admin form before it)."""
    from apps.providers.registry import provider_credential_validate, settings_validate, vendor_for

    errors: dict[str, str] = {}
    mode = config.get("pipeline_mode")
    speech_to_speech = mode == PIPELINE_SPEECH_TO_SPEECH
    if mode not in dict(PIPELINE_MODES):
        errors["pipeline_mode"] = f"The pipeline mode must be one of {[name for name, _ in PIPELINE_MODES]}."
    # The stages the call will run: one speech-to-speech model, or STT, LLM and TTS.
    stages = (("s2s", S2S_KIND),) if speech_to_speech else tuple((kind, kind) for kind in AGENT_PROVIDER_KINDS)
    for field, kind in stages:
        provider = config.get(f"{field}_provider")
        if speech_to_speech and not provider:
            errors["s2s_provider"] = "A speech-to-speech agent needs a speech-to-speech provider."
            continue
        try:
            vendor_for(kind=kind, provider=provider)
        except ApplicationError as exc:
            errors[f"{field}_provider"] = exc.message
            continue
        try:
            settings_validate(kind=kind, provider=provider, settings=config.get(f"{field}_settings"))
        except ApplicationError as exc:
            errors[f"{field}_settings"] = exc.message
        try:
            provider_credential_validate(provider=provider)
        except ApplicationError as exc:
            errors[f"{field}_provider"] = exc.message
    if config.get("s2s_settings") is not None and not isinstance(config.get("s2s_settings"), dict):
        errors.setdefault("s2s_settings", "Speech-to-speech settings must be an object.")
    from apps.agents.selectors import http_tool_shapes, mcp_server_names

    http_tools, mcp_servers = http_tool_shapes(), mcp_server_names()
    choices = [*TOOL_NAMES, *http_tools, *(f"{graphs.MCP_PREFIX}{name}" for name in sorted(mcp_servers))]
    tools = config.get("tools")
    if not isinstance(tools, list | tuple) or not all(isinstance(tool, str) for tool in tools):
        errors["tools"] = f"Tools must be a list; choose from {choices}."
        tools = []
    unknown = [tool for tool in tools if tool not in choices]
    if unknown:
        errors["tools"] = f"Unknown tools {unknown}; choose from {choices}."
    graph = config.get("graph")
    # A single-prompt graph is the flat fields again: their errors are already said once.
    if graph and not ("tools" in errors and isinstance(graph, dict) and graphs.is_single_prompt(graph)):
        problems = graphs.graph_problems(graph, http_tools=http_tools, mcp_servers=mcp_servers,
                                         private_hosts_ok=settings.AGENT_TOOLS_ALLOW_PRIVATE_HOSTS)
        if problems:
            errors["graph"] = " ".join(problem.message for problem in problems)
        elif speech_to_speech and not graphs.is_single_prompt(graph):
            # Workflows change the prompt and tools node by node through Pipecat Flows, which
            # drives a text LLM; a speech-to-speech session keeps one prompt for the call.
            errors["graph"] = ("A speech-to-speech agent runs one prompt: remove the workflow's edges "
                               "or choose the cascade pipeline.")
        elif any(node.get("type") == graphs.NODE_TRANSFER for node in graph["nodes"]):
            for node in graph["nodes"]:
                if node.get("type") == graphs.NODE_TRANSFER:
                    try:
                        transfer_number_e164(node["transfer_number"])
                    except ApplicationError:
                        errors["graph"] = f"Transfer node '{node['id']}' has a number no country could dial."
    transfer_number = config.get("transfer_number") or ""
    if not isinstance(transfer_number, str):
        errors["transfer_number"] = "The transfer number must be text, e.g. +14155550100."
    elif transfer_number:
        try:
            transfer_number_e164(transfer_number)
        except ApplicationError as exc:
            errors["transfer_number"] = exc.details["transfer_number"]
    elif TOOL_TRANSFER in tools or any(TOOL_TRANSFER in (node.get("tools") or []) for node in (
            (config.get("graph") or {}).get("nodes") or [] if isinstance(config.get("graph"), dict) else [])
            if isinstance(node, dict)):
        errors["transfer_number"] = "The transfer_to_human tool needs a transfer number."
    errors.update(_call_limits_problems(config))
    errors.update(_turn_taking_problems(config))
    phrases_problem = _end_call_phrases_problem(config.get("end_call_phrases") or [])
    if phrases_problem:
        errors["end_call_phrases"] = phrases_problem
    dictionary_problem = _stt_dictionary_problem(config.get("stt_dictionary") or [])
    if dictionary_problem:
        errors["stt_dictionary"] = dictionary_problem
    return errors


def agent_config_validate(*, config: dict) -> None:
    """Raise ApplicationError naming every refused field (details) and the first
    problem (message); see agent_config_problems."""
    errors = agent_config_problems(config=config)
    if errors:
        first = next(iter(errors.values()))
        raise ApplicationError(f"The agent cannot be saved: {first}", details=errors)


def _defaults() -> dict:
    return {name: AgentConfig._meta.get_field(name).get_default() for name in AgentConfig.CONFIG_FIELDS}


def _normalised(config: dict) -> dict:
    """A validated configuration in the form it is stored: E.164 transfer number, whole-second max call."""
    normalised = {**config, "max_call_secs": int(float(config["max_call_secs"])), "tools": list(config["tools"] or []),
                  "end_call_phrases": [phrase.strip() for phrase in config.get("end_call_phrases") or []],
                  "interrupt_after_words": int(float(config["interrupt_after_words"])),
                  "acknowledgements": [word.strip() for word in config.get("acknowledgements") or []],
                  "stt_dictionary": list(dict.fromkeys(term.strip() for term in config.get("stt_dictionary") or [])),
                  "s2s_settings": config.get("s2s_settings") or {}, "s2s_provider": config.get("s2s_provider") or ""}
    if config.get("transfer_number"):
        normalised["transfer_number"] = transfer_number_e164(config["transfer_number"])
    return normalised


def _graph_in_step(config: dict, *, graph_given: bool) -> dict:
    """The flat fields and the graph say the same: the global node's prompt is the system
    prompt and the start node's greeting the greeting (a single-prompt graph also carries the
    tools). A given graph wins; otherwise the graph follows the flat fields."""
    graph = config.get("graph")
    if graph_given and isinstance(graph, dict) and graph:
        synced = {**config}
        global_node = graphs.node_of_type(graph, graphs.NODE_GLOBAL)
        start = graphs.node_of_type(graph, graphs.NODE_START)
        if global_node is not None and isinstance(global_node.get("prompt"), str):
            synced["system_prompt"] = global_node["prompt"]
        if start is not None and isinstance(start.get("greeting"), str):
            synced["greeting"] = start["greeting"]
        if start is not None and graphs.is_single_prompt(graph) and isinstance(start.get("tools"), list):
            synced["tools"] = list(start["tools"])
        return synced
    if not isinstance(graph, dict) or not graph or graphs.is_single_prompt(graph):
        tools = config.get("tools")
        tools = list(tools) if isinstance(tools, list | tuple) and all(isinstance(t, str) for t in tools) else []
        fresh = graphs.single_prompt_graph(system_prompt=str(config.get("system_prompt") or ""),
                                           greeting=str(config.get("greeting") or ""), tools=tools)
        return {**config, "graph": fresh}
    graph = json.loads(json.dumps(graph))
    for node in graph.get("nodes") or []:
        if node.get("type") == graphs.NODE_GLOBAL:
            node["prompt"] = config.get("system_prompt") or ""
        elif node.get("type") == graphs.NODE_START:
            node["greeting"] = config.get("greeting") or ""
    return {**config, "graph": graph}


@transaction.atomic
def agent_save(*, agent: Agent | None = None, name: str | None = None, **config) -> Agent:
    """Create (agent=None) or edit an agent; either way a new version is made
    and becomes current. Unknown keyword arguments are refused."""
    unknown = set(config) - set(AgentConfig.CONFIG_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown agent fields: {sorted(unknown)}")
    if agent is None:
        if not name:
            raise ApplicationError("An agent needs a name.", details={"name": "required"})
        merged = _graph_in_step({**_defaults(), **config}, graph_given="graph" in config)
        agent_config_validate(config=merged)
        merged = _normalised(merged)
        agent = Agent.objects.create(name=name, **merged)
    else:
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        merged = _graph_in_step({**agent.config_dict(), **config}, graph_given="graph" in config)
        agent_config_validate(config=merged)
        merged = _normalised(merged)
        for key, value in merged.items():
            setattr(agent, key, value)
        if name:
            agent.name = name
    last = agent.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = AgentVersion.objects.create(agent=agent, number=last + 1, name=agent.name, **merged)
    agent.current_version = version
    agent.save()
    audit_log_record(actor=CURRENT, client=CURRENT, event_type="agent_published", target=agent, changes={"version": {"before": last or None, "after": version.number}})
    return agent


# --- drafts, publishing, import/export --------------------------------------------------------------

def agent_draft_save(*, agent: Agent, graph) -> list[graphs.GraphProblem]:
    """Keep the builder's work without publishing it (no version, calls are untouched). A draft
    may be unfinished: its problems come back for the builder to show on the nodes, but only a
    graph that is not JSON-shaped at all is refused."""
    if not isinstance(graph, dict):
        raise ApplicationError("The draft must be a JSON object with nodes and edges.", details={"graph": "not an object"})
    from apps.agents.selectors import http_tool_shapes, mcp_server_names

    Agent.objects.filter(pk=agent.pk).update(draft_graph=graph)
    agent.draft_graph = graph
    return graphs.graph_problems(graph, http_tools=http_tool_shapes(), mcp_servers=mcp_server_names(),
                                 private_hosts_ok=settings.AGENT_TOOLS_ALLOW_PRIVATE_HOSTS)


@transaction.atomic
def agent_publish(*, agent: Agent) -> Agent:
    """The draft becomes a new immutable version (refused, nothing changed, if it has problems, or,
    for an agent that requires a green test suite, unless its suites passed on this draft)."""
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    if agent.draft_graph is None:
        raise ApplicationError("There is no draft to publish.")
    if agent.require_green_suite:
        # Every test suite of the agent must have passed on this very draft (apps.quality).
        from apps.quality.suite_services import suite_publish_check

        suite_publish_check(agent=agent)
    agent = agent_save(agent=agent, graph=agent.draft_graph)
    Agent.objects.filter(pk=agent.pk).update(draft_graph=None)
    agent.draft_graph = None
    return agent


EXPORT_FORMAT = "switchboard.agent/1"
_EXPORTED_FIELDS = tuple(name for name in AgentConfig.CONFIG_FIELDS if name != "graph")


def agent_export(*, agent: Agent | AgentVersion) -> dict:
    """The agent (or one version) as a JSON document another client can import: settings,
    graph and the definitions of the HTTP tools it uses, without any secret (header values
    from the encrypted fields are left out: the importing client sets its own)."""
    from apps.agents.selectors import http_tool_list

    graph = agent.graph or {}
    used = {tool for node in graph.get("nodes") or [] for tool in node.get("tools") or []}
    tools = [
        {"name": tool.name, "description": tool.description, "parameters": tool.parameters, "method": tool.method,
         "url": tool.url, "headers": tool.headers, "secret_header_names": sorted(tool.secret_header_dict()),
         "timeout_secs": tool.timeout_secs, "response_fields": tool.response_fields}
        for tool in http_tool_list() if tool.name in used
    ]
    return {"format": EXPORT_FORMAT, "name": agent.name,
            "config": {name: getattr(agent, name) for name in _EXPORTED_FIELDS}, "graph": graph, "http_tools": tools}


@transaction.atomic
def agent_import(*, document, name: str | None = None) -> Agent:
    """A new agent from an `agent_export` document. HTTP tools it names that this client
    lacks are created (secret headers empty, to be filled in); tools of the same name are
    kept as they are. Everything is checked as any save is; nothing is written on a refusal."""
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise ApplicationError(f"Not an agent export: expected an object with \"format\": \"{EXPORT_FORMAT}\".",
                               details={"format": "unknown"})
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise ApplicationError("The export's config must be an object.", details={"config": "not an object"})
    unknown = set(config) - set(_EXPORTED_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown agent fields in the export: {sorted(unknown)}", details={"config": "unknown"})
    tools = document.get("http_tools") or []
    if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
        raise ApplicationError("The export's http_tools must be a list of objects.", details={"http_tools": "invalid"})
    existing = set(HttpTool.objects.values_list("name", flat=True))
    for tool in tools:
        if tool.get("name") in existing:
            continue
        http_tool_save(name=tool.get("name"), description=tool.get("description"), parameters=tool.get("parameters"),
                       method=tool.get("method") or "GET", url=tool.get("url"), headers=tool.get("headers") or {},
                       secret_headers={header: "" for header in tool.get("secret_header_names") or []},
                       timeout_secs=tool.get("timeout_secs", 5.0), response_fields=tool.get("response_fields") or [])
    return agent_save(name=name or document.get("name"), **config, graph=document.get("graph") or {})


# --- HTTP tools --------------------------------------------------------------------------------------

HTTP_TOOL_TIMEOUT_MIN, HTTP_TOOL_TIMEOUT_MAX = 0.2, 30.0


def http_tool_problems(*, name, description, parameters, method, url, headers, secret_headers, timeout_secs,
                       response_fields) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not graphs.FUNCTION_NAME.fullmatch(name) or name in graphs.BUILTIN_TOOLS:
        errors["name"] = "The name must be letters, digits, _ or - (at most 64), not end_call, transfer_to_human or search_knowledge_base."
    if not isinstance(description, str) or not description.strip():
        errors["description"] = "Say what the tool does: the LLM reads it to decide when to call it."
    if not isinstance(parameters, dict) or (parameters and (
            parameters.get("type") != "object" or not isinstance(parameters.get("properties", {}), dict)
            or not isinstance(parameters.get("required", []), list))):
        errors["parameters"] = 'Parameters must be a JSON Schema object: {"type": "object", "properties": {...}}.'
    if method not in HttpTool.METHODS:
        errors["method"] = f"The method must be one of {', '.join(HttpTool.METHODS)}."
    url_problem = (graphs.url_problem(url, private_hosts_ok=settings.AGENT_TOOLS_ALLOW_PRIVATE_HOSTS)
                   if isinstance(url, str) and url else "is missing")
    if url_problem:
        errors["url"] = f"The URL {url_problem}."
    for field, value in (("headers", headers), ("secret_headers", secret_headers)):
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            errors[field] = "Headers must be an object of names to text values."
        elif any(not re.fullmatch(r"[A-Za-z0-9-]{1,100}", k) or "\n" in v or "\r" in v for k, v in value.items()):
            errors[field] = "Header names are letters, digits and -; values have no line breaks."
    timeout = _number(timeout_secs)
    if timeout is None or not HTTP_TOOL_TIMEOUT_MIN <= timeout <= HTTP_TOOL_TIMEOUT_MAX:
        errors["timeout_secs"] = f"The timeout must be between {HTTP_TOOL_TIMEOUT_MIN:g} and {HTTP_TOOL_TIMEOUT_MAX:g} s."
    if not isinstance(response_fields, list) or not all(
            isinstance(path, str) and re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", path) for path in response_fields):
        errors["response_fields"] = "Response fields are dotted paths into the JSON answer, e.g. order.status."
    return errors


@transaction.atomic
def http_tool_save(*, tool: HttpTool | None = None, name, description, parameters, method, url, headers,
                   secret_headers: dict | None, timeout_secs, response_fields) -> HttpTool:
    """Create or edit an HTTP tool. `secret_headers=None` keeps the stored secrets; on edit a
    blank value keeps that header's stored value (secrets are never shown, so a form sends blanks)."""
    method = (method or "").upper()
    if tool is not None and secret_headers is not None:
        stored = tool.secret_header_dict()
        secret_headers = {key: value or stored.get(key, "") for key, value in secret_headers.items()}
    fields = dict(name=name, description=description, parameters=parameters if parameters is not None else {},
                  method=method, url=url, headers=headers if headers is not None else {},
                  secret_headers=secret_headers if secret_headers is not None else {},
                  timeout_secs=timeout_secs, response_fields=response_fields if response_fields is not None else [])
    errors = http_tool_problems(**fields)
    if not errors and HttpTool.objects.filter(name=name).exclude(pk=getattr(tool, "pk", None)).exists():
        errors["name"] = f"There is already a tool named {name}."
    if errors:
        raise ApplicationError(f"The tool cannot be saved: {next(iter(errors.values()))}", details=errors)
    if secret_headers is None:
        fields.pop("secret_headers")
    else:
        fields["secret_headers"] = json.dumps(secret_headers) if secret_headers else ""
    fields["timeout_secs"] = float(timeout_secs)
    if tool is None:
        return HttpTool.objects.create(**fields)
    for key, value in fields.items():
        setattr(tool, key, value)
    tool.save()
    return tool


# --- MCP servers -------------------------------------------------------------------------------------

def mcp_server_problems(*, name, url, secret_headers: dict | None, timeout_secs) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not graphs.VARIABLE_NAME.fullmatch(name):
        errors["name"] = "The name must be letters, digits and _ (at most 64); nodes list it as mcp:<name>."
    url_problem = (graphs.url_problem(url, private_hosts_ok=settings.AGENT_TOOLS_ALLOW_PRIVATE_HOSTS)
                   if isinstance(url, str) and url else "is missing")
    if url_problem:
        errors["url"] = f"The URL {url_problem}."
    if secret_headers is not None and (not isinstance(secret_headers, dict) or not all(
            isinstance(k, str) and re.fullmatch(r"[A-Za-z0-9-]{1,100}", k) and isinstance(v, str) and "\n" not in v
            for k, v in secret_headers.items())):
        errors["secret_headers"] = "Header names are letters, digits and -; values are text without line breaks."
    timeout = _number(timeout_secs)
    if timeout is None or not HTTP_TOOL_TIMEOUT_MIN <= timeout <= HTTP_TOOL_TIMEOUT_MAX:
        errors["timeout_secs"] = f"The timeout must be between {HTTP_TOOL_TIMEOUT_MIN:g} and {HTTP_TOOL_TIMEOUT_MAX:g} s."
    return errors


@transaction.atomic
def mcp_server_save(*, server: McpServer | None = None, name, url, secret_headers: dict | None,
                    timeout_secs) -> McpServer:
    """Create or edit an MCP server (streamable HTTP). Secrets as on HTTP tools: None keeps them,
    a blank value keeps that header's stored value."""
    errors = mcp_server_problems(name=name, url=url, secret_headers=secret_headers, timeout_secs=timeout_secs)
    if not errors and McpServer.objects.filter(name=name).exclude(pk=getattr(server, "pk", None)).exists():
        errors["name"] = f"There is already an MCP server named {name}."
    if errors:
        raise ApplicationError(f"The MCP server cannot be saved: {next(iter(errors.values()))}", details=errors)
    fields = {"name": name, "url": url, "timeout_secs": float(timeout_secs)}
    if secret_headers is not None:
        stored = server.secret_header_dict() if server is not None else {}
        merged = {key: value or stored.get(key, "") for key, value in secret_headers.items()}
        fields["secret_headers"] = json.dumps(merged) if merged else ""
    if server is None:
        return McpServer.objects.create(**fields)
    for key, value in fields.items():
        setattr(server, key, value)
    server.save()
    return server


def agent_publish_gate_set(*, agent: Agent, require_green_suite: bool) -> Agent:
    """Whether publishing the agent's drafts requires its test suites to be green on the draft."""
    before = agent.require_green_suite
    Agent.objects.filter(pk=agent.pk).update(require_green_suite=bool(require_green_suite))
    agent.require_green_suite = bool(require_green_suite)
    if before != agent.require_green_suite:
        audit_log_record(actor=CURRENT, client=CURRENT, event_type="agent_publish_gate_changed", target=agent,
                         changes={"require_green_suite": {"before": before, "after": agent.require_green_suite}})
    return agent
