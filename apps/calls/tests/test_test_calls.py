"""Browser test calls ("Talk to this agent"): who may start one, that the stream runs the
agent's draft, that its usage never reaches the client's ledger (the agency sees it as test
minutes), the sweeper, and the portal's pages and voice preview. The call itself, over a
real socket, is in tests/e2e/test_browser_test_call.py and tests/browser/test_talk_to_agent.py."""
import io
import json
import wave
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.agents.services import agent_draft_save
from apps.agents.tests.test_hostile_input import client_admin  # noqa: F401 (fixture: staff in the client admin)
from apps.billing.models import UsageEvent
from apps.calls.models import Call, CallUsage
from apps.calls.services import call_stream_end, call_stream_start, call_sweep, call_test_create, call_usage_ship
from apps.calls.stream_tokens import stream_token_redeem
from apps.core.errors import ApplicationError, PermissionDenied
from apps.telephony.tests.conftest import make_agent

pytestmark = pytest.mark.usefixtures("clean_leases")
HOST = {"HTTP_HOST": "acme.localhost"}
USAGE = {"call_seconds": 42.5, "stt_seconds": {"nova-2": 30.0}, "llm_input_tokens": {"gpt-4o-mini": 900},
         "llm_output_tokens": {"gpt-4o-mini": 120}, "tts_characters": {"en_US-joe-medium": 300}}


@pytest.fixture
def agent(tenant_a):
    with tenant_context(tenant_a):
        return make_agent("Reception")


def _ended_test_call(tenant, agent):
    ticket = call_test_create(client=tenant, agent=agent)
    call_stream_start(client=tenant, call_id=ticket.call_id, stream_id=f"browser-{ticket.call_id}",
                      carrier_call_id="", token=ticket.token)
    call_stream_end(client=tenant, call_id=ticket.call_id, end_reason="caller_hung_up", usage=USAGE)
    return Call.objects.get(pk=ticket.call_id)


def test_a_test_call_is_created_ringing_with_a_single_use_token(tenant_a, agent):
    with tenant_context(tenant_a):
        ticket = call_test_create(client=tenant_a, agent=agent)
        call = Call.objects.get(pk=ticket.call_id)
        assert (call.is_test, call.direction, call.carrier, call.status, call.agent_id, call.agent_version_id) == (
            True, "web", "browser", "ringing", agent.pk, agent.current_version_id)
        stream_token_redeem(token=ticket.token, schema=tenant_a.schema_name, call_id=ticket.call_id)
        with pytest.raises(PermissionDenied, match="already used"):
            stream_token_redeem(token=ticket.token, schema=tenant_a.schema_name, call_id=ticket.call_id)


def test_no_test_call_for_a_suspended_client_or_an_unsaved_agent(tenant_a, agent):
    from apps.agents.models import Agent

    with tenant_context(tenant_a):
        unsaved = Agent.objects.create(name="Never saved")
        with pytest.raises(ApplicationError, match="Save the agent once"):
            call_test_create(client=tenant_a, agent=unsaved)
        tenant_a.status = tenant_a.Status.SUSPENDED
        with pytest.raises(PermissionDenied, match="suspended"):
            call_test_create(client=tenant_a, agent=agent)
        assert Call.objects.count() == 0


def test_the_stream_runs_the_draft_graph_not_the_published_one(tenant_a, agent):
    with tenant_context(tenant_a):
        draft = json.loads(json.dumps(agent.current_version.graph))
        next(node for node in draft["nodes"] if node["type"] == "start")["greeting"] = "Draft hello."
        assert agent_draft_save(agent=agent, graph=draft) == []
        ticket = call_test_create(client=tenant_a, agent=agent)
        started = call_stream_start(client=tenant_a, call_id=ticket.call_id, stream_id="browser-1",
                                    carrier_call_id="", token=ticket.token)
        start = next(node for node in started.runtime.graph["nodes"] if node["type"] == "start")
        assert start["greeting"] == "Draft hello."
        published = next(node for node in agent.current_version.graph["nodes"] if node["type"] == "start")
        assert published["greeting"] == "Hello!"
        assert Call.objects.get(pk=ticket.call_id).status == "in_progress"


def test_test_usage_stays_out_of_the_ledger_and_counts_as_test_minutes(tenant_a, agent):
    from apps.core.selectors import agency_overview

    with tenant_context(tenant_a):
        call = _ended_test_call(tenant_a, agent)
        usage = {(row.metric, row.dimension): row.quantity for row in CallUsage.objects.filter(call=call)}
        assert usage == {("call_seconds_web", ""): Decimal("42.500"), ("stt_seconds", "nova-2"): Decimal("30.000"),
                         ("llm_input_tokens", "gpt-4o-mini"): Decimal("900.000"),
                         ("llm_output_tokens", "gpt-4o-mini"): Decimal("120.000"),
                         ("tts_characters", "en_US-joe-medium"): Decimal("300.000")}  # no carrier leg
        assert call_usage_ship(client=tenant_a, call_id=call.pk) == 0
        assert Call.objects.get(pk=call.pk).usage_reported_at is not None
    assert UsageEvent.objects.filter(client=tenant_a).count() == 0
    [acme] = [row for row in agency_overview() if row.client.slug == "acme"]
    assert (acme.calls, acme.minutes, acme.test_calls, acme.test_minutes) == (0, Decimal("0.00"), 1, Decimal("0.71"))
    with tenant_context(tenant_a):  # nor on the client's own dashboard
        from apps.calls.selectors import call_dashboard

        today = timezone.localdate()
        figures = call_dashboard(since=today - timedelta(days=1), until=today + timedelta(days=1), tz="UTC")
        assert sum(day.calls for day in figures.days) == 0 and figures.outcomes == ()


