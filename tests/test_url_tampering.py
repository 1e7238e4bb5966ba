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

# Routes whose id is checked by something other than a portal session or an API key.
NOT_PORTAL = {
    "telephony/twilio/status/<uuid:call_id>/",  # carrier callback: Twilio signature, tested in apps/telephony
    # A signed, expiring link handed to the client's systems (no session): tested in apps/quality/tests.
    "webhooks/recordings/<str:token>/recording.wav",
    # Addressed by phone number within the caller's own do-not-call list: no other client's row can be named.
    "api/v1/campaigns/do-not-call/<number>",
}
# Routes under these prefixes are the API: client A's API key, not its admin's session, is what is refused.
API_PREFIX = "api/"


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
        for _ in range(2):  # past the id of the key acme's test makes
            api_key_create(name=f"globex filler {uuid.uuid4().hex[:6]}")
        api_key, _ = api_key_create(name="globex secret api key")
        endpoint = webhook_endpoint_create(url="https://globex.example/secret-hook", events=["call.ended"])
        delivery = WebhookDelivery.objects.get(event=webhook_event_emit(event_type="call.ended", data={}))
        tool = HttpTool.objects.create(name="globex_secret_tool", description="globex secret", method="GET",
                                       url="https://globex.example/secret", secret_headers='{"X-Key": "secret"}')
        server = McpServer.objects.create(name="globex_secret_mcp", url="https://globex.example/mcp")
        clip = clip_create(name="globex-secret-clip", words="globex secret words", audio=_clip_wav(), agent=agent)
        extra = _globex_campaigns_knowledge_and_suites(agent=agent, number=number, call=call)
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
        "endpoint_id": endpoint.id, "delivery_id": delivery.id, "clip_id": clip.id, **extra,
    }


def _globex_campaigns_knowledge_and_suites(*, agent, number, call) -> dict:
    """Rows of the campaign, knowledge base and test suite apps in client B, their ids past acme's."""
    from apps.campaigns.models import Campaign, ContactImport
    from apps.knowledge.models import Document
    from apps.quality.models import CallReplay, Persona, Scenario, Suite, SuiteRun

    for index in range(3):  # fillers, so globex's ids are ones acme has none of
        Campaign.objects.create(name=f"filler {index}", agent=agent)
        Document.objects.create(name=f"filler-{index}.txt")
        Persona.objects.create(name=f"filler {index}", goal="filler")
    campaign = Campaign.objects.create(name="Globex secret campaign", agent=agent)
    campaign.numbers.add(number) if hasattr(campaign, "numbers") else None
    contact_import = ContactImport.objects.create(campaign=campaign, filename="globex-secret.csv")
    document = Document.objects.create(name="globex-secret.txt")
    persona = Persona.objects.create(name="Globex secret persona", goal="globex secret goal")
    suite = Suite.objects.create(agent=agent, name="Globex secret suite")
    scenario = Scenario.objects.create(suite=suite, name="Globex secret scenario", persona=persona)
    run = SuiteRun.objects.create(suite=suite, target="draft", config_fingerprint="globex")
    replay = CallReplay.objects.create(call=call)
    return {"campaign_id": campaign.id, "import_id": contact_import.id, "document_id": document.id,
            "persona_id": persona.id, "suite_id": suite.id, "scenario_id": scenario.id, "run_id": run.id,
            "replay_id": replay.id, "action": "pause"}


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
    with tenant_context(tenant_a):
        _, acme_api_key = api_key_create(name="acme api key")
    api = {"HTTP_AUTHORIZATION": f"Bearer {acme_api_key}"}
    assert any(route.startswith(API_PREFIX) for route in routes)
    for route in routes:
        url = _fill(route, globex_objects)
        credentials = api if route.startswith(API_PREFIX) else {}
        for method in ("get", "post", "delete"):
            response = getattr(browser, method)(url, HTTP_HOST="acme.localhost", **credentials)
            # An API request without the body it needs is refused (400/422) before any lookup: that says
            # nothing about client B's object either.
            # Carrier callbacks check the carrier's signature, not a session: bad input is a 400, never a 500.
            allowed = ((400, 403, 404, 405, 422) if credentials else (400, 401, 403, 404, 405)
                       if route.startswith("telephony/") else (403, 404, 405))
            assert response.status_code in allowed, (method, url, response.status_code)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert b"globex" not in body.lower() and b"secret" not in body.lower(), (method, url)
    # The same session is refused on client B's own host.
    for route in routes:
        response = browser.get(_fill(route, globex_objects), HTTP_HOST="globex.localhost",
                               **(api if route.startswith(API_PREFIX) else {}))
        assert response.status_code in (302, 401, 403, 404, 405), (route, response.status_code)
