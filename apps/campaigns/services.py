"""Campaign writes and the dialer.

The dialer's life per campaign (`campaign_dispatch`, run by the `campaigns.dispatch` task that
beat's `campaigns.tick` enqueues every few seconds, one dispatcher per campaign at a time):

1. settle: attempts whose calls ended get their outcome; the contact is done or queued again
   per the retry policy; "don't call me" end reasons add the number to the do-not-call list;
2. gate: scheduled → running at `starts_at`, completed after `ends_at` or with no contact left,
   paused at the client's hard usage cap (and running again once it is lifted) or when the
   failure-rate circuit breaker trips;
3. claim: contacts whose turn has come and whose window is open, `FOR UPDATE SKIP LOCKED`, each
   with a lease (a dialer that dies leaves them to be claimed again once the lease expires);
4. dial, paced at the campaign's calls per second, at most one call per second per caller-ID
   number (CAMPAIGN_NUMBER_CALLS_PER_SECOND), rotating across the pool, within the campaign's,
   the client's and the carrier account's concurrency caps; up to CAMPAIGN_DIAL_THREADS dials are
   in flight at once, so the carriers' REST round trips overlap. Each attempt has an idempotency
   key "campaign:<id>:contact:<id>:attempt:<n>" that is the Call's: a replacement dialer reuses
   it and gets the existing Call back instead of dialling again.
"""
from __future__ import annotations

import csv
import functools
import io
import logging
import math
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

import phonenumbers
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.campaigns.models import (
    RETRYABLE_OUTCOMES,
    Campaign,
    CampaignAttempt,
    CampaignContact,
    ContactImport,
    DoNotCallEntry,
    Outcome,
)
from apps.campaigns.windows import window_next_open, window_open, windows_clean, zone_get
from apps.core.errors import ApplicationError, NotFound, ProviderError
from apps.tenancy.audit import CURRENT, AuditEvent, audit_changes, audit_log_record

logger = logging.getLogger(__name__)

EDITABLE = (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED)
FINISHED = (Campaign.Status.COMPLETED, Campaign.Status.CANCELLED)
# An end_call reason that means "do not call me again".
DO_NOT_CALL_REASON = re.compile(
    r"\b(do\s*n[o']?t\s+call|don'?t\s+call|not\s+to\s+(be\s+)?call|stop\s+calling|never\s+call|no\s+more\s+calls"
    r"|remove\s+(me|my\s+number)"
    r"|take\s+me\s+off|opt(ed)?[\s-]?out|unsubscribe|do[\s-]not[\s-]call)", re.IGNORECASE)
# Outcomes that say nothing about the health of the dialling (left out of the circuit breaker).
_BREAKER_IGNORES = (Outcome.NOT_DIALLED, Outcome.DO_NOT_CALL, Outcome.CANCELLED, Outcome.EXPIRED)


def _audit(event_type: str, target, changes=None) -> None:
    """One audit row for a campaign change, in the change's transaction. The actor is the person of
    the request (None when the dialer itself pauses, resumes or completes a campaign)."""
    audit_log_record(actor=CURRENT, client=CURRENT, event_type=event_type, target=target, changes=changes)


def _setting(name: str, default):
    return getattr(settings, name, default)


