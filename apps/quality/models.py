"""Post-call QA (tenant schema): per-agent settings and one result per call (a re-run
replaces it). Written only through apps.quality.services."""
from __future__ import annotations

from django.core.validators import MaxValueValidator
from django.db import models

# The documented default tag set (README.md, "Post-call QA"); an agent adds its own.
DEFAULT_TAGS = (
    "caller asked for a human",
    "agent repeated itself",
    "caller detected AI",
    "caller was frustrated",
    "caller was confused",
    "agent could not answer",
    "agent interrupted the caller",
    "call ended abruptly",
    "wrong number",
)
DEFAULT_DISPOSITIONS = ("booked", "not interested", "call back", "resolved", "transferred", "other")


class QAConfig(models.Model):
    """QA settings of one agent. No row: QA is off for that agent."""

    agent = models.OneToOneField("agents.Agent", on_delete=models.CASCADE, related_name="qa_config")
    enabled = models.BooleanField(default=True)
    sample_rate_percent = models.PositiveSmallIntegerField(
        default=100, validators=[MaxValueValidator(100)], help_text="Share of eligible calls reviewed (0–100).")
    min_duration_secs = models.PositiveIntegerField(default=10, help_text="Shorter calls are not reviewed.")
    skip_voicemail = models.BooleanField(default=True, help_text="Do not review calls that reached a voicemail.")
    # A JSON Schema (checked with jsonschema when saved); {} = no extraction.
    extraction_schema = models.JSONField(default=dict, blank=True)
    dispositions = models.JSONField(default=list, blank=True, help_text="Empty: the default set.")
    custom_tags = models.JSONField(default=list, blank=True, help_text="Added to the default tag set.")
    # Which LLM reviews: empty = the agent's own LLM vendor / model. Must speak OpenAI's chat API.
    llm_provider = models.CharField(max_length=40, blank=True)
    llm_model = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"QA settings of {self.agent}"

    @property
    def disposition_choices(self) -> list[str]:
        return list(self.dispositions) or list(DEFAULT_DISPOSITIONS)

    @property
    def tag_choices(self) -> list[str]:
        return list(DEFAULT_TAGS) + [tag for tag in self.custom_tags if tag not in DEFAULT_TAGS]


class QAResult(models.Model):
    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        FLAGGED = "flagged", "Flagged"  # the model's answer did not validate twice: a person should look
        FAILED = "failed", "Failed"  # the LLM could not be reached / is misconfigured

    class Sentiment(models.TextChoices):
        POSITIVE = "positive", "Positive"
        NEUTRAL = "neutral", "Neutral"
        NEGATIVE = "negative", "Negative"
        MIXED = "mixed", "Mixed"

    call = models.OneToOneField("calls.Call", on_delete=models.CASCADE, related_name="qa_result")
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run_number = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices)
    score = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)  # 1–10
    score_reasons = models.JSONField(default=list, blank=True)
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices, blank=True)
    summary = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    confusion_moments = models.JSONField(default=list, blank=True)  # [{"turn": 2, "note": "..."}]
    dead_air = models.JSONField(default=list, blank=True)  # [{"turn": 3, "ms": 4200}], from the trace
    instruction_adherence = models.JSONField(default=dict, blank=True)  # {"score": 8, "notes": "..."}
    tools = models.JSONField(default=list, blank=True)  # [{"turn", "name", "succeeded", "error"}], from the record
    disposition = models.CharField(max_length=60, blank=True)
    extraction = models.JSONField(null=True, blank=True)
    extraction_valid = models.BooleanField(default=False)
    extraction_errors = models.TextField(blank=True)
    flag_reason = models.TextField(blank=True)
    provider = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    # A manual re-run asked for run `requested_run`; the task runs it once.
    requested_run = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"QA of {self.call_id}: {self.status} {self.score or ''}"
