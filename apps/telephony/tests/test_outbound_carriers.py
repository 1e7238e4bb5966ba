"""Outbound calls on Telnyx (Call Control dial), Plivo (Make Call + answer URL) and Vonage
(create call + answer URL) against the carrier REST double: the exact request, the
stream answer and its token, each carrier's signed status webhook driving the outcome,
answering-machine results, and Plivo's transfer / Vonage's hang-up and transfer."""
import base64
import hashlib
import json
import time
import uuid
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.http import QueryDict
from django_tenants.utils import tenant_context

from apps.agents.services import agent_save
from apps.calls.models import Call
from apps.calls.services import call_answered
from apps.telephony.carriers.plivo import signature_v3
from apps.telephony.carriers.telnyx import _client_state_parameters
from apps.telephony.carriers.vonage import query_payload
from apps.telephony.models import PhoneNumber
from apps.telephony.services import telephony_call_outbound, telephony_hang_up, telephony_transfer
from devtools.doubles.carrier_rest import CarrierRestDouble

from .conftest import PRIVATE_KEY, PUBLIC_KEY_B64, VONAGE_SECRET, assert_redeemable, make_agent, stream_token_in

TELNYX, PLIVO, VONAGE = "+15550003000", "+15550004000", "+15550005000"
CALLEE = "+15557770000"
PLIVO_ID, PLIVO_TOKEN = "MAACME0000000000000A", "plivo-token"
VONAGE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
VONAGE_PEM = VONAGE_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()


@pytest.fixture
def rest(settings):
    with CarrierRestDouble() as double:
        settings.TELNYX_API_BASE_URL = double.url
        settings.PLIVO_API_BASE_URL = double.url
        settings.VONAGE_API_BASE_URL = double.url
        yield double


@pytest.fixture
def lines(tenant_a):
    """Acme's Telnyx, Plivo and Vonage numbers, their agent with voicemail detection off."""
    with tenant_context(tenant_a):
        agent = make_agent()
        return {
            "telnyx": PhoneNumber.objects.create(number=TELNYX, agent=agent, carrier="telnyx", account_sid="conn-1",
                                                 auth_token="KEY-telnyx", webhook_public_key=PUBLIC_KEY_B64),
            "plivo": PhoneNumber.objects.create(number=PLIVO, agent=agent, carrier="plivo", account_sid=PLIVO_ID,
                                                auth_token=PLIVO_TOKEN),
            "vonage": PhoneNumber.objects.create(number=VONAGE, agent=agent, carrier="vonage", account_sid="app-1",
                                                 auth_token=VONAGE_SECRET, api_private_key=VONAGE_PEM),
        }


def _dial(tenant, number, key="k1"):
    with tenant_context(tenant):
        return telephony_call_outbound(phone_number=number, to_number=CALLEE, idempotency_key=key)


def _voicemail_on(tenant, number):
    with tenant_context(tenant):
        agent_save(agent=number.agent, voicemail_detection=True, voicemail_message="Please call us back.")
        number.refresh_from_db()


def _row(tenant, call):
    with tenant_context(tenant):
        return Call.objects.get(pk=call.pk)


# -- Telnyx ------------------------------------------------------------------------------------

def _telnyx_event(client, call, event_type, payload, *, timestamp=None, key=PRIVATE_KEY):
    body = json.dumps({"data": {"event_type": event_type, "id": str(uuid.uuid4()),
                                "payload": {"call_control_id": call.carrier_call_id, **payload}}})
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = base64.b64encode(key.sign(f"{timestamp}|{body}".encode())).decode()
    return client.post(f"/telephony/telnyx/status/{call.pk}/", body, content_type="application/json",
                       HTTP_HOST="acme.localhost", HTTP_TELNYX_SIGNATURE_ED25519=signature,
                       HTTP_TELNYX_TIMESTAMP=timestamp)


