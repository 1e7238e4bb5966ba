"""Client portal pages of test personas and suites: personas, an agent's suites with their
scenarios, "Run on draft" / "Run on published", the results page (per scenario: pass/fail,
the failing criterion, the transcript, the last published version's result beside it), the
publish gate, and "Re-run on draft" from a call's page. Doors: parse, call a service or
selector, render."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.agents.selectors import agent_get, agent_list
from apps.agents.services import agent_publish_gate_set
from apps.core.errors import ApplicationError, NotFound
from apps.portal.access import portal_login_required
from apps.portal.forms_errors import form_add_application_error
from apps.quality import suite_selectors as selectors
from apps.quality import suite_services as services
from apps.quality.criteria import describe
from apps.quality.models import SuiteRun
from apps.quality.suite_forms import PersonaForm, ScenarioForm, SuiteForm


def _found(getter, **kwargs):
    try:
        return getter(**kwargs)
    except NotFound as error:
        raise Http404(error.message) from None


def _can_edit(request) -> bool:
    return request.user.can_edit_client_data(request.tenant)


@portal_login_required
def suite_list_view(request):
    form = SuiteForm(request.POST or None, agents=agent_list())
    if request.method == "POST":
        if not _can_edit(request):
            raise PermissionDenied("Only this client's admins can add suites.")
        if form.is_valid():
            try:
                suite = services.suite_save(agent_id=form.cleaned_data["agent"], name=form.cleaned_data["name"],
                                            schedule_every_hours=form.cleaned_data["schedule_every_hours"])
            except ApplicationError as error:
                form_add_application_error(form, error)
            else:
                messages.success(request, f"Suite {suite.name} added: now add its scenarios.")
                return HttpResponseRedirect(reverse("portal:quality:suite", args=[suite.pk]))
    agent_id = request.GET.get("agent", "")
    agent_id = int(agent_id) if agent_id.isdigit() and len(agent_id) < 12 else None
    suites = [(suite, (selectors.suite_run_list(suite_id=suite.pk, limit=1) or [None])[0])
              for suite in selectors.suite_list(agent_id=agent_id)]
    if request.method != "POST" and agent_id:
        form = SuiteForm(agents=agent_list(), initial={"agent": agent_id})
    return render(request, "quality/suite_list.html", {"suites": suites, "form": form, "can_edit": _can_edit(request),
                                                       "personas": selectors.persona_list()})


@portal_login_required
def persona_list_view(request):
    form = PersonaForm(request.POST or None)
    if request.method == "POST":
        if not _can_edit(request):
            raise PermissionDenied("Only this client's admins can add personas.")
        if form.is_valid():
            try:
                persona = services.persona_save(**form.cleaned_data)
            except ApplicationError as error:
                form_add_application_error(form, error)
            else:
                messages.success(request, f"Persona {persona.name} added.")
                return HttpResponseRedirect(reverse("portal:quality:personas"))
    return render(request, "quality/persona_list.html", {"personas": selectors.persona_list(), "form": form,
                                                         "can_edit": _can_edit(request)})


@portal_login_required(admin_only=True)
def persona_edit_view(request, persona_id: int):
    persona = _found(selectors.persona_get, persona_id=persona_id)
    if request.method == "POST":
        form = PersonaForm(request.POST)
        if form.is_valid():
            try:
                services.persona_save(persona=persona, **form.cleaned_data)
            except ApplicationError as error:
                form_add_application_error(form, error)
            else:
                messages.success(request, f"Persona {persona.name} saved.")
                return HttpResponseRedirect(reverse("portal:quality:personas"))
    else:
        form = PersonaForm(initial={name: getattr(persona, name) for name in PersonaForm.base_fields})
    return render(request, "quality/persona_edit.html", {"persona": persona, "form": form})


@portal_login_required
def suite_view(request, suite_id: int):
    suite = _found(selectors.suite_get, suite_id=suite_id)
    personas = selectors.persona_list()
    form = ScenarioForm(request.POST or None, personas=personas)
    if request.method == "POST":
        if not _can_edit(request):
            raise PermissionDenied("Only this client's admins can add scenarios.")
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.scenario_save(suite_id=suite.pk, name=data["name"], persona_id=data["persona"],
                                       criteria=data["criteria"], max_turns=data["max_turns"])
            except ApplicationError as error:
                form_add_application_error(form, error)
            else:
                messages.success(request, f"Scenario {data['name']} added.")
                return HttpResponseRedirect(reverse("portal:quality:suite", args=[suite.pk]))
    scenarios = [(scenario, [describe(criterion) for criterion in scenario.criteria])
                 for scenario in suite.scenarios.select_related("persona")]
    return render(request, "quality/suite_detail.html", {
        "suite": suite, "agent": suite.agent, "scenarios": scenarios, "form": form, "can_edit": _can_edit(request),
        "runs": selectors.suite_run_list(suite_id=suite.pk), "has_personas": bool(personas),
        "suite_form": SuiteForm(agents=[suite.agent], initial={"agent": suite.agent_id, "name": suite.name,
                                                               "schedule_every_hours": suite.schedule_every_hours}),
    })


@require_POST
@portal_login_required(admin_only=True)
def suite_settings_view(request, suite_id: int):
    suite = _found(selectors.suite_get, suite_id=suite_id)
    try:
        services.suite_save(suite=suite, agent_id=suite.agent_id, name=request.POST.get("name", ""),
                            schedule_every_hours=request.POST.get("schedule_every_hours", "0"))
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Suite saved.")
    return HttpResponseRedirect(reverse("portal:quality:suite", args=[suite.pk]))


@portal_login_required(admin_only=True)
def scenario_edit_view(request, suite_id: int, scenario_id: int):
    suite = _found(selectors.suite_get, suite_id=suite_id)
    scenario = _found(selectors.scenario_get, scenario_id=scenario_id)
    if scenario.suite_id != suite.pk:
        raise Http404("No such scenario.")
    personas = selectors.persona_list()
    if request.method == "POST":
        form = ScenarioForm(request.POST, personas=personas)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.scenario_save(scenario=scenario, suite_id=suite.pk, name=data["name"],
                                       persona_id=data["persona"], criteria=data["criteria"],
                                       max_turns=data["max_turns"])
            except ApplicationError as error:
                form_add_application_error(form, error)
            else:
                messages.success(request, f"Scenario {data['name']} saved.")
                return HttpResponseRedirect(reverse("portal:quality:suite", args=[suite.pk]))
    else:
        form = ScenarioForm(personas=personas, initial={"name": scenario.name, "persona": scenario.persona_id,
                                                        "criteria": scenario.criteria, "max_turns": scenario.max_turns})
    return render(request, "quality/scenario_edit.html", {"suite": suite, "scenario": scenario, "form": form})


@require_POST
@portal_login_required(admin_only=True)
def suite_run_view(request, suite_id: int):
    suite = _found(selectors.suite_get, suite_id=suite_id)
    target = request.POST.get("target", SuiteRun.Target.DRAFT)
    try:
        run = services.suite_run_start(suite_id=suite.pk, target=target, client=request.tenant)
    except ApplicationError as error:
        messages.error(request, error.message)
        return HttpResponseRedirect(reverse("portal:quality:suite", args=[suite.pk]))
    messages.success(request, f"The suite is running on the {run.get_target_display().lower()}: "
                              "this page shows each scenario as it finishes.")
    return HttpResponseRedirect(reverse("portal:quality:run", args=[run.pk]))


@portal_login_required
def suite_run_detail_view(request, run_id: int):
    run = _found(selectors.suite_run_get, run_id=run_id)
    comparison = selectors.suite_run_comparison(run=run)
    rows = [{"item": item, "baseline": comparison["by_scenario"].get(item.scenario_id),
             "failing": describe(item.failing_criterion) if item.failing_criterion else ""}
            for item in selectors.scenario_run_list(run_id=run.pk)]
    return render(request, "quality/suite_run.html", {
        "run": run, "suite": run.suite, "rows": rows, "baseline": comparison["run"],
        "refresh": run.status == SuiteRun.Status.RUNNING, "can_edit": _can_edit(request),
    })


@require_POST
@portal_login_required(admin_only=True)
def publish_gate_view(request, agent_id: int):
    agent = _found(agent_get, agent_id=agent_id)
    required = request.POST.get("require_green_suite") == "on"
    agent_publish_gate_set(agent=agent, require_green_suite=required)
    messages.success(request, f"Publishing {agent.name} {'now requires' if required else 'no longer requires'} "
                              "a green test suite on the draft.")
    suite_id = request.POST.get("suite", "")
    back = reverse("portal:quality:suite", args=[int(suite_id)]) if suite_id.isdigit() and len(suite_id) < 12 else None
    return HttpResponseRedirect(back or reverse("portal:quality:suites"))


@require_POST
@portal_login_required(admin_only=True)
def call_replay_view(request, call_id):
    target = request.POST.get("target", SuiteRun.Target.DRAFT)
    try:
        services.call_replay_request(call_id=call_id, target=target)
    except NotFound:
        raise Http404("No such call.") from None
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The replay is running: this page shows both conversations side by side once it "
                                  "is done.")
    return HttpResponseRedirect(reverse("calls:detail", args=[call_id]) + "#replay")
