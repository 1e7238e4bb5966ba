"""Carrier webhooks (client host). Each verifies the carrier's signature with
the dialled number's credentials, then asks one service what to do."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.http import HttpResponse, HttpResponseForbidden, HttpResponseNotFound, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from apps.calls.selectors import call_get
from apps.calls.services import call_carrier_status_update
from apps.core.errors import NotFound, ProviderError
from apps.core.hosts import client_url
from apps.telephony.carriers import plivo, telnyx, twilio, vonage
from apps.telephony.models import PhoneNumber
from apps.telephony.selectors import phone_number_for_inbound
from apps.telephony.services import telephony_inbound, telephony_stream_url, telephony_telnyx_call_initiated

logger = logging.getLogger(__name__)


def _xml(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml", status=status)


def _signed_urls(request) -> list[str]:
    """The URL the carrier signed: as it reached us, or as we gave it to the carrier (behind a proxy)."""
    return list(dict.fromkeys([request.build_absolute_uri(), client_url(request.tenant, request.get_full_path())]))


def _forbidden(request, carrier: str) -> HttpResponse:
    logger.warning("%s webhook with a missing or invalid signature on %s%s from %s", carrier, request.get_host(),
                   request.path, request.META.get("REMOTE_ADDR"))
    return HttpResponseForbidden("invalid signature")


def _refused_number(request, carrier: str, number: str) -> None:
    logger.warning("%s call to %s refused on %s: not a number of this client", carrier, number, request.get_host())


def _e164(number: str) -> str:
    """Plivo and Vonage send numbers without the leading "+"."""
    return "+" + number if number and not number.startswith("+") else number


def _refusal_of_webhook(request, *, carrier: str, to_number: str, verify: Callable[[PhoneNumber], bool],
                        unknown: HttpResponse) -> HttpResponse | None:
    """None when the dialled number is this client's and the webhook is signed with
    its credentials; otherwise the response that refuses the webhook."""
    number = phone_number_for_inbound(number=to_number, carrier=carrier)
    if number is None:
        _refused_number(request, carrier, to_number)
        return unknown
    if not verify(number):
        return _forbidden(request, carrier)
    return None


def _inbound(request, *, carrier: str, to_number: str, from_number: str, carrier_call_id: str,
             verify: Callable[[PhoneNumber], bool], unknown: HttpResponse, refuse: Callable[[str], HttpResponse],
             stream: Callable[[str, str], HttpResponse]) -> HttpResponse:
    """An incoming call, the same for every carrier: find the number, verify the
    signature, ask `telephony_inbound`, then answer in the carrier's markup:
    `refuse(line)` or `stream(stream_url, call_id)`."""
    refusal = _refusal_of_webhook(request, carrier=carrier, to_number=to_number, verify=verify, unknown=unknown)
    if refusal is not None:
        return refusal
    decision = telephony_inbound(carrier=carrier, to_number=to_number, from_number=from_number,
                                 carrier_call_id=carrier_call_id)
    if decision.refusal_line:
        return refuse(decision.refusal_line)
    return stream(telephony_stream_url(carrier=carrier), str(decision.call.pk))


@csrf_exempt
@require_POST
def twilio_voice(request):
    return _inbound(
        request, carrier="twilio", to_number=request.POST.get("To", ""), from_number=request.POST.get("From", ""),
        carrier_call_id=request.POST.get("CallSid", ""),
        verify=lambda number: twilio.verify(request=request, urls=_signed_urls(request), auth_token=number.auth_token),
        unknown=_xml(twilio.reject_twiml()),
        refuse=lambda line: _xml(twilio.say_hangup_twiml(line)),
        stream=lambda stream_url, call_id: _xml(twilio.stream_twiml(stream_url=stream_url, call_id=call_id)),
    )


@csrf_exempt
@require_POST
def twilio_status(request, call_id):
    try:
        call = call_get(call_id=call_id)
    except NotFound:
        return HttpResponseNotFound("no such call")
    auth_token = call.phone_number.auth_token if call.phone_number else ""
    if not twilio.verify(request=request, urls=_signed_urls(request), auth_token=auth_token):
        return _forbidden(request, "twilio")
    duration = request.POST.get("CallDuration")
    call_carrier_status_update(call_id=call.pk, carrier_status=request.POST.get("CallStatus", ""),
                               duration_secs=int(duration) if duration and duration.isdigit() else None)
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def telnyx_voice(request):
    """Telnyx TeXML application webhook (Twilio-compatible parameters)."""
    return _inbound(
        request, carrier="telnyx", to_number=request.POST.get("To", ""), from_number=request.POST.get("From", ""),
        carrier_call_id=request.POST.get("CallSid", ""),
        verify=lambda number: telnyx.verify(request=request, public_key_b64=number.webhook_public_key),
        unknown=_xml(twilio.reject_twiml()),
        refuse=lambda line: _xml(twilio.say_hangup_twiml(line)),
        stream=lambda stream_url, call_id: _xml(telnyx.stream_texml(stream_url=stream_url, call_id=call_id)),
    )


@csrf_exempt
@require_POST
def telnyx_call_control(request):
    """Telnyx Call Control application webhook (JSON events). Only `call.initiated`
    of an incoming call needs us: it is answered with a stream to the media websocket."""
    try:
        event = json.loads(request.body)["data"]
        payload = event["payload"]
    except (ValueError, KeyError, TypeError):
        return HttpResponse("bad body", status=400)
    to_number = str(payload.get("to", ""))
    refusal = _refusal_of_webhook(
        request, carrier="telnyx", to_number=to_number, unknown=HttpResponseNotFound("unknown number"),
        verify=lambda number: telnyx.verify(request=request, public_key_b64=number.webhook_public_key),
    )
    if refusal is not None:
        return refusal
    if event.get("event_type") != "call.initiated" or payload.get("direction") != "incoming":
        return HttpResponse(status=200)  # hang-ups and the rest are recorded by the media stream
    try:
        telephony_telnyx_call_initiated(to_number=to_number, from_number=str(payload.get("from", "")),
                                        call_control_id=str(payload.get("call_control_id", "")))
    except ProviderError as error:
        logger.warning("telnyx call %s could not be answered: %s", payload.get("call_control_id"), error.message)
        return HttpResponse(status=503 if error.retryable else 200)  # a 5xx makes Telnyx retry
    return HttpResponse(status=200)


@csrf_exempt
@require_POST
def plivo_answer(request):
    return _inbound(
        request, carrier="plivo", to_number=_e164(request.POST.get("To", "")),
        from_number=request.POST.get("From", ""), carrier_call_id=request.POST.get("CallUUID", ""),
        verify=lambda number: plivo.verify(request=request, urls=_signed_urls(request), auth_token=number.auth_token),
        unknown=_xml(plivo.reject_xml()),
        refuse=lambda line: _xml(plivo.speak_hangup_xml(line)),
        stream=lambda stream_url, call_id: _xml(plivo.stream_xml(stream_url=stream_url, call_id=call_id)),
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def vonage_answer(request):
    params = request.GET.dict()
    if request.method == "POST" and request.body:
        try:
            params.update(json.loads(request.body))
        except ValueError:
            return HttpResponse("bad body", status=400)
    carrier_call_id = str(params.get("uuid", ""))
    return _inbound(
        request, carrier="vonage", to_number=_e164(str(params.get("to", ""))), from_number=str(params.get("from", "")),
        carrier_call_id=carrier_call_id,
        verify=lambda number: vonage.verify(request=request, signature_secret=number.auth_token),
        unknown=HttpResponseNotFound("unknown number"),
        refuse=lambda line: JsonResponse(vonage.talk_hangup_ncco(line), safe=False),
        stream=lambda stream_url, call_id: JsonResponse(
            vonage.stream_ncco(stream_url=stream_url, call_id=call_id, carrier_call_id=carrier_call_id), safe=False),
    )
