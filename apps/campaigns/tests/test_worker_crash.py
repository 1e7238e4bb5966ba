"""A real Celery worker process (the Procfile's `celery -A config worker`) dials a campaign against
the Twilio REST double and is killed (SIGKILL) while the carrier holds a dial it has already
counted. A second worker, driven by the beat tick, finishes the campaign: every contact is dialled
exactly once (the killed dial is found again through its idempotency key, never re-dialled), none
is lost (the dead worker's claimed contacts come back when their leases expire)."""
import os
import re
import signal
import time

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.calls.models import Call
from apps.calls.services import call_carrier_status_update
from apps.campaigns.models import Campaign, CampaignAttempt, CampaignContact
from apps.campaigns.services import campaign_contacts_import, campaign_create, campaign_start
from apps.telephony.models import PhoneNumber
from apps.webhooks.tests.test_worker import wait_until, worker_process
from conftest import child_env_for_test_database
from devtools.doubles.twilio_rest import TwilioRestDouble

from .conftest import TWILIO_SID, TWILIO_TOKEN, make_agent

POOL = ("+15550009101", "+15550009102")
CONTACTS = [f"+1555888{index:04d}" for index in range(6)]


@pytest.fixture
def acme(committed_db, redis_clean):
    from apps.agents.models import Agent
    from apps.providers.models import ProviderAccount
    from apps.tenancy.models import Client

    connection.close()
    client = Client.objects.get(slug="acme")
    with tenant_context(client):
        accounts_before = set(ProviderAccount.objects.values_list("pk", flat=True))
    yield client
    with tenant_context(client):  # committed rows: leave acme as we found it
        Call.objects.filter(idempotency_key__startswith="campaign:").delete()
        Campaign.objects.filter(name="Crash test").delete()
        PhoneNumber.objects.filter(number__in=POOL).delete()
        Agent.objects.filter(name="Crash test agent").update(current_version=None)
        Agent.objects.filter(name="Crash test agent").delete()
        ProviderAccount.objects.exclude(pk__in=accounts_before).delete()


def _state(client, campaign_id):
    with tenant_context(client):
        return (list(CampaignContact.objects.filter(campaign_id=campaign_id).order_by("row_number")
                     .values_list("phone_number", "status", "attempts")),
                CampaignAttempt.objects.filter(campaign_id=campaign_id).count())


def test_a_worker_killed_mid_dial_neither_dials_twice_nor_loses_a_contact(acme, tmp_path):
    from apps.campaigns.tasks import dispatch, tick

    log_path = tmp_path / "worker.log"
    with TwilioRestDouble() as carrier:
        env = child_env_for_test_database()
        env.update(TWILIO_API_BASE_URL=carrier.url, CAMPAIGN_LEASE_SECS="3", CAMPAIGN_DISPATCH_BUDGET_SECS="4",
                   CAMPAIGN_NUMBER_CALLS_PER_SECOND="10", LOG_LEVEL="WARNING")
        with tenant_context(acme):
            agent = make_agent("Crash test agent")
            numbers = [PhoneNumber.objects.create(number=number, agent=agent, carrier="twilio",
                                                  account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN) for number in POOL]
            campaign = campaign_create(name="Crash test", agent_id=agent.pk, number_ids=[n.pk for n in numbers],
                                       calls_per_second=5, max_concurrent=6)
            campaign_contacts_import(campaign_id=campaign.pk, data="phone_number\n" + "\n".join(CONTACTS))
            campaign_start(campaign_id=campaign.pk)
        carrier.dial_delay_secs = 30  # the carrier takes the dial, counts it, and keeps the dialer waiting
        # One dial in flight at the kill, so which calls the carrier placed is exact. (With several dial
        # threads, a dial killed between its Call's INSERT and its HTTP request is placed again only after
        # CAMPAIGN_UNCONFIRMED_DIAL_SECS: test_dialer's never-reached-the-carrier test.) The second worker
        # dials with the default threads.
        with worker_process({**env, "CAMPAIGN_DIAL_THREADS": "1"}, log_path) as first_worker:
            with tenant_context(acme):
                dispatch.delay(campaign.pk)
            assert wait_until(lambda: sum(carrier.dials.values()) == 1, 60), log_path.read_text()[-3000:]
            time.sleep(0.5)
            os.kill(first_worker.pid, signal.SIGKILL)  # mid-dial: the carrier placed the call, we never heard back
            first_worker.wait(10)
        carrier.dial_delay_secs = 0
        # What the dead worker left: one call placed but never confirmed, claimed contacts under leases.
        contacts, attempts = _state(acme, campaign.pk)
        assert attempts == 6  # the claimed batch's attempts (keys) are committed before the first dial
        assert [status for _number, status, _attempts in contacts].count("dialling") >= 1
        with tenant_context(acme):
            (killed,) = Call.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:")
            assert (killed.carrier_call_id, killed.status, killed.ended_at) == ("", "queued", None)

        with worker_process(env, log_path):
            def everyone_called():
                with tenant_context(acme):
                    tick.delay()  # beat's job: a dispatcher turn per campaign with work
                time.sleep(1)
                contacts, _ = _state(acme, campaign.pk)
                return all(status == "calling" for _number, status, _attempts in contacts)

            assert wait_until(everyone_called, 90), (_state(acme, campaign.pk), log_path.read_text()[-3000:])
            assert carrier.dials == {number: 1 for number in CONTACTS}  # nobody dialled twice
            # The carrier reports each call's end (its status callback, by our call id).
            call_ids = [re.search(r"/status/([0-9a-f-]+)/", request.form["StatusCallback"][0]).group(1)
                        for request in carrier.requests if "StatusCallback" in request.form]
            assert len(call_ids) == 6
            with tenant_context(acme):
                for call_id in call_ids:
                    call_carrier_status_update(call_id=call_id, carrier_status="no-answer")

            def completed():
                with tenant_context(acme):
                    tick.delay()
                time.sleep(1)
                with tenant_context(acme):
                    return Campaign.objects.get(pk=campaign.pk).status == "completed"

            assert wait_until(completed, 60), (_state(acme, campaign.pk), log_path.read_text()[-3000:])
    contacts, attempts = _state(acme, campaign.pk)
    assert contacts == [(number, "done", 1) for number in CONTACTS]
    assert attempts == 6
    with tenant_context(acme):
        assert sorted(CampaignContact.objects.filter(campaign_id=campaign.pk).values_list("outcome", flat=True)) == [
            "no_answer"] * 6
        assert Call.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:").count() == 6
        killed.refresh_from_db()
        assert (killed.status, killed.end_reason) == ("no_answer", "no_answer")
    assert carrier.dials == {number: 1 for number in CONTACTS}
