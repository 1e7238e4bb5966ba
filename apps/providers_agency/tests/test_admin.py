"""Agency admin: agency keys are added there, the key is masked in the list and never rendered back."""
from apps.providers_agency.models import AgencyProviderAccount

URL = "/admin/providers_agency/agencyprovideraccount/"


def test_agency_owner_adds_a_key_for_one_client_and_it_is_masked(client, agency_owner, tenant_a):
    client.force_login(agency_owner)
    response = client.post(f"{URL}add/", {
        "provider": "deepgram", "label": "Agency Deepgram", "api_key": "dg-agency-secret-9876", "base_url": "",
        "region": "", "secret": "", "max_concurrency": "5", "allowed_clients": [str(tenant_a.pk)], "is_active": "on",
    }, HTTP_HOST="localhost")
    assert response.status_code == 302
    account = AgencyProviderAccount.objects.get()
    assert (account.provider, account.api_key, account.max_concurrency, account.all_clients) == (
        "deepgram", "dg-agency-secret-9876", 5, False)
    assert list(account.allowed_clients.values_list("slug", flat=True)) == ["acme"]

    listing = client.get(URL, HTTP_HOST="localhost").content.decode()
    assert "…9876" in listing and "Acme Dental" in listing
    assert "dg-agency-secret-9876" not in listing
    change = client.get(f"{URL}{account.pk}/change/", HTTP_HOST="localhost").content.decode()
    assert "dg-agency-secret-9876" not in change

    # saving the change form with the key left blank keeps the stored key
    response = client.post(f"{URL}{account.pk}/change/", {
        "provider": "deepgram", "label": "Renamed", "api_key": "", "base_url": "", "region": "", "secret": "",
        "max_concurrency": "5", "all_clients": "on", "is_active": "on",
    }, HTTP_HOST="localhost")
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.label, account.api_key, account.all_clients) == ("Renamed", "dg-agency-secret-9876", True)


def test_a_key_is_required_for_a_vendor_that_needs_one(client, agency_owner):
    client.force_login(agency_owner)
    response = client.post(f"{URL}add/", {
        "provider": "deepgram", "label": "", "api_key": "", "base_url": "", "region": "", "secret": "",
        "max_concurrency": "0", "is_active": "on",
    }, HTTP_HOST="localhost")
    assert response.status_code == 200
    assert "Deepgram needs an API key." in response.content.decode()
    assert AgencyProviderAccount.objects.count() == 0


def test_agency_admin_refuses_a_base_url_that_is_not_http_and_a_huge_cap(client, agency_owner):
    client.force_login(agency_owner)
    response = client.post(f"{URL}add/", {
        "provider": "openai_compatible", "label": "Agency Groq", "api_key": "gsk-agency-1", "region": "", "secret": "",
        "base_url": "file:///etc/passwd", "max_concurrency": "99999999999", "all_clients": "on", "is_active": "on",
    }, HTTP_HOST="localhost")
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "base_url": ["The base URL must start with http:// or https://, not 'file'."],
        "max_concurrency": ["Concurrency must be between 0 (no cap) and 10,000."],
    }
    assert AgencyProviderAccount.objects.count() == 0
