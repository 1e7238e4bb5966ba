"""AI test personas and regression suites, the publish gate, and re-running a call on a draft.

The agent and the personas are both LLMs on the OpenAI-compatible double (a real HTTP server
streaming SSE), told apart by their system prompts (`Rule.system`); the agent runs in
apps.voice.text_session on the provider registry's LLM service, the personas through the
registry's key (apps.quality.llm)."""
import copy

import pytest
from django_tenants.utils import tenant_context

from apps.agents.services import agent_draft_save, agent_publish, agent_publish_gate_set, agent_save
from apps.core.errors import ApplicationError
from apps.providers.models import ProviderAccount
from apps.quality.models import CallReplay, Scenario, ScenarioRun, SuiteRun
from apps.quality.suite_services import (
    call_replay_request,
    persona_save,
    scenario_save,
    suite_run_start,
    suite_save,
)
from devtools.doubles.openai_server import Rule

from .conftest import make_ended_call

PROMPT = "You are the front desk of Bright Smile Dental. Book cleanings."
GREETING = "Hello, Bright Smile Dental, how can I help?"

RULES = [
    # Ana, who wants a cleaning: asks, then thanks and hangs up.
    Rule(system="Persona: Ana", when="how can I help", reply="I'd like to book a cleaning on Tuesday."),
    Rule(system="Persona: Ana", when="booked", reply="Great, thanks. Bye! [hang up]"),
    # Ben, who only wants a person.
    Rule(system="Persona: Ben", when="", reply="Can I talk to a real person please?"),
    # The agent (the published prompt, and an edited draft that opens earlier).
    Rule(system="open from eight", when="opening hours", reply="We open at eight now, Monday to Saturday."),
    Rule(system="Bright Smile Dental", when="book a cleaning", reply="You're booked for Tuesday at ten."),
    Rule(system="Bright Smile Dental", when="opening hours", reply="We open at nine."),
    Rule(system="Bright Smile Dental", when="bye", tool="end_call"),
    Rule(system="Bright Smile Dental", when="real person", reply="I'm sorry, I can only book cleanings."),
]

PASSING_CRITERIA = [
    {"type": "agent_said", "text": "booked for Tuesday"},
    {"type": "tool_called", "name": "end_call"},
    {"type": "ended_politely"},
    {"type": "max_turns", "value": 3},
]
FAILING_CRITERIA = [{"type": "max_turns", "value": 5}, {"type": "transferred"}]


@pytest.fixture
def dental(tenant_a, llm_double):
    """The agent on the double; a suite with Ana's scenario (passes) and Ben's (fails)."""
    llm_double.rules = list(RULES)
    with tenant_context(tenant_a):
        ProviderAccount.objects.get_or_create(provider="deepgram", defaults={"api_key": "dg-key"})
        ProviderAccount.objects.create(provider="openai_compatible", api_key="double-key",
                                       base_url=llm_double.base_url)
        agent = agent_save(name="Front desk", greeting=GREETING, system_prompt=PROMPT, tools=["end_call"],
                           stt_provider="deepgram", stt_settings={"model": "nova-2"},
                           llm_provider="openai_compatible", llm_settings={"model": "double-model"},
                           tts_provider="piper", tts_settings={})
        ana = persona_save(name="Ana", goal="Book a teeth cleaning for next Tuesday.", mood="cheerful",
                           facts="Name: Ana Lopez\nTuesdays are best", speaking_style="short sentences")
        ben = persona_save(name="Ben", goal="Talk to a human about a bill.", mood="annoyed")
        suite = suite_save(agent_id=agent.pk, name="Smoke")
        scenario_save(suite_id=suite.pk, name="Books a cleaning", persona_id=ana.pk, criteria=PASSING_CRITERIA)
        scenario_save(suite_id=suite.pk, name="Asks for a human", persona_id=ben.pk, criteria=FAILING_CRITERIA,
                      max_turns=2)
    return agent, suite


def run_suite(suite, target, client, capture):
    with capture(execute=True):
        run = suite_run_start(suite_id=suite.pk, target=target, client=client)
    run.refresh_from_db()
    return run


