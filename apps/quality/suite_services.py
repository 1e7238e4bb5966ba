"""AI test personas, regression suites and call replays (tenant schema): the writes.

- A `Persona` is a test caller played by an LLM (through the provider registry: the client's
  key, else an agency key it may use); a `Scenario` is a persona plus success criteria
  (apps/quality/criteria.schema.json); a `Suite` is an agent's scenarios.
- `suite_run_start` makes a `SuiteRun` against the agent's draft (the builder's unpublished
  graph on the current settings) or its published version, one `ScenarioRun` per scenario, and
  enqueues one `quality.scenario_run` task each (a Celery group: they run in parallel on the
  workers). Each task talks the persona to the agent in text (apps.quality.conversation,
  apps.voice.text_session), judges the criteria and stores transcript and verdict; the last one to
  finish settles the suite run (`suite_run_settle`, under a row lock, so no chord or result
  backend is needed).
- The publish gate: an agent with `require_green_suite` publishes a draft only when every suite
  with scenarios has passed on that very draft (`suite_publish_check`, called by
  apps.agents.services.agent_publish).
- `call_replay_request` replays a traced call's caller turns against the draft (or the published
  version) and keeps both sides turn by turn.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.errors import ApplicationError, NotFound, ProviderError
from apps.quality.criteria import ERROR, Conversation, criteria_validate, describe, judge_all
from apps.quality.llm import QA_VENDORS
from apps.quality.models import CallReplay, Persona, Scenario, ScenarioRun, Suite, SuiteRun

logger = logging.getLogger(__name__)

MAX_TURNS_LIMIT = 50
# A scenario run or replay a worker claimed this long ago and never finished: its worker died (the
# task is redelivered, acks late) and may claim it again; the sweep re-sends pending ones this old.
STALE_AFTER = timedelta(minutes=15)
SCHEDULE_HOURS_MAX = 24 * 30
TEXT_LIMITS = {"name": 120, "mood": 120, "goal": 4000, "facts": 4000, "speaking_style": 2000, "opening_line": 1000}


def _text(value, field: str, *, required: bool = False) -> str:
    text = str(value or "").strip()
    if "\x00" in text:
        raise ApplicationError(f"The {field.replace('_', ' ')} contains a NUL byte.", details={field: "NUL byte"})
    if required and not text:
        raise ApplicationError(f"The {field.replace('_', ' ')} is required.", details={field: "required"})
    limit = TEXT_LIMITS.get(field, 120)
    if len(text) > limit:
        raise ApplicationError(f"The {field.replace('_', ' ')} is longer than {limit} characters.",
                               details={field: "too long"})
    return text


def _llm_choice(provider: str, model: str) -> tuple[str, str]:
    provider, model = str(provider or "").strip(), str(model or "").strip()
    if provider and provider not in QA_VENDORS:
        raise ApplicationError(f"A persona is played by an OpenAI or OpenAI-compatible LLM, not {provider!r}.",
                               details={"llm_provider": "not OpenAI-compatible"})
    if model and not provider:
        raise ApplicationError("Pick the persona's LLM provider with its model (or leave both blank: the agent's).",
                               details={"llm_provider": "required with a model"})
    return provider, model[:100]


# --- personas, suites, scenarios ---------------------------------------------------------------------------------


@transaction.atomic
def persona_save(*, persona: Persona | None = None, name, goal, mood="", facts="", speaking_style="",
                 opening_line="", llm_provider="", llm_model="") -> Persona:
    fields = {"name": _text(name, "name", required=True), "goal": _text(goal, "goal", required=True),
              "mood": _text(mood, "mood"), "facts": _text(facts, "facts"),
              "speaking_style": _text(speaking_style, "speaking_style"), "opening_line": _text(opening_line, "opening_line")}
    fields["llm_provider"], fields["llm_model"] = _llm_choice(llm_provider, llm_model)
    taken = Persona.objects.filter(name=fields["name"])
    if persona is not None:
        taken = taken.exclude(pk=persona.pk)
    if taken.exists():
        raise ApplicationError(f"There is already a persona called {fields['name']!r}.", details={"name": "taken"})
    if persona is None:
        return Persona.objects.create(**fields)
    for key, value in fields.items():
        setattr(persona, key, value)
    persona.save()
    return persona


def _schedule_name(suite: Suite) -> str:
    # The tenant-aware beat scheduler refuses one name in two schemas: the schema is part of it.
    return f"quality: test suite {suite.pk} [{connection.schema_name}]"


def _schedule_sync(suite: Suite) -> None:
    """The suite's django-celery-beat entry (in the client's schema, where the tenant-aware
    scheduler runs it): every `schedule_every_hours` hours, or none."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    name = _schedule_name(suite)
    if not suite.schedule_every_hours:
        PeriodicTask.objects.filter(name=name).delete()
        return
    interval, _ = IntervalSchedule.objects.get_or_create(every=suite.schedule_every_hours,
                                                         period=IntervalSchedule.HOURS)
    PeriodicTask.objects.update_or_create(name=name, defaults={
        "task": "quality.suite_scheduled", "interval": interval, "crontab": None, "enabled": True,
        "args": json.dumps([suite.pk])})


