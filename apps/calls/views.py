"""Client portal: call list, call detail with turns, recording and transcript
streamed through a permission-checked view (never a public /media URL)."""
from __future__ import annotations

from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import render

from apps.calls.models import Call
from apps.calls.selectors import call_get, call_list
from apps.core.errors import NotFound
from apps.portal.access import portal_login_required


@portal_login_required
def call_list_view(request):
    filters = {key: request.GET.get(key, "") for key in ("direction", "status", "end_reason", "number")}
    calls = call_list(**filters)
    page = Paginator(calls, 50).get_page(request.GET.get("page"))
    return render(request, "calls/call_list.html", {
        "page": page, "filters": filters, "directions": Call.Direction.choices, "statuses": Call.Status.choices,
        "end_reasons": Call.EndReason.choices,
    })


def _call_or_404(call_id) -> Call:
    try:
        return call_get(call_id=call_id)
    except NotFound:
        raise Http404("No such call.") from None


@portal_login_required
def call_detail_view(request, call_id):
    call = _call_or_404(call_id)
    return render(request, "calls/call_detail.html", {"call": call, "turns": call.turns.all(), "usage": call.usage.all()})


@portal_login_required
def call_recording_view(request, call_id):
    call = _call_or_404(call_id)
    if not call.recording:
        raise Http404("This call has no recording.")
    return FileResponse(call.recording.open("rb"), content_type="audio/wav", filename=f"call-{call.pk}.wav")


@portal_login_required
def call_transcript_view(request, call_id):
    call = _call_or_404(call_id)
    if not call.transcript:
        raise Http404("This call has no transcript.")
    return FileResponse(call.transcript.open("rb"), content_type="text/plain; charset=utf-8",
                        filename=f"call-{call.pk}.txt")
