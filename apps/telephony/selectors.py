"""Reads of phone numbers (tenant schema)."""
from __future__ import annotations

from apps.telephony.models import PhoneNumber


def phone_number_for_inbound(*, number: str, carrier: str) -> PhoneNumber | None:
    """This client's active number on this carrier, or None (unknown here: another client's or nobody's)."""
    return PhoneNumber.objects.select_related("agent").filter(number=number, carrier=carrier, is_active=True).first()


def phone_number_list():
    return PhoneNumber.objects.select_related("agent").order_by("number")
