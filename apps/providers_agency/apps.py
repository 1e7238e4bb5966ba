from django.apps import AppConfig


class ProvidersAgencyConfig(AppConfig):
    """The agency's own provider keys (public schema), lent to the clients it allows."""

    name = "apps.providers_agency"
    label = "providers_agency"
    verbose_name = "Agency provider keys"
