from django.conf import settings
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin
from timezone_field import TimeZoneField


class Client(TenantMixin):
    """A client business of the agency: one PostgreSQL schema each.

    The row with schema_name == "public" is the agency itself (django-tenants
    needs it to route the agency's own host); selectors leave it out of client lists.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    suspended_reason = models.CharField(max_length=300, blank=True)
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=32, blank=True)
    billing_name = models.CharField(max_length=200, blank=True)
    billing_email = models.EmailField(blank=True)
    billing_address = models.TextField(blank=True)
    tax_id = models.CharField(max_length=64, blank=True)
    timezone = TimeZoneField(default="UTC")
    currency = models.CharField(max_length=3, default="USD")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    auto_create_schema = True
    auto_drop_schema = True  # deleting a client in the admin drops its schema

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_agency(self) -> bool:
        return self.schema_name == "public"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def primary_domain_name(self) -> str | None:
        domain = self.domains.filter(is_primary=True).first() or self.domains.first()
        return domain.domain if domain else None


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain


class AgencySettings(models.Model):
    """The agency's own branding and billing identity: one row."""

    name = models.CharField(max_length=200, default="Switchboard Agency")
    logo = models.ImageField(upload_to="branding/", blank=True)
    logo_url = models.URLField(blank=True, help_text="Used when no logo file is uploaded.")
    primary_color = models.CharField(max_length=7, default="#4f46e5", help_text="Hex colour, e.g. #4f46e5")
    support_email = models.EmailField(blank=True)
    address = models.TextField(blank=True)
    tax_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = "agency settings"
        verbose_name_plural = "agency settings"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def load(cls) -> "AgencySettings":
        settings_row, _ = cls.objects.get_or_create(pk=1)
        return settings_row


class SupportAccessLog(models.Model):
    """Every time agency staff act as a client, one row: who, which client, when, why."""

    staff_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="support_access_logs")
    action = models.CharField(max_length=40)  # "open_portal", "open_admin"
    # The redeemed ticket's id: unique, so a ticket is redeemed once (the insert is the redemption).
    ticket_id = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    reason = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.staff_user} → {self.client} ({self.action})"
