"""The portal's call pages as a trace: filters, transcript search, CSV, costs from the rate card, the timeline,
and the recording's HTTP Range answers."""
import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.calls.services import call_recording_save
from apps.calls.views import byte_range
from apps.portal.tests.data import client_rate_card, finished_call, turn

HOST = {"HTTP_HOST": "acme.localhost"}


@pytest.mark.parametrize(("header", "size", "expected"), [
    ("bytes=0-3", 10, (0, 3)),
    ("bytes=4-", 10, (4, 9)),
    ("bytes=-3", 10, (7, 9)),
    ("bytes=-30", 10, (0, 9)),
    ("bytes=5-100", 10, (5, 9)),
    ("bytes=10-", 10, False),
    ("bytes=6-2", 10, False),
    ("bytes=-0", 10, False),
    ("", 10, None),
    ("bytes=0-1,4-5", 10, None),
    ("items=0-1", 10, None),
    ("bytes=-", 10, None),
])
def test_byte_range(header, size, expected):
    assert byte_range(header, size) == expected


@pytest.fixture
def acme_calls(tenant_a):
    with tenant_context(tenant_a):
        client_rate_card(tenant_a)
        start = timezone.now()
        booked = finished_call(tenant_a, number="+15550001000", from_number="+15557000001", seconds=125,
                               tts_characters=1500, turns=[
                                   turn(0, at=start + timedelta(seconds=2), said="I want to book a cleaning",
                                        answered="Tuesday at nine works", v2v=800),
                                   turn(1, at=start + timedelta(seconds=9), said="Great, thanks",
                                        answered="Goodbye", v2v=600),
                               ])
        transferred = finished_call(tenant_a, number="+15550001000", from_number="+15557000002", seconds=30,
                                    end_reason="transfer", turns=[
                                        {**turn(0, at=start + timedelta(seconds=1), said="Billing question please",
                                                answered="Connecting you", v2v=1000),
                                         "tool_calls": [{"name": "transfer_to_human", "arguments": {}, "result": "ok",
                                                         "duration_ms": 40}]}])
    return booked, transferred


def test_list_shows_mss_latency_and_cost_from_the_rate_card(client, acme_admin, acme_calls):
    booked, transferred = acme_calls
    client.force_login(acme_admin)
    page = client.get("/calls/", **HOST).content.decode()
    # 125 s at 0.06/min = 0.125 -> 0.13; 1,500 characters = 2 packages x 0.30 = 0.60; total 0.73
    assert "2:05" in page and "0:30" in page
    assert "0.73 USD" in page
    assert "700 ms" in page  # (800 + 600) / 2
    assert "Times in UTC" in page


def test_transcript_search_and_outcome_filter(client, acme_admin, acme_calls):
    booked, transferred = acme_calls
    client.force_login(acme_admin)
    page = client.get("/calls/?q=CLEANING", **HOST).content.decode()
    assert f"/calls/{booked.pk}/" in page and f"/calls/{transferred.pk}/" not in page
    page = client.get("/calls/?end_reason=transfer", **HOST).content.decode()
    assert f"/calls/{transferred.pk}/" in page and f"/calls/{booked.pk}/" not in page
    today = timezone.localdate()
    page = client.get(f"/calls/?since={today + timedelta(days=1)}", **HOST).content.decode()
    assert "No calls match." in page


def test_bad_filters_are_form_errors_not_500(client, acme_admin, acme_calls):
    client.force_login(acme_admin)
    response = client.get("/calls/?since=2026-02-31&agent=abc&direction=sideways", **HOST)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Enter a valid date." in page and "No calls match." in page
    response = client.get("/calls/?since=2026-05-02&until=2026-05-01", **HOST)
    assert "The end date is before the start date." in response.content.decode()


