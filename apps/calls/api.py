"""/api/v1/calls: this client's call records, and placing outbound calls."""
# No `from __future__ import annotations` here: django-ninja resolves these annotations itself.
from datetime import datetime
from uuid import UUID

from ninja import Router
from ninja.pagination import LimitOffsetPagination, paginate

from apps.calls.models import Call
from apps.calls.schemas import CallDetailOut, CallOut, OutboundCallIn
from apps.calls.selectors import call_get, call_list
from apps.telephony.services import telephony_call_outbound_request

router = Router(tags=["calls"])


@router.get("", response=list[CallOut])
@paginate(LimitOffsetPagination)
def calls_list(request, status: Call.Status | None = None, direction: Call.Direction | None = None,
               since: datetime | None = None):
    return call_list(status=status or "", direction=direction or "", since=since)


@router.get("/{uuid:call_id}", response=CallDetailOut)
def calls_get(request, call_id: UUID):
    return call_get(call_id=call_id)


@router.post("/outbound", response=CallOut)
def calls_outbound(request, payload: OutboundCallIn):
    return telephony_call_outbound_request(
        agent_id=payload.agent_id, to_number=payload.to, from_number=payload.from_number,
        idempotency_key=payload.idempotency_key,
    )
