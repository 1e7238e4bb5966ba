"""The public API: per-client bearer keys (hashed, shown once), client isolation
on either host, call list/detail, and idempotent outbound calls through the
Twilio REST double."""
import json
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.api.models import ApiKey
from apps.api.services import api_key_create, api_key_revoke
from apps.calls.models import Call
from apps.calls.services import call_answered, call_create_inbound, call_end, call_turn_record

ACME = "acme.localhost"
GLOBEX = "globex.localhost"


def bearer(token, host=ACME):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_HOST": host}


@pytest.fixture
def acme_token(tenant_a):
    with tenant_context(tenant_a):
        return api_key_create(name="CRM sync", created_by="admin@acme.test")[1]


@pytest.fixture
def globex_token(tenant_b):
    with tenant_context(tenant_b):
        return api_key_create(name="Globex ERP")[1]


@pytest.fixture
def acme_call(tenant_a, acme_number):
    with tenant_context(tenant_a):
        call = call_create_inbound(to_number="+15550001000", from_number="+15557654321", carrier_call_id="CA-acme")
        call_answered(call_id=call.pk)
        call_turn_record(call_id=call.pk, turn={
            "index": 0, "user_text": "I'd like to book a cleaning", "bot_text": "Sure, which day?",
            "interrupted": False, "stt_final_ms": 180, "llm_ttft_ms": 320, "tts_ttfb_ms": 140,
            "voice_to_voice_ms": 710, "errors": ["tts slow"],
            "tool_calls": [{"name": "end_call", "arguments": {"reason": "done"}, "result": "ok", "duration_ms": 3}],
        })
        return call_end(call_id=call.pk, end_reason="agent_ended", usage={"call_seconds": 42.5})


@pytest.fixture
def globex_call(tenant_b, globex_number):
    with tenant_context(tenant_b):
        return call_create_inbound(to_number="+15550002000", from_number="+15559990000", carrier_call_id="CA-globex")


def test_the_key_is_stored_hashed_and_works_as_a_bearer(client, tenant_a, acme_token):
    with tenant_context(tenant_a):
        key = ApiKey.objects.get()
        assert key.key_hash != acme_token and acme_token not in (key.key_hash, key.prefix)
        assert (key.prefix, len(key.key_hash)) == (acme_token[:11], 64)
        assert key.last_used_at is None
    response = client.get("/api/v1/agents", **bearer(acme_token))
    assert response.status_code == 200
    with tenant_context(tenant_a):
        assert ApiKey.objects.get().last_used_at is not None


@pytest.mark.parametrize("header", [None, "Bearer sb_not-a-real-key", "Bearer ", "Basic dXNlcjpwYXNz"])
def test_missing_or_bad_key_is_401(client, tenant_a, acme_token, header):
    extra = {"HTTP_HOST": ACME}
    if header is not None:
        extra["HTTP_AUTHORIZATION"] = header
    response = client.get("/api/v1/calls", **extra)
    assert (response.status_code, response.json()) == (401, {"detail": "Unauthorized"})


def test_a_revoked_key_is_401(client, tenant_a, acme_token):
    with tenant_context(tenant_a):
        api_key_revoke(key_id=ApiKey.objects.get().pk)
    assert client.get("/api/v1/calls", **bearer(acme_token)).status_code == 401


def test_an_acme_key_cannot_read_globex_calls_on_either_host(client, acme_token, acme_call, globex_call):
    # on acme's host, globex's call id is not in acme's schema
    response = client.get(f"/api/v1/calls/{globex_call.pk}", **bearer(acme_token))
    assert (response.status_code, response.json()["error"]) == (404, "No such call.")
    listed = client.get("/api/v1/calls", **bearer(acme_token)).json()
    assert [item["id"] for item in listed["items"]] == [str(acme_call.pk)]
    # on globex's host, acme's key is not a globex key
    assert client.get(f"/api/v1/calls/{globex_call.pk}", **bearer(acme_token, GLOBEX)).status_code == 401
    assert client.get("/api/v1/calls", **bearer(acme_token, GLOBEX)).status_code == 401
    assert client.get(f"/api/v1/calls/{acme_call.pk}", **bearer(acme_token, GLOBEX)).status_code == 401


