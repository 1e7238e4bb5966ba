"""/api/v1/calls: this client's call records, and placing outbound calls."""
# No `from __future__ import annotations` here: django-ninja resolves these annotations itself.
from datetime import datetime
from uuid import UUID

from django.http import Http404
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
               end_reason: Call.EndReason | None = None, agent_id: int | None = None, number: str = "",
               text: str = "", since: datetime | None = None, until: datetime | None = None):
    """Newest first. `number` matches either end; `text` searches what was said; `since` / `until` bound the
    start time."""
    return call_list(status=status or "", direction=direction or "", end_reason=end_reason or "",
                     agent_id=agent_id, number=number[:32], text=text[:200], since=since, until=until)


@router.get("/{uuid:call_id}", response=CallDetailOut)
def calls_get(request, call_id: UUID):
    return call_get(call_id=call_id)


@router.get("/{uuid:call_id}/recording", openapi_extra={
    "responses": {200: {"description": "The stereo WAV (caller left, agent right); Range requests answer 206.",
                          "content": {"audio/wav": {}}}}})
def calls_recording(request, call_id: UUID):
    """The call's recording; supports HTTP Range (206 Partial Content) for seeking."""
    from apps.calls.views import recording_response

    call = call_get(call_id=call_id)
    if not call.recording:
        raise Http404("This call has no recording.")
    return recording_response(request, call)


@router.post("/outbound", response=CallOut)
def calls_outbound(request, payload: OutboundCallIn):
    return telephony_call_outbound_request(
        agent_id=payload.agent_id, to_number=payload.to, from_number=payload.from_number,
        idempotency_key=payload.idempotency_key,
    )
