"""Client portal campaign pages: list and create, a campaign's progress (counters per outcome, a
progress bar, contacts left, estimated finish), its contacts and attempts, CSV upload with a
downloadable error report, results CSV, pause / resume / cancel; the do-not-call list. Everyone
in the portal reads; client admins change."""
from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.agents.selectors import agent_list
from apps.campaigns import selectors, services
from apps.campaigns.models import CampaignContact, Outcome
from apps.core.errors import ApplicationError, NotFound
from apps.portal.access import portal_login_required
from apps.telephony.selectors import phone_number_list

DEFAULT_WINDOWS = json.dumps({day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")})
DEFAULT_RETRIES = json.dumps({"no_answer": {"attempts": 2, "delay_minutes": 60},
                              "busy": {"attempts": 2, "delay_minutes": 15},
                              "failed": {"attempts": 1, "delay_minutes": 30},
                              "voicemail": {"attempts": 1, "delay_minutes": 240}})


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    agent = forms.TypedChoiceField(coerce=int)
    numbers = forms.TypedMultipleChoiceField(coerce=int, label="Caller-ID numbers",
                                             widget=forms.CheckboxSelectMultiple)
    timezone = forms.CharField(max_length=64, initial="UTC", help_text="IANA name, for contacts without their own.")
    windows = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), initial=DEFAULT_WINDOWS, required=False,
                              help_text='Local calling hours per weekday, e.g. {"mon": [["09:00", "17:00"]]}; '
                                        "empty = any time.")
    starts_at = forms.DateTimeField(required=False, help_text="Empty: as soon as it is started.")
    ends_at = forms.DateTimeField(required=False)
    max_concurrent = forms.IntegerField(min_value=1, max_value=1000, initial=5)
    calls_per_second = forms.DecimalField(min_value=0.01, max_value=100, decimal_places=2, initial=1)
    retry_policy = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), initial=DEFAULT_RETRIES, required=False,
                                   help_text="Per outcome (no_answer, busy, failed, voicemail): attempts and "
                                             "delay_minutes.")
    breaker_window = forms.IntegerField(min_value=1, max_value=10000, initial=20,
                                        help_text="Pause when this many recent calls failed too often…")
    breaker_failure_ratio = forms.DecimalField(min_value=0.01, max_value=1, decimal_places=2, initial=0.5,
                                               help_text="…at this share of failures.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [(agent.pk, agent.name) for agent in agent_list()]
        self.fields["numbers"].choices = [(number.pk, str(number)) for number in phone_number_list()
                                          if number.is_active]

    def clean_windows(self):
        return _json(self.cleaned_data["windows"], "windows")

    def clean_retry_policy(self):
        return _json(self.cleaned_data["retry_policy"], "retry policy")


def _json(text: str, what: str):
    if not (text or "").strip():
        return {}
    try:
        return json.loads(text)
    except ValueError:
        raise forms.ValidationError(f"The {what} must be JSON.") from None


class UploadForm(forms.Form):
    file = forms.FileField(label="Contacts CSV")
    default_region = forms.CharField(max_length=2, required=False,
                                     help_text="Two-letter country for numbers written without +country code.")


def _form_error(form: forms.Form, error: ApplicationError) -> None:
    """The refusal under the field it names (the services' details name the field), else on the form."""
    fields = {"agent_id": "agent", "number_ids": "numbers"}
    named = [fields.get(key, key) for key in error.details if fields.get(key, key) in form.fields]
    form.add_error(named[0] if named else None, error.message)


def _campaign_or_404(campaign_id):
    try:
        return selectors.campaign_get(campaign_id=campaign_id)
    except NotFound:
        raise Http404("No such campaign.") from None


@portal_login_required
def campaign_list_view(request):
    can_edit = request.user.can_edit_client_data(request.tenant)
    form = None
    if can_edit:
        form = CampaignForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                campaign = services.campaign_create(
                    name=data["name"], agent_id=data["agent"], number_ids=data["numbers"],
                    timezone_name=data["timezone"], windows=data["windows"], starts_at=data["starts_at"],
                    ends_at=data["ends_at"], max_concurrent=data["max_concurrent"],
                    calls_per_second=data["calls_per_second"], retry_policy=data["retry_policy"],
                    breaker_window=data["breaker_window"], breaker_failure_ratio=data["breaker_failure_ratio"])
            except ApplicationError as error:
                _form_error(form, error)
            else:
                messages.success(request, "Campaign created as a draft: upload its contacts, then start it.")
                return HttpResponseRedirect(reverse("portal:campaigns:detail", args=[campaign.pk]))
    elif request.method == "POST":
        return HttpResponse("Only client admins can create campaigns.", status=403)
    campaigns = [(campaign, selectors.campaign_progress(campaign=campaign)) for campaign in selectors.campaign_list()]
    return render(request, "campaigns/campaign_list.html", {"campaigns": campaigns, "form": form})


@portal_login_required
def campaign_detail_view(request, campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    status, outcome = request.GET.get("status", ""), request.GET.get("outcome", "")
    status = status if status in CampaignContact.Status.values else ""
    outcome = outcome if outcome in Outcome.values else ""
    contacts = selectors.campaign_contact_list(campaign=campaign, status=status, outcome=outcome)
    page = Paginator(contacts, 50).get_page(request.GET.get("page"))
    progress = selectors.campaign_progress(campaign=campaign)
    outcome_rows = [(label, progress.outcomes.get(value, 0), progress.attempt_outcomes.get(value, 0))
                    for value, label in Outcome.choices
                    if progress.outcomes.get(value) or progress.attempt_outcomes.get(value)]
    return render(request, "campaigns/campaign_detail.html", {
        "campaign": campaign, "progress": progress, "outcome_rows": outcome_rows, "page": page,
        "imports": selectors.campaign_imports(campaign=campaign)[:10], "upload_form": UploadForm(),
        "can_edit": request.user.can_edit_client_data(request.tenant), "status": status, "outcome": outcome,
        "statuses": CampaignContact.Status.choices, "outcomes": Outcome.choices,
    })


@require_POST
@portal_login_required(admin_only=True)
def campaign_upload_view(request, campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a CSV file to upload.")
    else:
        upload = form.cleaned_data["file"]
        try:
            if upload.size > 20 * 1024 * 1024:
                raise ApplicationError("The file is larger than 20 MB: split it into several uploads.")
            report = services.campaign_contacts_import(campaign_id=campaign.pk, data=upload.read(),
                                                       filename=upload.name, default_region=form.cleaned_data[
                                                           "default_region"])
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            text = f"{report.rows_imported} of {report.rows_total} rows imported."
            if report.errors:
                messages.warning(request, f"{text} {len(report.errors)} rows had problems: download the error report.")
            else:
                messages.success(request, text)
    return HttpResponseRedirect(reverse("portal:campaigns:detail", args=[campaign.pk]))


@require_POST
@portal_login_required(admin_only=True)
def campaign_action_view(request, campaign_id: int, action: str):
    campaign = _campaign_or_404(campaign_id)
    actions = {
        "start": lambda: services.campaign_start(campaign_id=campaign.pk),
        "pause": lambda: services.campaign_pause(campaign_id=campaign.pk, reason=request.POST.get("reason", "")[:300]),
        "resume": lambda: services.campaign_resume(campaign_id=campaign.pk),
        "cancel": lambda: services.campaign_cancel(campaign_id=campaign.pk),
    }
    if action not in actions:
        raise Http404("No such action.")
    try:
        updated = actions[action]()
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Campaign {updated.get_status_display().lower()}.")
    return HttpResponseRedirect(reverse("portal:campaigns:detail", args=[campaign.pk]))


def _csv_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@portal_login_required
def campaign_results_view(request, campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    return _csv_response(selectors.campaign_results_csv(campaign=campaign), f"campaign-{campaign.pk}-results.csv")


@portal_login_required
def campaign_import_errors_view(request, campaign_id: int, import_id: int):
    campaign = _campaign_or_404(campaign_id)
    try:
        contact_import = selectors.campaign_import_get(campaign=campaign, import_id=import_id)
    except NotFound:
        raise Http404("No such upload.") from None
    return _csv_response(selectors.import_errors_csv(contact_import=contact_import),
                         f"campaign-{campaign.pk}-upload-{import_id}-errors.csv")


@portal_login_required
def do_not_call_view(request):
    can_edit = request.user.can_edit_client_data(request.tenant)
    if request.method == "POST":
        if not can_edit:
            return HttpResponse("Only client admins can change the do-not-call list.", status=403)
        try:
            if request.POST.get("remove"):
                services.do_not_call_remove(number=request.POST["remove"][:40])
                messages.success(request, "Number removed from the do-not-call list.")
            else:
                entry = services.do_not_call_add(number=request.POST.get("number", "")[:40],
                                                 reason=request.POST.get("reason", "")[:300])
                messages.success(request, f"{entry.number} will not be called.")
        except ApplicationError as error:
            messages.error(request, error.message)
        return HttpResponseRedirect(reverse("portal:campaigns:do_not_call"))
    search = request.GET.get("q", "")[:64]
    page = Paginator(selectors.do_not_call_list(search=search), 50).get_page(request.GET.get("page"))
    return render(request, "campaigns/do_not_call.html", {"page": page, "search": search, "can_edit": can_edit})
