"""Every carrier's media-stream parser: the stream token and call id of our answer reach
StreamStart.parameters; wrong shapes, foreign keypad presses and deep JSON are a
StreamProtocolError with a 44xx code; fuzzed input is never anything else."""
import asyncio
import base64
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipecat.frames.frames import InputDTMFFrame

from apps.telephony.carriers.registry import CARRIERS
from apps.telephony.carriers.telnyx import client_state
from apps.voice.media_protocol import MAX_MESSAGE_BYTES, StreamMessage, StreamProtocolError, StreamStart

CALL_ID = "6f1c1a4e-1111-4000-8000-000000000001"
TOKEN = "1796149062t86ae9becfd301360ca379a45b861e9047115e8b16aaf607ffe5e998b53d153fc"


def _starts():
    """Each carrier's start message as our answer markup makes the carrier send it."""
    return {
        "twilio": {"event": "start", "streamSid": "MZ1", "start": {
            "streamSid": "MZ1", "callSid": "CA1", "accountSid": "AC1",
            "customParameters": {"call_id": CALL_ID, "token": TOKEN}}},
        "telnyx": {"event": "start", "stream_id": "s-1", "start": {
            "call_control_id": "v3:1", "user_id": "u", "media_format": {"encoding": "PCMU"},
            "custom_parameters": {"call_id": CALL_ID, "token": TOKEN}}},
        "plivo": {"event": "start", "start": {"streamId": "s-1", "callId": "c-1", "accountId": "MA1"},
                  "extra_headers": f"callid={uuid.UUID(CALL_ID).hex},token={TOKEN}"},
        "vonage": {"event": "websocket:connected", "content-type": "audio/l16;rate=8000", "call_id": CALL_ID,
                   "stream_id": CALL_ID, "call_uuid": "vonage-1", "token": TOKEN},
    }


@pytest.mark.parametrize("carrier", ["twilio", "telnyx", "plivo", "vonage"])
def test_start_carries_the_call_id_and_token(carrier):
    protocol = CARRIERS[carrier]
    message = _starts()[carrier]
    assert protocol.parse(json.dumps(message), expected_stream=None).event == "start"
    start = protocol.start_of(message)
    assert (start.parameters["call_id"], start.parameters["token"]) == (CALL_ID, TOKEN)


def test_telnyx_call_control_client_state_carries_call_id_and_token():
    message = {"event": "start", "stream_id": "s-1",
               "start": {"call_control_id": "v3:1", "client_state": client_state(CALL_ID, TOKEN)}}
    start = CARRIERS["telnyx"].start_of(message)
    assert start.parameters == {"call_id": CALL_ID, "token": TOKEN}
    legacy = {**message, "start": {"call_control_id": "v3:1", "client_state": base64.b64encode(CALL_ID.encode()).decode()}}
    assert CARRIERS["telnyx"].start_of(legacy).parameters == {"call_id": CALL_ID}


BAD_MESSAGES = {
    "twilio": [
        '{"event": ["start"]}', '{"event": {"x": 1}}', "[]", "1", '"start"', "null",
        '{"event": "start", "start": []}', '{"event": "start", "start": {"streamSid": ["a"], "callSid": "c"}}',
        '{"event": "start", "start": {"streamSid": "a", "callSid": "c", "customParameters": [1, 2]}}',
        '{"event": "start", "start": {"streamSid": "a", "callSid": "c", "customParameters": {"call_id": 1}}}',
        '{"event": "media", "streamSid": "S", "media": []}', '{"event": "media", "streamSid": "S", "media": "x"}',
        '{"event": "media", "streamSid": "S", "media": {"payload": 12}}',
        '{"event": "dtmf", "streamSid": "S", "dtmf": {"digit": "A"}}', '{"event": "dtmf", "streamSid": "S", "dtmf": []}',
        '{"event": "dtmf", "streamSid": "S", "dtmf": {"digit": ["1"]}}', '{"event": "dtmf", "streamSid": "S"}',
        '{"event": "dtmf", "streamSid": "S", "dtmf": {"digit": "12"}}',
        "[" * 100000, '{"a":' * 3000 + "1" + "}" * 3000,
    ],
    "telnyx": [
        '{"event": "start", "stream_id": "s", "start": {"call_control_id": "c", "media_format": []}}',
        '{"event": "start", "stream_id": "s", "start": {"call_control_id": "c", "client_state": "%%%"}}',
        '{"event": "start", "stream_id": "s", "start": {"call_control_id": "c", "client_state": "WzFd"}}',
        '{"event": "start", "stream_id": {"a": 1}, "start": {"call_control_id": "c"}}',
        '{"event": "media", "stream_id": "S", "media": ["inbound"]}',
        '{"event": "dtmf", "stream_id": "S", "dtmf": {"digit": "*#"}}',
    ],
    "plivo": [
        '{"event": "start", "start": {"streamId": "s", "callId": "c"}, "extra_headers": ["callid=1"]}',
        '{"event": "start", "start": {"streamId": "s", "callId": "c", "mediaFormat": "x"}}',
        '{"event": "start", "start": {"streamId": 1.5, "callId": "c"}}',
        '{"event": "dtmf", "streamId": "S", "dtmf": {"digit": null}}',
    ],
    "vonage": [
        '{"event": "websocket:connected", "stream_id": ["s"], "call_uuid": "c"}',
        '{"event": "websocket:dtmf", "digit": "x"}', '{"event": "websocket:dtmf", "dtmf": {"digit": []}}',
        '{"event": "websocket:dtmf", "digit": true}', '{"event": 5}',
    ],
}


