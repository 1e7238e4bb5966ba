"""Post-call QA and extraction (tenant schema).

`qa_run` reviews one ended call: an LLM (apps.quality.llm, through the provider
registry) reads the agent's instructions and the transcript with the trace's latency
figures and answers one JSON object (validated with jsonschema against QA_SCHEMA);
with an extraction schema on the agent, a second request fills it. An answer that
does not validate is asked for again once, with the validation errors; invalid twice,
the result is stored "flagged". Dead air and tool outcomes come from the trace, not
the model. One result per call: a re-run replaces it. Each run is metered once
(`qa_runs` and the LLM tokens, idempotency key per call and run)."""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass

import jsonschema
from django.db import connection, transaction

from apps.core.errors import ApplicationError, NotFound, ProviderError
from apps.quality.llm import ChatReply, qa_chat, qa_llm_spec
from apps.quality.models import QAConfig, QAResult

logger = logging.getLogger(__name__)

# A pause this long before the agent answered counts as dead air.
DEAD_AIR_MS = 3000
VOICEMAIL_PHRASES = ("leave a message", "leave your message", "after the tone", "after the beep",
                     "is not available", "voicemail", "mailbox")
REVIEW_TASK, EXTRACTION_TASK = "TASK: call-review", "TASK: data-extraction"


@dataclass(frozen=True)
class QAOutcome:
    ran: bool
    reason: str = ""  # why it did not run
    result: QAResult | None = None


# --- settings ------------------------------------------------------------------------------------------------


def _string_list(value, what: str, *, limit: int = 50) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ApplicationError(f"{what} must be a list of non-empty strings.", details={"field": what})
    cleaned = list(dict.fromkeys(item.strip()[:60] for item in value))
    if len(cleaned) > limit:
        raise ApplicationError(f"At most {limit} {what}.", details={"field": what})
    return cleaned


def qa_schema_check(schema) -> dict:
    """An extraction schema must be a JSON Schema describing an object ({} = none)."""
    if schema in (None, "", {}):
        return {}
    if not isinstance(schema, dict):
        raise ApplicationError("The extraction schema must be a JSON object.", details={"field": "extraction_schema"})
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise ApplicationError(f"The extraction schema is not a valid JSON Schema: {error.message}",
                               details={"field": "extraction_schema"}) from None
    if schema.get("type") != "object":
        raise ApplicationError('The extraction schema must describe an object ("type": "object").',
                               details={"field": "extraction_schema"})
    return schema


@transaction.atomic
def qa_config_save(*, agent_id: int, enabled: bool = True, sample_rate_percent: int = 100,
                   min_duration_secs: int = 10, skip_voicemail: bool = True, extraction_schema=None,
                   dispositions=None, custom_tags=None, llm_provider: str = "", llm_model: str = "") -> QAConfig:
    from apps.agents.models import Agent

    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise NotFound("No such agent.", details={"agent_id": agent_id})
    if isinstance(sample_rate_percent, bool) or not isinstance(sample_rate_percent, int) \
            or not 0 <= sample_rate_percent <= 100:
        raise ApplicationError("The sample rate is a whole percentage from 0 to 100.",
                               details={"field": "sample_rate_percent"})
    if isinstance(min_duration_secs, bool) or not isinstance(min_duration_secs, int) or min_duration_secs < 0:
        raise ApplicationError("The minimum duration is a whole number of seconds, 0 or more.",
                               details={"field": "min_duration_secs"})
    if llm_provider:
        from apps.quality.llm import QA_VENDORS

        if llm_provider not in QA_VENDORS:
            raise ApplicationError(f"QA can use {', '.join(QA_VENDORS)}, not {llm_provider!r}.",
                                   details={"field": "llm_provider"})
    config, _ = QAConfig.objects.update_or_create(agent=agent, defaults=dict(
        enabled=bool(enabled), sample_rate_percent=sample_rate_percent, min_duration_secs=min_duration_secs,
        skip_voicemail=bool(skip_voicemail), extraction_schema=qa_schema_check(extraction_schema),
        dispositions=_string_list(dispositions, "dispositions"), custom_tags=_string_list(custom_tags, "tags"),
        llm_provider=llm_provider.strip(), llm_model=llm_model.strip()[:100],
    ))
    return config


