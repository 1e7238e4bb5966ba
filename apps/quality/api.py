"""/api/v1/quality: test suites (run one on the draft or the published version, read the
results) and call replays (re-run a traced call's caller turns on a new version)."""
# No `from __future__ import annotations` here: django-ninja resolves these annotations itself.
from typing import Any
from uuid import UUID

from ninja import Router, Schema

from apps.quality import suite_selectors as selectors
from apps.quality import suite_services as services

router = Router(tags=["quality"])


class SuiteOut(Schema):
    id: int
    agent_id: int
    name: str
    scenario_count: int
    schedule_every_hours: int


class ScenarioRunOut(Schema):
    scenario_id: int
    scenario: str
    status: str
    failing_criterion: dict[str, Any] | None
    failure: str
    end_reason: str
    criteria_results: list[dict[str, Any]]
    transcript: list[dict[str, Any]]


class SuiteRunOut(Schema):
    id: int
    suite_id: int
    target: str
    version_number: int | None
    status: str
    passed: int
    failed: int
    errors: int
    trigger: str
    created_at: Any
    finished_at: Any
    scenarios: list[ScenarioRunOut]


class ReplayOut(Schema):
    id: int
    call_id: UUID
    target: str
    version_number: int | None
    status: str
    end_reason: str
    error: str
    turns: list[dict[str, Any]]


def _run_out(run) -> dict:
    scenarios = [{"scenario_id": item.scenario_id, "scenario": item.scenario.name, "status": item.status,
                  "failing_criterion": item.failing_criterion, "failure": item.failure, "end_reason": item.end_reason,
                  "criteria_results": item.criteria_results, "transcript": item.transcript}
                 for item in selectors.scenario_run_list(run_id=run.pk)]
    return {"id": run.pk, "suite_id": run.suite_id, "target": run.target, "version_number": run.version_number,
            "status": run.status, "passed": run.passed, "failed": run.failed, "errors": run.errors,
            "trigger": run.trigger, "created_at": run.created_at, "finished_at": run.finished_at,
            "scenarios": scenarios}


@router.get("/suites", response=list[SuiteOut])
def suites_list(request, agent: int | None = None):
    return list(selectors.suite_list(agent_id=agent))


@router.post("/suites/{int:suite_id}/runs", response={201: SuiteRunOut})
def suites_run(request, suite_id: int, target: str = "draft"):
    """Run every scenario of the suite on the agent's draft (`target=draft`) or published version
    (`target=published`); the scenarios run in parallel on the workers: poll the run."""
    run = services.suite_run_start(suite_id=suite_id, target=target, client=request.tenant, trigger="api")
    return 201, _run_out(run)


@router.get("/runs/{int:run_id}", response=SuiteRunOut)
def runs_get(request, run_id: int):
    return _run_out(selectors.suite_run_get(run_id=run_id))


@router.post("/calls/{uuid:call_id}/replays", response={201: ReplayOut})
def calls_replay(request, call_id: UUID, target: str = "draft"):
    """Replay the call's caller turns on the agent's draft (or `target=published`), side by side."""
    return 201, services.call_replay_request(call_id=call_id, target=target)


@router.get("/replays/{int:replay_id}", response=ReplayOut)
def replays_get(request, replay_id: int):
    return selectors.call_replay_get(replay_id=replay_id)
