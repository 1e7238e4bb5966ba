"""Support tickets are single-use and work only for the staff user they were
issued to (apps/tenancy/services.py, "support access")."""
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client as HttpClient

from apps.accounts.models import User
from apps.tenancy.models import SupportAccessLog
from apps.tenancy.services import SUPPORT_BINDING_COOKIE
from apps.tenancy.tests.support import _local, support_enter, support_ticket_link
from conftest import PASSWORD


@pytest.fixture
def agency_staff(db):
    user = User(username="staff@agency.test", email="staff@agency.test", role=User.Role.AGENCY_STAFF)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def owner_browser(agency_owner):
    browser = HttpClient()
    browser.force_login(agency_owner)
    return browser


def _hops(agency_browser, client_browser, tenant):
    """Hops 0-2; returns the final client-host URL (path + query) holding the proof."""
    host, path = _local(support_ticket_link(agency_browser, tenant))
    to_agency = client_browser.get(path, HTTP_HOST=host)
    back = agency_browser.get(_local(to_agency["Location"])[1], HTTP_HOST="localhost")
    assert back.status_code == 302
    return _local(back["Location"])[1]


def test_a_ticket_enters_once_and_logs_once(owner_browser, agency_owner, tenant_a):
    staff_browser = HttpClient()
    entered = support_enter(owner_browser, staff_browser, tenant_a)
    assert (entered.status_code, entered["Location"]) == (302, "/")
    assert staff_browser.get("/", HTTP_HOST="acme.localhost").status_code == 200
    [log] = SupportAccessLog.objects.all()
    assert (log.staff_user_id, log.client_id, log.action, len(log.ticket_id)) == (
        agency_owner.pk, tenant_a.pk, "open_portal", 24)


def test_the_same_link_again_is_refused_in_the_same_and_in_another_browser(owner_browser, tenant_a):
    staff_browser = HttpClient()
    final = _hops(owner_browser, staff_browser, tenant_a)
    first = staff_browser.get(final, HTTP_HOST="acme.localhost")
    assert first.status_code == 302
    log_ids = list(SupportAccessLog.objects.values_list("pk", flat=True))

    again = staff_browser.get(final, HTTP_HOST="acme.localhost")  # logged in as the ticket's user, still refused
    assert again.status_code == 403 and b"already used" in again.content
    other = HttpClient()
    other.cookies[SUPPORT_BINDING_COOKIE] = staff_browser.cookies.get(SUPPORT_BINDING_COOKIE, "x")
    assert other.get(final, HTTP_HOST="acme.localhost").status_code == 403
    assert list(SupportAccessLog.objects.values_list("pk", flat=True)) == log_ids


def test_the_first_link_replayed_after_use_is_refused_before_any_hop(owner_browser, tenant_a):
    link = support_ticket_link(owner_browser, tenant_a)
    host, path = _local(link)
    staff_browser = HttpClient()
    to_agency = staff_browser.get(path, HTTP_HOST=host)
    back = owner_browser.get(_local(to_agency["Location"])[1], HTTP_HOST="localhost")
    assert staff_browser.get(_local(back["Location"])[1], HTTP_HOST=host).status_code == 302
    replay = HttpClient().get(path, HTTP_HOST=host)
    assert replay.status_code == 403 and b"already used" in replay.content
    assert SupportAccessLog.objects.count() == 1


def test_a_copied_final_link_without_the_binding_cookie_is_refused(owner_browser, tenant_a):
    final = _hops(owner_browser, HttpClient(), tenant_a)
    thief = HttpClient()
    response = thief.get(final, HTTP_HOST="acme.localhost")
    assert response.status_code == 403 and b"same browser" in response.content
    assert "_auth_user_id" not in thief.session
    assert SupportAccessLog.objects.count() == 0


def test_a_copied_first_link_ends_at_the_agency_login_of_another_browser(owner_browser, tenant_a):
    host, path = _local(support_ticket_link(owner_browser, tenant_a))
    thief = HttpClient()
    to_agency = thief.get(path, HTTP_HOST=host)
    assert to_agency.status_code == 302
    confirm = thief.get(_local(to_agency["Location"])[1], HTTP_HOST="localhost")
    assert confirm.status_code == 302 and confirm["Location"].startswith("/admin/login/")
    assert SupportAccessLog.objects.count() == 0


def test_a_ticket_for_user_a_is_refused_in_a_session_of_user_b(owner_browser, agency_staff, tenant_a):
    host, path = _local(support_ticket_link(owner_browser, tenant_a))
    # B logged in on the client host: refused outright.
    b_browser = HttpClient()
    b_browser.force_login(agency_staff)
    refused = b_browser.get(path, HTTP_HOST=host)
    assert refused.status_code == 403 and b"issued to another user" in refused.content
    assert int(b_browser.session["_auth_user_id"]) == agency_staff.pk
    # B anonymous on the client host but logged in on the agency host: refused at the agency hop.
    b_agency = HttpClient()
    b_agency.force_login(agency_staff)
    anonymous = HttpClient()
    to_agency = anonymous.get(path, HTTP_HOST=host)
    confirm = b_agency.get(_local(to_agency["Location"])[1], HTTP_HOST="localhost")
    assert confirm.status_code == 403 and b"issued to another user" in confirm.content
    # A client admin's portal session cannot be swapped for the staff user either.
    admin_browser = HttpClient()
    assert admin_browser.post("/login/", {"username": "admin@acme.test", "password": PASSWORD},
                              HTTP_HOST="acme.localhost").status_code == 302
    assert admin_browser.get(path, HTTP_HOST=host).status_code == 403
    assert SupportAccessLog.objects.count() == 0


def test_a_proof_for_one_ticket_does_not_redeem_another(owner_browser, tenant_a):
    staff_browser = HttpClient()
    final_one = _hops(owner_browser, staff_browser, tenant_a)
    proof_one = parse_qs(urlparse(final_one).query)["proof"][0]
    token_two = parse_qs(urlparse(support_ticket_link(owner_browser, tenant_a)).query)["token"][0]
    response = staff_browser.get("/support/enter/", {"token": token_two, "proof": proof_one},
                                 HTTP_HOST="acme.localhost")
    assert response.status_code == 403
    assert SupportAccessLog.objects.count() == 0
