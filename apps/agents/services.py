"""Writes of agents. Every save makes a new immutable AgentVersion."""
from __future__ import annotations

from django.db import transaction

from apps.agents.models import TOOL_NAMES, TOOL_TRANSFER, Agent, AgentConfig, AgentVersion
from apps.core.errors import ApplicationError
from apps.tenancy.audit import CURRENT, audit_log_record


def agent_config_validate(*, config: dict) -> None:
    """Refuse a configuration that would fail mid-call: unknown vendor, missing or
    wrong settings, no credential. Raises ApplicationError naming the field."""
    from apps.providers.registry import provider_config_validate

    errors: dict[str, str] = {}
    for kind in ("stt", "llm", "tts"):
        try:
            provider_config_validate(kind=kind, provider=config[f"{kind}_provider"], settings=config[f"{kind}_settings"])
        except ApplicationError as exc:
            errors[f"{kind}_provider"] = exc.message
    tools = list(config.get("tools") or [])
    unknown = [tool for tool in tools if tool not in TOOL_NAMES]
    if unknown:
        errors["tools"] = f"Unknown tools {unknown}; choose from {list(TOOL_NAMES)}."
    if TOOL_TRANSFER in tools and not config.get("transfer_number"):
        errors["transfer_number"] = "The transfer_to_human tool needs a transfer number."
    if float(config.get("vad_stop_secs", 0.5)) <= 0:
        errors["vad_stop_secs"] = "VAD stop seconds must be greater than 0."
    if int(config.get("max_call_secs", 600)) <= 0:
        errors["max_call_secs"] = "Maximum call length must be greater than 0."
    if errors:
        first = next(iter(errors.values()))
        raise ApplicationError(f"The agent cannot be saved: {first}", details=errors)


def _defaults() -> dict:
    return {name: AgentConfig._meta.get_field(name).get_default() for name in AgentConfig.CONFIG_FIELDS}


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
        agent = Agent.objects.create(name=name, **merged)
    else:
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        merged = {**agent.config_dict(), **config}
        agent_config_validate(config=merged)
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
