"""Agency admin: usage export settings and the batches sent (read-only)."""
from django import forms
from django.contrib import admin

from apps.core.errors import ApplicationError
from apps.webhooks.usage_export.models import UsageExportBatch, UsageExportSettings


class UsageExportSettingsForm(forms.ModelForm):
    webhook_url = forms.URLField(max_length=500, assume_scheme="https", required=False)
    class Meta:
        model = UsageExportSettings
        fields = "__all__"

    def clean(self):
        from apps.webhooks.services import webhook_url_check

        data = super().clean()
        if data.get("webhook_enabled"):
            try:
                webhook_url_check(data.get("webhook_url") or "")
            except ApplicationError as error:
                self.add_error("webhook_url", error.message)
        return data


@admin.register(UsageExportSettings)
class UsageExportSettingsAdmin(admin.ModelAdmin):
    form = UsageExportSettingsForm
    fields = ("stripe_enabled", "stripe_secret_key", "stripe_event_names", "webhook_enabled", "webhook_url",
              "webhook_secret", "batch_size", "export_from")

    def has_add_permission(self, request):
        return not UsageExportSettings.objects.exists()

    def save_model(self, request, obj, form, change):
        from apps.webhooks.services import webhook_secret_new

        if obj.webhook_enabled:
            obj.webhook_secret = obj.webhook_secret or webhook_secret_new()
        super().save_model(request, obj, form, change)


@admin.register(UsageExportBatch)
class UsageExportBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "target", "status", "attempts", "created_at", "sent_at", "last_error")
    list_filter = ("target", "status")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in UsageExportBatch._meta.fields]

    def has_add_permission(self, request):
        return False
