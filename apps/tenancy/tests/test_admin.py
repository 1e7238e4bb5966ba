"""Agency staff create, suspend and delete clients in the agency admin."""
from django_tenants.utils import schema_exists

from apps.accounts.models import User
from apps.tenancy.models import Client


def test_admin_creates_client_with_schema_domain_and_admin_user(client, agency_owner):
    client.force_login(agency_owner)
    response = client.post("/admin/tenancy/client/add/", {
        "name": "Umbrella Vet", "slug": "umbrella", "timezone": "Europe/London", "currency": "GBP",
        "domain": "", "admin_email": "boss@umbrella.test", "admin_password": "pw-123456789",
        "contact_name": "", "contact_email": "", "contact_phone": "", "billing_name": "", "billing_email": "",
        "billing_address": "", "tax_id": "",
    }, HTTP_HOST="localhost")
    assert response.status_code == 302, response.content[:2000]
    created = Client.objects.get(slug="umbrella")
    assert (created.name, str(created.timezone), created.currency, created.status) == (
        "Umbrella Vet", "Europe/London", "GBP", "active")
    assert schema_exists("umbrella")
    assert created.primary_domain_name == "umbrella.localhost"
    assert User.objects.get(email="boss@umbrella.test").client_id == created.pk


def test_admin_refuses_taken_slug_on_the_form(client, agency_owner, tenant_a):
    client.force_login(agency_owner)
    before = Client.objects.count()
    response = client.post("/admin/tenancy/client/add/", {
        "name": "Acme again", "slug": "acme", "timezone": "UTC", "currency": "USD",
    }, HTTP_HOST="localhost")
    assert response.status_code == 200
    assert b"already exists" in response.content
    assert Client.objects.count() == before


def test_admin_suspends_and_deletes_client(client, agency_owner):
    from apps.tenancy.services import client_create

    doomed, _, _ = client_create(slug="doomed", name="Doomed Co")
    client.force_login(agency_owner)
    response = client.post("/admin/tenancy/client/", {
        "action": "suspend_clients", "_selected_action": [doomed.pk]}, HTTP_HOST="localhost")
    assert response.status_code == 302
    doomed.refresh_from_db()
    assert doomed.status == "suspended"
    response = client.post(f"/admin/tenancy/client/{doomed.pk}/delete/", {"post": "yes"}, HTTP_HOST="localhost")
    assert response.status_code == 302
    assert not Client.objects.filter(slug="doomed").exists()
    assert not schema_exists("doomed")


def test_admin_refuses_taken_domain_on_the_form(client, agency_owner, tenant_a):
    client.force_login(agency_owner)
    before = Client.objects.count()
    response = client.post("/admin/tenancy/client/add/", {
        "name": "Copycat", "slug": "copycat", "domain": "acme.localhost", "timezone": "UTC", "currency": "USD",
    }, HTTP_HOST="localhost")
    assert response.status_code == 200
    assert b"The domain &#x27;acme.localhost&#x27; is already in use." in response.content
    assert Client.objects.count() == before and not schema_exists("copycat")