def test_the_agency_host_has_no_api(client, acme_token):
    assert client.get("/api/v1/calls", **bearer(acme_token, "localhost")).status_code == 404


def test_call_list_filters(client, acme_token, acme_call):
    def ids(query):
        response = client.get(f"/api/v1/calls{query}", **bearer(acme_token))
        assert response.status_code == 200
        return [item["id"] for item in response.json()["items"]]

    assert ids("?status=completed&direction=inbound") == [str(acme_call.pk)]
    assert ids("?status=failed") == []
    assert ids("?direction=outbound") == []
    assert ids("?since=2000-01-01T00:00:00Z") == [str(acme_call.pk)]
    assert ids("?since=2999-01-01T00:00:00Z") == []
    assert client.get("/api/v1/calls?status=nonsense", **bearer(acme_token)).status_code == 422


def test_call_detail_has_turns_and_tool_calls(client, acme_token, acme_call, acme_number):
    response = client.get(f"/api/v1/calls/{acme_call.pk}", **bearer(acme_token))
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["direction"], body["status"], body["end_reason"], body["from_number"],
            body["to_number"], body["agent_id"], body["duration_secs"]) == (
        str(acme_call.pk), "inbound", "completed", "agent_ended", "+15557654321", "+15550001000",
        acme_number.agent_id, "42.500")
    assert body["turns"] == [{
        "index": 0, "user_text": "I'd like to book a cleaning", "bot_text": "Sure, which day?",
        "started_at": None, "ended_at": None, "interrupted": False, "stt_final_ms": 180, "llm_ttft_ms": 320,
        "tts_ttfb_ms": 140, "voice_to_voice_ms": 710, "errors": ["tts slow"],
        "tool_calls": [{"name": "end_call", "arguments": {"reason": "done"}, "result": "ok", "duration_ms": 3,
                        "error": ""}],
        "clips": [],
    }]
    assert sorted(body["usage"], key=lambda row: row["metric"]) == [
        {"metric": "call_seconds_inbound", "dimension": "", "provider": "twilio", "quantity": "42.500"},
        {"metric": "carrier_seconds", "dimension": "voice-inbound", "provider": "twilio", "quantity": "42.500"},
    ]


def test_agents_list(client, acme_token, acme_number):
    response = client.get("/api/v1/agents", **bearer(acme_token))
    assert response.status_code == 200
    [agent] = response.json()
    assert (agent["id"], agent["name"], agent["version"], agent["stt_provider"], agent["tts_provider"]) == (
        acme_number.agent_id, "Reception", 1, "deepgram", "piper")
    assert (agent["pipeline_mode"], agent["s2s_provider"]) == ("cascade", "")


def test_agents_list_says_which_agents_are_speech_to_speech(client, tenant_a, acme_token):
    from apps.agents.services import agent_save
    from apps.providers.models import ProviderAccount

    with tenant_context(tenant_a):
        ProviderAccount.objects.create(provider="openai_realtime", api_key="sk-rt")
        agent = agent_save(name="Realtime", pipeline_mode="speech_to_speech", s2s_provider="openai_realtime",
                           s2s_settings={"model": "gpt-realtime"})
    [listed] = [a for a in client.get("/api/v1/agents", **bearer(acme_token)).json() if a["id"] == agent.pk]
    assert (listed["pipeline_mode"], listed["s2s_provider"]) == ("speech_to_speech", "openai_realtime")


def test_outbound_is_idempotent_through_the_twilio_double(client, tenant_a, acme_token, acme_number, twilio_double):
    payload = {"to": "+15557770000", "from_number": "+15550001000", "idempotency_key": "crm-123"}
    first = client.post("/api/v1/calls/outbound", payload, content_type="application/json", **bearer(acme_token))
    again = client.post("/api/v1/calls/outbound", payload, content_type="application/json", **bearer(acme_token))
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["id"] == again.json()["id"]
    assert (first.json()["direction"], first.json()["status"], first.json()["agent_id"]) == (
        "outbound", "queued", acme_number.agent_id)
    assert len(twilio_double.requests) == 1
    assert twilio_double.requests[0].form["To"] == ["+15557770000"]
    with tenant_context(tenant_a):
        call = Call.objects.get()
        assert (str(call.pk), call.idempotency_key, call.carrier_call_id) == (
            first.json()["id"], "api:crm-123", "CA" + "0" * 31 + "1")


