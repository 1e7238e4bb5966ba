"""Every client-host URL that names an object, requested by client A's admin with
client B's object ids, answers 403/404 and never shows B's data. The test walks
the tenant urlconf, so a new view with an id in its URL is covered (or this test
fails and asks for an object to try)."""
import re
import uuid
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client as HttpClient
from django.urls import URLPattern, URLResolver, get_resolver
from django_tenants.utils import tenant_context

from apps.accounts.services import invite_link_path
from apps.agents.models import HttpTool, McpServer
from apps.api.services import api_key_create
from apps.billing.services import rate_card_create
from apps.billing.services.invoices import invoice_finalize, invoice_generate
from apps.calls.services import call_create_inbound, call_recording_save
from apps.clips.services import clip_create
from apps.providers.models import ProviderAccount
from apps.telephony.models import PhoneNumber
from apps.telephony.tests.conftest import make_agent
from apps.tenancy.services import client_user_create
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.services import webhook_endpoint_create, webhook_event_emit
from conftest import PASSWORD

# Routes whose id is checked by something other than a portal session.
NOT_PORTAL = {
    "telephony/twilio/status/<uuid:call_id>/",  # carrier callback: Twilio signature, tested in apps/telephony
    "api/v1/calls/<uuidstr:call_id>",  # API key auth, tested in apps/api
    "api/v1/calls/<uuidstr:call_id>/recording",  # likewise
    # A signed, expiring link handed to the client's systems (no session): tested in apps/quality/tests.
    "webhooks/recordings/<str:token>/recording.wav",
    "api/v1/agents/<int:agent_id>/export",  # API key auth, tested in apps/agents/tests/test_api_export.py
    "api/v1/clips/<int:clip_id>",  # API key auth, tested in apps/clips/tests
    "api/v1/clips/<int:clip_id>/audio",  # likewise
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _object_routes():
    return sorted(
        route for route in _walk(get_resolver("config.urls_tenant").url_patterns)
        if ("<" in route or "(?P<" in route) and not route.startswith("admin/") and route not in NOT_PORTAL
    )


@pytest.fixture
def globex_objects(tenant_b, settings, tmp_path):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # no DNS in tests: globex.example is never resolved
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    with tenant_context(tenant_b):
        # Push globex's sequences past acme's, so its ids are ids acme does not have.
        for _ in range(3):
            make_agent(name=f"Filler {uuid.uuid4().hex[:6]}")
        agent = make_agent(name="Globex secret agent")
        number = PhoneNumber.objects.create(number="+15550002999", agent=agent, carrier="twilio", account_sid="AC1",
                                            auth_token="t")
        call = call_create_inbound(to_number="+15550002999", from_number="+15557650000", carrier_call_id="CA-globex")
        call_recording_save(call_id=call.id, wav_bytes=b"RIFF-globex-secret", transcript="globex secret transcript")
        account = ProviderAccount.objects.create(provider="cartesia", label="globex secret key", api_key="ck-" + "9" * 20)
        api_key, _ = api_key_create(name="globex secret api key")
        endpoint = webhook_endpoint_create(url="https://globex.example/secret-hook", events=["call.ended"])
        delivery = WebhookDelivery.objects.get(event=webhook_event_emit(event_type="call.ended", data={}))
        tool = HttpTool.objects.create(name="globex_secret_tool", description="globex secret", method="GET",
                                       url="https://globex.example/secret", secret_headers='{"X-Key": "secret"}')
        server = McpServer.objects.create(name="globex_secret_mcp", url="https://globex.example/mcp")
        clip = clip_create(name="globex-secret-clip", words="globex secret words", audio=_clip_wav(), agent=agent)
    rate_card_create(effective_from=date(2025, 1, 1), currency="USD", platform_fee=Decimal("49"))
    invited = client_user_create(client=tenant_b, email="invited@globex.test", password="pw-globex-secret-1")
    invited.set_unusable_password()
    invited.save()
    _, _, _, uidb64, token, _ = invite_link_path(invited).split("/")
    invoice = invoice_finalize(invoice_id=invoice_generate(client=tenant_b, period_start=date(2025, 1, 1)).pk)
    return {
        "call_id": call.id, "agent_id": agent.id, "account_id": account.id, "key_id": api_key.id,
        "invoice_id": invoice.id, "which": "pdf", "user_id": invited.id, "uidb64": uidb64, "token": token,
        "number_id": number.id, "tool_id": tool.id, "number": 1, "server_id": server.id,
        "endpoint_id": endpoint.id, "delivery_id": delivery.id, "clip_id": clip.id,
    }


def _clip_wav() -> bytes:
    from devtools.doubles.audio import tone, wav_bytes

    return wav_bytes(tone(0.5, 8000), 8000)


def _fill(route: str, values: dict) -> str:
    def value_for(name):
        if name not in values:
            pytest.fail(f"no client-B object for URL parameter '{name}' in {route}: add one to globex_objects")
        return str(values[name])

    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value_for(m.group(1)), route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value_for(m.group(1)), path)
    return "/" + path.lstrip("^").rstrip("$")


def test_client_a_admin_gets_403_or_404_for_every_client_b_object(tenant_a, tenant_b, globex_objects):
    routes = _object_routes()
    assert len(routes) >= 9, routes  # calls, recordings, transcripts, invoices, agents, keys...
    browser = HttpClient()
    assert browser.post("/login/", {"username": "admin@acme.test", "password": PASSWORD},
                        HTTP_HOST="acme.localhost").status_code == 302
    for route in routes:
        url = _fill(route, globex_objects)
        for method in ("get", "post"):
            response = getattr(browser, method)(url, HTTP_HOST="acme.localhost")
            assert response.status_code in (403, 404, 405), (method, url, response.status_code)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert b"globex" not in body.lower() and b"secret" not in body.lower(), (method, url)
    # The same session is refused on client B's own host.
    for route in routes:
        response = browser.get(_fill(route, globex_objects), HTTP_HOST="globex.localhost")
        assert response.status_code in (302, 403, 404, 405), (route, response.status_code)