def _campaign_for_update(campaign_id) -> Campaign:
    try:
        return Campaign.objects.select_for_update().get(pk=campaign_id)
    except (Campaign.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such campaign.", details={"campaign_id": campaign_id}) from None


# --- configuration ---------------------------------------------------------------------------------


def e164(number, *, region: str | None = None) -> str:
    """`number` in E.164 ("+14155550100"); ApplicationError when it is not a valid phone number."""
    text = str(number or "").strip()
    if not text:
        raise ApplicationError("The phone number is empty.")
    try:
        parsed = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        raise ApplicationError(f"{text!r} is not a phone number (use E.164, e.g. +14155550100).") from None
    # Possible (right length for its country), as for agents' transfer numbers: the carrier is the
    # judge of whether it is assigned.
    if not phonenumbers.is_possible_number(parsed):
        raise ApplicationError(f"{text!r} is not a valid phone number (wrong length for its country code).")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def retry_policy_clean(policy) -> dict:
    """{"no_answer" | "busy" | "failed" | "voicemail": {"attempts": 0-10, "delay_minutes": 0-10080}}."""
    if policy in (None, ""):
        return {}
    if not isinstance(policy, dict):
        raise ApplicationError("The retry policy must be an object per outcome.", details={"retry_policy": policy})
    cleaned = {}
    for outcome, rule in policy.items():
        if outcome not in RETRYABLE_OUTCOMES:
            raise ApplicationError(f"Retry policy: unknown outcome {outcome!r}; use "
                                   f"{', '.join(RETRYABLE_OUTCOMES)}.", details={"retry_policy": outcome})
        if not isinstance(rule, dict):
            raise ApplicationError(f"Retry policy for {outcome}: give attempts and delay_minutes.",
                                   details={"retry_policy": outcome})
        attempts, delay = rule.get("attempts", 0), rule.get("delay_minutes", 0)
        for name, value, top in (("attempts", attempts, 10), ("delay_minutes", delay, 7 * 24 * 60)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                raise ApplicationError(f"Retry policy for {outcome}: {name} must be a whole number 0-{top}.",
                                       details={"retry_policy": f"{outcome}.{name}"})
        cleaned[str(outcome)] = {"attempts": attempts, "delay_minutes": delay}
    return cleaned


def _config_clean(values: dict) -> dict:
    """Checks every campaign setting present in `values`, naming the field that is wrong."""
    cleaned = dict(values)
    if "name" in values:
        cleaned["name"] = str(values["name"] or "").strip()[:200]
        if not cleaned["name"]:
            raise ApplicationError("Give the campaign a name.", details={"name": "required"})
    if "timezone" in values:
        zone_get(values["timezone"] or "UTC")
        cleaned["timezone"] = str(values["timezone"] or "UTC")
    if "windows" in values:
        cleaned["windows"] = windows_clean(values["windows"])
    if "retry_policy" in values:
        cleaned["retry_policy"] = retry_policy_clean(values["retry_policy"])
    if "max_concurrent" in values:
        value = values["max_concurrent"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise ApplicationError("Maximum concurrent calls must be 1-1000.", details={"max_concurrent": value})
    if "calls_per_second" in values:
        try:
            rate = Decimal(str(values["calls_per_second"]))
        except (InvalidOperation, ValueError):
            rate = Decimal(-1)
        if not rate.is_finite() or not Decimal("0.01") <= rate <= Decimal(100):
            raise ApplicationError("Calls per second must be between 0.01 and 100.",
                                   details={"calls_per_second": str(values["calls_per_second"])})
        cleaned["calls_per_second"] = rate.quantize(Decimal("0.01"))
    if "breaker_window" in values:
        value = values["breaker_window"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10000:
            raise ApplicationError("The circuit breaker's window must be 1-10000 calls.",
                                   details={"breaker_window": value})
    if "breaker_failure_ratio" in values:
        try:
            ratio = Decimal(str(values["breaker_failure_ratio"]))
        except (InvalidOperation, ValueError):
            ratio = Decimal(-1)
        if not ratio.is_finite() or not Decimal("0.01") <= ratio <= 1:
            raise ApplicationError("The circuit breaker's failure ratio must be between 0.01 and 1.",
                                   details={"breaker_failure_ratio": str(values["breaker_failure_ratio"])})
        cleaned["breaker_failure_ratio"] = ratio.quantize(Decimal("0.01"))
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts and ends and ends <= starts:
        raise ApplicationError("The end date must be after the start date.", details={"ends_at": str(ends)})
    return cleaned


def _agent_and_numbers(*, agent_id, number_ids):
    from apps.agents.models import Agent
    from apps.telephony.models import PhoneNumber

    agent = Agent.objects.filter(pk=agent_id).select_related("current_version").first() if agent_id else None
    if agent is None:
        raise ApplicationError("Choose one of this client's agents.", details={"agent_id": agent_id})
    if agent.current_version is None:
        raise ApplicationError("This agent has no saved version yet.", details={"agent_id": agent_id})
    ids = sorted({int(pk) for pk in number_ids or []})
    numbers = list(PhoneNumber.objects.filter(pk__in=ids, is_active=True))
    if not ids or len(numbers) != len(ids):
        raise ApplicationError("Choose at least one caller-ID number among this client's active numbers.",
                               details={"number_ids": ids})
    return agent, numbers


@transaction.atomic
def campaign_create(*, name: str, agent_id: int, number_ids, timezone_name: str = "UTC", windows=None,
                    starts_at: datetime | None = None, ends_at: datetime | None = None, max_concurrent: int = 5,
                    calls_per_second=1, retry_policy=None, breaker_window: int = 20,
                    breaker_failure_ratio=Decimal("0.5")) -> Campaign:
    """A draft campaign; contacts come next (`campaign_contacts_import`), then `campaign_start`."""
    agent, numbers = _agent_and_numbers(agent_id=agent_id, number_ids=number_ids)
    values = _config_clean(dict(
        name=name, timezone=timezone_name, windows=windows or {}, starts_at=starts_at, ends_at=ends_at,
        max_concurrent=max_concurrent, calls_per_second=calls_per_second, retry_policy=retry_policy or {},
        breaker_window=breaker_window, breaker_failure_ratio=breaker_failure_ratio))
    with transaction.atomic():
        campaign = Campaign.objects.create(agent=agent, **values)
        campaign.numbers.set(numbers)
        _audit(AuditEvent.CAMPAIGN_CREATED, campaign, {"agent": {"before": None, "after": str(agent)}})
    return campaign


@transaction.atomic
def campaign_update(*, campaign_id: int, agent_id: int | None = None, number_ids=None, **values) -> Campaign:
    """Change settings of a draft, scheduled or paused campaign (pause a running one first)."""
    campaign = _campaign_for_update(campaign_id)
    if campaign.status not in EDITABLE:
        raise ApplicationError(f"A {campaign.get_status_display().lower()} campaign cannot be changed; "
                               "pause it first.", details={"status": campaign.status})
    allowed = {"name", "timezone", "windows", "starts_at", "ends_at", "max_concurrent", "calls_per_second",
               "retry_policy", "breaker_window", "breaker_failure_ratio"}
    unknown = set(values) - allowed
    if unknown:
        raise ApplicationError(f"Unknown campaign setting(s): {', '.join(sorted(unknown))}.")
    merged = {"starts_at": campaign.starts_at, "ends_at": campaign.ends_at, **values}
    cleaned = _config_clean(merged)
    before = {name: _audit_value(getattr(campaign, name)) for name in values}
    before.update(agent=str(campaign.agent), numbers=_numbers_listed(campaign))
    for name in values:
        setattr(campaign, name, cleaned[name])
    if agent_id is not None or number_ids is not None:
        agent, numbers = _agent_and_numbers(agent_id=agent_id or campaign.agent_id,
                                            number_ids=number_ids if number_ids is not None
                                            else campaign.numbers.values_list("pk", flat=True))
        campaign.agent = agent
        campaign.numbers.set(numbers)
    campaign.save()
    after = {name: _audit_value(getattr(campaign, name)) for name in values}
    after.update(agent=str(campaign.agent), numbers=_numbers_listed(campaign))
    changes = audit_changes(before, after)
    if changes:
        _audit(AuditEvent.CAMPAIGN_CHANGED, campaign, changes)
    return campaign


def _audit_value(value):
    """A setting as the audit log stores it (JSON): dates, decimals and the like as text."""
    return value if value is None or isinstance(value, (str, int, float, bool, dict, list)) else str(value)


def _numbers_listed(campaign: Campaign) -> list[str]:
    return sorted(campaign.numbers.values_list("number", flat=True))


# --- contacts ----------------------------------------------------------------------------------------

PHONE_COLUMNS = ("phone_number", "phone", "number", "to")
TIMEZONE_COLUMNS = ("timezone", "time_zone", "tz")
_COLUMN_NAME = re.compile(r"[^a-z0-9_]+")


def _variable_name(header: str) -> str:
    name = _COLUMN_NAME.sub("_", header.strip().lower()).strip("_")
    return name if name and not name[0].isdigit() else f"col_{name}"


@dataclass
class _RowError:
    row: int
    phone_number: str
    error: str


def campaign_contacts_import(*, campaign_id: int, data: bytes | str, filename: str = "",
                             default_region: str = "") -> ContactImport:
    """Add contacts from a CSV (a header row; a `phone_number` column (or `phone`, `number`,
    `to`), an optional `timezone` column, every other column a call variable
    `{{contact.<column>}}`). Valid rows are imported, each bad row (invalid number, unknown time
    zone, duplicate) is reported with its row number; the report is the ContactImport."""
    max_rows = int(_setting("CAMPAIGN_CSV_MAX_ROWS", 100_000))
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApplicationError("The file is not UTF-8 text: save the CSV as UTF-8 and upload it again.") from None
    if "\x00" in data:
        raise ApplicationError("The file is not a CSV (it contains NUL bytes).")
    reader = csv.reader(io.StringIO(data))
    try:
        header = next(reader)
    except StopIteration:
        raise ApplicationError("The CSV is empty: it needs a header row with a phone_number column.") from None
    except csv.Error as exc:
        raise ApplicationError(f"The CSV cannot be read: {exc}.") from None
    names = [name.strip().lower() for name in header]
    phone_index = next((names.index(name) for name in PHONE_COLUMNS if name in names), None)
    if phone_index is None:
        raise ApplicationError("The CSV needs a phone_number column (E.164 numbers, e.g. +14155550100).",
                               details={"columns": header[:50]})
    tz_index = next((names.index(name) for name in TIMEZONE_COLUMNS if name in names), None)
    variable_columns = [(index, _variable_name(column)) for index, column in enumerate(header)
                        if index not in (phone_index, tz_index) and column.strip()]
    region = default_region.upper() or None
    with transaction.atomic():
        campaign = _campaign_for_update(campaign_id)
        if campaign.status in FINISHED:
            raise ApplicationError(f"This campaign is {campaign.status}: create a new one for new contacts.")
        seen = set(CampaignContact.objects.filter(campaign=campaign).values_list("phone_number", flat=True))
        first_row = (CampaignContact.objects.filter(campaign=campaign).order_by("-row_number")
                     .values_list("row_number", flat=True).first() or 0)
        errors: list[_RowError] = []
        contacts: list[CampaignContact] = []
        first_seen: dict[str, int] = {}
        total = 0
        try:
            for row_number, row in enumerate(reader, start=2):  # the header is row 1
                if not any(cell.strip() for cell in row):
                    continue
                total += 1
                if total > max_rows:
                    raise ApplicationError(f"The CSV has more than {max_rows} rows: split it into several files.")
                raw_number = row[phone_index].strip() if phone_index < len(row) else ""
                try:
                    number = e164(raw_number, region=region)
                except ApplicationError as error:
                    errors.append(_RowError(row_number, raw_number, error.message))
                    continue
                zone_name = row[tz_index].strip() if tz_index is not None and tz_index < len(row) else ""
                if zone_name:
                    try:
                        zone_get(zone_name)
                    except ApplicationError as error:
                        errors.append(_RowError(row_number, raw_number, error.message))
                        continue
                if number in seen:
                    where = f"row {first_seen[number]}" if number in first_seen else "an earlier upload"
                    errors.append(_RowError(row_number, raw_number, f"{number} is already in this campaign ({where})."))
                    continue
                seen.add(number)
                first_seen[number] = row_number
                contacts.append(CampaignContact(
                    campaign=campaign, phone_number=number, timezone=zone_name, row_number=first_row + len(contacts) + 1,
                    variables={name: row[index].strip() if index < len(row) else "" for index, name in variable_columns},
                ))
        except csv.Error as exc:
            raise ApplicationError(f"The CSV cannot be read past row {reader.line_num}: {exc}.") from None
        CampaignContact.objects.bulk_create(contacts, batch_size=2000)
        report = ContactImport.objects.create(
            campaign=campaign, filename=filename[:255], rows_total=total, rows_imported=len(contacts),
            errors=[{"row": e.row, "phone_number": e.phone_number, "error": e.error} for e in errors])
        _audit(AuditEvent.CAMPAIGN_CONTACTS_IMPORTED, campaign, {
            "file": {"before": None, "after": report.filename}, "rows_imported": {"before": None, "after": len(contacts)},
            "rows_rejected": {"before": None, "after": len(errors)}})
        return report


# --- status changes ----------------------------------------------------------------------------------


@transaction.atomic
def campaign_start(*, campaign_id: int) -> Campaign:
    """Draft → scheduled: the dialer starts it at `starts_at` (now when there is none)."""
    campaign = _campaign_for_update(campaign_id)
    if campaign.status != Campaign.Status.DRAFT:
        raise ApplicationError(f"Only a draft campaign can be started; this one is {campaign.status}.",
                               details={"status": campaign.status})
    if not CampaignContact.objects.filter(campaign=campaign).exists():
        raise ApplicationError("Upload contacts before starting the campaign.")
    if campaign.ends_at and campaign.ends_at <= timezone.now():
        raise ApplicationError("The campaign's end date has passed; change it first.", details={"ends_at": "past"})
    campaign.status = Campaign.Status.SCHEDULED
    campaign.save(update_fields=["status", "updated_at"])
    _audit(AuditEvent.CAMPAIGN_STARTED, campaign, {"status": {"before": Campaign.Status.DRAFT, "after": campaign.status}})
    return campaign


def _pause(campaign: Campaign, *, kind: str, reason: str) -> None:
    before = campaign.status
    campaign.status, campaign.pause_kind, campaign.pause_reason = Campaign.Status.PAUSED, kind, reason[:300]
    campaign.save(update_fields=["status", "pause_kind", "pause_reason", "updated_at"])
    _audit(AuditEvent.CAMPAIGN_PAUSED, campaign, {"status": {"before": before, "after": campaign.status},
                                                  "pause_kind": {"before": "", "after": kind},
                                                  "reason": {"before": "", "after": campaign.pause_reason}})
    logger.info("campaign %s paused (%s): %s", campaign.pk, kind, reason)


@transaction.atomic
def campaign_pause(*, campaign_id: int, reason: str = "") -> Campaign:
    """A person pauses a scheduled or running campaign: no new dials; live calls go on."""
    campaign = _campaign_for_update(campaign_id)
    if campaign.status not in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED):
        raise ApplicationError(f"A {campaign.status} campaign cannot be paused.", details={"status": campaign.status})
    _pause(campaign, kind=Campaign.PauseKind.USER, reason=reason.strip() or "Paused by a person.")
    return campaign


@transaction.atomic
def campaign_resume(*, campaign_id: int) -> Campaign:
    """Paused → running (scheduled when its start is still ahead). A usage-cap pause resumes by
    itself once the cap is lifted; resuming by hand while at the cap is refused."""
    from apps.calls.services import usage_cap_reached

    campaign = _campaign_for_update(campaign_id)
    if campaign.status != Campaign.Status.PAUSED:
        raise ApplicationError(f"Only a paused campaign can be resumed; this one is {campaign.status}.",
                               details={"status": campaign.status})
    if usage_cap_reached(client=connection.tenant):
        raise ApplicationError("This client is at its hard usage cap: the campaign resumes by itself once the cap "
                               "is lifted.", details={"pause_kind": Campaign.PauseKind.USAGE_CAP})
    _resume(campaign)
    return campaign


def _resume(campaign: Campaign) -> None:
    paused_for = campaign.pause_kind
    campaign.status = (Campaign.Status.SCHEDULED if campaign.starts_at and campaign.starts_at > timezone.now()
                       else Campaign.Status.RUNNING)
    campaign.pause_kind, campaign.pause_reason = "", ""
    if campaign.status == Campaign.Status.RUNNING and campaign.started_at is None:
        campaign.started_at = timezone.now()
    campaign.save(update_fields=["status", "pause_kind", "pause_reason", "started_at", "updated_at"])
    _audit(AuditEvent.CAMPAIGN_RESUMED, campaign, {"status": {"before": Campaign.Status.PAUSED, "after": campaign.status},
                                                   "pause_kind": {"before": paused_for, "after": ""}})


@transaction.atomic
def campaign_cancel(*, campaign_id: int) -> Campaign:
    """Stop for good: contacts not yet dialled end as cancelled; calls already live go on and
    their outcomes are still recorded (no retries)."""
    campaign = _campaign_for_update(campaign_id)
    if campaign.status in FINISHED:
        raise ApplicationError(f"This campaign is already {campaign.status}.", details={"status": campaign.status})
    _audit(AuditEvent.CAMPAIGN_CANCELLED, campaign,
           {"status": {"before": campaign.status, "after": Campaign.Status.CANCELLED}})
    campaign.status, campaign.finished_at = Campaign.Status.CANCELLED, timezone.now()
    campaign.pause_kind, campaign.pause_reason = "", ""
    campaign.save(update_fields=["status", "finished_at", "pause_kind", "pause_reason", "updated_at"])
    CampaignContact.objects.filter(campaign=campaign, status=CampaignContact.Status.QUEUED).update(
        status=CampaignContact.Status.DONE, outcome=Outcome.CANCELLED, next_attempt_at=None, updated_at=timezone.now())
    return campaign


# --- do-not-call -----------------------------------------------------------------------------------


def do_not_call_add(*, number: str, source: str = DoNotCallEntry.Source.MANUAL, reason: str = "",
                    call_id=None) -> DoNotCallEntry:
    """Put a number on the client's do-not-call list (idempotent: the first entry stays)."""
    with transaction.atomic():
        entry, created = DoNotCallEntry.objects.get_or_create(
            number=e164(number), defaults={"source": source, "reason": reason[:300], "call_id": call_id})
        if created:
            _audit(AuditEvent.DO_NOT_CALL_ADDED, entry, {"number": {"before": None, "after": entry.number},
                                                         "source": {"before": None, "after": source}})
    return entry


def do_not_call_remove(*, number: str) -> int:
    try:
        number = e164(number)
    except ApplicationError:
        pass
    with transaction.atomic():
        removed = DoNotCallEntry.objects.filter(number=number).delete()[0]
        if removed:
            _audit(AuditEvent.DO_NOT_CALL_REMOVED, None, {"number": {"before": number, "after": None}})
    return removed


# --- the dialer: settling ----------------------------------------------------------------------------


def outcome_of_call(call) -> str:
    """The campaign outcome of an ended call (end reason "voicemail" is the carrier's answering-
    machine verdict; refusals for the usage cap or a suspended client were never dialled)."""
    reason = call.end_reason or ""
    if reason == "voicemail":
        return Outcome.VOICEMAIL
    if reason in ("no_answer",):
        return Outcome.NO_ANSWER
    if reason in ("busy",):
        return Outcome.BUSY
    if reason in ("usage_cap", "client_suspended"):
        return Outcome.NOT_DIALLED
    if reason in ("failed", "error", "unknown_number"):
        return Outcome.FAILED
    return Outcome.COMPLETED if call.answered_at else Outcome.FAILED


def _contact_after(contact: CampaignContact, *, campaign: Campaign, outcome: str, ended_at: datetime,
                   same_outcome: int) -> None:
    """Where a contact goes after one attempt's outcome (the contact row is locked); `same_outcome`:
    how many of its attempts, this one included, ended that way."""
    policy = (campaign.retry_policy or {}).get(outcome) if outcome in RETRYABLE_OUTCOMES else None
    contact.lease_expires_at, contact.lease_owner = None, ""
    if outcome == Outcome.NOT_DIALLED and campaign.status not in FINISHED:
        contact.status, contact.next_attempt_at = CampaignContact.Status.QUEUED, None
        return
    if policy and campaign.status not in FINISHED and same_outcome <= policy["attempts"]:
        contact.status, contact.outcome = CampaignContact.Status.QUEUED, outcome
        contact.next_attempt_at = ended_at + timedelta(minutes=policy["delay_minutes"])
        return
    contact.status, contact.outcome, contact.next_attempt_at = CampaignContact.Status.DONE, outcome, None
    if outcome == Outcome.NOT_DIALLED:
        contact.outcome = Outcome.CANCELLED


def _update_grouped(model, rows: list, fields: list[str]) -> None:
    """Save `fields` of `rows` with one UPDATE per distinct set of values (a settled batch has a few:
    most contacts end the same way), instead of bulk_update's CASE per row and field."""
    groups: dict[tuple, list] = {}
    for row in rows:
        groups.setdefault(tuple(getattr(row, name) for name in fields), []).append(row.pk)
    for values, ids in groups.items():
        model.objects.filter(pk__in=ids).update(**dict(zip(fields, values, strict=True)))


UNCONFIRMED_ERROR = "the dialer stopped before the carrier confirmed this dial; the contact is queued again"
SETTLE_BATCH = 500


def campaign_settle(*, campaign_id: int, now: datetime | None = None) -> dict:
    """Give each attempt whose call ended its outcome and move its contact on, in batches (a few
    queries per batch, whatever its size). Attempts whose call never reached the carrier (no
    carrier id, no status from it) after CAMPAIGN_UNCONFIRMED_DIAL_SECS are ended and their
    contacts queued again. Idempotent; concurrent settlers skip each other's rows."""
    from apps.calls.models import Call
    from apps.calls.selectors import call_end_call_reasons
    from apps.calls.services import call_end

    now = now or timezone.now()
    counts = {"settled": 0, "not_dialled": 0, "do_not_call": 0}
    unconfirmed_before = now - timedelta(seconds=float(_setting("CAMPAIGN_UNCONFIRMED_DIAL_SECS", 600)))
    stale = (CampaignAttempt.objects.filter(campaign_id=campaign_id, settled_at__isnull=True,
                                            call__ended_at__isnull=True, call__carrier_call_id="",
                                            call__carrier_status="", call__status=Call.Status.QUEUED,
                                            call__created_at__lt=unconfirmed_before)
             .values_list("call_id", flat=True))
    for call_id in list(stale):
        call_end(call_id=call_id, end_reason=Call.EndReason.FAILED, usage={}, error=UNCONFIRMED_ERROR)
    while True:
        with transaction.atomic():
            attempts = list(CampaignAttempt.objects.select_for_update(skip_locked=True, of=("self",))
                            .select_related("call").filter(campaign_id=campaign_id, settled_at__isnull=True,
                                                           call__ended_at__isnull=False)
                            .order_by("pk")[:SETTLE_BATCH])
            if not attempts:
                return counts
            campaign = Campaign.objects.get(pk=campaign_id)
            contact_ids = {attempt.contact_id for attempt in attempts}
            contacts = {contact.pk: contact for contact in
                        CampaignContact.objects.select_for_update().filter(pk__in=contact_ids)}
            same = {(contact_id, outcome): n for contact_id, outcome, n in
                    CampaignAttempt.objects.filter(contact_id__in=contact_ids, settled_at__isnull=False)
                    .values_list("contact_id", "outcome").annotate(n=Count("pk")).values_list("contact_id",
                                                                                             "outcome", "n")}
            outcomes = {attempt.pk: (Outcome.NOT_DIALLED if attempt.call.error == UNCONFIRMED_ERROR
                                     else outcome_of_call(attempt.call)) for attempt in attempts}
            reasons = call_end_call_reasons(call_ids=[attempt.call_id for attempt in attempts
                                                      if outcomes[attempt.pk] == Outcome.COMPLETED])
            for attempt in attempts:
                call, contact, outcome = attempt.call, contacts[attempt.contact_id], outcomes[attempt.pk]
                attempt.outcome, attempt.settled_at, attempt.error = outcome, now, call.error[:2000]
                same[(contact.pk, outcome)] = same.get((contact.pk, outcome), 0) + 1
                _contact_after(contact, campaign=campaign, outcome=outcome, ended_at=call.ended_at or now,
                               same_outcome=same[(contact.pk, outcome)])
                contact.updated_at = now
                reason = reasons.get(call.pk, "")
                if outcome == Outcome.COMPLETED and DO_NOT_CALL_REASON.search(reason):
                    do_not_call_add(number=contact.phone_number, source=DoNotCallEntry.Source.CALL,
                                    reason=f"The agent ended the call: {reason}", call_id=call.pk)
                    counts["do_not_call"] += 1
                counts["not_dialled"] += outcome == Outcome.NOT_DIALLED
            _update_grouped(CampaignAttempt, attempts, ["outcome", "settled_at", "error"])
            _update_grouped(CampaignContact, list(contacts.values()), [
                "status", "outcome", "next_attempt_at", "lease_expires_at", "lease_owner", "updated_at"])
            counts["settled"] += len(attempts)


# --- the dialer: gate --------------------------------------------------------------------------------


def _breaker_tripped(campaign: Campaign) -> str:
    """The pause reason when the last `breaker_window` dials failed too often, else ""."""
    window = campaign.breaker_window
    recent = list(CampaignAttempt.objects.filter(campaign=campaign, settled_at__isnull=False)
                  .exclude(outcome__in=_BREAKER_IGNORES).order_by("-settled_at", "-pk")
                  .values_list("outcome", flat=True)[:window])
    if len(recent) < window:
        return ""
    failures = sum(1 for outcome in recent if outcome == Outcome.FAILED)
    if Decimal(failures) / Decimal(window) >= campaign.breaker_failure_ratio:
        return (f"Paused automatically: {failures} of the last {window} calls failed "
                f"(≥ {campaign.breaker_failure_ratio * 100:.0f} %). Check the numbers and the carrier, then resume.")
    return ""


CAP_REASON = "Paused automatically: the client reached its hard usage cap; it resumes when the cap is lifted."


@transaction.atomic
def campaign_gate(*, client, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Status changes the clock and the client's state decide (see the module docstring)."""
    from apps.calls.services import usage_cap_reached

    now = now or timezone.now()
    campaign = _campaign_for_update(campaign_id)
    status = campaign.status
    if status in FINISHED or status == Campaign.Status.DRAFT:
        return campaign
    if campaign.ends_at and now >= campaign.ends_at:
        CampaignContact.objects.filter(campaign=campaign, status=CampaignContact.Status.QUEUED).update(
            status=CampaignContact.Status.DONE, outcome=Outcome.EXPIRED, next_attempt_at=None, updated_at=now)
        return _complete(campaign, now=now)
    if status == Campaign.Status.PAUSED:
        if campaign.pause_kind == Campaign.PauseKind.USAGE_CAP and not usage_cap_reached(client=client):
            _resume(campaign)
        return campaign
    if usage_cap_reached(client=client):
        _pause(campaign, kind=Campaign.PauseKind.USAGE_CAP, reason=CAP_REASON)
        return campaign
    if status == Campaign.Status.SCHEDULED:
        if campaign.starts_at and campaign.starts_at > now:
            return campaign
        campaign.status, campaign.started_at = Campaign.Status.RUNNING, campaign.started_at or now
        campaign.save(update_fields=["status", "started_at", "updated_at"])
    reason = _breaker_tripped(campaign)
    if reason:
        _pause(campaign, kind=Campaign.PauseKind.BREAKER, reason=reason)
        return campaign
    if not CampaignContact.objects.filter(campaign=campaign).exclude(status=CampaignContact.Status.DONE).exists():
        return _complete(campaign, now=now)
    return campaign


def _complete(campaign: Campaign, *, now: datetime) -> Campaign:
    from apps.webhooks.events import CAMPAIGN_COMPLETED
    from apps.webhooks.services import webhook_event_emit

    if campaign.status == Campaign.Status.CANCELLED:
        return campaign
    before = campaign.status
    campaign.status, campaign.finished_at = Campaign.Status.COMPLETED, now
    campaign.pause_kind, campaign.pause_reason = "", ""
    campaign.save(update_fields=["status", "finished_at", "pause_kind", "pause_reason", "updated_at"])
    _audit(AuditEvent.CAMPAIGN_COMPLETED, campaign, {"status": {"before": before, "after": campaign.status}})
    outcomes = dict(CampaignContact.objects.filter(campaign=campaign).values_list("outcome")
                    .annotate(n=Count("pk")).values_list("outcome", "n"))
    webhook_event_emit(event_type=CAMPAIGN_COMPLETED, dedupe_key=f"campaign.completed:{campaign.pk}", data={
        "campaign_id": campaign.pk, "name": campaign.name, "finished_at": now.isoformat(),
        "contacts": sum(outcomes.values()), "outcomes": {key or "none": value for key, value in outcomes.items()}})
    return campaign


# --- the dialer: claiming and dialling ----------------------------------------------------------------


def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


def _open_zones(campaign: Campaign, now: datetime) -> tuple[list[str], dict[str, datetime | None]]:
    """(contact time zones whose window is open now ("" = the campaign's), {closed zone: next opening})."""
    zones = set(CampaignContact.objects.filter(campaign=campaign, status=CampaignContact.Status.QUEUED)
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                .values_list("timezone", flat=True).distinct())
    if (CampaignContact.objects.filter(campaign=campaign, status=CampaignContact.Status.DIALLING,
                                       lease_expires_at__lt=now).exists()):
        zones |= set(CampaignContact.objects.filter(campaign=campaign, status=CampaignContact.Status.DIALLING,
                                                    lease_expires_at__lt=now)
                     .values_list("timezone", flat=True).distinct())
    open_zones, closed = [], {}
    for name in zones:
        zone = zone_get(name or campaign.timezone)
        if window_open(moment=now, zone=zone, windows=campaign.windows):
            open_zones.append(name)
        else:
            closed[name] = window_next_open(moment=now, zone=zone, windows=campaign.windows)
    return open_zones, closed


def _defer_closed_zones(campaign: Campaign, closed: dict[str, datetime | None], now: datetime) -> None:
    """Contacts whose window is closed wait (next_attempt_at) for its next opening."""
    for name, opens_at in closed.items():
        if opens_at is None:
            continue
        (CampaignContact.objects.filter(campaign=campaign, status=CampaignContact.Status.QUEUED, timezone=name)
         .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
         .update(next_attempt_at=opens_at, updated_at=now))


def contact_claim(*, campaign_id: int, limit: int, owner: str, zones: list[str],
                  lease_secs: float | None = None, now: datetime | None = None) -> list[CampaignContact]:
    """Claim up to `limit` contacts due now (queued, or dialling with an expired lease) whose time
    zone is in `zones`, atomically: `FOR UPDATE SKIP LOCKED` so concurrent dialers never take the
    same contact, and a lease so a dead dialer's contacts come back."""
    if limit <= 0 or not zones:
        return []
    lease_secs = lease_secs if lease_secs is not None else float(_setting("CAMPAIGN_LEASE_SECS", 60))
    now = now or timezone.now()
    table = CampaignContact._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS c SET status = %(dialling)s, lease_owner = %(owner)s,
                   lease_expires_at = %(now)s + make_interval(secs => %(lease)s), updated_at = %(now)s
            WHERE c.id IN (
                SELECT id FROM {table}
                WHERE campaign_id = %(campaign)s AND timezone = ANY(%(zones)s) AND (
                      (status = %(queued)s AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s))
                   OR (status = %(dialling)s AND lease_expires_at < %(now)s))
                ORDER BY next_attempt_at NULLS FIRST, row_number, id
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED)
            RETURNING c.id
            """,
            {"dialling": CampaignContact.Status.DIALLING, "queued": CampaignContact.Status.QUEUED, "owner": owner,
             "lease": lease_secs, "now": now, "campaign": campaign_id, "zones": list(zones), "limit": limit},
        )
        ids = [row[0] for row in cursor.fetchall()]
    return list(CampaignContact.objects.filter(pk__in=ids).order_by("row_number", "id"))


@dataclass
class _Capacity:
    """The dispatcher's view of the concurrency caps, refreshed per batch."""

    campaign_free: int
    client_free: int
    per_account: dict = field(default_factory=dict)  # (carrier, account) -> live calls


def _capacity(campaign: Campaign) -> _Capacity:
    from apps.calls.models import Call

    now = timezone.now()
    # A contact whose dialer died (lease expired) holds no line: it is waiting to be claimed again.
    held = (Q(status=CampaignContact.Status.CALLING)
            | Q(status=CampaignContact.Status.DIALLING, lease_expires_at__gte=now))
    campaign_active = CampaignContact.objects.filter(held, campaign=campaign).count()
    live_calls = Call.objects.filter(direction=Call.Direction.OUTBOUND, ended_at__isnull=True,
                                     created_at__gte=now - timedelta(days=1))
    dialling = CampaignContact.objects.filter(status=CampaignContact.Status.DIALLING,
                                              lease_expires_at__gte=now).count()
    client_active = live_calls.count() + dialling
    per_account = {(row["phone_number__carrier"], row["phone_number__account_sid"]): row["n"]
                   for row in live_calls.values("phone_number__carrier", "phone_number__account_sid")
                   .annotate(n=Count("pk"))}
    return _Capacity(
        campaign_free=campaign.max_concurrent - campaign_active,
        client_free=int(_setting("CAMPAIGN_MAX_CONCURRENT_PER_CLIENT", 50)) - client_active,
        per_account=per_account,
    )


class _CallerIds:
    """The pool's numbers in rotation; a number is usable when its carrier account is under its
    concurrency cap and it has not dialled CAMPAIGN_NUMBER_CALLS_PER_SECOND times this second
    (a Redis counter shared by every dialer of the client)."""

    def __init__(self, campaign: Campaign, capacity: _Capacity, *, expected: int = 1):
        self.numbers = list(campaign.numbers.filter(is_active=True).order_by("pk"))
        self.by_number = {number.number: number for number in self.numbers}
        self.capacity = capacity
        self.redis = _redis()
        self.schema = connection.schema_name
        self.rotation_key = f"sb:campaign-rotation:{self.schema}:{campaign.pk}"
        self.per_second = int(_setting("CAMPAIGN_NUMBER_CALLS_PER_SECOND", 1))
        self.account_cap = int(_setting("CAMPAIGN_MAX_CONCURRENT_PER_CARRIER_ACCOUNT", 100))
        # The rotation's place, reserved for the whole batch in one round trip (dialers share it).
        expected = max(1, expected)
        self.turn = int(self.redis.incrby(self.rotation_key, expected)) - expected

    def _account_free(self, number) -> bool:
        return self.capacity.per_account.get((number.carrier, number.account_sid), 0) < self.account_cap

    def _take_second(self, number) -> bool:
        key = f"sb:campaign-cps:{self.schema}:{number.number}:{int(time.time())}"
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 3)
        used, _ = pipe.execute()
        return used <= self.per_second

    def take(self, *, preferred: str = ""):
        """A usable number (the attempt's own when it has one), or None for now."""
        if preferred:
            number = self.by_number.get(preferred)
            if number is None:  # no longer in the pool: the existing Call needs the row only for lookups
                from apps.telephony.models import PhoneNumber

                number = PhoneNumber.objects.filter(number=preferred).first()
            return number
        if not self.numbers:
            return None
        start, self.turn = self.turn, self.turn + 1
        for offset in range(len(self.numbers)):
            number = self.numbers[(start + offset) % len(self.numbers)]
            if self._account_free(number) and self._take_second(number):
                return number
        return None

    def count(self, number) -> None:
        key = (number.carrier, number.account_sid)
        self.capacity.per_account[key] = self.capacity.per_account.get(key, 0) + 1


def _attempts_open(contacts: list[CampaignContact], campaign: Campaign) -> dict[int, CampaignAttempt]:
    """Each claimed contact's open attempt: the one a dead dialer left (same key: no second dial),
    else a new one. Committed before any dial, in three queries for the whole batch."""
    existing = set(CampaignAttempt.objects.filter(contact__in=contacts, settled_at__isnull=True)
                   .values_list("contact_id", flat=True))
    fresh = [CampaignAttempt(campaign=campaign, contact=contact, number=contact.attempts + 1,
                             idempotency_key=f"campaign:{campaign.pk}:contact:{contact.pk}:attempt:{contact.attempts + 1}")
             for contact in contacts if contact.pk not in existing]
    with transaction.atomic():
        # ignore_conflicts: another dialer (holding an expired lease) made the same attempt: same key.
        CampaignAttempt.objects.bulk_create(fresh, ignore_conflicts=True)
        attempts = {attempt.contact_id: attempt for attempt in
                    CampaignAttempt.objects.filter(contact__in=contacts, settled_at__isnull=True)}
        for contact in contacts:
            contact.attempts = attempts[contact.pk].number
        _update_grouped(CampaignContact, contacts, ["attempts"])
    return attempts


class _StopDialling(Exception):
    """The campaign must stop dialling for now (paused, refused by the platform)."""


@dataclass
class _Batch:
    """What one claimed batch did; written back in one transaction when it ends (a dialer that dies
    first leaves its contacts under leases: re-claimed, same keys, their Calls found, not re-dialled).
    Dial threads add to it under `lock`."""

    owner: str
    dialled: list = field(default_factory=list)  # (attempt, call, from_number)
    skipped: list = field(default_factory=list)  # contact ids on the do-not-call list
    lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, *, left: list[CampaignContact]) -> None:
        now = timezone.now()
        with transaction.atomic():
            if self.dialled:  # one UPDATE … FROM (VALUES …) for the batch
                rows = [(attempt.pk, str(call.pk) if call else None, from_number or attempt.from_number)
                        for attempt, call, from_number in self.dialled]
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {CampaignAttempt._meta.db_table} AS a SET call_id = v.call_id, "
                        f"from_number = v.from_number FROM (VALUES "
                        + ", ".join(["(%s::bigint, %s::uuid, %s::varchar)"] * len(rows))
                        + ") AS v(id, call_id, from_number) WHERE a.id = v.id",
                        [value for row in rows for value in row])
            mine = CampaignContact.objects.filter(status=CampaignContact.Status.DIALLING, lease_owner=self.owner)
            mine.filter(pk__in=[attempt.contact_id for attempt, _call, _number in self.dialled]).update(
                status=CampaignContact.Status.CALLING, lease_owner="", lease_expires_at=None, updated_at=now)
            mine.filter(pk__in=self.skipped).update(
                status=CampaignContact.Status.DONE, outcome=Outcome.DO_NOT_CALL, lease_owner="",
                lease_expires_at=None, next_attempt_at=None, updated_at=now)
            mine.filter(pk__in=[contact.pk for contact in left]).update(
                status=CampaignContact.Status.QUEUED, lease_owner="", lease_expires_at=None, updated_at=now)
        self.dialled, self.skipped = [], []

    def dialled_contact_ids(self) -> set[int]:
        with self.lock:
            return {attempt.contact_id for attempt, _call, _number in self.dialled}