@transaction.atomic
def suite_save(*, suite: Suite | None = None, agent_id: int, name, schedule_every_hours=0) -> Suite:
    from apps.agents.models import Agent

    if not Agent.objects.filter(pk=agent_id).exists():
        raise NotFound("No such agent.")
    name = _text(name, "name", required=True)
    try:
        hours = int(schedule_every_hours or 0)
    except (TypeError, ValueError):
        raise ApplicationError("The schedule must be a whole number of hours (0: no schedule).",
                               details={"schedule_every_hours": "not a number"}) from None
    if not 0 <= hours <= SCHEDULE_HOURS_MAX:
        raise ApplicationError(f"The schedule must be between 0 and {SCHEDULE_HOURS_MAX} hours.",
                               details={"schedule_every_hours": "out of range"})
    taken = Suite.objects.filter(agent_id=agent_id, name=name)
    if suite is not None:
        taken = taken.exclude(pk=suite.pk)
    if taken.exists():
        raise ApplicationError(f"This agent already has a suite called {name!r}.", details={"name": "taken"})
    if suite is None:
        suite = Suite.objects.create(agent_id=agent_id, name=name, schedule_every_hours=hours)
    else:
        suite.name, suite.schedule_every_hours = name, hours
        suite.save(update_fields=["name", "schedule_every_hours"])
    _schedule_sync(suite)
    return suite


@transaction.atomic
def suite_delete(*, suite: Suite) -> None:
    suite.schedule_every_hours = 0
    _schedule_sync(suite)
    suite.delete()


@transaction.atomic
def scenario_save(*, scenario: Scenario | None = None, suite_id: int, name, persona_id, criteria,
                  max_turns=10) -> Scenario:
    suite = Suite.objects.filter(pk=suite_id).first()
    if suite is None:
        raise NotFound("No such suite.")
    name = _text(name, "name", required=True)
    persona = Persona.objects.filter(pk=persona_id).first() if str(persona_id or "").isdigit() else None
    if persona is None:
        raise ApplicationError("Pick the scenario's persona.", details={"persona": "required"})
    criteria = criteria_validate(criteria)
    if not criteria:
        raise ApplicationError("A scenario needs at least one criterion.", details={"criteria": "empty"})
    try:
        max_turns = int(max_turns)
    except (TypeError, ValueError):
        raise ApplicationError("The turn limit must be a whole number.", details={"max_turns": "not a number"}) from None
    if not 1 <= max_turns <= MAX_TURNS_LIMIT:
        raise ApplicationError(f"The turn limit must be between 1 and {MAX_TURNS_LIMIT}.",
                               details={"max_turns": "out of range"})
    taken = Scenario.objects.filter(suite=suite, name=name)
    if scenario is not None:
        taken = taken.exclude(pk=scenario.pk)
    if taken.exists():
        raise ApplicationError(f"This suite already has a scenario called {name!r}.", details={"name": "taken"})
    fields = {"name": name, "persona": persona, "criteria": criteria, "max_turns": max_turns}
    if scenario is None:
        return Scenario.objects.create(suite=suite, **fields)
    for key, value in fields.items():
        setattr(scenario, key, value)
    scenario.save()
    return scenario


# --- what a run talks to ---------------------------------------------------------------------------------------

_UNVERSIONED = ("graph", "system_prompt", "greeting", "tools")  # all three follow from the graph


