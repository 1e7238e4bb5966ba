"""Twilio inbound webhook: signature, tenant isolation, suspension, replays, bad input."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context
from twilio.request_validator import RequestValidator

from apps.calls.models import Call
from apps.calls.services import call_answered, call_end
from apps.telephony.models import PhoneNumber
from apps.tenancy.models import Client

from .conftest import TWILIO_SID, TWILIO_TOKEN, assert_redeemable, stream_token_in

# Twelve statements and two schema switches (TENANT_LIMIT_SET_CALLS: one SET search_path per schema): the
# tenant's domain (public), then in the client's schema the dialled number, the primary domain (the signed
# URL), call_create_inbound (savepoint, number, an existing call with this CallSid, a savepoint around the
# insert for a racing retry, insert, release, billing account for the cap, release), the primary domain (the
# stream URL). Pinned so a regression on the hot path shows.
QUERIES_PER_INBOUND_CALL = 14
REJECT = '<?xml version="1.0" encoding="UTF-8"?><Response><Reject /></Response>'

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
    token = stream_token_in(response.content.decode())
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        '<Stream url="ws://acme.localhost:8000/ws/media/twilio/">'
        f'<Parameter name="call_id" value="{call.pk}" /><Parameter name="token" value="{token}" />'
        '</Stream></Connect></Response>'
    )
    assert_redeemable(token, tenant_a, call.pk)


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
    assert response.content.decode() == REJECT
    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant):
            assert Call.objects.count() == 0
    assert "twilio call to +15550002000 refused on acme.localhost" in caplog.text


def test_unknown_number_signed_by_the_clients_account_is_rejected_and_recorded(client, tenant_a, acme_number):
    params = _params(to="+15550009999")
    response = _post(client, params, _sign(params))
    assert response.content.decode() == REJECT
    again = _post(client, params, _sign(params))  # Twilio's retry: the same row
    assert again.content.decode() == REJECT
    with tenant_context(tenant_a):
        rows = list(Call.objects.values_list("status", "end_reason", "to_number", "from_number", "carrier",
                                             "carrier_call_id", "phone_number_id"))
    assert rows == [("refused", "unknown_number", "+15550009999", "+15557654321", "twilio", "CA" + "1" * 32, None)]


def test_number_deactivated_is_refused_and_recorded(client, tenant_a, acme_number):
    with tenant_context(tenant_a):
        inactive = PhoneNumber.objects.create(number="+15550001001", carrier="twilio", account_sid=TWILIO_SID,
                                              auth_token=TWILIO_TOKEN, is_active=False)
    params = _params(to=inactive.number)
    assert _post(client, params, _sign(params)).content.decode() == REJECT
    with tenant_context(tenant_a):
        assert list(Call.objects.values_list("end_reason", "to_number")) == [("unknown_number", "+15550001001")]


@pytest.mark.parametrize("signature", [None, "bm90IGEgc2lnbmF0dXJl"])
def test_unknown_number_unsigned_writes_nothing(client, tenant_a, acme_number, signature):
    for index in range(3):
        params = _params(to=f"+1555000999{index}", sid=f"CA{index:032d}")
        assert _post(client, params, signature).content.decode() == REJECT
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0


def test_suspended_client_gets_a_polite_goodbye_and_a_record(client, tenant_a, acme_number):
    Client.objects.filter(pk=tenant_a.pk).update(status=Client.Status.SUSPENDED)
    params = _params()
    response = _post(client, params, _sign(params))
    assert response.status_code == 200
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>We\'re sorry, this line is temporarily unavailable. '
        "Please try again later. Goodbye.</Say><Hangup /></Response>"
    )
    with tenant_context(tenant_a):
        call = Call.objects.get()
        assert (call.status, call.end_reason, call.duration_secs) == ("refused", "client_suspended", 0)
        assert call.ended_at is not None


def test_carrier_retry_of_the_same_call_does_not_duplicate(client, tenant_a, acme_number):
    params = _params()
    first = _post(client, params, _sign(params)).content.decode()
    second = _post(client, params, _sign(params)).content.decode()
    with tenant_context(tenant_a):
        [call] = Call.objects.all()
    # Both answers stream to the one call (each with a token for it; only one stream can redeem one).
    for answer in (first, second):
        assert f'<Parameter name="call_id" value="{call.pk}" />' in answer
    assert_redeemable(stream_token_in(second), tenant_a, call.pk)


@pytest.mark.parametrize("state", ["streaming", "ended"])
def test_webhook_replayed_after_its_stream_started_or_the_call_ended_is_rejected(client, tenant_a, acme_number, state):
    params = _params()
    _post(client, params, _sign(params))
    with tenant_context(tenant_a):
        call = Call.objects.get()
        call_answered(call_id=call.pk, stream_id="MZ1", carrier_call_id=params["CallSid"])
        if state == "ended":
            call_end(call_id=call.pk, end_reason=Call.EndReason.CALLER_HUNG_UP, error="", usage={})
        before = Call.objects.values_list("status", "end_reason", "answered_at", "ended_at").get()
    replay = _post(client, params, _sign(params))
    assert (replay.status_code, replay.content.decode()) == (200, REJECT)  # no stream, no token
    with tenant_context(tenant_a):
        assert Call.objects.values_list("status", "end_reason", "answered_at", "ended_at").get() == before


@pytest.mark.parametrize("field,value", [
    ("To", "+1555000\x001000"), ("To", "not-a-number"), ("To", ""), ("To", "+" + "9" * 40),
    ("From", "+1555\x00"), ("From", "x" * 500), ("CallSid", "CA\x00"), ("CallSid", ""), ("CallSid", "a b"),
])
def test_junk_in_the_webhook_is_a_400_and_never_reaches_the_database(client, tenant_a, acme_number, field, value):
    params = {**_params(), field: value}
    response = _post(client, params, _sign(params))
    assert response.status_code == 400
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0


def test_junk_to_number_is_refused_before_any_query(client, tenant_a, acme_number):
    params = {**_params(), "To": "+1555\x00"}
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, params, _sign(params))
    assert response.status_code == 400
    assert [q["sql"] for q in queries.captured_queries if "telephony_phonenumber" in q["sql"]] == []


def test_inbound_webhook_query_count(client, tenant_a, acme_number, django_assert_num_queries):
    params = _params()
    signature = _sign(params)
    with django_assert_num_queries(QUERIES_PER_INBOUND_CALL):
        assert _post(client, params, signature).status_code == 200


def test_hard_usage_cap_gets_the_cap_message_and_a_record(client, tenant_a, acme_number, monkeypatch):
    # Billing's selector is the door to its ledger; here it reports the hard cap (its own tests cover the sums).
    from apps.billing import selectors
    from apps.billing.selectors import CapStatus

    monkeypatch.setattr(selectors, "usage_cap_status", lambda *, client, at=None: CapStatus("hard", "Our lines are closed for this month."))
    params = _params()
    response = _post(client, params, _sign(params))
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Our lines are closed for this month.</Say><Hangup /></Response>'
    )
    with tenant_context(tenant_a):
        call = Call.objects.get()
        assert (call.status, call.end_reason) == ("refused", "usage_cap")


def test_forged_call_to_an_unknown_number_costs_a_bounded_number_of_queries(client, tenant_a, acme_number):
    with tenant_context(tenant_a):
        for index in range(30):  # many numbers, one Twilio account: one set of credentials to try
            PhoneNumber.objects.create(number=f"+1555001{index:04d}", carrier="twilio", account_sid=TWILIO_SID,
                                       auth_token=TWILIO_TOKEN)
    params = _params(to="+15550009999")
    with CaptureQueriesContext(connection) as queries:
        assert _post(client, params, "bm90IGEgc2lnbmF0dXJl").content.decode() == REJECT
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET search_path")]
    assert len(statements) == 4  # the tenant's domain, the dialled number, the signers, the primary domain
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0