def _dial_one(*, campaign: Campaign, contact: CampaignContact, attempt: CampaignAttempt, number, turn,
              batch: _Batch, counts: dict) -> None:
    """Dial one claimed contact from `number` (in a dial thread, or inline). A platform refusal
    (suspended, hard cap, no agent) raises _StopDialling."""
    from apps.calls.models import Call
    from apps.telephony import services as telephony

    try:
        call = telephony.telephony_call_outbound(phone_number=number, to_number=contact.phone_number,
                                                 idempotency_key=attempt.idempotency_key, agent=campaign.agent,
                                                 variables=contact.variables, turn=turn)
    except ProviderError as error:  # the carrier refused: the call is recorded as failed, settled next turn
        call = Call.objects.filter(idempotency_key=attempt.idempotency_key).first()
        logger.info("campaign %s contact %s: carrier refused the dial: %s", campaign.pk, contact.pk, error.message)
        with batch.lock:
            counts["carrier_errors"] += 1
            batch.dialled.append((attempt, call, number.number))
        return
    except ApplicationError as error:  # the platform refused (suspended, cap, no agent): stop for now
        call = Call.objects.filter(idempotency_key=attempt.idempotency_key).first()
        if call is not None:
            with batch.lock:
                batch.dialled.append((attempt, call, number.number))
        raise _StopDialling(error.message) from error
    with batch.lock:
        batch.dialled.append((attempt, call, number.number))
        counts["dialled"] += 1


