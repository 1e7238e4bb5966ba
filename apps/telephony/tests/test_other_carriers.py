"""Telnyx (ed25519), Plivo (V3 HMAC + nonce) and Vonage (JWT) inbound webhooks: valid → stream with a
stream token, invalid or replayed → 403 and nothing written."""
import base64
import hashlib
import json
import time
import uuid

import jwt
import pytest
from django.http import QueryDict
from django_tenants.utils import tenant_context

from apps.calls.models import Call
from apps.telephony.carriers.plivo import signature_v3
from apps.telephony.carriers.vonage import query_payload
from devtools.doubles.carrier_rest import CarrierRestDouble

from .conftest import PRIVATE_KEY, VONAGE_SECRET, assert_redeemable, stream_token_in


@pytest.fixture
def rest(settings):
    with CarrierRestDouble() as double:
        settings.TELNYX_API_BASE_URL = double.url
        yield double


def _calls(tenant):
    with tenant_context(tenant):
        return list(Call.objects.order_by("created_at").values_list("carrier", "carrier_call_id", "status"))


def _call_pk(tenant):
    with tenant_context(tenant):
        return Call.objects.get().pk


# -- Telnyx ------------------------------------------------------------------------------------

def _telnyx_headers(body: str, timestamp: int | None = None) -> dict:
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = base64.b64encode(PRIVATE_KEY.sign(f"{timestamp}|{body}".encode())).decode()
    return {"HTTP_TELNYX_SIGNATURE_ED25519": signature, "HTTP_TELNYX_TIMESTAMP": timestamp}


def _telnyx_post(client, body, headers, path="/telephony/telnyx/voice/", content_type="application/x-www-form-urlencoded"):
    return client.post(path, body, content_type=content_type, HTTP_HOST="acme.localhost", **headers)


def test_telnyx_signed_webhook_connects(client, tenant_a, numbers):
    body = "CallSid=v3%3Atelnyx1&From=%2B15557654321&To=%2B15550003000"
    response = _telnyx_post(client, body, _telnyx_headers(body))
    assert response.status_code == 200
    assert _calls(tenant_a) == [("telnyx", "v3:telnyx1", "ringing")]
    call_id = _call_pk(tenant_a)
    token = stream_token_in(response.content.decode())
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        '<Stream url="ws://acme.localhost:8000/ws/media/telnyx/" bidirectionalMode="rtp" bidirectionalCodec="PCMU">'
        f'<Parameter name="call_id" value="{call_id}"/><Parameter name="token" value="{token}"/>'
        "</Stream></Connect></Response>"
    )
    assert_redeemable(token, tenant_a, call_id)


@pytest.mark.parametrize("tamper", ["body", "old", "future", "missing", "junk-timestamp"])
def test_telnyx_bad_signature_is_403(client, tenant_a, numbers, tamper):
    body = "CallSid=t2&From=%2B15557654321&To=%2B15550003000"
    offset = {"old": -3600, "future": 3600}.get(tamper, 0)
    headers = _telnyx_headers(body, int(time.time()) + offset)
    if tamper == "missing":
        headers = {}
    if tamper == "junk-timestamp":
        headers["HTTP_TELNYX_TIMESTAMP"] = "12a"
    sent = body + "&x=1" if tamper == "body" else body
    assert _telnyx_post(client, sent, headers).status_code == 403
    assert _calls(tenant_a) == []


def test_telnyx_same_signature_twice_is_refused(client, tenant_a, numbers):
    body = "CallSid=v3%3Atelnyx3&From=%2B15557654321&To=%2B15550003000"
    headers = _telnyx_headers(body)
    assert _telnyx_post(client, body, headers).status_code == 200
    replay = _telnyx_post(client, body, headers)
    assert (replay.status_code, replay.content) == (403, b"invalid signature")
    assert _calls(tenant_a) == [("telnyx", "v3:telnyx3", "ringing")]


def _call_control_body(call_control_id, to="+15550003000", event_type="call.initiated"):
    return json.dumps({"data": {"event_type": event_type, "record_type": "event", "payload": {
        "call_control_id": call_control_id, "direction": "incoming", "from": "+15557654321", "to": to}}})


