import pytest
from django_tenants.utils import tenant_context

from apps.agents.services import agent_save
from apps.providers.models import ProviderAccount
from apps.telephony.models import PhoneNumber

TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-auth-token-campaigns"
POOL = ("+15550001001", "+15550001002")


def make_agent(name="Reminders"):
    ProviderAccount.objects.get_or_create(provider="deepgram", defaults={"api_key": "dg-key"})
    ProviderAccount.objects.get_or_create(provider="openai", defaults={"api_key": "oa-key"})
    return agent_save(name=name, greeting="Hi {{contact.first_name}}, this is Acme Dental.",
                      system_prompt="Remind {{contact.first_name}} of the appointment on {{contact.appointment}}.",
                      stt_provider="deepgram", stt_settings={"model": "nova-2"},
                      llm_provider="openai", llm_settings={"model": "gpt-4o-mini"}, tts_provider="piper",
                      tts_settings={}, tools=["end_call"])


@pytest.fixture
def twilio_double(settings):
    from devtools.doubles.twilio_rest import TwilioRestDouble

    with TwilioRestDouble() as double:
        settings.TWILIO_API_BASE_URL = double.url
        yield double


@pytest.fixture
def redis_clean():
    """Forget the dialer's Redis state (locks, rotation, per-second counters) around a test."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)

    def wipe():
        for key in client.scan_iter("sb:campaign-*"):
            client.delete(key)

    wipe()
    yield client
    wipe()


@pytest.fixture
def setup(tenant_a, redis_clean):
    """Acme's agent and a pool of two Twilio caller IDs."""
    with tenant_context(tenant_a):
        agent = make_agent()
        numbers = [PhoneNumber.objects.create(number=number, agent=agent, carrier="twilio", account_sid=TWILIO_SID,
                                              auth_token=TWILIO_TOKEN) for number in POOL]
    return {"client": tenant_a, "agent": agent, "numbers": numbers}
