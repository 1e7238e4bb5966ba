"""Plivo, all of it: X-Plivo-Signature-V3 webhooks (HMAC-SHA256 of
url[?sorted key+value params].nonce, base64), Stream XML answers, audio streams
(JSON, base64 μ-law 8 kHz), Call REST (hang-up) at settings.PLIVO_API_BASE_URL.

Replays: V3 signs a nonce; a nonce seen before (for a day) is refused.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from xml.sax.saxutils import escape, quoteattr

from django.conf import settings
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pipecat.serializers.plivo import PlivoFrameSerializer

from apps.billing.pricing import VendorPrice
from apps.telephony.carriers import COMMON_STATUSES
from apps.telephony.carriers._rest import rest_request
from apps.telephony.carriers.registry import Carrier, Webhook
from apps.telephony.webhooks import (
    Answers,
    Signature,
    caller_number,
    carrier_call_id,
    inbound,
    signed_urls,
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


# -- REST --------------------------------------------------------------------------------------

def hang_up(*, number, carrier_call_id: str) -> None:
    """DELETE the call (204); 404 means it had already ended."""
    url = f"{settings.PLIVO_API_BASE_URL.rstrip('/')}/v1/Account/{number.account_sid}/Call/{carrier_call_id}/"
    rest_request("Plivo", "DELETE", url, ok={204}, gone=lambda response: response.status_code == 404,
                 auth=(number.account_sid, number.auth_token))


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
    webhooks=(Webhook("answer/", answer_webhook, "plivo_answer"),),
    statuses=COMMON_STATUSES,
    prices=PRICES,
    hang_up=hang_up,
    caller_double="devtools.doubles.carrier_callers.PlivoCaller",
)