def test_telnyx_dial_streams_to_us_with_the_call_and_token_in_client_state(tenant_a, lines, rest):
    call = _dial(tenant_a, lines["telnyx"])
    [sent] = rest.requests
    assert (sent.method, sent.path, sent.authorization) == ("POST", "/v2/calls", "Bearer KEY-telnyx")
    state = _client_state_parameters(sent.body["client_state"])
    assert state["call_id"] == str(call.pk)
    assert_redeemable(state["token"], tenant_a, call.pk)
    assert sent.body == {
        "connection_id": "conn-1", "to": CALLEE, "from": TELNYX,
        "stream_url": "ws://acme.localhost:8000/ws/media/telnyx/", "stream_track": "inbound_track",
        "stream_bidirectional_mode": "rtp", "stream_bidirectional_codec": "PCMU",
        "client_state": sent.body["client_state"],
        "webhook_url": f"http://acme.localhost:8000/telephony/telnyx/status/{call.pk}/", "webhook_url_method": "POST",
    }
    row = _row(tenant_a, call)
    assert (row.carrier, row.carrier_call_id, row.status, row.direction) == ("telnyx", "v3:double-1", "queued",
                                                                             "outbound")


@pytest.mark.parametrize(("cause", "status", "end_reason"), [
    ("user_busy", "busy", "busy"), ("timeout", "no_answer", "no_answer"), ("call_rejected", "failed", "failed"),
    ("normal_clearing", "completed", "caller_hung_up"),
])
def test_telnyx_hangup_event_drives_the_outcome(client, tenant_a, lines, rest, cause, status, end_reason):
    call = _dial(tenant_a, lines["telnyx"])
    assert _telnyx_event(client, call, "call.initiated", {"direction": "outgoing"}).status_code == 200
    assert _row(tenant_a, call).status == "queued"
    assert _telnyx_event(client, call, "call.hangup", {"hangup_cause": cause}).status_code == 200
    row = _row(tenant_a, call)
    assert (row.status, row.end_reason, row.carrier_status) == (status, end_reason, cause)


def test_telnyx_status_event_unsigned_forged_or_replayed_is_403(client, tenant_a, lines, rest):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    call = _dial(tenant_a, lines["telnyx"])
    forged = _telnyx_event(client, call, "call.hangup", {"hangup_cause": "user_busy"}, key=Ed25519PrivateKey.generate())
    stale = _telnyx_event(client, call, "call.hangup", {"hangup_cause": "user_busy"}, timestamp=int(time.time()) - 900)
    assert (forged.status_code, stale.status_code) == (403, 403)
    assert _row(tenant_a, call).ended_at is None
    other = uuid.uuid4()
    assert client.post(f"/telephony/telnyx/status/{other}/", "{}", content_type="application/json",
                       HTTP_HOST="acme.localhost").status_code == 400  # not a Call Control event: shape first


def test_telnyx_asks_for_amd_when_the_agent_detects_voicemail_and_records_the_result(client, tenant_a, lines, rest):
    _voicemail_on(tenant_a, lines["telnyx"])
    call = _dial(tenant_a, lines["telnyx"])
    assert rest.requests[0].body["answering_machine_detection"] == "detect_beep"
    response = _telnyx_event(client, call, "call.machine.detection.ended", {"result": "machine"})
    assert response.status_code == 200
    assert _row(tenant_a, call).answered_by == "machine"
    _telnyx_event(client, call, "call.machine.detection.ended", {"result": "not_sure"})
    assert _row(tenant_a, call).answered_by == "machine"  # "unknown" never overwrites a verdict


# -- Plivo -------------------------------------------------------------------------------------

def _plivo(client, path, params, *, token=PLIVO_TOKEN, nonce=None):
    nonce = nonce or uuid.uuid4().hex
    signature = signature_v3(url=f"http://acme.localhost{path}", params=QueryDict(mutable=True) | params,
                             nonce=nonce, auth_token=token)
    return client.post(path, params, HTTP_HOST="acme.localhost", HTTP_X_PLIVO_SIGNATURE_V3=signature,
                       HTTP_X_PLIVO_SIGNATURE_V3_NONCE=nonce)


