"""/api/v1/numbers: this client's phone numbers (read-only)."""
# No `from __future__ import annotations` here: django-ninja resolves these annotations itself.
from ninja import Router, Schema

from apps.telephony.selectors import phone_number_list

router = Router(tags=["numbers"])


class NumberOut(Schema):
    id: int
    number: str
    label: str
    carrier: str
    agent_id: int | None
    is_active: bool


@router.get("", response=list[NumberOut])
def numbers_list(request):
    return list(phone_number_list())
