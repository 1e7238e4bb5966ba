"""Billing benchmarks (not tests): ingestion rate, one client's invoice over 1 M
events, month-end for 100 clients. Each figure comes with a baseline measured in
the same run on the same data, and the ratio between them.

    DJANGO_SETTINGS_MODULE=config.settings.test \
        .venv/bin/python benchmarks/billing_bench.py [--events 1000000] [--clients 100] [--write-results]

Uses its own embedded PostgreSQL (under SWITCHBOARD_VAR_DIR, default var/billing-bench), migrates the public
schema, creates bench clients *without* tenant schemas (billing lives in public),
and truncates the billing tables before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("SWITCHBOARD_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "billing-bench"))

import logging  # noqa: E402

import django  # noqa: E402

django.setup()
logging.getLogger("weasyprint").setLevel(logging.ERROR)

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

MARCH = date(2025, 3, 1)
MARCH_START = datetime(2025, 3, 1, tzinfo=UTC)
TRUNCATE = (
    "TRUNCATE billing_usageevent, billing_invoiceline, billing_stripeevent, billing_invoice, billing_metricrate, "
    "billing_ratecard, billing_documentsequence, billing_capalert, billing_billingaccount CASCADE"
)


def sql(statement: str, params=None) -> None:
    if statement.startswith("TRUNCATE"):  # past the billing TRUNCATE guards (billing migration 0004)
        from apps.billing.testing import truncate_billing_tables

        truncate_billing_tables(statement.removeprefix("TRUNCATE ").removesuffix(" CASCADE"), cascade=True)
        return
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def setup_db():
    call_command("migrate_schemas", "--shared", verbosity=0)
    sql(TRUNCATE)
    sql("DELETE FROM tenancy_client WHERE slug LIKE 'bench-%%'")


def make_clients(n: int):
    from apps.tenancy.models import Client

    clients = []
    for i in range(n):
        client = Client(name=f"Bench {i:03d}", slug=f"bench-{i:03d}", schema_name=f"bench_{i:03d}")
        client.auto_create_schema = False  # billing needs only the public row
        client.save()
        clients.append(client)
    return clients


def make_card():
    from apps.billing.services import metric_rate_set, rate_card_create

    card = rate_card_create(
        effective_from=date(2025, 1, 1),
        platform_fee=Decimal("49"),
        tax_rate_percent=Decimal("20"),
        call_billing_increment_seconds=60,
        minimum_commitment=Decimal("100"),
    )
    metric_rate_set(
        card=card,
        metric="call_seconds_inbound",
        model="graduated",
        unit_divisor=Decimal("60"),
        tiers=[{"up_to": "1000", "unit_price": "0.10"}, {"up_to": None, "unit_price": "0.08"}],
        included_quantity=Decimal("100"),
        unit_label="min",
    )
    metric_rate_set(card=card, metric="stt_seconds", model="cost_plus", markup_percent=Decimal("30"))
    metric_rate_set(
        card=card,
        metric="llm_input_tokens",
        model="per_unit",
        unit_price=Decimal("0.60"),
        unit_divisor=Decimal("1000000"),
        unit_label="M tokens",
    )
    metric_rate_set(
        card=card,
        metric="llm_output_tokens",
        model="volume",
        unit_divisor=Decimal("1000000"),
        tiers=[{"up_to": "10", "unit_price": "2.40"}, {"up_to": None, "unit_price": "2.00"}],
    )
    metric_rate_set(
        card=card, metric="tts_characters", model="package", unit_price=Decimal("0.30"), package_size=Decimal("1000")
    )
    return card


def bulk_sql_events(client_id: int, n: int, key_prefix: str) -> None:
    """Fast fixture data (not measured): n events spread over March, 5 components per call."""
    sql(
        """
        INSERT INTO billing_usageevent (client_id, idempotency_key, call_id, metric, dimension, quantity, unit,
            provider, provider_cost, provider_cost_currency, occurred_at, properties)
        SELECT %(client)s, %(prefix)s || g, 'call-' || (g / 5),
               (ARRAY['call_seconds_inbound','stt_seconds','llm_input_tokens','llm_output_tokens','tts_characters'])[1 + g %% 5],
               CASE WHEN g %% 5 IN (2, 3) THEN 'gpt-4o-mini' ELSE '' END,
               (g %% 300) + 1, 'unit', 'bench', (g %% 7) * 0.0013, 'USD',
               %(start)s::timestamptz + make_interval(secs => (g::float8 * 2678399 / %(n)s)), '{}'::jsonb
        FROM generate_series(0, %(n)s - 1) AS g
        """,
        {"client": client_id, "prefix": key_prefix, "n": n, "start": MARCH_START},
    )
    sql("ANALYZE billing_usageevent")


def events_in(client_id: int, n: int, prefix: str):
    from apps.billing.services import UsageEventIn

    metrics = ["call_seconds_inbound", "stt_seconds", "llm_input_tokens", "llm_output_tokens", "tts_characters"]
    return [
        UsageEventIn(
            client_id=client_id,
            call_id=f"{prefix}{i // 5}",
            metric=metrics[i % 5],
            dimension="gpt-4o-mini" if i % 5 in (2, 3) else "",
            quantity=Decimal(i % 300 + 1),
            provider="bench",
            provider_cost=Decimal("0.0013"),
            occurred_at=MARCH_START,
            idempotency_key=f"{prefix}{i}",
            properties={"direction": "inbound"},
        )
        for i in range(n)
    ]


def bench_ingestion(client, n: int, batch: int) -> dict:
    from apps.billing.models import UsageEvent
    from apps.billing.services import usage_ingest

    ours = events_in(client.pk, n, "ing-")
    started = time.perf_counter()
    inserted = sum(usage_ingest(ours[i : i + batch]) for i in range(0, n, batch))
    ours_s = time.perf_counter() - started
    assert inserted == n, inserted
    started = time.perf_counter()
    again = sum(usage_ingest(ours[i : i + batch]) for i in range(0, n, batch))
    replay_s = time.perf_counter() - started
    assert again == 0

    # Baseline: the ORM's bulk_create(ignore_conflicts=True), same events, same batch size.
    base = events_in(client.pk, n, "orm-")
    started = time.perf_counter()
    for i in range(0, n, batch):
        UsageEvent.objects.bulk_create(
            [
                UsageEvent(
                    client_id=e.client_id,
                    idempotency_key=e.idempotency_key,
                    call_id=e.call_id,
                    metric=e.metric,
                    dimension=e.dimension,
                    quantity=e.quantity,
                    unit="unit",
                    provider=e.provider,
                    provider_cost=e.provider_cost,
                    occurred_at=e.occurred_at,
                    properties=e.properties,
                )
                for e in base[i : i + batch]
            ],
            ignore_conflicts=True,
        )
    base_s = time.perf_counter() - started
    return {"n": n, "batch": batch, "ours_s": ours_s, "replay_s": replay_s, "baseline_s": base_s}


def python_loop_totals(client, increment: int, minimum: int):
    """Baseline: aggregate in Python by streaming every row (what we avoid)."""
    from apps.billing.models import UsageEvent
    from apps.billing.pricing import billable_call_seconds

    per_call = defaultdict(Decimal)
    totals = defaultdict(Decimal)
    costs = defaultdict(Decimal)
    rows = UsageEvent.objects.filter(
        client=client, occurred_at__gte=MARCH_START, occurred_at__lt=datetime(2025, 4, 1, tzinfo=UTC)
    ).values_list("call_id", "metric", "dimension", "quantity", "provider_cost")
    for call_id, metric, dimension, quantity, cost in rows.iterator(chunk_size=20000):
        if metric.startswith("call_seconds"):
            per_call[(metric, dimension, call_id)] += quantity
        else:
            totals[(metric, dimension)] += quantity
        costs[(metric, dimension)] += cost
    for (metric, dimension, _), seconds in per_call.items():
        totals[(metric, dimension)] += billable_call_seconds(seconds, increment=increment, minimum=minimum)
    return totals, costs


def bench_one_client(client, n: int) -> dict:
    from apps.billing.selectors import period_rate
    from apps.billing.services import invoice_finalize, invoice_generate, invoice_render_documents

    bulk_sql_events(client.pk, n, "big-")
    started = time.perf_counter()
    invoice = invoice_generate(client=client, period_start=MARCH)
    generate_s = time.perf_counter() - started
    started = time.perf_counter()
    invoice = invoice_finalize(invoice_id=invoice.pk, render_documents=False)
    finalize_s = time.perf_counter() - started
    started = time.perf_counter()
    invoice_render_documents(invoice_id=invoice.pk)
    documents_s = time.perf_counter() - started

    started = time.perf_counter()
    totals, _ = python_loop_totals(client, 60, 0)
    baseline_s = time.perf_counter() - started
    started = time.perf_counter()
    rating = period_rate(client=client, period_start=MARCH)
    sql_rate_s = time.perf_counter() - started
    # Both ways must agree on the quantities.
    sql_totals = {(t.metric, t.dimension): t.quantity for t in rating.usage.totals}
    assert {k: Decimal(v) for k, v in totals.items()} == sql_totals, (totals, sql_totals)
    return {
        "n": n,
        "generate_s": generate_s,
        "finalize_s": finalize_s,
        "documents_s": documents_s,
        "baseline_s": baseline_s,
        "sql_rate_s": sql_rate_s,
        "total": invoice.total,
        "lines": invoice.lines.count(),
    }


def bench_month_end(clients, per_client: int) -> dict:
    from apps.billing.services import (
        invoice_finalize,
        invoice_generate,
        invoice_generate_and_finalize,
        invoice_render_documents,
    )

    for client in clients:
        bulk_sql_events(client.pk, per_client, f"me-{client.pk}-")
    started = time.perf_counter()
    invoices = [
        invoice_finalize(invoice_id=invoice_generate(client=c, period_start=MARCH).pk, render_documents=False)
        for c in clients
    ]
    rated_s = time.perf_counter() - started
    started = time.perf_counter()
    for invoice in invoices:
        invoice_render_documents(invoice_id=invoice.pk)
    documents_s = time.perf_counter() - started
    # Re-run: idempotent, nothing changes.
    started = time.perf_counter()
    again = [invoice_generate_and_finalize(client=c, period_start=MARCH, finalize=True) for c in clients]
    rerun_s = time.perf_counter() - started
    assert [i.number for i in again] == [i.number for i in invoices]
    # Aggregation alone, both ways, same clients: SQL GROUP BY vs a Python loop over the rows.
    from apps.billing.periods import period_bounds
    from apps.billing.selectors import usage_totals

    started = time.perf_counter()
    for client in clients:
        start, end = period_bounds(MARCH, client.timezone)
        usage_totals(client_id=client.pk, start=start, end=end, currency="USD", increment=60, minimum=0)
    sql_agg_s = time.perf_counter() - started
    started = time.perf_counter()
    for client in clients:
        python_loop_totals(client, 60, 0)
    baseline_s = time.perf_counter() - started
    return {
        "sql_agg_s": sql_agg_s,
        "clients": len(clients),
        "per_client": per_client,
        "rated_s": rated_s,
        "documents_s": documents_s,
        "rerun_s": rerun_s,
        "baseline_s": baseline_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--per-client", type=int, default=10_000)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()

    setup_db()
    clients = make_clients(args.clients + 2)
    make_card()
    try:
        ingest = bench_ingestion(clients[0], args.ingest, args.batch)
        one = bench_one_client(clients[1], args.events)
        month = bench_month_end(clients[2:], args.per_client)
    finally:
        sql(TRUNCATE)
        sql("DELETE FROM tenancy_client WHERE slug LIKE 'bench-%%'")

    ours_rate = ingest["n"] / ingest["ours_s"]
    base_rate = ingest["n"] / ingest["baseline_s"]
    one_total = one["generate_s"] + one["finalize_s"]
    report = f"""
