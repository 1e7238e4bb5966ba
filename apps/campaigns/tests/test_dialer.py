"""The dialer in one process against the Twilio REST double: what is dialled, from which caller ID,
with which key and variables; retries per outcome; do-not-call; windows; pause / resume / cancel;
the circuit breaker and the usage-cap pause."""
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.agents.selectors import agent_runtime_config
from apps.calls.models import Call
from apps.calls.services import call_answered, call_carrier_status_update, call_end, call_turn_record
from apps.campaigns.models import Campaign, CampaignAttempt, CampaignContact, DoNotCallEntry, Outcome
from apps.campaigns.services import (
    campaign_cancel,
    campaign_contacts_import,
    campaign_create,
    campaign_dispatch,
    campaign_pause,
    campaign_resume,
    campaign_start,
    do_not_call_add,
    outcome_of_call,
)
from apps.core.errors import ApplicationError

UTC = ZoneInfo("UTC")


def _campaign(setup, csv_text: str, **config):
    campaign = campaign_create(name="Reminders", agent_id=setup["agent"].pk,
                               number_ids=[number.pk for number in setup["numbers"]], **config)
    campaign_contacts_import(campaign_id=campaign.pk, data=csv_text.encode())
    campaign_start(campaign_id=campaign.pk)
    return campaign


def _dispatch(setup, campaign, **kwargs):
    kwargs.setdefault("budget_secs", 8)  # the first dial of a process imports the Twilio SDK (seconds)
    return campaign_dispatch(client=setup["client"], campaign_id=campaign.pk, **kwargs)


def _contact(campaign, number) -> CampaignContact:
    return CampaignContact.objects.get(campaign=campaign, phone_number=number)


def _ring_out(call, carrier_status: str):
    """The carrier's status callback for an unanswered end (no-answer, busy, failed)."""
    call_carrier_status_update(call_id=call.pk, carrier_status=carrier_status)


def _answered_and_ended(call, *, end_call_reason: str = ""):
    call_answered(call_id=call.pk, carrier_call_id=call.carrier_call_id)
    if end_call_reason:
        call_turn_record(call_id=call.pk, turn={"index": 0, "user_text": "Please stop calling me.", "bot_text": "Sorry.",
                                                "tool_calls": [{"name": "end_call",
                                                                "arguments": {"reason": end_call_reason}}]})
    call_end(call_id=call.pk, end_reason=Call.EndReason.AGENT_ENDED if end_call_reason
             else Call.EndReason.CALLER_HUNG_UP, usage={})


def test_dispatch_dials_each_contact_once_with_its_key_variables_and_rotating_caller_ids(setup, twilio_double):
    with tenant_context(setup["client"]):
        campaign = _campaign(setup, "phone_number,first_name,Appointment Date\n"
                                    "+15557770001,Ada,Tuesday 10:00\n+15557770002,Alan,Wednesday 11:00\n",
                             calls_per_second=10)
        counts = _dispatch(setup, campaign)
        assert (counts["dialled"], counts["status"]) == (2, "running")
        attempts = list(CampaignAttempt.objects.filter(campaign=campaign).order_by("contact__row_number"))
        first, second = (_contact(campaign, "+15557770001"), _contact(campaign, "+15557770002"))
        assert [(a.contact_id, a.number, a.idempotency_key, a.from_number) for a in attempts] == [
            (first.pk, 1, f"campaign:{campaign.pk}:contact:{first.pk}:attempt:1", "+15550001001"),
            (second.pk, 1, f"campaign:{campaign.pk}:contact:{second.pk}:attempt:1", "+15550001002"),
        ]
        call = attempts[0].call
        assert (call.idempotency_key, call.from_number, call.to_number, call.variables) == (
            attempts[0].idempotency_key, "+15550001001", "+15557770001",
            {"first_name": "Ada", "appointment_date": "Tuesday 10:00"})
        assert [(c.status, c.attempts) for c in (first, second)] == [("calling", 1), ("calling", 1)]
        # The agent sees the columns as {{contact.<column>}}.
        config = agent_runtime_config(agent_version=call.agent_version, call=call, client=setup["client"])
        assert config.variables["contact"] == {"first_name": "Ada", "appointment_date": "Tuesday 10:00"}
        # A second turn while both calls are live dials nobody again.
        assert _dispatch(setup, campaign, budget_secs=0.5)["dialled"] == 0
    assert twilio_double.dials == {"+15557770001": 1, "+15557770002": 1}
    assert [r.form["From"][0] for r in twilio_double.requests] == ["+15550001001", "+15550001002"]


