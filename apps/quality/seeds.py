"""Demo data for `manage.py seed_demo`: test personas and a suite for the demo agent, with
one scenario that fails on purpose (the demo agent cannot book), so "Run on published"
shows both verdicts. `make run`'s double plays the personas (scripts/run.py DEMO_RULES).
Idempotent."""
from __future__ import annotations

PERSONAS = (
    {"name": "Hours asker", "goal": "Find out when the practice is open.", "mood": "relaxed",
     "opening_line": "What are your opening hours?"},
    {"name": "Wants a person", "goal": "Speak to a human about a bill.", "mood": "impatient",
     "opening_line": "Can I speak to a person please?"},
    {"name": "Appointment booker", "goal": "Book a check-up for a weekday morning.", "mood": "friendly",
     "facts": "Name: Sam Rivera\nMornings only", "opening_line": "Hi, I'd like an appointment."},
)
SCENARIOS = (
    ("Answers opening hours", "Hours asker", 3,
     [{"type": "agent_said", "text": "Monday to Friday"}, {"type": "ended_politely"}, {"type": "max_turns", "value": 3}]),
    ("Transfers to a person", "Wants a person", 3, [{"type": "transferred", "to": "+15550100999"}]),
    ("Books an appointment", "Appointment booker", 4,
     [{"type": "tool_called", "name": "book_appointment"}, {"type": "ended_politely"}]),
)


def seed_demo_data(*, client) -> None:
    from apps.agents.models import Agent
    from apps.quality.models import Persona, Scenario, Suite
    from apps.quality.suite_services import persona_save, scenario_save, suite_save

    agent = Agent.objects.filter(name="Demo receptionist").first()
    if agent is None:
        return
    personas = {}
    for fields in PERSONAS:
        personas[fields["name"]] = Persona.objects.filter(name=fields["name"]).first() or persona_save(**fields)
    suite = Suite.objects.filter(agent=agent, name="Demo smoke test").first() or suite_save(
        agent_id=agent.pk, name="Demo smoke test")
    for name, persona, max_turns, criteria in SCENARIOS:
        if not Scenario.objects.filter(suite=suite, name=name).exists():
            scenario_save(suite_id=suite.pk, name=name, persona_id=personas[persona].pk, criteria=criteria,
                          max_turns=max_turns)
