"""Usage ingestion: the only way rows get into the usage ledger.

The call runtime (apps/calls) calls :func:`usage_record_call` once when a call
ends; bulk importers call :func:`usage_ingest`. Both are synchronous ORM-level
code: from async code wrap them in ``sync_to_async(thread_sensitive=True)``.
They work from any schema context (the ledger lives in the public schema).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from apps.billing.metrics import METRIC_UNITS, Metric
from apps.core.errors import ApplicationError

# End reason the call runtime records when it refuses a call at the hard cap.
CALL_END_REASON_USAGE_CAP = "usage_cap_reached"

MAX_BATCH = 50_000  # rows per INSERT statement; larger inputs are chunked


@dataclass(frozen=True)
class UsageEventIn:
    """One metered component of a call, as the runtime reports it.

    metric          one of apps.billing.metrics.Metric (e.g. "llm_input_tokens")
    quantity        Decimal (or int / str) in the metric's raw unit: seconds,
                    tokens, characters, plays, runs, number-months
    dimension       what varies the price: LLM/STT/TTS model, carrier product ("" if none)
    provider        vendor that did the work ("deepgram", "openai", "twilio"...)
    provider_cost   what the vendor charges us for it, Decimal, in provider_cost_currency
    occurred_at     aware datetime; defaults to the call end passed to usage_record_call
    idempotency_key unique per client; defaults to "<call_id>:<metric>:<dimension>",
                    so report one event per call component (sum the parts yourself)
                    or pass distinct keys for distinct parts
    properties      free-form JSON (direction, agent id, campaign id...)
    client_id       needed only for usage_ingest (usage_record_call fills it)
    call_id         likewise
    """

    metric: str
    quantity: Decimal | int | str
    dimension: str = ""
    provider: str = ""
    provider_cost: Decimal | int | str = Decimal("0")
    provider_cost_currency: str = "USD"
    occurred_at: datetime | None = None
    idempotency_key: str = ""
    unit: str = ""
    properties: dict = field(default_factory=dict)
    client_id: int | None = None
    call_id: str = ""


def _decimal(value, what: str) -> Decimal:
    if isinstance(value, float) or isinstance(value, bool):
        raise ApplicationError(f"{what} must be a Decimal, int or string, not a float", details={"value": repr(value)})
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except Exception as exc:  # noqa: BLE001 - InvalidOperation and friends
        raise ApplicationError(f"{what} is not a number: {value!r}") from exc


_KNOWN_METRICS = frozenset(m.value for m in Metric)


def _validated(event: UsageEventIn) -> UsageEventIn:
    if event.client_id is None:
        raise ApplicationError("usage event without a client", details={"metric": event.metric})
    if event.metric not in _KNOWN_METRICS:
        raise ApplicationError(
            f"unknown usage metric {event.metric!r}; use one of apps.billing.metrics.Metric",
            details={"metric": event.metric},
        )
    quantity = _decimal(event.quantity, "quantity")
    if quantity < 0 or not quantity.is_finite():
        raise ApplicationError("usage quantity must be a finite number >= 0", details={"quantity": str(quantity)})
    cost = _decimal(event.provider_cost, "provider_cost")
    if not cost.is_finite():
        raise ApplicationError("provider_cost must be finite")
    if event.occurred_at is None or timezone.is_naive(event.occurred_at):
        raise ApplicationError("usage occurred_at must be an aware datetime", details={"metric": event.metric})
    key = event.idempotency_key or f"{event.call_id}:{event.metric}:{event.dimension}"
    if not event.idempotency_key and not event.call_id:
        raise ApplicationError("usage event needs an idempotency_key or a call_id", details={"metric": event.metric})
    return replace(
        event,
        quantity=quantity,
        provider_cost=cost,
        idempotency_key=key[:200],
        unit=event.unit or METRIC_UNITS[event.metric],
        provider_cost_currency=(event.provider_cost_currency or "USD").upper(),
    )


_INSERT_SQL = """
INSERT INTO public.billing_usageevent
    (client_id, idempotency_key, call_id, metric, dimension, quantity, unit, provider,
     provider_cost, provider_cost_currency, occurred_at, properties)
