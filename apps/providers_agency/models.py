"""The agency's own provider keys (public schema). A client uses one only when
the agency allows it (every client, or an allow-list) and only as a fallback:
the client's own keys for that vendor come first (apps.providers.services)."""
from __future__ import annotations

from django.db import models

from apps.providers.models import ProviderAccountBase

AGENCY_KEY_PREFIX = "agency:"


class AgencyProviderAccount(ProviderAccountBase):
    """One agency API key for one vendor; the same fields as a client's ProviderAccount,
    plus which clients may fall back to it."""

    max_concurrency = models.PositiveIntegerField(
        default=0, help_text="Concurrent calls this key may serve across all clients; 0 = no cap."
    )
    all_clients = models.BooleanField(default=False, help_text="Every client may fall back to this key.")
    allowed_clients = models.ManyToManyField(
        "tenancy.Client", blank=True, related_name="agency_provider_accounts",
        help_text="Clients that may fall back to this key (ignored when 'all clients' is on).",
    )

    class Meta(ProviderAccountBase.Meta):
        verbose_name = "agency provider key"

    def __str__(self) -> str:
        return f"{self.provider} · {self.label or self.pk} (agency)"

    @property
    def key_ref(self) -> str:
        """How calls record this key: "agency:<id>" (a client's own key is "<id>")."""
        return f"{AGENCY_KEY_PREFIX}{self.pk}"
