"""Writes of agents. Every save makes a new immutable AgentVersion."""
from __future__ import annotations

import math
import re

import phonenumbers
from django.db import transaction

from apps.agents.models import AGENT_PROVIDER_KINDS, TOOL_NAMES, TOOL_TRANSFER, Agent, AgentConfig, AgentVersion
from apps.core.errors import ApplicationError

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
    for flag in ("allow_interruptions", "end_of_turn_model"):
        if not isinstance(config.get(flag), bool):
            errors[flag] = "Must be on or off (true or false)."
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
    for kind in AGENT_PROVIDER_KINDS:
        provider = config.get(f"{kind}_provider")
        try:
            vendor_for(kind=kind, provider=provider)
        except ApplicationError as exc:
            errors[f"{kind}_provider"] = exc.message
            continue
        try:
            settings_validate(kind=kind, provider=provider, settings=config.get(f"{kind}_settings"))
        except ApplicationError as exc:
            errors[f"{kind}_settings"] = exc.message
        try:
            provider_credential_validate(provider=provider)
        except ApplicationError as exc:
            errors[f"{kind}_provider"] = exc.message
    tools = config.get("tools")
    if not isinstance(tools, list | tuple) or not all(isinstance(tool, str) for tool in tools):
        errors["tools"] = f"Tools must be a list; choose from {list(TOOL_NAMES)}."
        tools = []
    unknown = [tool for tool in tools if tool not in TOOL_NAMES]
    if unknown:
        errors["tools"] = f"Unknown tools {unknown}; choose from {list(TOOL_NAMES)}."
    transfer_number = config.get("transfer_number") or ""
    if not isinstance(transfer_number, str):
        errors["transfer_number"] = "The transfer number must be text, e.g. +14155550100."
    elif transfer_number:
        try:
            transfer_number_e164(transfer_number)
        except ApplicationError as exc:
            errors["transfer_number"] = exc.details["transfer_number"]
    elif TOOL_TRANSFER in tools:
        errors["transfer_number"] = "The transfer_to_human tool needs a transfer number."
    errors.update(_call_limits_problems(config))
    errors.update(_turn_taking_problems(config))
    phrases_problem = _end_call_phrases_problem(config.get("end_call_phrases") or [])
    if phrases_problem:
        errors["end_call_phrases"] = phrases_problem
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
                  "acknowledgements": [word.strip() for word in config.get("acknowledgements") or []]}
    if config.get("transfer_number"):
        normalised["transfer_number"] = transfer_number_e164(config["transfer_number"])
    return normalised


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
        merged = {**_defaults(), **config}
        agent_config_validate(config=merged)
        merged = _normalised(merged)
        agent = Agent.objects.create(name=name, **merged)
    else:
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        merged = {**agent.config_dict(), **config}
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
    return agent
