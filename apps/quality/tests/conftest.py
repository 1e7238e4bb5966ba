"""An ended call with turns (tenant acme), its agent's QA settings, and the
OpenAI-compatible double the reviewer talks to over HTTP."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.calls.models import Call
from apps.calls.services import call_turn_record
from apps.providers.models import ProviderAccount
from apps.telephony.tests.conftest import make_agent
from devtools.doubles.openai_server import OpenAIDouble

TURNS = [
    {"index": 0, "user_text": "Hi, I'd like to book a cleaning", "bot_text": "Sure, what day suits you?",
     "voice_to_voice_ms": 850, "llm_ttft_ms": 310},
    {"index": 1, "user_text": "Tuesday at ten, my name is Ana Lopez", "bot_text": "Booked: Tuesday at ten.",
     "voice_to_voice_ms": 4200, "llm_ttft_ms": 3600,
     "tool_calls": [{"name": "book_slot", "arguments": {"day": "tuesday"}, "result": "ok", "duration_ms": 120}]},
    {"index": 2, "user_text": "Thanks, bye", "bot_text": "Goodbye!", "voice_to_voice_ms": 700},
]


@pytest.fixture
def llm_double():
    double = OpenAIDouble(default_reply="no rule matched").start()
    yield double
    double.stop()


def make_ended_call(*, agent, duration="42", turns=TURNS, number="+15550009999") -> Call:
    now = timezone.now()
    call = Call.objects.create(
        direction=Call.Direction.INBOUND, from_number=number, to_number="+15550001000", carrier="twilio",
        agent=agent, agent_version=agent.current_version, status=Call.Status.COMPLETED,
        answered_at=now - timedelta(seconds=float(duration)), ended_at=now, duration_secs=Decimal(duration),
        end_reason=Call.EndReason.CALLER_HUNG_UP, usage_reported_at=now,
    )
    for turn in turns:
        call_turn_record(call_id=call.pk, turn=turn)
    return call


@pytest.fixture
def qa_agent(tenant_a, llm_double):
    with tenant_context(tenant_a):
        agent = make_agent()
        ProviderAccount.objects.create(provider="openai_compatible", api_key="qa-key", base_url=llm_double.base_url)
        return agent
