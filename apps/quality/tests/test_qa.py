"""Post-call QA and extraction against the OpenAI-compatible double (real HTTP)."""
import json
import uuid
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.billing.models import UsageEvent
from apps.core.errors import ApplicationError, ProviderError
from apps.quality.models import QAConfig, QAResult
from apps.quality.services import qa_config_save, qa_run, qa_sampled
from apps.webhooks.models import WebhookEvent
from devtools.doubles.openai_server import Rule

from .conftest import make_ended_call

REVIEW = {
    "score": 8, "score_reasons": ["booked on the first try", "one slow answer"], "sentiment": "positive",
    "summary": "The caller booked a cleaning for Tuesday at ten.", "tags": ["caller asked for a human"],
    "confusion_moments": [{"turn": 1, "note": "waited for the booking"}],
    "instruction_adherence": {"score": 9, "notes": "followed the booking script"}, "disposition": "booked",
}
SCHEMA = {"type": "object", "required": ["name", "day"], "additionalProperties": False,
          "properties": {"name": {"type": "string"}, "day": {"enum": ["monday", "tuesday"]}, "time": {"type": "string"}}}
EXTRACTED = {"name": "Ana Lopez", "day": "tuesday", "time": "10:00"}


def words(value) -> int:
    return len(json.dumps(value).split()) if not isinstance(value, str) else len(value.split())


def configure(agent, **overrides):
    values = dict(agent_id=agent.pk, sample_rate_percent=100, min_duration_secs=10, extraction_schema=SCHEMA,
                  llm_provider="openai_compatible", llm_model="qa-model")
    values.update(overrides)
    return qa_config_save(**values)


def ledger(call):
    return {event.idempotency_key: (event.metric, event.quantity, event.dimension)
            for event in UsageEvent.objects.filter(call_id=str(call.pk)).order_by("idempotency_key")}


def test_valid_review_and_extraction_are_stored_metered_and_announced(tenant_a, qa_agent, llm_double):
    llm_double.rules = [Rule(when="TASK: call-review", reply=json.dumps(REVIEW)),
                        Rule(when="TASK: data-extraction", reply=json.dumps(EXTRACTED))]
    with tenant_context(tenant_a):
        configure(qa_agent)
        call = make_ended_call(agent=qa_agent)
        outcome = qa_run(client=tenant_a, call_id=call.pk)
        result = QAResult.objects.get(call=call)
        assert outcome.ran and outcome.result.pk == result.pk
        assert (result.status, result.score, result.sentiment, result.disposition) == ("completed", 8, "positive", "booked")
        assert result.score_reasons == REVIEW["score_reasons"] and result.tags == ["caller asked for a human"]
        assert result.confusion_moments == [{"turn": 1, "note": "waited for the booking"}]
        assert result.instruction_adherence == {"score": 9, "notes": "followed the booking script"}
        assert (result.extraction, result.extraction_valid, result.flag_reason) == (EXTRACTED, True, "")
        # Dead air and tools are facts from the trace, not the model's word.
        assert result.dead_air == [{"turn": 1, "ms": 4200}]
        assert result.tools == [{"turn": 1, "name": "book_slot", "succeeded": True, "error": None}]
        assert (result.provider, result.model, result.run_number) == ("openai_compatible", "qa-model", 1)
        chats = llm_double.requests_of("chat")
        assert [chat["model"] for chat in chats] == ["qa-model", "qa-model"]
        assert {chat["api_key"] for chat in chats} == {"qa-key"}
        prompt = chats[0]["user_text"]
        assert "TASK: call-review" in prompt and "voice-to-voice 4200 ms" in prompt and "LLM first token 3600 ms" in prompt
        assert "tool book_slot" in prompt and "You are a helpful phone agent." in prompt
        assert result.output_tokens == words(REVIEW) + words(EXTRACTED)
        assert result.input_tokens > 0
        event = WebhookEvent.objects.get(dedupe_key=f"qa.completed:{call.pk}:1")
        assert (event.type, event.data["score"], event.data["extraction"]) == ("qa.completed", 8, EXTRACTED)
    key = f"qa:{call.pk}:run-1"
    assert ledger(call) == {
        f"{key}:llm_input_tokens": ("llm_input_tokens", result.input_tokens, "qa-model"),
        f"{key}:llm_output_tokens": ("llm_output_tokens", result.output_tokens, "qa-model"),
        f"{key}:qa_runs": ("qa_runs", 1, ""),
    }


