"""White-label per client: a client's portal shows the name, logo and colour the agency set for that
client, else the agency's; a colour that could break out of the page's <style> is refused."""
import pytest
from django.core.exceptions import ValidationError

from apps.tenancy.models import AgencySettings, Client

ACME = {"HTTP_HOST": "acme.localhost"}


@pytest.fixture
def agency_brand(db):
    agency = AgencySettings.load()
    agency.name, agency.primary_color, agency.logo_url = "Northwind Voice", "#112233", "https://assets.northwind.test/l.png"
    agency.save()
    return agency


def test_client_portal_uses_its_own_brand(client, acme_viewer, tenant_a, tenant_b, agency_brand):
    Client.objects.filter(pk=tenant_a.pk).update(portal_name="Acme Assist", brand_color="#0f766e",
                                                 brand_logo_url="https://acme.test/logo.svg")
    client.force_login(acme_viewer)
    page = client.get("/", **ACME).content.decode()
    assert "--brand: #0f766e;" in page
    assert '<span class="agency-name">Acme Assist</span>' in page
    assert '<img src="https://acme.test/logo.svg" alt="Acme Assist" class="logo">' in page
    assert "Northwind Voice" not in page  # white-label: the agency's name is not on this client's portal

    login = client.get("/login/", HTTP_HOST="globex.localhost").content.decode()  # no brand of its own
    assert "--brand: #112233;" in login and "Northwind Voice" in login


def test_client_without_brand_falls_back_to_the_agency(client, acme_viewer, agency_brand):
    client.force_login(acme_viewer)
    page = client.get("/", **ACME).content.decode()
    assert "--brand: #112233;" in page
    assert '<span class="agency-name">Northwind Voice</span>' in page
    assert '<img src="https://assets.northwind.test/l.png" alt="Northwind Voice" class="logo">' in page


def test_branding_set_in_the_agency_admin(client, agency_owner, tenant_a):
    client.force_login(agency_owner)
    form = client.get(f"/admin/tenancy/client/{tenant_a.pk}/change/", HTTP_HOST="localhost").content.decode()
    assert 'name="portal_name"' in form and 'name="brand_color"' in form


@pytest.mark.parametrize("color", ["red", "#12345", "#0f766e;}body{display:none", "#GGGGGG"])
def test_colour_that_is_not_hex_is_refused(tenant_a, color):
    tenant_a.brand_color = color
    with pytest.raises(ValidationError) as error:
        tenant_a.full_clean(exclude=["schema_name", "domain_url"])
    assert "Use a hex colour such as #4f46e5." in error.value.message_dict["brand_color"]
    assert Client.objects.get(pk=tenant_a.pk).brand_color == ""
