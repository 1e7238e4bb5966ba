import base64
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django_tenants.utils import tenant_context

from apps.agents.services import agent_save
from apps.providers.models import ProviderAccount
from apps.telephony.models import PhoneNumber

TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-auth-token-acme"


def stream_token_in(markup: str) -> str:
    """The stream token an answer carries (TwiML/TeXML Parameter, Plivo extraHeaders, NCCO headers)."""
    found = re.findall(r'name="token" value="([0-9a-z]+)"|token=([0-9a-z]+)|"token": "([0-9a-z]+)"', markup)
    assert len(found) == 1, markup
    return "".join(found[0])


def assert_redeemable(token: str, tenant, call_id) -> None:
    """The token is ours, for this client and this call, unused: the media consumer will take it."""
    from apps.calls.stream_tokens import stream_token_redeem

    with tenant_context(tenant):
        stream_token_redeem(token=token, schema=tenant.schema_name, call_id=str(call_id))


def make_agent(name="Reception"):
    ProviderAccount.objects.get_or_create(provider="deepgram", defaults={"api_key": "dg-key"})
    ProviderAccount.objects.get_or_create(provider="openai", defaults={"api_key": "oa-key"})
    return agent_save(name=name, greeting="Hello!", stt_provider="deepgram", stt_settings={"model": "nova-2"},
                      llm_provider="openai", llm_settings={"model": "gpt-4o-mini"}, tts_provider="piper", tts_settings={})


@pytest.fixture
def acme_number(tenant_a):
    with tenant_context(tenant_a):
        agent = make_agent()
        return PhoneNumber.objects.create(number="+15550001000", agent=agent, carrier="twilio",
                                          account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN)


@pytest.fixture
def globex_number(tenant_b):
    with tenant_context(tenant_b):
        agent = make_agent("Globex desk")
        return PhoneNumber.objects.create(number="+15550002000", agent=agent, carrier="twilio",
                                          account_sid=TWILIO_SID, auth_token="twilio-auth-token-globex")


# Telnyx, Plivo and Vonage numbers of acme (test_other_carriers, test_webhook_fuzz).
PRIVATE_KEY = Ed25519PrivateKey.generate()
PUBLIC_KEY_B64 = base64.b64encode(PRIVATE_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
VONAGE_SECRET = "vonage-signature-secret-of-acme-000000"


@pytest.fixture
def numbers(tenant_a):
    with tenant_context(tenant_a):
        agent = make_agent()
        PhoneNumber.objects.create(number="+15550003000", agent=agent, carrier="telnyx", auth_token="KEY-telnyx",
                                   webhook_public_key=PUBLIC_KEY_B64)
        PhoneNumber.objects.create(number="+15550004000", agent=agent, carrier="plivo", account_sid="MA1", auth_token="plivo-token")
        PhoneNumber.objects.create(number="+15550005000", agent=agent, carrier="vonage", account_sid="app-1",
                                   auth_token=VONAGE_SECRET)


@pytest.fixture
def twilio_double(settings):
    from devtools.doubles.twilio_rest import TwilioRestDouble

    with TwilioRestDouble() as double:
        settings.TWILIO_API_BASE_URL = double.url
        yield double
from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401,E402 (portal user fixtures)