def test_invalid_then_valid_answer_is_asked_again_with_the_errors(tenant_a, qa_agent, llm_double):
    llm_double.rules = [Rule(when="TASK: call-review-retry", reply=json.dumps(REVIEW)),
                        Rule(when="TASK: call-review", reply=json.dumps({**REVIEW, "score": 11})),
                        Rule(when="TASK: data-extraction-retry", reply=json.dumps(EXTRACTED)),
                        Rule(when="TASK: data-extraction", reply="Sure! Here it is: name Ana")]
    with tenant_context(tenant_a):
        configure(qa_agent)
        call = make_ended_call(agent=qa_agent)
        qa_run(client=tenant_a, call_id=call.pk)
        result = QAResult.objects.get(call=call)
    assert (result.status, result.score, result.extraction, result.extraction_valid) == ("completed", 8, EXTRACTED, True)
    chats = llm_double.requests_of("chat")
    assert len(chats) == 4
    assert chats[1]["user_text"].startswith("TASK: call-review-retry")
    assert "score: 11 is greater than the maximum of 10" in chats[1]["user_text"]
    assert chats[1]["messages"][-2] == {"role": "assistant", "content": json.dumps({**REVIEW, "score": 11})}
    assert "not JSON" in chats[3]["user_text"]


def test_invalid_twice_is_flagged_and_still_metered(tenant_a, qa_agent, llm_double):
    llm_double.rules = [Rule(when="TASK: call-review", reply=json.dumps(REVIEW)),
                        Rule(when="TASK: data-extraction", reply=json.dumps({"name": "Ana", "day": "friday"}))]
    with tenant_context(tenant_a):
        configure(qa_agent)
        call = make_ended_call(agent=qa_agent)
        qa_run(client=tenant_a, call_id=call.pk)
        result = QAResult.objects.get(call=call)
    assert (result.status, result.score, result.extraction, result.extraction_valid) == ("flagged", 8, None, False)
    assert result.extraction_errors == "day: 'friday' is not one of ['monday', 'tuesday']"
    assert result.flag_reason == ("the extraction did not match the agent's schema twice: "
                                  "day: 'friday' is not one of ['monday', 'tuesday']")
    assert len(llm_double.requests_of("chat")) == 3
    assert ledger(call)[f"qa:{call.pk}:run-1:qa_runs"] == ("qa_runs", 1, "")


def test_a_rerun_replaces_the_result_and_each_run_is_billed_once(tenant_a, qa_agent, llm_double):
    llm_double.rules = [Rule(when="TASK: call-review", reply=json.dumps(REVIEW)),
                        Rule(when="TASK: data-extraction", reply=json.dumps(EXTRACTED))]
    with tenant_context(tenant_a):
        configure(qa_agent)
        call = make_ended_call(agent=qa_agent)
        qa_run(client=tenant_a, call_id=call.pk)
        # The task redelivered: nothing is asked or billed again.
        assert qa_run(client=tenant_a, call_id=call.pk).reason == "run 1 is done"
        assert len(llm_double.requests_of("chat")) == 2
        llm_double.rules[0] = Rule(when="TASK: call-review", reply=json.dumps({**REVIEW, "score": 3, "tags": []}))
        qa_run(client=tenant_a, call_id=call.pk, run_number=2, manual=True)
        qa_run(client=tenant_a, call_id=call.pk, run_number=2, manual=True)
        assert QAResult.objects.filter(call=call).count() == 1
        result = QAResult.objects.get(call=call)
        assert (result.run_number, result.score, result.tags) == (2, 3, [])
        assert WebhookEvent.objects.filter(type="qa.completed", dedupe_key__startswith=f"qa.completed:{call.pk}:").count() == 2
    assert len(llm_double.requests_of("chat")) == 4
    runs = sorted(key for key, (metric, _, _) in ledger(call).items() if metric == "qa_runs")
    assert runs == [f"qa:{call.pk}:run-1:qa_runs", f"qa:{call.pk}:run-2:qa_runs"]