@pytest.mark.parametrize("carrier,data", [(c, d) for c, items in BAD_MESSAGES.items() for d in items])
def test_wrong_shapes_are_a_protocol_error(carrier, data):
    with pytest.raises(StreamProtocolError) as error:
        message = CARRIERS[carrier].parse(data, expected_stream="S")
        if message.event == "start":
            CARRIERS[carrier].start_of(message.message)
    assert 4400 <= error.value.close_code < 4500


DTMF = {
    "twilio": lambda digit: {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": digit}},
    "telnyx": lambda digit: {"event": "dtmf", "stream_id": "s-1", "dtmf": {"digit": digit}},
    "plivo": lambda digit: {"event": "dtmf", "streamId": "s-1", "dtmf": {"digit": digit}},
    "vonage": lambda digit: {"event": "websocket:dtmf", "digit": digit, "duration": 100},
}
STREAM_IDS = {"twilio": "MZ1", "telnyx": "s-1", "plivo": "s-1", "vonage": CALL_ID}


@pytest.mark.parametrize("carrier", ["twilio", "telnyx", "plivo", "vonage"])
def test_keypad_presses_that_pass_the_parser_reach_the_serializer_as_digits(carrier):
    protocol = CARRIERS[carrier]
    serializer = protocol.serializer(protocol.start_of(_starts()[carrier]))
    for digit in "0123456789*#":
        data = json.dumps(DTMF[carrier](digit))
        assert protocol.parse(data, expected_stream=STREAM_IDS[carrier]).event == "dtmf"
        frame = asyncio.run(serializer.deserialize(data))
        assert isinstance(frame, InputDTMFFrame) and frame.button.value == digit


# -- fuzz --------------------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | _TEXT
_JSON = st.recursive(_SCALARS, lambda children: st.lists(children, max_size=4)
                     | st.dictionaries(_TEXT, children, max_size=4), max_leaves=12)
_KEYS = ["event", "start", "media", "dtmf", "streamSid", "stream_id", "streamId", "sid", "callSid", "call_control_id",
         "callId", "customParameters", "custom_parameters", "extra_headers", "client_state", "payload", "track",
         "media_format", "mediaFormat", "encoding", "digit", "call_uuid", "token", "call_id", "accountSid", "user_id"]
_FIELD = _SCALARS | _JSON | st.dictionaries(st.sampled_from(_KEYS), _SCALARS | _JSON, max_size=5)
# A section (media, start, dtmf) mostly of the wrong type, else an object of known keys.
_SECTION = (st.integers(min_value=1) | _TEXT.filter(bool) | st.lists(_SCALARS, min_size=1, max_size=3)
            | st.dictionaries(st.sampled_from(_KEYS), _FIELD, max_size=5))


def _frames(carrier: str):
    """Mostly almost-right messages of this carrier (one of its events, the stream id the stream
    started with, "S", known keys with any values), so the checks behind the event and the
    stream id are reached; and junk of every kind."""
    protocol = CARRIERS[carrier]
    stream_key = getattr(protocol, "STREAM_KEY", "stream_id")
    known = st.fixed_dictionaries(
        {"event": st.sampled_from(sorted(protocol.EVENTS)), stream_key: st.just("S"),
         "media": _SECTION, "start": _SECTION, "dtmf": _SECTION},
        optional={key: _FIELD for key in _KEYS if key not in {"event", "media", "start", "dtmf", stream_key}})
    junk = st.fixed_dictionaries({"event": _JSON, stream_key: _FIELD},
                                 optional={key: _FIELD for key in ("media", "start", "dtmf")})
    return st.one_of(known.map(json.dumps), known.map(json.dumps), known.map(lambda m: json.dumps(m).encode()),
                     junk.map(json.dumps), _JSON.map(json.dumps), _TEXT, st.binary(max_size=64))


FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_refuse(protocol, data, expected_stream):
    try:
        message = protocol.parse(data, expected_stream=expected_stream)
        assert isinstance(message, StreamMessage) and isinstance(message.event, str)
        if message.event == "start":
            start = protocol.start_of(message.message)
            assert isinstance(start, StreamStart)
            assert all(isinstance(v, str) for v in (start.stream_id, start.carrier_call_id, start.account_id))
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in start.parameters.items())
        if message.event == "dtmf":
            digit = message.message.get("digit", (message.message.get("dtmf") or {}).get("digit"))
            assert str(digit) in "0123456789*#" and len(str(digit)) == 1
    except StreamProtocolError as error:
        assert 4400 <= error.close_code < 4500


