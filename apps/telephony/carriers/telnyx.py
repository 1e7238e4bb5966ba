"""Telnyx, all of it: ed25519-signed webhooks (telnyx-signature-ed25519 over
"<timestamp>|<body>") for TeXML and Call Control applications, TeXML / Call Control
answers that stream to our media websocket, media streaming (JSON, base64 PCMU),
Call Control REST (answer, reject, hang-up, transfer) at settings.TELNYX_API_BASE_URL.

Replays: the timestamp must be within MAX_SKEW_SECS, and a signature is accepted
once (kept for twice the window, so a replay inside the window is refused too).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from xml.sax.saxutils import quoteattr

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pipecat.serializers.telnyx import TelnyxFrameSerializer

from apps.billing.pricing import VendorPrice
from apps.core.errors import ProviderError
from apps.telephony.carriers import COMMON_STATUSES
from apps.telephony.carriers._rest import rest_request
from apps.telephony.carriers.registry import Carrier, Webhook
from apps.telephony.webhooks import (
    Answers,
    BadWebhook,
    Signature,
    bad_request,
    caller_number,
    carrier_call_id,
    delivery_forget,
    e164,
    inbound,
    outbound_call_signed,
    signed_number,
    status_text,
    xml,
)
from apps.voice.media_protocol import (
    JsonMediaStream,
    StreamMessage,
    StreamProtocolError,
    StreamStart,
    check_encoding,
    identifier,
    optional_identifier,
    section,
    string_parameters,
)

logger = logging.getLogger(__name__)

# What Telnyx charges us (US local, list price, USD per started minute); settings.PROVIDER_PRICES overrides.
PRICES = {"carrier_seconds": {"voice-inbound": VendorPrice.of("0.0035", per=60, increment=60),
                              "voice-outbound": VendorPrice.of("0.0070", per=60, increment=60)},
          "phone_number_months": {"local": VendorPrice.of("1.00")}}

# Call Control: its events and hang-up causes (call.hangup's payload.hangup_cause) in the status
# vocabulary, beside TeXML's Twilio-compatible statuses.
STATUSES = {
    **COMMON_STATUSES,
    "normal_clearing": "completed", "time_limit": "completed", "user_busy": "busy", "timeout": "no_answer",
    "no_answer": "no_answer", "call_rejected": "failed", "not_found": "failed", "unallocated_number": "failed",
    "unspecified": "failed", "originator_cancel": "canceled",
}
# Call Control answering-machine results (call.machine[.premium].detection.ended) → Call.answered_by.
ANSWERED_BY = {"human": "human", "human_residence": "human", "human_business": "human", "machine": "machine",
               "fax_detected": "machine", "not_sure": "unknown", "silence": "unknown"}
AMD_MODE = "detect_beep"  # machine or human, then call.machine.greeting.ended when the beep comes

MAX_SKEW_SECS = 300
ALREADY_ENDED = "90018"  # Telnyx error code: "Call has already ended"


# -- webhooks ----------------------------------------------------------------------------------

def verify(*, request, public_key_b64: str, now: float | None = None) -> Signature | None:
    signature = request.headers.get("telnyx-signature-ed25519", "")
    timestamp = request.headers.get("telnyx-timestamp", "")
    if not (signature and timestamp and public_key_b64) or not timestamp.isdigit() or len(timestamp) > 12:
        return None
    if abs((now or time.time()) - int(timestamp)) > MAX_SKEW_SECS:
        return None
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
        key.verify(base64.b64decode(signature), f"{timestamp}|".encode() + request.body)
    except (InvalidSignature, ValueError, binascii.Error):
        return None
    return Signature(nonce=signature, window_secs=2 * MAX_SKEW_SECS)


def stream_texml(*, stream_url: str, call_id: str, token: str) -> str:
    """Connect the call to our media websocket. bidirectionalMode="rtp" so the agent's
    PCMU frames are played (the default, mp3, expects whole files)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f'<Stream url={quoteattr(stream_url)} bidirectionalMode="rtp" bidirectionalCodec="PCMU">'
        f'<Parameter name="call_id" value={quoteattr(call_id)}/>'
        f'<Parameter name="token" value={quoteattr(token)}/>'
        "</Stream></Connect></Response>"
    )


