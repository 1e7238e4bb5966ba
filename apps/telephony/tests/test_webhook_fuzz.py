"""Fuzzed carrier webhooks through Django's test client, correctly signed (so the
checks after the signature are reached) or not: the answer is 2xx or 4xx, never a
5xx, and nothing is logged at ERROR (no traceback)."""
import hashlib
import json
import logging
import time
import urllib.parse
import uuid

import jwt
import pytest
from django.http import QueryDict
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from apps.calls.services import call_create_inbound
from apps.telephony.carriers.plivo import signature_v3

from .conftest import TWILIO_TOKEN, VONAGE_SECRET
from .test_other_carriers import _telnyx_headers

_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
_NUMBERISH = st.sampled_from(["+15550001000", "+15550003000", "+15550004000", "15550004000", "15550005000",
                              "+15550009999", "", "+1555000100\x00", "+" + "9" * 30]) | _TEXT
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT
_JSON = st.recursive(_SCALARS, lambda children: st.lists(children, max_size=3)
                     | st.dictionaries(_TEXT, children, max_size=3), max_leaves=10)
FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _form(fields: dict):
    return st.fixed_dictionaries(fields, optional={"Extra": _TEXT, "AccountSid": _TEXT})


def _assert_answered_cleanly(response, caplog):
    assert response.status_code < 500, response.content[:200]
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []
    caplog.clear()


@pytest.fixture
def acme_numbers(numbers, acme_number):
    return None


@FUZZ
@given(params=_form({"To": _NUMBERISH, "From": _NUMBERISH, "CallSid": _TEXT | st.just("CA" + "1" * 32)}),
       signed=st.booleans())
def test_twilio_voice(client, tenant_a, acme_numbers, caplog, params, signed):
    signature = RequestValidator(TWILIO_TOKEN).compute_signature("http://acme.localhost/telephony/twilio/voice/", params)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signed else {}
    response = client.post("/telephony/twilio/voice/", params, HTTP_HOST="acme.localhost", **headers)
    _assert_answered_cleanly(response, caplog)


@FUZZ
@given(params=_form({"CallStatus": _TEXT, "CallDuration": _TEXT}))
def test_twilio_status(client, tenant_a, acme_numbers, caplog, params):
    with tenant_context(tenant_a):
        call = call_create_inbound(to_number="+15550001000", from_number="+15557654321", carrier="twilio",
                                   carrier_call_id="CA" + uuid.uuid4().hex)
    path = f"/telephony/twilio/status/{call.pk}/"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"http://acme.localhost{path}", params)
    response = client.post(path, params, HTTP_HOST="acme.localhost", HTTP_X_TWILIO_SIGNATURE=signature)
    _assert_answered_cleanly(response, caplog)


@FUZZ
@given(params=_form({"To": _NUMBERISH, "From": _NUMBERISH, "CallUUID": _TEXT}))
def test_plivo_answer(client, tenant_a, acme_numbers, caplog, params):
    nonce = uuid.uuid4().hex
    signature = signature_v3(url="http://acme.localhost/telephony/plivo/answer/",
                             params=QueryDict(mutable=True) | params, nonce=nonce, auth_token="plivo-token")
    response = client.post("/telephony/plivo/answer/", params, HTTP_HOST="acme.localhost",
                           HTTP_X_PLIVO_SIGNATURE_V3=signature, HTTP_X_PLIVO_SIGNATURE_V3_NONCE=nonce)
    _assert_answered_cleanly(response, caplog)


_CALL_CONTROL = st.one_of(
    _JSON,
    st.fixed_dictionaries({"data": st.fixed_dictionaries({
        "event_type": st.sampled_from(["call.initiated", "call.hangup"]) | _JSON,
        "payload": st.fixed_dictionaries({"to": _NUMBERISH | _JSON}, optional={
            "from": _NUMBERISH | _JSON, "call_control_id": _TEXT | _JSON,
            "direction": st.just("incoming") | _JSON}) | _JSON})}),
)


@FUZZ
@given(document=_CALL_CONTROL)
def test_telnyx_call_control(client, tenant_a, acme_numbers, caplog, settings, document):
    settings.TELNYX_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens: a REST answer fails as "unreachable"
    body = json.dumps(document)
    response = client.post("/telephony/telnyx/call-control/", body, content_type="application/json",
                           HTTP_HOST="acme.localhost", **_telnyx_headers(body))
    _assert_answered_cleanly(response, caplog)


@FUZZ
@given(params=_form({"To": _NUMBERISH, "From": _NUMBERISH, "CallSid": _TEXT}))
def test_telnyx_texml(client, tenant_a, acme_numbers, caplog, params):
    body = urllib.parse.urlencode(params)
    response = client.post("/telephony/telnyx/voice/", body, content_type="application/x-www-form-urlencoded",
                           HTTP_HOST="acme.localhost", **_telnyx_headers(body))
    _assert_answered_cleanly(response, caplog)


_VONAGE_BODY = _JSON | st.fixed_dictionaries({"to": _NUMBERISH | _JSON},
                                             optional={"from": _NUMBERISH | _JSON, "uuid": _TEXT | _JSON})


@FUZZ
@given(document=_VONAGE_BODY, as_query=st.booleans())
def test_vonage_answer(client, tenant_a, acme_numbers, caplog, document, as_query):
    if as_query and isinstance(document, dict):
        query = urllib.parse.urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in document.items()})
        payload = json.dumps(dict(QueryDict(query).items()), separators=(",", ":"), ensure_ascii=False).encode()
        token = jwt.encode({"iat": int(time.time()), "jti": uuid.uuid4().hex,
                            "payload_hash": hashlib.sha256(payload).hexdigest()}, VONAGE_SECRET, algorithm="HS256")
        response = client.get(f"/telephony/vonage/answer/?{query}", HTTP_HOST="acme.localhost",
                              HTTP_AUTHORIZATION=f"Bearer {token}")
    else:
        body = json.dumps(document).encode()
        token = jwt.encode({"iat": int(time.time()), "jti": uuid.uuid4().hex,
                            "payload_hash": hashlib.sha256(body).hexdigest()}, VONAGE_SECRET, algorithm="HS256")
        response = client.post("/telephony/vonage/answer/", body, content_type="application/json",
                               HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    _assert_answered_cleanly(response, caplog)