def test_plivo_make_call_then_the_answer_webhook_streams_with_a_fresh_token(client, tenant_a, lines, rest):
    _voicemail_on(tenant_a, lines["plivo"])
    call = _dial(tenant_a, lines["plivo"])
    [sent] = rest.requests
    auth = "Basic " + base64.b64encode(f"{PLIVO_ID}:{PLIVO_TOKEN}".encode()).decode()
    status_url = f"http://acme.localhost:8000/telephony/plivo/status/{call.pk}/"
    assert (sent.method, sent.path, sent.authorization) == ("POST", f"/v1/Account/{PLIVO_ID}/Call/", auth)
    assert sent.body == {
        "from": "15550004000", "to": "15557770000",
        "answer_url": f"http://acme.localhost:8000/telephony/plivo/outbound/{call.pk}/", "answer_method": "POST",
        "ring_url": status_url, "ring_method": "POST", "hangup_url": status_url, "hangup_method": "POST",
        "machine_detection": "true", "machine_detection_url": status_url, "machine_detection_method": "POST",
    }
    assert _row(tenant_a, call).carrier_call_id == "00000000-0000-4000-8000-000000000001"  # the request_uuid

    path = f"/telephony/plivo/outbound/{call.pk}/"
    answered = _plivo(client, path, {"CallUUID": "plivo-leg-1", "From": "15550004000", "To": "15557770000",
                                     "Direction": "outbound", "CallStatus": "in-progress"})
    assert answered.status_code == 200
    token = stream_token_in(answered.content.decode())
    assert answered.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Stream bidirectional="true" keepCallAlive="true" '
        f'contentType="audio/x-mulaw;rate=8000" extraHeaders="callid={call.pk.hex},token={token}">'
        "ws://acme.localhost:8000/ws/media/plivo/</Stream></Response>")
    assert_redeemable(token, tenant_a, call.pk)
    assert _row(tenant_a, call).carrier_call_id == "plivo-leg-1"  # the answered leg's CallUUID

    assert _plivo(client, f"/telephony/plivo/status/{call.pk}/",
                  {"CallUUID": "plivo-leg-1", "Machine": "true"}).status_code == 204
    assert _row(tenant_a, call).answered_by == "machine"


def test_plivo_answer_webhook_forged_or_for_a_streaming_call_is_refused(client, tenant_a, lines, rest):
    call = _dial(tenant_a, lines["plivo"])
    path = f"/telephony/plivo/outbound/{call.pk}/"
    params = {"CallUUID": "plivo-leg-1", "From": "15550004000", "To": "15557770000"}
    assert _plivo(client, path, params, token="not-the-token").status_code == 403
    with tenant_context(tenant_a):
        call_answered(call_id=call.pk)
    assert _plivo(client, path, params).content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup reason="rejected"/></Response>')


@pytest.mark.parametrize(("carrier_status", "status", "end_reason"), [
    ("busy", "busy", "busy"), ("no-answer", "no_answer", "no_answer"), ("timeout", "no_answer", "no_answer"),
    ("failed", "failed", "failed"), ("completed", "completed", "caller_hung_up"),
])
def test_plivo_hangup_callback_drives_the_outcome(client, tenant_a, lines, rest, carrier_status, status, end_reason):
    call = _dial(tenant_a, lines["plivo"])
    path = f"/telephony/plivo/status/{call.pk}/"
    assert _plivo(client, path, {"CallUUID": "leg", "CallStatus": "ringing"}).status_code == 204
    assert _row(tenant_a, call).status == "ringing"
    assert _plivo(client, path, {"CallUUID": "leg", "CallStatus": carrier_status, "Duration": "0",
                                 "HangupCause": "x"}).status_code == 204
    row = _row(tenant_a, call)
    assert (row.status, row.end_reason, row.carrier_status, row.carrier_duration_secs) == (
        status, end_reason, carrier_status, 0)


