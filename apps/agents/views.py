"""Client portal agent pages: everyone in the client reads; client admins create
and edit through agent_save (each save is a new version)."""
from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.agents.forms import AgentForm, HttpToolForm, McpServerForm
from apps.agents.graph import BUILTIN_TOOLS, graph_diff, graph_problems
from apps.agents.models import AgentConfig
from apps.agents.selectors import (
    agent_get,
    agent_list,
    agent_model_suggestions,
    agent_version_get,
    agent_version_list,
    http_tool_get,
    http_tool_list,
    http_tool_shapes,
    mcp_server_get,
    mcp_server_list,
    mcp_server_names,
)
from apps.agents.services import (
    agent_draft_save,
    agent_export,
    agent_import,
    agent_publish,
    agent_save,
    http_tool_save,
    mcp_server_save,
)
from apps.core.errors import ApplicationError, NotFound
from apps.portal.access import portal_login_required
from apps.portal.forms_errors import form_add_application_error


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
    can_edit = _can_edit(request)
    return render(request, "agents/agent_detail.html", {
        "agent": agent, "can_edit": can_edit,
        "call_me": _call_me_context(request) if can_edit and agent.current_version else None})


def _call_me_context(request) -> dict:
    from apps.telephony.selectors import phone_numbers_can_dial

    return {"numbers": phone_numbers_can_dial(), "request_key": uuid.uuid4().hex,
            "to_number": request.session.get("call_me_to", "")}


@require_POST
@portal_login_required(admin_only=True)
def agent_call_me_view(request, agent_id: int):
    """"Call me": the agent phones the number given, from one of the client's numbers (a real, billed call)."""
    from apps.telephony.services import telephony_call_me

    agent = _agent_or_404(agent_id)
    to_number = request.POST.get("to_number", "").strip()
    try:
        number_id = int(request.POST.get("number", ""))
    except ValueError:
        number_id = 0
    try:
        call = telephony_call_me(agent=agent, number_id=number_id, to_number=to_number,
                                 request_key=request.POST.get("request_key", ""))
    except ApplicationError as exc:
        messages.error(request, f"No call placed: {exc.message}")
        return HttpResponseRedirect(reverse("portal:agents:detail", args=[agent.pk]) + "#call-me")
    request.session["call_me_to"] = call.to_number
    if call.is_ended and call.end_reason == call.EndReason.FAILED:
        messages.error(request, f"The call to {call.to_number} failed: {call.error or 'the carrier refused it'}.")
    else:
        messages.success(request, f"Calling {call.to_number} from {call.from_number}: pick up to talk to {agent.name}.")
    return HttpResponseRedirect(reverse("calls:detail", args=[call.pk]))


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


# --- the workflow builder, versions, import/export ----------------------------------------------------

def _json_body(request):
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        return None


def _problems_json(problems) -> list[dict]:
    return [problem.as_dict() for problem in problems]


@portal_login_required
def agent_builder_view(request, agent_id: int, number: int | None = None):
    """The canvas: the draft (or the current graph) for admins to edit; a version read-only."""
    agent = _agent_or_404(agent_id)
    if number is not None:
        try:
            version = agent_version_get(agent_id=agent.pk, number=number)
        except NotFound:
            raise Http404("No such version.") from None
        graph, editable = version.graph, False
    else:
        version = None
        graph = agent.draft_graph if agent.draft_graph is not None else agent.graph
        editable = _can_edit(request)
    tools = [*BUILTIN_TOOLS, *http_tool_shapes(), *(f"mcp:{name}" for name in sorted(mcp_server_names()))]
    return render(request, "agents/agent_builder.html", {
        "agent": agent, "version": version, "editable": editable, "has_draft": agent.draft_graph is not None,
        "builder": {"graph": graph, "tools": tools, "editable": editable,
                    "problems": _problems_json(graph_problems(
                        graph, http_tools=http_tool_shapes(), mcp_servers=mcp_server_names(),
                        private_hosts_ok=settings.AGENT_TOOLS_ALLOW_PRIVATE_HOSTS)),
                    "draft_url": reverse("portal:agents:builder_draft", args=[agent.pk]),
                    "publish_url": reverse("portal:agents:builder_publish", args=[agent.pk])},
    })