def test_a_suite_with_one_passing_and_one_failing_scenario(tenant_a, dental, llm_double, celery_eager,
                                                          django_capture_on_commit_callbacks):
    agent, suite = dental
    with tenant_context(tenant_a):
        run = run_suite(suite, SuiteRun.Target.PUBLISHED, tenant_a, django_capture_on_commit_callbacks)
        assert (run.status, run.passed, run.failed, run.errors, run.version_number) == ("failed", 1, 1, 0, 1)
        assert run.finished_at is not None
        runs = {item.scenario.name: item for item in run.scenario_runs.select_related("scenario")}

    good = runs["Books a cleaning"]
    assert good.status == ScenarioRun.Status.PASSED and good.failing_criterion is None and good.failure == ""
    assert [(line["speaker"], line["text"]) for line in good.transcript] == [
        ("agent", GREETING),
        ("caller", "I'd like to book a cleaning on Tuesday."),
        ("agent", "You're booked for Tuesday at ten."),
        ("caller", "Great, thanks. Bye!"),
        ("agent", "Goodbye!"),
    ]
    assert good.transcript[4]["tool_calls"] == [
        {"name": "end_call", "arguments": {}, "result": {"status": "ending"}, "duration_ms": 0, "error": ""}]
    assert good.end_reason == "agent_ended"
    assert [(result["type"], result["passed"]) for result in good.criteria_results] == [
        ("agent_said", True), ("tool_called", True), ("ended_politely", True), ("max_turns", True)]
    assert good.criteria_results[3]["detail"] == "the caller needed 2 line(s) (at most 3)"

    bad = runs["Asks for a human"]
    assert bad.status == ScenarioRun.Status.FAILED
    assert bad.failing_criterion == {"type": "transferred"}
    assert bad.failure == "transferred: the call was not transferred (it ended: max_turns)"
    assert bad.end_reason == "max_turns"
    assert [(line["speaker"], line["text"]) for line in bad.transcript] == [
        ("agent", GREETING),
        ("caller", "Can I talk to a real person please?"),
        ("agent", "I'm sorry, I can only book cleanings."),
        ("caller", "Can I talk to a real person please?"),
        ("agent", "I'm sorry, I can only book cleanings."),
    ]
    assert [(result["type"], result["passed"]) for result in bad.criteria_results] == [
        ("max_turns", True), ("transferred", False)]

    # The persona was played with its own prompt; the agent with the agent's.
    persona_requests = [r for r in llm_double.requests_of("chat") if "Persona: Ana" in r["system"]]
    assert len(persona_requests) == 2 and "Book a teeth cleaning for next Tuesday." in persona_requests[0]["system"]
    assert persona_requests[0]["messages"][1:] == [{"role": "user", "content": GREETING}]
    agent_requests = [r for r in llm_double.requests_of("chat") if r["system"].startswith(PROMPT)]
    assert {r["model"] for r in agent_requests} == {"double-model"}
    assert all("Persona:" not in r["system"] for r in agent_requests)


def test_bad_criteria_are_refused_naming_the_problem(tenant_a, dental):
    agent, suite = dental
    with tenant_context(tenant_a):
        persona = persona_save(name="Cleo", goal="Cancel an appointment.")
        with pytest.raises(ApplicationError) as error:
            scenario_save(suite_id=suite.pk, name="Cancels", persona_id=persona.pk,
                          criteria=[{"type": "tool_called", "nam": "cancel"}])
        assert error.value.message == ("Criterion 0: a tool_called criterion needs `name` (optionally `arguments`) "
                                       "and nothing else.")
        with pytest.raises(ApplicationError) as error:
            scenario_save(suite_id=suite.pk, name="Cancels", persona_id=persona.pk,
                          criteria=[{"type": "sings"}])
        assert error.value.message.startswith("Criterion 0: unknown criterion type 'sings': one of tool_called, ")
        with pytest.raises(ApplicationError) as error:
            scenario_save(suite_id=suite.pk, name="Cancels", persona_id=persona.pk, criteria="[{")
        assert error.value.message.startswith("The criteria are not valid JSON")
        assert not Scenario.objects.filter(name="Cancels").exists()


def _draft_with_prompt(agent, prompt):
    graph = copy.deepcopy(agent.graph)
    for node in graph["nodes"]:
        if node["type"] == "global":
            node["prompt"] = prompt
    return graph


