"""The demo's test suite (apps/quality/seeds.py) against `make run`'s double with its demo rules:
two scenarios pass, the one the demo agent cannot do fails with its criterion."""
import importlib.util
import json

from django_tenants.utils import tenant_context

from apps.agents.models import Agent
from apps.agents.seeds import seed_demo_data as seed_agents
from apps.providers.models import ProviderAccount
from apps.quality.models import Persona, Scenario, Suite
from apps.quality.seeds import seed_demo_data
from apps.quality.suite_services import suite_run_start
from conftest import BASE_DIR
from devtools.doubles.openai_server import Rule

spec = importlib.util.spec_from_file_location("make_run", BASE_DIR / "scripts" / "run.py")
make_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_run)


def test_the_demo_suite_runs_on_the_demo_double(tenant_a, llm_double, celery_eager, monkeypatch,
                                                django_capture_on_commit_callbacks):
    llm_double.rules = [Rule(**rule) for rule in json.loads(make_run.DEMO_RULES)]
    monkeypatch.setenv("DEMO_OPENAI_BASE_URL", llm_double.base_url)
    with tenant_context(tenant_a):
        seed_agents(client=tenant_a)
        seed_demo_data(client=tenant_a)
        seed_demo_data(client=tenant_a)  # idempotent
        assert (Persona.objects.count(), Suite.objects.count(), Scenario.objects.count()) == (3, 1, 3)
        ProviderAccount.objects.filter(provider="openai_compatible").update(base_url=llm_double.base_url)
        suite = Suite.objects.get(agent=Agent.objects.get(name="Demo receptionist"))
        with django_capture_on_commit_callbacks(execute=True):
            run = suite_run_start(suite_id=suite.pk, target="published", client=tenant_a)
        run.refresh_from_db()
        verdicts = {item.scenario.name: (item.status, item.failure) for item in run.scenario_runs.all()}
    assert (run.status, run.passed, run.failed, run.errors) == ("failed", 2, 1, 0)
    assert verdicts == {
        "Answers opening hours": ("passed", ""),
        "Transfers to a person": ("passed", ""),
        "Books an appointment": ("failed", 'tool_called {"name": "book_appointment"}: book_appointment was never '
                                           "called (called: no tool)"),
    }