def test_csv_export_follows_the_filters(client, acme_admin, acme_calls):
    booked, transferred = acme_calls
    client.force_login(acme_admin)
    response = client.get("/calls/?end_reason=caller_hung_up&format=csv", **HOST)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "started (UTC)"
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["from"], row["outcome"], row["duration (m:ss)"], row["duration_secs"], row["avg_voice_to_voice_ms"],
            row["cost"], row["currency"], row["call_id"]) == (
        "+15557000001", "caller_hung_up", "2:05", "125.000", "700", "0.73", "USD", str(booked.pk))


def test_call_page_timeline_costs_and_transfer(client, acme_admin, acme_calls, tenant_a):
    booked, transferred = acme_calls
    client.force_login(acme_admin)
    page = client.get(f"/calls/{booked.pk}/", **HOST).content.decode()
    assert "Inbound minutes" in page and "0.13 USD" in page and "0.60 USD" in page and "0.73 USD" in page
    assert 'id="turn-0"' in page and 'id="turn-1"' in page
    assert page.count('class="wf-bar wf-llm" style="left: 18.75%; width: 37.5%"') == 2  # 150-450 ms of 800
    page = client.get(f"/calls/{transferred.pk}/", **HOST).content.decode()
    assert "Transferred" in page


def test_timeline_offsets_are_from_the_answer(tenant_a, acme_calls):
    from apps.calls.selectors import call_get, call_timeline

    booked, transferred = acme_calls
    with tenant_context(tenant_a):
        call = call_get(call_id=booked.pk)
        timeline = call_timeline(call=call)
        rows = timeline.turns
        expected = [int((t.started_at - call.answered_at).total_seconds() * 1000) for t in call.turns.all()]
        assert [row.offset_ms for row in rows] == expected
        assert [row.duration_ms for row in rows] == [3000, 3000]
        assert rows[0].stages == (("STT final", "stt", 0, 150), ("LLM first token", "llm", 150, 300),
                                  ("TTS first audio", "tts", 450, 100))
        assert timeline.span_ms == max(125_000, expected[1] + 3000)
        assert timeline.stage_scale_ms == 800  # the longest voice-to-voice
        transferred_turn = call_timeline(call=call_get(call_id=transferred.pk)).turns[0]
        assert transferred_turn.stages[-1] == ("tool transfer_to_human", "tool", 150, 40)


def test_recording_answers_range_requests(client, acme_viewer, acme_calls, tenant_a):
    booked, _ = acme_calls
    body = bytes(range(256)) * 4  # 1,024 bytes
    with tenant_context(tenant_a):
        call = call_recording_save(call_id=booked.pk, wav_bytes=body, transcript="hi")
    try:
        client.force_login(acme_viewer)
        url = f"/calls/{booked.pk}/recording.wav"
        full = client.get(url, **HOST)
        assert (full.status_code, full["Accept-Ranges"], full["Content-Length"]) == (200, "bytes", "1024")
        assert b"".join(full.streaming_content) == body
        part = client.get(url, HTTP_RANGE="bytes=100-199", **HOST)
        assert (part.status_code, part["Content-Range"], part["Content-Length"]) == (206, "bytes 100-199/1024", "100")
        assert b"".join(part.streaming_content) == body[100:200]
        tail = client.get(url, HTTP_RANGE="bytes=-24", **HOST)
        assert (tail.status_code, tail["Content-Range"]) == (206, "bytes 1000-1023/1024")
        assert b"".join(tail.streaming_content) == body[1000:]
        open_ended = client.get(url, HTTP_RANGE="bytes=1000-", **HOST)
        assert b"".join(open_ended.streaming_content) == body[1000:]
        beyond = client.get(url, HTTP_RANGE="bytes=5000-", **HOST)
        assert (beyond.status_code, beyond["Content-Range"]) == (416, "bytes */1024")
        client.logout()
        assert client.get(url, HTTP_RANGE="bytes=0-9", **HOST).status_code == 302
    finally:
        call.recording.delete(save=False)
        call.transcript.delete(save=False)


