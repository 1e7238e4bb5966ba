"""Reads of phone numbers (tenant schema)."""
from __future__ import annotations

from apps.telephony.models import PhoneNumber


def phone_number_for_inbound(*, number: str, carrier: str) -> PhoneNumber | None:
    """This client's active number on this carrier, or None (unknown here: another client's or nobody's)."""
    return PhoneNumber.objects.select_related("agent").filter(number=number, carrier=carrier, is_active=True).first()


def phone_number_list():
    return PhoneNumber.objects.select_related("agent").order_by("number")


def phone_numbers_active_by_carrier() -> dict[str, list[str]]:
    """This client's active numbers, {carrier: [E.164, ...]} (sorted)."""
    held: dict[str, list[str]] = {}
    for carrier, number in PhoneNumber.objects.filter(is_active=True).order_by("carrier", "number").values_list(
            "carrier", "number"):
        held.setdefault(carrier, []).append(number)
    return held


def phone_numbers_without_agent() -> list[str]:
    """This client's active numbers no agent answers (their calls are refused)."""
    return list(PhoneNumber.objects.filter(is_active=True, agent__isnull=True).order_by("number")
                .values_list("number", flat=True))


MAX_SIGNERS = 20


def phone_number_signers(*, carrier: str) -> list[PhoneNumber]:
    """One active number of this client per distinct set of `carrier` credentials:
    who could have signed a webhook for a number this client does not hold (at most
    MAX_SIGNERS, one query)."""
    signers: dict[tuple[str, str, str], PhoneNumber] = {}
    for number in PhoneNumber.objects.filter(carrier=carrier, is_active=True).order_by("pk")[:200]:
        signers.setdefault((number.account_sid, number.auth_token, number.webhook_public_key), number)
        if len(signers) >= MAX_SIGNERS:
            break
    return list(signers.values())


def phone_number_for_carrier_call(*, carrier: str, carrier_call_id: str) -> PhoneNumber | None:
    """The number of this client's call that `carrier` knows as `carrier_call_id` (None: no such call)."""
    from apps.calls.models import Call

    call = (Call.objects.select_related("phone_number").filter(carrier=carrier, carrier_call_id=carrier_call_id)
            .exclude(phone_number=None).first())
    return call.phone_number if call else None


def phone_numbers_can_dial() -> list[PhoneNumber]:
    """This client's active numbers whose carrier can place outbound calls (what "Call me" offers)."""
    from apps.telephony.carriers.registry import carrier_get

    return [number for number in PhoneNumber.objects.filter(is_active=True).order_by("number")
            if carrier_get(number.carrier).dial is not None]
