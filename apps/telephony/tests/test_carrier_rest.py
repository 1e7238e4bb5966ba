"""Hang-up and transfer through each carrier's REST API (Telnyx Call Control, Plivo
Call DELETE) against the REST double: what is sent, and how refusals are classified."""
import base64

import pytest
from django_tenants.utils import tenant_context

from apps.calls.services import call_create_inbound
from apps.core.errors import ProviderError
from apps.telephony.models import PhoneNumber
from apps.telephony.services import telephony_hang_up, telephony_transfer
from devtools.doubles.carrier_rest import CarrierRestDouble

from .conftest import make_agent


@pytest.fixture
def rest(settings):
    with CarrierRestDouble() as double:
        settings.TELNYX_API_BASE_URL = double.url
        settings.PLIVO_API_BASE_URL = double.url
        settings.VONAGE_API_BASE_URL = double.url
        yield double


def _call(tenant, *, carrier, number, carrier_call_id, account_sid="", auth_token=""):
    with tenant_context(tenant):
        PhoneNumber.objects.create(number=number, agent=make_agent(), carrier=carrier, account_sid=account_sid,
                                   auth_token=auth_token)
        return call_create_inbound(to_number=number, from_number="+15557654321", carrier=carrier,
                                   carrier_call_id=carrier_call_id)


def test_telnyx_hang_up_and_transfer_use_call_control(tenant_a, rest):
    call = _call(tenant_a, carrier="telnyx", number="+15550003000", carrier_call_id="v3:abc", auth_token="KEY1")
    with tenant_context(tenant_a):
        telephony_hang_up(call=call)
        telephony_transfer(call=call, to_number="+15550009999")
    assert [(r.method, r.path, r.authorization, r.body) for r in rest.requests] == [
        ("POST", "/v2/calls/v3:abc/actions/hangup", "Bearer KEY1", {}),
        ("POST", "/v2/calls/v3:abc/actions/transfer", "Bearer KEY1", {"to": "+15550009999"}),
    ]


def test_a_call_the_carrier_already_ended_is_not_an_error(tenant_a, rest):
    telnyx = _call(tenant_a, carrier="telnyx", number="+15550003000", carrier_call_id="v3:gone", auth_token="K")
    plivo = _call(tenant_a, carrier="plivo", number="+15550004000", carrier_call_id="uuid-gone",
                  account_sid="MA1", auth_token="tok")
    with tenant_context(tenant_a):
        rest.fail_next = (422, {"errors": [{"code": "90018", "title": "Call has already ended"}]})
        telephony_hang_up(call=telnyx)
        rest.fail_next = (404, {"error": "not found"})
        telephony_hang_up(call=plivo)
    auth = "Basic " + base64.b64encode(b"MA1:tok").decode()
    assert [(r.method, r.path, r.authorization) for r in rest.requests] == [
        ("POST", "/v2/calls/v3:gone/actions/hangup", "Bearer K"), ("DELETE", "/v1/Account/MA1/Call/uuid-gone/", auth)]


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (503, True), (401, False)])
def test_carrier_refusals_are_classified(tenant_a, rest, status, retryable):
    call = _call(tenant_a, carrier="plivo", number="+15550004000", carrier_call_id="uuid-1", account_sid="MA1",
                 auth_token="tok")
    rest.fail_next = (status, {"error": "no"})
    with tenant_context(tenant_a), pytest.raises(ProviderError) as refused:
        telephony_hang_up(call=call)
    assert (refused.value.retryable, refused.value.details) == (retryable, {"status": status})


def test_a_vonage_number_without_a_private_key_says_what_is_missing(tenant_a, rest):
    call = _call(tenant_a, carrier="vonage", number="+15550005000", carrier_call_id="vonage-uuid")
    with tenant_context(tenant_a), pytest.raises(ProviderError,
                                                 match="no application id or private key for REST calls") as refused:
        telephony_hang_up(call=call)
    assert refused.value.retryable is False
    assert rest.requests == []
