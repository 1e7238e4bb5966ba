from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    """Traces (OpenTelemetry export, Langfuse projects) and the agency's Prometheus metrics (public schema)."""

    name = "apps.observability"
    label = "observability"
    verbose_name = "Observability"
