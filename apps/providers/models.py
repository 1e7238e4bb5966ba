"""Provider credentials of one client (tenant schema). One row per key: a vendor
may have several, and calls rotate across them (see apps.providers.services)."""
from __future__ import annotations

from django.db import models

from apps.core.crypto import EncryptedTextField


class ProviderAccountBase(models.Model):
    """The shape of one API key for one vendor, shared by a client's key
    (ProviderAccount) and the agency's (apps.providers_agency). `provider` is a
    registry name ("deepgram", "openai", "azure_openai"...); a key serves every
    kind that vendor offers."""

    provider = models.CharField(max_length=40, db_index=True)
    label = models.CharField(max_length=100, blank=True)
    api_key = EncryptedTextField(blank=True)
    # Vendor extras that are not secret: base_url, region, endpoint, api_version...
    base_url = models.CharField(max_length=300, blank=True)
    region = models.CharField(max_length=60, blank=True)
    # Secrets beyond the API key (e.g. AWS secret access key), encrypted.
    secret = EncryptedTextField(blank=True)
    max_concurrency = models.PositiveIntegerField(default=0, help_text="Concurrent calls this key may serve; 0 = no cap.")
    cooldown_until = models.DateTimeField(null=True, blank=True, help_text="Rate-limited: skipped until then.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["provider", "id"]

    @property
    def last4(self) -> str:
        return self.api_key[-4:] if self.api_key else ""


class ProviderAccount(ProviderAccountBase):
    """One API key of this client for one vendor."""

    class Meta(ProviderAccountBase.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.provider} · {self.label or self.pk}"

    @property
    def key_ref(self) -> str:
        """How calls record this key: "<id>" (an agency key is "agency:<id>")."""
        return str(self.pk)
