"""Reads of test personas, suites, their runs and call replays."""
from __future__ import annotations

from django.db.models import Count, QuerySet

from apps.core.errors import NotFound
from apps.quality.models import CallReplay, Persona, Scenario, ScenarioRun, Suite, SuiteRun


def persona_list() -> QuerySet[Persona]:
    return Persona.objects.annotate(scenario_count=Count("scenarios")).order_by("name")


def persona_get(*, persona_id: int) -> Persona:
    persona = Persona.objects.filter(pk=persona_id).first()
    if persona is None:
        raise NotFound("No such persona.")
    return persona


def suite_list(*, agent_id: int | None = None) -> QuerySet[Suite]:
    suites = Suite.objects.select_related("agent").annotate(scenario_count=Count("scenarios"))
    if agent_id:
        suites = suites.filter(agent_id=agent_id)
    return suites.order_by("agent__name", "name")


def suite_get(*, suite_id: int) -> Suite:
    suite = Suite.objects.select_related("agent", "agent__current_version").filter(pk=suite_id).first()
    if suite is None:
        raise NotFound("No such suite.")
    return suite


def scenario_get(*, scenario_id: int) -> Scenario:
    scenario = Scenario.objects.select_related("suite", "persona").filter(pk=scenario_id).first()
    if scenario is None:
        raise NotFound("No such scenario.")
    return scenario


def suite_run_list(*, suite_id: int, limit: int = 20) -> list[SuiteRun]:
    return list(SuiteRun.objects.filter(suite_id=suite_id).order_by("-created_at", "-id")[:limit])


def suite_run_get(*, run_id: int) -> SuiteRun:
    run = SuiteRun.objects.select_related("suite", "suite__agent").filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such test run.")
    return run


def suite_run_latest(*, suite_id: int, target: str, fingerprint: str | None = None,
                     version_number: int | None = None) -> SuiteRun | None:
    runs = SuiteRun.objects.filter(suite_id=suite_id, target=target)
    if fingerprint is not None:
        runs = runs.filter(config_fingerprint=fingerprint)
    if version_number is not None:
        runs = runs.filter(version_number=version_number)
    return runs.order_by("-created_at", "-id").first()


def scenario_run_list(*, run_id: int) -> list[ScenarioRun]:
    return list(ScenarioRun.objects.filter(suite_run_id=run_id).select_related("scenario", "scenario__persona")
                .order_by("scenario__name"))


def suite_run_comparison(*, run: SuiteRun) -> dict:
    """The same suite's latest finished run on the published version (the draft's baseline):
    {"run": SuiteRun | None, "by_scenario": {scenario id: ScenarioRun}}. For a run on the
    published version, the run on the version before it."""
    agent = run.suite.agent
    baseline = SuiteRun.objects.filter(suite_id=run.suite_id, target=SuiteRun.Target.PUBLISHED,
                                       finished_at__isnull=False).exclude(pk=run.pk)
    if run.target == SuiteRun.Target.DRAFT:
        number = agent.current_version.number if agent.current_version_id else None
        baseline = baseline.filter(version_number=number)
    else:
        baseline = baseline.filter(version_number__lt=run.version_number or 0)
    baseline = baseline.order_by("-version_number", "-created_at", "-id").first()
    by_scenario = {}
    if baseline is not None:
        by_scenario = {item.scenario_id: item for item in baseline.scenario_runs.all()}
    return {"run": baseline, "by_scenario": by_scenario}


def call_replay_latest(*, call_id) -> CallReplay | None:
    return CallReplay.objects.filter(call_id=call_id).order_by("-created_at", "-id").first()


def call_replay_get(*, replay_id: int) -> CallReplay:
    replay = CallReplay.objects.filter(pk=replay_id).first()
    if replay is None:
        raise NotFound("No such replay.")
    return replay
