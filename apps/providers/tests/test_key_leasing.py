"""Several keys per provider: rotation, skip at concurrency cap, skip while rate-limited."""
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.core.crypto import decrypt
from apps.core.errors import ProviderError
from apps.providers.models import ProviderAccount
from apps.providers.services import (
    provider_key_in_use,
    provider_key_lease,
    provider_key_mark_rate_limited,
    provider_key_release,
)


def test_api_key_is_encrypted_at_rest(tenant_a):
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.create(provider="deepgram", api_key="dg-secret-1")
        with connection.cursor() as cursor:
            cursor.execute("SELECT api_key FROM providers_provideraccount WHERE id = %s", [account.pk])
            stored = cursor.fetchone()[0]
        assert stored != "dg-secret-1"
        assert decrypt(stored) == "dg-secret-1"
        assert ProviderAccount.objects.get(pk=account.pk).api_key == "dg-secret-1"


def test_calls_rotate_across_keys(tenant_a, clean_leases):
    with tenant_context(tenant_a):
        first = ProviderAccount.objects.create(provider="deepgram", api_key="k1")
        second = ProviderAccount.objects.create(provider="deepgram", api_key="k2")
        served = [provider_key_lease(provider="deepgram", call_id=f"call-{n}").pk for n in range(4)]
        assert served == [first.pk, second.pk, first.pk, second.pk]


def test_key_at_its_cap_is_skipped_and_freed_on_release(tenant_a, clean_leases):
    with tenant_context(tenant_a):
        capped = ProviderAccount.objects.create(provider="cartesia", api_key="k1", max_concurrency=1)
        other = ProviderAccount.objects.create(provider="cartesia", api_key="k2", max_concurrency=5)
        assert provider_key_lease(provider="cartesia", call_id="a").pk == capped.pk
        # rotation would pick `other` next anyway; the third call proves the skip
        assert provider_key_lease(provider="cartesia", call_id="b").pk == other.pk
        assert provider_key_lease(provider="cartesia", call_id="c").pk == other.pk  # capped is full
        assert provider_key_in_use(account=capped) == 1
        assert provider_key_in_use(account=other) == 2
        provider_key_release(account_id=capped.pk, call_id="a")
        assert provider_key_in_use(account=capped) == 0
        # rotation resumes where it was; the freed key serves again
        served = [provider_key_lease(provider="cartesia", call_id=call).pk for call in ("d", "e")]
        assert served == [other.pk, capped.pk]


def test_every_key_busy_is_a_retryable_error(tenant_a, clean_leases):
    with tenant_context(tenant_a):
        ProviderAccount.objects.create(provider="elevenlabs", api_key="k1", max_concurrency=1)
        provider_key_lease(provider="elevenlabs", call_id="a")
        with pytest.raises(ProviderError) as error:
            provider_key_lease(provider="elevenlabs", call_id="b")
        assert error.value.retryable is True
        assert error.value.message == "Every elevenlabs key is busy or rate-limited; try again shortly."


def test_rate_limited_key_is_skipped_until_cooldown_ends(tenant_a, clean_leases):
    with tenant_context(tenant_a):
        limited = ProviderAccount.objects.create(provider="openai", api_key="k1")
        healthy = ProviderAccount.objects.create(provider="openai", api_key="k2")
        provider_key_mark_rate_limited(account_id=limited.pk, cooldown_secs=60)
        served = [provider_key_lease(provider="openai", call_id=f"c{n}").pk for n in range(3)]
        assert served == [healthy.pk, healthy.pk, healthy.pk]
        ProviderAccount.objects.filter(pk=limited.pk).update(cooldown_until=timezone.now() - timedelta(seconds=1))
        served = {provider_key_lease(provider="openai", call_id=f"d{n}").pk for n in range(2)}
        assert served == {limited.pk, healthy.pk}


def test_no_key_at_all_is_terminal(tenant_a, clean_leases):
    with tenant_context(tenant_a):
        with pytest.raises(ProviderError) as error:
            provider_key_lease(provider="gemini", call_id="a")
        assert error.value.retryable is False


def test_concurrent_leases_never_exceed_the_cap(tenant_a, clean_leases):
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.create(provider="deepgram", api_key="k1", max_concurrency=3)
        accounts = [account]

    from apps.providers import services

    def lease(n):
        # the lease book is Redis-only; emulate the DB read each call would make
        connection_schema = tenant_a.schema_name
        key = f"sb:provider-lease:{connection_schema}:{accounts[0].pk}"
        script = services._redis().register_script(services._LEASE_SCRIPT)
        import time

        return script(keys=[key], args=[time.time(), time.time() + 600, f"call-{n}", 3, 600])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lease, range(20)))
    assert sum(results) == 3
    with tenant_context(tenant_a):
        assert provider_key_in_use(account=account) == 3
