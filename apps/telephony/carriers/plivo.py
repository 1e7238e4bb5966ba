"""Plivo, all of it: X-Plivo-Signature-V3 webhooks (HMAC-SHA256 of
url[?sorted key+value params].nonce, base64), Stream XML answers, audio streams
(JSON, base64 μ-law 8 kHz), Call REST (make call, hang-up, transfer) at
settings.PLIVO_API_BASE_URL.

Outbound: the Make Call API names our per-call answer webhook (`outbound/<call>/`: Stream
XML with a fresh stream token, the call's CallUUID recorded), its status webhook
(`status/<call>/`: ring and hang-up callbacks, machine detection) for ring_url,
hangup_url and machine_detection_url. Transfer points the call's A leg at
`transfer/?to=<number>`, which answers <Dial><Number>.

Replays: V3 signs a nonce; a nonce seen before (for a day) is refused.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pipecat.serializers.plivo import PlivoFrameSerializer

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
    duration_of,
    e164,
    first_delivery,
    forbidden,
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
    check_encoding,
    identifier,
    optional_identifier,
    section,
)

# What Plivo charges us (US local, list price, USD per started minute); settings.PROVIDER_PRICES overrides.
PRICES = {"carrier_seconds": {"voice-inbound": VendorPrice.of("0.0055", per=60, increment=60),
                              "voice-outbound": VendorPrice.of("0.0100", per=60, increment=60)},
          "phone_number_months": {"local": VendorPrice.of("0.50")}}

# Plivo's hang-up statuses beside the Twilio-like ones.
STATUSES = {**COMMON_STATUSES, "timeout": "no_answer", "cancel": "canceled"}

NONCE_WINDOW_SECS = 24 * 3600
MAX_NONCE_CHARS = 100


# -- webhooks ----------------------------------------------------------------------------------

def signature_v3(*, url: str, params: dict, nonce: str, auth_token: str) -> str:
    joined = "".join(f"{key}{value}" for key in sorted(params) for value in sorted(params.getlist(key) if hasattr(params, "getlist") else [params[key]]))
    payload = f"{url}{'?' if joined else ''}{joined}.{nonce}"
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha256).digest()).decode()


def verify(*, request, urls: list[str], auth_token: str) -> Signature | None:
    header = request.headers.get("X-Plivo-Signature-V3", "")
    nonce = request.headers.get("X-Plivo-Signature-V3-Nonce", "")
    if not (header and nonce and auth_token) or len(nonce) > MAX_NONCE_CHARS:
        return None
    offered = [part.strip() for part in header.split(",")]
    for url in urls:
        expected = signature_v3(url=url, params=request.POST, nonce=nonce, auth_token=auth_token)
        if any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in offered):
            return Signature(nonce=nonce, window_secs=NONCE_WINDOW_SECS)
    return None


def stream_xml(*, stream_url: str, call_id: str, token: str) -> str:
    """Stream both ways as μ-law 8 kHz. extraHeaders allow only [A-Za-z0-9] in keys and
    values, so our call id travels as `callid=<uuid hex>` (the parser maps it back)
    and the stream token ([0-9a-z]) as `token=`."""
    headers = f"callid={uuid.UUID(call_id).hex},token={token}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Stream bidirectional="true" keepCallAlive="true" contentType="audio/x-mulaw;rate=8000" '
        f'extraHeaders={quoteattr(headers)}>{escape(stream_url)}</Stream></Response>'
    )


def speak_hangup_xml(text: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Speak>{escape(text)}</Speak><Hangup/></Response>'


def reject_xml() -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup reason="rejected"/></Response>'


ANSWERS = Answers(
    reject=lambda: xml(reject_xml()),
    refuse=lambda line: xml(speak_hangup_xml(line)),
    stream=lambda answer: xml(stream_xml(stream_url=answer.stream_url, call_id=answer.call_id, token=answer.token)),
)


@csrf_exempt
@require_POST
def answer_webhook(request):
    return inbound(
        request, carrier="plivo", to_number=request.POST.get("To"),
        verify=lambda number: verify(request=request, urls=signed_urls(request), auth_token=number.auth_token),
        rest=lambda: (caller_number(request.POST.get("From", "")),
                      carrier_call_id(request.POST.get("CallUUID"), what="CallUUID")),
        answers=ANSWERS,
    )


def dial_xml(to_number: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><Response><Dial>'
            f'<Number>{escape(to_number.lstrip("+"))}</Number></Dial></Response>')


def _verify_with(request):
    return lambda number: verify(request=request, urls=signed_urls(request), auth_token=number.auth_token)


@csrf_exempt
@require_POST
def outbound_answer_webhook(request, call_id):
    """The callee answered one of our outbound calls: stream it to the agent."""
    from apps.telephony.services import telephony_outbound_answered

    signed = outbound_call_signed(request, carrier="plivo", call_id=call_id, verify=_verify_with(request))
    if isinstance(signed, HttpResponse):
        return signed
    call, _ = signed
    try:
        call_uuid = carrier_call_id(request.POST.get("CallUUID"), what="CallUUID")
    except BadWebhook as error:
        return bad_request(request, "plivo", error)
    answer = telephony_outbound_answered(call=call, carrier_call_id=call_uuid)
    return ANSWERS.reject() if answer is None else ANSWERS.stream(answer)


@csrf_exempt
@require_POST
def status_webhook(request, call_id):
    """ring_url / hangup_url (CallStatus, Duration) and machine_detection_url (Machine=true|false)."""
    from apps.calls.services import call_answered_by_record, call_carrier_status_update

    signed = outbound_call_signed(request, carrier="plivo", call_id=call_id, verify=_verify_with(request))
    if isinstance(signed, HttpResponse):
        return signed
    call, _ = signed
    try:
        if "Machine" in request.POST:
            machine = status_text(request.POST["Machine"], what="Machine").lower()
            call_answered_by_record(call_id=call.pk, answered_by={"true": "machine", "false": "human"}.get(machine,
                                                                                                          "unknown"))
            return HttpResponse(status=204)
        status = status_text(request.POST.get("CallStatus", ""), what="CallStatus")
    except BadWebhook as error:
        return bad_request(request, "plivo", error)
    call_carrier_status_update(call_id=call.pk, carrier_status=status,
                               duration_secs=duration_of(request.POST.get("Duration")))
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def transfer_webhook(request):
    """The A leg's new XML after a transfer: dial the person (`to`, in the URL Plivo signs)."""
    from apps.telephony.selectors import phone_number_for_carrier_call

    try:
        call_uuid = carrier_call_id(request.POST.get("CallUUID"), what="CallUUID")
        to_number = e164(request.GET.get("to"), what="to")
    except BadWebhook as error:
        return bad_request(request, "plivo", error)
    number = phone_number_for_carrier_call(carrier="plivo", carrier_call_id=call_uuid)
    signature = verify(request=request, urls=signed_urls(request), auth_token=number.auth_token) if number else None
    if signature is None:
        return forbidden(request, "plivo")
    if not first_delivery(carrier="plivo", signature=signature):
        return forbidden(request, "plivo", "replayed signature (nonce seen before)")
    return xml(dial_xml(to_number))


