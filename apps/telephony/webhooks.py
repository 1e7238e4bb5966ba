"""The one inbound path every carrier's answer webhook takes, and the small
pieces carrier modules build their webhooks from.

Order, for every carrier: (1) the shape of the dialled number, checked without
touching the database (a NUL byte or junk never reaches PostgreSQL); (2) the
number looked up in this client's schema; (3) the carrier's signature verified
with that number's credentials, and its nonce / timestamp / token id refused when
seen before; (4) the rest of the request parsed and shape-checked; (5) one service
decides; (6) the carrier's markup answers. Bad input is a 400 with a reason, a bad
signature a 403, never a 500.
"""
from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden

from apps.calls.stream_tokens import stream_token_mint
from apps.core.hosts import client_url
from apps.telephony.models import PhoneNumber
from apps.telephony.selectors import phone_number_for_inbound, phone_number_signers

logger = logging.getLogger(__name__)

# E.164: "+", a non-zero country digit, at most 15 digits in all. Carriers that drop the "+"
# (Plivo, Vonage) get it back. Anything else is not a phone number we can own.
_E164 = re.compile(r"\+[1-9][0-9]{5,14}")
# A carrier's call id: printable ASCII without spaces (Twilio CA…, Telnyx v3:…, UUIDs).
_CALL_ID = re.compile(r"[!-~]{1,100}")
MAX_CALLER_CHARS = 32  # Call.from_number


class BadWebhook(ValueError):
    """The request is not shaped as the carrier sends it: answered 400."""


@dataclass(frozen=True)
class Signature:
    """A verified webhook signature. `nonce` (a Plivo nonce, a Vonage jti, a Telnyx
    signature) is refused when seen again within `window_secs`; "" when the
    carrier's scheme has none (Twilio: replays are absorbed by CallSid instead)."""

    nonce: str = ""
    window_secs: int = 0


Verify = Callable[[PhoneNumber], "Signature | None"]


@dataclass(frozen=True)
class StreamAnswer:
    stream_url: str
    call_id: str
    token: str
    carrier_call_id: str


@dataclass(frozen=True)
class Answers:
    """A carrier's markup: `reject()` (not a number of this client, or a replay of a
    call that is over), `refuse(line)` (say it, hang up), `stream(answer)`."""

    reject: Callable[[], HttpResponse]
    refuse: Callable[[str], HttpResponse]
    stream: Callable[[StreamAnswer], HttpResponse]


# -- shape checks (no database) ----------------------------------------------------------------

def e164(value: object, *, what: str = "To") -> str:
    if not isinstance(value, str):
        raise BadWebhook(f"{what} is not a phone number")
    number = value.strip()
    number = number if number.startswith("+") else "+" + number
    if not _E164.fullmatch(number):
        raise BadWebhook(f"{what} is not an E.164 phone number")
    return number


def caller_number(value: object) -> str:
    """The caller as the carrier names them (E.164, "anonymous", a SIP user...): kept as text."""
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise BadWebhook("From is not a string")
    text = str(value).strip()
    if len(text) > MAX_CALLER_CHARS or not text.isprintable():
        raise BadWebhook("From is too long or not printable")
    return text


def carrier_call_id(value: object, *, what: str = "call id") -> str:
    if not isinstance(value, str) or not _CALL_ID.fullmatch(value):
        raise BadWebhook(f"{what} missing or malformed")
    return value


def bad_request(request, carrier: str, error: BadWebhook) -> HttpResponse:
    logger.warning("%s webhook on %s%s refused: %s", carrier, request.get_host(), request.path, error)
    return HttpResponseBadRequest(str(error), content_type="text/plain")


def forbidden(request, carrier: str, why: str = "missing or invalid signature") -> HttpResponse:
    logger.warning("%s webhook with a %s on %s%s from %s", carrier, why, request.get_host(), request.path,
                   request.META.get("REMOTE_ADDR"))
    return HttpResponseForbidden("invalid signature" if "signature" in why else why, content_type="text/plain")


