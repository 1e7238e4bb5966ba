"""Telnyx (ed25519), Plivo (V3 HMAC) and Vonage (JWT) inbound webhooks: valid → stream, invalid → 403."""
import base64
import hashlib
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.http import QueryDict
from django_tenants.utils import tenant_context

from apps.calls.models import Call
from apps.telephony.carriers.plivo import signature_v3
from apps.telephony.models import PhoneNumber

from .conftest import make_agent

PRIVATE_KEY = Ed25519PrivateKey.generate()
PUBLIC_KEY_B64 = base64.b64encode(PRIVATE_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


@pytest.fixture
def numbers(tenant_a):
    with tenant_context(tenant_a):
        agent = make_agent()
        PhoneNumber.objects.create(number="+15550003000", agent=agent, carrier="telnyx", webhook_public_key=PUBLIC_KEY_B64)
        PhoneNumber.objects.create(number="+15550004000", agent=agent, carrier="plivo", account_sid="MA1", auth_token="plivo-token")
        PhoneNumber.objects.create(number="+15550005000", agent=agent, carrier="vonage", account_sid="app-1", auth_token="vonage-secret")


def _calls(tenant):
    with tenant_context(tenant):
        return list(Call.objects.values_list("carrier", "carrier_call_id"))


def test_telnyx_signed_webhook_connects(client, tenant_a, numbers):
    body = "CallSid=v3%3Atelnyx1&From=%2B15557654321&To=%2B15550003000"
    timestamp = str(int(time.time()))
    signature = base64.b64encode(PRIVATE_KEY.sign(f"{timestamp}|{body}".encode())).decode()
    response = client.post("/telephony/telnyx/voice/", body, content_type="application/x-www-form-urlencoded",
                           HTTP_HOST="acme.localhost", HTTP_TELNYX_SIGNATURE_ED25519=signature, HTTP_TELNYX_TIMESTAMP=timestamp)
    assert response.status_code == 200
    assert _calls(tenant_a) == [("telnyx", "v3:telnyx1")]
    with tenant_context(tenant_a):
        call_id = Call.objects.get().pk
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        '<Stream url="ws://acme.localhost:8000/ws/media/telnyx/" bidirectionalMode="rtp" bidirectionalCodec="PCMU">'
        f'<Parameter name="call_id" value="{call_id}"/></Stream></Connect></Response>'
    )


@pytest.mark.parametrize("tamper", ["body", "old", "missing"])
def test_telnyx_bad_signature_is_403(client, tenant_a, numbers, tamper):
    body = "CallSid=t2&From=%2B15557654321&To=%2B15550003000"
    timestamp = str(int(time.time()) - (3600 if tamper == "old" else 0))
    signature = base64.b64encode(PRIVATE_KEY.sign(f"{timestamp}|{body}".encode())).decode()
    sent = body + "&x=1" if tamper == "body" else body
    headers = {} if tamper == "missing" else {"HTTP_TELNYX_SIGNATURE_ED25519": signature, "HTTP_TELNYX_TIMESTAMP": timestamp}
    response = client.post("/telephony/telnyx/voice/", sent, content_type="application/x-www-form-urlencoded",
                           HTTP_HOST="acme.localhost", **headers)
    assert response.status_code == 403
    assert _calls(tenant_a) == []


def test_plivo_signed_answer_connects(client, tenant_a, numbers):
    params = {"CallUUID": "plivo-uuid-1", "From": "15557654321", "To": "15550004000"}
    nonce = "12345678901234567890"
    signature = signature_v3(url="http://acme.localhost/telephony/plivo/answer/", params=QueryDict(mutable=True) | params,
                             nonce=nonce, auth_token="plivo-token")
    response = client.post("/telephony/plivo/answer/", params, HTTP_HOST="acme.localhost",
                           HTTP_X_PLIVO_SIGNATURE_V3=signature, HTTP_X_PLIVO_SIGNATURE_V3_NONCE=nonce)
    assert response.status_code == 200
    assert _calls(tenant_a) == [("plivo", "plivo-uuid-1")]
    with tenant_context(tenant_a):
        call_id = Call.objects.get().pk
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Stream bidirectional="true" keepCallAlive="true" '
        f'contentType="audio/x-mulaw;rate=8000" extraHeaders="callid={call_id.hex}">ws://acme.localhost:8000/ws/media/plivo/</Stream></Response>'
    )


def test_plivo_signature_v3_matches_the_documented_construction():
    # url + "?" + sorted key+value pairs + "." + nonce, HMAC-SHA256, base64
    import hmac

    expected = base64.b64encode(hmac.new(b"tok", b"https://h/a/?From1To2.n1", hashlib.sha256).digest()).decode()
    assert signature_v3(url="https://h/a/", params={"To": "2", "From": "1"}, nonce="n1", auth_token="tok") == expected


def test_plivo_bad_signature_is_403(client, tenant_a, numbers):
    params = {"CallUUID": "plivo-uuid-2", "From": "15557654321", "To": "15550004000"}
    response = client.post("/telephony/plivo/answer/", params, HTTP_HOST="acme.localhost",
                           HTTP_X_PLIVO_SIGNATURE_V3="bm9wZQ==", HTTP_X_PLIVO_SIGNATURE_V3_NONCE="1")
    assert response.status_code == 403
    assert _calls(tenant_a) == []


def test_vonage_signed_answer_returns_a_websocket_ncco(client, tenant_a, numbers):
    token = jwt.encode({"iat": int(time.time()), "api_key": "k"}, "vonage-secret", algorithm="HS256")
    response = client.get("/telephony/vonage/answer/?to=15550005000&from=15557654321&uuid=vonage-uuid-1",
                          HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    with tenant_context(tenant_a):
        call_id = str(Call.objects.get().pk)
    assert json.loads(response.content) == [{
        "action": "connect",
        "endpoint": [{"type": "websocket", "uri": "ws://acme.localhost:8000/ws/media/vonage/",
                      "content-type": "audio/l16;rate=8000",
                      "headers": {"call_id": call_id, "stream_id": call_id, "call_uuid": "vonage-uuid-1"}}],
    }]


def test_vonage_token_signed_with_another_secret_is_403(client, tenant_a, numbers):
    token = jwt.encode({"iat": int(time.time())}, "not-the-secret", algorithm="HS256")
    response = client.get("/telephony/vonage/answer/?to=15550005000&from=15557654321&uuid=u2",
                          HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403
    assert _calls(tenant_a) == []