@dataclass(frozen=True)
class TestTarget:
    runtime: object  # apps.agents.selectors.AgentRuntimeConfig
    version_number: int | None
    fingerprint: str


def _fingerprint(config: dict, graph: dict) -> str:
    settled = {key: value for key, value in config.items() if key not in _UNVERSIONED}
    payload = json.dumps({"config": settled, "graph": graph or {}}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def draft_fingerprint(*, agent) -> str | None:
    """The fingerprint of what publishing the agent's draft would make (None: no draft)."""
    if agent.draft_graph is None:
        return None
    return _fingerprint(agent.config_dict(), agent.draft_graph)


def test_target(*, agent, target: str, client=None) -> TestTarget:
    """The configuration a run talks to: the published version, or the draft (the builder's graph
    on the published settings)."""
    from apps.agents.selectors import agent_runtime_config, http_tools_for_runtime, mcp_servers_for_runtime

    version = agent.current_version
    if version is None:
        raise ApplicationError("The agent has no published version yet.")
    runtime = agent_runtime_config(agent_version=version, client=client)
    variables = {"caller": {"number": ""}, "call": {"direction": "inbound", "from_number": "", "to_number": ""}}
    runtime = replace(runtime, variables=variables)
    if target == SuiteRun.Target.PUBLISHED:
        return TestTarget(runtime=runtime, version_number=version.number,
                          fingerprint=_fingerprint(version.config_dict(), runtime.graph))
    if target != SuiteRun.Target.DRAFT:
        raise ApplicationError(f"Run against the draft or the published version, not {target!r}.",
                               details={"target": "unknown"})
    if agent.draft_graph is None:
        raise ApplicationError("This agent has no draft: edit it in the builder and save a draft, or run against "
                               "the published version.", details={"target": "no draft"})
    graph = agent.draft_graph
    from django.conf import settings

    from apps.agents.graph import graph_problems
    from apps.agents.selectors import http_tool_shapes, mcp_server_names

    problems = graph_problems(graph, http_tools=http_tool_shapes(), mcp_servers=mcp_server_names(),
                              private_hosts_ok=settings.AGENT_TOOLS_ALLOW_PRIVATE_HOSTS)
    if problems:
        where = f" ({problems[0].node or problems[0].edge})" if problems[0].node or problems[0].edge else ""
        raise ApplicationError(f"The draft cannot run until its problems are fixed in the builder: "
                               f"{problems[0].message}{where}.", details={"target": "draft has problems"})
    tools = {tool for node in graph.get("nodes") or [] for tool in node.get("tools") or []}
    global_node = next((n for n in graph.get("nodes") or [] if n.get("type") == "global"), {})
    start = next((n for n in graph.get("nodes") or [] if n.get("type") == "start"), {})
    runtime = replace(
        runtime, graph=graph, system_prompt=global_node.get("prompt") or runtime.system_prompt,
        greeting=start.get("greeting") if isinstance(start.get("greeting"), str) else runtime.greeting,
        http_tools=http_tools_for_runtime(names=tools | set(runtime.tools)),
        mcp_servers=mcp_servers_for_runtime(names={t[4:] for t in tools if t.startswith("mcp:")}),
    )
    return TestTarget(runtime=runtime, version_number=version.number,
                      fingerprint=_fingerprint(agent.config_dict(), graph))


def _agent_llm(runtime):
    """The agent's LLM service, built by the provider registry with a usable key (no lease:
    a test is not a call)."""
    from apps.providers.registry import build_llm, provider_spec_for, vendor_get

    spec = provider_spec_for(kind="llm", provider=runtime.llm.provider, settings=runtime.llm.settings)
    vendor = vendor_get(spec.provider)
    if vendor.needs_key and not spec.api_key:
        raise ApplicationError(f"No {vendor.label} key can serve the agent's LLM: add one under Provider keys.",
                               details={"provider": spec.provider})
    return build_llm(spec)


def _persona_spec(persona: Persona, runtime):
    from apps.quality.llm import qa_llm_spec

    provider = persona.llm_provider or runtime.llm.provider
    model = persona.llm_model or (runtime.llm.settings or {}).get("model", "")
    if provider not in QA_VENDORS:
        raise ApplicationError(f"The persona {persona.name!r} needs an OpenAI or OpenAI-compatible LLM (the agent "
                               f"uses {provider!r}): set one on the persona.", details={"llm_provider": provider})
    return qa_llm_spec(provider=provider, model=model)


# --- suite runs ------------------------------------------------------------------------------------------------


@transaction.atomic
def suite_run_start(*, suite_id: int, target: str, client=None, trigger: str = "manual") -> SuiteRun:
    """A run of every scenario of the suite; the tasks are enqueued once this commits."""
    suite = Suite.objects.select_related("agent", "agent__current_version").filter(pk=suite_id).first()
    if suite is None:
        raise NotFound("No such suite.")
    scenarios = list(suite.scenarios.all())
    if not scenarios:
        raise ApplicationError("This suite has no scenarios yet: add one first.", details={"suite": "empty"})
    chosen = test_target(agent=suite.agent, target=target, client=client)
    run = SuiteRun.objects.create(suite=suite, target=target, version_number=chosen.version_number,
                                  config_fingerprint=chosen.fingerprint, trigger=trigger)
    ScenarioRun.objects.bulk_create([ScenarioRun(suite_run=run, scenario=scenario) for scenario in scenarios])
    ids = list(run.scenario_runs.values_list("pk", flat=True))
    schema = connection.schema_name
    transaction.on_commit(lambda: _enqueue_scenarios(ids, schema=schema))
    return run


def _enqueue_scenarios(ids: list[int], *, schema: str) -> None:
    from apps.quality.tasks import scenario_runs_later

    scenario_runs_later(scenario_run_ids=ids, schema=schema)


def scenario_run_execute(*, scenario_run_id: int, client=None) -> str:
    """Run one scenario (once: a second delivery of the task finds it taken) and settle its suite run."""
    now = timezone.now()
    claimed = ScenarioRun.objects.filter(
        Q(status=ScenarioRun.Status.PENDING) | Q(status=ScenarioRun.Status.RUNNING, started_at__lt=now - STALE_AFTER),
        pk=scenario_run_id).update(status=ScenarioRun.Status.RUNNING, started_at=now)
    if not claimed:
        return "taken"
    scenario_run = ScenarioRun.objects.select_related(
        "scenario", "scenario__persona", "suite_run", "suite_run__suite__agent",
        "suite_run__suite__agent__current_version").get(pk=scenario_run_id)
    scenario, suite_run = scenario_run.scenario, scenario_run.suite_run
    fields: dict = {}
    try:
        chosen = test_target(agent=suite_run.suite.agent, target=suite_run.target, client=client)
        if chosen.fingerprint != suite_run.config_fingerprint:
            raise ApplicationError("The agent changed after this run started: start the suite again.")
        persona_spec = _persona_spec(scenario.persona, chosen.runtime)
        llm = _agent_llm(chosen.runtime)
        conversation = asyncio.run(_converse(chosen.runtime, llm, scenario, persona_spec))
    except (ApplicationError, ProviderError) as error:
        fields = {"status": ScenarioRun.Status.ERROR, "failure": error.message}
    except Exception as error:  # noqa: BLE001 - a scenario that breaks is reported, the suite still settles
        logger.exception("scenario run %s failed", scenario_run_id)
        fields = {"status": ScenarioRun.Status.ERROR, "failure": f"the scenario could not run: {error}"}
    else:
        judged = Conversation(transcript=conversation.transcript, end_reason=conversation.end_reason,
                              transferred_to=conversation.transferred_to, variables=conversation.variables)
        results = judge_all(scenario.criteria, judged)
        failing = next((result for result in results if not result["passed"]), None)
        fields = {"transcript": conversation.transcript, "criteria_results": results,
                  "end_reason": conversation.end_reason,
                  "variables": json.loads(json.dumps(_extracted(conversation.variables), default=str))}
        if conversation.end_reason == ERROR:
            fields.update(status=ScenarioRun.Status.ERROR, failure=f"the agent failed: {conversation.error}")
        elif failing is not None:
            fields.update(status=ScenarioRun.Status.FAILED, failing_criterion=failing["criterion"],
                          failure=f"{describe(failing['criterion'])}: {failing['detail']}")
        else:
            fields.update(status=ScenarioRun.Status.PASSED)
    ScenarioRun.objects.filter(pk=scenario_run_id).update(finished_at=timezone.now(), **fields)
    suite_run_settle(suite_run_id=suite_run.pk)
    return fields["status"]


def _extracted(variables: dict) -> dict:
    """The variables the conversation extracted (the built-ins left out)."""
    from apps.voice.variables import PROTECTED

    return {key: value for key, value in variables.items() if key not in PROTECTED}


async def _converse(runtime, llm, scenario: Scenario, persona_spec):
    from apps.quality.conversation import persona_conversation, persona_prompt
    from apps.quality.llm import qa_chat
    from apps.voice.launch import voice_config

    async def persona_chat(messages: list[dict]) -> str:
        reply = await asyncio.to_thread(qa_chat, spec=persona_spec, messages=messages, json_answer=False,
                                        temperature=0.7, what="persona's model")
        return reply.text

    persona = scenario.persona
    return await persona_conversation(config=voice_config(runtime), llm=llm, persona_system=persona_prompt(persona),
                                      persona_chat=persona_chat, opening_line=persona.opening_line,
                                      max_turns=scenario.max_turns)


@transaction.atomic
def suite_run_settle(*, suite_run_id: int) -> SuiteRun:
    """Once every scenario has finished: the counts and the verdict (idempotent)."""
    run = SuiteRun.objects.select_for_update().get(pk=suite_run_id)
    statuses = list(run.scenario_runs.values_list("status", flat=True))
    if run.finished_at is not None or any(s in (ScenarioRun.Status.PENDING, ScenarioRun.Status.RUNNING)
                                          for s in statuses):
        return run
    run.passed = statuses.count(ScenarioRun.Status.PASSED)
    run.failed = statuses.count(ScenarioRun.Status.FAILED)
    run.errors = statuses.count(ScenarioRun.Status.ERROR)
    run.status = (SuiteRun.Status.ERROR if run.errors else SuiteRun.Status.FAILED if run.failed
                  else SuiteRun.Status.PASSED)
    run.finished_at = timezone.now()
    run.save(update_fields=["passed", "failed", "errors", "status", "finished_at"])
    return run


def suite_run_scheduled(*, suite_id: int, client=None) -> SuiteRun | None:
    """Beat: the suite against the published version (nothing when it has no scenarios or the
    agent no version; a run of this suite still going is not doubled)."""
    suite = Suite.objects.filter(pk=suite_id).first()
    if suite is None or not suite.scenarios.exists() or suite.agent.current_version_id is None:
        return None
    if suite.runs.filter(status=SuiteRun.Status.RUNNING, created_at__gte=timezone.now() - timedelta(hours=1)).exists():
        return None
    return suite_run_start(suite_id=suite.pk, target=SuiteRun.Target.PUBLISHED, client=client, trigger="schedule")


def suite_publish_check(*, agent) -> None:
    """ApplicationError unless every suite of the agent that has scenarios passed on this draft."""
    from apps.quality.suite_selectors import suite_run_latest

    suites = [suite for suite in Suite.objects.filter(agent=agent) if suite.scenarios.exists()]
    if not suites:
        raise ApplicationError("This agent requires a green test suite to publish, and it has no suite with "
                               "scenarios: add one under Quality → Test suites, or turn the requirement off.",
                               details={"suite": "none"})
    fingerprint = draft_fingerprint(agent=agent)
    for suite in suites:
        run = suite_run_latest(suite_id=suite.pk, target=SuiteRun.Target.DRAFT, fingerprint=fingerprint)
        if run is None:
            raise ApplicationError(f"Publishing requires a green test suite: run the suite {suite.name!r} on this "
                                   "draft first.", details={"suite": suite.name})
        if run.status == SuiteRun.Status.RUNNING:
            raise ApplicationError(f"The suite {suite.name!r} is still running on this draft: publish once it is "
                                   "green.", details={"suite": suite.name})
        if run.status != SuiteRun.Status.PASSED:
            raise ApplicationError(f"Publishing requires a green test suite: the suite {suite.name!r} "
                                   f"{run.get_status_display().lower()} on this draft ({run.passed} passed, "
                                   f"{run.failed} failed, {run.errors} could not run).",
                                   details={"suite": suite.name})


# --- call replays -------------------------------------------------------------------------------------------------


@transaction.atomic
def call_replay_request(*, call_id, target: str = SuiteRun.Target.DRAFT) -> CallReplay:
    """A replay of the call's caller turns against the agent's draft or published version
    (enqueued once this commits)."""
    from apps.calls.models import Call

    call = Call.objects.select_related("agent", "agent__current_version").filter(pk=call_id).first()
    if call is None:
        raise NotFound("No such call.")
    if call.agent is None:
        raise ApplicationError("This call has no agent to replay against.")
    if not call.turns.exclude(user_text="").exists():
        raise ApplicationError("The caller said nothing in this call: there is nothing to replay.")
    chosen = test_target(agent=call.agent, target=target)
    replay = CallReplay.objects.create(call=call, target=target, version_number=chosen.version_number)
    schema = connection.schema_name
    transaction.on_commit(lambda: _enqueue_replay(replay.pk, schema=schema))
    return replay


def _enqueue_replay(replay_id: int, *, schema: str) -> None:
    from apps.quality.tasks import call_replay_later

    call_replay_later(replay_id=replay_id, schema=schema)


def call_replay_execute(*, replay_id: int, client=None) -> str:
    now = timezone.now()
    claimed = CallReplay.objects.filter(
        Q(status=CallReplay.Status.PENDING) | Q(status=CallReplay.Status.RUNNING, started_at__lt=now - STALE_AFTER),
        pk=replay_id).update(status=CallReplay.Status.RUNNING, started_at=now)
    if not claimed:
        return "taken"
    replay = CallReplay.objects.select_related("call", "call__agent", "call__agent__current_version").get(pk=replay_id)
    call = replay.call
    turns = list(call.turns.order_by("index"))
    began = call.answered_at or (turns[0].started_at if turns and turns[0].started_at else None)
    caller_turns = [{"index": turn.index, "user_text": turn.user_text, "bot_text": turn.bot_text, "node": turn.node,
                     "at_secs": round((turn.started_at - began).total_seconds(), 2)
                     if began and turn.started_at else None}
                    for turn in turns if turn.user_text]
    opening = next((turn for turn in turns if not turn.user_text and turn.bot_text), None)
    try:
        chosen = test_target(agent=call.agent, target=replay.target, client=client)
        llm = _agent_llm(chosen.runtime)
        outcome = asyncio.run(_replay(chosen.runtime, llm, caller_turns))
    except (ApplicationError, ProviderError) as error:
        fields = {"status": CallReplay.Status.ERROR, "error": error.message}
    except Exception as error:  # noqa: BLE001
        logger.exception("call replay %s failed", replay_id)
        fields = {"status": CallReplay.Status.ERROR, "error": f"the replay could not run: {error}"}
    else:
        rows = outcome.turns
        if rows and opening is not None:
            rows[0].update(original_bot_text=opening.bot_text, original_node=opening.node)
            rows[0]["differs"] = " ".join(opening.bot_text.split()) != " ".join(rows[0]["replay_bot_text"].split())
        fields = {"status": CallReplay.Status.COMPLETED, "turns": rows, "end_reason": outcome.end_reason}
    CallReplay.objects.filter(pk=replay_id).update(finished_at=timezone.now(), **fields)
    return fields["status"]


async def _replay(runtime, llm, caller_turns):
    from apps.quality.conversation import replay_conversation
    from apps.voice.launch import voice_config

    return await replay_conversation(config=voice_config(runtime), llm=llm, caller_turns=caller_turns)


def suite_runs_requeue_stale(*, now=None, limit: int = 200) -> int:
    """The sweep (per client): scenario runs and replays still pending, or claimed by a worker that died,
    `STALE_AFTER` after they were asked for (the broker was down, or the worker was killed) are sent again.
    Safe beside running tasks: each claims its row once."""
    now = now or timezone.now()
    stale = Q(status="pending") | Q(status="running", started_at__lt=now - STALE_AFTER)
    schema = connection.schema_name
    scenario_ids = list(ScenarioRun.objects.filter(stale, suite_run__created_at__lt=now - STALE_AFTER)
                        .values_list("pk", flat=True)[:limit])
    if scenario_ids:
        _enqueue_scenarios(scenario_ids, schema=schema)
    replay_ids = list(CallReplay.objects.filter(stale, created_at__lt=now - STALE_AFTER)
                      .values_list("pk", flat=True)[:limit])
    for replay_id in replay_ids:
        _enqueue_replay(replay_id, schema=schema)
    return len(scenario_ids) + len(replay_ids)