# --- when QA runs ----------------------------------------------------------------------------------------------


def qa_sampled(*, call_id, percent: int) -> bool:
    """A stable draw per call (a retried task decides the same way): the call's id hashed
    to 0–99, kept when under `percent`."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    return int(hashlib.sha256(str(call_id).encode()).hexdigest()[:8], 16) % 100 < percent


def _looks_like_voicemail(call, turns) -> bool:
    """The call ended at a voicemail, or the carrier's (or the runtime's) answering-machine
    verdict when there is one, else a greeting that sounds like a mailbox in the caller's
    first two turns."""
    if getattr(call, "end_reason", "") == "voicemail":
        return True
    answered_by = str(getattr(call, "answered_by", "") or "")
    if answered_by.startswith("machine") or answered_by == "fax":
        return True
    if answered_by == "human":
        return False
    heard = " ".join(turn.user_text.lower() for turn in turns[:2])
    return any(phrase in heard for phrase in VOICEMAIL_PHRASES)


def qa_skip_reason(*, call, config: QAConfig | None, turns) -> str:
    """Why the automatic run skips this call ("" = it runs)."""
    if config is None or not config.enabled:
        return "QA is off for this agent"
    if not turns:
        return "the call has no transcript"
    if float(call.duration_secs or 0) < config.min_duration_secs:
        return f"shorter than {config.min_duration_secs} s"
    if config.skip_voicemail and _looks_like_voicemail(call, turns):
        return "reached a voicemail"
    if not qa_sampled(call_id=call.pk, percent=config.sample_rate_percent):
        return f"not sampled ({config.sample_rate_percent}%)"
    return ""


# --- the review ------------------------------------------------------------------------------------------------


def qa_review_schema(config: QAConfig) -> dict:
    """What the reviewer must answer (jsonschema)."""
    return {
        "type": "object",
        "required": ["score", "score_reasons", "sentiment", "summary", "tags", "confusion_moments",
                     "instruction_adherence", "disposition"],
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 10},
            "score_reasons": {"type": "array", "items": {"type": "string"}},
            "sentiment": {"enum": list(QAResult.Sentiment.values)},
            "summary": {"type": "string"},
            "tags": {"type": "array", "items": {"enum": config.tag_choices}},
            "confusion_moments": {"type": "array", "items": {
                "type": "object", "required": ["turn", "note"],
                "properties": {"turn": {"type": "integer", "minimum": 0}, "note": {"type": "string"}}}},
            "instruction_adherence": {"type": "object", "required": ["score", "notes"], "properties": {
                "score": {"type": "integer", "minimum": 1, "maximum": 10}, "notes": {"type": "string"}}},
            "disposition": {"enum": config.disposition_choices},
        },
    }


def _trace_facts(turns) -> tuple[list[dict], list[dict]]:
    """(dead air, tools) from the call's record: facts, not the model's opinion."""
    dead_air = [{"turn": turn.index, "ms": turn.voice_to_voice_ms} for turn in turns
                if turn.voice_to_voice_ms is not None and turn.voice_to_voice_ms >= DEAD_AIR_MS]
    tools = [{"turn": turn.index, "name": tool.name, "succeeded": not tool.error, "error": tool.error or None}
             for turn in turns for tool in turn.tool_calls.all()]
    return dead_air, tools


def _transcript_text(turns) -> str:
    lines = []
    for turn in turns:
        figures = ", ".join(f"{label} {value} ms" for label, value in (
            ("STT", turn.stt_final_ms), ("LLM first token", turn.llm_ttft_ms), ("TTS first byte", turn.tts_ttfb_ms),
            ("voice-to-voice", turn.voice_to_voice_ms)) if value is not None)
        tools = "; ".join(f"tool {tool.name}({json.dumps(tool.arguments)}) -> "
                          f"{'error: ' + tool.error if tool.error else tool.result[:200]}"
                          for tool in turn.tool_calls.all())
        # The workflow node the turn ran in, once turns record one (agents without workflows have none).
        node = getattr(turn, "workflow_node", "") or getattr(turn, "node", "")
        if node:
            lines.append(f"[turn {turn.index}] workflow node: {node}")
        lines.append(f"[turn {turn.index}] caller: {turn.user_text}")
        lines.append(f"[turn {turn.index}] agent: {turn.bot_text}" + (" (interrupted)" if turn.interrupted else ""))
        if figures:
            lines.append(f"[turn {turn.index}] latency: {figures}")
        if tools:
            lines.append(f"[turn {turn.index}] {tools}")
    return "\n".join(lines)


def _review_messages(*, call, version, config: QAConfig, turns, schema: dict) -> list[dict]:
    instructions = version.system_prompt if version else ""
    return [
        {"role": "system", "content": (
            "You review phone calls handled by a voice AI agent for the business that runs it. "
            "Answer with one JSON object only, no prose, matching this JSON Schema:\n" + json.dumps(schema))},
        {"role": "user", "content": (
            f"{REVIEW_TASK}\n"
            f"Agent instructions:\n{instructions}\n\n"
            f"Greeting: {version.greeting if version else ''}\n"
            f"Call: {call.direction}, {call.duration_secs or 0} s, ended: {call.end_reason or 'unknown'}\n"
            f"Allowed tags: {json.dumps(config.tag_choices)}\n"
            f"Allowed dispositions: {json.dumps(config.disposition_choices)}\n\n"
            "Score the call 1-10 (10: the caller got what they needed, smoothly) and give reasons; say how well "
            "the agent followed its instructions; note the turns where the caller was confused or frustrated; "
            "summarise the call in two sentences. Latency figures per turn are from the call's trace.\n\n"
            f"Transcript:\n{_transcript_text(turns)}")},
    ]


def _extraction_messages(*, config: QAConfig, turns) -> list[dict]:
    return [
        {"role": "system", "content": (
            "You extract data a caller gave on a phone call. Answer with one JSON object only, no prose, matching "
            "this JSON Schema (use null where the caller did not say):\n" + json.dumps(config.extraction_schema))},
        {"role": "user", "content": f"{EXTRACTION_TASK}\nTranscript:\n{_transcript_text(turns)}"},
    ]


def _parse(text: str, schema: dict) -> tuple[dict | None, str]:
    """(the answer, "") when it is JSON valid against `schema`; (None, why) otherwise."""
    stripped = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        value = json.loads(stripped)
    except ValueError as error:
        return None, f"not JSON ({error.msg} at position {error.pos})"
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        return None, "; ".join(f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5])
    return value, ""


def _ask_valid(*, spec, messages: list[dict], schema: dict, task: str, replies: list[ChatReply]) -> tuple[dict | None, str]:
    """Ask; an invalid answer is asked for once more with what was wrong."""
    reply = qa_chat(spec=spec, messages=messages)
    replies.append(reply)
    value, problem = _parse(reply.text, schema)
    if value is not None:
        return value, ""
    retry = messages + [
        {"role": "assistant", "content": reply.text},
        {"role": "user", "content": f"{task}-retry\nYour answer was not valid: {problem}. "
                                    "Answer again with one JSON object only that matches the schema."},
    ]
    reply = qa_chat(spec=spec, messages=retry)
    replies.append(reply)
    value, second_problem = _parse(reply.text, schema)
    return value, second_problem


def _config_for(call) -> QAConfig | None:
    return QAConfig.objects.filter(agent_id=call.agent_id).first() if call.agent_id else None


def _reviewer(call, config: QAConfig) -> tuple[str, str]:
    version = call.agent_version
    provider = config.llm_provider or (version.llm_provider if version else "")
    model = config.llm_model or ((version.llm_settings or {}).get("model", "") if version else "")
    return provider, model


def qa_run(*, client, call_id, run_number: int = 1, manual: bool = False) -> QAOutcome:
    """Review one ended call as run `run_number` (1: the automatic run after the call;
    a manual re-run asks for the next number). Idempotent per run: a run already
    stored is not redone. The automatic run honours the agent's QA settings (on/off,
    sampling, minimum duration, voicemail); a manual one reviews the call regardless.

    Raises ProviderError when the LLM is unreachable (retryable: the task tries again);
    a misconfiguration is stored as a "failed" result with the reason."""
    from apps.calls.models import Call

    call = Call.objects.select_related("agent_version").filter(pk=call_id).first()
    if call is None:
        raise NotFound("No such call.", details={"call_id": str(call_id)})
    if not call.is_ended:
        return QAOutcome(False, "the call has not ended")
    existing = QAResult.objects.filter(call=call).only("run_number").first()
    if existing is not None and existing.run_number >= run_number:
        return QAOutcome(False, f"run {run_number} is done")
    turns = list(call.turns.prefetch_related("tool_calls").order_by("index"))
    config = _config_for(call)
    if not manual:
        reason = qa_skip_reason(call=call, config=config, turns=turns)
        if reason:
            return QAOutcome(False, reason)
    config = config or QAConfig(agent_id=call.agent_id)  # a manual review of an agent without settings
    provider, model = _reviewer(call, config)
    dead_air, tools = _trace_facts(turns)
    fields = dict(agent_id=call.agent_id, dead_air=dead_air, tools=tools, provider=provider, model=model)
    replies: list[ChatReply] = []
    try:
        spec = qa_llm_spec(provider=provider, model=model)
        schema = qa_review_schema(config)
        review, review_problem = _ask_valid(
            spec=spec, messages=_review_messages(call=call, version=call.agent_version, config=config, turns=turns,
                                                 schema=schema),
            schema=schema, task=REVIEW_TASK, replies=replies)
        extraction, extraction_problem = None, ""
        if config.extraction_schema:
            extraction, extraction_problem = _ask_valid(
                spec=spec, messages=_extraction_messages(config=config, turns=turns),
                schema=config.extraction_schema, task=EXTRACTION_TASK, replies=replies)
    except ProviderError as error:
        if error.retryable:
            raise
        fields.update(status=QAResult.Status.FAILED, flag_reason=error.message)
    except ApplicationError as error:
        fields.update(status=QAResult.Status.FAILED, flag_reason=error.message)
    else:
        problems = []
        if review is not None:
            fields.update(
                score=review["score"], score_reasons=review["score_reasons"], sentiment=review["sentiment"],
                summary=review["summary"], tags=list(dict.fromkeys(review["tags"])),
                confusion_moments=review["confusion_moments"],
                instruction_adherence=review["instruction_adherence"], disposition=review["disposition"])
        else:
            problems.append(f"the review did not match its schema twice: {review_problem}")
        if config.extraction_schema:
            fields.update(extraction=extraction, extraction_valid=extraction is not None,
                          extraction_errors=extraction_problem)
            if extraction is None:
                problems.append(f"the extraction did not match the agent's schema twice: {extraction_problem}")
        fields.update(status=QAResult.Status.FLAGGED if problems else QAResult.Status.COMPLETED,
                      flag_reason="; ".join(problems))
    fields.update(input_tokens=sum(reply.input_tokens for reply in replies),
                  output_tokens=sum(reply.output_tokens for reply in replies))
    return QAOutcome(True, result=_store(client=client, call=call, run_number=run_number, fields=fields))


_RESET = dict(score=None, score_reasons=[], sentiment="", summary="", tags=[], confusion_moments=[],
              instruction_adherence={}, disposition="", extraction=None, extraction_valid=False, extraction_errors="",
              flag_reason="", requested_run=None)


def _store(*, client, call, run_number: int, fields: dict) -> QAResult:
    """Replace the call's result with this run and meter the run, in one transaction."""
    from apps.webhooks.services import webhook_qa_completed_emit

    with transaction.atomic():
        current = QAResult.objects.select_for_update().filter(call=call).first()
        if current is not None and current.run_number >= run_number:
            return current  # a concurrent copy of this run got here first
        result, _ = QAResult.objects.update_or_create(call=call, defaults={**_RESET, **fields, "run_number": run_number})
        _meter(client=client, call=call, result=result)
        webhook_qa_completed_emit(qa=result)
    return result