def test_telnyx_call_control_answer_carries_call_id_and_token_in_client_state(client, tenant_a, numbers, rest):
    body = _call_control_body("v3:cc-1")
    response = _telnyx_post(client, body, _telnyx_headers(body), path="/telephony/telnyx/call-control/",
                            content_type="application/json")
    assert response.status_code == 200
    [answer] = rest.requests
    assert (answer.path, answer.authorization) == ("/v2/calls/v3:cc-1/actions/answer", "Bearer KEY-telnyx")
    state = json.loads(base64.b64decode(answer.body["client_state"]))
    call_id = _call_pk(tenant_a)
    assert sorted(state) == ["call_id", "token"] and state["call_id"] == str(call_id)
    assert_redeemable(state["token"], tenant_a, call_id)


def test_telnyx_call_control_unknown_number_signed_by_the_client_is_recorded_and_rejected(client, tenant_a, numbers,
                                                                                          rest):
    body = _call_control_body("v3:cc-2", to="+15550003999")
    response = _telnyx_post(client, body, _telnyx_headers(body), path="/telephony/telnyx/call-control/",
                            content_type="application/json")
    assert response.status_code == 200
    assert [(r.path, r.body) for r in rest.requests] == [("/v2/calls/v3:cc-2/actions/reject", {"cause": "CALL_REJECTED"})]
    with tenant_context(tenant_a):
        assert list(Call.objects.values_list("status", "end_reason", "to_number", "carrier_call_id")) == [
            ("refused", "unknown_number", "+15550003999", "v3:cc-2")]


@pytest.mark.parametrize("body", ["[]", "1", '"x"', '{"data": []}', '{"data": {"payload": "x"}}',
                                  '{"data": {"event_type": "call.initiated", "payload": {"to": ["+15550003000"]}}}',
                                  "[" * 5000 + "]" * 5000, "not json"])
def test_telnyx_call_control_wrong_shapes_are_400(client, tenant_a, numbers, rest, body):
    response = _telnyx_post(client, body, _telnyx_headers(body), path="/telephony/telnyx/call-control/",
                            content_type="application/json")
    assert response.status_code == 400
    assert rest.requests == [] and _calls(tenant_a) == []


# -- Plivo -------------------------------------------------------------------------------------

def _plivo_post(client, params, *, nonce=None, token="plivo-token"):
    nonce = nonce or uuid.uuid4().hex
    signature = signature_v3(url="http://acme.localhost/telephony/plivo/answer/", params=QueryDict(mutable=True) | params,
                             nonce=nonce, auth_token=token)
    return client.post("/telephony/plivo/answer/", params, HTTP_HOST="acme.localhost",
                       HTTP_X_PLIVO_SIGNATURE_V3=signature, HTTP_X_PLIVO_SIGNATURE_V3_NONCE=nonce)


def test_plivo_signed_answer_connects(client, tenant_a, numbers):
    response = _plivo_post(client, {"CallUUID": "plivo-uuid-1", "From": "15557654321", "To": "15550004000"})
    assert response.status_code == 200
    assert _calls(tenant_a) == [("plivo", "plivo-uuid-1", "ringing")]
    call_id = _call_pk(tenant_a)
    token = stream_token_in(response.content.decode())
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Stream bidirectional="true" keepCallAlive="true" '
        f'contentType="audio/x-mulaw;rate=8000" extraHeaders="callid={call_id.hex},token={token}">'
        "ws://acme.localhost:8000/ws/media/plivo/</Stream></Response>"
    )
    assert token.isalnum() and token == token.lower()  # extraHeaders allow [A-Za-z0-9] only
    assert_redeemable(token, tenant_a, call_id)


def test_plivo_signature_v3_matches_the_documented_construction():
    # url + "?" + sorted key+value pairs + "." + nonce, HMAC-SHA256, base64
    import hmac

    expected = base64.b64encode(hmac.new(b"tok", b"https://h/a/?From1To2.n1", hashlib.sha256).digest()).decode()
    assert signature_v3(url="https://h/a/", params={"To": "2", "From": "1"}, nonce="n1", auth_token="tok") == expected


def test_plivo_bad_signature_is_403(client, tenant_a, numbers):
    response = _plivo_post(client, {"CallUUID": "plivo-uuid-2", "From": "15557654321", "To": "15550004000"},
                           token="not-the-token")
    assert response.status_code == 403
    assert _calls(tenant_a) == []


