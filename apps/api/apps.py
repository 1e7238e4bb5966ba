from django.apps import AppConfig


class ApiConfig(AppConfig):
    """Per-client API keys (tenant schema) and the bearer auth of the public API."""

    name = "apps.api"
    label = "api"
    verbose_name = "API keys"
