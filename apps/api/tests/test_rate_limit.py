"""Per-API-key rate limit: past API_RATE_LIMIT requests in a window, 429 with
Retry-After (seconds to the window's end, rounded up); other keys and the next
window are unaffected."""
import pytest
from django_tenants.utils import tenant_context

from apps.api import throttle
from apps.api.models import ApiKey
from apps.api.services import api_key_create

ACME = "acme.localhost"


@pytest.fixture
def limited(settings, monkeypatch):
    settings.API_RATE_LIMIT = 3
    settings.API_RATE_LIMIT_WINDOW_SECS = 60
    clock = {"now": 1_800_000_010.25}  # 10.25 s into a 60 s window starting at 1_800_000_000
    monkeypatch.setattr(throttle, "_now", lambda: clock["now"])
    _clear()
    yield clock
    _clear()


def _clear():
    redis = throttle._redis()
    for name in redis.scan_iter("api-rate:*"):
        redis.delete(name)


def _get(client, token):
    return client.get("/api/v1/agents", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST=ACME)


def test_past_the_limit_a_key_gets_429_with_retry_after(client, tenant_a, limited):
    with tenant_context(tenant_a):
        _, token = api_key_create(name="busy")
        _, other_token = api_key_create(name="quiet")
    assert [_get(client, token).status_code for _ in range(3)] == [200, 200, 200]
    refused = _get(client, token)
    assert (refused.status_code, refused["Retry-After"], refused.json()) == (429, "50", {"detail": "Too many requests."})
    limited["now"] += 9.5  # 19.75 s into the window
    assert _get(client, token)["Retry-After"] == "41"
    # Another key of the same client has its own count.
    assert _get(client, other_token).status_code == 200
    # The next window starts afresh.
    limited["now"] = 1_800_000_060.0
    assert _get(client, token).status_code == 200


def test_the_count_is_per_key_in_redis(client, tenant_a, limited):
    with tenant_context(tenant_a):
        key, token = api_key_create(name="counted")
    _get(client, token)
    _get(client, token)
    name = throttle.api_rate_key(schema_name="acme", key_id=key.pk, window_start=1_800_000_000)
    assert int(throttle._redis().get(name)) == 2
    assert 0 < throttle._redis().ttl(name) <= 61
    with tenant_context(tenant_a):
        assert ApiKey.objects.filter(pk=key.pk).exists()


def test_bad_keys_are_401_not_counted(client, tenant_a, limited):
    for _ in range(5):
        response = client.get("/api/v1/agents", HTTP_AUTHORIZATION="Bearer sb_wrong", HTTP_HOST=ACME)
        assert response.status_code == 401
    assert list(throttle._redis().scan_iter("api-rate:*")) == []