def test_concurrency_cap_and_calls_per_second_hold(setup, twilio_double):
    rows = "".join(f"+1555777{index:04d}\n" for index in range(6))
    with tenant_context(setup["client"]):
        campaign = _campaign(setup, "phone_number\n" + rows, max_concurrent=3, calls_per_second=2)
        assert _dispatch(setup, campaign)["dialled"] == 3  # the cap, not the budget, stops it
        dialled = list(Call.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:")
                       .order_by("created_at").values_list("created_at", flat=True))  # the dial moments
        assert len(dialled) == 3
        # 2 per second: the third dial comes at least ~1 s after the first.
        assert (dialled[2] - dialled[0]).total_seconds() >= 0.9
        for attempt in CampaignAttempt.objects.filter(campaign=campaign).select_related("call"):
            _answered_and_ended(attempt.call)
        assert _dispatch(setup, campaign)["dialled"] == 3
        assert CampaignContact.objects.filter(campaign=campaign, status="done", outcome="completed").count() == 3
    assert sum(twilio_double.dials.values()) == 6


def test_retries_follow_the_policy_per_outcome(setup, twilio_double, settings):
    # Pacing per caller ID counts real seconds; this test dials again within one: pacing is tested apart.
    settings.CAMPAIGN_NUMBER_CALLS_PER_SECOND = 100
    policy = {"no_answer": {"attempts": 1, "delay_minutes": 30}, "busy": {"attempts": 0, "delay_minutes": 0},
              "failed": {"attempts": 2, "delay_minutes": 5}}
    with tenant_context(setup["client"]):
        campaign = _campaign(setup, "phone_number\n+15557770001\n+15557770002\n", retry_policy=policy,
                             calls_per_second=10)
        _dispatch(setup, campaign)
        by_number = {a.contact.phone_number: a.call for a in CampaignAttempt.objects.select_related("call", "contact")}
        _ring_out(by_number["+15557770001"], "no-answer")
        _ring_out(by_number["+15557770002"], "busy")
        _dispatch(setup, campaign, budget_secs=0.5)
        first, second = _contact(campaign, "+15557770001"), _contact(campaign, "+15557770002")
        ended = Call.objects.get(pk=by_number["+15557770001"].pk).ended_at
        assert (first.status, first.outcome, first.next_attempt_at) == ("queued", "no_answer", ended + timedelta(minutes=30))
        assert (second.status, second.outcome, second.attempts) == ("done", "busy", 1)  # busy: no retry
        # Not before the delay...
        assert _dispatch(setup, campaign, budget_secs=0.5)["dialled"] == 0
        # ...then attempt 2, with its own key.
        later = ended + timedelta(minutes=31)
        assert _dispatch(setup, campaign, budget_secs=0.5, now=later)["dialled"] == 1
        second_try = CampaignAttempt.objects.get(contact=first, number=2)
        assert second_try.idempotency_key == f"campaign:{campaign.pk}:contact:{first.pk}:attempt:2"
        _ring_out(second_try.call, "no-answer")
        _dispatch(setup, campaign, budget_secs=0.5, now=later + timedelta(minutes=1))
        first.refresh_from_db()
        assert (first.status, first.outcome, first.attempts) == ("done", "no_answer", 2)  # 1 retry after no answer
        assert list(CampaignAttempt.objects.filter(contact=first).values_list("number", "outcome")) == [
            (1, "no_answer"), (2, "no_answer")]
        campaign.refresh_from_db()
        assert campaign.status == "completed"
    assert twilio_double.dials == {"+15557770001": 2, "+15557770002": 1}


