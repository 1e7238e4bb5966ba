"""A carrier the project does not ship, written the way a new carrier is added: this one
module (its webhook with its signature check, its answer, its media protocol) and one
line in settings.TELEPHONY_CARRIER_MODULES. Used by test_registry.py.

Its wire format, invented for the test: the answer webhook is a form POST (To, From,
CallId) signed with `X-Extra-Signature: hex(HMAC-SHA256(auth token, body))`; the
answer is JSON {"stream": url, "headers": {...}}; the media stream is Twilio-like JSON
with `sid` as its stream key."""
from __future__ import annotations

import hashlib
import hmac

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.telephony.carriers.registry import Carrier, Webhook
from apps.telephony.webhooks import Answers, Signature, caller_number, carrier_call_id, inbound
from apps.voice.media_protocol import (
    JsonMediaStream,
    StreamProtocolError,
    StreamStart,
    identifier,
    section,
    string_parameters,
)


def sign(body: bytes, auth_token: str) -> str:
    return hmac.new(auth_token.encode(), body, hashlib.sha256).hexdigest()


def verify(*, request, auth_token: str) -> Signature | None:
    offered = request.headers.get("X-Extra-Signature", "")
    if offered and auth_token and hmac.compare_digest(offered, sign(request.body, auth_token)):
        return Signature()
    return None


ANSWERS = Answers(
    reject=lambda: JsonResponse({"action": "reject"}),
    refuse=lambda line: JsonResponse({"action": "say", "text": line}),
    stream=lambda answer: JsonResponse({"action": "stream", "stream": answer.stream_url,
                                        "headers": {"call_id": answer.call_id, "token": answer.token}}),
)


@csrf_exempt
@require_POST
def answer_webhook(request):
    return inbound(
        request, carrier="extra", to_number=request.POST.get("To"),
        verify=lambda number: verify(request=request, auth_token=number.auth_token),
        rest=lambda: (caller_number(request.POST.get("From", "")), carrier_call_id(request.POST.get("CallId"))),
        answers=ANSWERS,
    )


class ExtraStreams(JsonMediaStream):
    name = "extra"
    EVENTS = frozenset({"start", "media", "dtmf", "stop"})
    STREAM_EVENTS = frozenset({"media", "dtmf", "stop"})
    STREAM_KEY = "sid"

    def start_of(self, message: dict) -> StreamStart:
        start = section(message, "start")
        if not message.get("sid") or not start.get("call"):
            raise StreamProtocolError("start without sid/call")
        return StreamStart(stream_id=identifier(message["sid"], "sid"), carrier_call_id=identifier(start["call"], "call"),
                           parameters=string_parameters(start.get("headers"), "headers"))

    def serializer(self, start: StreamStart):
        from pipecat.serializers.twilio import TwilioFrameSerializer

        return TwilioFrameSerializer(stream_sid=start.stream_id, call_sid=start.carrier_call_id,
                                     params=TwilioFrameSerializer.InputParams(auto_hang_up=False, sample_rate=8000))


CARRIER = Carrier(
    name="extra",
    label="Extra Telecom",
    media=ExtraStreams(),
    webhooks=(Webhook("answer/", answer_webhook, "extra_answer"),),
)
