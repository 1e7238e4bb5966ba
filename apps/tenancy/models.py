from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin
from timezone_field import TimeZoneField

# A colour lands inside a <style> block: only "#rrggbb" may pass, nothing that could close the rule.
hex_color = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a hex colour such as #4f46e5.")


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
    # White-label per client: the portal on this client's (sub)domain shows these instead of the agency's.
    portal_name = models.CharField(max_length=100, blank=True, help_text="Shown in the portal header and title; "
                                   "blank: the agency's name.")
    brand_logo = models.ImageField(upload_to="branding/clients/", blank=True)
    brand_logo_url = models.URLField(blank=True, help_text="Used when no logo file is uploaded.")
    brand_color = models.CharField(max_length=7, blank=True, validators=[hex_color],
                                   help_text="Hex colour, e.g. #0f766e; blank: the agency's colour.")
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
    primary_color = models.CharField(max_length=7, default="#4f46e5", validators=[hex_color],
                                     help_text="Hex colour, e.g. #4f46e5")
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


class AuditLogEntry(models.Model):
    """One change a person (or the system) made, in the style of Zulip's
    RealmAuditLog: who, when, for which client, what kind of change, to which
    object, and the before/after of the fields that changed. Public schema, so the
    agency sees every client's rows; each client sees its own. Written only by
    `apps.tenancy.audit.audit_log_record`, inside the transaction of the change."""

    class Event(models.TextChoices):
        CLIENT_CREATED = "client_created", "Client created"
        CLIENT_SUSPENDED = "client_suspended", "Client suspended"
        CLIENT_RESUMED = "client_resumed", "Client resumed"
        CLIENT_DELETED = "client_deleted", "Client deleted"
        SUPPORT_PORTAL_OPENED = "support_portal_opened", "Portal opened as client (support)"
        SUPPORT_ADMIN_OPENED = "support_admin_opened", "Client admin opened (support)"
        USER_CREATED = "user_created", "User created"
        USER_ROLE_CHANGED = "user_role_changed", "User role changed"
        API_KEY_CREATED = "api_key_created", "API key created"
        API_KEY_REVOKED = "api_key_revoked", "API key revoked"
        AGENT_PUBLISHED = "agent_published", "Agent version published"
        AGENT_PUBLISH_GATE_CHANGED = "agent_publish_gate_changed", "Agent's green-suite requirement changed"
        PROVIDER_KEY_CREATED = "provider_key_created", "Provider key created"
        PROVIDER_KEY_ROTATED = "provider_key_rotated", "Provider key rotated"
        PROVIDER_KEY_DISABLED = "provider_key_disabled", "Provider key disabled"
        PROVIDER_KEY_CHANGED = "provider_key_changed", "Provider key settings changed"
        PHONE_NUMBER_CHANGED = "phone_number_changed", "Phone number changed"
        RATE_CARD_VERSIONED = "rate_card_versioned", "Rate card version created"
        INVOICE_FINALISED = "invoice_finalised", "Invoice finalised"
        INVOICE_SENT = "invoice_sent", "Invoice sent"
        INVOICE_PAID = "invoice_paid", "Invoice paid"
        INVOICE_VOIDED = "invoice_voided", "Invoice voided"
        INVOICE_CREDITED = "invoice_credited", "Credit note issued"
        CLIP_UPLOADED = "clip_uploaded", "Clip uploaded"
        CLIP_DELETED = "clip_deleted", "Clip deleted"
        KNOWLEDGE_DOCUMENT_ADDED = "knowledge_document_added", "Knowledge document added or replaced"
        KNOWLEDGE_DOCUMENT_DELETED = "knowledge_document_deleted", "Knowledge document deleted"
        KNOWLEDGE_SETTINGS_CHANGED = "knowledge_settings_changed", "Knowledge base embeddings changed"
        CAMPAIGN_CREATED = "campaign_created", "Campaign created"
        CAMPAIGN_CHANGED = "campaign_changed", "Campaign settings changed"
        CAMPAIGN_CONTACTS_IMPORTED = "campaign_contacts_imported", "Campaign contacts imported"
        CAMPAIGN_STARTED = "campaign_started", "Campaign started"
        CAMPAIGN_PAUSED = "campaign_paused", "Campaign paused"
        CAMPAIGN_RESUMED = "campaign_resumed", "Campaign resumed"
        CAMPAIGN_CANCELLED = "campaign_cancelled", "Campaign cancelled"
        CAMPAIGN_COMPLETED = "campaign_completed", "Campaign completed"
        DO_NOT_CALL_ADDED = "do_not_call_added", "Number added to the do-not-call list"
        DO_NOT_CALL_REMOVED = "do_not_call_removed", "Number removed from the do-not-call list"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Null for the system (a Celery task, a command); the email stays when the user is deleted.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_email = models.CharField(max_length=254, blank=True)
    # Null for agency-wide changes (agency keys, agency rate card); the name stays when the client is deleted.
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_log")
    client_name = models.CharField(max_length=200, blank=True)
    event_type = models.CharField(max_length=40, choices=Event.choices, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)  # "agents.agent"
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    # {"field": {"before": ..., "after": ...}}; secrets appear as "(changed)", never their values.
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["client", "-created_at"], name="audit_client_created")]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.event_type} {self.target_repr}"
