"""Junk at the API door is a 4xx with a message, never a 500: numbers past
bigint, page sizes past the cap, NUL bytes in the query or inside JSON strings."""
import pytest
from django_tenants.utils import tenant_context

from apps.api.services import api_key_create
from apps.calls.models import Call

ACME = "acme.localhost"
HUGE = "9" * 25  # past bigint (9223372036854775807)


@pytest.fixture
def auth(tenant_a):
    with tenant_context(tenant_a):
        token = api_key_create(name="fuzz")[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_HOST": ACME}


@pytest.mark.parametrize("query, status", [
    (f"offset={HUGE}", 400),
    ("offset=9223372036854775808", 400),
    (f"limit={HUGE}", 422),
    ("limit=1001", 422),
    ("limit=0", 422),
    ("offset=-1", 422),
    ("offset=1e400", 422),
    ("status=%00", 400),
    ("since=%00", 400),
    ("direction=in%00bound", 400),
    ("x%00y=1", 400),
])
def test_bad_query_values_are_4xx(client, auth, query, status):
    response = client.get(f"/api/v1/calls?{query}", **auth)
    assert response.status_code == status, response.content
    if status == 400:
        assert set(response.json()) == {"error", "details"}


@pytest.mark.parametrize("debug", [False, True])
def test_past_bigint_is_400_with_or_without_debug(client, auth, settings, debug):
    settings.DEBUG = debug
    response = client.get(f"/api/v1/calls?offset={HUGE}", **auth)
    assert (response.status_code, response.json()) == (400, {
        "error": "A value in the request is out of range or not valid (e.g. a number too large); check it and try again.",
        "details": {}})


def test_the_biggest_offset_bigint_holds_is_an_empty_page(client, auth):
    response = client.get("/api/v1/calls?offset=9223372036854775807&limit=1000", **auth)
    assert (response.status_code, response.json()) == (200, {"items": [], "count": 0})


def test_a_nul_in_a_path_is_400(client, auth):
    assert client.get("/api/v1/calls/%00", **auth).status_code == 400


@pytest.mark.parametrize("field", ["to", "from_number", "idempotency_key"])
def test_a_nul_inside_json_strings_is_400_and_dials_nothing(client, tenant_a, auth, acme_number, twilio_double, field):
    payload = {"to": "+15557770000", "from_number": "+15550001000", "idempotency_key": "k-1"}
    payload[field] = payload[field][:5] + "\x00" + payload[field][5:]
    response = client.post("/api/v1/calls/outbound", payload, content_type="application/json", **auth)
    assert response.status_code in (400, 404, 422), response.content
    assert "error" in response.json() or "detail" in response.json()
    assert twilio_double.requests == []
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0


def test_an_agent_id_past_bigint_is_refused(client, tenant_a, auth, acme_number, twilio_double):
    payload = {"to": "+15557770000", "from_number": "+15550001000", "idempotency_key": "k-2", "agent_id": int(HUGE)}
    response = client.post("/api/v1/calls/outbound", payload, content_type="application/json", **auth)
    assert response.status_code in (400, 404, 422)
    assert twilio_double.requests == []