def test_publishing_requires_a_green_suite_on_that_draft(tenant_a, dental, llm_double, celery_eager,
                                                         django_capture_on_commit_callbacks):
    agent, suite = dental
    with tenant_context(tenant_a):
        agent_publish_gate_set(agent=agent, require_green_suite=True)
        agent_draft_save(agent=agent, graph=_draft_with_prompt(agent, PROMPT + " Be brief."))

        with pytest.raises(ApplicationError) as error:
            agent_publish(agent=agent)
        assert error.value.message == ("Publishing requires a green test suite: run the suite 'Smoke' on this "
                                       "draft first.")

        run = run_suite(suite, SuiteRun.Target.DRAFT, tenant_a, django_capture_on_commit_callbacks)
        assert (run.status, run.target, run.version_number) == ("failed", "draft", 1)
        with pytest.raises(ApplicationError) as error:
            agent_publish(agent=agent)
        assert error.value.message == ("Publishing requires a green test suite: the suite 'Smoke' failed on this "
                                       "draft (1 passed, 1 failed, 0 could not run).")
        agent.refresh_from_db()
        assert agent.current_version.number == 1 and agent.draft_graph is not None  # nothing changed

        # Ben's scenario now expects what the agent does; green on the draft, publishing goes through.
        ben = Scenario.objects.get(name="Asks for a human")
        scenario_save(scenario=ben, suite_id=suite.pk, name=ben.name, persona_id=ben.persona_id,
                      criteria=[{"type": "agent_said", "text": "only book cleanings"}], max_turns=2)
        run = run_suite(suite, SuiteRun.Target.DRAFT, tenant_a, django_capture_on_commit_callbacks)
        assert (run.status, run.passed, run.failed) == ("passed", 2, 0)

        # A draft edited after the green run is another draft: refused again.
        agent_draft_save(agent=agent, graph=_draft_with_prompt(agent, PROMPT + " Be very brief."))
        with pytest.raises(ApplicationError, match="run the suite 'Smoke' on this draft first"):
            agent_publish(agent=agent)
        agent_draft_save(agent=agent, graph=_draft_with_prompt(agent, PROMPT + " Be brief."))
        published = agent_publish(agent=agent)
        assert published.current_version.number == 2
        assert published.current_version.system_prompt == PROMPT + " Be brief."


def test_rerun_a_recorded_call_on_a_draft_with_a_changed_prompt(tenant_a, dental, llm_double, celery_eager,
                                                                django_capture_on_commit_callbacks):
    agent, _ = dental
    turns = [
        {"index": 0, "user_text": "", "bot_text": GREETING, "node": "start"},
        {"index": 1, "user_text": "What are your opening hours?", "bot_text": "We open at nine.", "node": "start",
         "voice_to_voice_ms": 900},
        {"index": 2, "user_text": "Okay, bye", "bot_text": "Goodbye!", "node": "start"},
    ]
    with tenant_context(tenant_a):
        call = make_ended_call(agent=agent, turns=turns)
        agent_draft_save(agent=agent, graph=_draft_with_prompt(agent, PROMPT + " We are now open from eight."))
        with django_capture_on_commit_callbacks(execute=True):
            replay = call_replay_request(call_id=call.pk, target="draft")
        replay.refresh_from_db()

    assert replay.status == CallReplay.Status.COMPLETED and replay.error == ""
    assert replay.end_reason == "agent_ended"
    assert [(row["index"], row["user_text"], row["original_bot_text"], row["replay_bot_text"], row["differs"])
            for row in replay.turns] == [
        (-1, "", GREETING, GREETING, False),
        (1, "What are your opening hours?", "We open at nine.", "We open at eight now, Monday to Saturday.", True),
        (2, "Okay, bye", "Goodbye!", "Goodbye!", False),
    ]
    assert replay.turns[2]["replay_tool_calls"][0]["name"] == "end_call"
    # The draft's prompt was the one asked.
    asked = [r for r in llm_double.requests_of("chat") if r["user_text"] == "What are your opening hours?"]
    assert len(asked) == 1 and asked[0]["system"].endswith("We are now open from eight.")


def booking_graph() -> dict:
    return {
        "version": 1,
        "nodes": [
            {"id": "global", "type": "global", "prompt": PROMPT},
            {"id": "start", "type": "start", "greeting": GREETING, "prompt": "Find out what they want.",
             "extract": [{"name": "day", "description": "The day the caller wants"}]},
            {"id": "booking", "type": "conversation", "prompt": "Offer a slot on {{day}}."},
            {"id": "bye", "type": "end", "line": "See you on {{day}}, goodbye."},
        ],
        "edges": [
            {"id": "e1", "from": "start", "to": "booking", "condition": "The caller wants a cleaning"},
            {"id": "e2", "from": "booking", "to": "bye", "condition": "The caller accepted a slot", "name": "done"},
        ],
    }


