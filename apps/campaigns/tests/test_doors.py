"""The portal pages and the client admin: create, upload with an error report, progress, actions,
results CSV, do-not-call; viewers read but change nothing."""
import json
from urllib.parse import parse_qs, urlparse

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient
from django_tenants.utils import tenant_context

from apps.campaigns.models import Campaign, CampaignContact, DoNotCallEntry
from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401

HOST = {"HTTP_HOST": "acme.localhost"}
CSV = "phone_number,first_name\n+14155550100,Ada\nbad,Bob\n+14155550101,Eve\n"


def _create(client, setup, **changes):
    data = {"name": "Flu shots", "agent": setup["agent"].pk, "numbers": [n.pk for n in setup["numbers"]],
            "timezone": "America/New_York", "windows": json.dumps({"mon": [["09:00", "17:00"]]}),
            "max_concurrent": "3", "calls_per_second": "1", "retry_policy": "{}", "breaker_window": "20",
            "breaker_failure_ratio": "0.5", **changes}
    return client.post("/campaigns/", data, **HOST)


def test_a_client_admin_runs_a_campaign_from_the_portal(client, setup, acme_admin):  # noqa: F811
    client.force_login(acme_admin)
    refused = _create(client, setup, timezone="Atlantis/Lost")
    assert refused.status_code == 200
    assert refused.context["form"].errors == {
        "timezone": ["Unknown time zone 'Atlantis/Lost': use an IANA name such as Europe/Berlin."]}
    response = _create(client, setup)
    with tenant_context(setup["client"]):
        campaign = Campaign.objects.get()
    assert response["Location"] == f"/campaigns/{campaign.pk}/"
    upload = SimpleUploadedFile("leads.csv", CSV.encode(), content_type="text/csv")
    client.post(f"/campaigns/{campaign.pk}/upload/", {"file": upload}, **HOST)
    page = client.get(f"/campaigns/{campaign.pk}/", **HOST).content.decode()
    assert "2 of 3 rows imported. 1 rows had problems: download the error report." in page
    assert "0 of 2 contacts done (0 %) · 2 left" in page
    with tenant_context(setup["client"]):
        import_id = campaign.imports.get().pk
    report = client.get(f"/campaigns/{campaign.pk}/imports/{import_id}/errors.csv", **HOST)
    assert report.content.decode().splitlines() == [
        "row,phone_number,error", '3,bad,"\'bad\' is not a phone number (use E.164, e.g. +14155550100)."']
    client.post(f"/campaigns/{campaign.pk}/start/", **HOST)
    client.post(f"/campaigns/{campaign.pk}/pause/", {"reason": "Clinic closed"}, **HOST)
    page = client.get(f"/campaigns/{campaign.pk}/", **HOST).content.decode()
    assert '<span class="message warning" id="pause-reason">Clinic closed</span>' in page
    client.post(f"/campaigns/{campaign.pk}/cancel/", **HOST)
    results = client.get(f"/campaigns/{campaign.pk}/results.csv", **HOST).content.decode().splitlines()
    assert results[1:] == ["+14155550100,,done,cancelled,0,,,,Ada", "+14155550101,,done,cancelled,0,,,,Eve"]
    client.post("/campaigns/do-not-call/", {"number": "+14155550199", "reason": "asked by phone"}, **HOST)
    assert "+14155550199" in client.get("/campaigns/do-not-call/", **HOST).content.decode()


def test_a_viewer_reads_but_changes_nothing(client, setup, acme_viewer):  # noqa: F811
    client.force_login(acme_viewer)
    assert _create(client, setup).status_code == 403
    assert client.post("/campaigns/do-not-call/", {"number": "+14155550199"}, **HOST).status_code == 403
    assert client.get("/campaigns/", **HOST).status_code == 200
    with tenant_context(setup["client"]):
        assert (Campaign.objects.count(), DoNotCallEntry.objects.count()) == (0, 0)


def test_the_client_admin_creates_uploads_and_starts(setup, agency_owner):
    tenant = setup["client"]
    browser = HttpClient()
    browser.force_login(agency_owner)
    link = browser.get(f"/admin/tenancy/client/{tenant.pk}/open-admin/", HTTP_HOST="localhost")["Location"]
    token = parse_qs(urlparse(link).query)["token"][0]
    assert browser.get(f"/support/enter/?token={token}", **HOST)["Location"] == "/admin/"
    response = browser.post("/admin/campaigns/campaign/add/", {
        "name": "Admin made", "agent": setup["agent"].pk, "numbers": [setup["numbers"][0].pk], "timezone": "UTC",
        "windows": "{}", "max_concurrent": "2", "calls_per_second": "1", "retry_policy": "{}",
        "breaker_window": "10", "breaker_failure_ratio": "0.5"}, **HOST)
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_context(tenant):
        campaign = Campaign.objects.get(name="Admin made")
        assert list(campaign.numbers.values_list("number", flat=True)) == ["+15550001001"]
    upload = SimpleUploadedFile("c.csv", CSV.encode(), content_type="text/csv")
    page = browser.post(f"/admin/campaigns/campaign/{campaign.pk}/upload/", {"file": upload}, **HOST)
    assert "2 of 3 rows imported." in page.content.decode()
    browser.post("/admin/campaigns/campaign/", {"action": "start", "_selected_action": [campaign.pk]}, **HOST)
    with tenant_context(tenant):
        campaign.refresh_from_db()
        assert (campaign.status, CampaignContact.objects.filter(campaign=campaign).count()) == ("scheduled", 2)


def test_every_campaign_change_made_in_the_portal_is_in_the_audit_log(client, setup, acme_admin):  # noqa: F811
    from apps.tenancy.audit import audit_log_for_client

    client.force_login(acme_admin)
    _create(client, setup)
    with tenant_context(setup["client"]):
        campaign = Campaign.objects.get()
    upload = SimpleUploadedFile("leads.csv", CSV.encode(), content_type="text/csv")
    client.post(f"/campaigns/{campaign.pk}/upload/", {"file": upload}, **HOST)
    client.post(f"/campaigns/{campaign.pk}/start/", **HOST)
    client.post(f"/campaigns/{campaign.pk}/pause/", {"reason": "Clinic closed"}, **HOST)
    client.post(f"/campaigns/{campaign.pk}/resume/", **HOST)
    client.post(f"/campaigns/{campaign.pk}/cancel/", **HOST)
    client.post("/campaigns/do-not-call/", {"number": "+14155550199", "reason": "asked by phone"}, **HOST)

    rows = list(audit_log_for_client(client=setup["client"]).filter(event_type__startswith="campaign")
                .order_by("created_at", "id"))
    assert [row.event_type for row in rows] == [
        "campaign_created", "campaign_contacts_imported", "campaign_started", "campaign_paused", "campaign_resumed",
        "campaign_cancelled"]
    assert {row.actor_email for row in rows} == {acme_admin.email}
    assert {row.target_id for row in rows} == {str(campaign.pk)}
    assert rows[1].changes["rows_imported"]["after"] == 2 and rows[1].changes["rows_rejected"]["after"] == 1
    assert rows[3].changes["reason"]["after"] == "Clinic closed"
    assert rows[5].changes["status"] == {"before": "running", "after": "cancelled"}
    [listed] = audit_log_for_client(client=setup["client"], event_type="do_not_call_added")
    assert listed.changes["number"]["after"] == "+14155550199" and listed.actor_email == acme_admin.email
    # The client admin reads the same rows on the audit page.
    page = client.get("/audit/", **HOST)
    assert page.status_code == 200 and "Campaign paused" in page.content.decode()
