"""Vonage Voice API, all of it: signed webhooks, NCCO answers with a websocket
endpoint (audio connector, linear16 8 kHz), the websocket protocol, prices.

Signed webhooks, as Vonage specifies them (developer.vonage.com, "Signed webhooks";
Vonage API Support, "How do I verify that the Voice API Webhook request and its
payload has not been tampered"): the request carries `Authorization: Bearer <JWT>`,
HS256 with the account's signature secret. Its claims include `iat`, `jti`,
`api_key`, `application_id` and `payload_hash`, the SHA-256 (hex) of the payload:
the body of a POST; for a GET, the query parameters as a JSON object in their order,
without whitespace. We require:

- the HS256 signature with the number's signature secret (PhoneNumber.auth_token);
- `iat` within MAX_SKEW_SECS of now (and `exp`, when present, not passed);
- `jti`, refused when seen before (kept for twice the window; Redis SET NX);
- `payload_hash` equal to the hash of the body when there is one, and of the query
  parameters when there are some: a GET answer's to/from/uuid are covered too. A
  request with neither may omit it, and may only carry the hash of nothing.
- `application_id`, when present and the number has one (PhoneNumber.account_sid),
  equal to it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import jwt
from django.http import HttpResponseNotFound, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from pipecat.serializers.vonage import VonageFrameSerializer

from apps.telephony.carriers.registry import Carrier, Webhook
from apps.telephony.webhooks import (
    Answers,
    BadWebhook,
    Signature,
    bad_request,
    caller_number,
    carrier_call_id,
    inbound,
)
from apps.voice.media_protocol import (
    StreamMessage,
    StreamProtocolError,
    StreamStart,
    check_digit,
    check_size,
    event_of,
    identifier,
    json_object,
    section,
)

# No list prices kept for Vonage yet: the agency sets its own in settings.PROVIDER_PRICES.
PRICES: dict = {}

STATUSES = {
    "started": "queued", "ringing": "ringing", "answered": "in_progress", "completed": "completed",
    "busy": "busy", "timeout": "no_answer", "unanswered": "no_answer", "failed": "failed",
    "rejected": "failed", "cancelled": "canceled",
}

MAX_SKEW_SECS = 300
_EMPTY_HASHES = frozenset({hashlib.sha256(b"").hexdigest(), hashlib.sha256(b"{}").hexdigest()})


# -- webhooks ----------------------------------------------------------------------------------

def query_payload(query) -> bytes:
    """A GET webhook's payload as Vonage hashes it: the query parameters as a JSON
    object in their order, no whitespace."""
    return json.dumps(dict(query.items()), separators=(",", ":"), ensure_ascii=False).encode()


def verify(*, request, signature_secret: str, application_id: str = "", now: float | None = None) -> Signature | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not signature_secret:
        return None
    try:
        claims = jwt.decode(header.removeprefix("Bearer "), signature_secret, algorithms=["HS256"],
                            options={"require": ["iat", "jti"], "verify_iat": False})
    except jwt.PyJWTError:
        return None
    issued, jti = claims.get("iat"), claims.get("jti")
    if not isinstance(issued, int | float) or isinstance(issued, bool) or abs((now or time.time()) - issued) > MAX_SKEW_SECS:
        return None
    if not isinstance(jti, str) or not 0 < len(jti) <= 200:
        return None
    claimed_app = claims.get("application_id")
    if application_id and claimed_app is not None and claimed_app != application_id:
        return None
    if not _payload_matches(request, claims.get("payload_hash")):
        return None
    return Signature(nonce=jti, window_secs=2 * MAX_SKEW_SECS)


def _payload_matches(request, claimed: object) -> bool:
    if claimed is not None and not isinstance(claimed, str):
        return False
    if request.body:
        expected = hashlib.sha256(request.body).hexdigest()
    elif request.GET:
        expected = hashlib.sha256(query_payload(request.GET)).hexdigest()
    else:
        return claimed is None or claimed in _EMPTY_HASHES
    return claimed is not None and hmac.compare_digest(claimed.encode(), expected.encode())


def stream_ncco(*, stream_url: str, call_id: str, carrier_call_id: str, token: str) -> list:
    return [{
        "action": "connect",
        "endpoint": [{
            "type": "websocket", "uri": stream_url, "content-type": "audio/l16;rate=8000",
            "headers": {"call_id": call_id, "stream_id": call_id, "call_uuid": carrier_call_id, "token": token},
        }],
    }]


def talk_hangup_ncco(text: str) -> list:
    return [{"action": "talk", "text": text}]


ANSWERS = Answers(
    reject=lambda: HttpResponseNotFound("unknown number", content_type="text/plain"),
    refuse=lambda line: JsonResponse(talk_hangup_ncco(line), safe=False),
    stream=lambda answer: JsonResponse(stream_ncco(stream_url=answer.stream_url, call_id=answer.call_id,
                                                   carrier_call_id=answer.carrier_call_id, token=answer.token),
                                       safe=False),
)


def _params(request) -> dict:
    """The answer's fields: the query string (GET) or the JSON body (POST), shape-checked."""
    params = dict(request.GET.items())
    if request.method == "POST" and request.body:
        try:
            body = json.loads(request.body)
        except (ValueError, RecursionError) as error:
            raise BadWebhook("body is not JSON") from error
        if not isinstance(body, dict):
            raise BadWebhook("body is not a JSON object")
        params.update(body)
    return params