def test_outcomes_of_ended_calls():
    def call(**fields):
        return Call(**fields)

    assert outcome_of_call(call(end_reason="voicemail", answered_at=timezone.now())) == Outcome.VOICEMAIL
    assert outcome_of_call(call(end_reason="no_answer")) == Outcome.NO_ANSWER
    assert outcome_of_call(call(end_reason="busy")) == Outcome.BUSY
    assert outcome_of_call(call(end_reason="failed")) == Outcome.FAILED
    assert outcome_of_call(call(end_reason="usage_cap")) == Outcome.NOT_DIALLED
    assert outcome_of_call(call(end_reason="caller_hung_up", answered_at=timezone.now())) == Outcome.COMPLETED
    assert outcome_of_call(call(end_reason="error", answered_at=timezone.now())) == Outcome.FAILED


def test_do_not_call_list_is_honoured_and_fed_by_the_agents_end_reason(setup, twilio_double):
    with tenant_context(setup["client"]):
        do_not_call_add(number="+1 555 777 0003", reason="asked by email")
        campaign = _campaign(setup, "phone_number\n+15557770001\n+15557770003\n", calls_per_second=10,
                             retry_policy={"no_answer": {"attempts": 3, "delay_minutes": 0}})
        counts = _dispatch(setup, campaign)
        assert (counts["dialled"], counts["do_not_call"]) == (1, 1)
        skipped = _contact(campaign, "+15557770003")
        assert (skipped.status, skipped.outcome, skipped.attempts) == ("done", "do_not_call", 0)
        call = CampaignAttempt.objects.get(contact__phone_number="+15557770001").call
        _answered_and_ended(call, end_call_reason="The caller asked us not to call again")
        _dispatch(setup, campaign, budget_secs=0.5)
        entry = DoNotCallEntry.objects.get(number="+15557770001")
        assert (entry.source, entry.reason, entry.call_id) == (
            "call", "The agent ended the call: The caller asked us not to call again", call.pk)
        # A second campaign never dials either number.
        other = _campaign(setup, "phone_number\n+15557770001\n+15557770003\n")
        assert _dispatch(setup, other)["dialled"] == 0
        assert set(CampaignContact.objects.filter(campaign=other).values_list("outcome", flat=True)) == {"do_not_call"}
    assert twilio_double.dials == {"+15557770001": 1}


def test_an_ordinary_end_reason_adds_nothing_to_the_list(setup, twilio_double):
    with tenant_context(setup["client"]):
        campaign = _campaign(setup, "phone_number\n+15557770001\n")
        _dispatch(setup, campaign)
        _answered_and_ended(CampaignAttempt.objects.get().call, end_call_reason="appointment confirmed, caller said bye")
        _dispatch(setup, campaign, budget_secs=0.5)
        assert DoNotCallEntry.objects.count() == 0
        assert _contact(campaign, "+15557770001").outcome == "completed"


def test_windows_per_contact_time_zone(setup, twilio_double):
    # Tuesday 1 December 2026 15:00 UTC: 10:00 in New York, 00:00 Wednesday in Tokyo.
    moment = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    windows = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    with tenant_context(setup["client"]):
        campaign = _campaign(setup, "phone_number,timezone\n+15557770001,America/New_York\n+15557770002,Asia/Tokyo\n"
                                    "+15557770003,\n", windows=windows, timezone_name="Europe/Berlin",
                             calls_per_second=10)
        counts = _dispatch(setup, campaign, now=moment)
        assert counts["dialled"] == 2  # New York (10:00) and the campaign's Berlin (16:00)
        tokyo = _contact(campaign, "+15557770002")
        assert (tokyo.status, tokyo.attempts, tokyo.next_attempt_at) == (
            "queued", 0, datetime(2026, 12, 2, 0, 0, tzinfo=UTC))  # Wednesday 09:00 in Tokyo
        assert _dispatch(setup, campaign, now=datetime(2026, 12, 2, 0, 0, tzinfo=UTC))["dialled"] == 1
    assert twilio_double.dials == {"+15557770001": 1, "+15557770002": 1, "+15557770003": 1}