def xml(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml", status=status)


def signed_urls(request) -> list[str]:
    """The URL the carrier signed: as it reached us, or as we gave it to the carrier (behind a proxy).
    Worked out once per request (it reads the client's primary domain), however many numbers verify."""
    urls = getattr(request, "_carrier_signed_urls", None)
    if urls is None:
        urls = list(dict.fromkeys([request.build_absolute_uri(), client_url(request.tenant, request.get_full_path())]))
        request._carrier_signed_urls = urls
    return urls


def stream_url(carrier: str) -> str:
    from apps.telephony.services import telephony_stream_url

    return telephony_stream_url(carrier=carrier)


# -- signatures and replays -------------------------------------------------------------------

def _nonce_key(carrier: str, signature: Signature) -> str:
    return f"sb:webhook-nonce:{carrier}:{hashlib.sha256(signature.nonce.encode()).hexdigest()}"


def first_delivery(*, carrier: str, signature: Signature) -> bool:
    """True the first time a signed nonce is seen (atomic: Redis SET NX); False for a replay."""
    if not signature.nonce:
        return True
    return cache.add(_nonce_key(carrier, signature), 1, timeout=max(1, signature.window_secs))


def delivery_forget(*, carrier: str, signature: Signature) -> None:
    """We answered 5xx to ask the carrier to retry: its redelivery may repeat this nonce."""
    if signature.nonce:
        cache.delete(_nonce_key(carrier, signature))


@dataclass(frozen=True)
class Signed:
    """Who signed a webhook: `number` is the dialled number (this client's), or None
    when another of this client's numbers on the carrier vouched for the signature
    (the dialled number is not, or no longer, ours)."""

    number: PhoneNumber | None
    signer: PhoneNumber
    signature: Signature


def signed_number(request, *, carrier: str, to_number: str, verify: Verify) -> Signed | HttpResponse:
    """Steps (2) and (3): the dialled number, the signature, the replay check.

    A number that is not an active number of this client is still answered when the
    signature verifies with the credentials of one of this client's numbers on the
    same carrier (same account / secret / public key): that is this client's carrier
    account sending us a call it routed here, worth a refused-call row the agency
    sees. Nobody else can make us write a row: an unsigned (or foreign-signed)
    request to an unknown number writes nothing and gets the carrier's reject (or a
    403). The candidates are bounded (one per distinct credential), so a forged
    request costs one small query and a few HMACs."""
    number = phone_number_for_inbound(number=to_number, carrier=carrier)
    candidates = [number] if number is not None else phone_number_signers(carrier=carrier)
    for candidate in candidates:
        signature = verify(candidate)
        if signature is None:
            continue
        if not first_delivery(carrier=carrier, signature=signature):
            return forbidden(request, carrier, "replayed signature (nonce seen before)")
        return Signed(number=number, signer=candidate, signature=signature)
    if number is None:
        logger.warning("%s call to %s refused on %s: not a number of this client (and not signed by its "
                       "%s account)", carrier, to_number, request.get_host(), carrier)
        return HttpResponse(status=404)  # the caller turns this into the carrier's reject
    return forbidden(request, carrier)


# -- the inbound path --------------------------------------------------------------------------

def inbound(request, *, carrier: str, to_number: object, verify: Verify, rest: Callable[[], tuple[str, str]],
            answers: Answers) -> HttpResponse:
    """An incoming call, the same for every carrier. `rest()` parses (from_number,
    carrier_call_id) once the signature is known good, raising BadWebhook."""
    from apps.calls.services import call_refused_record
    from apps.telephony.services import telephony_inbound

    try:
        dialled = e164(to_number)
    except BadWebhook as error:
        return bad_request(request, carrier, error)
    signed = signed_number(request, carrier=carrier, to_number=dialled, verify=verify)
    if isinstance(signed, HttpResponse):
        return answers.reject() if signed.status_code == 404 else signed
    try:
        from_number, call_id = rest()
    except BadWebhook as error:
        return bad_request(request, carrier, error)
    if signed.number is None:
        call = call_refused_record(carrier=carrier, to_number=dialled, from_number=from_number,
                                   carrier_call_id=call_id, error="not a number of this client")
        logger.warning("%s call %s to %s refused on %s: not a number of this client (recorded as call %s)",
                       carrier, call_id, dialled, request.get_host(), call.pk)
        return answers.reject()
    decision = telephony_inbound(carrier=carrier, to_number=dialled, from_number=from_number, carrier_call_id=call_id)
    if decision.reject:
        return answers.reject()
    if decision.refusal_line:
        return answers.refuse(decision.refusal_line)
    call_pk = str(decision.call.pk)
    return answers.stream(StreamAnswer(
        stream_url=stream_url(carrier), call_id=call_pk, carrier_call_id=call_id,
        token=stream_token_mint(schema=connection.schema_name, call_id=call_pk),
    ))


# -- outbound calls: the per-call webhooks (status, answering machine, answer) ------------------

def outbound_call_signed(request, *, carrier: str, call_id, verify: Verify):
    """A webhook about one of this client's outbound calls (its id in the URL we gave the
    carrier): the call, verified with its number's credentials and refused when replayed.
    Returns (call, signature), or the HttpResponse to answer (404 no such call, 403)."""
    from django.http import HttpResponseNotFound

    from apps.calls.models import Call

    call = Call.objects.select_related("phone_number").filter(pk=call_id, carrier=carrier).first()
    if call is None or call.phone_number is None:
        return HttpResponseNotFound("no such call", content_type="text/plain")
    signature = verify(call.phone_number)
    if signature is None:
        return forbidden(request, carrier)
    if not first_delivery(carrier=carrier, signature=signature):
        return forbidden(request, carrier, "replayed signature (nonce seen before)")
    return call, signature


def duration_of(value: object) -> int | None:
    """A carrier's call duration in whole seconds, or None when absent or not a small number."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    return int(text) if text.isdigit() and len(text) < 9 else None


def status_text(value: object, *, what: str = "status") -> str:
    """A carrier's status word, shape-checked (printable ASCII, short)."""
    if not isinstance(value, str) or not (value.isascii() and value.isprintable() and len(value) <= 40):
        raise BadWebhook(f"{what} malformed")
    return value
