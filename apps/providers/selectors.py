"""Reads of provider keys for the portal (tenant schema)."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.providers.models import ProviderAccount
from apps.providers_agency.models import AgencyProviderAccount


def provider_account_list() -> QuerySet[ProviderAccount]:
    return ProviderAccount.objects.order_by("-is_active", "provider", "id")


def agency_accounts_available(*, client) -> list:
    """The agency's keys this client may fall back to (shown by vendor and label only)."""
    return list(
        AgencyProviderAccount.objects.filter(is_active=True)
        .filter(Q(all_clients=True) | Q(allowed_clients=client)).distinct().order_by("provider", "id")
    )