def client_state(call_id: str, token: str) -> str:
    """Call Control carries our call id and stream token through the stream's `start`
    as client_state: base64 of {"call_id": ..., "token": ...}."""
    return base64.b64encode(json.dumps({"call_id": call_id, "token": token}, separators=(",", ":")).encode()).decode()


def _texml_answers() -> Answers:
    from apps.telephony.carriers.twilio import TWIML_ANSWERS  # TeXML speaks TwiML's verbs

    return Answers(reject=TWIML_ANSWERS.reject, refuse=TWIML_ANSWERS.refuse,
                   stream=lambda answer: xml(stream_texml(stream_url=answer.stream_url, call_id=answer.call_id,
                                                          token=answer.token)))


@csrf_exempt
@require_POST
def texml_webhook(request):
    """Telnyx TeXML application webhook (Twilio-compatible parameters)."""
    return inbound(
        request, carrier="telnyx", to_number=request.POST.get("To"),
        verify=lambda number: verify(request=request, public_key_b64=number.webhook_public_key),
        rest=lambda: (caller_number(request.POST.get("From", "")),
                      carrier_call_id(request.POST.get("CallSid"), what="CallSid")),
        answers=_texml_answers(),
    )


def _call_control_event(request) -> tuple[str, dict]:
    """(event_type, payload) of a Call Control webhook, shape-checked."""
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        # Telnyx posts JSON; a form's body was already parsed away (reading it would be a 500).
        raise BadWebhook("body is not JSON")
    try:
        document = json.loads(request.body)
    except (ValueError, RecursionError) as error:
        raise BadWebhook("body is not JSON") from error
    data = document.get("data") if isinstance(document, dict) else None
    payload = data.get("payload") if isinstance(data, dict) else None
    event_type = data.get("event_type") if isinstance(data, dict) else None
    if not isinstance(payload, dict) or not isinstance(event_type, str):
        raise BadWebhook("body is not a Call Control event (data.event_type, data.payload)")
    return event_type, payload


@csrf_exempt
@require_POST
def call_control_webhook(request):
    """Telnyx Call Control application webhook (JSON events). Only `call.initiated`
    of an incoming call needs us: it is answered with a stream to the media websocket."""
    from apps.calls.services import call_refused_record
    from apps.core.errors import ProviderError
    from apps.telephony.services import telephony_telnyx_call_initiated

    try:
        event_type, payload = _call_control_event(request)
        to_number = e164(payload.get("to"), what="payload.to")
    except BadWebhook as error:
        return bad_request(request, "telnyx", error)
    signed = signed_number(request, carrier="telnyx", to_number=to_number,
                           verify=lambda number: verify(request=request, public_key_b64=number.webhook_public_key))
    if isinstance(signed, HttpResponse):
        return signed
    if event_type != "call.initiated" or payload.get("direction") != "incoming":
        return HttpResponse(status=200)  # hang-ups and the rest are recorded by the media stream
    try:
        from_number = caller_number(payload.get("from", ""))
        call_control_id = carrier_call_id(payload.get("call_control_id"), what="call_control_id")
    except BadWebhook as error:
        return bad_request(request, "telnyx", error)
    try:
        if signed.number is None:
            call_refused_record(carrier="telnyx", to_number=to_number, from_number=from_number,
                                carrier_call_id=call_control_id, error="not a number of this client")
            reject(number=signed.signer, call_control_id=call_control_id)
        else:
            telephony_telnyx_call_initiated(to_number=to_number, from_number=from_number,
                                            call_control_id=call_control_id)
    except ProviderError as error:
        logger.warning("telnyx call %s could not be answered: %s", call_control_id, error.message)
        if not error.retryable:
            return HttpResponse(status=200)
        delivery_forget(carrier="telnyx", signature=signed.signature)  # the retry may carry the same signature
        return HttpResponse(status=503)  # a 5xx makes Telnyx retry
    return HttpResponse(status=200)


