from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from apps.core.errors import ApplicationError
from apps.core.hosts import client_url
from apps.tenancy import services
from apps.tenancy.models import AgencySettings, AuditLogEntry, Client, Domain, SupportAccessLog


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class ClientCreationForm(forms.ModelForm):
    domain = forms.CharField(required=False, help_text="Portal host; default <slug>.<CLIENT_DOMAIN_SUFFIX>")
    admin_email = forms.EmailField(required=False, help_text="Creates the client's first admin user")
    admin_password = forms.CharField(required=False, widget=forms.PasswordInput)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("slug"):
            try:
                services.client_create_check(
                    slug=cleaned["slug"], domain=cleaned.get("domain") or None,
                    admin_email=cleaned.get("admin_email") or None,
                )
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from exc
        return cleaned

    class Meta:
        model = Client
        fields = [
            "name", "slug", "contact_name", "contact_email", "contact_phone", "billing_name",
            "billing_email", "billing_address", "tax_id", "timezone", "currency",
        ]


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status", "portal_link", "created_at", "open_links"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "contact_email"]
    readonly_fields = ["schema_name", "created_at", "updated_at"]
    actions = ["suspend_clients", "reactivate_clients"]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(schema_name="public")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ClientCreationForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return list(ClientCreationForm.Meta.fields) + ["domain", "admin_email", "admin_password"]
        return [
            "name", "slug", "schema_name", "status", "suspended_reason", "contact_name", "contact_email",
            "contact_phone", "billing_name", "billing_email", "billing_address", "tax_id", "timezone",
            "currency", "portal_name", "brand_logo", "brand_logo_url", "brand_color", "created_at", "updated_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return ["slug", *self.readonly_fields] if obj else []

    def get_inlines(self, request, obj):
        return [DomainInline] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            # A status change goes through its service (audited); the other fields save as they are.
            wanted_status, wanted_reason = obj.status, obj.suspended_reason
            if "status" in form.changed_data:
                obj.status, obj.suspended_reason = form.initial["status"], form.initial["suspended_reason"]
            super().save_model(request, obj, form, change)
            if wanted_status == Client.Status.SUSPENDED and obj.status != wanted_status:
                services.client_suspend(client=obj, reason=wanted_reason or "Suspended by agency staff",
                                        actor=request.user)
            elif wanted_status == Client.Status.ACTIVE and obj.status != wanted_status:
                services.client_reactivate(client=obj, actor=request.user)
            return
        data = form.cleaned_data
        details = {k: data[k] for k in ClientCreationForm.Meta.fields if k not in ("name", "slug")}
        # The form's clean() ran client_create_check, so a refusal here is a race.
        client, _, _ = services.client_create(
            slug=data["slug"], name=data["name"], domain=data.get("domain") or None,
            admin_email=data.get("admin_email") or None, admin_password=data.get("admin_password") or None,
            actor=request.user, **details,
        )
        obj.pk = client.pk
        obj.id = client.id

    def delete_model(self, request, obj):
        services.client_delete(client=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for client in queryset:
            services.client_delete(client=client, actor=request.user)

    @admin.action(description="Suspend selected clients")
    def suspend_clients(self, request, queryset):
        for client in queryset:
            services.client_suspend(client=client, reason="Suspended by agency staff", actor=request.user)
        self.message_user(request, f"Suspended {queryset.count()} client(s).")

    @admin.action(description="Reactivate selected clients")
    def reactivate_clients(self, request, queryset):
        for client in queryset:
            services.client_reactivate(client=client, actor=request.user)
        self.message_user(request, f"Reactivated {queryset.count()} client(s).")

    @admin.display(description="Portal")
    def portal_link(self, obj):
        domain = obj.primary_domain_name
        return format_html('<a href="{}">{}</a>', client_url(obj), domain) if domain else "—"

    @admin.display(description="Support")
    def open_links(self, obj):
        return format_html(
            '<a class="button" href="{}">Open portal as client</a> <a class="button" href="{}">Open client admin</a>',
            reverse("admin:tenancy_client_open_portal", args=[obj.pk]),
            reverse("admin:tenancy_client_open_admin", args=[obj.pk]),
        )

    def get_urls(self):
        return [
            path("<int:pk>/open-portal/", self.admin_site.admin_view(self.open_portal), name="tenancy_client_open_portal"),
            path("<int:pk>/open-admin/", self.admin_site.admin_view(self.open_admin), name="tenancy_client_open_admin"),
            path("support-confirm/", self.admin_site.admin_view(self.support_confirm),
                 name="tenancy_client_support_confirm"),
        ] + super().get_urls()

    def _open(self, request, pk, action, next_path):
        client = get_object_or_404(Client.objects.exclude(schema_name="public"), pk=pk)
        if not client.primary_domain_name:
            messages.error(request, f"{client} has no domain; add one first.")
            return HttpResponseRedirect(reverse("admin:tenancy_client_change", args=[pk]))
        token = services.support_access_token_issue(
            staff_user=request.user, client=client, action=action, next_path=next_path
        )
        return HttpResponseRedirect(client_url(client, f"/support/enter/?token={token}"))

    def support_confirm(self, request):
        """Hop 2 of a support ticket: this browser's agency session vouches for the
        client-host browser (see apps/tenancy/services.py, "support access")."""
        try:
            client, proof = services.support_access_binding_confirm(
                token=request.GET.get("token", ""), binding=request.GET.get("binding", ""), user=request.user
            )
        except ApplicationError as exc:
            return HttpResponseForbidden(exc.message)
        query = urlencode({"token": request.GET["token"], "proof": proof})
        return HttpResponseRedirect(client_url(client, f"/support/enter/?{query}"))

    def open_portal(self, request, pk):
        return self._open(request, pk, "open_portal", "/")

    def open_admin(self, request, pk):
        return self._open(request, pk, "open_admin", "/admin/")


@admin.register(AgencySettings)
class AgencySettingsAdmin(admin.ModelAdmin):
    list_display = ["name", "primary_color", "support_email"]

    def has_add_permission(self, request):
        return not AgencySettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SupportAccessLog)
class SupportAccessLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "staff_user", "client", "action", "ip_address"]
    list_filter = ["action", "client"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(admin.ModelAdmin):
    """Read-only: rows are written by apps.tenancy.audit.audit_log_record only."""

    list_display = ["created_at", "actor_email", "client_name", "event_type", "target_type", "target_repr",
                    "changed_fields"]
    list_filter = ["event_type", "client", "target_type", "created_at"]
    search_fields = ["actor_email", "client_name", "target_repr", "target_id"]
    date_hierarchy = "created_at"
    list_select_related = ["client"]
    fields = ["created_at", "actor", "actor_email", "client", "client_name", "event_type", "target_type",
              "target_id", "target_repr", "changes"]
    readonly_fields = fields

    @admin.display(description="changed")
    def changed_fields(self, obj):
        return ", ".join(sorted(obj.changes)) or "—"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
