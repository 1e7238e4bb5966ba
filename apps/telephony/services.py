"""Telephony writes: inbound decisions, outbound calls, hang-up and transfer
through the carrier's REST API."""
from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from dataclasses import dataclass

from django.db import connection, transaction
from django.urls import reverse

from apps.calls.models import Call
from apps.calls.services import (
    call_create_inbound,
    call_create_outbound,
    call_end,
    call_transfer_failed_record,
    call_transfer_record,
)
from apps.calls.stream_tokens import stream_token_mint
from apps.core.errors import ApplicationError, NotFound, ProviderError
from apps.core.hosts import client_url
from apps.telephony.carriers.registry import carrier_get
from apps.telephony.models import PhoneNumber

logger = logging.getLogger(__name__)

REFUSAL_LINES = {
    Call.EndReason.CLIENT_SUSPENDED: "We're sorry, this line is temporarily unavailable. Please try again later. Goodbye.",
    Call.EndReason.USAGE_CAP: "We're sorry, this line can't take calls right now. Please try again later. Goodbye.",
    Call.EndReason.ERROR: "We're sorry, this line is not set up yet. Please try again later. Goodbye.",
}


def _websocket_url(http: str) -> str:
    return "wss://" + http.removeprefix("https://") if http.startswith("https://") else "ws://" + http.removeprefix("http://")


def _webhook_url(origin: str, *, call: Call, url_name: str) -> str:
    """A per-call carrier webhook (the status callback; the answer URL of carriers that fetch the
    outbound call's markup once answered, "" for the others) on the client's `origin`."""
    return origin + reverse(f"telephony:{url_name}", args=[call.pk]) if url_name else ""


def telephony_stream_url(*, carrier: str) -> str:
    """The media websocket of this client's host (routes: apps/telephony/routing.py)."""
    return _websocket_url(client_url(connection.tenant, f"/ws/media/{carrier}/"))


def telephony_outbound_answered(*, call: Call, carrier_call_id: str):
    """The callee answered an outbound call whose carrier fetches its markup then (Plivo, Vonage):
    the carrier's id of the answered leg is recorded (Plivo's CallUUID replaces the request id)
    and a fresh stream token minted. None: the call is over or already streaming (a replayed
    or late webhook), answered with the carrier's reject."""
    from apps.telephony.webhooks import StreamAnswer

    with transaction.atomic():
        locked = Call.objects.select_for_update().get(pk=call.pk)
        if locked.is_ended or locked.answered_at is not None:
            logger.warning("%s answer webhook for outbound call %s, which is %s: rejected", locked.carrier, locked.pk,
                           "over" if locked.is_ended else "already streaming")
            return None
        if carrier_call_id and locked.carrier_call_id != carrier_call_id:
            locked.carrier_call_id = carrier_call_id[:100]
            locked.save(update_fields=["carrier_call_id"])
    return StreamAnswer(stream_url=telephony_stream_url(carrier=locked.carrier), call_id=str(locked.pk),
                        token=stream_token_mint(schema=connection.schema_name, call_id=str(locked.pk)),
                        carrier_call_id=locked.carrier_call_id)


@dataclass(frozen=True)
class InboundDecision:
    call: Call
    refusal_line: str  # "" when the call should connect to the agent
    # A redelivered webhook of a call whose stream already connected, or that is over:
    # answered with the carrier's reject, no stream and no new stream token.
    reject: bool = False


def telephony_inbound(*, carrier: str, to_number: str, from_number: str, carrier_call_id: str) -> InboundDecision:
    """Record an inbound call (a carrier's retry with the same call id finds the same
    call) and decide: stream it, refuse it with a line, or reject a replay."""
    call = call_create_inbound(to_number=to_number, from_number=from_number, carrier=carrier, carrier_call_id=carrier_call_id)
    refused_before_it_ran = call.is_ended and call.end_reason in REFUSAL_LINES
    if call.answered_at is not None or (call.is_ended and not refused_before_it_ran):
        logger.warning("%s webhook replayed for call %s (%s): rejected", carrier, call.pk,
                       "ended" if call.is_ended else "already streaming")
        return InboundDecision(call=call, refusal_line="", reject=True)
    if call.is_ended:
        line = REFUSAL_LINES.get(call.end_reason, REFUSAL_LINES[Call.EndReason.ERROR])
        if call.end_reason == Call.EndReason.USAGE_CAP:
            from apps.billing.selectors import usage_cap_status

            line = usage_cap_status(client=connection.tenant).message or line  # the agency's own wording
        return InboundDecision(call=call, refusal_line=line)
    return InboundDecision(call=call, refusal_line="")


