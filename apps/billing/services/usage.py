"""Usage ingestion: the only way rows get into the usage ledger.

The call runtime (apps/calls) calls :func:`usage_record_call` once when a call
ends; bulk importers call :func:`usage_ingest`. Both are synchronous ORM-level
code: from async code wrap them in ``sync_to_async(thread_sensitive=True)``.
They work from any schema context (the ledger lives in the public schema).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from apps.billing.metrics import METRIC_UNITS, Metric
from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

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
# The ledger's columns: quantity numeric(20, 6), provider_cost numeric(18, 8).
_MAX_QUANTITY = Decimal(10) ** 14
_MAX_PROVIDER_COST = Decimal(10) ** 10


_COLUMNS = (
    "client_id, idempotency_key, call_id, metric, dimension, quantity, unit, provider, "
    "provider_cost, provider_cost_currency, occurred_at, properties"
)
_ZERO = Decimal("0")
_DUMPS = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _row(event: UsageEventIn) -> tuple:
    """Validate one event and return it as a ledger row (column order of _COLUMNS)."""
    metric = event.metric
    if event.client_id is None:
        raise ApplicationError("usage event without a client", details={"metric": metric})
    if metric not in _KNOWN_METRICS:
        raise ApplicationError(
            f"unknown usage metric {metric!r}; use one of apps.billing.metrics.Metric", details={"metric": metric}
        )
    quantity = event.quantity if type(event.quantity) is Decimal else _decimal(event.quantity, "quantity")
    if not quantity.is_finite() or quantity < 0:
        raise ApplicationError("usage quantity must be a finite number >= 0", details={"quantity": str(quantity)})
    if quantity >= _MAX_QUANTITY:
        raise ApplicationError(
            f"usage quantity {quantity} is too large (the ledger holds less than {_MAX_QUANTITY})",
            details={"quantity": str(quantity)},
        )
    cost = (
        event.provider_cost if type(event.provider_cost) is Decimal else _decimal(event.provider_cost, "provider_cost")
    )
    if not cost.is_finite() or abs(cost) >= _MAX_PROVIDER_COST:
        raise ApplicationError(
            f"provider_cost must be a finite number below {_MAX_PROVIDER_COST}", details={"provider_cost": str(cost)}
        )
    occurred_at = event.occurred_at
    if occurred_at is None or occurred_at.utcoffset() is None:
        raise ApplicationError("usage occurred_at must be an aware datetime", details={"metric": metric})
    key = event.idempotency_key
    if not key:
        if not event.call_id:
            raise ApplicationError("usage event needs an idempotency_key or a call_id", details={"metric": metric})
        key = f"{event.call_id}:{metric}:{event.dimension}"
    return (
        event.client_id,
        key[:200],
        event.call_id,
        metric,
        event.dimension,
        quantity,
        event.unit or METRIC_UNITS[metric],
        event.provider,
        cost,
        (event.provider_cost_currency or "USD").upper(),
        occurred_at,
        _DUMPS(event.properties) if event.properties else "{}",
    )


# Every INSERT into the ledger also folds the rows it really inserted (RETURNING:
# duplicates skipped by ON CONFLICT are not counted) into the month-to-date meter,
# in the same statement and transaction (models.UsageMeter). Meter rows are
# upserted in key order, so concurrent batches lock them in the same order.
_METER_SQL = """
meter AS (
    INSERT INTO public.billing_usagemeter (
        client_id, period_start, metric, dimension, cost_currency, events, positive_events, quantity,
        seconds_ceil_1, seconds_ceil_6, seconds_ceil_60, provider_cost
    )
    SELECT i.client_id, date_trunc('month', i.occurred_at AT TIME ZONE c.timezone)::date, i.metric, i.dimension,
           i.provider_cost_currency, count(*), count(*) FILTER (WHERE i.quantity > 0), sum(i.quantity),
           sum(ceil(i.quantity)), sum(ceil(i.quantity / 6) * 6), sum(ceil(i.quantity / 60) * 60), sum(i.provider_cost)
    FROM inserted i JOIN public.tenancy_client c ON c.id = i.client_id
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (client_id, period_start, metric, dimension, cost_currency) DO UPDATE SET
        events = billing_usagemeter.events + EXCLUDED.events,
        positive_events = billing_usagemeter.positive_events + EXCLUDED.positive_events,
        quantity = billing_usagemeter.quantity + EXCLUDED.quantity,
        seconds_ceil_1 = billing_usagemeter.seconds_ceil_1 + EXCLUDED.seconds_ceil_1,
        seconds_ceil_6 = billing_usagemeter.seconds_ceil_6 + EXCLUDED.seconds_ceil_6,
        seconds_ceil_60 = billing_usagemeter.seconds_ceil_60 + EXCLUDED.seconds_ceil_60,
        provider_cost = billing_usagemeter.provider_cost + EXCLUDED.provider_cost
)
SELECT count(*) FROM inserted
"""
_RETURNING = "RETURNING client_id, metric, dimension, quantity, provider_cost, provider_cost_currency, occurred_at"

# Small batches (one call's events): one statement, arrays unnested server-side.
_INSERT_UNNEST_SQL = f"""
WITH inserted AS (
    INSERT INTO public.billing_usageevent ({_COLUMNS})
    SELECT c, k, ci, m, d, q, u, p, pc, pcc, o, pr::jsonb
    FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::numeric[], %s::text[],
                %s::text[], %s::numeric[], %s::text[], %s::timestamptz[], %s::text[])
         AS t(c, k, ci, m, d, q, u, p, pc, pcc, o, pr)
    ON CONFLICT (client_id, idempotency_key) DO NOTHING
    {_RETURNING}
),
{_METER_SQL}"""

# Large batches: COPY into a per-session temp table, then one INSERT ... SELECT.
COPY_THRESHOLD = 1_000
_STAGE_SQL = """
CREATE TEMP TABLE IF NOT EXISTS billing_usage_stage (
    client_id bigint, idempotency_key text, call_id text, metric text, dimension text, quantity numeric,
    unit text, provider text, provider_cost numeric, provider_cost_currency text, occurred_at timestamptz,
    properties jsonb
) ON COMMIT DELETE ROWS
"""
_INSERT_STAGE_SQL = f"""
WITH inserted AS (
    INSERT INTO public.billing_usageevent ({_COLUMNS})
    SELECT {_COLUMNS} FROM pg_temp.billing_usage_stage
    ON CONFLICT (client_id, idempotency_key) DO NOTHING
    {_RETURNING}
),
{_METER_SQL}"""

# Invoice generation takes this lock exclusively for its client while it reads the
# ledger's last id (services/invoices.py:_ledger_watermark); ingestion takes it
# shared until its commit. So a row is either committed before that read or gets
# an id above it -- an event never falls between an invoice and the late usage
# carried into the next.
LEDGER_LOCK_CLASS = 0x4249_4C4C  # "BILL"
_LOCK_CLIENTS_SQL = (
    "SELECT pg_advisory_xact_lock_shared(%s::int, c) FROM (SELECT DISTINCT unnest(%s::int[]) AS c ORDER BY 1) AS t"
)


def usage_ingest(events: Iterable[UsageEventIn]) -> int:
    """Append usage events to the ledger; returns how many were new.

    Idempotent: an event whose (client, idempotency_key) is already stored -- or
    appears twice in the batch, or is being inserted by a concurrent
    transaction -- is skipped by PostgreSQL (ON CONFLICT DO NOTHING on the unique
    index), never counted twice. All rows go in inside one transaction: either
    every event of the batch is stored or none is (a bad event refuses the batch).

    Small batches are one INSERT ... SELECT FROM unnest(arrays); batches of
    COPY_THRESHOLD rows or more are COPYed into a session temp table first and
    inserted from there with the same ON CONFLICT rule (much less per-row
    parameter adaptation work on the client).
    """
    rows = [_row(event) for event in events]
    if not rows:
        return 0
    inserted = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK_CLIENTS_SQL, [LEDGER_LOCK_CLASS, sorted({row[0] for row in rows})])
        if len(rows) < COPY_THRESHOLD:
            cursor.execute(_INSERT_UNNEST_SQL, [list(column) for column in zip(*rows, strict=True)])
            return cursor.fetchone()[0]
        cursor.execute(_STAGE_SQL)
        raw = cursor.cursor  # the psycopg cursor, for COPY
        for start in range(0, len(rows), MAX_BATCH):
            cursor.execute("TRUNCATE pg_temp.billing_usage_stage")
            with raw.copy(f"COPY pg_temp.billing_usage_stage ({_COLUMNS}) FROM STDIN") as copy:
                for row in rows[start : start + MAX_BATCH]:
                    copy.write_row(row)
            cursor.execute(_INSERT_STAGE_SQL)
            inserted += cursor.fetchone()[0]
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

    Returns the number of newly stored events. After commit (only when something
    new was stored) it enqueues the usage-cap check (tasks.cap_check_task), which
    alerts agency staff once per period when a cap is crossed.
    """
    ended_at = ended_at or timezone.now()
    call_id = str(call_id)
    prepared = [
        replace(event, client_id=client.pk, call_id=call_id, occurred_at=event.occurred_at or ended_at)
        for event in events
    ]
    _refuse_conflicting_keys(prepared)
    inserted = usage_ingest(prepared)
    if inserted:
        client_id = client.pk
        transaction.on_commit(lambda: _enqueue_cap_check(client_id))
    return inserted


def _refuse_conflicting_keys(events: Sequence[UsageEventIn]) -> None:
    """Two different events of one call under one idempotency key would store only
    the first (the second looks like a retry): refuse, so nothing is lost quietly."""
    seen: dict[str, UsageEventIn] = {}
    for event in events:
        key = event.idempotency_key or f"{event.call_id}:{event.metric}:{event.dimension}"
        other = seen.setdefault(key, event)
        if other is not event and other != event:
            raise ApplicationError(
                f"two different usage events of call {event.call_id} share the key {key!r}: sum them into one "
                "event or give each its own idempotency_key",
                details={"idempotency_key": key},
            )


def _enqueue_cap_check(client_id: int) -> None:
    from apps.billing.tasks import cap_check_task

    try:
        cap_check_task.delay(client_id)
    except Exception:  # noqa: BLE001 - never break the call runtime over an alert; the next call checks again
        logger.exception("could not enqueue the usage cap check of client %s", client_id)


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
