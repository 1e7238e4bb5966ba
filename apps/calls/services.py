"""Writes of the call record. The voice runtime calls these from its consumer
inside the tenant schema (wrap in sync_to_async from async code)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_tenants.utils import tenant_context

from apps.agents.selectors import AgentRuntimeConfig
from apps.calls.models import Call, CallUsage, ToolCall, Turn
from apps.calls.stream_tokens import stream_token_redeem
from apps.core.errors import ApplicationError, NotFound, PermissionDenied, ProviderError

logger = logging.getLogger(__name__)

END_REASONS = frozenset(Call.EndReason.values)
CLIP_PLAYS = "clip_plays"  # apps.billing.metrics.Metric.CLIP_PLAYS
_TERMINAL_STATUS_BY_REASON = {
    Call.EndReason.NO_ANSWER: Call.Status.NO_ANSWER,
    Call.EndReason.BUSY: Call.Status.BUSY,
    Call.EndReason.FAILED: Call.Status.FAILED,
    Call.EndReason.CLIENT_SUSPENDED: Call.Status.REFUSED,
    Call.EndReason.USAGE_CAP: Call.Status.REFUSED,
    Call.EndReason.UNKNOWN_NUMBER: Call.Status.REFUSED,
}


def _current_client():
    return connection.tenant


def _get_for_update(call_id) -> Call:
    try:
        return Call.objects.select_for_update().get(pk=call_id)
    except (Call.DoesNotExist, ValueError, ApplicationError):
        raise NotFound("No such call.", details={"call_id": str(call_id)}) from None
    except Exception as exc:  # a malformed uuid raises ValidationError
        raise NotFound("No such call.", details={"call_id": str(call_id)}) from exc


def usage_cap_reached(*, client) -> bool:
    """Billing's hard cap: at it, calls are refused politely."""
    from apps.billing.selectors import usage_cap_status

    return not usage_cap_status(client=client).allowed


@transaction.atomic
def call_create_inbound(
    *, to_number: str, from_number: str, carrier: str = "twilio", carrier_call_id: str = "", agent=None,
) -> Call:
    """Record an inbound call to one of this client's numbers and decide whether
    it may run. Returns the Call; if it may not run (client suspended, usage cap),
    the call comes back already ended (`call.is_ended`, `call.end_reason`
    "client_suspended" / "usage_cap") and the caller should say a polite line and
    hang up. Raises NotFound for a number this client does not own (unless
    `agent` is given, e.g. simulate_call)."""
    from apps.telephony.models import PhoneNumber

    client = _current_client()
    phone_number = PhoneNumber.objects.select_related("agent__current_version").filter(number=to_number, is_active=True).first()
    if phone_number is None and agent is None:
        raise NotFound("This number does not belong to this client.", details={"to_number": to_number})
    agent = agent or phone_number.agent
    if carrier_call_id:
        existing = Call.objects.filter(carrier=carrier, carrier_call_id=carrier_call_id).first()
        if existing is not None:  # the carrier retried its webhook
            return existing
    try:
        with transaction.atomic():  # a savepoint: two deliveries racing meet the unique constraint
            call = Call.objects.create(
                direction=Call.Direction.INBOUND, from_number=from_number, to_number=to_number, carrier=carrier,
                carrier_call_id=carrier_call_id, phone_number=phone_number, agent=agent,
                agent_version=agent.current_version if agent else None, status=Call.Status.RINGING,
            )
    except IntegrityError:
        return Call.objects.get(carrier=carrier, carrier_call_id=carrier_call_id)
    refusal = None
    if not client.is_active:
        refusal = Call.EndReason.CLIENT_SUSPENDED
    elif usage_cap_reached(client=client):
        refusal = Call.EndReason.USAGE_CAP
    elif agent is None or agent.current_version is None:
        return _end(call, end_reason=Call.EndReason.ERROR, error="no agent is assigned to this number", usage={})
    if refusal:
        logger.info("inbound call %s refused: %s", call.pk, refusal)
        return _end(call, end_reason=refusal, error="", usage={})
    return call