def test_the_sweeper_ends_a_test_call_whose_browser_never_connected(tenant_a, agent):
    with tenant_context(tenant_a):
        ticket = call_test_create(client=tenant_a, agent=agent)
        Call.objects.filter(pk=ticket.call_id).update(created_at=timezone.now() - timedelta(minutes=11))
        assert call_sweep(client=tenant_a)["unconnected"] == 1
        call = Call.objects.get(pk=ticket.call_id)
        assert (call.status, call.end_reason, call.error) == ("failed", "failed", "no media stream connected for this call")


# --- the portal's doors ------------------------------------------------------------------------------------

def test_admin_starts_a_test_call_from_the_talk_page(client, tenant_a, agent, acme_admin):
    client.force_login(acme_admin)
    page = client.get(f"/agents/{agent.pk}/", **HOST)
    assert f'href="/agents/{agent.pk}/talk/"' in page.content.decode()
    page = client.get(f"/agents/{agent.pk}/talk/", **HOST)
    assert page.status_code == 200
    assert 'id="talk-start"' in page.content.decode() and "calls/test_call.js" in page.content.decode()
    response = client.post(f"/agents/{agent.pk}/talk/start/", **HOST)
    assert response.status_code == 200
    ticket = response.json()
    assert (ticket["ws_path"], ticket["sample_rate"], ticket["call_url"]) == (
        "/ws/test-call/", 8000, f"/calls/{ticket['call_id']}/")
    with tenant_context(tenant_a):
        assert Call.objects.get(pk=ticket["call_id"]).is_test is True
    listed = client.get("/calls/", **HOST).content.decode()
    assert listed.count('class="badge test"') == 1


def test_viewers_cannot_start_test_calls(client, tenant_a, agent, acme_viewer):
    client.force_login(acme_viewer)
    assert client.post(f"/agents/{agent.pk}/talk/start/", **HOST).status_code == 403
    assert client.get(f"/agents/{agent.pk}/talk/", **HOST).status_code == 403
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0


def test_voice_preview_says_the_text_in_the_editor_s_voice(client, tenant_a, agent, acme_admin):
    client.force_login(acme_admin)
    response = client.post(f"/agents/{agent.pk}/voice-preview/", {
        "tts_provider": "piper", "tts_model": "", "tts_voice": "", "tts_settings": "{}", "text": "Good morning."}, **HOST)
    assert (response.status_code, response["Content-Type"]) == (200, "audio/wav")
    with wave.open(io.BytesIO(response.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert 0.4 < wav.getnframes() / 16000 < 3.0  # "Good morning." in Piper's voice


def test_voice_preview_refuses_bad_settings_naming_them(client, tenant_a, agent, acme_admin):
    client.force_login(acme_admin)
    url = f"/agents/{agent.pk}/voice-preview/"
    bad_json = client.post(url, {"tts_provider": "piper", "tts_settings": "{not json"}, **HOST)
    assert (bad_json.status_code, bad_json.json()["error"]) == (400, "Other text-to-speech settings must be JSON.")
    unknown = client.post(url, {"tts_provider": "piper", "tts_settings": '{"pitch": 2}'}, **HOST)
    assert unknown.status_code == 400 and "no setting pitch" in unknown.json()["error"]
    empty = client.post(url, {"tts_provider": "piper", "tts_settings": "{}", "text": "   "}, **HOST)
    # Blank text falls back to the agent's greeting, so only an over-long one is refused.
    assert empty.status_code == 200
    long = client.post(url, {"tts_provider": "piper", "tts_settings": "{}", "text": "x" * 301}, **HOST)
    assert (long.status_code, long.json()["error"]) == (400, "A preview says at most 300 characters.")


def test_agency_staff_talk_and_preview_from_the_client_admin(tenant_a, agent, client_admin):  # noqa: F811 (fixture)
    """Staff who came through the support link find both on the agent's change page and may use them."""
    page = client_admin.get(f"/admin/agents/agent/{agent.pk}/change/", **HOST).content.decode()
    assert f'href="/agents/{agent.pk}/talk/"' in page
    assert f'data-url="/agents/{agent.pk}/voice-preview/"' in page
    response = client_admin.post(f"/agents/{agent.pk}/talk/start/", **HOST)
    assert response.status_code == 200
    with tenant_context(tenant_a):
        assert Call.objects.get(pk=response.json()["call_id"]).is_test is True
    preview = client_admin.post(f"/agents/{agent.pk}/voice-preview/", {"text": "Hi."}, **HOST)
    assert (preview.status_code, preview["Content-Type"]) == (200, "audio/wav")  # the saved voice: Piper
