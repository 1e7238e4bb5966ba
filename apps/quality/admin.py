"""Client admin: QA settings per agent (saved through qa_config_save) and the QA
results, read-only, with a "re-run QA" action."""
from django import forms
from django.contrib import admin, messages

from apps.core.admin_sites import tenant_admin_site
from apps.core.errors import ApplicationError
from apps.quality.models import QAConfig, QAResult
from apps.quality.services import qa_config_save, qa_rerun_request


class QAConfigAdminForm(forms.ModelForm):
    class Meta:
        model = QAConfig
        fields = ("agent", "enabled", "sample_rate_percent", "min_duration_secs", "skip_voicemail",
                  "extraction_schema", "dispositions", "custom_tags", "llm_provider", "llm_model")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        from apps.quality.services import _string_list, qa_schema_check

        try:
            qa_schema_check(data.get("extraction_schema"))
            _string_list(data.get("dispositions"), "dispositions")
            _string_list(data.get("custom_tags"), "tags")
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None
        return data


@admin.register(QAConfig, site=tenant_admin_site)
class QAConfigAdmin(admin.ModelAdmin):
    form = QAConfigAdminForm
    list_display = ("agent", "enabled", "sample_rate_percent", "min_duration_secs", "skip_voicemail", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        return ("agent",) if obj else ()

    def save_model(self, request, obj, form, change):
        data = {name: value for name, value in form.cleaned_data.items() if name != "agent"}
        agent_id = obj.agent_id if change else form.cleaned_data["agent"].pk
        try:
            saved = qa_config_save(agent_id=agent_id, **data)
        except ApplicationError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return
        obj.pk = saved.pk


@admin.register(QAResult, site=tenant_admin_site)
class QAResultAdmin(admin.ModelAdmin):
    list_display = ("updated_at", "call", "agent", "status", "score", "sentiment", "disposition", "run_number")
    list_filter = ("status", "sentiment", "agent", "score")
    search_fields = ("summary", "call__from_number", "call__to_number")
    actions = ["rerun"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in QAResult._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Re-run QA (replaces the result)")
    def rerun(self, request, queryset):
        queued = 0
        for call_id in queryset.values_list("call_id", flat=True):
            try:
                qa_rerun_request(call_id=call_id)
                queued += 1
            except ApplicationError as error:
                self.message_user(request, error.message, level=messages.ERROR)
        self.message_user(request, f"{queued} re-run(s) queued.")