def test_pause_resume_and_cancel(setup, twilio_double):
    rows = "".join(f"+1555777{index:04d}\n" for index in range(4))
    with tenant_context(setup["client"]):
        campaign = _campaign(setup, "phone_number\n" + rows, max_concurrent=1, calls_per_second=10)
        assert _dispatch(setup, campaign)["dialled"] == 1
        campaign_pause(campaign_id=campaign.pk, reason="Dentist is on holiday")
        _answered_and_ended(CampaignAttempt.objects.get().call)
        counts = _dispatch(setup, campaign, budget_secs=0.5)
        assert (counts["dialled"], counts["settled"], counts["status"]) == (0, 1, "paused")
        campaign.refresh_from_db()
        assert (campaign.pause_kind, campaign.pause_reason) == ("user", "Dentist is on holiday")
        campaign_resume(campaign_id=campaign.pk)
        assert _dispatch(setup, campaign)["dialled"] == 1
        live = CampaignAttempt.objects.get(number=1, contact__row_number=2).call
        campaign_cancel(campaign_id=campaign.pk)
        assert list(CampaignContact.objects.filter(campaign=campaign).order_by("row_number")
                    .values_list("status", "outcome")) == [("done", "completed"), ("calling", ""),
                                                           ("done", "cancelled"), ("done", "cancelled")]
        _ring_out(live, "no-answer")
        _dispatch(setup, campaign, budget_secs=0.5)  # settles the live call; no retry after a cancel
        assert _contact(campaign, live.to_number).status == "done"
        with pytest.raises(ApplicationError, match="already cancelled"):
            campaign_cancel(campaign_id=campaign.pk)
        with pytest.raises(ApplicationError, match="Only a paused campaign can be resumed"):
            campaign_resume(campaign_id=campaign.pk)
    assert sum(twilio_double.dials.values()) == 2


def test_the_circuit_breaker_pauses_on_failures(setup, twilio_double, settings):
    settings.CAMPAIGN_NUMBER_CALLS_PER_SECOND = 10
    rows = "".join(f"+1555777{index:04d}\n" for index in range(8))
    twilio_double.fail_with = (500, {"code": 20500, "message": "Internal error", "status": 500})
    with tenant_context(setup["client"]):
        campaign = _campaign(setup, "phone_number\n" + rows, calls_per_second=20, breaker_window=4,
                             breaker_failure_ratio=Decimal("0.5"), max_concurrent=4)
        # 4 at once (the cap): each refused, each call ended "failed"; with the lines full, the same turn
        # settles them and its gate trips the breaker before a fifth dial.
        counts = _dispatch(setup, campaign)
        assert (counts["dialled"], counts["carrier_errors"], counts["settled"], counts["status"]) == (
            0, 4, 4, "paused")
        counts = _dispatch(setup, campaign)
        assert (counts["settled"], counts["status"], counts["dialled"]) == (0, "paused", 0)
        campaign.refresh_from_db()
        assert (campaign.status, campaign.pause_kind, campaign.pause_reason) == (
            "paused", "breaker", "Paused automatically: 4 of the last 4 calls failed (≥ 50 %). Check the numbers and "
                                 "the carrier, then resume.")
        assert CampaignContact.objects.filter(campaign=campaign, status="queued", attempts=0).count() == 4
    assert sum(twilio_double.dials.values()) == 0  # the double refused every create before counting it
    from apps.tenancy.audit import audit_log_for_client

    [paused] = audit_log_for_client(client=setup["client"], event_type="campaign_paused")
    assert (paused.actor, paused.target_id, paused.changes["pause_kind"]["after"]) == (None, str(campaign.pk), "breaker")


