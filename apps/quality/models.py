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


# --- AI test personas and regression suites ------------------------------------------------------


class Persona(models.Model):
    """Who the test caller is and what they want; an LLM plays them (apps.quality.personas)."""

    name = models.CharField(max_length=120, unique=True)
    goal = models.TextField(help_text="What the caller wants from the call.")
    mood = models.CharField(max_length=120, blank=True, help_text="e.g. calm, in a hurry, annoyed.")
    facts = models.TextField(blank=True, help_text="What the caller knows (name, dates, account number...), one per line.")
    speaking_style = models.TextField(blank=True, help_text="How they talk: short answers, rambles, interrupts...")
    opening_line = models.TextField(blank=True, help_text="Their first words after the greeting; blank: the LLM decides.")
    # Which LLM plays the persona: empty = the agent's own LLM vendor and model. Must speak OpenAI's chat API.
    llm_provider = models.CharField(max_length=40, blank=True)
    llm_model = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Suite(models.Model):
    """An agent's regression suite: scenarios run together against a draft or a published version."""

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="test_suites")
    name = models.CharField(max_length=120)
    # Run on a schedule against the published version every N hours (0 = never): a django-celery-beat
    # PeriodicTask in the client's schema, kept in step by apps.quality.suite_services.suite_save.
    schedule_every_hours = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent", "name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"], name="suite_agent_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.agent})"


class Scenario(models.Model):
    """A persona plus what success looks like (`criteria`, apps/quality/criteria.schema.json)."""

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="scenarios")
    name = models.CharField(max_length=120)
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="scenarios")
    criteria = models.JSONField(default=list)
    max_turns = models.PositiveSmallIntegerField(default=10, help_text="The caller gives up after this many lines.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["suite", "name"]
        constraints = [models.UniqueConstraint(fields=["suite", "name"], name="scenario_suite_name_unique")]

    def __str__(self) -> str:
        return self.name


class SuiteRun(models.Model):
    class Target(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published version"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"  # a scenario failed a criterion
        ERROR = "error", "Error"  # a scenario could not run (no key, the LLM down...)

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="runs")
    target = models.CharField(max_length=12, choices=Target.choices)
    # The published version the run was built on (a draft run: the version its draft started from).
    version_number = models.PositiveIntegerField(null=True, blank=True)
    # sha256 of the configuration tested (settings + graph): the publish gate compares it with the draft's.
    config_fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=12, default="manual")  # manual / schedule / api
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.suite} run {self.pk}: {self.status}"


class ScenarioRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        ERROR = "error", "Error"

    suite_run = models.ForeignKey(SuiteRun, on_delete=models.CASCADE, related_name="scenario_runs")
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # [{"speaker": "agent"|"caller", "text", "node", "tool_calls", "first_text_ms"}]
    transcript = models.JSONField(default=list, blank=True)
    # [{"index", "type", "passed", "detail"}], one per criterion, in the scenario's order
    criteria_results = models.JSONField(default=list, blank=True)
    failing_criterion = models.JSONField(null=True, blank=True)  # the first criterion that failed
    failure = models.TextField(blank=True)  # what failed, in words (or why it could not run)
    end_reason = models.CharField(max_length=20, blank=True)
    variables = models.JSONField(default=dict, blank=True)  # extracted by the graph during the run
    started_at = models.DateTimeField(null=True, blank=True)  # claimed by a worker
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["suite_run", "scenario__name"]
        constraints = [models.UniqueConstraint(fields=["suite_run", "scenario"], name="scenario_run_unique")]


class CallReplay(models.Model):
    """A traced call's caller turns replayed against another agent version, side by side."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        ERROR = "error", "Error"

    call = models.ForeignKey("calls.Call", on_delete=models.CASCADE, related_name="replays")
    target = models.CharField(max_length=12, choices=SuiteRun.Target.choices, default=SuiteRun.Target.DRAFT)
    version_number = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # [{"index", "at_secs", "user_text", "original_bot_text", "original_node", "replay_bot_text",
    #   "replay_node", "replay_tool_calls", "differs"}]; index -1 is the opening (greeting)
    turns = models.JSONField(default=list, blank=True)
    end_reason = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)  # claimed by a worker
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
