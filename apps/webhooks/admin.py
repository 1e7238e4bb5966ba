"""Client admin: webhook endpoints (written through the services) and the delivery
log, read-only, with a "replay" action (same webhook-id, fresh attempts)."""
from django import forms
from django.contrib import admin, messages

from apps.core.admin_sites import tenant_admin_site
from apps.core.errors import ApplicationError
from apps.webhooks.events import EVENT_CHOICES
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.webhooks.services import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_update,
    webhook_url_check,
)


class EndpointAdminForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple)
    url = forms.URLField(max_length=500, assume_scheme="https", label="URL")

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "events", "is_active")

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            webhook_url_check(url)
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None
        return url


@admin.register(WebhookEndpoint, site=tenant_admin_site)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointAdminForm
    list_display = ("url", "events", "is_active", "created_at")
    readonly_fields = ("secret",)

    def get_fields(self, request, obj=None):
        return ("url", "description", "events", "is_active") + (("secret",) if obj else ())

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                saved = webhook_endpoint_update(endpoint_id=obj.pk, url=data["url"], events=data["events"],
                                                description=data["description"], is_active=data["is_active"])
            else:
                saved = webhook_endpoint_create(url=data["url"], events=data["events"], description=data["description"])
        except ApplicationError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return
        obj.pk = saved.pk


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "at", "status_code", "response_ms", "error", "response_excerpt", "replay")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery, site=tenant_admin_site)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event_type", "endpoint", "message_id", "status", "attempts", "last_status_code",
                    "last_response_ms", "next_attempt_at")
    list_filter = ("status", "event__type", "endpoint")
    search_fields = ("message_id",)
    inlines = [AttemptInline]
    actions = ["replay"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in WebhookDelivery._meta.fields]

    @admin.display(description="event")
    def event_type(self, obj):
        return obj.event.type

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method == "GET"  # the change page shows the log; nothing is edited

    @admin.action(description="Replay (same webhook-id)")
    def replay(self, request, queryset):
        for delivery_id in queryset.values_list("pk", flat=True):
            webhook_delivery_replay(delivery_id=delivery_id)
        self.message_user(request, f"{queryset.count()} delivery(ies) queued again.")
