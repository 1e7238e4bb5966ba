"""Campaigns of one client (tenant schema): who to call (contacts from CSV), with which
agent and caller IDs, when (windows per weekday in a time zone, start/end), how fast
(concurrency, calls per second), how often (retry policy per outcome); each dial is an
attempt tied to its Call. The dialer (services.campaign_dispatch) claims contacts with
`FOR UPDATE SKIP LOCKED` and a lease, so no contact is dialled twice at once and a dead
worker's contacts return to the queue."""
from __future__ import annotations

from django.db import models

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Outcome(models.TextChoices):
    """What an attempt (and, at the end, a contact) came to."""

    COMPLETED = "completed", "Completed"
    NO_ANSWER = "no_answer", "No answer"
    BUSY = "busy", "Busy"
    FAILED = "failed", "Failed"
    VOICEMAIL = "voicemail", "Voicemail"
    DO_NOT_CALL = "do_not_call", "On the do-not-call list"
    # The dial never reached the carrier (the dialer stopped first): the contact is queued again.
    NOT_DIALLED = "not_dialled", "Not dialled"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Not reached before the end date"


# The outcomes a retry policy speaks about.
RETRYABLE_OUTCOMES = (Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED, Outcome.VOICEMAIL)


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    class PauseKind(models.TextChoices):
        NONE = "", "—"
        USER = "user", "Paused by a person"
        BREAKER = "breaker", "Too many failures"
        USAGE_CAP = "usage_cap", "Usage cap reached"
        ERROR = "error", "The platform refused to dial"

    name = models.CharField(max_length=200)
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="campaigns")
    # The caller-ID pool: dials rotate across these numbers.
    numbers = models.ManyToManyField("telephony.PhoneNumber", related_name="campaigns")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    pause_kind = models.CharField(max_length=16, choices=PauseKind.choices, blank=True, default="")
    pause_reason = models.CharField(max_length=300, blank=True)  # what the user sees
    timezone = models.CharField(max_length=64, default="UTC")  # contacts without their own
    # {"mon": [["09:00", "17:00"]], ...}: local times per weekday; {} = any time.
    windows = models.JSONField(default=dict, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    max_concurrent = models.PositiveIntegerField(default=5)
    calls_per_second = models.DecimalField(max_digits=6, decimal_places=2, default=1)
    # {"no_answer": {"attempts": 2, "delay_minutes": 60}, "busy": ..., "failed": ..., "voicemail": ...}:
    # `attempts` more dials after that outcome, each `delay_minutes` after the last ended.
    retry_policy = models.JSONField(default=dict, blank=True)
    # The circuit breaker: at >= breaker_failure_ratio failures among the last breaker_window dials, pause.
    breaker_window = models.PositiveIntegerField(default=20)
    breaker_failure_ratio = models.DecimalField(max_digits=4, decimal_places=2, default=0.5)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class CampaignContact(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"  # waiting for its turn (next_attempt_at) or its window
        DIALLING = "dialling", "Dialling"  # claimed by a dialer until lease_expires_at
        CALLING = "calling", "On a call"  # its attempt's call is live
        DONE = "done", "Done"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contacts")
    phone_number = models.CharField(max_length=32)  # E.164
    variables = models.JSONField(default=dict, blank=True)  # the CSV's other columns
    timezone = models.CharField(max_length=64, blank=True)  # blank: the campaign's
    row_number = models.PositiveIntegerField(default=0)  # in the uploaded CSV
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    attempts = models.PositiveIntegerField(default=0)  # attempts started (the current one's number)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # null: as soon as possible
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["row_number", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "phone_number"], name="campaign_contact_unique")]
        indexes = [models.Index(fields=["campaign", "status", "next_attempt_at"], name="campaign_contact_queue")]

    def __str__(self) -> str:
        return self.phone_number


class CampaignAttempt(models.Model):
    """One dial of a contact. Its idempotency key is the Call's: a dialer that died mid-dial
    and is replaced reuses the key and finds the Call instead of dialling again."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="attempts")
    contact = models.ForeignKey(CampaignContact, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=200, unique=True)
    call = models.ForeignKey("calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    from_number = models.CharField(max_length=32, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["contact", "number"]
        constraints = [models.UniqueConstraint(fields=["contact", "number"], name="campaign_attempt_unique")]

    def __str__(self) -> str:
        return f"{self.contact} #{self.number}"


class ContactImport(models.Model):
    """One CSV upload: what was imported and a per-row error report to download."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="imports")
    filename = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{"row": n, "phone_number": s, "error": s}]

    class Meta:
        ordering = ["-created_at"]


class DoNotCallEntry(models.Model):
    """The client's do-not-call list: campaigns never dial these numbers."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Added by a person"
        CALL = "call", "The person asked on a call"
        API = "api", "API"

    number = models.CharField(max_length=32, unique=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    reason = models.CharField(max_length=300, blank=True)
    call_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "do-not-call entry"
        verbose_name_plural = "do-not-call list"

    def __str__(self) -> str:
        return self.number
