from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Webhooks out (tenant schema): a client's endpoints, the events it subscribes to,
    and one delivery row per (event, endpoint) that is the delivery's whole state."""

    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
