"""Client portal QA pages: the QA list across calls (filters by score, tag, agent,
status), an agent's QA settings (client admins), a re-run from the call page."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.agents.selectors import agent_get, agent_list
from apps.core.errors import ApplicationError, NotFound
from apps.portal.access import portal_login_required
from apps.portal.forms_errors import form_add_application_error
from apps.quality.forms import QAConfigForm
from apps.quality.models import QAResult
from apps.quality.selectors import qa_config_for_agent, qa_result_list, qa_tags_in_use
from apps.quality.services import qa_config_save, qa_rerun_request


def _int_or_none(value: str, low: int, high: int) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


@portal_login_required
def qa_list_view(request):
    filters = {key: request.GET.get(key, "") for key in ("min_score", "max_score", "tag", "agent", "status")}
    results = qa_result_list(
        min_score=_int_or_none(filters["min_score"], 1, 10), max_score=_int_or_none(filters["max_score"], 1, 10),
        tag=filters["tag"][:60], agent_id=_int_or_none(filters["agent"], 1, 2**62),
        status=filters["status"] if filters["status"] in QAResult.Status.values else "",
    )
    page = Paginator(results, 50).get_page(request.GET.get("page"))
    return render(request, "quality/qa_list.html", {
        "page": page, "filters": filters, "agents": agent_list(), "tags": qa_tags_in_use(),
        "statuses": QAResult.Status.choices, "scores": range(1, 11),
    })


@portal_login_required(admin_only=True)
def qa_settings_view(request, agent_id: int):
    try:
        agent = agent_get(agent_id=agent_id)
    except NotFound:
        raise Http404("No such agent.") from None
    config = qa_config_for_agent(agent_id=agent.pk)
    if request.method == "POST":
        form = QAConfigForm(request.POST)
        if form.is_valid():
            try:
                qa_config_save(agent_id=agent.pk, **form.cleaned_data)
            except ApplicationError as error:
                form_add_application_error(form, error)
            else:
                messages.success(request, f"QA settings of {agent.name} saved.")
                return HttpResponseRedirect(reverse("portal:quality:settings", args=[agent.pk]))
    else:
        initial = {name: getattr(config, name) for name in QAConfigForm.base_fields} if config else {}
        form = QAConfigForm(initial=initial)
    return render(request, "quality/qa_settings.html", {"agent": agent, "form": form, "config": config})


@require_POST
@portal_login_required(admin_only=True)
def qa_rerun_view(request, call_id):
    try:
        run = qa_rerun_request(call_id=call_id)
    except NotFound:
        raise Http404("No such call.") from None
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"QA run {run} is queued; this page shows it once it is done.")
    return HttpResponseRedirect(reverse("calls:detail", args=[call_id]))