def test_plivo_nonce_seen_before_is_refused(client, tenant_a, numbers):
    nonce = uuid.uuid4().hex
    first = _plivo_post(client, {"CallUUID": "plivo-uuid-3", "From": "15557654321", "To": "15550004000"}, nonce=nonce)
    # Same nonce, another (validly signed) call: a replayed nonce is refused even with new parameters.
    second = _plivo_post(client, {"CallUUID": "plivo-uuid-4", "From": "15557654321", "To": "15550004000"}, nonce=nonce)
    assert (first.status_code, second.status_code) == (200, 403)
    assert _calls(tenant_a) == [("plivo", "plivo-uuid-3", "ringing")]


# -- Vonage ------------------------------------------------------------------------------------

ANSWER_QUERY = "to=15550005000&from=15557654321&uuid=vonage-uuid-1&conversation_uuid=CON-1"


def _vonage_token(*, payload: bytes | None, secret=VONAGE_SECRET, iat=None, jti="auto", **claims):
    body = {"iat": int(time.time()) if iat is None else iat, "iss": "Vonage", "api_key": "k",
            "application_id": "app-1", **claims}
    if jti is not None:
        body["jti"] = str(uuid.uuid4()) if jti == "auto" else jti
    if payload is not None:
        body["payload_hash"] = hashlib.sha256(payload).hexdigest()
    return jwt.encode(body, secret, algorithm="HS256")


def _query_hash_of(query: str) -> bytes:
    return query_payload(QueryDict(query))


