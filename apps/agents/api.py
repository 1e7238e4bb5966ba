"""/api/v1/agents: this client's agents (read-only)."""
# No `from __future__ import annotations` here: django-ninja resolves these annotations itself.
from ninja import Router

from apps.agents.schemas import AgentOut
from apps.agents.selectors import agent_list

router = Router(tags=["agents"])


@router.get("", response=list[AgentOut])
def agents_list(request):
    return list(agent_list())