# -- REST --------------------------------------------------------------------------------------

def _calls_url(number) -> str:
    return f"{settings.PLIVO_API_BASE_URL.rstrip('/')}/v1/Account/{number.account_sid}/Call/"


def hang_up(*, number, carrier_call_id: str) -> None:
    """DELETE the call (204); 404 means it had already ended."""
    rest_request("Plivo", "DELETE", f"{_calls_url(number)}{carrier_call_id}/", ok={204},
                 gone=lambda response: response.status_code == 404, auth=(number.account_sid, number.auth_token))


def transfer(*, number, carrier_call_id: str, to_number: str) -> None:
    """Transfer the call's A leg to our transfer webhook, which dials `to_number` (202)."""
    from django.db import connection
    from django.urls import reverse

    from apps.core.hosts import client_url

    url = client_url(connection.tenant, reverse("telephony:plivo_transfer")) + "?" + urlencode({"to": to_number})
    rest_request("Plivo", "POST", f"{_calls_url(number)}{carrier_call_id}/", ok={202},
                 auth=(number.account_sid, number.auth_token),
                 json={"legs": "aleg", "aleg_url": url, "aleg_method": "POST"})


def dial(*, number, to_number: str, stream_url: str, call_id: str, token: str, status_callback: str,
         answer_url: str = "", machine_detection: bool = False) -> str:
    """Make Call (201): Plivo fetches `answer_url` when the callee answers (our Stream XML; the
    stream token is minted then), rings and hangs up to `status_callback`, and with
    `machine_detection` posts its verdict there too. Returns the request_uuid (the call's
    CallUUID replaces it when the answer webhook comes)."""
    body = {"from": number.number.lstrip("+"), "to": to_number.lstrip("+"), "answer_url": answer_url,
            "answer_method": "POST", "ring_url": status_callback, "ring_method": "POST",
            "hangup_url": status_callback, "hangup_method": "POST"}
    if machine_detection:
        body.update(machine_detection="true", machine_detection_url=status_callback, machine_detection_method="POST")
    response = rest_request("Plivo", "POST", _calls_url(number), ok={200, 201},
                            auth=(number.account_sid, number.auth_token), json=body)
    try:
        return carrier_call_id(response.json()["request_uuid"], what="request_uuid")
    except (ValueError, KeyError, TypeError, BadWebhook) as error:
        raise ProviderError(f"Plivo answered the call request without a request_uuid: {response.text[:200]}",
                            retryable=False) from error


