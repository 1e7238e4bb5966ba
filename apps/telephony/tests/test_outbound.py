"""Outbound calls, hang-up and transfer through the Twilio SDK against a local REST double; status callbacks."""
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context
from twilio.request_validator import RequestValidator

from apps.calls.models import Call
from apps.calls.services import call_answered, call_end
from apps.core.errors import ProviderError
from apps.telephony.services import telephony_call_outbound, telephony_hang_up, telephony_transfer

from .conftest import TWILIO_SID, TWILIO_TOKEN, assert_redeemable, stream_token_in


def test_outbound_call_sends_the_exact_request_and_is_idempotent(tenant_a, acme_number, twilio_double):
    with tenant_context(tenant_a):
        call = telephony_call_outbound(phone_number=acme_number, to_number="+15557770000",
                                       idempotency_key="campaign:7:contact:42")
        again = telephony_call_outbound(phone_number=acme_number, to_number="+15557770000",
                                        idempotency_key="campaign:7:contact:42")
        assert again.pk == call.pk
        assert Call.objects.count() == 1
        call.refresh_from_db()
        assert (call.direction, call.status, call.carrier_call_id, call.from_number, call.to_number) == (
            "outbound", "queued", "CA" + "0" * 31 + "1", "+15550001000", "+15557770000")
    assert len(twilio_double.requests) == 1
    sent = twilio_double.requests[0]
    assert (sent.method, sent.path, sent.account) == ("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/Calls.json", TWILIO_SID)
    token = stream_token_in(sent.form["Twiml"][0])
    assert_redeemable(token, tenant_a, call.pk)
    assert sent.form == {
        "To": ["+15557770000"],
        "From": ["+15550001000"],
        "Twiml": [
            '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
            '<Stream url="ws://acme.localhost:8000/ws/media/twilio/">'
            f'<Parameter name="call_id" value="{call.pk}" /><Parameter name="token" value="{token}" />'
            '</Stream></Connect></Response>'
        ],
        "StatusCallback": [f"http://acme.localhost:8000/telephony/twilio/status/{call.pk}/"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "StatusCallbackMethod": ["POST"],
    }


def test_carrier_refusal_ends_the_call_as_failed(tenant_a, acme_number, twilio_double):
    twilio_double.fail_with = (400, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400})
    with tenant_context(tenant_a):
        with pytest.raises(ProviderError) as error:
            telephony_call_outbound(phone_number=acme_number, to_number="+1555", idempotency_key="k-bad")
        assert error.value.retryable is False
        call = Call.objects.get(idempotency_key="k-bad")
        assert (call.status, call.end_reason) == ("failed", "failed")
        assert call.error.startswith("Twilio refused: ")


def test_hang_up_and_transfer_update_the_live_call(tenant_a, acme_number, twilio_double):
    with tenant_context(tenant_a):
        call = telephony_call_outbound(phone_number=acme_number, to_number="+15557770000", idempotency_key="k1")
        telephony_transfer(call=call, to_number="+15550009999")
        telephony_hang_up(call=call)
        call.refresh_from_db()
        assert call.transferred_to == "+15550009999"
        assert call.transferred_at is not None
    path = f"/2010-04-01/Accounts/{TWILIO_SID}/Calls/{call.carrier_call_id}.json"
    transfer, hang_up = twilio_double.requests[1:]
    assert (transfer.path, transfer.form) == (path, {
        "Twiml": ['<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+15550009999</Dial></Response>']})
    assert (hang_up.path, hang_up.form) == (path, {"Status": ["completed"]})


def _status(client, call, params, token=TWILIO_TOKEN):
    url = f"http://acme.localhost/telephony/twilio/status/{call.pk}/"
    signature = RequestValidator(token).compute_signature(url, params)
    return client.post(f"/telephony/twilio/status/{call.pk}/", params, HTTP_HOST="acme.localhost",
                       HTTP_X_TWILIO_SIGNATURE=signature)


