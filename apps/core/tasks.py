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
