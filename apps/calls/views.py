"""Client portal: call list (filters, transcript search, CSV), call detail as a trace, recording and
transcript streamed through a permission-checked view (never a public /media URL; the recording answers
HTTP Range requests so the player can seek)."""
from __future__ import annotations

import csv
import re
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.agents.selectors import agent_list
from apps.billing.selectors import call_costs
from apps.calls.forms import CallFilterForm
from apps.calls.models import Call
from apps.calls.selectors import call_get, call_list, call_timeline
from apps.core.errors import NotFound
from apps.portal.access import portal_login_required
from apps.portal.templatetags.portal import minutes_seconds

PAGE_SIZE = 25
CSV_BATCH = 500


@portal_login_required
def call_list_view(request):
    tz = str(request.tenant.timezone)
    form = CallFilterForm(request.GET, agents=agent_list())  # every field optional: no filters is valid
    calls = call_list(**form.selector_kwargs(tz=tz)) if form.is_valid() else call_list().none()
    if request.GET.get("format") == "csv":
        return _csv_response(request, calls, tz)
    page = Paginator(calls, PAGE_SIZE).get_page(request.GET.get("page"))
    costs = call_costs(client=request.tenant, calls=[(str(call.pk), call.created_at) for call in page])
    query = request.GET.copy()
    query.pop("page", None)
    rows = [(call, costs.get(str(call.pk))) for call in page]
    return render(request, "calls/call_list.html", {
        "form": form, "page": page, "rows": rows, "query": query.urlencode(), "tz": tz,
    })


class _Echo:
    def write(self, value):
        return value


def _csv_rows(client, calls, tz):
    writer = csv.writer(_Echo())
    yield writer.writerow([f"started ({tz})", "direction", "from", "to", "agent", "status", "outcome",
                           "duration (m:ss)", "duration_secs", "avg_voice_to_voice_ms", "cost", "currency",
                           "transferred_to", "error", "call_id"])
    batch: list[Call] = []

    def flush(batch):
        costs = call_costs(client=client, calls=[(str(call.pk), call.created_at) for call in batch])
        for call in batch:
            cost = costs.get(str(call.pk))
            yield writer.writerow([
                timezone.localtime(call.created_at, timezone=_zone(tz)).strftime("%Y-%m-%d %H:%M:%S"),
                call.direction, call.from_number, call.to_number, call.agent.name if call.agent else "",
                call.status, call.end_reason, minutes_seconds(call.duration_secs),
                "" if call.duration_secs is None else call.duration_secs,
                "" if call.avg_voice_to_voice_ms is None else round(call.avg_voice_to_voice_ms),
                "" if cost is None else cost.total, "" if cost is None else cost.currency,
                call.transferred_to, call.error, call.pk,
            ])

    for call in calls.iterator(chunk_size=CSV_BATCH):
        batch.append(call)
        if len(batch) == CSV_BATCH:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)


def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def _csv_response(request, calls, tz):
    response = StreamingHttpResponse(_csv_rows(request.tenant, calls, tz), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="calls-{request.tenant.slug}.csv"'
    return response


def _call_or_404(call_id) -> Call:
    try:
        return call_get(call_id=call_id)
    except NotFound:
        raise Http404("No such call.") from None


@portal_login_required
def call_detail_view(request, call_id):
    call = _call_or_404(call_id)
    timeline = call_timeline(call=call)
    cost = call_costs(client=request.tenant, calls=[(str(call.pk), call.created_at)]).get(str(call.pk))
    return render(request, "calls/call_detail.html", {
        "call": call, "timeline": timeline.turns, "span_ms": max(timeline.span_ms, 1),
        "stage_scale_ms": timeline.stage_scale_ms, "usage": call.usage.all(), "cost": cost,
        "tz": str(request.tenant.timezone),
    })


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


def byte_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """The (first, last) byte of a single `Range: bytes=...` header for a body of `size` bytes.
    None: no usable range (absent, multiple ranges or another unit; answer 200 with everything).
    False: not satisfiable (answer 416)."""
    match = _RANGE.match(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return False
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return False
    return start, end


def _file_part(field, start: int, end: int):
    with field.open("rb") as handle:
        handle.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


@portal_login_required
def call_recording_view(request, call_id):
    call = _call_or_404(call_id)
    if not call.recording:
        raise Http404("This call has no recording.")
    return recording_response(request, call)


def recording_response(request, call: Call):
    """The recording of `call` (which has one): all of it, or the byte range asked for (206), or 416."""
    size = call.recording.size
    wanted = None if request.headers.get("If-Range") else byte_range(request.headers.get("Range", ""), size)
    if wanted is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    elif wanted is None:
        response = FileResponse(call.recording.open("rb"), content_type="audio/wav", filename=f"call-{call.pk}.wav")
        response["Content-Length"] = str(size)
    else:
        start, end = wanted
        response = StreamingHttpResponse(_file_part(call.recording, start, end), status=206,
                                         content_type="audio/wav")
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@portal_login_required
def call_transcript_view(request, call_id):
    call = _call_or_404(call_id)
    if not call.transcript:
        raise Http404("This call has no transcript.")
    return FileResponse(call.transcript.open("rb"), content_type="text/plain; charset=utf-8",
                        filename=f"call-{call.pk}.txt")