def _meter(*, client, call, result: QAResult) -> int:
    """`qa_runs` 1 plus the LLM tokens, keyed per call and run: a retried run is billed once."""
    from apps.billing.metrics import Metric
    from apps.billing.services import UsageEventIn, usage_record_call
    from apps.providers.prices import provider_cost

    if result.input_tokens == 0 and result.output_tokens == 0 and result.status == QAResult.Status.FAILED:
        return 0  # nothing reached the model
    key = f"qa:{call.pk}:run-{result.run_number}"
    events = [UsageEventIn(metric=Metric.QA_RUNS, quantity=1, provider=result.provider,
                           idempotency_key=f"{key}:{Metric.QA_RUNS}", properties={"agent_id": call.agent_id})]
    for metric, quantity in ((Metric.LLM_INPUT_TOKENS, result.input_tokens),
                             (Metric.LLM_OUTPUT_TOKENS, result.output_tokens)):
        if quantity:
            cost, currency = provider_cost(provider=result.provider, metric=metric, dimension=result.model,
                                           quantity=quantity)
            events.append(UsageEventIn(metric=metric, quantity=quantity, dimension=result.model[:100],
                                       provider=result.provider, provider_cost=cost, provider_cost_currency=currency,
                                       idempotency_key=f"{key}:{metric}", properties={"qa": True}))
    return usage_record_call(client=client, call_id=str(call.pk), events=events)


