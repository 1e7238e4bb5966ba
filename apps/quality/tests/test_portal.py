"""QA in the portal (call page section, the QA list with filters, an agent's settings,
re-run) and in the client admin; the post-call task end to end (QA, then call.ended)."""
import json
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client as HttpClient
from django_tenants.utils import tenant_context

from apps.calls.services import call_recording_save
from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401
from apps.quality.models import QAConfig, QAResult
from apps.quality.services import qa_run
from apps.quality.tasks import post_call
from apps.webhooks.models import WebhookEvent
from devtools.doubles.openai_server import Rule

from .conftest import make_ended_call
from .test_qa import EXTRACTED, REVIEW, configure

HOST = {"HTTP_HOST": "acme.localhost"}


@pytest.fixture
def reviewed(tenant_a, qa_agent, llm_double):
    """Two reviewed calls: one scored 8 tagged "caller asked for a human", one scored 3 without tags."""
    llm_double.rules = [Rule(when="TASK: call-review", reply=json.dumps(REVIEW)),
                        Rule(when="TASK: data-extraction", reply=json.dumps(EXTRACTED))]
    with tenant_context(tenant_a):
        configure(qa_agent)
        good = make_ended_call(agent=qa_agent, number="+15550000008")
        qa_run(client=tenant_a, call_id=good.pk)
        llm_double.rules[0] = Rule(when="TASK: call-review", reply=json.dumps({**REVIEW, "score": 3, "tags": []}))
        poor = make_ended_call(agent=qa_agent, number="+15550000003")
        qa_run(client=tenant_a, call_id=poor.pk)
    return good, poor


def test_the_call_page_shows_the_review(client, reviewed, acme_viewer):  # noqa: F811
    good, _ = reviewed
    client.force_login(acme_viewer)
    html = client.get(f"/calls/{good.pk}/", **HOST).content.decode()
    assert "Quality review" in html and '<dd class="qa-score">8/10' in html
    assert "The caller booked a cleaning for Tuesday at ten." in html and "Ana Lopez" in html
    assert "turn 1: 4200 ms" in html and "book_slot ✓" in html
    assert "Re-run QA" not in html  # a viewer cannot re-run


def test_the_qa_list_filters_by_score_tag_and_agent(client, reviewed, acme_viewer, qa_agent):  # noqa: F811
    good, poor = reviewed
    client.force_login(acme_viewer)

    def listed(query):
        html = client.get(f"/quality/{query}", **HOST).content.decode()
        return [number for number in ("+15550000008", "+15550000003") if number in html]

    assert listed("") == ["+15550000008", "+15550000003"]
    assert listed("?min_score=5") == ["+15550000008"]
    assert listed("?max_score=5") == ["+15550000003"]
    assert listed("?tag=caller+asked+for+a+human") == ["+15550000008"]
    assert listed(f"?agent={qa_agent.pk}") == ["+15550000008", "+15550000003"]
    assert listed(f"?agent={qa_agent.pk + 1000}") == []
    assert listed("?min_score=banana&agent=-1") == ["+15550000008", "+15550000003"]  # bad filters are ignored


def test_a_client_admin_reruns_and_the_review_is_replaced(client, reviewed, acme_admin, llm_double, tenant_a,  # noqa: F811
                                                          celery_eager, django_capture_on_commit_callbacks):
    good, _ = reviewed
    llm_double.rules[0] = Rule(when="TASK: call-review", reply=json.dumps({**REVIEW, "score": 10}))
    client.force_login(acme_admin)
    assert "Re-run QA" in client.get(f"/calls/{good.pk}/", **HOST).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/quality/calls/{good.pk}/rerun/", **HOST)
    assert response.status_code == 302 and response["Location"] == f"/calls/{good.pk}/"
    with tenant_context(tenant_a):
        assert list(QAResult.objects.filter(call=good).values_list("run_number", "score", "requested_run")) == [(2, 10, None)]


def test_a_viewer_cannot_rerun_or_change_settings(client, reviewed, acme_viewer, qa_agent, tenant_a):  # noqa: F811
    good, _ = reviewed
    client.force_login(acme_viewer)
    assert client.post(f"/quality/calls/{good.pk}/rerun/", **HOST).status_code == 403
    assert client.post(f"/quality/agents/{qa_agent.pk}/", {"sample_rate_percent": "5"}, **HOST).status_code == 403
    with tenant_context(tenant_a):
        assert QAResult.objects.get(call=good).run_number == 1
        assert QAConfig.objects.get(agent=qa_agent).sample_rate_percent == 100