@csrf_exempt
@require_http_methods(["GET", "POST"])
def answer_webhook(request):
    try:
        params = _params(request)
    except BadWebhook as error:
        return bad_request(request, "vonage", error)
    return inbound(
        request, carrier="vonage", to_number=params.get("to"),
        verify=lambda number: verify(request=request, signature_secret=number.auth_token,
                                     application_id=number.account_sid),
        rest=lambda: (caller_number(params.get("from", "")), carrier_call_id(params.get("uuid"), what="uuid")),
        answers=ANSWERS,
    )


# -- media stream ------------------------------------------------------------------------------

class VonageAudioConnector:
    """Vonage websocket audio connector: a JSON `websocket:connected` first (carrying
    the NCCO's headers), then binary 16-bit linear PCM (we ask for `audio/l16;rate=8000`)."""

    name = "vonage"
    sample_rate = 8000
    EVENTS = frozenset({"websocket:connected", "websocket:cleared", "websocket:notify", "websocket:dtmf"})

    def parse(self, data: str | bytes, *, expected_stream: str | None) -> StreamMessage:
        check_size(data)
        if isinstance(data, bytes):
            if expected_stream is None:
                raise StreamProtocolError("audio before websocket:connected")
            if len(data) % 2:
                raise StreamProtocolError("odd-length linear16 frame")
            return StreamMessage("media", {}, data)  # already 16-bit PCM at our rate
        message = json_object(data)
        event = event_of(message, self.EVENTS)
        if event == "websocket:connected":
            self.start_of(message)
            return StreamMessage("start", message)
        if event == "websocket:dtmf":
            if expected_stream is None:
                raise StreamProtocolError("dtmf before websocket:connected")
            digit = message.get("digit")
            check_digit(digit if digit is not None else section(message, "dtmf").get("digit"))
            return StreamMessage("dtmf", message)
        return StreamMessage("other", message)

    def start_of(self, message: dict) -> StreamStart:
        if not message.get("stream_id") or not message.get("call_uuid"):
            raise StreamProtocolError("websocket:connected without stream_id/call_uuid headers")
        return StreamStart(
            stream_id=identifier(message["stream_id"], "stream_id"),
            carrier_call_id=identifier(message["call_uuid"], "call_uuid"),
            parameters={k: v for k, v in message.items()
                        if k not in {"event", "content-type"} and isinstance(v, str) and len(v) <= 200},
        )

    def serializer(self, start: StreamStart) -> VonageFrameSerializer:
        return VonageFrameSerializer(
            VonageFrameSerializer.InputParams(vonage_sample_rate=self.sample_rate, sample_rate=self.sample_rate)
        )


CARRIER = Carrier(
    name="vonage",
    label="Vonage",
    media=VonageAudioConnector(),
    webhooks=(Webhook("answer/", answer_webhook, "vonage_answer"),),
    statuses=STATUSES,
    prices=PRICES,
    caller_double="devtools.doubles.carrier_callers.VonageCaller",
)