def test_outbound_key_reuse_for_another_call_is_refused(client, tenant_a, acme_token, acme_number, twilio_double):
    payload = {"to": "+15557770000", "from_number": "+15550001000", "idempotency_key": "crm-123"}
    client.post("/api/v1/calls/outbound", payload, content_type="application/json", **bearer(acme_token))
    response = client.post("/api/v1/calls/outbound", {**payload, "to": "+15558880000"},
                           content_type="application/json", **bearer(acme_token))
    assert response.status_code == 409
    assert response.json()["error"] == "This idempotency key was already used for a different call; use a new key."
    assert len(twilio_double.requests) == 1
    with tenant_context(tenant_a):
        assert list(Call.objects.values_list("to_number", flat=True)) == ["+15557770000"]


def test_outbound_from_another_clients_number_is_404_and_dials_nothing(client, tenant_a, acme_token, acme_number,
                                                                       globex_number, twilio_double):
    payload = {"to": "+15557770000", "from_number": "+15550002000", "idempotency_key": "crm-9"}
    response = client.post("/api/v1/calls/outbound", payload, content_type="application/json", **bearer(acme_token))
    assert (response.status_code, response.json()["error"]) == (
        404, "+15550002000 is not one of this client's active numbers.")
    assert twilio_double.requests == []
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0


def test_outbound_at_the_hard_usage_cap_is_refused_with_the_reason_and_dials_nothing(
        client, tenant_a, acme_token, acme_number, twilio_double, monkeypatch):
    # Billing's selector is the door to its ledger; here it reports the hard cap (its own tests cover the sums).
    from apps.billing import selectors
    from apps.billing.selectors import CapStatus

    monkeypatch.setattr(selectors, "usage_cap_status",
                        lambda *, client, at=None: CapStatus("hard", "Monthly limit of 500 minutes reached."))
    payload = {"to": "+15557770000", "from_number": "+15550001000", "idempotency_key": "crm-cap"}
    response = client.post("/api/v1/calls/outbound", payload, content_type="application/json", **bearer(acme_token))
    assert response.status_code == 403
    assert response.json()["error"] == (
        "This client has reached its hard usage cap for the month: outbound calls are refused and nothing was "
        "dialled. Monthly limit of 500 minutes reached.")
    assert twilio_double.requests == []
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0


def test_outbound_with_a_bad_key_dials_nothing(client, tenant_a, acme_number, twilio_double):
    payload = {"to": "+15557770000", "from_number": "+15550001000", "idempotency_key": "crm-1"}
    response = client.post("/api/v1/calls/outbound", payload, content_type="application/json",
                           **bearer("sb_wrong"))
    assert response.status_code == 401
    assert twilio_double.requests == []
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0


def test_portal_admin_creates_a_key_shown_once(client, tenant_a, acme_admin):
    client.force_login(acme_admin)
    response = client.post("/api-keys/", {"name": "CRM sync"}, HTTP_HOST=ACME)
    assert response.status_code == 200
    token = response.context["new_token"]
    assert token.startswith("sb_") and token in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    later = client.get("/api-keys/", HTTP_HOST=ACME).content.decode()
    assert token not in later and f"{token[:11]}…" in later
    with tenant_context(tenant_a):
        key = ApiKey.objects.get()
        assert (key.name, key.created_by, key.revoked_at) == ("CRM sync", "admin@acme.test", None)
    assert client.get("/api/v1/agents", **bearer(token)).status_code == 200
    assert client.post(f"/api-keys/{key.pk}/revoke/", HTTP_HOST=ACME).status_code == 302
    assert client.get("/api/v1/agents", **bearer(token)).status_code == 401