def telephony_telnyx_call_initiated(*, to_number: str, from_number: str, call_control_id: str) -> Call:
    """Telnyx Call Control, an incoming call: record it, then answer it streaming to
    the media websocket (our call id in client_state), or reject it when the client
    may not take calls. A redelivered webhook finds the call already answered."""
    from apps.telephony.carriers import telnyx

    decision = telephony_inbound(carrier="telnyx", to_number=to_number, from_number=from_number,
                                 carrier_call_id=call_control_id)
    call = decision.call
    number = call.phone_number
    if decision.reject:
        return call  # a redelivered call.initiated: the call is streaming or over
    if decision.refusal_line:
        telnyx.reject(number=number, call_control_id=call_control_id)
    else:
        telnyx.answer_with_stream(number=number, call_control_id=call_control_id,
                                  stream_url=telephony_stream_url(carrier="telnyx"), call_id=str(call.pk),
                                  token=stream_token_mint(schema=connection.schema_name, call_id=str(call.pk)))
    return call


def _carrier_for(call: Call, action: str):
    """The call's number and its carrier's REST `action` (hang_up, transfer, dial)."""
    number = call.phone_number
    if number is None:
        raise ApplicationError("This call has no number of this client to act through.", details={"call_id": str(call.pk)})
    carrier = carrier_get(number.carrier)
    act = getattr(carrier, action)
    if act is None:
        done = {"hang_up": "hung up", "transfer": "transferred", "dial": "placed"}.get(action, action)
        raise ApplicationError(f"{carrier.label} calls cannot be {done} from here yet; "
                               "use the carrier's console.", details={"call_id": str(call.pk)})
    return number, act


class DialTurn:
    """What the dials of one dispatcher turn share, so each dial does only its own work: the client's
    hard-usage-cap verdict, rated at most once per `cap_max_age_secs` (rating costs queries; the cap
    is still checked before the first dial and then at least every `cap_max_age_secs`), and the
    client's web origin and the carriers' per-call webhook paths (reversed once, not per dial).
    Thread-safe: a turn's dial threads share one."""

    _CALL_ID = uuid.UUID(int=0)  # stands for the call's id in a reversed path

    def __init__(self, *, client, cap_max_age_secs: float = 1.0):
        self.client = client
        self.cap_max_age_secs = cap_max_age_secs
        self._lock = threading.Lock()
        self._cap_checked_at: float | None = None
        self._cap_reached = False
        self._origin: str | None = None
        self._paths: dict[str, str] = {}

    def cap_reached(self) -> bool:
        from apps.calls import services as call_services  # looked up when called: one switch for every door

        with self._lock:
            now = time.monotonic()
            if self._cap_checked_at is None or now - self._cap_checked_at >= self.cap_max_age_secs:
                self._cap_reached = call_services.usage_cap_reached(client=self.client)
                self._cap_checked_at = now
            return self._cap_reached

    def origin(self) -> str:
        with self._lock:
            if self._origin is None:
                self._origin = client_url(self.client, "")
            return self._origin

    def webhook_url(self, *, call: Call, url_name: str) -> str:
        """`_webhook_url` with the path reversed once per turn."""
        if not url_name:
            return ""
        with self._lock:
            path = self._paths.get(url_name)
            if path is None:
                path = self._paths[url_name] = reverse(f"telephony:{url_name}", args=[self._CALL_ID])
        return self.origin() + path.replace(str(self._CALL_ID), str(call.pk))


