"""The record of a call (tenant schema): one Call row, its Turns, ToolCalls and
CallUsage rows. Written only through apps.calls.services."""
from __future__ import annotations

import uuid

from django.db import models


class Call(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"
        # "Talk to this agent": the browser's microphone and speaker, no carrier leg.
        WEB = "web", "Browser"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RINGING = "ringing", "Ringing"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        BUSY = "busy", "Busy"
        NO_ANSWER = "no_answer", "No answer"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"
        REFUSED = "refused", "Refused"

    class EndReason(models.TextChoices):
        CALLER_HUNG_UP = "caller_hung_up", "Caller hung up"
        AGENT_ENDED = "agent_ended", "Agent ended"
        TRANSFER = "transfer", "Transferred"
        MAX_DURATION = "max_duration", "Maximum duration"
        IDLE_TIMEOUT = "idle_timeout", "Idle timeout"
        ERROR = "error", "Error"
        CLIENT_SUSPENDED = "client_suspended", "Client suspended"
        USAGE_CAP = "usage_cap", "Usage cap reached"
        NO_ANSWER = "no_answer", "No answer"
        BUSY = "busy", "Busy"
        FAILED = "failed", "Failed"
        # Refused at the webhook: the dialled number is not an active number of this client.
        UNKNOWN_NUMBER = "unknown_number", "Unknown number"
        # The process running the call died; the sweeper ended it at its last known moment.
        LOST = "lost", "Lost (runtime died)"
        # An outbound call reached an answering machine: the agent left its voicemail message (if any).
        VOICEMAIL = "voicemail", "Voicemail"

    class AnsweredBy(models.TextChoices):
        HUMAN = "human", "Human"
        MACHINE = "machine", "Machine"
        UNKNOWN = "unknown", "Unknown"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    from_number = models.CharField(max_length=32, blank=True)
    to_number = models.CharField(max_length=32, blank=True)
    carrier = models.CharField(max_length=16, blank=True)
    carrier_call_id = models.CharField(max_length=100, blank=True, db_index=True)
    stream_id = models.CharField(max_length=100, blank=True)
    phone_number = models.ForeignKey("telephony.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    agent_version = models.ForeignKey("agents.AgentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="calls")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    carrier_status = models.CharField(max_length=32, blank=True)
    carrier_duration_secs = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_secs = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    error = models.TextField(blank=True)
    # The runtime's heartbeat while the call is live: the sweeper ends calls whose
    # heartbeat stopped (end reason "lost") and bills them up to this moment.
    last_activity_at = models.DateTimeField(null=True, blank=True)
    # The outbox: CallUsage rows are written with the end of the call; this is set
    # once billing's ledger has them (apps.calls.tasks ships them, retrying).
    usage_reported_at = models.DateTimeField(null=True, blank=True)
    # Which provider key served each stage: a key ref, "12" (this client's ProviderAccount 12)
    # or "agency:3" (the agency's AgencyProviderAccount 3).
    stt_provider = models.CharField(max_length=40, blank=True)
    stt_key_id = models.CharField(max_length=40, blank=True, default="")
    llm_provider = models.CharField(max_length=40, blank=True)
    llm_key_id = models.CharField(max_length=40, blank=True, default="")
    tts_provider = models.CharField(max_length=40, blank=True)
    tts_key_id = models.CharField(max_length=40, blank=True, default="")
    # A speech-to-speech agent's one stage (its stt/llm/tts fields stay empty).
    s2s_provider = models.CharField(max_length=40, blank=True, default="")
    s2s_key_id = models.CharField(max_length=40, blank=True, default="")
    # Outbound: who picked up, by the carrier's answering-machine detection or the runtime's
    # classifier of the callee's first words ("" when nobody asked).
    answered_by = models.CharField(max_length=10, choices=AnsweredBy.choices, blank=True)
    transferred_to = models.CharField(max_length=32, blank=True)
    transferred_at = models.DateTimeField(null=True, blank=True)
    # Outbound: one call per campaign contact / caller-supplied key.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    # A campaign contact's extra CSV columns: `{{contact.<column>}}` in the agent's prompts and lines.
    variables = models.JSONField(default=dict, blank=True)
    # A test call (the agent editor's "Talk to this agent"): recorded and traced like any call,
    # never billed to the client (its usage stays out of the ledger; the agency sees it as test usage).
    is_test = models.BooleanField(default=False)
    # The call's OpenTelemetry trace (apps.voice.telemetry; the call's UUID as 32 hex digits) when it
    # was traced, and its page in Langfuse when a Langfuse project received it.
    trace_id = models.CharField(max_length=32, blank=True)
    trace_url = models.URLField(max_length=500, blank=True)
    recording = models.FileField(upload_to="recordings/", blank=True, max_length=300)
    transcript = models.FileField(upload_to="transcripts/", blank=True, max_length=300)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A carrier that retries its webhook never makes a second call.
            models.UniqueConstraint(fields=["carrier", "carrier_call_id"], condition=~models.Q(carrier_call_id=""),
                                    name="call_carrier_call_id_unique"),
        ]
        indexes = [
            models.Index(fields=["ended_at", "usage_reported_at"], name="call_usage_outbox"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.from_number} → {self.to_number} ({self.status})"

    @property
    def is_ended(self) -> bool:
        return self.ended_at is not None


class CallUsage(models.Model):
    """One metered quantity of a call: metric + dimension (model / voice)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="usage")
    metric = models.CharField(max_length=40)  # apps.billing.metrics.Metric values
    dimension = models.CharField(max_length=100, blank=True)
    provider = models.CharField(max_length=40, blank=True)
    quantity = models.DecimalField(max_digits=16, decimal_places=3)

    class Meta:
        ordering = ["metric", "dimension"]
        constraints = [models.UniqueConstraint(fields=["call", "metric", "dimension"], name="call_usage_unique")]

    def __str__(self) -> str:
        return f"{self.metric}{f' ({self.dimension})' if self.dimension else ''}: {self.quantity.normalize():f}"


class Turn(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    user_text = models.TextField(blank=True)
    bot_text = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    interrupted = models.BooleanField(default=False)
    stt_final_ms = models.PositiveIntegerField(null=True, blank=True)
    llm_ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    tts_ttfb_ms = models.PositiveIntegerField(null=True, blank=True)
    voice_to_voice_ms = models.PositiveIntegerField(null=True, blank=True)
    # Why the caller's turn ended: "end_of_turn_model", "silence" or "timeout" (apps.voice.turns); "" without speech.
    end_of_turn = models.CharField(max_length=20, blank=True)
    errors = models.TextField(blank=True, help_text="One error per line.")
    node = models.CharField(max_length=64, blank=True, help_text="The workflow node the agent answered from.")
    # Pre-recorded clips played in this turn instead of text-to-speech: [{"name", "source"}]
    # (source: llm, greeting, hold, transition; apps/voice/processors/clips.py).
    clips = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["call", "index"]
        constraints = [models.UniqueConstraint(fields=["call", "index"], name="turn_index_unique")]

    def __str__(self) -> str:
        said = (self.user_text[:40] + "…") if len(self.user_text) > 40 else self.user_text
        return f"Turn {self.index}" + (f": “{said}”" if said else "")


class ToolCall(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="tool_calls")
    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="tool_calls")
    name = models.CharField(max_length=60)
    arguments = models.JSONField(default=dict, blank=True)
    result = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["turn", "id"]

    def __str__(self) -> str:
        return f"{self.name} (turn {self.turn.index})" if self.turn_id else self.name
