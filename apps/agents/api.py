"""/api/v1/agents: this client's agents; export and import as JSON (format
switchboard.agent/1, graph per apps/agents/graph.schema.json)."""
# No `from __future__ import annotations` here: django-ninja resolves these annotations itself.
from typing import Any

from ninja import Body, Router

from apps.agents.schemas import AgentOut
from apps.agents.selectors import agent_get, agent_list, agent_version_get
from apps.agents.services import agent_export, agent_import

router = Router(tags=["agents"])


@router.get("", response=list[AgentOut])
def agents_list(request):
    return list(agent_list())


@router.get("/{int:agent_id}/export", response=dict[str, Any])
def agents_export(request, agent_id: int, version: int | None = None):
    """The agent (its current version, or `?version=N`) as an importable JSON document, without secrets."""
    agent = agent_get(agent_id=agent_id)
    return agent_export(agent=agent_version_get(agent_id=agent.pk, number=version) if version else agent)


@router.post("/import", response={201: AgentOut})
def agents_import(request, document: dict[str, Any] = Body(...), name: str | None = None):
    """A new agent from an export document (`?name=` to rename it); refused with 400 naming the problem."""
    return 201, agent_import(document=document, name=name)
