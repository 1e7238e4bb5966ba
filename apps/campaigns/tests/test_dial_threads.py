"""Dials in flight at once (CAMPAIGN_DIAL_THREADS): the turn's dial threads, each with its own
connection in the client's schema, overlap their carrier round trips (the Twilio REST double holds
each create until two are in flight: proven without timing), never exceed the concurrency caps,
never dial a contact twice, close the connections they opened, and stop at a platform refusal.
Committed rows (the threads' connections cannot see a test's transaction)."""
import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.calls.models import Call
from apps.calls.services import call_carrier_status_update
from apps.campaigns.models import Campaign, CampaignAttempt, CampaignContact
from apps.campaigns.services import campaign_contacts_import, campaign_create, campaign_dispatch, campaign_start
from apps.telephony.models import PhoneNumber
from apps.webhooks.tests.test_worker import wait_until
from devtools.doubles.twilio_rest import TwilioRestDouble

from .conftest import TWILIO_SID, TWILIO_TOKEN, make_agent

POOL = ("+15550009201", "+15550009202", "+15550009203")
CONTACTS = [f"+1555889{index:04d}" for index in range(12)]
NAME = "Dial threads test"


@pytest.fixture
def acme(committed_db, redis_clean, settings):
    from apps.agents.models import Agent
    from apps.providers.models import ProviderAccount
    from apps.tenancy.models import Client

    settings.CAMPAIGN_DIAL_THREADS = 4
    settings.CAMPAIGN_NUMBER_CALLS_PER_SECOND = 100
    connection.close()
    client = Client.objects.get(slug="acme")
    with tenant_context(client):
        accounts_before = set(ProviderAccount.objects.values_list("pk", flat=True))
    yield client
    with tenant_context(client):  # committed rows: leave acme as we found it
        Call.objects.filter(idempotency_key__startswith="campaign:").delete()
        Campaign.objects.filter(name=NAME).delete()
        PhoneNumber.objects.filter(number__in=POOL).delete()
        Agent.objects.filter(name=NAME).update(current_version=None)
        Agent.objects.filter(name=NAME).delete()
        ProviderAccount.objects.exclude(pk__in=accounts_before).delete()


def _campaign(client, **config) -> Campaign:
    with tenant_context(client):
        agent = make_agent(NAME)
        numbers = [PhoneNumber.objects.create(number=number, agent=agent, carrier="twilio", account_sid=TWILIO_SID,
                                              auth_token=TWILIO_TOKEN) for number in POOL]
        campaign = campaign_create(name=NAME, agent_id=agent.pk, number_ids=[n.pk for n in numbers], **config)
        campaign_contacts_import(campaign_id=campaign.pk, data="phone_number\n" + "\n".join(CONTACTS))
        campaign_start(campaign_id=campaign.pk)
    return campaign


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _live(client, campaign) -> list[Call]:
    with tenant_context(client):
        return list(Call.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:", ended_at__isnull=True))


def test_dials_overlap_within_the_caps_and_nobody_is_dialled_twice(acme):
    campaign = _campaign(acme, calls_per_second=50, max_concurrent=5)
    backends_before = _backends()
    with TwilioRestDouble() as carrier:
        from django.conf import settings

        settings.TWILIO_API_BASE_URL = carrier.url
        carrier.hold_until_in_flight = 2  # each create waits until two are answered at once
        turns = []
        for _turn in range(3):
            with tenant_context(acme):
                turns.append(campaign_dispatch(client=acme, campaign_id=campaign.pk, budget_secs=30)["dialled"])
            live = _live(acme, campaign)
            assert len(live) <= 5  # the campaign's cap, whatever the threads did
            for call in live:
                assert call.carrier_call_id  # each dial recorded the carrier's id before the turn ended
                with tenant_context(acme):
                    call_carrier_status_update(call_id=call.pk, carrier_status="no-answer")
        assert turns == [5, 5, 2]
        assert 2 <= carrier.most_in_flight <= 4  # overlapped, never more than the pool's threads
        assert carrier.dials == {number: 1 for number in CONTACTS}
    with tenant_context(acme):
        assert CampaignAttempt.objects.filter(campaign=campaign).count() == 12
        assert sorted(CampaignAttempt.objects.filter(campaign=campaign).values_list("from_number", flat=True)) == sorted(
            [number for number in POOL for _ in range(4)])  # the rotation, across threads
        # Turns 2 and 3 settled the calls of turns 1 and 2; turn 3's two calls await the next settle.
        assert sorted(CampaignContact.objects.filter(campaign=campaign).values_list("status", "outcome", "attempts")
                      ) == [("calling", "", 1)] * 2 + [("done", "no_answer", 1)] * 10
    # The dial threads' connections were closed with their turn.
    assert wait_until(lambda: _backends() <= backends_before, 30), (_backends(), backends_before)


def test_a_hard_cap_refusal_in_a_dial_thread_pauses_and_dials_nobody(acme, monkeypatch):
    from apps.billing import selectors
    from apps.billing.selectors import CapStatus

    campaign = _campaign(acme, calls_per_second=50, max_concurrent=5)
    verdicts = iter([CapStatus("allowed", "")])  # the turn's gate passes; the dials' own check finds the cap
    monkeypatch.setattr(selectors, "usage_cap_status",
                        lambda *, client, at=None: next(verdicts, CapStatus("hard", "Closed for the month.")))
    with TwilioRestDouble() as carrier:
        from django.conf import settings

        settings.TWILIO_API_BASE_URL = carrier.url
        with tenant_context(acme):
            counts = campaign_dispatch(client=acme, campaign_id=campaign.pk, budget_secs=30)
        assert counts["dialled"] == 0
        assert carrier.dials == {}
    with tenant_context(acme):
        campaign.refresh_from_db()
        assert (campaign.status, campaign.pause_kind) == ("paused", "usage_cap")
        assert not Call.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:").exists()
        # Every claimed contact is queued again at once (not left under its lease).
        assert set(CampaignContact.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"queued"}
