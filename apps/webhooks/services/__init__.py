"""Webhook writes. Import from here: `from apps.webhooks.services import webhook_event_emit`."""
from apps.webhooks.services.deliveries import (  # noqa: F401
    AttemptOutcome,
    webhook_backoff_secs,
    webhook_deliveries_requeue_due,
    webhook_delivery_attempt,
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_event_emit,
    webhook_headers,
    webhook_secret_new,
    webhook_url_check,
)
from apps.webhooks.services.emitters import (  # noqa: F401
    webhook_call_ended_emit,
    webhook_call_started_emit,
    webhook_cap_reached_emit,
    webhook_invoice_finalized_emit,
    webhook_qa_completed_emit,
)
