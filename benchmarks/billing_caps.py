"""Usage-cap check on the call path, before/after (not a test).

Before: `usage_cap_status_exact` -- what every call start and every call end did
until now: rate the client's whole month (SQL aggregate over its ledger rows).
After: `usage_cap_status` -- bounds from the month-to-date meter (a few rows), the
month rated only when a cap lies between the bounds.
Also: the price of keeping the meter, per call reported (5 events per call).

    .venv/bin/python benchmarks/billing_caps.py [--calls 40000] [--repeat 200]

Its database lives in var/bench-billing-caps (SWITCHBOARD_VAR_DIR overrides).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("SWITCHBOARD_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "bench-billing-caps"))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

MARCH_START = datetime(2025, 3, 1, tzinfo=UTC)
AT = datetime(2025, 3, 31, 12, tzinfo=UTC)
TABLES = ("billing_usageevent", "billing_metricrate", "billing_ratecard", "billing_capalert", "billing_billingaccount")


def clean():
    from apps.billing.testing import truncate_billing_tables

    truncate_billing_tables(*TABLES, cascade=True)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tenancy_client WHERE slug LIKE 'capbench-%%'")


def call_events(client_id: int, call: int, when: datetime):
    from apps.billing.services import UsageEventIn

    parts = [
        ("call_seconds_inbound", "", 30 + call % 400, Decimal("0")),
        ("stt_seconds", "nova-3", 30 + call % 400, Decimal("0.0043")),
        ("llm_input_tokens", "gpt-4o-mini", 2000 + call % 900, Decimal("0.0003")),
        ("llm_output_tokens", "gpt-4o-mini", 300 + call % 90, Decimal("0.0002")),
        ("tts_characters", "", 400 + call % 300, Decimal("0")),
    ]
    return [
        UsageEventIn(
            client_id=client_id, call_id=f"call-{call}", metric=m, dimension=d, quantity=q, provider_cost=c,
            occurred_at=when,
        )
        for m, d, q, c in parts
    ]


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(samples):.2f} ms, p95 {p95:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    call_command("migrate_schemas", "--shared", verbosity=0)
    clean()
    from apps.billing.models import BillingAccount
    from apps.billing.selectors import usage_cap_status, usage_cap_status_exact
    from apps.billing.services import metric_rate_set, rate_card_create, usage_ingest
    from apps.billing.services.usage import _COLUMNS, _row
    from apps.tenancy.models import Client

    client = Client(name="Cap bench", slug="capbench-1", schema_name="capbench_1")
    client.auto_create_schema = False
    client.save()
    card = rate_card_create(effective_from=date(2025, 1, 1), platform_fee=Decimal("49"), call_billing_increment_seconds=60)
    metric_rate_set(card=card, metric="call_seconds_inbound", model="per_unit", unit_price=Decimal("0.10"),
                    unit_divisor=Decimal("60"), included_quantity=Decimal("100"), unit_label="min")
    metric_rate_set(card=card, metric="stt_seconds", model="cost_plus", markup_percent=Decimal("30"))
    metric_rate_set(card=card, metric="llm_input_tokens", model="per_unit", unit_price=Decimal("0.60"),
                    unit_divisor=Decimal("1000000"))
    metric_rate_set(card=card, metric="llm_output_tokens", model="volume", unit_divisor=Decimal("1000000"),
                    tiers=[{"up_to": "10", "unit_price": "2.40"}, {"up_to": None, "unit_price": "2.00"}])
    metric_rate_set(card=card, metric="tts_characters", model="package", unit_price=Decimal("0.30"),
                    package_size=Decimal("1000"))
    try:
        step = timedelta(seconds=2_592_000 / args.calls)
        batch = []
        for call in range(args.calls):
            batch.extend(call_events(client.pk, call, MARCH_START + step * call))
            if len(batch) >= 50_000:
                usage_ingest(batch)
                batch = []
        usage_ingest(batch)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE billing_usageevent")
            cursor.execute("ANALYZE billing_usagemeter")
        exact = usage_cap_status_exact(client=client, at=AT)  # warm-up, and the figures
        BillingAccount.objects.create(client=client, soft_cap_minutes=Decimal("10000000"),
                                      hard_cap_amount=Decimal("10000000"))
        exact = usage_cap_status_exact(client=client, at=AT)
        before = timed(lambda: usage_cap_status_exact(client=client, at=AT), max(10, args.repeat // 10))
        after_far = timed(lambda: usage_cap_status(client=client, at=AT), args.repeat)
        assert usage_cap_status(client=client, at=AT).state == exact.state == "allowed"
        BillingAccount.objects.filter(client=client).update(soft_cap_minutes=exact.minutes_used)
        near = usage_cap_status(client=client, at=AT)
        assert near.state == usage_cap_status_exact(client=client, at=AT).state == "soft"
        after_near = timed(lambda: usage_cap_status(client=client, at=AT), max(10, args.repeat // 10))

        # The price of the meter: reporting one call (5 events) with and without it.
        old_sql = (
            f"INSERT INTO public.billing_usageevent ({_COLUMNS}) SELECT c, k, ci, m, d, q, u, p, pc, pcc, o, pr::jsonb "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::numeric[], %s::text[], "
            "%s::text[], %s::numeric[], %s::text[], %s::timestamptz[], %s::text[]) "
            "AS t(c, k, ci, m, d, q, u, p, pc, pcc, o, pr) ON CONFLICT (client_id, idempotency_key) DO NOTHING"
        )
        counter = iter(range(10**9))

        def old_insert():
            rows = [_row(e) for e in call_events(client.pk, args.calls + next(counter), AT)]
            with connection.cursor() as cursor:
                cursor.execute(old_sql, [list(column) for column in zip(*rows, strict=True)])

        def new_insert():
            usage_ingest(call_events(client.pk, args.calls + next(counter), AT))

        ingest_old = timed(old_insert, args.repeat)
        ingest_new = timed(new_insert, args.repeat)
    finally:
        clean()

    events = args.calls * 5
    print(f"client with {args.calls:,} calls / {events:,} ledger events in the month "
          f"({exact.minutes_used} billable minutes, {exact.amount_used} {exact.currency} of usage charges)")
    print(f"before  usage_cap_status_exact (full month rating): {summary(before)}")
    print(f"after   usage_cap_status, caps far away (meter bounds): {summary(after_far)}")
    print(f"after   usage_cap_status, a cap inside the bounds (falls back to rating): {summary(after_near)}")
    print(f"ingest one call (5 events), ledger INSERT only (old): {summary(ingest_old)}")
    print(f"ingest one call (5 events), usage_ingest with lock + meter (new): {summary(ingest_new)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