def test_portal_viewer_cannot_make_keys(client, tenant_a, acme_viewer):
    client.force_login(acme_viewer)
    assert client.get("/api-keys/", HTTP_HOST=ACME).status_code == 403
    assert client.post("/api-keys/", {"name": "sneaky"}, HTTP_HOST=ACME).status_code == 403
    with tenant_context(tenant_a):
        assert ApiKey.objects.count() == 0


def test_usage_decimal_is_exact(acme_call):
    assert acme_call.duration_secs == Decimal("42.500")


def test_docs_are_served_offline_under_the_agencys_name(client, tenant_a, acme_admin):
    from apps.tenancy.models import AgencySettings

    AgencySettings.objects.update_or_create(pk=1, defaults={"name": "Bright Voice Agency"})
    page = client.get("/api/docs", HTTP_HOST="acme.localhost")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<title>Bright Voice Agency API</title>" in html
    assert "/static/ninja/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    raw = client.get("/api/openapi.json", HTTP_HOST="acme.localhost").content

    def no_duplicate_keys(pairs):  # Swagger UI's parser refuses a document with a key twice
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    schema = json.loads(raw, object_pairs_hook=no_duplicate_keys)
    assert schema["info"]["title"] == "Bright Voice Agency API"
    assert {"/api/v1/agents", "/api/v1/calls"} <= set(schema["paths"])
    client.force_login(acme_admin)
    assert 'href="/api/docs"' in client.get("/api-keys/", HTTP_HOST="acme.localhost").content.decode()


def test_call_list_filters_like_the_portal(client, acme_token, acme_call):
    response = client.get("/api/v1/calls?text=CLEANING&end_reason=agent_ended", **bearer(acme_token))
    assert [row["id"] for row in response.json()["items"]] == [str(acme_call.pk)]
    assert client.get("/api/v1/calls?text=plumbing", **bearer(acme_token)).json()["count"] == 0
    assert client.get("/api/v1/calls?end_reason=nonsense", **bearer(acme_token)).status_code == 422


def test_recording_through_the_api_answers_ranges(client, tenant_a, acme_token, acme_call):
    from apps.calls.services import call_recording_save

    with tenant_context(tenant_a):
        call = call_recording_save(call_id=acme_call.pk, wav_bytes=b"RIFF" + bytes(range(96)), transcript="hi")
    try:
        url = f"/api/v1/calls/{acme_call.pk}/recording"
        whole = client.get(url, **bearer(acme_token))
        assert (whole.status_code, whole["Content-Type"]) == (200, "audio/wav")
        assert b"".join(whole.streaming_content) == b"RIFF" + bytes(range(96))
        part = client.get(url, HTTP_RANGE="bytes=0-3", **bearer(acme_token))
        assert (part.status_code, part["Content-Range"], b"".join(part.streaming_content)) == (
            206, "bytes 0-3/100", b"RIFF")
        assert client.get(url, **bearer("sk_wrong")).status_code == 401
    finally:
        call.recording.delete(save=False)
        call.transcript.delete(save=False)


def test_numbers_and_usage(client, tenant_a, acme_token, acme_number):
    numbers = client.get("/api/v1/numbers", **bearer(acme_token)).json()
    assert [(row["number"], row["carrier"], row["agent_id"]) for row in numbers] == [
        ("+15550001000", "twilio", acme_number.agent_id)]
    usage = client.get("/api/v1/usage", **bearer(acme_token)).json()
    assert (usage["estimated_total"], usage["cap_state"], usage["cap_percent"]) == (None, "allowed", None)
    assert client.get("/api/v1/usage", **bearer("sk_wrong")).status_code == 401


def test_an_acme_key_cannot_fetch_a_globex_recording(client, tenant_b, acme_token, globex_call):
    from apps.calls.services import call_recording_save

    with tenant_context(tenant_b):
        call = call_recording_save(call_id=globex_call.pk, wav_bytes=b"RIFF-globex-secret", transcript="secret")
    try:
        url = f"/api/v1/calls/{globex_call.pk}/recording"
        assert client.get(url, **bearer(acme_token)).status_code == 404
        assert client.get(url, **bearer(acme_token, host=GLOBEX)).status_code == 401
    finally:
        call.recording.delete(save=False)
        call.transcript.delete(save=False)