def telephony_call_outbound(*, phone_number: PhoneNumber, to_number: str, idempotency_key: str, agent=None,
                            variables: dict | None = None, turn: DialTurn | None = None) -> Call:
    """Place an outbound call from `phone_number` to `to_number`, its audio
    streamed to the agent. Idempotent per `idempotency_key` (e.g.
    "campaign:<id>:contact:<id>"): a second request returns the same call and
    does not dial again. Refused (ApplicationError, nothing recorded or dialled) for
    a suspended client or one at its hard usage cap. With the agent's voicemail
    detection on, the carrier is asked for answering-machine detection. `variables`: the
    campaign contact's columns ({{contact.<column>}}). `turn`: the campaign dialer's per-turn
    cache of the cap verdict and the client's origin (None: both looked up for this dial).

    Two queries on the path of a new dial: the Call's INSERT … ON CONFLICT (whose unique key decides
    which request dials: exactly one per key, so no row lock is held across the carrier's round
    trip) and the UPDATE of the carrier's call id."""
    agent = agent or phone_number.agent
    if agent is None or agent.current_version_id is None:
        raise ApplicationError("This number has no agent: assign one before calling out.")
    carrier = carrier_get(phone_number.carrier)
    if carrier.dial is None:
        raise ApplicationError(f"Outbound calls through {carrier.label} are not supported yet.")
    client = connection.tenant
    if not client.is_active:
        raise ApplicationError("This client is suspended: outbound calls are paused.", status_code=403)
    from apps.calls import services as call_services  # looked up when called: one switch for every door

    if turn.cap_reached() if turn is not None else call_services.usage_cap_reached(client=client):
        existing = Call.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing  # the same request again: the call it placed (or refused), never a second dial
        from apps.billing.selectors import usage_cap_status

        reason = usage_cap_status(client=client).message
        raise ApplicationError(
            "This client has reached its hard usage cap for the month: outbound calls are refused and nothing was "
            "dialled." + (f" {reason}" if reason else ""),
            details={"reason": "usage_cap", "to_number": to_number}, status_code=403)
    call, created = call_create_outbound(phone_number=phone_number, to_number=to_number, agent=agent,
                                         idempotency_key=idempotency_key, variables=variables)
    if not created:
        return call  # the same request again (or a racing one won): never a second dial
    if turn is not None:
        origin, webhook_url = turn.origin(), turn.webhook_url
    else:
        origin = client_url(client, "")
        webhook_url = functools.partial(_webhook_url, origin)
    try:
        carrier_call_id = carrier.dial(
            number=phone_number, to_number=to_number, stream_url=_websocket_url(origin + f"/ws/media/{carrier.name}/"),
            call_id=str(call.pk), token=stream_token_mint(schema=connection.schema_name, call_id=str(call.pk)),
            status_callback=webhook_url(call=call, url_name=carrier.status_webhook),
            answer_url=webhook_url(call=call, url_name=carrier.answer_webhook),
            machine_detection=bool(agent.current_version.voicemail_detection),
        )
    except ProviderError as failure:
        logger.warning("outbound call %s failed at the carrier: %s", call.pk, failure.message)
        call_end(call_id=call.pk, end_reason=Call.EndReason.FAILED, error=failure.message, usage={})
        raise
    # Only the carrier's id: a status callback may have updated the row meanwhile.
    Call.objects.filter(pk=call.pk).update(carrier_call_id=carrier_call_id)
    call.carrier_call_id = carrier_call_id
    return call


def telephony_hang_up(*, call: Call) -> None:
    """Ask the call's carrier to end it through its REST API (Twilio calls.update,
    Telnyx Call Control hangup, Plivo Call DELETE, Vonage PUT hangup); the runtime records call_end
    itself. A call the carrier had already ended is not an error. Failures are
    ProviderError (retryable for 429/5xx/unreachable)."""
    if not call.carrier_call_id:
        return
    number, hang_up = _carrier_for(call, "hang_up")
    hang_up(number=number, carrier_call_id=call.carrier_call_id)


def telephony_transfer(*, call: Call, to_number: str) -> Call:
    """Bridge the caller to a person (Twilio: TwiML <Dial>; Telnyx: Call Control transfer; Plivo: the A leg
    to XML that dials; Vonage: PUT transfer to an NCCO that connects)."""
    if not to_number:
        raise ApplicationError("No transfer number is set for this agent.")
    if not call.carrier_call_id:
        raise NotFound("The call has no carrier id yet; it cannot be transferred.")
    number, transfer = _carrier_for(call, "transfer")
    transfer(number=number, carrier_call_id=call.carrier_call_id, to_number=to_number)
    return call_transfer_record(call_id=call.pk, to_number=to_number)


# Outbound calls asked for through the public API share the Call idempotency
# space with campaigns; their keys are namespaced so the two can never collide.
API_IDEMPOTENCY_PREFIX = "api:"


def telephony_call_outbound_request(*, from_number: str, to_number: str, idempotency_key: str,
                                    agent_id: int | None = None) -> Call:
    """An outbound call asked for by number (the public API): resolves this
    client's number and agent, then `telephony_call_outbound`. Reusing a key for
    a different call is refused (409) rather than silently answered."""
    from apps.agents.selectors import agent_get

    phone_number = PhoneNumber.objects.filter(number=from_number, is_active=True).first()
    if phone_number is None:
        raise NotFound(f"{from_number} is not one of this client's active numbers.",
                       details={"from_number": from_number})
    agent = agent_get(agent_id=agent_id) if agent_id is not None else None
    key = API_IDEMPOTENCY_PREFIX + idempotency_key
    call = telephony_call_outbound(phone_number=phone_number, to_number=to_number, idempotency_key=key, agent=agent)
    wanted_agent_id = agent.pk if agent is not None else phone_number.agent_id
    if (call.from_number, call.to_number, call.agent_id) != (from_number, to_number, wanted_agent_id):
        raise ApplicationError("This idempotency key was already used for a different call; use a new key.",
                               details={"idempotency_key": idempotency_key, "call_id": str(call.pk)}, status_code=409)
    return call


