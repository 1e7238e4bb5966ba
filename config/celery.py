"""Celery app. Tasks are tenant-aware: a task sent from inside a tenant's schema
context carries the schema name in its headers and runs inside that schema."""
import os

from tenant_schemas_celery.app import CeleryApp as TenantAwareCeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = TenantAwareCeleryApp("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