def qa_record_unavailable(*, client, call_id, error: str, run_number: int = 1) -> QAResult | None:
    """The LLM stayed unreachable through every retry: store a "failed" result (no usage)."""
    from apps.calls.models import Call

    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        return None
    return _store(client=client, call=call, run_number=run_number, fields=dict(
        agent_id=call.agent_id, status=QAResult.Status.FAILED, flag_reason=error[:2000]))


def qa_rerun_request(*, call_id) -> int:
    """Ask for a new review of a call (portal, admin): the run number to be made; the
    task makes it once and replaces the current result."""
    from apps.calls.models import Call

    with transaction.atomic():
        call = Call.objects.filter(pk=call_id).only("pk", "ended_at").first()
        if call is None:
            raise NotFound("No such call.", details={"call_id": str(call_id)})
        if call.ended_at is None:
            raise ApplicationError("Only an ended call can be reviewed.", details={"call_id": str(call_id)})
        current = QAResult.objects.select_for_update().filter(call_id=call_id).first()
        run_number = (current.run_number + 1) if current else 1
        if current is not None:
            if current.requested_run:
                return current.requested_run  # already asked for; not twice
            current.requested_run = run_number
            current.save(update_fields=["requested_run"])
        schema = connection.schema_name

        def enqueue():
            from apps.quality.tasks import rerun_later

            rerun_later(call_id=str(call_id), run_number=run_number, schema=schema)

        transaction.on_commit(enqueue)
    return run_number


