"""Reads of the agency's provider keys. Callable from a client's schema: the
public schema is on every tenant connection's search path."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.providers_agency.models import AgencyProviderAccount


def agency_accounts_for_client(*, client, provider: str) -> QuerySet[AgencyProviderAccount]:
    """Active agency keys of `provider` that `client` may use, oldest first."""
    return (
        AgencyProviderAccount.objects.filter(provider=provider, is_active=True)
        .filter(Q(all_clients=True) | Q(allowed_clients=client))
        .distinct()
        .order_by("id")
    )


def agency_accounts_exist(*, provider: str) -> bool:
    return AgencyProviderAccount.objects.filter(provider=provider, is_active=True).exists()
