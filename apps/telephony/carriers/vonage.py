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

REST (settings.VONAGE_API_BASE_URL): create call (POST /v1/calls, answer_url → our per-call
outbound answer webhook, event_url → its status webhook, advanced machine detection when
asked), hang-up and transfer (PUT /v1/calls/{uuid}), each authorised by a JWT (RS256) that
the application's private key (PhoneNumber.api_private_key) signs.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import jwt
from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from pipecat.serializers.vonage import VonageFrameSerializer

from apps.core.errors import ProviderError
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
    inbound,
    outbound_call_signed,
    status_text,
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
# Machine detection results, sent to the event webhook as a status.
ANSWERED_BY = {"human": "human", "machine": "machine"}
AMD = {"behavior": "continue", "mode": "detect_beep", "beep_timeout": 45}
JWT_TTL_SECS = 300

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


def _verify_with(request):
    return lambda number: verify(request=request, signature_secret=number.auth_token,
                                 application_id=number.account_sid)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def outbound_answer_webhook(request, call_id):
    """The callee answered one of our outbound calls: the NCCO that streams it to the agent."""
    from apps.telephony.services import telephony_outbound_answered

    try:
        params = _params(request)
    except BadWebhook as error:
        return bad_request(request, "vonage", error)
    signed = outbound_call_signed(request, carrier="vonage", call_id=call_id, verify=_verify_with(request))
    if isinstance(signed, HttpResponse):
        return signed
    call, _ = signed
    try:
        call_uuid = carrier_call_id(params.get("uuid"), what="uuid")
    except BadWebhook as error:
        return bad_request(request, "vonage", error)
    answer = telephony_outbound_answered(call=call, carrier_call_id=call_uuid)
    return ANSWERS.reject() if answer is None else ANSWERS.stream(answer)


@csrf_exempt
@require_http_methods(["POST"])
def status_webhook(request, call_id):
    """The call's event webhook: statuses (started ... completed) and machine detection
    (status human / machine)."""
    from apps.calls.services import call_answered_by_record, call_carrier_status_update

    try:
        params = _params(request)
    except BadWebhook as error:
        return bad_request(request, "vonage", error)
    signed = outbound_call_signed(request, carrier="vonage", call_id=call_id, verify=_verify_with(request))
    if isinstance(signed, HttpResponse):
        return signed
    call, _ = signed
    if "status" not in params:
        return HttpResponse(status=204)  # transfer / input events: nothing of ours
    try:
        status = status_text(params["status"])
    except BadWebhook as error:
        return bad_request(request, "vonage", error)
    if status in ANSWERED_BY:
        call_answered_by_record(call_id=call.pk, answered_by=ANSWERED_BY[status])
    else:
        call_carrier_status_update(call_id=call.pk, carrier_status=status, duration_secs=duration_of(params.get("duration")))
    return HttpResponse(status=204)


# -- REST --------------------------------------------------------------------------------------

def rest_token(*, application_id: str, private_key: str, now: float | None = None) -> str:
    """The Voice API's bearer token: a JWT (RS256) signed with the application's private key."""
    if not (application_id and private_key):
        raise ProviderError("This Vonage number has no application id or private key for REST calls.",
                            retryable=False)
    issued = int(now or time.time())
    try:
        return jwt.encode({"application_id": application_id, "iat": issued, "exp": issued + JWT_TTL_SECS,
                           "jti": str(uuid.uuid4())}, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as error:
        raise ProviderError(f"The Vonage private key cannot sign: {error}", retryable=False) from error


def _rest(method: str, path: str, *, number, body: dict, ok: set[int], gone=lambda response: False):
    token = rest_token(application_id=number.account_sid, private_key=number.api_private_key)
    return rest_request("Vonage", method, settings.VONAGE_API_BASE_URL.rstrip("/") + path, ok=ok, gone=gone,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, json=body)


def hang_up(*, number, carrier_call_id: str) -> None:
    """PUT {"action": "hangup"} (204); 404 means the call had already ended."""
    _rest("PUT", f"/v1/calls/{carrier_call_id}", number=number, body={"action": "hangup"}, ok={200, 204},
          gone=lambda response: response.status_code == 404)


def transfer(*, number, carrier_call_id: str, to_number: str) -> None:
    """PUT a transfer to an inline NCCO that connects the person's phone (204)."""
    ncco = [{"action": "connect", "from": number.number.lstrip("+"),
             "endpoint": [{"type": "phone", "number": to_number.lstrip("+")}]}]
    _rest("PUT", f"/v1/calls/{carrier_call_id}", number=number, ok={200, 204},
          body={"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}})


def dial(*, number, to_number: str, stream_url: str, call_id: str, token: str, status_callback: str,
         answer_url: str = "", machine_detection: bool = False) -> str:
    """Create call (201): Vonage fetches `answer_url` (GET, signed) once answered, events go to
    `status_callback`; with `machine_detection`, advanced machine detection (continue,
    detect_beep). Returns the call's uuid."""
    body = {"to": [{"type": "phone", "number": to_number.lstrip("+")}],
            "from": {"type": "phone", "number": number.number.lstrip("+")},
            "answer_url": [answer_url], "answer_method": "GET",
            "event_url": [status_callback], "event_method": "POST"}
    if machine_detection:
        body["advanced_machine_detection"] = dict(AMD)
    response = _rest("POST", "/v1/calls", number=number, body=body, ok={200, 201})
    try:
        return carrier_call_id(response.json()["uuid"], what="uuid")
    except (ValueError, KeyError, TypeError, BadWebhook) as error:
        raise ProviderError(f"Vonage answered the call request without a uuid: {response.text[:200]}",
                            retryable=False) from error


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
    webhooks=(Webhook("answer/", answer_webhook, "vonage_answer"),
              Webhook("outbound/<uuid:call_id>/", outbound_answer_webhook, "vonage_outbound"),
              Webhook("status/<uuid:call_id>/", status_webhook, "vonage_status")),
    statuses=STATUSES,
    prices=PRICES,
    hang_up=hang_up,
    transfer=transfer,
    dial=dial,
    status_webhook="vonage_status",
    answer_webhook="vonage_outbound",
    caller_double="devtools.doubles.carrier_callers.VonageCaller",
)
