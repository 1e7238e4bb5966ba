"""Where call traces go besides the agency's OTLP collector (settings): Langfuse projects
(public schema). A project without a client is the agency's and receives every call; a
client's own project receives that client's calls. Langfuse takes OTLP/HTTP at
`<host>/api/public/otel/v1/traces` with Basic auth of the project's key pair."""
from __future__ import annotations

from django.db import models
from django.db.models import Value
from django.db.models.functions import Coalesce

from apps.core.crypto import EncryptedTextField


class LangfuseProject(models.Model):
    client = models.OneToOneField("tenancy.Client", null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="langfuse_project",
                                  help_text="Empty: the agency's own project, which receives every client's calls.")
    host = models.URLField(max_length=300, default="https://cloud.langfuse.com",
                           help_text="Langfuse's base URL (cloud or self-hosted).")
    public_key = models.CharField(max_length=200)
    secret_key = EncryptedTextField()
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One agency-wide project (client empty) and one per client.
            models.UniqueConstraint(Coalesce("client", Value(0)), name="langfuse_project_one_per_scope"),
        ]

    def __str__(self) -> str:
        return f"Langfuse ({self.client.name if self.client_id else 'agency-wide'})"