@require_POST
@portal_login_required(admin_only=True)
def agent_builder_draft_view(request, agent_id: int):
    agent = _agent_or_404(agent_id)
    try:
        problems = agent_draft_save(agent=agent, graph=_json_body(request))
    except ApplicationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status_code)
    return JsonResponse({"saved": True, "problems": _problems_json(problems)})


@require_POST
@portal_login_required(admin_only=True)
def agent_builder_publish_view(request, agent_id: int):
    agent = _agent_or_404(agent_id)
    try:
        if isinstance(_json_body(request), dict):
            agent_draft_save(agent=agent, graph=_json_body(request))
        agent = agent_publish(agent=agent)
    except ApplicationError as exc:
        problems = graph_problems(agent.draft_graph or {}, http_tools=http_tool_shapes(),
                                  mcp_servers=mcp_server_names(),
                                  private_hosts_ok=settings.AGENT_TOOLS_ALLOW_PRIVATE_HOSTS)
        return JsonResponse({**exc.as_dict(), "problems": _problems_json(problems)}, status=exc.status_code)
    return JsonResponse({"published": True, "version": agent.current_version.number, "problems": []})


@portal_login_required
def agent_version_diff_view(request, agent_id: int):
    agent = _agent_or_404(agent_id)
    try:
        a = agent_version_get(agent_id=agent.pk, number=int(request.GET.get("a", "")))
        b = agent_version_get(agent_id=agent.pk, number=int(request.GET.get("b", "")))
    except (ValueError, NotFound):
        raise Http404("Choose two versions of this agent.") from None
    settings_changes = [(name, getattr(a, name), getattr(b, name)) for name in AgentConfig.CONFIG_FIELDS
                        if name != "graph" and getattr(a, name) != getattr(b, name)]
    return render(request, "agents/agent_version_diff.html", {
        "agent": agent, "a": a, "b": b, "graph_lines": graph_diff(a.graph, b.graph),
        "settings_changes": settings_changes})