def test_dashboard_figures(tenant_a, acme_calls):
    from apps.billing.selectors import month_to_date
    from apps.calls.selectors import call_dashboard

    with tenant_context(tenant_a):
        today = timezone.localdate()
        figures = call_dashboard(since=today - timedelta(days=2), until=today, tz="UTC")
    assert (figures.calls, figures.minutes) == (2, Decimal("2.58"))  # 155 s
    assert figures.avg_voice_to_voice_ms == 800  # (800 + 600 + 1000) / 3
    assert figures.p95_voice_to_voice_ms == 980  # percentile_cont(0.95) of 600, 800, 1000
    assert [(day.day, day.calls) for day in figures.days] == [
        (today - timedelta(days=2), 0), (today - timedelta(days=1), 0), (today, 2)]
    assert [(reason, count) for reason, _, count in figures.outcomes] == [("caller_hung_up", 1), ("transfer", 1)]
    month = month_to_date(client=tenant_a)
    # 125 s -> 0.13, 30 s -> 0.03, 1,500 characters -> 0.60
    assert (month.estimated_total, month.currency, month.billable_minutes, month.cap_percent) == (
        Decimal("0.76"), "USD", Decimal("2.58"), None)


def test_list_queries_do_not_grow_with_the_calls(client, acme_admin, acme_calls, tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(acme_admin)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/calls/", **HOST).status_code == 200
        return len(captured)

    before = queries()
    with tenant_context(tenant_a):
        for index in range(4):
            finished_call(tenant_a, number="+15550001000", from_number=f"+1555800000{index}", seconds=20,
                          tts_characters=100,
                          turns=[turn(0, at=timezone.now(), said="hello", answered="hi", v2v=500)])
    assert queries() == before


def test_pages_keep_the_filters(client, acme_admin, acme_calls, monkeypatch):
    from apps.calls import views

    booked, transferred = acme_calls
    monkeypatch.setattr(views, "PAGE_SIZE", 1)
    client.force_login(acme_admin)
    first = client.get("/calls/?direction=inbound", **HOST).content.decode()
    assert f"/calls/{transferred.pk}/" in first and f"/calls/{booked.pk}/" not in first  # newest first
    assert 'href="?direction=inbound&page=2"' in first and "Page 1 of 2" in first
    second = client.get("/calls/?direction=inbound&page=2", **HOST).content.decode()
    assert f"/calls/{booked.pk}/" in second and 'href="?direction=inbound&page=1"' in second
    assert client.get("/calls/?page=999", **HOST).status_code == 200  # past the end: the last page


def test_dashboard_days_are_the_clients_local_days(tenant_a):
    from datetime import UTC, date, datetime

    from apps.calls.models import Call
    from apps.calls.selectors import call_dashboard

    with tenant_context(tenant_a):
        late_evening = finished_call(tenant_a, number="+15550001000", from_number="+15557100001", seconds=60)
        morning = finished_call(tenant_a, number="+15550001000", from_number="+15557100002", seconds=120)
        # 02:30 UTC on 10 March is the evening of 9 March in New York (UTC-5); 14:00 UTC is 10 March.
        Call.objects.filter(pk=late_evening.pk).update(created_at=datetime(2026, 3, 10, 2, 30, tzinfo=UTC))
        Call.objects.filter(pk=morning.pk).update(created_at=datetime(2026, 3, 10, 14, 0, tzinfo=UTC))
        new_york = call_dashboard(since=date(2026, 3, 9), until=date(2026, 3, 10), tz="America/New_York")
        utc = call_dashboard(since=date(2026, 3, 9), until=date(2026, 3, 10), tz="UTC")
    assert [(day.day.day, day.calls, day.minutes) for day in new_york.days] == [
        (9, 1, Decimal("1.00")), (10, 1, Decimal("2.00"))]
    assert [(day.day.day, day.calls) for day in utc.days] == [(9, 0), (10, 2)]