@transaction.atomic
def call_refused_record(*, carrier: str, to_number: str, from_number: str, carrier_call_id: str = "",
                        reason: str = Call.EndReason.UNKNOWN_NUMBER, error: str = "") -> Call:
    """A signed inbound webhook for a number this client does not (or no longer) own:
    kept as an ended, refused Call row the agency sees in the client admin, not only
    as a log line. A redelivered webhook finds the same row."""
    if carrier_call_id:
        existing = Call.objects.filter(carrier=carrier, carrier_call_id=carrier_call_id).first()
        if existing is not None:
            return existing
    now = timezone.now()
    return Call.objects.create(
        direction=Call.Direction.INBOUND, from_number=from_number[:32], to_number=to_number[:32], carrier=carrier,
        carrier_call_id=carrier_call_id[:100], status=Call.Status.REFUSED, ended_at=now,
        end_reason=reason, error=error, duration_secs=Decimal("0.000"), usage_reported_at=now,
    )


def call_create_outbound(*, phone_number, to_number: str, agent, idempotency_key: str,
                         variables: dict | None = None) -> tuple[Call, bool]:
    """Record an outbound call before the carrier is asked; (call, created).
    Idempotent per key: one `INSERT … ON CONFLICT DO NOTHING RETURNING id` (one round trip, no
    savepoint, safe inside or outside a transaction); only when the key exists already is the
    existing call read back. `created` is True for exactly one request per key, however many race:
    that request alone may dial. Used by apps.telephony.services.telephony_call_outbound."""
    from django.db.models.constants import OnConflict

    call = Call(direction=Call.Direction.OUTBOUND, from_number=phone_number.number, to_number=to_number,
                carrier=phone_number.carrier, phone_number=phone_number, agent=agent,
                agent_version_id=agent.current_version_id, status=Call.Status.QUEUED,
                variables=dict(variables or {}), idempotency_key=idempotency_key)
    fields = [field for field in Call._meta.concrete_fields if not field.generated]
    # QuerySet._insert is what Model.save() and bulk_create() use; bulk_create(ignore_conflicts=True)
    # would not say whether the row was inserted, and get_or_create costs a SELECT and a savepoint.
    (returned,) = Call.objects._insert([call], fields=fields, returning_fields=[Call._meta.pk],
                                       on_conflict=OnConflict.IGNORE)
    if returned is not None:
        call._state.adding, call._state.db = False, connection.alias
        return call, True
    return Call.objects.get(idempotency_key=idempotency_key), False


# The carrier field of a browser test call: no carrier leg, nothing to hang up or bill.
BROWSER_CARRIER = "browser"


@dataclass(frozen=True)
class TestCallTicket:
    """What the browser needs to open its media socket: the call and its single-use token."""

    call_id: str
    token: str


def call_test_create(*, client, agent, user=None) -> TestCallTicket:
    """A browser test call of `agent` ("Talk to this agent"): recorded and traced like a
    phone call, runs the agent's draft (`agent_draft_version`: the last save plus the
    builder's unpublished graph), marked `is_test` and never billed to the client. The
    browser joins it with the returned single-use token (valid 120 s), as a carrier's
    media stream would. `user`: who asked (kept in the log line)."""
    from apps.calls.stream_tokens import stream_token_mint

    if not client.is_active:
        raise PermissionDenied("This client is suspended: its agents take no calls.")
    if agent is None or agent.current_version_id is None:
        raise ApplicationError("Save the agent once before talking to it.", details={"agent": "no saved version"})
    with transaction.atomic(durable=True):
        call = Call.objects.create(
            direction=Call.Direction.WEB, carrier=BROWSER_CARRIER, agent=agent, is_test=True,
            agent_version_id=agent.current_version_id, status=Call.Status.RINGING,
        )
    logger.info("test call %s of agent %s by %s", call.pk, agent.pk, getattr(user, "email", "?"))
    return TestCallTicket(call_id=str(call.pk),
                          token=stream_token_mint(schema=client.schema_name, call_id=str(call.pk)))


