"""Demo data for `manage.py seed_demo`: a draft reminder campaign on the demo agent and line, with a
few contacts, so a new user sees the campaign pages filled in. It stays a draft: starting it would dial
(the demo line's Twilio account is not real). Idempotent."""
from __future__ import annotations

DEMO_CAMPAIGN_NAME = "Demo: appointment reminders"
DEMO_CONTACTS_CSV = (
    "phone_number,first_name,appointment,timezone\n"
    "+14155550101,Ada,Tuesday 10:00,America/Los_Angeles\n"
    "+12125550102,Grace,Wednesday 14:30,America/New_York\n"
    "+13125550103,Alan,Thursday 09:15,America/Chicago\n"
    "not-a-number,Edsger,Friday 11:00,\n"
)
WEEKDAYS_9_TO_5 = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def seed_demo_data(*, client) -> None:
    from apps.agents.models import Agent
    from apps.campaigns.models import Campaign
    from apps.campaigns.services import campaign_contacts_import, campaign_create
    from apps.telephony.models import PhoneNumber

    if Campaign.objects.filter(name=DEMO_CAMPAIGN_NAME).exists():
        return
    agent = Agent.objects.filter(name="Demo receptionist").first()
    number = PhoneNumber.objects.filter(number="+15550100100").first()
    if agent is None or number is None:  # the agents app's seed makes both; nothing to hang a campaign on
        return
    campaign = campaign_create(
        name=DEMO_CAMPAIGN_NAME, agent_id=agent.pk, number_ids=[number.pk], timezone_name=client.timezone or "UTC",
        windows=WEEKDAYS_9_TO_5, max_concurrent=2, calls_per_second=1,
        retry_policy={"no_answer": {"attempts": 2, "delay_minutes": 60}, "busy": {"attempts": 2, "delay_minutes": 15}})
    # The last row is bad on purpose: the import's error report shows what a rejected row looks like.
    campaign_contacts_import(campaign_id=campaign.pk, data=DEMO_CONTACTS_CSV, filename="demo-contacts.csv")
