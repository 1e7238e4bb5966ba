"""Real daphne serving config.asgi against the test database, the OpenAI-compatible
double as every provider of an agent (reached through the provider account's
base_url), the Twilio REST double for hang-ups and transfers."""
from __future__ import annotations

import time

import pytest
from django_tenants.utils import tenant_context

from conftest import child_env_for_test_database, run_daphne
from devtools.doubles.openai_server import OpenAIDouble, Rule
from devtools.doubles.twilio_rest import TwilioRestDouble

ACME_NUMBER = "+15550001000"
GLOBEX_NUMBER = "+15550002000"
TWILIO_SID = "AC" + "0" * 32
TRANSFER_TO = "+15550009999"

RULES = [
    Rule(when="who is this", reply="This is Acme Dental."),
    Rule(when="that is all", tool="end_call", arguments={"reason": "caller is done"}),
    Rule(when="real person", tool="transfer_to_human", arguments={"reason": "asked for a person"}),
]


@pytest.fixture(scope="session")
def openai_double():
    with OpenAIDouble(rules=list(RULES)) as double:
        yield double


@pytest.fixture
def llm(openai_double):
    """The double, reset for this test."""
    openai_double.requests.clear()
    openai_double.rules[:] = list(RULES)
    openai_double.hang_llm = False
    yield openai_double
    openai_double.hang_llm = False


@pytest.fixture(scope="session")
def twilio_rest():
    with TwilioRestDouble() as double:
        yield double


@pytest.fixture(scope="session")
def carrier_rest():
    """Telnyx Call Control and Plivo REST, doubled."""
    from devtools.doubles.carrier_rest import CarrierRestDouble

    with CarrierRestDouble() as double:
        yield double


@pytest.fixture(scope="session")
def double_certificate(tmp_path_factory):
    """The certificate TLS doubles serve (the Gemini Live double), trusted by daphne."""
    from devtools.doubles.tls import LocalCertificate

    return LocalCertificate(tmp_path_factory.mktemp("double-tls"))


@pytest.fixture(scope="session")
def voice_server(django_db_setup, django_db_blocker, twilio_rest, carrier_rest, double_certificate, tmp_path_factory):
    with django_db_blocker.unblock():
        env = child_env_for_test_database()
    env.update(VOICE_PROVIDER_TIMEOUT_SECS="1.5", TWILIO_API_BASE_URL=twilio_rest.url,
               TELNYX_API_BASE_URL=carrier_rest.url, PLIVO_API_BASE_URL=carrier_rest.url, LOG_LEVEL="WARNING",
               PROVIDER_EXTRA_CA_CERTS=str(double_certificate.cert_path))
    with run_daphne(env, tmp_path_factory.mktemp("daphne-voice") / "daphne.log") as server:
        yield server


def _make_agent(double, *, name: str, **config):
    from apps.agents.services import agent_save
    from apps.providers.models import ProviderAccount

    ProviderAccount.objects.get_or_create(provider="openai_compatible", defaults={"api_key": "sk-double",
                                                                                   "base_url": double.base_url})
    return agent_save(
        name=name,
        greeting="Hi, Acme Dental here.",
        system_prompt="You answer the phone for Acme Dental.",
        stt_provider="openai_compatible", stt_settings={"model": "whisper-1"},
        llm_provider="openai_compatible", llm_settings={"model": "gpt-4o-mini"},
        tts_provider="openai_compatible", tts_settings={"voice": "alloy", "model": "gpt-4o-mini-tts"},
        **config,
    )


def _cleanup(tenant):
    from apps.agents.models import Agent
    from apps.calls.models import Call
    from apps.providers.models import ProviderAccount
    from apps.telephony.models import PhoneNumber

    with tenant_context(tenant):
        # A call that just hung up may still be writing its record in daphne.
        for _ in range(50):
            if not Call.objects.filter(ended_at__isnull=True, answered_at__isnull=False).exists():
                break
            time.sleep(0.2)
        time.sleep(0.3)
        Call.objects.all().delete()
        PhoneNumber.objects.all().delete()
        Agent.objects.update(current_version=None)
        Agent.objects.all().delete()
        ProviderAccount.objects.all().delete()


def _client(slug):
    from apps.tenancy.models import Client

    return Client.objects.get(slug=slug)


@pytest.fixture
def acme_line(committed_db, openai_double, voice_server):
    """Acme's number, answered by an agent whose providers are all the double
    (committed: daphne must see it; `tenant_a` would wrap it in a transaction)."""
    from apps.telephony.models import PhoneNumber

    tenant_a = _client("acme")

    def configure(**agent_config):
        with tenant_context(tenant_a):
            agent = _make_agent(openai_double, name="Reception", **agent_config)
            PhoneNumber.objects.update_or_create(
                number=ACME_NUMBER,
                defaults={"agent": agent, "carrier": "twilio", "account_sid": TWILIO_SID,
                          "auth_token": "twilio-auth-token-acme"},
            )
        return tenant_a

    yield configure
    _cleanup(tenant_a)


@pytest.fixture
def globex_line(committed_db, openai_double):
    from apps.telephony.models import PhoneNumber

    tenant_b = _client("globex")

    with tenant_context(tenant_b):
        agent = _make_agent(openai_double, name="Globex desk")
        PhoneNumber.objects.create(number=GLOBEX_NUMBER, agent=agent, carrier="twilio", account_sid=TWILIO_SID,
                                   auth_token="twilio-auth-token-globex")
    yield tenant_b
    _cleanup(tenant_b)
