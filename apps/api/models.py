"""API keys of one client (tenant schema). Only a SHA-256 of the key is stored:
the key itself is shown once, when it is made. A key lives in its client's
schema, so it can only ever authenticate on that client's host."""
from __future__ import annotations

from django.db import models


class ApiKey(models.Model):
    name = models.CharField(max_length=100)
    # The first characters of the key, kept to tell keys apart in lists ("sb_AbCd1234…").
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
