"""Reads of webhook endpoints and the delivery log."""
from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("id")


def webhook_endpoint_get(*, endpoint_id) -> WebhookEndpoint:
    try:
        return WebhookEndpoint.objects.get(pk=endpoint_id)
    except (WebhookEndpoint.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such webhook endpoint.", details={"endpoint_id": str(endpoint_id)}) from None


def webhook_delivery_list(*, endpoint_id: int | None = None, status: str = "") -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.select_related("event", "endpoint").prefetch_related("attempt_log")
    if endpoint_id:
        deliveries = deliveries.filter(endpoint_id=endpoint_id)
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("-created_at", "-id")