# -- REST (Call Control) -----------------------------------------------------------------------

def _api(path: str) -> str:
    return settings.TELNYX_API_BASE_URL.rstrip("/") + "/v2" + path


def _headers(api_key: str) -> dict:
    return {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Accept": "application/json"}


def _already_ended(response) -> bool:
    if response.status_code != 422:
        return False
    try:
        return any(str(error.get("code")) == ALREADY_ENDED for error in response.json().get("errors", []))
    except (ValueError, AttributeError):
        return False


def answer_with_stream(*, number, call_control_id: str, stream_url: str, call_id: str, token: str) -> None:
    """Call Control: answer an incoming call, streaming both ways (RTP, PCMU) to our websocket."""
    rest_request(
        "Telnyx", "POST", _api(f"/calls/{call_control_id}/actions/answer"), ok={200}, headers=_headers(number.auth_token),
        json={"stream_url": stream_url, "stream_track": "inbound_track", "stream_bidirectional_mode": "rtp",
              "stream_bidirectional_codec": "PCMU", "client_state": client_state(call_id, token)},
    )


def reject(*, number, call_control_id: str) -> None:
    """Call Control refusal (suspended client, usage cap, not our number): reject without answering."""
    rest_request("Telnyx", "POST", _api(f"/calls/{call_control_id}/actions/reject"), ok={200},
                 gone=_already_ended, headers=_headers(number.auth_token), json={"cause": "CALL_REJECTED"})


def hang_up(*, number, carrier_call_id: str) -> None:
    rest_request("Telnyx", "POST", _api(f"/calls/{carrier_call_id}/actions/hangup"), ok={200},
                 gone=_already_ended, headers=_headers(number.auth_token), json={})


def transfer(*, number, carrier_call_id: str, to_number: str) -> None:
    rest_request("Telnyx", "POST", _api(f"/calls/{carrier_call_id}/actions/transfer"), ok={200},
                 headers=_headers(number.auth_token), json={"to": to_number})


def dial(*, number, to_number: str, stream_url: str, call_id: str, token: str, status_callback: str,
         answer_url: str = "", machine_detection: bool = False) -> str:
    """Call Control Dial from the number's connection (PhoneNumber.account_sid), streaming both
    ways (RTP, PCMU) to our websocket once answered, our call id and stream token in
    client_state, every event of the call to its status webhook; returns the call_control_id."""
    body = {"connection_id": number.account_sid, "to": to_number, "from": number.number,
            "stream_url": stream_url, "stream_track": "inbound_track", "stream_bidirectional_mode": "rtp",
            "stream_bidirectional_codec": "PCMU", "client_state": client_state(call_id, token),
            "webhook_url": status_callback, "webhook_url_method": "POST"}
    if machine_detection:
        body["answering_machine_detection"] = AMD_MODE
    response = rest_request("Telnyx", "POST", _api("/calls"), ok={200, 201}, headers=_headers(number.auth_token),
                            json=body)
    try:
        return carrier_call_id(response.json()["data"]["call_control_id"], what="call_control_id")
    except (ValueError, KeyError, TypeError, BadWebhook) as error:
        raise ProviderError(f"Telnyx answered the dial without a call_control_id: {response.text[:200]}",
                            retryable=False) from error


@csrf_exempt
@require_POST
def status_webhook(request, call_id):
    """Call Control events of one outbound call (the dial's webhook_url): initiated, answered,
    hang-up with its cause, answering-machine results."""
    from apps.calls.services import call_answered_by_record, call_carrier_status_update

    try:
        event_type, payload = _call_control_event(request)
    except BadWebhook as error:
        return bad_request(request, "telnyx", error)
    signed = outbound_call_signed(request, carrier="telnyx", call_id=call_id, verify=lambda number: verify(
        request=request, public_key_b64=number.webhook_public_key))
    if isinstance(signed, HttpResponse):
        return signed
    call, _ = signed
    try:
        if event_type.startswith("call.machine.") and event_type.endswith(".detection.ended"):
            result = status_text(payload.get("result", ""), what="payload.result")
            call_answered_by_record(call_id=call.pk, answered_by=ANSWERED_BY.get(result, "unknown"))
        elif event_type.startswith("call.machine.") and event_type.endswith(".greeting.ended"):
            call_answered_by_record(call_id=call.pk, answered_by="machine")  # a greeting (and a beep) means a machine
        elif event_type in ("call.initiated", "call.answered"):
            call_carrier_status_update(call_id=call.pk, carrier_status=event_type.removeprefix("call."))
        elif event_type == "call.hangup":
            cause = status_text(payload.get("hangup_cause") or "unspecified", what="payload.hangup_cause")
            call_carrier_status_update(call_id=call.pk, carrier_status=cause)
    except BadWebhook as error:
        return bad_request(request, "telnyx", error)
    return HttpResponse(status=200)


# -- media stream ------------------------------------------------------------------------------

def _client_state_parameters(value: object) -> dict[str, str]:
    """Our call id and token from a Call Control client_state (base64 JSON; a bare
    base64 call id from before tokens is read as the call id)."""
    if not isinstance(value, str) or len(value) > 1000:
        raise StreamProtocolError("client_state is not a short string")
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise StreamProtocolError("client_state is not base64 text") from error
    try:
        state = json.loads(decoded)
    except (ValueError, RecursionError):
        return {"call_id": decoded}
    if not isinstance(state, dict):
        raise StreamProtocolError("client_state is not an object")
    return string_parameters(state, "client_state")


class TelnyxMediaStreams(JsonMediaStream):
    """Telnyx media streaming (TeXML `<Stream bidirectionalMode="rtp">` or Call Control
    `stream_url`): JSON text frames, base64 PCMU 8 kHz, `stream_id` on every message."""

    name = "telnyx"
    EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop", "error"})
    STREAM_EVENTS = frozenset({"media", "dtmf", "mark", "stop"})
    OTHER_EVENTS = frozenset({"error"})
    STREAM_KEY = "stream_id"

    def media(self, message: dict) -> StreamMessage:
        if section(message, "media").get("track", "inbound") != "inbound":
            return StreamMessage("other", message)  # only the caller's track is ours to hear
        return super().media(message)

    def start_of(self, message: dict) -> StreamStart:
        start = section(message, "start")
        if not message.get("stream_id") or not start.get("call_control_id"):
            raise StreamProtocolError("start without stream_id/call_control_id")
        check_encoding(section(start, "media_format").get("encoding", "PCMU"), "PCMU")
        parameters = string_parameters(start.get("custom_parameters"), "custom_parameters")
        if start.get("client_state") and "call_id" not in parameters:
            parameters.update(_client_state_parameters(start["client_state"]))
        return StreamStart(
            stream_id=identifier(message["stream_id"], "stream_id"),
            carrier_call_id=identifier(start["call_control_id"], "call_control_id"),
            account_id=optional_identifier(start.get("user_id"), "user_id"),
            parameters=parameters,
        )

    def serializer(self, start: StreamStart) -> TelnyxFrameSerializer:
        # auto_hang_up=False: the telephony service hangs up (Call Control REST), see TwilioMediaStreams.
        return TelnyxFrameSerializer(
            stream_id=start.stream_id,
            outbound_encoding="PCMU",
            inbound_encoding="PCMU",
            params=TelnyxFrameSerializer.InputParams(
                telnyx_sample_rate=self.sample_rate, sample_rate=self.sample_rate, auto_hang_up=False
            ),
        )


CARRIER = Carrier(
    name="telnyx",
    label="Telnyx",
    media=TelnyxMediaStreams(),
    webhooks=(Webhook("voice/", texml_webhook, "telnyx_voice"),
              Webhook("call-control/", call_control_webhook, "telnyx_call_control"),
              Webhook("status/<uuid:call_id>/", status_webhook, "telnyx_status")),
    statuses=STATUSES,
    prices=PRICES,
    hang_up=hang_up,
    transfer=transfer,
    dial=dial,
    status_webhook="telnyx_status",
    caller_double="devtools.doubles.carrier_callers.TelnyxCaller",
)