def test_sampling_is_stable_per_call_and_close_to_the_rate():
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"call-{n}") for n in range(2000)]
    picked = [call_id for call_id in ids if qa_sampled(call_id=call_id, percent=25)]
    assert 400 <= len(picked) <= 600
    assert picked == [call_id for call_id in ids if qa_sampled(call_id=call_id, percent=25)]
    assert all(qa_sampled(call_id=call_id, percent=100) for call_id in ids)
    assert not any(qa_sampled(call_id=call_id, percent=0) for call_id in ids)
    # A larger rate keeps every call a smaller one picked.
    assert set(picked) <= {call_id for call_id in ids if qa_sampled(call_id=call_id, percent=60)}


@pytest.mark.parametrize("settings_override, turns_override, duration, reason", [
    ({"sample_rate_percent": 0}, None, "42", "not sampled (0%)"),
    ({"enabled": False}, None, "42", "QA is off for this agent"),
    ({"min_duration_secs": 60}, None, "42", "shorter than 60 s"),
    ({}, [{"index": 0, "user_text": "Hi, you've reached Ana, please leave a message after the tone", "bot_text": "Hello"}],
     "42", "reached a voicemail"),
])
def test_calls_the_agent_settings_exclude_are_not_reviewed(tenant_a, qa_agent, llm_double, settings_override,
                                                           turns_override, duration, reason):
    with tenant_context(tenant_a):
        configure(qa_agent, **settings_override)
        call = make_ended_call(agent=qa_agent, duration=duration, **({"turns": turns_override} if turns_override else {}))
        outcome = qa_run(client=tenant_a, call_id=call.pk)
        assert (outcome.ran, outcome.reason) == (False, reason)
        assert not QAResult.objects.filter(call=call).exists()
    assert llm_double.requests_of("chat") == []
    assert ledger(call) == {}


def test_voicemail_is_reviewed_when_the_agent_does_not_skip_it(tenant_a, qa_agent, llm_double):
    llm_double.rules = [Rule(when="TASK: call-review", reply=json.dumps(REVIEW))]
    with tenant_context(tenant_a):
        configure(qa_agent, skip_voicemail=False, extraction_schema={})
        call = make_ended_call(agent=qa_agent, turns=[{"index": 0, "user_text": "leave a message after the tone",
                                                       "bot_text": "Hello"}])
        assert qa_run(client=tenant_a, call_id=call.pk).ran
        assert QAResult.objects.get(call=call).extraction is None
    assert len(llm_double.requests_of("chat")) == 1


def test_an_unreachable_model_raises_retryable_and_stores_nothing(tenant_a, qa_agent, llm_double):
    llm_double.rules = [Rule(when="TASK", status=429)]
    with tenant_context(tenant_a):
        configure(qa_agent)
        call = make_ended_call(agent=qa_agent)
        with pytest.raises(ProviderError) as raised:
            qa_run(client=tenant_a, call_id=call.pk)
        assert raised.value.retryable
        assert not QAResult.objects.filter(call=call).exists()
    assert ledger(call) == {}