SELECT c, k, ci, m, d, q, u, p, pc, pcc, o, pr::jsonb
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::numeric[], %s::text[],
            %s::text[], %s::numeric[], %s::text[], %s::timestamptz[], %s::text[])
     AS t(c, k, ci, m, d, q, u, p, pc, pcc, o, pr)
ON CONFLICT (client_id, idempotency_key) DO NOTHING
"""


def usage_ingest(events: Iterable[UsageEventIn]) -> int:
    """Append usage events to the ledger; returns how many were new.

    Idempotent: an event whose (client, idempotency_key) is already stored -- or
    appears twice in the batch, or is being inserted by a concurrent
    transaction -- is skipped by PostgreSQL (ON CONFLICT DO NOTHING on the unique
    index), never counted twice. The batch goes in as one INSERT ... SELECT FROM
    unnest(arrays) per MAX_BATCH rows, inside one transaction: either every row of
    the call is stored or none is.
    """
    validated = [_validated(event) for event in events]
    if not validated:
        return 0
    inserted = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(validated), MAX_BATCH):
            chunk = validated[start : start + MAX_BATCH]
            cursor.execute(
                _INSERT_SQL,
                [
                    [e.client_id for e in chunk],
                    [e.idempotency_key for e in chunk],
                    [e.call_id for e in chunk],
                    [e.metric for e in chunk],
                    [e.dimension for e in chunk],
                    [e.quantity for e in chunk],
                    [e.unit for e in chunk],
                    [e.provider for e in chunk],
                    [e.provider_cost for e in chunk],
                    [e.provider_cost_currency for e in chunk],
                    [e.occurred_at for e in chunk],
                    [json.dumps(e.properties, separators=(",", ":"), default=str) for e in chunk],
                ],
            )
            inserted += cursor.rowcount
    return inserted


def usage_record_call(*, client, call_id: str, events: Sequence[UsageEventIn], ended_at: datetime | None = None) -> int:
    """Record the usage of one finished call. Safe to call again for the same call
    (retries, a redelivered task): events already stored are skipped.

    client    tenancy.Client (the call's tenant)
    call_id   the call's id (str(uuid) / str(pk)); default idempotency keys are
              "<call_id>:<metric>:<dimension>"
    events    UsageEventIn, one per component: e.g.
              UsageEventIn(metric="call_seconds_inbound", quantity=Decimal("73.4"), provider="twilio"),
              UsageEventIn(metric="llm_output_tokens", dimension="gpt-4o-mini", quantity=812,
                           provider="openai", provider_cost=Decimal("0.000487"))
    ended_at  when the call ended (aware); the default occurred_at of every event.
              It decides the billing month (in the client's timezone).

    Returns the number of newly stored events. After commit, checks the client's
    usage caps and alerts agency staff once per period when a cap is crossed.
    """
    ended_at = ended_at or timezone.now()
    call_id = str(call_id)
    prepared = [
        replace(event, client_id=client.pk, call_id=call_id, occurred_at=event.occurred_at or ended_at)
        for event in events
    ]
    inserted = usage_ingest(prepared)
    if inserted:
        from apps.billing.services.caps import cap_check_after_usage

        client_id = client.pk
        transaction.on_commit(lambda: cap_check_after_usage(client_id=client_id))
    return inserted


def usage_record_phone_numbers(
    *,
    client,
    period_start,
    numbers: Sequence[str],
    provider: str = "",
    unit_cost=Decimal("0"),
    currency: str = "USD",
    occurred_at: datetime | None = None,
) -> int:
    """One `phone_number_months` event per number held in the month (idempotent per number and month),
    dated at the start of that month in the client's timezone."""
    from apps.billing.periods import period_bounds

    occurred_at = occurred_at or period_bounds(period_start, client.timezone)[0]
    events = [
        UsageEventIn(
            metric=Metric.PHONE_NUMBER_MONTHS,
            quantity=1,
            dimension="",
            provider=provider,
            provider_cost=unit_cost,
            provider_cost_currency=currency,
            occurred_at=occurred_at,
            idempotency_key=f"phone:{number}:{period_start:%Y-%m}",
            properties={"number": number},
            client_id=client.pk,
        )
        for number in numbers
    ]
    return usage_ingest(events)
