"""Telnyx, Plivo and Vonage calls through real daphne: the carrier's signed answer
webhook, the media websocket it names, the Pipecat runtime (8 kHz μ-law or linear16
end to end), the OpenAI double as every provider, the call record, and hang-ups
through each carrier's REST API (the Telnyx/Plivo REST double). Each caller double is
built from the answer our webhook gave (its stream URL, call id and stream token) and
sends them back the way that carrier does."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
import xml.etree.ElementTree as ET

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.http import QueryDict
from django_tenants.utils import tenant_context

from apps.telephony.carriers.plivo import signature_v3
from apps.telephony.carriers.vonage import query_payload
from devtools.doubles.audio import FIXTURES_DIR
from devtools.doubles.carrier_callers import PlivoCaller, TelnyxCaller, VonageCaller
from devtools.simulate import line_from_wav

from .conftest import _client, _make_agent
from .test_inbound_calls import _address, _turns, _wait_ended

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

TELNYX_NUMBER = "+15550003000"
PLIVO_NUMBER = "+15550004000"
VONAGE_NUMBER = "+15550005000"
TELNYX_API_KEY = "KEY-telnyx-acme"
PLIVO_AUTH_ID = "MAACME0000000000000A"
PLIVO_TOKEN = "plivo-token-acme"
VONAGE_SECRET = "vonage-signature-secret"
TELNYX_KEY = Ed25519PrivateKey.generate()
TELNYX_PUBLIC = base64.b64encode(TELNYX_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
CALLER = "+15557654321"


@pytest.fixture
def carrier_line(committed_db, openai_double, voice_server, carrier_rest):
    """Acme's Telnyx, Plivo and Vonage numbers, answered by an agent on the double."""
    from apps.telephony.models import PhoneNumber

    from .conftest import _cleanup

    tenant = _client("acme")
    carrier_rest.requests.clear()

    def configure(**agent_config):
        with tenant_context(tenant):
            agent = _make_agent(openai_double, name="Reception", **agent_config)
            PhoneNumber.objects.create(number=TELNYX_NUMBER, agent=agent, carrier="telnyx", account_sid="conn-1",
                                       auth_token=TELNYX_API_KEY, webhook_public_key=TELNYX_PUBLIC)
            PhoneNumber.objects.create(number=PLIVO_NUMBER, agent=agent, carrier="plivo", account_sid=PLIVO_AUTH_ID,
                                       auth_token=PLIVO_TOKEN)
            PhoneNumber.objects.create(number=VONAGE_NUMBER, agent=agent, carrier="vonage", account_sid="app-1",
                                       auth_token=VONAGE_SECRET)
        return tenant

    yield configure
    _cleanup(tenant)


def _host(voice_server) -> str:
    return f"acme.localhost:{voice_server['port']}"


def _telnyx_signed(body: bytes) -> dict:
    timestamp = str(int(time.time()))
    signature = base64.b64encode(TELNYX_KEY.sign(timestamp.encode() + b"|" + body)).decode()
    return {"telnyx-signature-ed25519": signature, "telnyx-timestamp": timestamp}


def _telnyx_texml(voice_server, call_control_id: str) -> str:
    body = (f"CallSid={requests.utils.quote(call_control_id, safe='')}&From=%2B15557654321"
            f"&To={requests.utils.quote(TELNYX_NUMBER, safe='')}").encode()
    response = requests.post(voice_server["url"] + "/telephony/telnyx/voice/", data=body, timeout=10, headers={
        "Host": _host(voice_server), "Content-Type": "application/x-www-form-urlencoded", **_telnyx_signed(body)})
    assert response.status_code == 200, response.text
    stream = ET.fromstring(response.text).find("./Connect/Stream")
    assert (stream.get("bidirectionalMode"), stream.get("bidirectionalCodec")) == ("rtp", "PCMU")
    assert [p.get("name") for p in stream.findall("Parameter")] == ["call_id", "token"]
    return response.text