def test_plivo_transfer_points_the_a_leg_at_xml_that_dials_the_person(client, tenant_a, lines, rest):
    call = _dial(tenant_a, lines["plivo"])
    _plivo(client, f"/telephony/plivo/outbound/{call.pk}/", {"CallUUID": "plivo-leg-7", "From": "15550004000",
                                                             "To": "15557770000"})
    with tenant_context(tenant_a):
        call = Call.objects.get(pk=call.pk)
        telephony_transfer(call=call, to_number="+15550009999")
        telephony_hang_up(call=call)
    transfer, hang_up = rest.requests[1:]
    transfer_path = "/telephony/plivo/transfer/?" + urlencode({"to": "+15550009999"})
    assert (transfer.method, transfer.path, transfer.body) == (
        "POST", f"/v1/Account/{PLIVO_ID}/Call/plivo-leg-7/",
        {"legs": "aleg", "aleg_url": f"http://acme.localhost:8000{transfer_path}", "aleg_method": "POST"})
    assert (hang_up.method, hang_up.path) == ("DELETE", f"/v1/Account/{PLIVO_ID}/Call/plivo-leg-7/")
    assert _row(tenant_a, call).transferred_to == "+15550009999"
    # Plivo fetches the A leg's new XML, signed like every webhook.
    nonce = uuid.uuid4().hex
    signature = signature_v3(url=f"http://acme.localhost{transfer_path}", params={"CallUUID": "plivo-leg-7"},
                             nonce=nonce, auth_token=PLIVO_TOKEN)
    answer = client.post(transfer_path, {"CallUUID": "plivo-leg-7"}, HTTP_HOST="acme.localhost",
                         HTTP_X_PLIVO_SIGNATURE_V3=signature, HTTP_X_PLIVO_SIGNATURE_V3_NONCE=nonce)
    assert answer.content.decode() == ('<?xml version="1.0" encoding="UTF-8"?><Response><Dial>'
                                       "<Number>15550009999</Number></Dial></Response>")
    forged = client.post(transfer_path, {"CallUUID": "plivo-leg-7"}, HTTP_HOST="acme.localhost",
                         HTTP_X_PLIVO_SIGNATURE_V3=signature, HTTP_X_PLIVO_SIGNATURE_V3_NONCE=nonce)
    assert forged.status_code == 403  # the nonce was used


# -- Vonage ------------------------------------------------------------------------------------

def _vonage_jwt(payload: bytes) -> str:
    return jwt.encode({"iat": int(time.time()), "jti": str(uuid.uuid4()), "application_id": "app-1",
                       "payload_hash": hashlib.sha256(payload).hexdigest()}, VONAGE_SECRET, algorithm="HS256")


