"""Client portal: login on the client's own host, tenant isolation, audited
support access by agency staff, branding, suspension."""
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client as HttpClient

from apps.accounts.models import User
from apps.tenancy.models import AgencySettings, SupportAccessLog
from apps.tenancy.services import client_suspend, client_user_create
from apps.tenancy.tests.support import support_enter
from conftest import PASSWORD


@pytest.fixture
def http():
    return HttpClient()


def _login(http, host, email, password=PASSWORD):
    return http.post("/login/", {"username": email, "password": password}, HTTP_HOST=host)


def test_client_admin_logs_in_to_own_portal_and_sees_dashboard(http, tenant_a):
    response = _login(http, "acme.localhost", "admin@acme.test")
    assert response.status_code == 302 and response["Location"] == "/"
    dashboard = http.get("/", HTTP_HOST="acme.localhost")
    assert dashboard.status_code == 200
    assert b"Acme Dental" in dashboard.content


def test_client_user_cannot_log_in_to_another_clients_portal(http, tenant_a, tenant_b):
    response = _login(http, "globex.localhost", "admin@acme.test")
    assert response.status_code == 200  # the form again, with an error
    assert b"Please enter a correct" in response.content
    assert "_auth_user_id" not in http.session


def test_session_from_client_a_does_not_open_client_b(http, tenant_a, tenant_b):
    _login(http, "acme.localhost", "admin@acme.test")
    # Forge the session cookie onto B's host (cookies are per host in a browser;
    # the test client would send it anyway): B must still refuse it.
    response = http.get("/", HTTP_HOST="globex.localhost")
    assert response.status_code == 403


def test_anonymous_is_sent_to_login(http, tenant_a):
    response = http.get("/", HTTP_HOST="acme.localhost")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_agency_staff_cannot_use_the_portal_login_form(http, tenant_a, agency_owner):
    response = _login(http, "acme.localhost", agency_owner.email)
    assert b"Agency staff open a client" in response.content
    assert "_auth_user_id" not in http.session


def test_viewer_role_is_a_client_role(tenant_a):
    viewer = client_user_create(client=tenant_a, email="viewer@acme.test", password=PASSWORD)
    assert (viewer.role, viewer.is_staff, viewer.is_superuser) == (User.Role.CLIENT_VIEWER, False, False)
    assert viewer.can_access_client(tenant_a) and not viewer.can_edit_client_data(tenant_a)


def test_agency_staff_open_client_portal_with_an_audit_entry(http, tenant_a, agency_owner):
    http.force_login(agency_owner)
    response = http.get(f"/admin/tenancy/client/{tenant_a.pk}/open-portal/", HTTP_HOST="localhost")
    assert response.status_code == 302
    assert urlparse(response["Location"]).hostname == "acme.localhost"
    assert SupportAccessLog.objects.count() == 0

    staff_browser = HttpClient()  # a fresh cookie jar: the client host has its own session
    entered = support_enter(http, staff_browser, tenant_a)
    assert entered.status_code == 302 and entered["Location"] == "/"
    assert staff_browser.get("/", HTTP_HOST="acme.localhost").status_code == 200
    log = SupportAccessLog.objects.get()
    assert (log.staff_user_id, log.client_id, log.action) == (agency_owner.pk, tenant_a.pk, "open_portal")
    # The support session is for acme only.
    assert staff_browser.get("/", HTTP_HOST="globex.localhost").status_code in (302, 403)


def test_support_token_for_client_a_is_refused_on_client_b(http, tenant_a, tenant_b, agency_owner):
    http.force_login(agency_owner)
    response = http.get(f"/admin/tenancy/client/{tenant_a.pk}/open-admin/", HTTP_HOST="localhost")
    token = parse_qs(urlparse(response["Location"]).query)["token"][0]
    refused = HttpClient().get(f"/support/enter/?token={token}", HTTP_HOST="globex.localhost")
    assert refused.status_code == 403
    assert SupportAccessLog.objects.count() == 0


def test_tampered_support_token_is_refused(tenant_a):
    response = HttpClient().get("/support/enter/?token=forged", HTTP_HOST="acme.localhost")
    assert response.status_code == 403
    assert SupportAccessLog.objects.count() == 0


def test_client_admin_opens_only_through_support_link(tenant_a, agency_owner):
    browser = HttpClient()
    browser.force_login(agency_owner)
    # Logged in, but not through an audited support link: the client admin refuses.
    assert browser.get("/admin/", HTTP_HOST="acme.localhost").status_code == 302
    agency_browser = HttpClient()
    agency_browser.force_login(agency_owner)
    link = agency_browser.get(f"/admin/tenancy/client/{tenant_a.pk}/open-admin/", HTTP_HOST="localhost")["Location"]
    token = parse_qs(urlparse(link).query)["token"][0]
    entered = browser.get(f"/support/enter/?token={token}", HTTP_HOST="acme.localhost")
    assert entered["Location"] == "/admin/"
    page = browser.get("/admin/", HTTP_HOST="acme.localhost")
    assert page.status_code == 200 and b"acting as" in page.content


def test_suspended_client_portal_shows_clear_page(http, tenant_a):
    _login(http, "acme.localhost", "admin@acme.test")
    client_suspend(client=tenant_a, reason="Invoice overdue")
    response = http.get("/", HTTP_HOST="acme.localhost")
    assert response.status_code == 403
    assert b"This account is suspended" in response.content and b"Invoice overdue" in response.content


def test_unknown_host_gets_clear_404(http, db):
    response = http.get("/", HTTP_HOST="nobody.localhost")
    assert response.status_code == 404
    assert b"No client lives at nobody.localhost" in response.content


def test_portal_pages_carry_agency_branding(http, tenant_a):
    AgencySettings.objects.filter(pk=1).update(name="Brandwell Voice", primary_color="#ff6600")
    response = http.get("/login/", HTTP_HOST="acme.localhost")
    assert b"Brandwell Voice" in response.content and b"--brand: #ff6600" in response.content


def test_agency_admin_lists_and_creates_clients(http, agency_owner, tenant_a):
    http.force_login(agency_owner)
    listing = http.get("/admin/tenancy/client/", HTTP_HOST="localhost")
    assert listing.status_code == 200
    assert b"Acme Dental" in listing.content and b"Globex Plumbing" in listing.content