class _DialPool:
    """Up to `size` dials in flight at once, so the carriers' REST round trips overlap. Each dial
    thread has its own database connection, in the client's schema, closed when the pool closes.
    With size 1, or when the dispatcher runs inside a transaction (whose rows other connections
    cannot see), dials run inline. The first platform refusal stops the pool (`stopped`)."""

    def __init__(self, *, client, size: int):
        self.client = client
        self.size = max(1, size)
        self.inline = self.size == 1 or connection.in_atomic_block
        self.slots = threading.BoundedSemaphore(self.size)
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.stopped = ""  # the refusal's message

    def wait_for_slot(self) -> None:
        """Until fewer than `size` dials are in flight."""
        if not self.inline:
            self.slots.acquire()

    def release_slot(self) -> None:
        if not self.inline:
            self.slots.release()

    def submit(self, job) -> None:
        """Run `job` now (a slot was taken with wait_for_slot)."""
        if self.inline:
            self._run(job)
            return
        if len(self.threads) < self.size:
            thread = threading.Thread(target=self._work, name=f"campaign-dial-{len(self.threads)}", daemon=True)
            self.threads.append(thread)
            thread.start()
        self.jobs.put(job)

    def _run(self, job) -> None:
        try:
            job()
        except _StopDialling as stop:
            self.stopped = self.stopped or stop.args[0]
        except Exception:
            if self.inline:
                raise
            # In a thread: logged; the contact stays under its lease and is claimed again when it expires.
            logger.exception("campaign dial failed")

    def _work(self) -> None:
        from django_tenants.utils import tenant_context

        try:
            with tenant_context(self.client):
                while (job := self.jobs.get()) is not None:
                    try:
                        self._run(job)
                    finally:
                        self.slots.release()
        finally:
            connection.close()  # this thread's connection

    def drain(self) -> None:
        """Until every submitted dial has finished."""
        if self.inline:
            return
        for _ in range(self.size):
            self.slots.acquire()
        for _ in range(self.size):
            self.slots.release()

    def close(self) -> None:
        self.drain()
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()
        self.threads = []