@pytest.mark.parametrize(("carrier_status", "status", "end_reason"), [
    ("busy", "busy", "busy"), ("no-answer", "no_answer", "no_answer"), ("failed", "failed", "failed"),
])
def test_status_callback_ends_an_unanswered_call(client, tenant_a, acme_number, twilio_double, carrier_status, status, end_reason):
    with tenant_context(tenant_a):
        call = telephony_call_outbound(phone_number=acme_number, to_number="+15557770000", idempotency_key="k2")
    assert _status(client, call, {"CallSid": call.carrier_call_id, "CallStatus": "ringing"}).status_code == 204
    with tenant_context(tenant_a):
        assert Call.objects.get(pk=call.pk).status == "ringing"
    response = _status(client, call, {"CallSid": call.carrier_call_id, "CallStatus": carrier_status, "CallDuration": "0"})
    assert response.status_code == 204
    with tenant_context(tenant_a):
        call = Call.objects.get(pk=call.pk)
        assert (call.status, call.end_reason, call.carrier_status, call.carrier_duration_secs) == (
            status, end_reason, carrier_status, 0)


def test_status_callback_for_an_answered_call_leaves_the_end_to_the_runtime(client, tenant_a, acme_number, twilio_double):
    with tenant_context(tenant_a):
        call = telephony_call_outbound(phone_number=acme_number, to_number="+15557770000", idempotency_key="k3")
        call_answered(call_id=call.pk, stream_id="MZ1")
    response = _status(client, call, {"CallSid": call.carrier_call_id, "CallStatus": "completed", "CallDuration": "42"})
    assert response.status_code == 204
    with tenant_context(tenant_a):
        call = Call.objects.get(pk=call.pk)
        assert (call.status, call.ended_at, call.carrier_duration_secs) == ("in_progress", None, 42)
        call = call_end(call_id=call.pk, end_reason="caller_hung_up", usage={"call_seconds": 41.5})
        assert (call.status, call.end_reason, call.duration_secs) == ("completed", "caller_hung_up", Decimal("41.500"))


def test_unsigned_status_callback_is_403_and_changes_nothing(client, tenant_a, acme_number, twilio_double):
    with tenant_context(tenant_a):
        call = telephony_call_outbound(phone_number=acme_number, to_number="+15557770000", idempotency_key="k4")
    response = client.post(f"/telephony/twilio/status/{call.pk}/", {"CallStatus": "busy"}, HTTP_HOST="acme.localhost")
    assert response.status_code == 403
    assert _status(client, call, {"CallStatus": "busy"}, token="wrong").status_code == 403
    with tenant_context(tenant_a):
        call = Call.objects.get(pk=call.pk)
        assert (call.status, call.carrier_status, call.ended_at) == ("queued", "", None)


def test_voicemail_detection_asks_twilio_for_async_amd_and_its_callback_records_who_answered(
        client, tenant_a, acme_number, twilio_double):
    from apps.agents.services import agent_save

    with tenant_context(tenant_a):
        agent_save(agent=acme_number.agent, voicemail_detection=True, voicemail_message="Call us back.")
        acme_number.refresh_from_db()
        call = telephony_call_outbound(phone_number=acme_number, to_number="+15557770000", idempotency_key="k-amd")
    status_url = f"http://acme.localhost:8000/telephony/twilio/status/{call.pk}/"
    form = twilio_double.requests[0].form
    assert {key: form[key] for key in ("MachineDetection", "AsyncAmd", "AsyncAmdStatusCallback",
                                       "AsyncAmdStatusCallbackMethod")} == {
        "MachineDetection": ["DetectMessageEnd"], "AsyncAmd": ["true"], "AsyncAmdStatusCallback": [status_url],
        "AsyncAmdStatusCallbackMethod": ["POST"]}
    response = _status(client, call, {"CallSid": call.carrier_call_id, "AnsweredBy": "machine_end_beep",
                                      "MachineDetectionDuration": "4210"})
    assert response.status_code == 204
    with tenant_context(tenant_a):
        call = Call.objects.get(pk=call.pk)
        assert (call.answered_by, call.status, call.ended_at) == ("machine", "queued", None)


def test_without_voicemail_detection_no_amd_is_asked(tenant_a, acme_number, twilio_double):
    with tenant_context(tenant_a):
        telephony_call_outbound(phone_number=acme_number, to_number="+15557770000", idempotency_key="k-no-amd")
    assert "MachineDetection" not in twilio_double.requests[0].form
