"""Hostile provider-key input is refused with a message under its field, through
every door (portal, client admin, the service), and nothing is saved."""
import pytest
from django_tenants.utils import tenant_context

from apps.core.errors import ApplicationError
from apps.providers.admin import ProviderAccountForm
from apps.providers.models import ProviderAccount
from apps.providers.services import provider_account_create

HOST = {"HTTP_HOST": "acme.localhost"}
ADD = {"provider": "openai_compatible", "label": "Local", "api_key": "sk-local-1234", "base_url": "http://ollama:11434/v1",
       "region": "", "secret": "", "max_concurrency": "3"}

NOT_HTTP = [
    ("file:///etc/passwd", "The base URL must start with http:// or https://, not 'file'."),
    ("javascript:alert(1)", "The base URL must start with http:// or https://, not 'javascript'."),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "The base URL must start with http:// or https://, not 'gopher'."),
    ("api.groq.com/openai/v1", "The base URL must start with http:// or https://."),
    ("http:///v1", "The base URL needs a host, e.g. https://api.example.com/v1."),
    ("http://127.0.0.1:99999/v1", "'http://127.0.0.1:99999/v1' is not a valid URL."),
    ("http://user:pw@evil.example/v1", "Put credentials in the key fields, not in the base URL."),
    ("http://a b/v1", "The base URL must not contain spaces or control characters."),
]


@pytest.mark.parametrize(("base_url", "message"), NOT_HTTP)
def test_portal_refuses_a_base_url_that_is_not_http(client, tenant_a, acme_admin, base_url, message):
    client.force_login(acme_admin)
    response = client.post("/providers/add/", {**ADD, "base_url": base_url}, **HOST)
    assert response.status_code == 200
    assert response.context["form"].errors == {"base_url": [message]}
    with tenant_context(tenant_a):
        assert ProviderAccount.objects.count() == 0


@pytest.mark.parametrize(("value", "status", "errors"), [
    ("99999999999", 200, {"max_concurrency": ["Concurrency must be between 0 (no cap) and 10,000."]}),
    ("10001", 200, {"max_concurrency": ["Concurrency must be between 0 (no cap) and 10,000."]}),
    ("-1", 200, {"max_concurrency": ["Ensure this value is greater than or equal to 0."]}),
])
def test_portal_refuses_concurrency_out_of_range(client, tenant_a, acme_admin, value, status, errors):
    client.force_login(acme_admin)
    response = client.post("/providers/add/", {**ADD, "max_concurrency": value}, **HOST)
    assert response.status_code == status
    assert response.context["form"].errors == errors
    with tenant_context(tenant_a):
        assert ProviderAccount.objects.count() == 0


def test_portal_accepts_a_host_without_a_dot(client, tenant_a, acme_admin):
    client.force_login(acme_admin)
    assert client.post("/providers/add/", {**ADD, "max_concurrency": "10000"}, **HOST).status_code == 302
    with tenant_context(tenant_a):
        assert list(ProviderAccount.objects.values_list("base_url", "max_concurrency")) == [
            ("http://ollama:11434/v1", 10000)]


def test_the_service_refuses_what_the_form_would(tenant_a):
    with tenant_context(tenant_a):
        with pytest.raises(ApplicationError) as error:
            provider_account_create(provider="deepgram", api_key="k", base_url="ftp://dg.example/", max_concurrency=2**40)
        assert error.value.details == {
            "base_url": "The base URL must start with http:// or https://, not 'ftp'.",
            "max_concurrency": "Concurrency must be between 0 (no cap) and 10,000."}
        assert ProviderAccount.objects.count() == 0


def _admin_data(**overrides):
    return {"provider": "openai_compatible", "label": "Local", "api_key": "sk-1", "base_url": "http://ollama:11434/v1",
            "region": "", "secret": "", "max_concurrency": "5", "cooldown_until": "", "is_active": "on", **overrides}


@pytest.mark.parametrize(("overrides", "errors"), [
    ({"base_url": "file:///etc/passwd"}, {"base_url": ["The base URL must start with http:// or https://, not 'file'."]}),
    ({"max_concurrency": "3000000000"}, {"max_concurrency": ["Concurrency must be between 0 (no cap) and 10,000."]}),
    ({"max_concurrency": "20000"}, {"max_concurrency": ["Concurrency must be between 0 (no cap) and 10,000."]}),
    ({"base_url": ""}, {"base_url": ["OpenAI-compatible server needs a base URL / endpoint."]}),
])
def test_client_admin_refuses_hostile_keys(tenant_a, overrides, errors):
    with tenant_context(tenant_a):
        form = ProviderAccountForm(data=_admin_data(**overrides))
        assert form.errors == errors
        assert ProviderAccount.objects.count() == 0


def test_client_admin_refuses_a_hostile_base_url_on_edit_and_keeps_the_old_one(tenant_a):
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.create(provider="openai_compatible", api_key="sk-1",
                                                 base_url="https://api.groq.com/openai/v1")
        form = ProviderAccountForm(data=_admin_data(base_url="javascript:alert(1)"), instance=account)
        assert not form.is_valid()
        account.refresh_from_db()
        assert account.base_url == "https://api.groq.com/openai/v1"
