"""Twilio, all of it: X-Twilio-Signature webhooks (voice, status callback), TwiML
built with the SDK's VoiceResponse, Media Streams (JSON, base64 μ-law 8 kHz), REST
through the SDK (hang-up, transfer, dial), statuses and prices.

Replays: Twilio's signature has no timestamp or nonce, so a redelivered webhook is
absorbed by its CallSid (unique per carrier in the calls table: the same call comes
back) and a webhook replayed after its call ended is rejected (no stream, no token).
"""
from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pipecat.serializers.twilio import TwilioFrameSerializer
from twilio.request_validator import RequestValidator
from twilio.rest import Client as TwilioClient
from twilio.twiml.voice_response import Connect, VoiceResponse

from apps.billing.pricing import VendorPrice
from apps.telephony.carriers import COMMON_STATUSES
from apps.telephony.carriers.registry import Carrier, Webhook
from apps.telephony.webhooks import (
    Answers,
    BadWebhook,
    Signature,
    bad_request,
    caller_number,
    carrier_call_id,
    duration_of,
    inbound,
    outbound_call_signed,
    signed_urls,
    status_text,
    xml,
)
from apps.voice.media_protocol import (
    JsonMediaStream,
    StreamProtocolError,
    StreamStart,
    identifier,
    optional_identifier,
    section,
    string_parameters,
)

# What Twilio charges us (US local numbers, list price, USD per started minute); settings.PROVIDER_PRICES overrides.
PRICES = {"carrier_seconds": {"voice-inbound": VendorPrice.of("0.0085", per=60, increment=60),
                              "voice-outbound": VendorPrice.of("0.0140", per=60, increment=60)},
          "phone_number_months": {"local": VendorPrice.of("1.15")}}


# -- webhooks ----------------------------------------------------------------------------------

def verify(*, request, urls: list[str], auth_token: str) -> Signature | None:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not auth_token:
        return None
    validator = RequestValidator(auth_token)
    params = request.POST.dict()
    return Signature() if any(validator.validate(url, params, signature) for url in urls) else None


def _twiml(response: VoiceResponse) -> HttpResponse:
    return xml(str(response))


def stream_twiml(*, stream_url: str, call_id: str, token: str) -> str:
    """Connect the call's audio to our media websocket; the stream's `start` carries
    our call id and its single-use token as custom parameters."""
    connect = Connect()
    stream = connect.stream(url=stream_url)
    stream.parameter(name="call_id", value=call_id)
    stream.parameter(name="token", value=token)
    return str(VoiceResponse().append(connect))