def _plivo_answer(voice_server, call_uuid: str) -> str:
    params = {"CallUUID": call_uuid, "From": CALLER.lstrip("+"), "To": PLIVO_NUMBER.lstrip("+")}
    nonce = uuid.uuid4().hex  # Plivo's nonce is single-use: a second request with one is refused
    signed_url = f"http://{_host(voice_server)}/telephony/plivo/answer/"
    signature = signature_v3(url=signed_url, params=QueryDict(mutable=True) | params, nonce=nonce,
                             auth_token=PLIVO_TOKEN)
    response = requests.post(voice_server["url"] + "/telephony/plivo/answer/", data=params, timeout=10, headers={
        "Host": _host(voice_server), "X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce})
    assert response.status_code == 200, response.text
    stream = ET.fromstring(response.text).find("./Stream")
    assert (stream.get("bidirectional"), stream.get("contentType")) == ("true", "audio/x-mulaw;rate=8000")
    return response.text


def _vonage_answer(voice_server, call_uuid: str) -> list:
    query = f"to={VONAGE_NUMBER.lstrip('+')}&from={CALLER.lstrip('+')}&uuid={call_uuid}"
    # Vonage's signed webhook: HS256 JWT, payload_hash over the query parameters as compact JSON, a fresh jti.
    token = jwt.encode({"iat": int(time.time()), "jti": str(uuid.uuid4()), "application_id": "app-1",
                        "payload_hash": hashlib.sha256(query_payload(QueryDict(query))).hexdigest()},
                       VONAGE_SECRET, algorithm="HS256")
    response = requests.get(voice_server["url"] + f"/telephony/vonage/answer/?{query}", timeout=10,
                            headers={"Host": _host(voice_server), "Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    [endpoint] = response.json()[0]["endpoint"]
    assert endpoint["content-type"] == "audio/l16;rate=8000"
    assert sorted(endpoint["headers"]) == ["call_id", "call_uuid", "stream_id", "token"]
    return response.json()


async def _converse(caller, wavs: list[str], *, hang_up: bool) -> list[int | None]:
    """Greeting, then each line and the agent's answer; voice-to-voice ms per line."""
    started = time.monotonic()
    await caller.connect()
    await caller.wait_for_agent_audio(after=started, timeout=15)
    await caller.wait_for_agent_quiet(quiet_secs=0.6)
    heard = []
    for name in wavs:
        line = line_from_wav(str(FIXTURES_DIR / name))
        utterance = await caller.say(line.pcm_8k, line.label)
        await utterance.done.wait()
        try:
            first = await caller.wait_for_agent_audio(after=utterance.speech_end_at, timeout=15)
            await caller.wait_for_agent_quiet(quiet_secs=0.6)
            heard.append(round((first - utterance.speech_end_at) * 1000))
        except TimeoutError:
            heard.append(None)
    if hang_up:
        await caller.hang_up()
    else:
        await caller.wait_closed(timeout=15)
    return heard


GREETING_AND_REPLY = [(0, "", "Hi, Acme Dental here."), (1, "Hello, who is this?", "This is Acme Dental.")]


def test_telnyx_texml_call_is_recorded_and_end_call_hangs_up_through_call_control(
    carrier_line, llm, voice_server, carrier_rest
):
    tenant = carrier_line(tools=["end_call"])
    call_control_id = "v3:telnyx-call-1"
    caller = TelnyxCaller.from_answer(_telnyx_texml(voice_server, call_control_id), call_control_id=call_control_id,
                                      connect_to=_address(voice_server))
    assert caller.url == "ws://acme.localhost:8000/ws/media/telnyx/"
    assert sorted(caller.custom_parameters) == ["call_id", "token"]
    heard = asyncio.run(_converse(caller, ["hello.wav", "thanks-bye.wav"], hang_up=False))
    call = _wait_ended(tenant, caller.custom_parameters["call_id"])

    assert heard[0] is not None and caller.close_code == 1000
    assert (call.carrier, call.carrier_call_id, call.stream_id) == ("telnyx", call_control_id, caller.stream_sid)
    assert (call.status, call.end_reason, call.error) == ("completed", "agent_ended", "")
    assert _turns(call)[:2] == GREETING_AND_REPLY
    assert [tool.name for tool in call.tool_rows] == ["end_call"]
    hang_ups = [(r.method, r.path, r.authorization, r.body) for r in carrier_rest.requests]
    assert hang_ups == [("POST", f"/v2/calls/{call_control_id}/actions/hangup", f"Bearer {TELNYX_API_KEY}", {})]


def test_telnyx_call_control_answer_streams_to_the_media_socket(carrier_line, llm, voice_server, carrier_rest):
    tenant = carrier_line()
    call_control_id = "v3:telnyx-call-2"
    body = json.dumps({"data": {"event_type": "call.initiated", "record_type": "event", "payload": {
        "call_control_id": call_control_id, "direction": "incoming", "from": CALLER, "to": TELNYX_NUMBER,
        "state": "parked"}}}).encode()
    response = requests.post(voice_server["url"] + "/telephony/telnyx/call-control/", data=body, timeout=10,
                             headers={"Host": _host(voice_server), "Content-Type": "application/json",
                                      **_telnyx_signed(body)})
    assert response.status_code == 200
    [answer] = carrier_rest.requests
    assert (answer.path, answer.authorization) == (f"/v2/calls/{call_control_id}/actions/answer",
                                                   f"Bearer {TELNYX_API_KEY}")
    assert {k: answer.body[k] for k in ("stream_url", "stream_bidirectional_mode", "stream_bidirectional_codec")} == {
        "stream_url": "ws://acme.localhost:8000/ws/media/telnyx/", "stream_bidirectional_mode": "rtp",
        "stream_bidirectional_codec": "PCMU"}
    state = json.loads(base64.b64decode(answer.body["client_state"]))
    assert sorted(state) == ["call_id", "token"]
    call_id = state["call_id"]

    caller = TelnyxCaller.from_call_control_answer(answer.body, call_control_id=call_control_id,
                                                   connect_to=_address(voice_server))
    heard = asyncio.run(_converse(caller, ["hello.wav"], hang_up=True))
    call = _wait_ended(tenant, call_id)

    assert heard[0] is not None
    assert (call.carrier_call_id, call.end_reason, call.error) == (call_control_id, "caller_hung_up", "")
    assert _turns(call) == GREETING_AND_REPLY
    assert len(carrier_rest.requests) == 1  # the caller hung up: nothing to hang up


def test_plivo_call_is_recorded_and_end_call_deletes_the_call(carrier_line, llm, voice_server, carrier_rest):
    tenant = carrier_line(tools=["end_call"])
    call_uuid = "2c5b8f0e-0000-4000-8000-00000000beef"
    caller = PlivoCaller.from_answer(_plivo_answer(voice_server, call_uuid), call_sid=call_uuid,
                                     connect_to=_address(voice_server))
    assert caller.url == "ws://acme.localhost:8000/ws/media/plivo/"
    callid, token = (part.split("=", 1) for part in caller.extra_headers.split(","))
    assert (callid[0], token[0]) == ("callid", "token") and callid[1].isalnum() and token[1].isalnum()
    heard = asyncio.run(_converse(caller, ["hello.wav", "thanks-bye.wav"], hang_up=False))

    with tenant_context(tenant):
        from apps.calls.models import Call

        call_id = Call.objects.get(carrier_call_id=call_uuid).pk
    call = _wait_ended(tenant, call_id)
    assert heard[0] is not None and caller.close_code == 1000
    assert (call.carrier, call.stream_id, call.status, call.end_reason) == ("plivo", caller.stream_sid, "completed",
                                                                             "agent_ended")
    assert _turns(call)[:2] == GREETING_AND_REPLY
    auth = "Basic " + base64.b64encode(f"{PLIVO_AUTH_ID}:{PLIVO_TOKEN}".encode()).decode()
    assert [(r.method, r.path, r.authorization) for r in carrier_rest.requests] == [
        ("DELETE", f"/v1/Account/{PLIVO_AUTH_ID}/Call/{call_uuid}/", auth)]


def test_vonage_linear16_call_is_recorded(carrier_line, llm, voice_server):
    tenant = carrier_line()
    caller = VonageCaller.from_answer(_vonage_answer(voice_server, "vonage-uuid-1"), connect_to=_address(voice_server))
    assert caller.url == "ws://acme.localhost:8000/ws/media/vonage/"
    heard = asyncio.run(_converse(caller, ["hello.wav"], hang_up=True))
    call = _wait_ended(tenant, caller.ncco_headers["call_id"])

    assert heard[0] is not None and caller.audible_agent_secs() > 0.5
    assert (call.carrier, call.carrier_call_id, call.end_reason, call.error) == (
        "vonage", "vonage-uuid-1", "caller_hung_up", "")
    assert _turns(call) == GREETING_AND_REPLY
