"""Login throttling (django-axes) at its real limit, on the portal login and the
agency admin login: the pair (username, IP) is locked out with a clear 429 page,
even for the right password, and nobody else is."""
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client as HttpClient

from apps.portal.tests.fixtures import acme_viewer  # noqa: F401
from config.settings import base
from conftest import PASSWORD


@pytest.fixture(autouse=True)
def real_limit(settings):
    settings.AXES_FAILURE_LIMIT = base.AXES_FAILURE_LIMIT
    assert settings.AXES_FAILURE_LIMIT == 5
    return settings.AXES_FAILURE_LIMIT


def _portal_login(browser, username, password):
    return browser.post("/login/", {"username": username, "password": password}, HTTP_HOST="acme.localhost")


def test_the_portal_locks_a_username_after_five_failures(tenant_a, acme_viewer):  # noqa: F811
    browser = HttpClient()
    statuses = [_portal_login(browser, "admin@acme.test", "wrong").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    locked = _portal_login(browser, "admin@acme.test", PASSWORD)
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content and b"Try again in 15 minutes" in locked.content
    assert "_auth_user_id" not in browser.session
    # Another user from the same address is not locked out.
    assert _portal_login(HttpClient(), "viewer@acme.test", PASSWORD).status_code == 302


def test_the_lock_lifts_after_the_cool_off(tenant_a):
    browser = HttpClient()
    for _ in range(5):
        _portal_login(browser, "admin@acme.test", "wrong")
    assert _portal_login(browser, "admin@acme.test", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))
    assert _portal_login(browser, "admin@acme.test", PASSWORD).status_code == 302


def test_the_agency_admin_login_locks_too(agency_owner):
    browser = HttpClient()
    for _ in range(4):
        response = browser.post("/admin/login/", {"username": agency_owner.username, "password": "wrong"},
                                HTTP_HOST="localhost")
        assert response.status_code == 200
    assert browser.post("/admin/login/", {"username": agency_owner.username, "password": "wrong"},
                        HTTP_HOST="localhost").status_code == 429
    locked = browser.post("/admin/login/?next=/admin/", {"username": agency_owner.username, "password": PASSWORD},
                          HTTP_HOST="localhost")
    assert locked.status_code == 429 and b"Too many failed logins" in locked.content
    assert browser.get("/admin/", HTTP_HOST="localhost").status_code == 302  # still not logged in


def test_a_success_before_the_limit_resets_the_count(tenant_a):
    browser = HttpClient()
    for _ in range(4):
        _portal_login(browser, "admin@acme.test", "wrong")
    assert _portal_login(browser, "admin@acme.test", PASSWORD).status_code == 302
    browser.post("/logout/", HTTP_HOST="acme.localhost")
    for _ in range(4):
        assert _portal_login(browser, "admin@acme.test", "wrong").status_code == 200


def test_a_login_without_a_request_is_not_throttled_but_still_checked(tenant_a):
    from django.contrib.auth import authenticate

    assert authenticate(username="admin@acme.test", password=PASSWORD).email == "admin@acme.test"
    assert authenticate(username="admin@acme.test", password="wrong") is None
    assert AccessAttempt.objects.count() == 0
