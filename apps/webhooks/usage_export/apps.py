from django.apps import AppConfig


class UsageExportConfig(AppConfig):
    """Usage export (public schema, per agency): the ledger's events pushed to Stripe
    Billing meter events and / or a signed webhook of usage batches, once per event."""

    name = "apps.webhooks.usage_export"
    label = "usage_export"
    verbose_name = "Usage export"
