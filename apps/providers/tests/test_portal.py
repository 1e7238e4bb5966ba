"""Portal provider-key pages: admins add and disable keys, the key is never shown
back (last 4 only), viewers read only."""
from django_tenants.utils import schema_context, tenant_context

from apps.providers.models import ProviderAccount
from apps.providers_agency.models import AgencyProviderAccount

HOST = {"HTTP_HOST": "acme.localhost"}
ADD = {"provider": "deepgram", "label": "Main", "api_key": "dg-live-secret-4321", "base_url": "", "region": "",
       "secret": "", "max_concurrency": "3"}


def test_admin_adds_a_key_and_sees_only_its_last_4(client, tenant_a, acme_admin):
    client.force_login(acme_admin)
    response = client.post("/providers/add/", ADD, **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.get()
        assert (account.provider, account.label, account.api_key, account.max_concurrency, account.is_active) == (
            "deepgram", "Main", "dg-live-secret-4321", 3, True)
    listing = client.get("/providers/", **HOST).content.decode()
    assert "…4321" in listing
    assert "dg-live-secret-4321" not in listing


def test_refused_key_is_not_echoed_back_and_nothing_is_saved(client, tenant_a, acme_admin):
    client.force_login(acme_admin)
    response = client.post("/providers/add/", {**ADD, "provider": "openai_compatible",
                                               "api_key": "sk-local-secret-9999"}, **HOST)
    assert response.status_code == 200
    assert response.context["form"].errors == {"base_url": ["OpenAI-compatible server needs a base URL / endpoint."]}
    assert "sk-local-secret-9999" not in response.content.decode()
    with tenant_context(tenant_a):
        assert ProviderAccount.objects.count() == 0


def test_admin_disables_a_key(client, tenant_a, acme_admin):
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.create(provider="deepgram", api_key="dg-1234")
    client.force_login(acme_admin)
    response = client.post(f"/providers/{account.pk}/disable/", **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        account.refresh_from_db()
        assert account.is_active is False


def test_viewer_sees_the_list_and_gets_403_on_post(client, tenant_a, acme_viewer):
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.create(provider="deepgram", api_key="dg-1234")
    with schema_context("public"):
        AgencyProviderAccount.objects.create(provider="cartesia", label="Agency Cartesia", api_key="agency-cart-7777",
                                             all_clients=True)
    client.force_login(acme_viewer)
    listing = client.get("/providers/", **HOST).content.decode()
    assert "…1234" in listing and "Agency Cartesia" in listing
    assert "agency-cart-7777" not in listing and "7777" not in listing
    assert "/providers/add/" not in listing
    assert client.post("/providers/add/", ADD, **HOST).status_code == 403
    assert client.post(f"/providers/{account.pk}/disable/", **HOST).status_code == 403
    with tenant_context(tenant_a):
        assert list(ProviderAccount.objects.values_list("provider", "is_active")) == [("deepgram", True)]