def test_settings_form_saves_and_refuses_a_bad_schema(client, acme_admin, qa_agent, tenant_a):  # noqa: F811
    client.force_login(acme_admin)
    form = {"enabled": "on", "sample_rate_percent": "25", "min_duration_secs": "15", "skip_voicemail": "on",
            "dispositions": '["booked", "call back"]', "custom_tags": '["asked about prices"]',
            "extraction_schema": '{"type": "object", "properties": {"name": {"type": "string"}}}',
            "llm_provider": "openai_compatible", "llm_model": "qa-model"}
    response = client.post(f"/quality/agents/{qa_agent.pk}/", form, **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        config = QAConfig.objects.get(agent=qa_agent)
        assert (config.sample_rate_percent, config.min_duration_secs, config.dispositions, config.custom_tags) == (
            25, 15, ["booked", "call back"], ["asked about prices"])
    bad = client.post(f"/quality/agents/{qa_agent.pk}/", {**form, "sample_rate_percent": "50",
                                                          "extraction_schema": '{"type": "array"}'}, **HOST)
    assert bad.status_code == 200 and "must describe an object" in bad.content.decode()
    broken = client.post(f"/quality/agents/{qa_agent.pk}/", {**form, "custom_tags": "[oops"}, **HOST)
    assert broken.status_code == 200 and "Not valid JSON" in broken.content.decode()
    with tenant_context(tenant_a):
        assert QAConfig.objects.get(agent=qa_agent).sample_rate_percent == 25


def test_the_client_admin_lists_results_and_reruns(reviewed, agency_owner, tenant_a, llm_double, celery_eager,
                                                    django_capture_on_commit_callbacks):
    good, _ = reviewed
    browser = HttpClient()
    browser.force_login(agency_owner)
    link = browser.get(f"/admin/tenancy/client/{tenant_a.pk}/open-admin/", HTTP_HOST="localhost")["Location"]
    token = parse_qs(urlparse(link).query)["token"][0]
    browser.get(f"/support/enter/?token={token}", **HOST)
    page = browser.get("/admin/quality/qaresult/", **HOST)
    assert page.status_code == 200 and str(good.pk) in page.content.decode()
    with tenant_context(tenant_a):
        result_id = QAResult.objects.get(call=good).pk
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post("/admin/quality/qaresult/", {"action": "rerun", "_selected_action": [result_id]},
                                **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert QAResult.objects.get(call=good).run_number == 2


def test_post_call_reviews_then_sends_call_ended_with_the_record(tenant_a, qa_agent, llm_double, celery_eager, client):
    llm_double.rules = [Rule(when="TASK: call-review", reply=json.dumps(REVIEW)),
                        Rule(when="TASK: data-extraction", reply=json.dumps(EXTRACTED))]
    with tenant_context(tenant_a):
        configure(qa_agent)
        call = make_ended_call(agent=qa_agent)
        call_recording_save(call_id=call.pk, wav_bytes=b"RIFF-qa-call", transcript="hi")
    try:
        with tenant_context(tenant_a):
            assert post_call.delay(str(call.pk)).get() == "completed"
            assert post_call.delay(str(call.pk)).get() == "skipped: run 1 is done"  # redelivered: nothing twice
            [event] = WebhookEvent.objects.filter(type="call.ended")
            assert WebhookEvent.objects.filter(type="qa.completed").count() == 1
        data = event.data
        assert (data["call_id"], data["extraction"], data["disposition"]) == (str(call.pk), EXTRACTED, "booked")
        assert data["qa"]["score"] == 8 and data["end_reason"] == "caller_hung_up"
        assert data["transcript"][1] == {"index": 1, "caller": "Tuesday at ten, my name is Ana Lopez",
                                         "agent": "Booked: Tuesday at ten."}
        url = urlparse(data["recording_url"])
        assert url.netloc == "acme.localhost:8000" and url.path.startswith("/webhooks/recordings/")
        response = client.get(url.path, **HOST)
        assert response.status_code == 200 and b"".join(response.streaming_content) == b"RIFF-qa-call"
        # Another client's host, a tampered token: refused.
        assert client.get(url.path, HTTP_HOST="globex.localhost").status_code == 403
        assert client.get(url.path.replace("/recording.wav", "x/recording.wav"), **HOST).status_code == 403
    finally:
        with tenant_context(tenant_a):
            call.refresh_from_db()
            call.recording.delete(save=False)
            call.transcript.delete(save=False)


def test_the_client_admin_edits_qa_settings_through_the_service(agency_owner, tenant_a, qa_agent):
    browser = HttpClient()
    browser.force_login(agency_owner)
    link = browser.get(f"/admin/tenancy/client/{tenant_a.pk}/open-admin/", HTTP_HOST="localhost")["Location"]
    browser.get(f"/support/enter/?token={parse_qs(urlparse(link).query)['token'][0]}", **HOST)
    form = {"agent": str(qa_agent.pk), "enabled": "on", "sample_rate_percent": "40", "min_duration_secs": "20",
            "extraction_schema": '{"type": "object"}', "dispositions": '["booked"]', "custom_tags": "[]",
            "llm_provider": "", "llm_model": ""}
    assert browser.post("/admin/quality/qaconfig/add/", form, **HOST).status_code == 302
    bad = browser.post("/admin/quality/qaconfig/add/", {**form, "extraction_schema": '{"type": "string"}'}, **HOST)
    assert bad.status_code == 200 and "must describe an object" in bad.content.decode()
    with tenant_context(tenant_a):
        config = QAConfig.objects.get(agent=qa_agent)
    assert (config.sample_rate_percent, config.min_duration_secs, config.dispositions, config.skip_voicemail) == (
        40, 20, ["booked"], False)
    change = {key: value for key, value in form.items() if key != "agent"}
    assert browser.post(f"/admin/quality/qaconfig/{config.pk}/change/", {**change, "sample_rate_percent": "70"},
                        **HOST).status_code == 302
    with tenant_context(tenant_a):
        assert list(QAConfig.objects.values_list("agent_id", "sample_rate_percent")) == [(qa_agent.pk, 70)]