## Billing (apps/billing) — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

Command: `DJANGO_SETTINGS_MODULE=config.settings.test .venv/bin/python benchmarks/billing_bench.py --ingest {args.ingest} --batch {args.batch} --events {args.events} --clients {args.clients} --per-client {args.per_client} --write-results`
Machine: {os.cpu_count()} cores, Python {platform.python_version()}, embedded PostgreSQL on a unix socket.

| What | Ours | Baseline (same run) | Ratio |
|---|---|---|---|
| Ingest {ingest["n"]:,} events, batches of {ingest["batch"]:,} (`usage_ingest`: COPY to a temp table, INSERT … SELECT … ON CONFLICT DO NOTHING) | {ours_rate:,.0f} events/s ({ingest["ours_s"]:.2f} s) | ORM `bulk_create(ignore_conflicts=True)`: {base_rate:,.0f} events/s ({ingest["baseline_s"]:.2f} s) | {ours_rate / base_rate:.1f}× |
| Re-send the same {ingest["n"]:,} events (all duplicates, nothing stored) | {ingest["n"] / ingest["replay_s"]:,.0f} events/s | — | — |
| Invoice one client over {one["n"]:,} events: generate (SQL GROUP BY + rating + lines) + finalise | {one_total:.2f} s (generate {one["generate_s"]:.2f} s, finalise {one["finalize_s"]:.3f} s) | — | — |
| … of which aggregation + rating (`period_rate`, SQL GROUP BY) | {one["sql_rate_s"]:.2f} s | Python loop over the same rows (aggregation only): {one["baseline_s"]:.2f} s | {one["baseline_s"] / one["sql_rate_s"]:.1f}× faster |
| … its PDF + usage CSV ({one["n"]:,} rows via COPY) | {one["documents_s"]:.2f} s | — | — |
| Month-end, {month["clients"]} clients × {month["per_client"]:,} events: generate + finalise (aggregate, rate, write lines, number) | {month["rated_s"]:.2f} s ({month["rated_s"] / month["clients"] * 1000:.0f} ms per client) | — | — |
| … of which aggregation for all {month["clients"]} clients (SQL GROUP BY) | {month["sql_agg_s"]:.2f} s | Python loop over the same rows: {month["baseline_s"]:.2f} s | {month["baseline_s"] / month["sql_agg_s"]:.1f}× faster |
| … PDFs + CSVs for those {month["clients"]} invoices (WeasyPrint font subsetting dominates) | {month["documents_s"]:.2f} s ({month["documents_s"] / month["clients"] * 1000:.0f} ms each) | — | — |
| Month-end total incl. documents | {month["rated_s"] + month["documents_s"]:.2f} s | — | — |
| … re-running the month-end (idempotent no-op) | {month["rerun_s"]:.2f} s | — | — |

Targets: ingestion ≥ 20,000 events/s → {"met" if ours_rate >= 20000 else "NOT met"}; one client with {one["n"]:,} events (target: 1,000,000) ≤ 5 s → {"met" if one_total <= 5 else "NOT met"} (generate + finalise; documents reported separately).
The {one["n"]:,}-event invoice totals {one["total"]} USD over {one["lines"]} lines; the SQL and Python aggregations were checked to agree exactly.
"""
    print(report)
    if args.write_results:
        with open(Path(__file__).resolve().parent / "RESULTS.md", "a") as handle:
            handle.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
