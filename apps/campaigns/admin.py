"""Client admin: campaigns (created and changed through the services; start / pause / resume /
cancel actions; a contacts CSV upload page with its error report), contacts and attempts
(read-only), uploads, and the do-not-call list."""
from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.campaigns import selectors, services
from apps.campaigns.models import Campaign, CampaignAttempt, CampaignContact, ContactImport, DoNotCallEntry
from apps.campaigns.windows import windows_clean, zone_get
from apps.core.admin_sites import tenant_admin_site
from apps.core.errors import ApplicationError

SETTINGS = ("name", "timezone", "windows", "starts_at", "ends_at", "max_concurrent", "calls_per_second",
            "retry_policy", "breaker_window", "breaker_failure_ratio")


class CampaignAdminForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ("name", "agent", "numbers", *SETTINGS[1:])

    def _checked(self, name, check):
        try:
            return check(self.cleaned_data[name])
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None

    def clean_windows(self):
        return self._checked("windows", windows_clean)

    def clean_retry_policy(self):
        return self._checked("retry_policy", services.retry_policy_clean)

    def clean_timezone(self):
        self._checked("timezone", zone_get)
        return self.cleaned_data["timezone"]


@admin.register(Campaign, site=tenant_admin_site)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignAdminForm
    list_display = ("name", "agent", "status", "pause_reason", "progress", "created_at")
    list_filter = ("status",)
    readonly_fields = ("status", "pause_kind", "pause_reason", "progress", "started_at", "finished_at", "links")
    filter_horizontal = ("numbers",)
    actions = ("start", "pause", "resume", "cancel")

    @admin.display(description="Progress")
    def progress(self, obj):
        progress = selectors.campaign_progress(campaign=obj)
        return (f"{progress.done}/{progress.total} done ({progress.percent} %), {progress.left} left, "
                f"outcomes {progress.outcomes or '—'}, estimated finish {progress.estimated_finish or '—'}")

    @admin.display(description="Contacts")
    def links(self, obj):
        if not obj.pk:
            return "—"
        return format_html('<a href="{}">Upload contacts (CSV)</a> · <a href="{}">Results (CSV)</a>',
                           reverse("tenant_admin:campaigns_campaign_upload", args=[obj.pk]),
                           reverse("tenant_admin:campaigns_campaign_results", args=[obj.pk]))

    def has_delete_permission(self, request, obj=None):
        return False  # cancel instead: the record of who was called stays

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        numbers = [number.pk for number in data["numbers"]]
        try:
            if change:
                saved = services.campaign_update(campaign_id=obj.pk, agent_id=data["agent"].pk, number_ids=numbers,
                                                 **{name: data[name] for name in SETTINGS})
            else:
                saved = services.campaign_create(
                    agent_id=data["agent"].pk, number_ids=numbers, timezone_name=data["timezone"],
                    **{name: data[name] for name in SETTINGS if name != "timezone"})
        except ApplicationError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        pass  # the services set the numbers

    def _each(self, request, queryset, action, done: str):
        for campaign in queryset:
            try:
                action(campaign_id=campaign.pk)
            except ApplicationError as error:
                self.message_user(request, f"{campaign}: {error.message}", level=messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: {done}.")

    @admin.action(description="Start (draft → scheduled)")
    def start(self, request, queryset):
        self._each(request, queryset, services.campaign_start, "started")

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        self._each(request, queryset, services.campaign_pause, "paused")

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        self._each(request, queryset, services.campaign_resume, "resumed")

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):
        self._each(request, queryset, services.campaign_cancel, "cancelled")

    def get_urls(self):
        return [
            path("<int:campaign_id>/upload/", self.admin_site.admin_view(self.upload_view),
                 name="campaigns_campaign_upload"),
            path("<int:campaign_id>/results.csv", self.admin_site.admin_view(self.results_view),
                 name="campaigns_campaign_results"),
            *super().get_urls(),
        ]

    def upload_view(self, request, campaign_id: int):
        campaign = selectors.campaign_get(campaign_id=campaign_id)
        report = None
        if request.method == "POST" and request.FILES.get("file"):
            try:
                report = services.campaign_contacts_import(campaign_id=campaign.pk, data=request.FILES["file"].read(),
                                                           filename=request.FILES["file"].name,
                                                           default_region=request.POST.get("default_region", "")[:2])
            except ApplicationError as error:
                self.message_user(request, error.message, level=messages.ERROR)
        return TemplateResponse(request, "campaigns/admin_upload.html", {
            **self.admin_site.each_context(request), "campaign": campaign, "report": report,
            "title": f"Upload contacts: {campaign}", "opts": self.model._meta})

    def results_view(self, request, campaign_id: int):
        campaign = selectors.campaign_get(campaign_id=campaign_id)
        response = HttpResponse(selectors.campaign_results_csv(campaign=campaign), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-results.csv"'
        return response


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AttemptInline(admin.TabularInline):
    model = CampaignAttempt
    fk_name = "contact"
    extra = 0
    can_delete = False
    fields = ("number", "outcome", "from_number", "call", "started_at", "settled_at", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CampaignContact, site=tenant_admin_site)
class CampaignContactAdmin(ReadOnlyAdmin):
    list_display = ("phone_number", "campaign", "status", "outcome", "attempts", "next_attempt_at", "timezone")
    list_filter = ("status", "outcome", "campaign")
    search_fields = ("phone_number",)
    inlines = (AttemptInline,)


@admin.register(ContactImport, site=tenant_admin_site)
class ContactImportAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "filename", "rows_total", "rows_imported", "error_count", "created_at")

    @admin.display(description="Bad rows")
    def error_count(self, obj):
        return len(obj.errors)


@admin.register(DoNotCallEntry, site=tenant_admin_site)
class DoNotCallEntryAdmin(admin.ModelAdmin):
    list_display = ("number", "source", "reason", "created_at")
    search_fields = ("number", "reason")
    fields = ("number", "reason")

    def save_model(self, request, obj, form, change):
        try:
            saved = services.do_not_call_add(number=form.cleaned_data["number"], reason=form.cleaned_data["reason"])
        except ApplicationError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return
        obj.pk = saved.pk

    def get_readonly_fields(self, request, obj=None):
        return ("number",) if obj else ()