def say_hangup_twiml(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def reject_twiml() -> str:
    response = VoiceResponse()
    response.reject()
    return str(response)


def dial_twiml(to_number: str) -> str:
    response = VoiceResponse()
    response.dial(to_number)
    return str(response)


# TwiML answers, shared with Telnyx TeXML (Twilio-compatible).
TWIML_ANSWERS = Answers(
    reject=lambda: xml(reject_twiml()),
    refuse=lambda line: xml(say_hangup_twiml(line)),
    stream=lambda answer: xml(stream_twiml(stream_url=answer.stream_url, call_id=answer.call_id, token=answer.token)),
)


def _rest_of(request) -> tuple[str, str]:
    return caller_number(request.POST.get("From", "")), carrier_call_id(request.POST.get("CallSid"), what="CallSid")


@csrf_exempt
@require_POST
def voice_webhook(request):
    return inbound(
        request, carrier="twilio", to_number=request.POST.get("To"),
        verify=lambda number: verify(request=request, urls=signed_urls(request), auth_token=number.auth_token),
        rest=lambda: _rest_of(request), answers=TWIML_ANSWERS,
    )


# Twilio's AnsweredBy (answering-machine detection) → Call.answered_by.
ANSWERED_BY = {"human": "human", "machine_start": "machine", "machine_end_beep": "machine",
               "machine_end_silence": "machine", "machine_end_other": "machine", "fax": "machine",
               "unknown": "unknown"}


@csrf_exempt
@require_POST
def status_webhook(request, call_id):
    """The call's status callback, and its asynchronous AMD callback (AnsweredBy)."""
    from apps.calls.services import call_answered_by_record, call_carrier_status_update

    signed = outbound_call_signed(
        request, carrier="twilio", call_id=call_id,
        verify=lambda number: verify(request=request, urls=signed_urls(request), auth_token=number.auth_token))
    if isinstance(signed, HttpResponse):
        return signed
    call, _ = signed
    try:
        if "AnsweredBy" in request.POST:
            answered_by = ANSWERED_BY.get(status_text(request.POST["AnsweredBy"], what="AnsweredBy"), "unknown")
            call_answered_by_record(call_id=call.pk, answered_by=answered_by)
            return HttpResponse(status=204)
        status = status_text(request.POST.get("CallStatus", ""), what="CallStatus")
    except BadWebhook as error:
        return bad_request(request, "twilio", error)
    call_carrier_status_update(call_id=call.pk, carrier_status=status,
                               duration_secs=duration_of(request.POST.get("CallDuration")))
    return HttpResponse(status=204)


# -- REST --------------------------------------------------------------------------------------

def rest_client(*, account_sid: str, auth_token: str) -> TwilioClient:
    """The SDK client; settings.TWILIO_API_BASE_URL (tests: the REST double) replaces https://api.twilio.com."""
    client = TwilioClient(account_sid, auth_token)
    base_url = getattr(settings, "TWILIO_API_BASE_URL", "")
    if base_url:
        client.api.base_url = base_url.rstrip("/")
    return client


def classify_error(exc: Exception):
    """A Twilio SDK failure as a ProviderError (429 and 5xx are worth retrying)."""
    from twilio.base.exceptions import TwilioRestException

    from apps.core.errors import ProviderError

    if isinstance(exc, TwilioRestException):
        retryable = exc.status == 429 or exc.status >= 500
        return ProviderError(f"Twilio refused: {exc.msg}", retryable=retryable, details={"status": exc.status, "code": exc.code})
    return ProviderError(f"Twilio unreachable: {exc}", retryable=True)


def hang_up(*, number, carrier_call_id: str) -> None:
    try:
        rest_client(account_sid=number.account_sid, auth_token=number.auth_token).calls(carrier_call_id).update(
            status="completed")
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify_error(exc) from exc


def transfer(*, number, carrier_call_id: str, to_number: str) -> None:
    """The call's TwiML is replaced by <Dial>."""
    try:
        rest_client(account_sid=number.account_sid, auth_token=number.auth_token).calls(carrier_call_id).update(
            twiml=dial_twiml(to_number))
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify_error(exc) from exc


def dial(*, number, to_number: str, stream_url: str, call_id: str, token: str, status_callback: str,
         answer_url: str = "", machine_detection: bool = False) -> str:
    """Place an outbound call whose audio streams to us; returns its CallSid. Failures: ProviderError.
    With `machine_detection`, asynchronous AMD that waits for the end of a machine's greeting
    (MachineDetection=DetectMessageEnd, AsyncAmd): the stream starts at once and AnsweredBy
    arrives at the status callback."""
    amd = {"machine_detection": "DetectMessageEnd", "async_amd": "true", "async_amd_status_callback": status_callback,
           "async_amd_status_callback_method": "POST"} if machine_detection else {}
    try:
        created = rest_client(account_sid=number.account_sid, auth_token=number.auth_token).calls.create(
            to=to_number, from_=number.number, twiml=stream_twiml(stream_url=stream_url, call_id=call_id, token=token),
            status_callback=status_callback, status_callback_event=["initiated", "ringing", "answered", "completed"],
            status_callback_method="POST", **amd,
        )
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify_error(exc) from exc
    return created.sid


# -- media stream ------------------------------------------------------------------------------

class TwilioMediaStreams(JsonMediaStream):
    """Twilio `<Connect><Stream>`: JSON text frames, base64 μ-law 8 kHz."""

    name = "twilio"
    EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop"})
    STREAM_EVENTS = frozenset({"media", "dtmf", "mark", "stop"})
    STREAM_KEY = "streamSid"

    def start_of(self, message: dict) -> StreamStart:
        start = section(message, "start")
        if not start.get("streamSid") or not start.get("callSid"):
            raise StreamProtocolError("start without streamSid/callSid")
        return StreamStart(
            stream_id=identifier(start["streamSid"], "streamSid"),
            carrier_call_id=identifier(start["callSid"], "callSid"),
            account_id=optional_identifier(start.get("accountSid"), "accountSid"),
            parameters=string_parameters(start.get("customParameters"), "customParameters"),
        )

    def serializer(self, start: StreamStart) -> TwilioFrameSerializer:
        # auto_hang_up=False: hang-ups and transfers go through our telephony
        # service; the serializer would "complete" a call we just transferred.
        return TwilioFrameSerializer(
            stream_sid=start.stream_id,
            call_sid=start.carrier_call_id,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False, sample_rate=self.sample_rate),
        )


CARRIER = Carrier(
    name="twilio",
    label="Twilio",
    media=TwilioMediaStreams(),
    webhooks=(Webhook("voice/", voice_webhook, "twilio_voice"),
              Webhook("status/<uuid:call_id>/", status_webhook, "twilio_status")),
    statuses=COMMON_STATUSES,
    prices=PRICES,
    hang_up=hang_up,
    transfer=transfer,
    dial=dial,
    status_webhook="twilio_status",
    caller_double="devtools.doubles.twilio_caller.TwilioCaller",
)
