"""Celery app. Tasks are tenant-aware: a task sent from inside a tenant's schema
context carries the schema name in its headers and runs inside that schema.

Importing this module chooses no settings: the entry points do (manage.py,
config/asgi.py, and the Procfile / Dockerfile for `celery -A config.celery`), so a
script that imports `config` before picking its settings keeps its choice."""
from tenant_schemas_celery.app import CeleryApp as TenantAwareCeleryApp

app = TenantAwareCeleryApp("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