# -- media stream ------------------------------------------------------------------------------

def plivo_extra_headers(value: object) -> dict[str, str]:
    """Plivo's `extra_headers`: "k1=v1,k2=v2" as given in the Stream XML (also seen
    separated by ";"), or already a JSON object."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        if not all(isinstance(item, str | int) and not isinstance(item, bool) for item in value.values()):
            raise StreamProtocolError("extra_headers values must be strings")
        return {str(k)[:200]: str(v)[:200] for k, v in value.items()}
    if not isinstance(value, str) or len(value) > 2000:
        raise StreamProtocolError("extra_headers is not a short string")
    pairs = (part.split("=", 1) for part in value.replace(";", ",").split(",") if "=" in part)
    return {key.strip(): item.strip() for key, item in pairs}


class PlivoAudioStreams(JsonMediaStream):
    """Plivo `<Stream bidirectional="true" contentType="audio/x-mulaw;rate=8000">`: JSON
    text frames, base64 μ-law 8 kHz. No stop event: the socket closes when the call does."""

    name = "plivo"
    EVENTS = frozenset({"start", "media", "dtmf", "playedStream", "clearedAudio"})
    STREAM_EVENTS = frozenset({"media", "dtmf"})
    OTHER_EVENTS = frozenset({"playedStream", "clearedAudio"})
    STREAM_KEY = "streamId"

    def start_of(self, message: dict) -> StreamStart:
        start = section(message, "start")
        if not start.get("streamId") or not start.get("callId"):
            raise StreamProtocolError("start without streamId/callId")
        check_encoding(section(start, "mediaFormat").get("encoding", "audio/x-mulaw"), "audio/x-mulaw")
        headers = plivo_extra_headers(message.get("extra_headers") or start.get("extra_headers"))
        # extraHeaders allow only [A-Za-z0-9]: the Stream XML names our call "callid" (hex uuid).
        if "callid" in headers and "call_id" not in headers:
            try:
                headers["call_id"] = str(uuid.UUID(hex=headers["callid"]))
            except ValueError:
                headers["call_id"] = headers["callid"]
        return StreamStart(
            stream_id=identifier(start["streamId"], "streamId"),
            carrier_call_id=identifier(start["callId"], "callId"),
            account_id=optional_identifier(start.get("accountId"), "accountId"),
            parameters=headers,
        )

    def serializer(self, start: StreamStart) -> PlivoFrameSerializer:
        # auto_hang_up=False: the telephony service hangs up (Call DELETE), see TwilioMediaStreams.
        return PlivoFrameSerializer(
            stream_id=start.stream_id,
            params=PlivoFrameSerializer.InputParams(
                plivo_sample_rate=self.sample_rate, sample_rate=self.sample_rate, auto_hang_up=False
            ),
        )


CARRIER = Carrier(
    name="plivo",
    label="Plivo",
    media=PlivoAudioStreams(),
    webhooks=(Webhook("answer/", answer_webhook, "plivo_answer"),
              Webhook("outbound/<uuid:call_id>/", outbound_answer_webhook, "plivo_outbound"),
              Webhook("status/<uuid:call_id>/", status_webhook, "plivo_status"),
              Webhook("transfer/", transfer_webhook, "plivo_transfer")),
    statuses=STATUSES,
    prices=PRICES,
    hang_up=hang_up,
    transfer=transfer,
    dial=dial,
    status_webhook="plivo_status",
    answer_webhook="plivo_outbound",
    caller_double="devtools.doubles.carrier_callers.PlivoCaller",
)
