"""Client admin: QA settings per agent (saved through qa_config_save) and the QA
results, read-only, with a "re-run QA" action; test personas, suites (actions: run on the
draft / the published version), scenarios, suite runs and call replays (read-only)."""
from django import forms
from django.contrib import admin, messages

from apps.core.admin_sites import tenant_admin_site
from apps.core.errors import ApplicationError
from apps.quality import suite_services
from apps.quality.criteria import criteria_validate
from apps.quality.models import CallReplay, Persona, QAConfig, QAResult, Scenario, ScenarioRun, Suite, SuiteRun
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


# --- test personas, suites, runs, call replays (apps.quality.suite_services) ------------------------------------



class _ServiceSavedAdmin(admin.ModelAdmin):
    """Saves through a service; a refusal is shown and nothing is written."""

    def save_model(self, request, obj, form, change):
        try:
            saved = self.save_through_service(obj, form.cleaned_data, change)
        except ApplicationError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return
        obj.pk = saved.pk


@admin.register(Persona, site=tenant_admin_site)
class PersonaAdmin(_ServiceSavedAdmin):
    list_display = ("name", "mood", "llm_provider", "llm_model", "updated_at")
    search_fields = ("name", "goal")
    fields = ("name", "goal", "mood", "facts", "speaking_style", "opening_line", "llm_provider", "llm_model")

    def save_through_service(self, obj, data, change):
        return suite_services.persona_save(persona=obj if change else None, **data)


class ScenarioAdminForm(forms.ModelForm):
    class Meta:
        model = Scenario
        fields = ("suite", "name", "persona", "criteria", "max_turns")

    def clean_criteria(self):
        try:
            return criteria_validate(self.cleaned_data.get("criteria"))
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None


class ScenarioInline(admin.TabularInline):
    model = Scenario
    fields = ("name", "persona", "criteria", "max_turns")
    extra = 0
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Suite, site=tenant_admin_site)
class SuiteAdmin(_ServiceSavedAdmin):
    list_display = ("name", "agent", "schedule_every_hours", "created_at")
    list_filter = ("agent",)
    fields = ("agent", "name", "schedule_every_hours")
    inlines = [ScenarioInline]
    actions = ["run_on_draft", "run_on_published"]

    def save_through_service(self, obj, data, change):
        return suite_services.suite_save(suite=obj if change else None, agent_id=data["agent"].pk, name=data["name"],
                                         schedule_every_hours=data["schedule_every_hours"])

    def delete_model(self, request, obj):
        suite_services.suite_delete(suite=obj)

    def _run(self, request, queryset, target):
        for suite in queryset:
            try:
                run = suite_services.suite_run_start(suite_id=suite.pk, target=target, client=request.tenant)
            except ApplicationError as error:
                self.message_user(request, f"{suite.name}: {error.message}", level=messages.ERROR)
            else:
                self.message_user(request, f"{suite.name}: run {run.pk} started on the {run.get_target_display().lower()}.")

    @admin.action(description="Run on the draft")
    def run_on_draft(self, request, queryset):
        self._run(request, queryset, SuiteRun.Target.DRAFT)

    @admin.action(description="Run on the published version")
    def run_on_published(self, request, queryset):
        self._run(request, queryset, SuiteRun.Target.PUBLISHED)


@admin.register(Scenario, site=tenant_admin_site)
class ScenarioAdmin(_ServiceSavedAdmin):
    form = ScenarioAdminForm
    list_display = ("name", "suite", "persona", "max_turns")
    list_filter = ("suite",)

    def save_through_service(self, obj, data, change):
        return suite_services.scenario_save(scenario=obj if change else None, suite_id=data["suite"].pk,
                                            name=data["name"], persona_id=data["persona"].pk,
                                            criteria=data["criteria"], max_turns=data["max_turns"])


class ScenarioRunInline(admin.TabularInline):
    model = ScenarioRun
    fields = ("scenario", "status", "failure", "end_reason", "finished_at")
    readonly_fields = fields
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False


class _ReadOnlyAdmin(admin.ModelAdmin):
    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SuiteRun, site=tenant_admin_site)
class SuiteRunAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "suite", "target", "version_number", "status", "passed", "failed", "errors", "trigger")
    list_filter = ("status", "target", "suite")
    inlines = [ScenarioRunInline]


@admin.register(CallReplay, site=tenant_admin_site)
class CallReplayAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "call", "target", "version_number", "status", "end_reason")
    list_filter = ("status", "target")