def test_the_hard_usage_cap_pauses_and_lifting_it_resumes(setup, twilio_double, monkeypatch):
    # Billing's selector is the door to its ledger; here it reports the hard cap (its own tests cover the sums).
    from apps.billing import selectors
    from apps.billing.selectors import CapStatus

    cap = {"status": CapStatus("hard", "Our lines are closed for this month.")}
    monkeypatch.setattr(selectors, "usage_cap_status", lambda *, client, at=None: cap["status"])
    with tenant_context(setup["client"]):
        campaign = _campaign(setup, "phone_number\n+15557770001\n")
        counts = _dispatch(setup, campaign)
        assert (counts["dialled"], counts["status"]) == (0, "paused")
        campaign.refresh_from_db()
        assert (campaign.pause_kind, campaign.pause_reason) == (
            "usage_cap", "Paused automatically: the client reached its hard usage cap; it resumes when the cap is "
                         "lifted.")
        with pytest.raises(ApplicationError, match="hard usage cap"):
            campaign_resume(campaign_id=campaign.pk)
        cap["status"] = CapStatus("allowed", "")  # the agency lifted the cap
        counts = _dispatch(setup, campaign)  # resumes and dials in the same turn
        assert (counts["status"], counts["dialled"]) == ("running", 1)
        campaign.refresh_from_db()
        assert (campaign.status, campaign.pause_kind, campaign.pause_reason) == ("running", "", "")
    assert twilio_double.dials == {"+15557770001": 1}


def test_a_dial_that_never_reached_the_carrier_is_found_then_placed_again_once_unconfirmed(setup, twilio_double):
    from apps.calls.services import call_create_outbound
    from apps.campaigns.services import _attempts_open, contact_claim

    with tenant_context(setup["client"]):
        campaign = _campaign(setup, "phone_number\n+15557770001\n", calls_per_second=10)
        contact = _contact(campaign, "+15557770001")
        # A worker claimed the contact, committed attempt 1 and its Call, and died before the HTTP request.
        assert [c.pk for c in contact_claim(campaign_id=campaign.pk, limit=5, owner="dead-worker", zones=[""],
                                            lease_secs=0)] == [contact.pk]
        attempt = _attempts_open([contact], Campaign.objects.get(pk=campaign.pk))[contact.pk]
        call, _ = call_create_outbound(phone_number=setup["numbers"][0], to_number=contact.phone_number,
                                       agent=setup["agent"], idempotency_key=attempt.idempotency_key)
        # The next turn claims it again (expired lease): same key, the existing Call, no dial.
        _dispatch(setup, campaign)
        contact.refresh_from_db()
        assert (contact.status, contact.attempts, twilio_double.dials) == ("calling", 1, {})
        assert CampaignAttempt.objects.get(contact=contact).call_id == call.pk
        # No carrier id and no status callback for CAMPAIGN_UNCONFIRMED_DIAL_SECS: never placed; dial again.
        counts = _dispatch(setup, campaign, now=timezone.now() + timedelta(seconds=601))
        assert (counts["settled"], counts["dialled"]) == (1, 1)
        assert list(CampaignAttempt.objects.filter(contact=contact).values_list("number", "outcome")) == [
            (1, "not_dialled"), (2, "")]
        call.refresh_from_db()
        assert (call.end_reason, call.error) == ("failed", "the dialer stopped before the carrier confirmed this "
                                                           "dial; the contact is queued again")
    assert twilio_double.dials == {"+15557770001": 1}


def test_the_tick_is_scheduled_per_client_and_its_task_dials(setup, twilio_double, celery_eager):
    from django_celery_beat.models import PeriodicTask

    from apps.campaigns.tasks import tick

    with tenant_context(setup["client"]):
        task = PeriodicTask.objects.get(name=f"campaigns: dialer tick [{setup['client'].schema_name}]")
        assert (task.task, task.interval.every, task.interval.period, task.enabled) == (
            "campaigns.tick", 5, "seconds", True)
        campaign = _campaign(setup, "phone_number\n+15557770001\n")
        assert tick.delay().get() == 1  # one campaign with work: its dispatcher turn ran (eagerly, here)
        assert _contact(campaign, "+15557770001").status == "calling"
    assert not PeriodicTask.objects.filter(task="campaigns.tick").exists()  # public schema: none
    assert twilio_double.dials == {"+15557770001": 1}
