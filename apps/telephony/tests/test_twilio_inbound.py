"""Twilio inbound webhook: signature, tenant isolation, suspension."""
import pytest
from django_tenants.utils import tenant_context
from twilio.request_validator import RequestValidator

from apps.calls.models import Call
from apps.tenancy.models import Client

from .conftest import TWILIO_TOKEN

URL = "http://acme.localhost/telephony/twilio/voice/"


def _params(to="+15550001000", sid="CA" + "1" * 32):
    return {"CallSid": sid, "From": "+15557654321", "To": to, "AccountSid": "AC" + "0" * 32, "CallStatus": "ringing"}


def _post(client, params, signature):
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature is not None else {}
    return client.post("/telephony/twilio/voice/", params, HTTP_HOST="acme.localhost", **headers)


def _sign(params, token=TWILIO_TOKEN, url=URL):
    return RequestValidator(token).compute_signature(url, params)


def test_valid_signature_connects_the_stream(client, tenant_a, acme_number):
    params = _params()
    response = _post(client, params, _sign(params))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    with tenant_context(tenant_a):
        call = Call.objects.get()
        assert (call.direction, call.from_number, call.to_number, call.carrier, call.carrier_call_id, call.status) == (
            "inbound", "+15557654321", "+15550001000", "twilio", "CA" + "1" * 32, "ringing")
        assert call.agent_version_id == acme_number.agent.current_version_id
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        '<Stream url="ws://acme.localhost:8000/ws/media/twilio/">'
        f'<Parameter name="call_id" value="{call.pk}"/></Stream></Connect></Response>'
    )


def test_signature_for_the_public_url_is_accepted(client, tenant_a, acme_number):
    params = _params()
    response = _post(client, params, _sign(params, url="http://acme.localhost:8000/telephony/twilio/voice/"))
    assert response.status_code == 200


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl"])
def test_missing_or_invalid_signature_is_403_and_creates_nothing(client, tenant_a, acme_number, signature, caplog):
    response = _post(client, _params(), signature)
    assert response.status_code == 403
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0
    assert "twilio webhook with a missing or invalid signature" in caplog.text


def test_signature_with_another_token_is_403(client, tenant_a, acme_number):
    params = _params()
    response = _post(client, params, _sign(params, token="someone-elses-token"))
    assert response.status_code == 403
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0


def test_tampered_parameters_are_403(client, tenant_a, acme_number):
    params = _params()
    signature = _sign(params)
    params["From"] = "+19999999999"
    assert _post(client, params, signature).status_code == 403


def test_number_of_another_client_dialled_on_this_host_is_rejected(client, tenant_a, tenant_b, acme_number, globex_number, caplog):
    params = _params(to="+15550002000")
    response = _post(client, params, RequestValidator("twilio-auth-token-globex").compute_signature(URL, params))
    assert response.status_code == 200
    assert response.content.decode() == '<?xml version="1.0" encoding="UTF-8"?><Response><Reject/></Response>'
    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant):
            assert Call.objects.count() == 0
    assert "twilio call to +15550002000 refused on acme.localhost" in caplog.text


def test_unknown_number_is_rejected(client, tenant_a, acme_number):
    params = _params(to="+15550009999")
    response = _post(client, params, _sign(params))
    assert response.content.decode() == '<?xml version="1.0" encoding="UTF-8"?><Response><Reject/></Response>'
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0


def test_suspended_client_gets_a_polite_goodbye_and_a_record(client, tenant_a, acme_number):
    Client.objects.filter(pk=tenant_a.pk).update(status=Client.Status.SUSPENDED)
    params = _params()
    response = _post(client, params, _sign(params))
    assert response.status_code == 200
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>We\'re sorry, this line is temporarily unavailable. '
        "Please try again later. Goodbye.</Say><Hangup/></Response>"
    )
    with tenant_context(tenant_a):
        call = Call.objects.get()
        assert (call.status, call.end_reason, call.duration_secs) == ("refused", "client_suspended", 0)
        assert call.ended_at is not None


def test_carrier_retry_of_the_same_call_does_not_duplicate(client, tenant_a, acme_number):
    params = _params()
    first = _post(client, params, _sign(params))
    second = _post(client, params, _sign(params))
    assert first.content == second.content
    with tenant_context(tenant_a):
        assert Call.objects.count() == 1


def test_hard_usage_cap_gets_the_cap_message_and_a_record(client, tenant_a, acme_number, monkeypatch):
    # Billing's selector is the door to its ledger; here it reports the hard cap (its own tests cover the sums).
    from apps.billing import selectors
    from apps.billing.selectors import CapStatus

    monkeypatch.setattr(selectors, "usage_cap_status", lambda *, client, at=None: CapStatus("hard", "Our lines are closed for this month."))
    params = _params()
    response = _post(client, params, _sign(params))
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Our lines are closed for this month.</Say><Hangup/></Response>'
    )
    with tenant_context(tenant_a):
        call = Call.objects.get()
        assert (call.status, call.end_reason) == ("refused", "usage_cap")
