"""Provider keys in the client admin are never written back into the page, and a
blank key field on edit keeps the stored key (the agency admin shares the form)."""
from django_tenants.utils import tenant_context

from apps.providers.admin import ProviderAccountForm
from apps.providers.models import ProviderAccount

STORED_KEY = "dg-secret-key-0123456789"


def _data(**overrides):
    return {"provider": "deepgram", "label": "main", "api_key": "", "base_url": "", "region": "", "secret": "",
            "max_concurrency": "5", "cooldown_until": "", "is_active": "on", **overrides}


def test_stored_key_is_not_rendered_and_blank_keeps_it(tenant_a):
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.create(provider="deepgram", label="main", api_key=STORED_KEY)
        assert STORED_KEY not in ProviderAccountForm(instance=account).as_p()

        form = ProviderAccountForm(data=_data(label="renamed"), instance=account)
        assert form.is_valid(), form.errors
        form.save()
        account.refresh_from_db()
        assert (account.label, account.api_key) == ("renamed", STORED_KEY)


def test_new_key_without_a_key_is_refused(tenant_a):
    with tenant_context(tenant_a):
        form = ProviderAccountForm(data=_data())
        assert not form.is_valid()
        assert form.errors["api_key"] == ["Deepgram needs an API key."]
        assert not ProviderAccount.objects.filter(label="main").exists()
