from django.apps import AppConfig


class QualityConfig(AppConfig):
    """Post-call QA and structured extraction (tenant schema)."""

    name = "apps.quality"
    label = "quality"
    verbose_name = "Call quality"
