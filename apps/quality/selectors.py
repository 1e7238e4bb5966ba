"""Reads of QA results and settings."""
from __future__ import annotations

from django.db.models import QuerySet

from apps.quality.models import QAConfig, QAResult


def qa_result_for_call(*, call_id) -> QAResult | None:
    return QAResult.objects.filter(call_id=call_id).first()


def qa_config_for_agent(*, agent_id: int) -> QAConfig | None:
    return QAConfig.objects.filter(agent_id=agent_id).first()


def qa_result_list(*, min_score: int | None = None, max_score: int | None = None, tag: str = "",
                   agent_id: int | None = None, status: str = "") -> QuerySet[QAResult]:
    results = QAResult.objects.select_related("call", "agent")
    if min_score is not None:
        results = results.filter(score__gte=min_score)
    if max_score is not None:
        results = results.filter(score__lte=max_score)
    if tag:
        results = results.filter(tags__contains=[tag])
    if agent_id:
        results = results.filter(agent_id=agent_id)
    if status:
        results = results.filter(status=status)
    return results.order_by("-updated_at", "-id")


def qa_tags_in_use() -> list[str]:
    """Every tag on a stored result, for the list's filter."""
    seen: dict[str, None] = {}
    for tags in QAResult.objects.exclude(tags=[]).values_list("tags", flat=True).iterator():
        for tag in tags:
            seen.setdefault(tag, None)
    return sorted(seen)