def telephony_phone_number_months_record(*, period_start) -> int:
    """Bill this client (the current schema) one `phone_number_months` per active
    number for the month starting `period_start`, each carrying what its carrier
    charges us for the number (apps.providers.prices, "local"). Idempotent per
    number and month (billing's key "phone:<number>:<YYYY-MM>"); returns how many
    were new."""
    from apps.billing.services.usage import usage_record_phone_numbers
    from apps.providers.prices import provider_cost
    from apps.telephony.selectors import phone_numbers_active_by_carrier

    recorded = 0
    for carrier, numbers in phone_numbers_active_by_carrier().items():
        cost, currency = provider_cost(provider=carrier, metric="phone_number_months", dimension="local", quantity=1)
        recorded += usage_record_phone_numbers(client=connection.tenant, period_start=period_start, numbers=numbers,
                                               provider=carrier, unit_cost=cost, currency=currency)
    return recorded


# --- the live runtime's carrier actions (apps.voice.records), off the audio path -------------------------


def telephony_hang_up_or_retry(*, call_id) -> None:
    """Hang up a live call's carrier leg now; when the carrier refused for a moment
    (429/5xx/unreachable) a Celery task tries again with backoff. A carrier that cannot
    hang up over REST is logged: the leg ends when our media socket closes."""
    from apps.calls.selectors import call_get
    from apps.telephony.tasks import hang_up_retry

    call = call_get(call_id=call_id)
    try:
        telephony_hang_up(call=call)
    except ProviderError as error:
        if not error.retryable:
            logger.warning("carrier refused to hang up call %s: %s", call_id, error.message)
            return
        logger.warning("carrier hang-up of call %s failed (%s); retrying in the background", call_id, error.message)
        hang_up_retry.delay(str(call_id))
    except ApplicationError as error:
        logger.warning("call %s not hung up over REST: %s", call_id, error.message)


def telephony_transfer_call(*, call_id, to_number: str) -> None:
    """The agent's transfer, by call id (the runtime knows no rows). Failures are
    logged and kept on the call's record; the caller's leg stays up."""
    from apps.calls.selectors import call_get

    try:
        telephony_transfer(call=call_get(call_id=call_id), to_number=to_number)
    except ApplicationError as error:
        logger.warning("transfer of call %s to %s failed: %s", call_id, to_number, error.message)
        call_transfer_failed_record(call_id=call_id, to_number=to_number, error=error.message)


@transaction.atomic
def phone_number_assign_agent(*, client, acting_user, number_id: int, agent_id: int | None):
    """A client admin chooses which of its agents answers one of its numbers (None: no agent), when the agency
    lets clients do so (settings.PORTAL_CLIENTS_ASSIGN_NUMBERS). A refusal changes nothing."""
    from django.conf import settings

    from apps.agents.models import Agent
    from apps.core.errors import PermissionDenied

    if not settings.PORTAL_CLIENTS_ASSIGN_NUMBERS:
        raise PermissionDenied("Your agency assigns agents to numbers; ask them to change it.")
    if not acting_user.can_edit_client_data(client):
        raise PermissionDenied("Only this client's admins can assign numbers.")
    number = PhoneNumber.objects.select_for_update().filter(pk=number_id).first()
    if number is None:
        raise NotFound("No such number.", details={"number_id": str(number_id)})
    agent = None
    if agent_id is not None:
        agent = Agent.objects.filter(pk=agent_id).first()
        if agent is None:
            raise ApplicationError("No such agent.", details={"agent": "Choose one of your agents."})
    number.agent = agent
    number.save(update_fields=["agent"])
    return number


# The portal's "Call me" shares the Call idempotency space too, namespaced like the API's.
PORTAL_IDEMPOTENCY_PREFIX = "portal:"


def telephony_call_me(*, agent, number_id: int, to_number: str, request_key: str) -> Call:
    """The portal's "Call me": the agent calls a person (usually the one trying it) from one of this
    client's numbers, through the same door as campaigns and the API (hard cap, suspension, idempotency).
    `request_key` comes with the form, so a double-submitted form places one call."""
    from apps.campaigns.services import e164

    if not request_key or len(request_key) > 64:
        raise ApplicationError("This form has expired: reload the page and try again.")
    phone_number = PhoneNumber.objects.filter(pk=number_id, is_active=True).first()
    if phone_number is None:
        raise ApplicationError("Choose one of this client's active numbers to call from.",
                               details={"number": "unknown"})
    to_number = e164(to_number)
    call = telephony_call_outbound(phone_number=phone_number, to_number=to_number, agent=agent,
                                   idempotency_key=PORTAL_IDEMPOTENCY_PREFIX + request_key)
    if (call.to_number, call.agent_id) != (to_number, agent.pk):
        raise ApplicationError("This form was already used for another call: reload the page and try again.",
                               details={"call_id": str(call.pk)}, status_code=409)
    return call
