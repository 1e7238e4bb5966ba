"""Reads of the call record."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import Aggregate, Avg, Count, Exists, FloatField, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.calls.models import Call, Turn
from apps.core.errors import NotFound


def call_get(*, call_id) -> Call:
    try:
        return (
            Call.objects.select_related("agent", "agent_version", "phone_number")
            .prefetch_related("turns__tool_calls", "usage")
            .get(pk=call_id)
        )
    except (Call.DoesNotExist, ValidationError, ValueError):
        raise NotFound("No such call.", details={"call_id": str(call_id)}) from None


def call_list(*, direction: str = "", status: str = "", end_reason: str = "", agent_id: int | None = None,
              number: str = "", since=None, until=None, text: str = "") -> QuerySet[Call]:
    """Calls newest first, with `avg_voice_to_voice_ms` per call. `text` searches what was said (either side)."""
    calls = Call.objects.select_related("agent", "agent_version", "phone_number").annotate(
        avg_voice_to_voice_ms=Avg("turns__voice_to_voice_ms"))
    if text:
        said = Turn.objects.filter(call=OuterRef("pk")).filter(Q(user_text__icontains=text) | Q(bot_text__icontains=text))
        calls = calls.filter(Exists(said))
    if direction:
        calls = calls.filter(direction=direction)
    if status:
        calls = calls.filter(status=status)
    if end_reason:
        calls = calls.filter(end_reason=end_reason)
    if agent_id:
        calls = calls.filter(agent_id=agent_id)
    if number:
        calls = calls.filter(Q(from_number__contains=number) | Q(to_number__contains=number))
    if since:
        calls = calls.filter(created_at__gte=since)
    if until:
        calls = calls.filter(created_at__lt=until)
    return calls.order_by("-created_at")


def call_dashboard_figures() -> dict:
    """Figures for the portal dashboard tile (current tenant)."""
    since = timezone.now() - timedelta(days=30)
    return {"calls_total": Call.objects.filter(created_at__gte=since).count()}


# ----------------------------------------------------------------------------- dates in the client's zone


def local_day_bounds(*, since: date | None, until: date | None, tz: str) -> tuple[datetime | None, datetime | None]:
    """[since 00:00, the day after `until` 00:00) in the client's zone, as aware datetimes (either may be None)."""
    zone = ZoneInfo(str(tz))
    start = datetime.combine(since, time(0), tzinfo=zone) if since else None
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=zone) if until else None
    return start, end


# ----------------------------------------------------------------------------- the dashboard


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass(frozen=True)
class DayFigures:
    day: date
    calls: int
    minutes: Decimal
    avg_voice_to_voice_ms: int | None
    p95_voice_to_voice_ms: int | None


@dataclass(frozen=True)
class Dashboard:
    since: date
    until: date
    calls: int
    minutes: Decimal
    avg_voice_to_voice_ms: int | None
    p95_voice_to_voice_ms: int | None
    days: tuple[DayFigures, ...]
    outcomes: tuple[tuple[str, str, int], ...]  # (end reason, label, calls), most frequent first


def _ms(value) -> int | None:
    return None if value is None else round(value)


def call_dashboard(*, since: date, until: date, tz: str) -> Dashboard:
    """Calls, minutes, latency and outcomes of the current tenant's calls started on the local days
    [since, until] (inclusive), every day present in the series (zeros where nothing happened).
    Browser test calls are not the client's traffic: left out."""
    zone = ZoneInfo(str(tz))
    start, end = local_day_bounds(since=since, until=until, tz=tz)
    calls = Call.objects.filter(created_at__gte=start, created_at__lt=end, is_test=False)
    totals = calls.aggregate(calls=Count("id"), seconds=Sum("duration_secs"))
    turns = Turn.objects.filter(call__created_at__gte=start, call__created_at__lt=end, call__is_test=False,
                                voice_to_voice_ms__isnull=False)
    latency = turns.aggregate(avg=Avg("voice_to_voice_ms"), p95=Percentile("voice_to_voice_ms", 0.95))
    per_day_calls = {
        row["day"]: row for row in calls.annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day").annotate(calls=Count("id"), seconds=Sum("duration_secs")).order_by()
    }
    per_day_latency = {
        row["day"]: row for row in turns.annotate(day=TruncDate("call__created_at", tzinfo=zone))
        .values("day").annotate(avg=Avg("voice_to_voice_ms"), p95=Percentile("voice_to_voice_ms", 0.95)).order_by()
    }
    days = []
    day = since
    while day <= until:
        figures, lat = per_day_calls.get(day, {}), per_day_latency.get(day, {})
        days.append(DayFigures(
            day=day, calls=figures.get("calls", 0),
            minutes=_minutes(figures.get("seconds")),
            avg_voice_to_voice_ms=_ms(lat.get("avg")), p95_voice_to_voice_ms=_ms(lat.get("p95")),
        ))
        day += timedelta(days=1)
    labels = dict(Call.EndReason.choices)
    outcomes = tuple(
        (row["end_reason"], labels.get(row["end_reason"], "In progress / not ended"), row["n"])
        for row in calls.values("end_reason").annotate(n=Count("id")).order_by("-n", "end_reason")
    )
    return Dashboard(
        since=since, until=until, calls=totals["calls"], minutes=_minutes(totals["seconds"]),
        avg_voice_to_voice_ms=_ms(latency["avg"]), p95_voice_to_voice_ms=_ms(latency["p95"]),
        days=tuple(days), outcomes=outcomes,
    )