@pytest.mark.parametrize("carrier", ["twilio", "telnyx", "plivo", "vonage"])
@FUZZ
@given(data=st.data(), expected_stream=st.sampled_from(["S", "S", None]))
def test_fuzzed_frames_are_a_message_or_a_44xx_refusal(carrier, data, expected_stream):
    _parse_or_refuse(CARRIERS[carrier], data.draw(_frames(carrier)), expected_stream)


@pytest.mark.parametrize("carrier", ["twilio", "telnyx", "plivo", "vonage"])
def test_oversized_and_deep_frames_are_refused(carrier):
    for data in ("x" * (MAX_MESSAGE_BYTES + 1), b"\0" * (MAX_MESSAGE_BYTES + 1)):
        with pytest.raises(StreamProtocolError) as error:
            CARRIERS[carrier].parse(data, expected_stream="S")
        assert error.value.close_code == 4413
    with pytest.raises(StreamProtocolError) as error:
        CARRIERS[carrier].parse("[" * 30000 + "]" * 30000, expected_stream="S")
    assert error.value.close_code == 4400


# -- the caller doubles send back what the answer gave them ------------------------------------

def _answers():
    from apps.telephony.carriers import plivo, telnyx, twilio, vonage

    url = "ws://acme.localhost:8000/ws/media/{}/"
    return {
        "twilio": lambda cls: cls.from_answer(twilio.stream_twiml(stream_url=url.format("twilio"), call_id=CALL_ID,
                                                                  token=TOKEN)),
        "telnyx": lambda cls: cls.from_answer(telnyx.stream_texml(stream_url=url.format("telnyx"), call_id=CALL_ID,
                                                                  token=TOKEN)),
        "telnyx-call-control": lambda cls: cls.from_call_control_answer(
            {"stream_url": url.format("telnyx"), "client_state": telnyx.client_state(CALL_ID, TOKEN)}),
        "plivo": lambda cls: cls.from_answer(plivo.stream_xml(stream_url=url.format("plivo"), call_id=CALL_ID,
                                                              token=TOKEN)),
        "vonage": lambda cls: cls.from_answer(vonage.stream_ncco(stream_url=url.format("vonage"), call_id=CALL_ID,
                                                                 carrier_call_id="v-1", token=TOKEN)),
    }


@pytest.mark.parametrize("answer", ["twilio", "telnyx", "telnyx-call-control", "plivo", "vonage"])
def test_caller_doubles_send_back_the_call_id_and_token_of_the_answer(answer):
    from devtools.doubles.carrier_callers import caller_class

    carrier = answer.split("-")[0]
    caller = _answers()[answer](caller_class(carrier))
    assert caller.url == f"ws://acme.localhost:8000/ws/media/{carrier}/"
    start_message = json.loads(json.dumps(caller._start_message()))  # as it goes over the wire
    start = CARRIERS[carrier].start_of(start_message)
    assert (start.parameters["call_id"], start.parameters["token"]) == (CALL_ID, TOKEN)