@transaction.atomic
def call_answered(*, call_id, stream_id: str = "", carrier_call_id: str = "") -> Call:
    """The media stream connected: the call is in progress. Idempotent."""
    call = _get_for_update(call_id)
    if call.is_ended:
        return call
    fields = []
    if call.answered_at is None:
        call.answered_at = timezone.now()
        fields.append("answered_at")
    call.status = Call.Status.IN_PROGRESS
    fields.append("status")
    if stream_id:
        call.stream_id = stream_id
        fields.append("stream_id")
    if carrier_call_id and not call.carrier_call_id:
        call.carrier_call_id = carrier_call_id
        fields.append("carrier_call_id")
    call.save(update_fields=fields)
    return call


def _parse_when(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ApplicationError(f"Not a datetime: {value!r}")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def _ms(value) -> int | None:
    return None if value is None else max(0, int(round(float(value))))


@transaction.atomic
def call_turn_record(*, call_id, turn: dict) -> Turn:
    """Store one turn (keys: index, user_text, bot_text, started_at, ended_at,
    interrupted, stt_final_ms, llm_ttft_ms, tts_ttfb_ms, voice_to_voice_ms, node, end_of_turn,
    tool_calls [{name, arguments, result, duration_ms, error}], errors [str], clips [{name, source}]).
    Recording the same index again replaces it (a retry is harmless)."""
    call = _get_for_update(call_id)
    errors = turn.get("errors") or []
    if isinstance(errors, str):
        errors = [errors]
    row, _ = Turn.objects.update_or_create(
        call=call, index=int(turn["index"]),
        defaults=dict(
            user_text=turn.get("user_text") or "", bot_text=turn.get("bot_text") or "",
            started_at=_parse_when(turn.get("started_at")), ended_at=_parse_when(turn.get("ended_at")),
            interrupted=bool(turn.get("interrupted", False)),
            stt_final_ms=_ms(turn.get("stt_final_ms")), llm_ttft_ms=_ms(turn.get("llm_ttft_ms")),
            tts_ttfb_ms=_ms(turn.get("tts_ttfb_ms")), voice_to_voice_ms=_ms(turn.get("voice_to_voice_ms")),
            end_of_turn=str(turn.get("end_of_turn") or "")[:20],
            errors="\n".join(str(error) for error in errors), node=str(turn.get("node") or "")[:64],
            clips=[{"name": str(clip.get("name") or "")[:64], "source": str(clip.get("source") or "")[:20]}
                   for clip in turn.get("clips") or [] if isinstance(clip, dict)],
        ),
    )
    row.tool_calls.all().delete()
    ToolCall.objects.bulk_create([
        ToolCall(
            call=call, turn=row, name=str(tool["name"]), arguments=tool.get("arguments") or {},
            result="" if tool.get("result") is None else str(tool.get("result")),
            duration_ms=_ms(tool.get("duration_ms")), error=tool.get("error") or "",
        )
        for tool in turn.get("tool_calls") or []
    ])
    return row


def _usage_rows(call: Call, usage: dict) -> list[CallUsage]:
    """usage: {"stt_seconds": {"nova-2": 61.2}, "llm_input_tokens": {"gpt-4o-mini": 900}, ...};
    a bare number instead of a per-model dict means dimension "". A metric no provider
    kind bills is refused; which of the call's providers bills a metric is the vendor
    modules' word (apps.providers.registry.usage_provider_for)."""
    from apps.providers.registry import KINDS, usage_provider_for

    billable = {metric for kind in KINDS.values() for metric in kind.metrics}
    providers = {"stt": call.stt_provider, "llm": call.llm_provider, "tts": call.tts_provider,
                 "speech_to_speech": call.s2s_provider}
    rows = []
    for metric, value in (usage or {}).items():
        if metric == "call_seconds" or value == {}:
            continue  # call seconds are the carrier's rows; an empty dict: a stage this call did not run
        if metric == CLIP_PLAYS:
            # Clips are the platform's own audio: no vendor bills them (metered, priced by the rate card).
            rows.append(CallUsage(call=call, metric=metric, dimension="", provider="",
                                  quantity=Decimal(str(value)).quantize(Decimal("0.001"))))
            continue
        if metric not in billable:
            raise ApplicationError(f"Unknown usage metric {metric!r}; use one of {sorted(billable)}")
        try:
            provider = usage_provider_for(metric=metric, providers=providers)
        except ApplicationError:
            # A vendor since removed from PROVIDER_VENDOR_MODULES, or a call that never leased:
            # the usage is kept all the same, without a vendor to price it against.
            logger.warning("call %s: no provider of %s bills %s", call.pk, providers, metric)
            provider = ""
        per_dimension = value if isinstance(value, dict) else {"": value}
        for dimension, quantity in per_dimension.items():
            rows.append(CallUsage(call=call, metric=metric, dimension=str(dimension)[:100], provider=provider,
                                  quantity=Decimal(str(quantity)).quantize(Decimal("0.001"))))
    return rows


def _end(call: Call, *, end_reason: str, error: str, usage: dict, ended_at: datetime | None = None,
         client=None) -> Call:
    if end_reason not in END_REASONS:
        raise ApplicationError(f"Unknown end reason {end_reason!r}; use one of {sorted(END_REASONS)}")
    call.ended_at = ended_at or timezone.now()
    call.end_reason = end_reason
    call.error = error or ""
    if call.answered_at:
        seconds = usage.get("call_seconds") if usage else None
        call.duration_secs = Decimal(str(seconds if seconds is not None else (call.ended_at - call.answered_at).total_seconds())).quantize(Decimal("0.001"))
    else:
        call.duration_secs = Decimal("0.000")
    call.status = _TERMINAL_STATUS_BY_REASON.get(end_reason, Call.Status.FAILED if end_reason == Call.EndReason.ERROR and not call.answered_at else Call.Status.COMPLETED)
    call.save()
    rows = _usage_rows(call, usage)
    if call.duration_secs:
        rows.append(CallUsage(call=call, metric=f"call_seconds_{call.direction}", dimension="", provider=call.carrier,
                              quantity=call.duration_secs))
    if call.duration_secs and call.direction != Call.Direction.WEB:  # a browser call has no carrier leg
        # What the carrier bills us for the leg (its price table rounds to its increments).
        rows.append(CallUsage(call=call, metric="carrier_seconds", dimension=f"voice-{call.direction}",
                              provider=call.carrier, quantity=call.duration_secs))
    # The outbox: usage rows commit with the end of the call; a task ships them to the ledger.
    CallUsage.objects.bulk_create(rows)
    _after_end(call, client=client or _current_client())
    return call


def _release_keys(*, client, call_id: str, key_refs: list[str]) -> None:
    from apps.providers.services import provider_key_release

    with tenant_context(client):
        for key_ref in key_refs:
            try:
                provider_key_release(account_id=key_ref, call_id=call_id)
            except Exception:  # noqa: BLE001 - the lease expires on its own
                logger.exception("could not release provider key %s for call %s", key_ref, call_id)


def _after_end(call: Call, *, client) -> None:
    """Once the end commits: free the call's provider keys (Redis, fast) and enqueue
    the usage shipment (calls.ship_usage; the sweeper re-sends any that got lost)."""
    call_id = str(call.pk)
    keys = [key for key in (call.stt_key_id, call.llm_key_id, call.tts_key_id, call.s2s_key_id) if key]

    def release_and_ship():
        _release_keys(client=client, call_id=call_id, key_refs=keys)
        from apps.calls.tasks import ship_usage

        with tenant_context(client):
            try:
                ship_usage.delay(call_id)
            except Exception:  # noqa: BLE001 - the broker is down: the sweeper ships it later
                logger.exception("could not enqueue the usage of call %s; the sweeper will", call_id)
        from apps.quality.tasks import post_call_later  # post-call QA, then the call.ended webhook

        post_call_later(call_id=call_id, schema=client.schema_name)

    transaction.on_commit(release_and_ship)


def call_usage_ship(*, client, call_id) -> int:
    """The outbox's delivery: send an ended call's usage rows to billing's ledger and
    mark the call shipped. Safe to repeat (the ledger's keys are per call, metric and
    dimension); a failure raises so the task retries."""
    call = Call.objects.filter(pk=call_id).only("pk", "ended_at", "usage_reported_at", "is_test").first()
    if call is None or call.ended_at is None or call.usage_reported_at is not None:
        return 0
    # A test call is not billed to the client: its usage stays in its CallUsage rows (the
    # agency's test usage, apps.calls.selectors.test_usage_summary), never in the ledger.
    recorded = 0 if call.is_test else _usage_to_ledger(call_id=call_id, client=client)
    Call.objects.filter(pk=call_id, usage_reported_at__isnull=True).update(usage_reported_at=timezone.now())
    return recorded


def _usage_to_ledger(*, call_id, client) -> int:
    """A finished call's usage rows as billing events (idempotent on billing's side),
    each with what its vendor charges us (provider_cost, USD; apps.providers.prices)."""
    from apps.billing.metrics import Metric
    from apps.billing.services.usage import UsageEventIn, usage_record_call
    from apps.providers.prices import provider_cost

    call = Call.objects.get(pk=call_id)
    events = []
    for row in call.usage.all():
        if row.metric not in {m.value for m in Metric}:
            continue
        cost, currency = provider_cost(provider=row.provider, metric=row.metric, dimension=row.dimension,
                                       quantity=row.quantity)
        events.append(UsageEventIn(
            metric=row.metric, quantity=row.quantity, dimension=row.dimension, provider=row.provider,
            provider_cost=cost, provider_cost_currency=currency,
            properties={"direction": call.direction, "agent_id": call.agent_id},
        ))
    if not events:
        return 0
    return usage_record_call(client=client, call_id=call_id, events=events, ended_at=call.ended_at)


def call_end(*, call_id, end_reason: str, error: str = "", usage: dict | None = None) -> Call:
    """End a call. Idempotent: a second end is a no-op and returns the call as it
    was. end_reason: one of Call.EndReason values. usage: {"call_seconds": 61.2
    (optional; default answered→now), "stt_seconds": {model: s}, "llm_input_tokens":
    {model: n}, "llm_output_tokens": {model: n}, "tts_characters": {voice/model: n}}.
    For the current client's schema; the runtime calls `call_stream_end` with its client."""
    return call_stream_end(client=_current_client(), call_id=call_id, end_reason=end_reason, error=error,
                           usage=usage)


def call_recording_save(*, call_id, wav_bytes: bytes, transcript: str) -> Call:
    """Store the stereo recording (caller left, agent right) and the transcript
    through default_storage, under the client's schema name. The upload happens
    before the row is locked (S3 may take seconds); the row then points at the
    new files and the old ones, if any, are removed."""
    schema = connection.schema_name
    if not Call.objects.filter(pk=call_id).exists():
        raise NotFound("No such call.", details={"call_id": str(call_id)})
    recording_name = default_storage.save(f"recordings/{schema}/{call_id}.wav", ContentFile(wav_bytes))
    transcript_name = default_storage.save(f"transcripts/{schema}/{call_id}.txt", ContentFile(transcript.encode()))
    with transaction.atomic():
        call = _get_for_update(call_id)
        replaced = [name for name in (call.recording.name, call.transcript.name) if name]
        call.recording.name, call.transcript.name = recording_name, transcript_name
        call.save(update_fields=["recording", "transcript"])
    for name in replaced:
        if name not in (recording_name, transcript_name):
            default_storage.delete(name)
    return call


@transaction.atomic
def call_carrier_status_update(*, call_id, carrier_status: str, duration_secs: int | None = None) -> Call:
    """A carrier status callback. Unanswered terminal outcomes end the call here;
    for a call whose media stream ran, the runtime's call_end stays authoritative."""
    from apps.telephony.carriers import status_from_carrier

    call = _get_for_update(call_id)
    call.carrier_status = carrier_status[:32]
    if duration_secs is not None:
        call.carrier_duration_secs = duration_secs
    status = status_from_carrier(carrier_status, carrier=call.carrier or "twilio")
    if not call.is_ended and status in (Call.Status.RINGING, Call.Status.IN_PROGRESS):
        call.status = status
    call.save()
    if call.is_ended:
        return call
    reason = {Call.Status.BUSY: Call.EndReason.BUSY, Call.Status.NO_ANSWER: Call.EndReason.NO_ANSWER,
              Call.Status.FAILED: Call.EndReason.FAILED, Call.Status.CANCELED: Call.EndReason.FAILED}.get(status)
    if reason:
        return _end(call, end_reason=reason, error="", usage={})
    if status == Call.Status.COMPLETED and call.answered_at is None:
        return _end(call, end_reason=Call.EndReason.CALLER_HUNG_UP, error="", usage={})
    return call


@transaction.atomic
def call_answered_by_record(*, call_id, answered_by: str) -> Call:
    """Who picked up an outbound call (Call.AnsweredBy: human / machine / unknown), from the
    carrier's answering-machine detection or the runtime's classifier. A definite verdict is
    not overwritten by "unknown"; a later definite one replaces it (the carrier heard more)."""
    if answered_by not in Call.AnsweredBy.values:
        raise ApplicationError(f"Unknown answered_by {answered_by!r}; use one of {sorted(Call.AnsweredBy.values)}")
    call = _get_for_update(call_id)
    if answered_by == Call.AnsweredBy.UNKNOWN and call.answered_by:
        return call
    if call.answered_by != answered_by:
        call.answered_by = answered_by
        call.save(update_fields=["answered_by"])
    return call


def call_transfer_failed_record(*, call_id, to_number: str, error: str) -> None:
    """The carrier refused the agent's transfer: say so on the call's record."""
    Call.objects.filter(pk=call_id).update(error=f"transfer to {to_number} failed: {error}"[:2000])


@transaction.atomic
def call_transfer_record(*, call_id, to_number: str) -> Call:
    call = _get_for_update(call_id)
    call.transferred_to = to_number
    call.transferred_at = timezone.now()
    call.save(update_fields=["transferred_to", "transferred_at"])
    return call


# --- a live call's life, owned here: the media door and the runtime call these ---------------------------


@dataclass(frozen=True)
class CallStart:
    """What `call_stream_start` decided. `failure` empty: run the agent with `runtime`
    (its keys leased and recorded). `failure` set: the call could not start (already
    ended with end reason "error" and this text, leases released): the caller hears
    `fallback_line` and the stream closes."""

    call_id: str
    runtime: AgentRuntimeConfig | None
    fallback_line: str
    failure: str = ""
    trace: object = None  # apps.voice.telemetry.CallTraceSettings: where the call's spans go (None: untraced)


def _runtime_stages(runtime: AgentRuntimeConfig) -> tuple[str, ...]:
    """The AgentRuntimeConfig fields of the stages a call runs (each leases a key, named as on Call)."""
    return ("s2s",) if runtime.s2s is not None else ("stt", "llm", "tts")


def _lease_runtime_keys(*, client, call: Call, runtime: AgentRuntimeConfig) -> AgentRuntimeConfig:
    """One key per stage for this call (rotation, caps, cooldowns: apps.providers).
    All or nothing: on a ProviderError the keys taken so far are released."""
    from apps.providers.registry import provider_spec_for

    leased = {}
    try:
        for stage in _runtime_stages(runtime):
            spec = getattr(runtime, stage)
            leased[stage] = replace(provider_spec_for(kind=spec.kind, provider=spec.provider, settings=spec.settings,
                                                      call_id=str(call.pk), max_secs=runtime.max_call_secs),
                                    vocabulary=spec.vocabulary)
    except ProviderError:
        _release_keys(client=client, call_id=str(call.pk),
                      key_refs=[spec.key_id for spec in leased.values() if spec.key_id])
        raise
    return replace(runtime, **leased)


def call_stream_start(*, client, call_id, stream_id: str, carrier_call_id: str, token) -> CallStart:
    """A carrier's media stream opened for `call_id`: check the stream's capability
    token (single use, apps.calls.stream_tokens), that the call is live here and is the
    carrier's call, answer it, and lease the agent's provider keys.

    Raises PermissionDenied / NotFound when the stream may not join (the door closes
    it with a policy code; the call is untouched). Any failure after that ends the
    call (end reason "error", leases released) and comes back as `CallStart.failure`
    so the caller still hears the agent's fallback line."""
    from apps.agents.selectors import agent_draft_version, agent_runtime_config

    stream_token_redeem(token=token, schema=client.schema_name, call_id=str(call_id))
    with transaction.atomic(durable=True):
        try:
            call = (Call.objects.select_for_update(of=("self",)).select_related("agent_version", "agent")
                    .get(pk=call_id))
        except (Call.DoesNotExist, ValueError, DjangoValidationError):
            raise NotFound("No such call.", details={"call_id": str(call_id)}) from None
        if call.is_ended or call.agent_version is None:
            raise PermissionDenied(f"call {call.pk} is not live", details={"call_id": str(call.pk)})
        if call.carrier_call_id and carrier_call_id and call.carrier_call_id != carrier_call_id:
            raise PermissionDenied(f"stream for carrier call {carrier_call_id!r} does not match call {call.pk}")
        now = timezone.now()
        call.answered_at = call.answered_at or now
        call.last_activity_at = now
        call.status = Call.Status.IN_PROGRESS
        call.stream_id = stream_id[:100]
        call.carrier_call_id = call.carrier_call_id or carrier_call_id[:100]
        # A test call runs the agent's draft (its last save plus the builder's unpublished graph).
        version = (agent_draft_version(agent=call.agent) if call.is_test and call.agent is not None
                   else call.agent_version)
        runtime = agent_runtime_config(agent_version=version, call=call, client=client)
        try:
            runtime = _lease_runtime_keys(client=client, call=call, runtime=runtime)
        except ProviderError as error:
            logger.warning("call %s cannot start: %s", call.pk, error.message)
            _end(call, end_reason=Call.EndReason.ERROR, error=error.message, usage={}, client=client)
            return CallStart(call_id=str(call.pk), runtime=None, fallback_line=runtime.fallback_line,
                             failure=error.message)
        for stage in _runtime_stages(runtime):
            spec = getattr(runtime, stage)
            setattr(call, f"{stage}_provider", spec.provider)
            setattr(call, f"{stage}_key_id", spec.key_id or "")
        from apps.observability.selectors import call_trace_for

        trace = call_trace_for(client=client, call=call)
        if trace is not None:
            call.trace_id, call.trace_url = trace.settings.trace_id, trace.url
        call.save()
        from apps.webhooks.tasks import call_started_later  # the call.started webhook, once this commits

        transaction.on_commit(lambda: call_started_later(call_id=call.pk, schema=client.schema_name), robust=True)
    return CallStart(call_id=str(call.pk), runtime=_with_llm_standby(runtime), fallback_line=runtime.fallback_line,
                     trace=trace.settings if trace is not None else None)


def _with_llm_standby(runtime: AgentRuntimeConfig) -> AgentRuntimeConfig:
    """The runtime with another key of its LLM vendor to fail over to (not leased)."""
    from apps.providers.services import provider_key_standby

    if runtime.s2s is not None or runtime.llm.key_id is None:
        return runtime  # speech to speech (no LLM stage), or a keyless vendor: no other key to move to
    account = provider_key_standby(provider=runtime.llm.provider, exclude_key_ref=runtime.llm.key_id)
    if account is None:
        return runtime
    standby = replace(runtime.llm, api_key=account.api_key, key_id=account.key_ref,
                      base_url=account.base_url or runtime.llm.base_url, region=account.region, secret=account.secret)
    return replace(runtime, llm_standby=standby)


def call_key_failover(*, client, call_id, kind: str, from_key: str | None, to_key: str, max_secs: float = 3600) -> bool:
    """A live call's `kind` key was throttled: lease `to_key` for the call, record it
    and free the old one. False (nothing changed) when `to_key` cannot serve either."""
    from apps.providers.services import provider_key_lease_ref

    if kind not in ("stt", "llm", "tts"):
        raise ApplicationError(f"Unknown stage {kind!r}.")
    if not provider_key_lease_ref(key_ref=to_key, call_id=str(call_id), max_secs=max_secs):
        return False
    Call.objects.filter(pk=call_id).update(**{f"{kind}_key_id": to_key})
    if from_key:
        _release_keys(client=client, call_id=str(call_id), key_refs=[from_key])
    return True


@transaction.atomic
def call_stream_failed(*, client, call_id, error: str) -> Call:
    """The runtime could not be built after the call started (a vendor's service
    refused its settings...): end the call with the error; the caller hears the
    fallback line. Idempotent."""
    call = _get_for_update(call_id)
    if call.is_ended:
        return call
    return _end(call, end_reason=Call.EndReason.ERROR, error=error, usage={}, client=client)


@transaction.atomic
def call_stream_end(*, client, call_id, end_reason: str, error: str = "", usage: dict | None = None) -> Call:
    """The runtime's last word on a call: end it with its usage (written in this
    transaction; shipped to billing by the outbox task) and free its keys.
    Idempotent: a call already ended (by the sweeper, a status callback) stays as it was."""
    call = _get_for_update(call_id)
    if call.is_ended:
        return call
    return _end(call, end_reason=end_reason, error=error, usage=usage or {}, client=client)


def call_heartbeat(*, call_id) -> None:
    """The runtime is still carrying this call (every CALL_HEARTBEAT_SECS)."""
    Call.objects.filter(pk=call_id, ended_at__isnull=True).update(last_activity_at=timezone.now())


# Inbound calls that were answered by webhook but whose media stream never came
# (or a forged answer request) stop "ringing" after this long.
UNCONNECTED_AFTER = timedelta(minutes=10)
# An ended call whose usage has not reached the ledger this long after is re-sent.
OUTBOX_RESEND_AFTER = timedelta(minutes=2)


def call_sweep(*, client, now: datetime | None = None) -> dict:
    """Beat (calls.sweep), per client: end calls a dead process left live (end reason
    "lost", billed once up to their last heartbeat, leases released), end inbound
    calls whose stream never connected, and re-enqueue usage the outbox has not
    shipped. Safe to run any number of times and beside live calls (rows are locked,
    locked ones skipped)."""
    from django.conf import settings

    now = now or timezone.now()
    lost_before = now - timedelta(seconds=settings.CALL_LOST_AFTER_SECS)
    counts = {"lost": 0, "unconnected": 0, "reshipped": 0}
    live = Call.objects.filter(ended_at__isnull=True, answered_at__isnull=False).filter(
        Q(last_activity_at__lt=lost_before) | Q(last_activity_at__isnull=True, answered_at__lt=lost_before))
    for call_id in live.values_list("pk", flat=True):
        with transaction.atomic():
            call = Call.objects.select_for_update(skip_locked=True).filter(pk=call_id, ended_at__isnull=True).first()
            if call is None:
                continue
            last_seen = call.last_activity_at or call.answered_at
            if last_seen >= lost_before:
                continue  # it beat while we looked
            _end(call, end_reason=Call.EndReason.LOST, ended_at=last_seen, usage={}, client=client,
                 error="the process running this call stopped; ended at its last heartbeat")
            counts["lost"] += 1
    unconnected = Call.objects.filter(ended_at__isnull=True, answered_at__isnull=True,
                                      direction__in=(Call.Direction.INBOUND, Call.Direction.WEB),
                                      created_at__lt=now - UNCONNECTED_AFTER)
    for call_id in unconnected.values_list("pk", flat=True):
        with transaction.atomic():
            call = Call.objects.select_for_update(skip_locked=True).filter(pk=call_id, ended_at__isnull=True).first()
            if call is not None:
                _end(call, end_reason=Call.EndReason.FAILED, usage={}, client=client,
                     error="no media stream connected for this call")
                counts["unconnected"] += 1
    unshipped = Call.objects.filter(ended_at__lt=now - OUTBOX_RESEND_AFTER, usage_reported_at__isnull=True)
    from apps.calls.tasks import ship_usage

    for call_id in unshipped.values_list("pk", flat=True)[:1000]:
        ship_usage.delay(str(call_id))
        counts["reshipped"] += 1
    return counts