def _minutes(seconds) -> Decimal:
    return (Decimal(seconds or 0) / 60).quantize(Decimal("0.01"))


# ----------------------------------------------------------------------------- one call as a trace


@dataclass(frozen=True)
class TimelineTurn:
    turn: Turn
    offset_ms: int | None  # from the moment the call was answered (where the recording starts)
    duration_ms: int | None
    # (label, css class, start ms after the caller stopped speaking, length ms): STT final, LLM first token,
    # TTS first audio one after another; tools from the end of STT (the LLM asked for them).
    stages: tuple[tuple[str, str, int, int], ...]


@dataclass(frozen=True)
class Timeline:
    turns: tuple[TimelineTurn, ...]
    span_ms: int  # the call's length on the recording's clock
    stage_scale_ms: int  # the longest turn's stages, so every turn's waterfall shares one scale


def call_timeline(*, call: Call) -> Timeline:
    """The call's turns placed on the recording's clock (0 = answered, else created), with their stages."""
    origin = call.answered_at or call.created_at
    rows = []
    span = int(float(call.duration_secs or 0) * 1000)
    scale = 1
    for turn in call.turns.all():
        offset = duration = None
        if turn.started_at and origin:
            offset = max(0, int((turn.started_at - origin).total_seconds() * 1000))
        if turn.started_at and turn.ended_at:
            duration = max(0, int((turn.ended_at - turn.started_at).total_seconds() * 1000))
        stages, at = [], 0
        for label, css, value in (("STT final", "stt", turn.stt_final_ms), ("LLM first token", "llm", turn.llm_ttft_ms),
                                  ("TTS first audio", "tts", turn.tts_ttfb_ms)):
            if value is not None:
                stages.append((label, css, at, value))
                at += value
        tools_from = turn.stt_final_ms or 0
        for tool in turn.tool_calls.all():
            if tool.duration_ms is not None:
                stages.append((f"tool {tool.name}", "tool", tools_from, tool.duration_ms))
        scale = max([scale, turn.voice_to_voice_ms or 0, *(start + length for _, _, start, length in stages)])
        if offset is not None:
            span = max(span, offset + (duration or at))
        rows.append(TimelineTurn(turn=turn, offset_ms=offset, duration_ms=duration, stages=tuple(stages)))
    return Timeline(turns=tuple(rows), span_ms=span, stage_scale_ms=scale)


# ----------------------------------------------------------------------------- the agency's overview

FAILED_END_REASONS = (Call.EndReason.ERROR, Call.EndReason.LOST)


def call_period_figures(*, start: datetime, end: datetime) -> dict:
    """The current tenant's calls started in [start, end): count, minutes, failed (error / lost), and
    apart from those, its browser test calls ("Talk to this agent"; not billed to the client)."""
    real, test = Q(is_test=False), Q(is_test=True)
    figures = Call.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        calls=Count("id", filter=real), seconds=Sum("duration_secs", filter=real),
        failed=Count("id", filter=real & Q(end_reason__in=FAILED_END_REASONS)),
        test_calls=Count("id", filter=test), test_seconds=Sum("duration_secs", filter=test))
    return {"calls": figures["calls"], "minutes": _minutes(figures["seconds"]), "failed": figures["failed"],
            "test_calls": figures["test_calls"], "test_minutes": _minutes(figures["test_seconds"])}


def call_recent(*, limit: int = 50, failed_only: bool = False) -> list[Call]:
    calls = Call.objects.select_related("agent").order_by("-created_at")
    if failed_only:
        calls = calls.filter(end_reason__in=FAILED_END_REASONS)
    return list(calls[:limit])


def call_answered_by(*, call_id) -> str:
    """Who answered an outbound call so far (Call.AnsweredBy value, "" when nobody said)."""
    return Call.objects.filter(pk=call_id).values_list("answered_by", flat=True).first() or ""


def call_end_call_reasons(*, call_ids) -> dict:
    """{call id: the reason the agent gave its `end_call` tool} for those of `call_ids`
    that the agent ended with one (campaigns read it for "don't call me again")."""
    from apps.agents.graph import TOOL_END_CALL
    from apps.calls.models import ToolCall

    reasons = {}
    for call_id, arguments in ToolCall.objects.filter(call_id__in=list(call_ids), name=TOOL_END_CALL).values_list(
            "call_id", "arguments"):
        if isinstance(arguments, dict) and arguments.get("reason"):
            reasons[call_id] = str(arguments["reason"])
    return reasons
