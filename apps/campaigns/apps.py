from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Outbound campaigns (tenant schema): campaigns, their contacts and attempts, the
    client's do-not-call list, and the crash-safe dialer that works through them."""

    name = "apps.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"