def campaign_dispatch(*, client, campaign_id: int, budget_secs: float | None = None,
                      now: datetime | None = None) -> dict:
    """One dispatcher turn for a campaign (the `campaigns.dispatch` task): settle, gate, then claim and
    dial for up to `budget_secs` seconds. Only one dispatcher runs per campaign at a time (a Redis
    lock that expires, so a dead worker's turn passes on); contacts are still claimed under a lease
    in PostgreSQL, which is what keeps them safe. Up to CAMPAIGN_DIAL_THREADS dials are in flight at
    once (`_DialPool`). `now` fixes the clock (tests)."""
    budget = float(budget_secs if budget_secs is not None else _setting("CAMPAIGN_DISPATCH_BUDGET_SECS", 4))
    counts = {"settled": 0, "dialled": 0, "do_not_call": 0, "carrier_errors": 0, "deferred": 0, "status": ""}
    lock_key = f"sb:campaign-dispatch:{connection.schema_name}:{campaign_id}"
    owner = f"{uuid.uuid4().hex}"
    redis = _redis()
    if not redis.set(lock_key, owner, nx=True, ex=int(budget + float(_setting("CAMPAIGN_LEASE_SECS", 60)))):
        counts["status"] = "busy"
        return counts
    try:
        settled = campaign_settle(campaign_id=campaign_id, now=now)
        counts["settled"] = settled["settled"]
        counts["do_not_call"] += settled["do_not_call"]
        campaign = campaign_gate(client=client, campaign_id=campaign_id, now=now)
        counts["status"] = campaign.status
        if campaign.status != Campaign.Status.RUNNING:
            return counts
        pool = _DialPool(client=client, size=int(_setting("CAMPAIGN_DIAL_THREADS", 8)))
        try:
            _dispatch_loop(client=client, campaign=campaign, owner=owner, budget=budget, counts=counts,
                           clock=(lambda: now) if now else timezone.now, pool=pool)
        finally:
            pool.close()
        return counts
    finally:
        if redis.get(lock_key) == owner.encode():
            redis.delete(lock_key)