def _vonage_event(client, call, body: dict):
    raw = json.dumps(body).encode()
    return client.post(f"/telephony/vonage/status/{call.pk}/", raw, content_type="application/json",
                       HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {_vonage_jwt(raw)}")


def _rest_claims(authorization: str) -> dict:
    assert authorization.startswith("Bearer ")
    return jwt.decode(authorization.removeprefix("Bearer "), VONAGE_KEY.public_key(), algorithms=["RS256"])


def test_vonage_create_call_is_signed_by_the_application_key_and_answers_with_a_websocket(
        client, tenant_a, lines, rest):
    _voicemail_on(tenant_a, lines["vonage"])
    call = _dial(tenant_a, lines["vonage"])
    [sent] = rest.requests
    assert (sent.method, sent.path) == ("POST", "/v1/calls")
    claims = _rest_claims(sent.authorization)
    assert (claims["application_id"], claims["exp"] - claims["iat"]) == ("app-1", 300)
    assert sent.body == {
        "to": [{"type": "phone", "number": "15557770000"}], "from": {"type": "phone", "number": "15550005000"},
        "answer_url": [f"http://acme.localhost:8000/telephony/vonage/outbound/{call.pk}/"], "answer_method": "GET",
        "event_url": [f"http://acme.localhost:8000/telephony/vonage/status/{call.pk}/"], "event_method": "POST",
        "advanced_machine_detection": {"behavior": "continue", "mode": "detect_beep", "beep_timeout": 45},
    }
    leg = "63f61863-4a51-4f6b-86e1-000000000001"
    assert _row(tenant_a, call).carrier_call_id == leg
    query = f"to=15557770000&from=15550005000&uuid={leg}&conversation_uuid=CON-00000001"
    answered = client.get(f"/telephony/vonage/outbound/{call.pk}/?{query}", HTTP_HOST="acme.localhost",
                          HTTP_AUTHORIZATION=f"Bearer {_vonage_jwt(query_payload(QueryDict(query)))}")
    assert answered.status_code == 200
    [endpoint] = answered.json()[0]["endpoint"]
    token = endpoint["headers"]["token"]
    assert endpoint == {"type": "websocket", "uri": "ws://acme.localhost:8000/ws/media/vonage/",
                        "content-type": "audio/l16;rate=8000",
                        "headers": {"call_id": str(call.pk), "stream_id": str(call.pk), "call_uuid": leg,
                                    "token": token}}
    assert_redeemable(token, tenant_a, call.pk)
    assert _vonage_event(client, call, {"status": "machine", "uuid": leg}).status_code == 204
    assert _row(tenant_a, call).answered_by == "machine"


@pytest.mark.parametrize(("carrier_status", "status", "end_reason"), [
    ("busy", "busy", "busy"), ("timeout", "no_answer", "no_answer"), ("unanswered", "no_answer", "no_answer"),
    ("rejected", "failed", "failed"), ("failed", "failed", "failed"),
])
def test_vonage_events_drive_the_outcome(client, tenant_a, lines, rest, carrier_status, status, end_reason):
    call = _dial(tenant_a, lines["vonage"])
    assert _vonage_event(client, call, {"status": "ringing", "uuid": call.carrier_call_id}).status_code == 204
    assert _row(tenant_a, call).status == "ringing"
    assert _vonage_event(client, call, {"status": carrier_status, "uuid": call.carrier_call_id,
                                        "duration": "0"}).status_code == 204
    row = _row(tenant_a, call)
    assert (row.status, row.end_reason, row.carrier_status) == (status, end_reason, carrier_status)


def test_vonage_event_with_a_wrong_secret_or_body_is_403(client, tenant_a, lines, rest):
    call = _dial(tenant_a, lines["vonage"])
    raw = json.dumps({"status": "busy"}).encode()
    tampered = client.post(f"/telephony/vonage/status/{call.pk}/", json.dumps({"status": "failed"}),
                           content_type="application/json", HTTP_HOST="acme.localhost",
                           HTTP_AUTHORIZATION=f"Bearer {_vonage_jwt(raw)}")
    assert tampered.status_code == 403
    assert _row(tenant_a, call).ended_at is None


def test_vonage_hang_up_and_transfer_over_rest(tenant_a, lines, rest):
    call = _dial(tenant_a, lines["vonage"])
    with tenant_context(tenant_a):
        telephony_transfer(call=call, to_number="+15550009999")
        telephony_hang_up(call=call)
        rest.fail_next = (404, {"title": "Not Found"})
        telephony_hang_up(call=call)  # already over: not an error
    path = f"/v1/calls/{call.carrier_call_id}"
    assert [(r.method, r.path, r.body) for r in rest.requests[1:]] == [
        ("PUT", path, {"action": "transfer", "destination": {"type": "ncco", "ncco": [
            {"action": "connect", "from": "15550005000", "endpoint": [{"type": "phone", "number": "15550009999"}]}]}}),
        ("PUT", path, {"action": "hangup"}),
        ("PUT", path, {"action": "hangup"}),
    ]
    assert _rest_claims(rest.requests[1].authorization)["application_id"] == "app-1"
    assert _row(tenant_a, call).transferred_to == "+15550009999"
