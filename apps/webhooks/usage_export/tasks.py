"""`usage_export.run` (beat, every minute, public schema): export to every enabled
target; a failing receiver is tried again on the next tick, resuming its batch."""
from __future__ import annotations

import logging

from celery import shared_task

from apps.core.errors import ProviderError

logger = logging.getLogger(__name__)


@shared_task(name="usage_export.run")
def run() -> dict:
    from apps.webhooks.usage_export.models import Target
    from apps.webhooks.usage_export.services import usage_export_run

    results = {}
    for target in Target.values:
        try:
            report = usage_export_run(target=target)
            results[target] = {"sent": report.sent, "skipped": report.skipped, "busy": report.busy}
        except ProviderError as error:
            results[target] = {"error": error.message}
    return results