@portal_login_required
def agent_export_view(request, agent_id: int):
    agent = _agent_or_404(agent_id)
    number = request.GET.get("version")
    try:
        source = agent_version_get(agent_id=agent.pk, number=int(number)) if number else agent
    except (ValueError, NotFound):
        raise Http404("No such version.") from None
    response = JsonResponse(agent_export(agent=source), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="agent-{agent.pk}.json"'
    return response


@portal_login_required(admin_only=True)
def agent_import_view(request):
    error, problems = "", {}
    if request.method == "POST":
        upload = request.FILES.get("file")
        text = upload.read().decode("utf-8", "replace") if upload else request.POST.get("document", "")
        try:
            document = json.loads(text)
        except ValueError:
            error = "That is not JSON: choose a file exported from an agent (switchboard.agent/1)."
        else:
            try:
                agent = agent_import(document=document, name=request.POST.get("name") or None)
            except ApplicationError as exc:
                error, problems = exc.message, exc.details
            else:
                messages.success(request, f"Imported {agent.name} as version 1. Fill in the secrets of its HTTP tools.")
                return HttpResponseRedirect(reverse("portal:agents:detail", args=[agent.pk]))
    return render(request, "agents/agent_import.html", {"error": error, "problems": problems}, status=400 if error else 200)


# --- HTTP tools --------------------------------------------------------------------------------------

@portal_login_required
def http_tool_list_view(request):
    return render(request, "agents/http_tool_list.html", {"tools": http_tool_list(), "can_edit": _can_edit(request)})


@portal_login_required(admin_only=True)
def http_tool_edit_view(request, tool_id: int | None = None):
    try:
        tool = http_tool_get(tool_id=tool_id) if tool_id is not None else None
    except NotFound:
        raise Http404("No such tool.") from None
    if request.method == "POST":
        form = HttpToolForm(request.POST)
        if form.is_valid():
            try:
                http_tool_save(tool=tool, **form.tool_fields())
            except ApplicationError as exc:
                form_add_application_error(form, exc)
            else:
                messages.success(request, f"Saved the tool {form.cleaned_data['name']}.")
                return HttpResponseRedirect(reverse("portal:agents:tools"))
    else:
        form = HttpToolForm(initial=HttpToolForm.initial_for(tool) if tool else None)
    return render(request, "agents/http_tool_form.html", {"tool": tool, "form": form})


# --- MCP servers -------------------------------------------------------------------------------------

@portal_login_required
def mcp_server_list_view(request):
    return render(request, "agents/mcp_server_list.html", {"servers": mcp_server_list(), "can_edit": _can_edit(request)})


@portal_login_required(admin_only=True)
def mcp_server_edit_view(request, server_id: int | None = None):
    try:
        server = mcp_server_get(server_id=server_id) if server_id is not None else None
    except NotFound:
        raise Http404("No such MCP server.") from None
    if request.method == "POST":
        form = McpServerForm(request.POST)
        if form.is_valid():
            try:
                mcp_server_save(server=server, **form.server_fields())
            except ApplicationError as exc:
                form_add_application_error(form, exc)
            else:
                messages.success(request, f"Saved the MCP server {form.cleaned_data['name']}.")
                return HttpResponseRedirect(reverse("portal:agents:mcp_servers"))
    else:
        form = McpServerForm(initial=McpServerForm.initial_for(server) if server else None)
    return render(request, "agents/mcp_server_form.html", {"server": server, "form": form})


# --- "Talk to this agent" (a browser test call) and the voice preview ----------------------------------------

DEFAULT_PREVIEW_TEXT = "Hello! This is how I sound on the phone."


@portal_login_required(admin_only=True)
def agent_talk_view(request, agent_id: int):
    """The browser test call's page: microphone and speaker on the agent's draft, the live
    transcript and per-turn latencies (static/calls/test_call.js)."""
    from apps.voice.browser_media import SAMPLE_RATE

    agent = _agent_or_404(agent_id)
    return render(request, "agents/agent_talk.html", {
        "agent": agent, "has_draft": agent.draft_graph is not None, "sample_rate": SAMPLE_RATE,
        "start_url": reverse("portal:agents:talk_start", args=[agent.pk]),
    })


@require_POST
@portal_login_required(admin_only=True)
def agent_talk_start_view(request, agent_id: int):
    """Start a test call: the call id and the single-use token the page's websocket joins it with."""
    from apps.calls.services import call_test_create
    from apps.voice.browser_media import SAMPLE_RATE

    agent = _agent_or_404(agent_id)
    try:
        ticket = call_test_create(client=request.tenant, agent=agent, user=request.user)
    except ApplicationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status_code)
    return JsonResponse({
        "call_id": ticket.call_id, "token": ticket.token, "ws_path": "/ws/test-call/", "sample_rate": SAMPLE_RATE,
        "call_url": reverse("calls:detail", args=[ticket.call_id]),
    })


@require_POST
@portal_login_required(admin_only=True)
def agent_voice_preview_view(request, agent_id: int):
    """A short sample in a voice, as a WAV: the editor's current (unsaved) voice fields
    (tts_provider, tts_model, tts_voice, tts_settings as JSON), or the saved agent's when absent."""
    from apps.providers.services import provider_voice_preview

    agent = _agent_or_404(agent_id)
    provider = request.POST.get("tts_provider") or agent.tts_provider
    if "tts_provider" in request.POST:
        try:
            settings_ = json.loads(request.POST.get("tts_settings") or "{}")
        except ValueError:
            return JsonResponse({"error": "Other text-to-speech settings must be JSON.",
                                 "details": {"tts_settings": "not JSON"}}, status=400)
        if not isinstance(settings_, dict):
            return JsonResponse({"error": "Other text-to-speech settings must be a JSON object.",
                                 "details": {"tts_settings": "not an object"}}, status=400)
        for field, setting in (("tts_model", "model"), ("tts_voice", "voice")):
            value = (request.POST.get(field) or "").strip()
            if value:
                settings_[setting] = value
    else:
        settings_ = dict(agent.tts_settings or {})
    text = (request.POST.get("text") or "").strip() or agent.greeting or DEFAULT_PREVIEW_TEXT
    try:
        wav = provider_voice_preview(provider=provider, settings=settings_, text=text)
    except ApplicationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status_code)
    return HttpResponse(wav, content_type="audio/wav", headers={"Cache-Control": "no-store"})
