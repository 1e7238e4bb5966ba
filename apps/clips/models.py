"""The clip library of one client (tenant schema): pre-recorded audio an agent plays
instead of synthesising the words. Stored normalised for telephony (8 kHz mono 16-bit
PCM WAV) whatever was uploaded, with its exact words and tags."""
from __future__ import annotations

from django.db import models

# Tags a clip may carry: what it is for. `hold` clips play while a tool call or the
# pre-call fetch runs; `greeting` / `transition` clips are named on the start node / edges.
CLIP_TAGS = ("greeting", "confirmation", "hold", "transition", "apology", "closing", "other")


class Clip(models.Model):
    # A clip of the whole client (agent empty) or of one agent only.
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="clips")
    # What the LLM writes to play it: [[clip:<name>]]. Lowercase letters, digits, - and _.
    name = models.SlugField(max_length=64)
    words = models.TextField(help_text="The exact words of the recording (the transcript and the LLM see them).")
    tags = models.JSONField(default=list, blank=True)
    interruptible = models.BooleanField(default=True, help_text="The caller may talk over it (barge-in).")
    audio = models.FileField(upload_to="clips/", max_length=300)  # 8 kHz mono 16-bit PCM WAV
    duration_ms = models.PositiveIntegerField()
    original_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name"], condition=models.Q(agent__isnull=True),
                                    name="clip_client_name_unique"),
            models.UniqueConstraint(fields=["agent", "name"], condition=models.Q(agent__isnull=False),
                                    name="clip_agent_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name