def _dispatch_loop(*, client, campaign: Campaign, owner: str, budget: float, counts: dict, clock,
                   pool: _DialPool) -> None:
    from apps.telephony.services import DialTurn

    started = time.monotonic()
    deadline = started + budget
    interval = 1.0 / float(campaign.calls_per_second)
    slack = min(interval / 10, 0.005)
    next_slot = started
    # Loaded once here, not lazily by the dial threads.
    campaign.agent.current_version  # noqa: B018
    turn = DialTurn(client=client, cap_max_age_secs=float(_setting("CAMPAIGN_CAP_CHECK_SECS", 1.0)))
    while time.monotonic() < deadline:
        status = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
        if status != Campaign.Status.RUNNING:
            return
        now = clock()
        zones, closed = _open_zones(campaign, now)
        if closed:
            _defer_closed_zones(campaign, closed, now)
            counts["deferred"] += len(closed)
        capacity = _capacity(campaign)
        free = min(capacity.campaign_free, capacity.client_free)
        if free <= 0:
            # The lines are taken: settle the calls that ended meanwhile (a contact holds its line until
            # its attempt is settled) and go on dialling, rather than leave the rest of the turn unused.
            settled = campaign_settle(campaign_id=campaign.pk, now=now)
            counts["settled"] += settled["settled"]
            counts["do_not_call"] += settled["do_not_call"]
            if not settled["settled"]:
                return
            # What settling may decide, as at the turn's start: the circuit breaker, the end, the cap.
            counts["status"] = campaign_gate(client=client, campaign_id=campaign.pk, now=now).status
            if counts["status"] != Campaign.Status.RUNNING:
                return
            capacity = _capacity(campaign)
            free = min(capacity.campaign_free, capacity.client_free)
        remaining = deadline - time.monotonic()
        batch_size = min(free, max(1, math.ceil(remaining / interval)), 50)
        contacts = contact_claim(campaign_id=campaign.pk, limit=batch_size, owner=owner, zones=zones, now=now)
        if not contacts:
            return
        batch = _Batch(owner=owner)
        blocked = set(DoNotCallEntry.objects.filter(number__in=[c.phone_number for c in contacts])
                      .values_list("number", flat=True))
        batch.skipped = [contact.pk for contact in contacts if contact.phone_number in blocked]
        counts["do_not_call"] += len(batch.skipped)
        contacts = [contact for contact in contacts if contact.phone_number not in blocked]
        attempts = _attempts_open(contacts, campaign) if contacts else {}
        caller_ids = _CallerIds(campaign, capacity, expected=len(contacts))
        try:
            for contact in contacts:
                attempt, number = attempts[contact.pk], None
                while number is None:
                    wait = next_slot - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    if time.monotonic() >= deadline or pool.stopped:
                        break
                    pool.wait_for_slot()  # a free dial thread (the pool's size caps dials in flight)
                    if time.monotonic() >= deadline or pool.stopped:
                        pool.release_slot()
                        break
                    number = caller_ids.take(preferred=attempt.from_number)
                    if number is None:
                        pool.release_slot()
                        # Every caller ID dialled its share this second: wait for the next one.
                        next_slot = math.floor(time.time()) + 1 - time.time() + time.monotonic()
                if number is None:
                    break
                caller_ids.count(number)  # a line of its carrier account, held from now
                # The schedule moves on from this dial's slot, or from its start when it came late: up to
                # `slack` of lateness (the dispatcher's own work for this dial) is made up, so that work
                # does not lower the rate. The k-th dial of a turn never starts before k/cps into the turn
                # and dial starts stay at least 1/cps - slack apart: the rate never exceeds the setting.
                next_slot = max(next_slot, time.monotonic() - slack) + interval
                pool.submit(functools.partial(_dial_one, campaign=campaign, contact=contact, attempt=attempt,
                                              number=number, turn=turn, batch=batch, counts=counts))
        finally:
            pool.drain()
            dialled = batch.dialled_contact_ids()
            # Claimed but not dialled (the budget ran out, the platform refused): queued again now.
            batch.write(left=[contact for contact in contacts if contact.pk not in dialled])
        if pool.stopped:
            _stop(client=client, campaign_id=campaign.pk, message=pool.stopped)
            return