def test_a_draft_workflow_graph_is_tested_node_by_node(tenant_a, dental, llm_double, celery_eager,
                                                       django_capture_on_commit_callbacks):
    """The draft's graph runs on Pipecat Flows as in a call: the edge's function extracts `day`,
    the booking node answers, the end node says its line and hangs up."""
    agent, suite = dental
    llm_double.rules = [
        Rule(system="Bright Smile Dental", when="book a cleaning", tool="go_to_booking",
             arguments={"day": "tuesday"}, offered_only=True),
        Rule(system="Bright Smile Dental", when="book a cleaning", reply="Tuesday at ten is free. Shall I book it?"),
        Rule(system="Persona: Ana", when="shall I book", reply="Yes please."),
        Rule(system="Bright Smile Dental", when="yes please", tool="done", offered_only=True),
    ] + list(RULES)
    with tenant_context(tenant_a):
        Scenario.objects.filter(name="Asks for a human").delete()
        ana = Scenario.objects.get(name="Books a cleaning")
        scenario_save(scenario=ana, suite_id=suite.pk, name=ana.name, persona_id=ana.persona_id, max_turns=4,
                      criteria=[{"type": "tool_called", "name": "go_to_booking", "arguments": {"day": "Tuesday"}},
                                {"type": "variable_extracted", "name": "day", "equals": "tuesday"},
                                {"type": "reached_node", "node": "booking"},
                                {"type": "ended_politely"},
                                {"type": "latency", "max_ms": 20000}])
        agent_draft_save(agent=agent, graph=booking_graph())
        run = run_suite(suite, SuiteRun.Target.DRAFT, tenant_a, django_capture_on_commit_callbacks)
        item = run.scenario_runs.get()

    assert (run.status, item.status, item.failure) == ("passed", "passed", "")
    assert [(line["speaker"], line["text"], line.get("node")) for line in item.transcript] == [
        ("agent", GREETING, "start"),
        ("caller", "I'd like to book a cleaning on Tuesday.", None),
        ("agent", "Tuesday at ten is free. Shall I book it?", "booking"),
        ("caller", "Yes please.", None),
        ("agent", "See you on tuesday, goodbye.", "bye"),
    ]
    assert [call["name"] for call in item.transcript[2]["tool_calls"]] == ["go_to_booking"]
    assert item.transcript[2]["tool_calls"][0]["arguments"] == {"day": "tuesday"}
    assert item.variables == {"day": "tuesday"} and item.end_reason == "agent_ended"


def test_a_scheduled_suite_runs_on_the_published_version(tenant_a, dental, llm_double, celery_eager,
                                                         django_capture_on_commit_callbacks):
    from django_celery_beat.models import PeriodicTask

    from apps.quality.tasks import suite_scheduled

    agent, suite = dental
    with tenant_context(tenant_a):
        suite_save(suite=suite, agent_id=agent.pk, name="Smoke", schedule_every_hours=6)
        name = f"quality: test suite {suite.pk} [{tenant_a.schema_name}]"
        assert PeriodicTask.objects.get(name=name).interval.every == 6
        with django_capture_on_commit_callbacks(execute=True):
            assert suite_scheduled.apply(args=[suite.pk]).get().startswith("run ")
        run = SuiteRun.objects.get(suite=suite)
        assert (run.trigger, run.target, run.version_number, run.status) == ("schedule", "published", 1, "failed")
        suite_save(suite=suite, agent_id=agent.pk, name="Smoke", schedule_every_hours=0)
        assert not PeriodicTask.objects.filter(name=name).exists()


def test_the_sweep_sends_scenario_runs_a_dead_broker_or_worker_left_behind(tenant_a, dental, llm_double, celery_eager):
    from datetime import timedelta

    from django.utils import timezone

    from apps.quality.suite_services import suite_runs_requeue_stale

    _, suite = dental
    with tenant_context(tenant_a):
        run = suite_run_start(suite_id=suite.pk, target="published", client=tenant_a)  # on_commit never ran
        good, bad = (run.scenario_runs.get(scenario__name=name) for name in ("Books a cleaning", "Asks for a human"))
        assert suite_runs_requeue_stale() == 0  # nothing is stale yet
        # Asked for 20 minutes ago; one scenario was claimed then by a worker that died.
        long_ago = timezone.now() - timedelta(minutes=20)
        SuiteRun.objects.filter(pk=run.pk).update(created_at=long_ago)
        ScenarioRun.objects.filter(pk=bad.pk).update(status="running", started_at=long_ago)
        assert suite_runs_requeue_stale() == 2
        run.refresh_from_db()
        assert (run.status, run.passed, run.failed) == ("failed", 1, 1)
        assert {item.pk: item.status for item in run.scenario_runs.all()} == {good.pk: "passed", bad.pk: "failed"}
        assert suite_runs_requeue_stale() == 0


def test_a_draft_with_problems_is_refused_before_anything_runs(tenant_a, dental):
    agent, suite = dental
    graph = booking_graph()
    graph["edges"] = graph["edges"][:1]  # the booking node is now a dead end
    with tenant_context(tenant_a):
        agent_draft_save(agent=agent, graph=graph)
        with pytest.raises(ApplicationError) as error:
            suite_run_start(suite_id=suite.pk, target="draft", client=tenant_a)
        assert error.value.message.startswith("The draft cannot run until its problems are fixed in the builder: ")
        assert "booking" in error.value.message
        assert not SuiteRun.objects.exists()