# A call whose post-call task never ran (the broker was down when it ended) is picked up
# after this long: later than the task's own retries (about 10 minutes), within a day.
POST_CALL_MISSED_AFTER_SECS = 30 * 60
POST_CALL_LOOKBACK_SECS = 24 * 3600


def qa_post_call_requeue_missed(*, now=None, limit: int = 500) -> int:
    """The sweep (per client): enqueue `quality.post_call` for ended calls that have no
    `call.ended` event yet. Safe beside running tasks (both steps are idempotent)."""
    from datetime import timedelta

    from django.db.models import CharField, Exists, OuterRef, Value
    from django.db.models.functions import Cast, Concat
    from django.utils import timezone

    from apps.calls.models import Call
    from apps.quality.tasks import post_call_later
    from apps.webhooks.events import CALL_ENDED
    from apps.webhooks.models import WebhookEvent

    now = now or timezone.now()
    missed = (Call.objects
              .filter(ended_at__gte=now - timedelta(seconds=POST_CALL_LOOKBACK_SECS),
                      ended_at__lt=now - timedelta(seconds=POST_CALL_MISSED_AFTER_SECS))
              .annotate(event_key=Concat(Value(f"{CALL_ENDED}:"), Cast("pk", CharField())))
              .filter(~Exists(WebhookEvent.objects.filter(dedupe_key=OuterRef("event_key"))))
              .values_list("pk", flat=True)[:limit])
    schema = connection.schema_name
    count = 0
    for call_id in missed:
        post_call_later(call_id=call_id, schema=schema)
        count += 1
    return count
