"""The agency's own provider keys (public schema). A client uses one only when
the agency allows it (every client, or an allow-list) and only as a fallback:
the client's own keys for that vendor come first (apps.providers.services)."""
from __future__ import annotations

from django.db import models

from apps.core.crypto import EncryptedTextField

AGENCY_KEY_PREFIX = "agency:"


class AgencyProviderAccount(models.Model):
    """One agency API key for one vendor; same shape as a client's ProviderAccount."""

    provider = models.CharField(max_length=40, db_index=True)
    label = models.CharField(max_length=100, blank=True)
    api_key = EncryptedTextField(blank=True)
    base_url = models.CharField(max_length=300, blank=True)
    region = models.CharField(max_length=60, blank=True)
    secret = EncryptedTextField(blank=True)
    max_concurrency = models.PositiveIntegerField(
        default=0, help_text="Concurrent calls this key may serve across all clients; 0 = no cap."
    )
    cooldown_until = models.DateTimeField(null=True, blank=True, help_text="Rate-limited: skipped until then.")
    all_clients = models.BooleanField(default=False, help_text="Every client may fall back to this key.")
    allowed_clients = models.ManyToManyField(
        "tenancy.Client", blank=True, related_name="agency_provider_accounts",
        help_text="Clients that may fall back to this key (ignored when 'all clients' is on).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider", "id"]
        verbose_name = "agency provider key"

    def __str__(self) -> str:
        return f"{self.provider} · {self.label or self.pk} (agency)"

    @property
    def key_ref(self) -> str:
        """How calls record this key: "agency:<id>" (a client's own key is "<id>")."""
        return f"{AGENCY_KEY_PREFIX}{self.pk}"
