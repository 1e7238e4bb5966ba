"""Reads of campaigns: lists, progress while a campaign runs, per-contact attempts, CSV exports."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.campaigns.models import Campaign, CampaignAttempt, CampaignContact, ContactImport, DoNotCallEntry, Outcome
from apps.core.errors import NotFound


def campaign_list(*, status: str = "") -> QuerySet[Campaign]:
    campaigns = Campaign.objects.select_related("agent").prefetch_related("numbers")
    return campaigns.filter(status=status) if status else campaigns


def campaign_get(*, campaign_id) -> Campaign:
    try:
        return Campaign.objects.select_related("agent").prefetch_related("numbers").get(pk=campaign_id)
    except (Campaign.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such campaign.", details={"campaign_id": campaign_id}) from None


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    left: int  # queued, dialling or on a call
    live: int  # dialling or on a call now
    percent: int
    outcomes: dict  # final outcome -> contacts
    attempt_outcomes: dict  # outcome -> attempts (every dial, retries included)
    dials: int
    estimated_finish: datetime | None


def campaign_progress(*, campaign: Campaign, now: datetime | None = None) -> Progress:
    """Counters per outcome, contacts left and an estimated finish (the pace of the last 15 minutes
    of settled dials, else the configured calls per second)."""
    now = now or timezone.now()
    by_status = dict(CampaignContact.objects.filter(campaign=campaign).values_list("status")
                     .annotate(n=Count("pk")).values_list("status", "n"))
    outcomes = dict(CampaignContact.objects.filter(campaign=campaign, status=CampaignContact.Status.DONE)
                    .values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n"))
    attempts = dict(CampaignAttempt.objects.filter(campaign=campaign).exclude(outcome="").values_list("outcome")
                    .annotate(n=Count("pk")).values_list("outcome", "n"))
    total = sum(by_status.values())
    done = by_status.get(CampaignContact.Status.DONE, 0)
    left = total - done
    live = by_status.get(CampaignContact.Status.DIALLING, 0) + by_status.get(CampaignContact.Status.CALLING, 0)
    estimated = None
    if left and campaign.status in (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED):
        recent = CampaignAttempt.objects.filter(campaign=campaign, started_at__gte=now - timedelta(minutes=15)).count()
        per_second = recent / 900 if recent else float(campaign.calls_per_second)
        start = max(now, campaign.starts_at) if campaign.starts_at else now
        estimated = start + timedelta(seconds=left / max(per_second, 1e-6))
    return Progress(total=total, done=done, left=left, live=live, percent=int(done * 100 / total) if total else 0,
                    outcomes={key: outcomes.get(key, 0) for key in Outcome.values if outcomes.get(key)},
                    attempt_outcomes={key: attempts.get(key, 0) for key in Outcome.values if attempts.get(key)},
                    dials=CampaignAttempt.objects.filter(campaign=campaign).count(), estimated_finish=estimated)


def campaign_contact_list(*, campaign: Campaign, status: str = "", outcome: str = "") -> QuerySet[CampaignContact]:
    contacts = CampaignContact.objects.filter(campaign=campaign).prefetch_related("attempt_rows")
    if status:
        contacts = contacts.filter(status=status)
    if outcome:
        contacts = contacts.filter(outcome=outcome)
    return contacts


def campaign_import_get(*, campaign: Campaign, import_id) -> ContactImport:
    try:
        return ContactImport.objects.get(campaign=campaign, pk=import_id)
    except (ContactImport.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such upload.", details={"import_id": import_id}) from None


def campaign_imports(*, campaign: Campaign) -> QuerySet[ContactImport]:
    return ContactImport.objects.filter(campaign=campaign)


def _csv(rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        # A cell starting with = + - @ is a formula to spreadsheets: quote it as text.
        writer.writerow(["'" + cell if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@") and
                         not cell[1:2].isdigit() else cell for cell in row])
    return buffer.getvalue()


def import_errors_csv(*, contact_import: ContactImport) -> str:
    """The per-row error report of one upload."""
    return _csv([["row", "phone_number", "error"]] +
                [[error["row"], error["phone_number"], error["error"]] for error in contact_import.errors])


def campaign_results_csv(*, campaign: Campaign) -> str:
    """One line per contact: number, status, outcome, attempts, each attempt's outcome and time, the
    last call's id, and the contact's own columns."""
    contacts = list(CampaignContact.objects.filter(campaign=campaign).prefetch_related("attempt_rows"))
    columns = sorted({name for contact in contacts for name in (contact.variables or {})})
    rows = [["phone_number", "timezone", "status", "outcome", "attempts", "attempt_outcomes", "last_attempt_at",
             "last_call_id", *columns]]
    for contact in contacts:
        tries = sorted(contact.attempt_rows.all(), key=lambda attempt: attempt.number)
        last = tries[-1] if tries else None
        rows.append([contact.phone_number, contact.timezone, contact.status, contact.outcome, contact.attempts,
                     " ".join(attempt.outcome or "pending" for attempt in tries),
                     last.started_at.isoformat() if last else "", str(last.call_id or "") if last else "",
                     *[(contact.variables or {}).get(name, "") for name in columns]])
    return _csv(rows)


def do_not_call_list(*, search: str = "") -> QuerySet[DoNotCallEntry]:
    entries = DoNotCallEntry.objects.all()
    return entries.filter(Q(number__contains=search) | Q(reason__icontains=search)) if search else entries
