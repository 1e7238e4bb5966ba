from celery import shared_task
from django.db import connection


@shared_task(name="core.schema_probe")
def schema_probe(marker: str) -> dict:
    """Reports the schema the ORM connection is in while a task runs; used by
    health checks and by the test that proves tasks run in their client's schema."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    from django.core.cache import cache

    cache.set(f"schema-probe:{marker}", schema, 60)
    return {"marker": marker, "schema": schema, "connection_schema": connection.schema_name}


def in_every_client(function, *, what: str) -> list:
    """Beat jobs that walk the clients: `function(client)` inside each client's schema, suspended
    clients too; one client's failure is logged and the others still run. The results, in order."""
    import logging

    from django_tenants.utils import tenant_context

    from apps.tenancy.selectors import client_list

    results = []
    for client in client_list(include_suspended=True):
        try:
            with tenant_context(client):
                results.append(function(client))
        except Exception:  # noqa: BLE001 - one client's trouble must not stop the others
            logging.getLogger(__name__).exception("%s failed for %s", what, client.schema_name)
    return results
