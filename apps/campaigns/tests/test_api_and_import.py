"""CSV import with bad rows (per-row report, downloadable), and the public API: create, upload,
start, pause/resume/cancel, progress, results CSV, do-not-call; refusals name the field."""
import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from apps.api.services import api_key_create
from apps.campaigns.models import CampaignContact, ContactImport
from apps.campaigns.services import campaign_contacts_import, campaign_create
from apps.core.errors import ApplicationError

ACME = "acme.localhost"
BAD_CSV = (
    "Phone_Number,First Name,timezone\n"
    "+14155550100,Ada,America/Los_Angeles\n"
    "not a number,Bob,\n"
    "+1415555,Cy,\n"
    "+442079460000,Dee,Mars/Olympus\n"
    "\n"
    "+1 (415) 555-0101,Eve,\n"
    "+14155550100,Ada again,\n"
    "4155550102,Fay,\n"
)


@pytest.fixture
def token(tenant_a):
    with tenant_context(tenant_a):
        return api_key_create(name="Campaign tool")[1]


def auth(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_HOST": ACME}


def test_import_keeps_good_rows_and_reports_each_bad_one(setup):
    with tenant_context(setup["client"]):
        campaign = campaign_create(name="Import", agent_id=setup["agent"].pk, number_ids=[setup["numbers"][0].pk])
        report = campaign_contacts_import(campaign_id=campaign.pk, data=BAD_CSV.encode(), filename="leads.csv")
        assert (report.rows_total, report.rows_imported) == (7, 2)
        assert report.errors == [
            {"row": 3, "phone_number": "not a number", "error": "'not a number' is not a phone number (use E.164, "
                                                                 "e.g. +14155550100)."},
            {"row": 4, "phone_number": "+1415555", "error": "'+1415555' is not a valid phone number (wrong length "
                                                            "for its country code)."},
            {"row": 5, "phone_number": "+442079460000", "error": "Unknown time zone 'Mars/Olympus': use an IANA "
                                                                 "name such as Europe/Berlin."},
            {"row": 8, "phone_number": "+14155550100", "error": "+14155550100 is already in this campaign (row 2)."},
            {"row": 9, "phone_number": "4155550102", "error": "'4155550102' is not a phone number (use E.164, e.g. "
                                                              "+14155550100)."},
        ]
        assert list(CampaignContact.objects.filter(campaign=campaign).values_list(
            "phone_number", "timezone", "variables", "row_number")) == [
            ("+14155550100", "America/Los_Angeles", {"first_name": "Ada"}, 1),
            ("+14155550101", "", {"first_name": "Eve"}, 2)]
        # With a default region, national numbers are read in it.
        again = campaign_contacts_import(campaign_id=campaign.pk, data="phone\n4155550102\n", default_region="US")
        assert (again.rows_imported, again.errors) == (1, [])
        for data, message in ((b"\xff\xfe", "not UTF-8"), (b"", "The CSV is empty"),
                              (b"name,email\nAda,a@x\n", "needs a phone_number column")):
            with pytest.raises(ApplicationError, match=message):
                campaign_contacts_import(campaign_id=campaign.pk, data=data)
        assert ContactImport.objects.filter(campaign=campaign).count() == 2  # refusals store nothing


def test_the_api_runs_a_campaign_from_upload_to_results(client, setup, token, twilio_double):
    numbers = [number.pk for number in setup["numbers"]]
    response = client.post("/api/v1/campaigns", {
        "name": "Flu shots", "agent_id": setup["agent"].pk, "number_ids": numbers, "timezone": "America/New_York",
        "windows": {"mon": [["09:00", "17:00"]]}, "max_concurrent": 2, "calls_per_second": "0.5",
        "retry_policy": {"no_answer": {"attempts": 2, "delay_minutes": 60}}}, content_type="application/json",
        **auth(token))
    assert response.status_code == 201, response.content
    body = response.json()
    campaign_id = body["id"]
    assert {key: body[key] for key in ("status", "number_ids", "calls_per_second", "retry_policy", "windows")} == {
        "status": "draft", "number_ids": sorted(numbers), "calls_per_second": "0.50",
        "retry_policy": {"no_answer": {"attempts": 2, "delay_minutes": 60}}, "windows": {"mon": [["09:00", "17:00"]]}}
    upload = SimpleUploadedFile("leads.csv", BAD_CSV.encode(), content_type="text/csv")
    response = client.post(f"/api/v1/campaigns/{campaign_id}/contacts", {"file": upload}, **auth(token))
    assert response.status_code == 201, response.content
    report = response.json()
    assert (report["rows_total"], report["rows_imported"], len(report["errors"])) == (7, 2, 5)
    errors = client.get(f"/api/v1/campaigns/{campaign_id}/imports/{report['id']}/errors.csv", **auth(token))
    rows = list(csv.reader(io.StringIO(errors.content.decode())))
    assert (errors["Content-Type"], rows[0], rows[1]) == (
        "text/csv", ["row", "phone_number", "error"],
        ["3", "not a number", "'not a number' is not a phone number (use E.164, e.g. +14155550100)."])
    assert len(rows) == 6
    assert client.post(f"/api/v1/campaigns/{campaign_id}/start", **auth(token)).json()["status"] == "scheduled"
    paused = client.post(f"/api/v1/campaigns/{campaign_id}/pause?reason=Holiday", **auth(token)).json()
    assert (paused["status"], paused["pause_kind"], paused["pause_reason"]) == ("paused", "user", "Holiday")
    resumed = client.post(f"/api/v1/campaigns/{campaign_id}/resume", **auth(token)).json()
    assert (resumed["status"], resumed["pause_kind"], resumed["pause_reason"]) == ("running", "", "")  # no start date
    detail = client.get(f"/api/v1/campaigns/{campaign_id}", **auth(token)).json()
    assert {key: detail["progress"][key] for key in ("total", "done", "left", "percent", "dials")} == {
        "total": 2, "done": 0, "left": 2, "percent": 0, "dials": 0}
    cancelled = client.post(f"/api/v1/campaigns/{campaign_id}/cancel", **auth(token)).json()
    assert (cancelled["status"], cancelled["progress"]["outcomes"]) == ("cancelled", {"cancelled": 2})
    results = client.get(f"/api/v1/campaigns/{campaign_id}/results.csv", **auth(token))
    assert list(csv.reader(io.StringIO(results.content.decode()))) == [
        ["phone_number", "timezone", "status", "outcome", "attempts", "attempt_outcomes", "last_attempt_at",
         "last_call_id", "first_name"],
        ["+14155550100", "America/Los_Angeles", "done", "cancelled", "0", "", "", "", "Ada"],
        ["+14155550101", "", "done", "cancelled", "0", "", "", "", "Eve"]]
    contacts = client.get(f"/api/v1/campaigns/{campaign_id}/contacts?limit=1", **auth(token)).json()
    assert (contacts["count"], contacts["items"][0]["phone_number"], contacts["items"][0]["attempt_history"]) == (
        2, "+14155550100", [])
    assert twilio_double.dials == {}


def test_the_api_refuses_bad_settings_naming_the_field(client, setup, token):
    base = {"name": "X", "agent_id": setup["agent"].pk, "number_ids": [setup["numbers"][0].pk]}
    for change, message, field in (
        ({"timezone": "Nowhere/Land"}, "Unknown time zone 'Nowhere/Land'", "timezone"),
        ({"windows": {"mon": [["18:00", "09:00"]]}}, "mon: a window must end after it starts (18:00-09:00).", "windows"),
        ({"max_concurrent": 0}, "Maximum concurrent calls must be 1-1000.", "max_concurrent"),
        ({"calls_per_second": "500"}, "Calls per second must be between 0.01 and 100.", "calls_per_second"),
        ({"retry_policy": {"angry": {"attempts": 1}}}, "Retry policy: unknown outcome 'angry'", "retry_policy"),
        ({"number_ids": [999999]}, "Choose at least one caller-ID number", "number_ids"),
    ):
        response = client.post("/api/v1/campaigns", {**base, **change}, content_type="application/json", **auth(token))
        assert response.status_code == 400, (change, response.content)
        assert response.json()["error"].startswith(message)
        assert field in response.json()["details"]
    with tenant_context(setup["client"]):
        from apps.campaigns.models import Campaign

        assert Campaign.objects.count() == 0


def test_do_not_call_through_the_api(client, setup, token):
    response = client.post("/api/v1/campaigns/do-not-call", {"number": "+1 415 555 0100", "reason": "CRM opt-out"},
                           content_type="application/json", **auth(token))
    assert response.status_code == 201
    assert (response.json()["number"], response.json()["source"]) == ("+14155550100", "api")
    listed = client.get("/api/v1/campaigns/do-not-call", **auth(token)).json()
    assert [entry["number"] for entry in listed["items"]] == ["+14155550100"]
    assert client.delete("/api/v1/campaigns/do-not-call/+14155550100", **auth(token)).status_code == 204
    assert client.get("/api/v1/campaigns/do-not-call", **auth(token)).json()["count"] == 0
    bad = client.post("/api/v1/campaigns/do-not-call", {"number": "call me maybe"}, content_type="application/json",
                      **auth(token))
    assert bad.status_code == 400
