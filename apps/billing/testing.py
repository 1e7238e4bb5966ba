"""Helpers for test teardown and benchmarks only -- never imported by application code."""

from __future__ import annotations

from django.db import connection, transaction


def truncate_billing_tables(*tables: str, cascade: bool = False) -> None:
    """TRUNCATE billing tables past the BEFORE TRUNCATE guards (migration 0004).

    The guards honour `switchboard.allow_billing_truncate = 'on'`; it is set with
    SET LOCAL, so it lasts only for this one transaction and nothing else in the
    session (or in any other session) can truncate the ledger or invoices."""
    if any("billing_usageevent" in table for table in tables):
        tables = (*tables, "billing_usagemeter")  # the meter is derived from the ledger: they go together
    statement = f"TRUNCATE {', '.join(tables)}" + (" CASCADE" if cascade else "")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL switchboard.allow_billing_truncate = 'on'")
        cursor.execute(statement)