def test_a_vendor_that_cannot_review_is_a_failed_result_without_usage(tenant_a, qa_agent, llm_double):
    with tenant_context(tenant_a):
        configure(qa_agent, llm_provider="")
        QAConfig.objects.filter(agent=qa_agent).update(llm_provider="gemini")
        call = make_ended_call(agent=qa_agent)
        qa_run(client=tenant_a, call_id=call.pk)
        result = QAResult.objects.get(call=call)
    assert result.status == "failed"
    assert result.flag_reason.startswith("Post-call QA needs an OpenAI or OpenAI-compatible LLM, not 'gemini'")
    assert llm_double.requests_of("chat") == [] and ledger(call) == {}


@pytest.mark.parametrize("field, value, message", [
    ("extraction_schema", {"type": "object", "properties": {"x": {"type": "nonsense"}}}, "not a valid JSON Schema"),
    ("extraction_schema", {"type": "array"}, 'must describe an object'),
    ("sample_rate_percent", 101, "from 0 to 100"),
    ("dispositions", ["booked", 3], "list of non-empty strings"),
    ("llm_provider", "gemini", "QA can use openai, openai_compatible"),
])
def test_bad_settings_are_refused_and_nothing_is_saved(tenant_a, qa_agent, field, value, message):
    with tenant_context(tenant_a):
        with pytest.raises(ApplicationError) as raised:
            configure(qa_agent, **{field: value})
        assert message in raised.value.message
        assert not QAConfig.objects.filter(agent=qa_agent).exists()


def test_the_sweep_requeues_post_call_work_only_for_calls_without_call_ended(tenant_a, qa_agent, celery_eager):
    from datetime import timedelta

    from django.utils import timezone

    from apps.calls.models import Call
    from apps.quality.services import qa_post_call_requeue_missed

    with tenant_context(tenant_a):
        missed = make_ended_call(agent=qa_agent, number="+15550000001")
        recent = make_ended_call(agent=qa_agent, number="+15550000002")
        done = make_ended_call(agent=qa_agent, number="+15550000003")
        old = make_ended_call(agent=qa_agent, number="+15550000004")
        now = timezone.now()
        Call.objects.filter(pk__in=[missed.pk, done.pk]).update(ended_at=now - timedelta(hours=2))
        Call.objects.filter(pk=recent.pk).update(ended_at=now - timedelta(minutes=5))
        Call.objects.filter(pk=old.pk).update(ended_at=now - timedelta(days=3))
        WebhookEvent.objects.create(type="call.ended", dedupe_key=f"call.ended:{done.pk}", data={})
        assert qa_post_call_requeue_missed(now=now) == 1  # QA is off for the agent: post_call sends call.ended
        sent = set(WebhookEvent.objects.filter(type="call.ended").values_list("dedupe_key", flat=True))
        assert sent == {f"call.ended:{missed.pk}", f"call.ended:{done.pk}"}
        assert qa_post_call_requeue_missed(now=now) == 0


@pytest.mark.parametrize(("end_reason", "answered_by", "said", "reason"), [
    ("voicemail", "", "Hello?", "reached a voicemail"),  # the runtime left a message: a mailbox, whatever was heard
    ("caller_hung_up", "machine", "Hello?", "reached a voicemail"),
    # A person who says the callee "is not available" was a person (the runtime's or carrier's verdict).
    ("caller_hung_up", "human", "He is not available right now, can I take a message?", ""),
])
def test_voicemail_skip_follows_the_calls_end_and_who_answered(end_reason, answered_by, said, reason):
    from apps.calls.models import Call, Turn
    from apps.quality.models import QAConfig
    from apps.quality.services import qa_skip_reason

    call = Call(direction="outbound", end_reason=end_reason, answered_by=answered_by, duration_secs=Decimal("30"))
    config = QAConfig(enabled=True, sample_rate_percent=100, min_duration_secs=10, skip_voicemail=True)
    assert qa_skip_reason(call=call, config=config, turns=[Turn(index=0, user_text=said)]) == reason
