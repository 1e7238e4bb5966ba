"""Usage sent to billing carries what each vendor charges us (provider_cost, USD),
from the vendor modules' price tables or the agency's settings.PROVIDER_PRICES."""
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.billing.models import UsageEvent
from apps.calls.models import Call
from apps.calls.services import call_answered, call_end

# Usage reaches the ledger through the outbox task (calls.ship_usage), run in-process here.
pytestmark = pytest.mark.usefixtures("celery_eager")

USAGE = {
    "call_seconds": 61.25,
    "stt_seconds": {"nova-2": 58.5},
    "llm_input_tokens": {"gpt-4o-mini": 900},
    "llm_output_tokens": {"gpt-4o-mini": 120},
    "llm_cached_tokens": {"gpt-4o-mini": 256},
    "tts_characters": {"eleven_flash_v2_5": 420},
}


def _end_call(tenant, call, django_capture_on_commit_callbacks, *, carrier="twilio"):
    with tenant_context(tenant):
        Call.objects.filter(pk=call.pk).update(stt_provider="deepgram", llm_provider="openai",
                                               tts_provider="elevenlabs", carrier=carrier)
        call_answered(call_id=call.pk, stream_id="MZ1")
        with django_capture_on_commit_callbacks(execute=True):
            call_end(call_id=call.pk, end_reason="caller_hung_up", usage=USAGE)
    return {
        (metric, dimension): (provider, cost, currency)
        for metric, dimension, provider, cost, currency in UsageEvent.objects.filter(
            client=tenant, call_id=str(call.pk)).values_list(
            "metric", "dimension", "provider", "provider_cost", "provider_cost_currency")
    }


def test_each_usage_event_carries_its_vendor_cost(tenant_a, acme_call, django_capture_on_commit_callbacks):
    billed = _end_call(tenant_a, acme_call, django_capture_on_commit_callbacks)
    assert billed == {
        # 58.5 s x 0.0058 / 60 s
        ("stt_seconds", "nova-2"): ("deepgram", Decimal("0.00565500"), "USD"),
        # 900 x 0.15 / 1M, 120 x 0.60 / 1M, 256 x 0.075 / 1M
        ("llm_input_tokens", "gpt-4o-mini"): ("openai", Decimal("0.00013500"), "USD"),
        ("llm_output_tokens", "gpt-4o-mini"): ("openai", Decimal("0.00007200"), "USD"),
        ("llm_cached_tokens", "gpt-4o-mini"): ("openai", Decimal("0.00001920"), "USD"),
        # 420 x 0.05 / 1000
        ("tts_characters", "eleven_flash_v2_5"): ("elevenlabs", Decimal("0.02100000"), "USD"),
        # 61.25 s is two started minutes x 0.0085
        ("carrier_seconds", "voice-inbound"): ("twilio", Decimal("0.01700000"), "USD"),
        # what we bill the client, not a vendor's charge
        ("call_seconds_inbound", ""): ("twilio", Decimal("0E-8"), "USD"),
    }


@pytest.mark.parametrize(("carrier", "cost"), [("telnyx", Decimal("0.00700000")), ("plivo", Decimal("0.01100000"))])
def test_carrier_seconds_are_priced_per_started_minute_of_each_carrier(
    tenant_a, acme_call, django_capture_on_commit_callbacks, carrier, cost
):
    billed = _end_call(tenant_a, acme_call, django_capture_on_commit_callbacks, carrier=carrier)
    assert billed[("carrier_seconds", "voice-inbound")] == (carrier, cost, "USD")


def test_the_agencys_own_prices_override_the_list_prices(
    tenant_a, acme_call, django_capture_on_commit_callbacks, settings
):
    settings.PROVIDER_PRICES = {
        "deepgram": {"stt_seconds": {"nova-2": {"amount": "0.0043", "per": 60}}},
        "twilio": {"carrier_seconds": {"voice-inbound": {"amount": "0.0070", "per": 60, "increment": 1}}},
    }
    billed = _end_call(tenant_a, acme_call, django_capture_on_commit_callbacks)
    assert billed[("stt_seconds", "nova-2")] == ("deepgram", Decimal("0.00419250"), "USD")  # 58.5 x 0.0043 / 60
    assert billed[("carrier_seconds", "voice-inbound")] == ("twilio", Decimal("0.00723333"), "USD")  # 62 s x 0.007 / 60, half-up
    assert billed[("llm_input_tokens", "gpt-4o-mini")] == ("openai", Decimal("0.00013500"), "USD")  # untouched