def _vonage_get(client, token, query=ANSWER_QUERY):
    return client.get(f"/telephony/vonage/answer/?{query}", HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_vonage_query_payload_is_the_parameters_as_compact_json_in_order():
    assert _query_hash_of("to=1&from=2&uuid=u") == b'{"to":"1","from":"2","uuid":"u"}'


def test_vonage_signed_answer_returns_a_websocket_ncco_with_a_token(client, tenant_a, numbers):
    response = _vonage_get(client, _vonage_token(payload=_query_hash_of(ANSWER_QUERY)))
    assert response.status_code == 200
    call_id = str(_call_pk(tenant_a))
    [connect] = json.loads(response.content)
    token = connect["endpoint"][0]["headers"]["token"]
    assert connect == {
        "action": "connect",
        "endpoint": [{"type": "websocket", "uri": "ws://acme.localhost:8000/ws/media/vonage/",
                      "content-type": "audio/l16;rate=8000",
                      "headers": {"call_id": call_id, "stream_id": call_id, "call_uuid": "vonage-uuid-1",
                                  "token": token}}],
    }
    assert_redeemable(token, tenant_a, call_id)


def test_vonage_post_answer_with_a_body_hash_connects(client, tenant_a, numbers):
    body = json.dumps({"to": "15550005000", "from": "15557654321", "uuid": "vonage-uuid-post"}).encode()
    response = client.post("/telephony/vonage/answer/", body, content_type="application/json", HTTP_HOST="acme.localhost",
                           HTTP_AUTHORIZATION=f"Bearer {_vonage_token(payload=body)}")
    assert response.status_code == 200
    assert _calls(tenant_a) == [("vonage", "vonage-uuid-post", "ringing")]


@pytest.mark.parametrize("forgery", [
    "other-secret", "no-payload-hash", "hash-of-other-query", "stale-iat", "future-iat", "expired", "no-jti",
    "no-iat", "other-application", "alg-none",
])
def test_vonage_forged_answers_are_403_and_create_no_call(client, tenant_a, numbers, forgery):
    right = _query_hash_of(ANSWER_QUERY)
    token = {
        "other-secret": lambda: _vonage_token(payload=right, secret="not-the-secret-of-acme-0000000000"),
        "no-payload-hash": lambda: _vonage_token(payload=None),
        "hash-of-other-query": lambda: _vonage_token(payload=_query_hash_of(ANSWER_QUERY.replace("5557654321", "1"))),
        "stale-iat": lambda: _vonage_token(payload=right, iat=int(time.time()) - 3600),
        "future-iat": lambda: _vonage_token(payload=right, iat=int(time.time()) + 3600),
        "expired": lambda: _vonage_token(payload=right, exp=int(time.time()) - 10),
        "no-jti": lambda: _vonage_token(payload=right, jti=None),
        "no-iat": lambda: jwt.encode({"jti": "j", "payload_hash": hashlib.sha256(right).hexdigest()}, VONAGE_SECRET,
                                     algorithm="HS256"),
        "other-application": lambda: _vonage_token(payload=right, application_id="app-of-someone-else"),
        "alg-none": lambda: jwt.encode({"iat": int(time.time()), "jti": "j2",
                                        "payload_hash": hashlib.sha256(right).hexdigest()}, None, algorithm="none"),
    }[forgery]()
    assert _vonage_get(client, token).status_code == 403
    assert _calls(tenant_a) == []


def test_vonage_replayed_jti_is_refused(client, tenant_a, numbers):
    token = _vonage_token(payload=_query_hash_of(ANSWER_QUERY))
    assert _vonage_get(client, token).status_code == 200
    assert _vonage_get(client, token).status_code == 403
    assert _calls(tenant_a) == [("vonage", "vonage-uuid-1", "ringing")]


@pytest.mark.parametrize("claimed,accepted", [(b'{"to":"15550005000"}', False), (b"", True), (None, True)])
def test_vonage_bodyless_request_may_not_carry_a_mismatching_hash(claimed, accepted):
    from django.test import RequestFactory

    from apps.telephony.carriers.vonage import verify

    request = RequestFactory().post("/telephony/vonage/answer/", b"", content_type="application/json",
                                    HTTP_AUTHORIZATION=f"Bearer {_vonage_token(payload=claimed)}")
    assert (verify(request=request, signature_secret=VONAGE_SECRET) is not None) is accepted


@pytest.mark.parametrize("body", [b"[]", b"1", b'"x"', b"[" * 5000 + b"]" * 5000, b'{"to": ["15550005000"]}',
                                  b'{"to": {"a": 1}}', b"not json"])
def test_vonage_wrong_body_shapes_are_400(client, tenant_a, numbers, body):
    response = client.post("/telephony/vonage/answer/", body, content_type="application/json", HTTP_HOST="acme.localhost",
                           HTTP_AUTHORIZATION=f"Bearer {_vonage_token(payload=body)}")
    assert response.status_code == 400
    assert _calls(tenant_a) == []


def test_telnyx_call_control_retry_after_our_503_is_accepted(client, tenant_a, numbers, rest):
    rest.fail_next = (503, {"errors": [{"code": "90000", "title": "try later"}]})
    body = _call_control_body("v3:cc-3")
    headers = _telnyx_headers(body)
    first = _telnyx_post(client, body, headers, path="/telephony/telnyx/call-control/", content_type="application/json")
    again = _telnyx_post(client, body, headers, path="/telephony/telnyx/call-control/", content_type="application/json")
    assert (first.status_code, again.status_code) == (503, 200)
    assert [r.path for r in rest.requests] == ["/v2/calls/v3:cc-3/actions/answer"] * 2
    # ...but once answered, the same signature again is a replay.
    replay = _telnyx_post(client, body, headers, path="/telephony/telnyx/call-control/", content_type="application/json")
    assert replay.status_code == 403 and len(rest.requests) == 2


def test_vonage_unknown_number_signed_with_the_clients_secret_is_recorded(client, tenant_a, numbers):
    query = "to=15550005999&from=15557654321&uuid=vonage-uuid-9"
    response = _vonage_get(client, _vonage_token(payload=_query_hash_of(query)), query=query)
    assert response.status_code == 404
    with tenant_context(tenant_a):
        assert list(Call.objects.values_list("status", "end_reason", "to_number", "carrier_call_id")) == [
            ("refused", "unknown_number", "+15550005999", "vonage-uuid-9")]


def test_vonage_unknown_number_signed_with_another_secret_writes_nothing(client, tenant_a, numbers):
    query = "to=15550005999&from=15557654321&uuid=vonage-uuid-10"
    token = _vonage_token(payload=_query_hash_of(query), secret="a-secret-that-is-not-acmes-000000000")
    assert _vonage_get(client, token, query=query).status_code == 404
    assert _calls(tenant_a) == []
