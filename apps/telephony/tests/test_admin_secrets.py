"""The client admin never writes a carrier auth token back into its HTML; saving
the change form with the token left blank keeps the stored token."""
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client as HttpClient
from django_tenants.utils import tenant_context

from apps.telephony.models import PhoneNumber
from apps.telephony.tests.conftest import TWILIO_SID, TWILIO_TOKEN

HOST = {"HTTP_HOST": "acme.localhost"}


@pytest.fixture
def client_admin(tenant_a, agency_owner):
    """A browser in Acme's client admin, entered through the audited support link."""
    browser = HttpClient()
    browser.force_login(agency_owner)
    link = browser.get(f"/admin/tenancy/client/{tenant_a.pk}/open-admin/", HTTP_HOST="localhost")["Location"]
    token = parse_qs(urlparse(link).query)["token"][0]
    assert browser.get(f"/support/enter/?token={token}", **HOST)["Location"] == "/admin/"
    return browser


def _form(phone, **changes):
    return {"number": phone.number, "label": "Front desk", "agent": str(phone.agent_id), "carrier": "twilio",
            "account_sid": TWILIO_SID, "auth_token": "", "webhook_public_key": "", "is_active": "on", **changes}


def test_the_change_page_does_not_contain_the_token_and_blank_keeps_it(tenant_a, acme_number, client_admin):
    url = f"/admin/telephony/phonenumber/{acme_number.pk}/change/"
    page = client_admin.get(url, **HOST)
    assert page.status_code == 200
    html = page.content.decode()
    assert TWILIO_SID in html  # the page did render the number's carrier fields
    assert TWILIO_TOKEN not in html

    response = client_admin.post(url, _form(acme_number), **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        acme_number.refresh_from_db()
        assert (acme_number.label, acme_number.auth_token) == ("Front desk", TWILIO_TOKEN)

    response = client_admin.post(url, _form(acme_number, auth_token="rotated-token-0042"), **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        acme_number.refresh_from_db()
        assert acme_number.auth_token == "rotated-token-0042"
    assert "rotated-token-0042" not in client_admin.get(url, **HOST).content.decode()


def test_a_new_number_keeps_the_token_it_was_given(tenant_a, acme_number, client_admin):
    response = client_admin.post("/admin/telephony/phonenumber/add/", _form(
        acme_number, number="+15550007777", auth_token="fresh-token-7777"), **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert PhoneNumber.objects.get(number="+15550007777").auth_token == "fresh-token-7777"
