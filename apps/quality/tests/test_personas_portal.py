"""Test personas and suites in the portal (editor, run button, results page), "Re-run on draft"
on a call's page, and the /api/v1/quality endpoints; the scenarios run through the Celery
tasks (eager) against the OpenAI-compatible double."""
import html as htmllib
import json

from django_tenants.utils import tenant_context

from apps.agents.services import agent_draft_save
from apps.api.services import api_key_create
from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401
from apps.quality.models import CallReplay, Persona, Scenario, Suite, SuiteRun

from .conftest import make_ended_call
from .test_personas import FAILING_CRITERIA, GREETING, PASSING_CRITERIA, PROMPT, _draft_with_prompt, dental  # noqa: F401

HOST = {"HTTP_HOST": "acme.localhost"}


def page(client, url) -> str:
    response = client.get(url, **HOST)
    assert response.status_code == 200, response.status_code
    return htmllib.unescape(response.content.decode())


def test_an_admin_builds_a_suite_and_reads_the_results(client, tenant_a, llm_double, dental, acme_admin,  # noqa: F811
                                                       celery_eager, django_capture_on_commit_callbacks):
    agent, _ = dental
    client.force_login(acme_admin)
    response = client.post("/quality/personas/", {"name": "Dora", "goal": "Ask whether they take new patients.",
                                                  "mood": "calm", "llm_provider": "openai_compatible",
                                                  "llm_model": "persona-model"}, **HOST)
    assert response.status_code == 302
    response = client.post("/quality/suites/", {"agent": agent.pk, "name": "Nightly", "schedule_every_hours": "24"},
                           **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        suite = Suite.objects.get(name="Nightly")
        dora = Persona.objects.get(name="Dora")
        from django_celery_beat.models import PeriodicTask

        beat = PeriodicTask.objects.get(name=f"quality: test suite {suite.pk} [{tenant_a.schema_name}]")
        assert (beat.task, json.loads(beat.args), beat.interval.every, beat.interval.period) == (
            "quality.suite_scheduled", [suite.pk], 24, "hours")
    assert response["Location"] == f"/quality/suites/{suite.pk}/"

    # A bad criterion is shown under the form; nothing is saved.
    response = client.post(f"/quality/suites/{suite.pk}/", {"name": "Broken", "persona": dora.pk, "max_turns": 3,
                                                             "criteria": '[{"type": "max_turns"}]'}, **HOST)
    assert response.status_code == 200
    assert "a max_turns criterion needs `value` and nothing else" in htmllib.unescape(response.content.decode())
    with tenant_context(tenant_a):
        assert not Scenario.objects.filter(suite=suite).exists()
        ana, ben = Persona.objects.get(name="Ana"), Persona.objects.get(name="Ben")
    for name, persona, criteria, turns in (("Books a cleaning", ana, PASSING_CRITERIA, 10),
                                           ("Asks for a human", ben, FAILING_CRITERIA, 2)):
        response = client.post(f"/quality/suites/{suite.pk}/", {"name": name, "persona": persona.pk,
                                                                 "criteria": json.dumps(criteria), "max_turns": turns},
                               **HOST)
        assert response.status_code == 302

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/quality/suites/{suite.pk}/run/", {"target": "published"}, **HOST)
    with tenant_context(tenant_a):
        run = SuiteRun.objects.get(suite=suite)
    assert response["Location"] == f"/quality/runs/{run.pk}/"
    results = page(client, f"/quality/runs/{run.pk}/")
    assert 'Nightly: <span class="run-failed">Failed</span>' in results and "1 passed, 1 failed, 0 could not run." in results
    assert '<td class="scenario-passed">Passed</td>' in results and '<td class="scenario-failed">Failed</td>' in results
    assert ('<span class="failing-criterion">transferred: the call was not transferred (it ended: max_turns)</span>'
            in results)
    assert "I'm sorry, I can only book cleanings." in results and "You're booked for Tuesday at ten." in results
    assert "no finished run on the last published version yet" in results

    # A draft run is compared with that published run, scenario by scenario.
    with tenant_context(tenant_a):
        agent_draft_save(agent=agent, graph=_draft_with_prompt(agent, PROMPT + " Be brief."))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/quality/suites/{suite.pk}/run/", {"target": "draft"}, **HOST)
    with tenant_context(tenant_a):
        draft_run = SuiteRun.objects.get(suite=suite, target="draft")
    results = page(client, f"/quality/runs/{draft_run.pk}/")
    assert f'<a href="/quality/runs/{run.pk}/">the run on published v1</a> (failed)' in results

    # The publish gate, set from the suite page.
    response = client.post(f"/quality/agents/{agent.pk}/publish-gate/", {"require_green_suite": "on",
                                                                          "suite": suite.pk}, **HOST)
    assert response["Location"] == f"/quality/suites/{suite.pk}/"
    agent.refresh_from_db()
    assert agent.require_green_suite is True
    response = client.post(f"/agents/{agent.pk}/builder/publish/", data=json.dumps(agent.draft_graph),
                           content_type="application/json", **HOST)
    assert response.status_code == 400
    assert response.json()["error"] == ("Publishing requires a green test suite: the suite 'Nightly' failed on this "
                                        "draft (1 passed, 1 failed, 0 could not run).")


def test_a_viewer_reads_results_but_cannot_run(client, tenant_a, dental, acme_viewer):  # noqa: F811
    agent, suite = dental
    client.force_login(acme_viewer)
    assert "Smoke" in page(client, "/quality/suites/")
    assert "Smoke" in page(client, f"/quality/suites/?agent={agent.pk}")
    assert "Smoke" not in page(client, f"/quality/suites/?agent={agent.pk + 1000}")
    assert f'<a href="/quality/suites/?agent={agent.pk}">Test suites</a>' in page(client, f"/agents/{agent.pk}/")
    assert client.post(f"/quality/suites/{suite.pk}/run/", {"target": "published"}, **HOST).status_code == 403
    assert "Run on published" not in page(client, f"/quality/suites/{suite.pk}/")
    with tenant_context(tenant_a):
        assert not SuiteRun.objects.exists()


def test_rerun_on_draft_from_the_call_page(client, tenant_a, llm_double, dental, acme_admin,  # noqa: F811
                                           celery_eager, django_capture_on_commit_callbacks):
    agent, _ = dental
    with tenant_context(tenant_a):
        call = make_ended_call(agent=agent, turns=[
            {"index": 0, "user_text": "", "bot_text": GREETING},
            {"index": 1, "user_text": "What are your opening hours?", "bot_text": "We open at nine."},
        ])
        agent_draft_save(agent=agent, graph=_draft_with_prompt(agent, PROMPT + " We are now open from eight."))
    client.force_login(acme_admin)
    assert "Re-run on draft" in page(client, f"/calls/{call.pk}/")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/quality/calls/{call.pk}/replay/", {"target": "draft"}, **HOST)
    assert response["Location"] == f"/calls/{call.pk}/#replay"
    html = page(client, f"/calls/{call.pk}/")
    assert "Replay of the caller's 1 turn(s) against the draft (on v1)" in html and "Completed" in html
    assert ("<td>What are your opening hours?</td>\n      <td>We open at nine.</td>\n      "
            "<td>We open at eight now, Monday to Saturday. <span class=\"muted\">· start</span> "
            "<strong>(differs)</strong></td>") in html


def test_the_quality_api_runs_a_suite_and_replays_a_call(client, tenant_a, llm_double, dental,  # noqa: F811
                                                          celery_eager, django_capture_on_commit_callbacks):
    agent, suite = dental
    with tenant_context(tenant_a):
        token = api_key_create(name="CI")[1]
        call = make_ended_call(agent=agent, turns=[
            {"index": 0, "user_text": "What are your opening hours?", "bot_text": "We open at nine."}])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}", **HOST}
    listed = client.get("/api/v1/quality/suites", **auth).json()
    assert listed == [{"id": suite.pk, "agent_id": agent.pk, "name": "Smoke", "scenario_count": 2,
                       "schedule_every_hours": 0}]
    refused = client.post(f"/api/v1/quality/suites/{suite.pk}/runs?target=draft", **auth)
    assert refused.status_code == 400 and refused.json()["error"].startswith("This agent has no draft")
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/api/v1/quality/suites/{suite.pk}/runs?target=published", **auth)
    assert started.status_code == 201
    run = client.get(f"/api/v1/quality/runs/{started.json()['id']}", **auth).json()
    assert (run["status"], run["passed"], run["failed"], run["trigger"]) == ("failed", 1, 1, "api")
    assert {item["scenario"]: (item["status"], item["failing_criterion"]) for item in run["scenarios"]} == {
        "Books a cleaning": ("passed", None), "Asks for a human": ("failed", {"type": "transferred"})}

    with django_capture_on_commit_callbacks(execute=True):
        replay = client.post(f"/api/v1/quality/calls/{call.pk}/replays?target=published", **auth)
    assert replay.status_code == 201
    body = client.get(f"/api/v1/quality/replays/{replay.json()['id']}", **auth).json()
    assert body["status"] == CallReplay.Status.COMPLETED
    assert [(row["user_text"], row["original_bot_text"], row["replay_bot_text"], row["differs"])
            for row in body["turns"]] == [("", "", GREETING, False),
                                          ("What are your opening hours?", "We open at nine.", "We open at nine.",
                                           False)]
