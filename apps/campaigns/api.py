"""/api/v1/campaigns: campaigns, their contacts (CSV upload), progress, results and the
do-not-call list."""
# No `from __future__ import annotations` here: django-ninja resolves these annotations itself.
from django.http import HttpResponse
from ninja import File, Router
from ninja.files import UploadedFile
from ninja.pagination import LimitOffsetPagination, paginate

from apps.campaigns import selectors, services
from apps.campaigns.models import DoNotCallEntry
from apps.campaigns.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    ContactOut,
    DoNotCallIn,
    DoNotCallOut,
    ImportOut,
)

router = Router(tags=["campaigns"])
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def _out(campaign) -> dict:
    data = {field: getattr(campaign, field) for field in (
        "id", "name", "agent_id", "status", "pause_kind", "pause_reason", "timezone", "windows", "starts_at",
        "ends_at", "max_concurrent", "calls_per_second", "retry_policy", "breaker_window", "breaker_failure_ratio",
        "created_at", "started_at", "finished_at")}
    data["number_ids"] = sorted(number.pk for number in campaign.numbers.all())
    data["progress"] = selectors.campaign_progress(campaign=campaign).__dict__
    return data


def _policy(rules) -> dict | None:
    return None if rules is None else {name: rule.dict() for name, rule in rules.items()}


@router.get("", response=list[CampaignOut])
def campaigns_list(request, status: str = ""):
    return [_out(campaign) for campaign in selectors.campaign_list(status=status[:16])]


@router.post("", response={201: CampaignOut})
def campaigns_create(request, payload: CampaignIn):
    campaign = services.campaign_create(
        name=payload.name, agent_id=payload.agent_id, number_ids=payload.number_ids, timezone_name=payload.timezone,
        windows=payload.windows, starts_at=payload.starts_at, ends_at=payload.ends_at,
        max_concurrent=payload.max_concurrent, calls_per_second=payload.calls_per_second,
        retry_policy=_policy(payload.retry_policy), breaker_window=payload.breaker_window,
        breaker_failure_ratio=payload.breaker_failure_ratio)
    return 201, _out(selectors.campaign_get(campaign_id=campaign.pk))


@router.get("/do-not-call", response=list[DoNotCallOut])
@paginate(LimitOffsetPagination)
def do_not_call_list(request, search: str = ""):
    return selectors.do_not_call_list(search=search[:64])


@router.post("/do-not-call", response={201: DoNotCallOut})
def do_not_call_add(request, payload: DoNotCallIn):
    return 201, services.do_not_call_add(number=payload.number, reason=payload.reason,
                                         source=DoNotCallEntry.Source.API)


@router.delete("/do-not-call/{number}", response={204: None})
def do_not_call_remove(request, number: str):
    services.do_not_call_remove(number=number[:40])
    return 204, None


@router.get("/{int:campaign_id}", response=CampaignOut)
def campaigns_get(request, campaign_id: int):
    return _out(selectors.campaign_get(campaign_id=campaign_id))


@router.patch("/{int:campaign_id}", response=CampaignOut)
def campaigns_update(request, campaign_id: int, payload: CampaignPatch):
    values = payload.dict(exclude_unset=True)
    if "retry_policy" in values:
        values["retry_policy"] = _policy(payload.retry_policy) or {}
    services.campaign_update(campaign_id=campaign_id, agent_id=values.pop("agent_id", None),
                             number_ids=values.pop("number_ids", None), **values)
    return _out(selectors.campaign_get(campaign_id=campaign_id))


@router.post("/{int:campaign_id}/contacts", response={201: ImportOut})
def campaigns_contacts_upload(request, campaign_id: int, file: UploadedFile = File(...), default_region: str = ""):
    """A CSV: a `phone_number` column (E.164), optionally `timezone`; other columns become
    `{{contact.<column>}}`. Bad rows are reported (and downloadable as CSV), the rest imported."""
    from apps.core.errors import ApplicationError

    if file.size > MAX_UPLOAD_BYTES:
        raise ApplicationError("The file is larger than 20 MB: split it into several uploads.")
    return 201, services.campaign_contacts_import(campaign_id=campaign_id, data=file.read(),
                                                  filename=file.name or "", default_region=default_region[:2])


@router.get("/{int:campaign_id}/imports/{int:import_id}/errors.csv",
            openapi_extra={"responses": {200: {"content": {"text/csv": {}}}}})
def campaigns_import_errors(request, campaign_id: int, import_id: int):
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    report = selectors.import_errors_csv(
        contact_import=selectors.campaign_import_get(campaign=campaign, import_id=import_id))
    response = HttpResponse(report, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign_id}-upload-{import_id}-errors.csv"'
    return response


@router.get("/{int:campaign_id}/contacts", response=list[ContactOut])
@paginate(LimitOffsetPagination)
def campaigns_contacts(request, campaign_id: int, status: str = "", outcome: str = ""):
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    contacts = list(selectors.campaign_contact_list(campaign=campaign, status=status[:16], outcome=outcome[:16]))
    for contact in contacts:
        contact.attempt_history = sorted(contact.attempt_rows.all(), key=lambda attempt: attempt.number)
    return contacts


@router.get("/{int:campaign_id}/results.csv", openapi_extra={"responses": {200: {"content": {"text/csv": {}}}}})
def campaigns_results(request, campaign_id: int):
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    response = HttpResponse(selectors.campaign_results_csv(campaign=campaign), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign_id}-results.csv"'
    return response


@router.post("/{int:campaign_id}/start", response=CampaignOut)
def campaigns_start(request, campaign_id: int):
    services.campaign_start(campaign_id=campaign_id)
    return _out(selectors.campaign_get(campaign_id=campaign_id))


@router.post("/{int:campaign_id}/pause", response=CampaignOut)
def campaigns_pause(request, campaign_id: int, reason: str = ""):
    services.campaign_pause(campaign_id=campaign_id, reason=reason[:300])
    return _out(selectors.campaign_get(campaign_id=campaign_id))


@router.post("/{int:campaign_id}/resume", response=CampaignOut)
def campaigns_resume(request, campaign_id: int):
    services.campaign_resume(campaign_id=campaign_id)
    return _out(selectors.campaign_get(campaign_id=campaign_id))


@router.post("/{int:campaign_id}/cancel", response=CampaignOut)
def campaigns_cancel(request, campaign_id: int):
    services.campaign_cancel(campaign_id=campaign_id)
    return _out(selectors.campaign_get(campaign_id=campaign_id))