def _stop(*, client, campaign_id: int, message: str) -> None:
    """The platform refused a dial: pause with the reason the person sees."""
    from apps.calls.services import usage_cap_reached

    with transaction.atomic():
        campaign = _campaign_for_update(campaign_id)
        if campaign.status != Campaign.Status.RUNNING:
            return
        if usage_cap_reached(client=client):
            _pause(campaign, kind=Campaign.PauseKind.USAGE_CAP, reason=CAP_REASON)
        else:
            _pause(campaign, kind=Campaign.PauseKind.ERROR, reason=f"Paused automatically: {message}")


def campaigns_tick(*, client) -> int:
    """Beat, per client: enqueue a dispatcher turn for every campaign with work (running, scheduled,
    paused at the cap, or with attempts still to settle). Returns how many were enqueued."""
    from apps.campaigns.tasks import dispatch

    busy = set(CampaignAttempt.objects.filter(settled_at__isnull=True).values_list("campaign_id", flat=True).distinct())
    live = set(Campaign.objects.filter(status__in=(Campaign.Status.SCHEDULED, Campaign.Status.RUNNING,
                                                   Campaign.Status.PAUSED)).values_list("pk", flat=True))
    for campaign_id in sorted(busy | live):
        dispatch.delay(campaign_id)
    return len(busy | live)


dialer_tick = campaigns_tick  # the name the design notes use
