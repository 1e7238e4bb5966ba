"""Webhooks out (tenant schema). An event is stored once; each subscribed endpoint
gets one delivery row, which is the delivery's whole state (a worker that dies
mid-request loses nothing: the row is still due and is sent again with the same
webhook-id). Written only through apps.webhooks.services."""
from __future__ import annotations

import json
import uuid

from django.db import models

from apps.core.crypto import EncryptedTextField


class WebhookEndpoint(models.Model):
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # Event types (apps.webhooks.events.EVENT_TYPES) this endpoint receives.
    events = models.JSONField(default=list)
    # The Standard Webhooks signing secret: "whsec_" + base64 of 32 random bytes.
    secret = EncryptedTextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=40, db_index=True)
    # What makes the event once-only ("call.ended:<call id>"): a task run twice stores it once.
    dedupe_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"

    def body(self) -> str:
        """The exact bytes signed and sent, the same on every attempt and replay."""
        return json.dumps({"type": self.type, "timestamp": self.created_at.isoformat(), "data": self.data},
                          separators=(",", ":"), sort_keys=True, default=str)


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # due at next_attempt_at (first try or a retry)
        SUCCEEDED = "succeeded", "Succeeded"
        DEAD = "dead", "Dead-lettered"  # gave up after WEBHOOK_MAX_ATTEMPTS; replay re-queues it

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    # The `webhook-id` header: stable for this delivery across retries and replays, so a
    # receiver that dedupes on it never processes the event twice.
    message_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts since it was queued (or replayed).")
    next_attempt_at = models.DateTimeField(db_index=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_response_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.message_id} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """The delivery log: one row per HTTP attempt."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    replay = models.BooleanField(default=False, help_text="Made after a manual replay.")

    class Meta:
        ordering = ["delivery", "number"]
