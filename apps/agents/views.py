"""Client portal agent pages: everyone in the client reads; client admins create
and edit through agent_save (each save is a new version)."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from apps.agents.forms import AgentForm
from apps.agents.selectors import agent_get, agent_list, agent_model_suggestions, agent_version_list
from apps.agents.services import agent_save
from apps.core.errors import ApplicationError, NotFound
from apps.portal.access import portal_login_required


def _agent_or_404(agent_id: int):
    try:
        return agent_get(agent_id=agent_id)
    except NotFound:
        raise Http404("No such agent.") from None


def _can_edit(request) -> bool:
    return request.user.can_edit_client_data(request.tenant)


@portal_login_required
def agent_list_view(request):
    return render(request, "agents/agent_list.html", {"agents": agent_list(), "can_edit": _can_edit(request)})


@portal_login_required
def agent_detail_view(request, agent_id: int):
    agent = _agent_or_404(agent_id)
    return render(request, "agents/agent_detail.html", {"agent": agent, "can_edit": _can_edit(request)})


@portal_login_required
def agent_versions_view(request, agent_id: int):
    agent = _agent_or_404(agent_id)
    return render(request, "agents/agent_versions.html",
                  {"agent": agent, "versions": agent_version_list(agent_id=agent.pk)})


@portal_login_required(admin_only=True)
def agent_edit_view(request, agent_id: int | None = None):
    agent = _agent_or_404(agent_id) if agent_id is not None else None
    if request.method == "POST":
        form = AgentForm(request.POST, keep_language=agent.language if agent else None)
        if form.is_valid():
            try:
                saved = agent_save(agent=agent, name=form.cleaned_data["name"], **form.config())
            except ApplicationError as exc:
                form.add_config_errors(exc.details or {}, exc.message)
            else:
                messages.success(request, f"Saved {saved.name} as version {saved.current_version.number}.")
                return HttpResponseRedirect(reverse("portal:agents:detail", args=[saved.pk]))
    else:
        form = AgentForm(initial=AgentForm.initial_for(agent) if agent else None,
                         keep_language=agent.language if agent else None)
    return render(request, "agents/agent_form.html",
                  {"agent": agent, "form": form, "model_suggestions": agent_model_suggestions()})
