"""Usage export (public schema, one agency): which targets are on, and the export
state of every ledger event per target. An event gets one UsageExportItem per target
(unique), inside a batch; a batch is sent until it is acknowledged, always with the
same identifiers, so the export resumes where it stopped and no event is counted
twice by the receiving system."""
from __future__ import annotations

from django.db import models

from apps.core.crypto import EncryptedTextField


class Target(models.TextChoices):
    STRIPE = "stripe", "Stripe Billing meter events"
    WEBHOOK = "webhook", "Signed webhook of usage batches"


class UsageExportSettings(models.Model):
    """The agency's export settings: one row."""

    stripe_enabled = models.BooleanField(default=False)
    stripe_secret_key = EncryptedTextField(blank=True)
    # {"call_seconds_inbound": "voice_minutes_in", ...}: the Stripe meter's event name per
    # metric; a metric not listed goes out as "switchboard_<metric>".
    stripe_event_names = models.JSONField(default=dict, blank=True)
    webhook_enabled = models.BooleanField(default=False)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret = EncryptedTextField(blank=True, help_text="Standard Webhooks secret (whsec_…); made for you.")
    batch_size = models.PositiveIntegerField(default=200)
    export_from = models.DateTimeField(null=True, blank=True,
                                       help_text="Only events recorded from this moment on (empty: the whole ledger).")

    class Meta:
        verbose_name = "usage export settings"
        verbose_name_plural = "usage export settings"

    def __str__(self) -> str:
        return "Usage export settings"

    @classmethod
    def load(cls) -> UsageExportSettings:
        row, _ = cls.objects.get_or_create(pk=1)
        return row


class UsageExportBatch(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"

    target = models.CharField(max_length=10, choices=Target.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "usage export batches"

    def __str__(self) -> str:
        return f"{self.target} batch {self.pk} ({self.status})"

    @property
    def message_id(self) -> str:
        """The webhook-id of a webhook batch: the same on every resend."""
        return f"usagebatch_{self.pk}"


class UsageExportItem(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"  # e.g. no Stripe customer for the client

    target = models.CharField(max_length=10, choices=Target.choices)
    # No database constraint: the ledger is append-only, and its own tooling (tests, benchmarks)
    # truncates it, which a referencing constraint would refuse.
    event = models.ForeignKey("billing.UsageEvent", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    batch = models.ForeignKey(UsageExportBatch, on_delete=models.CASCADE, related_name="items")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["target", "event"], name="usage_export_once_per_target")]
