"""Webhook pages in the portal (client admins only: they show signing secrets) and the
client admin's delivery log with replay."""
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client as HttpClient
from django_tenants.utils import tenant_context

from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from apps.webhooks.services import webhook_delivery_attempt, webhook_endpoint_create, webhook_event_emit

HOST = {"HTTP_HOST": "acme.localhost"}


@pytest.fixture(autouse=True)
def _allow_loopback(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_MAX_ATTEMPTS = 1


@pytest.fixture
def dead_delivery(tenant_a):
    with tenant_context(tenant_a):
        endpoint = webhook_endpoint_create(url="http://127.0.0.1:9/hook", events=["qa.completed"])
        event = webhook_event_emit(event_type="qa.completed", data={"score": 5})
        delivery = WebhookDelivery.objects.get(event=event)
        assert webhook_delivery_attempt(delivery_id=delivery.pk).status == "dead"
        return endpoint, WebhookDelivery.objects.get(pk=delivery.pk)


def test_a_client_admin_adds_an_endpoint_and_sees_its_secret(client, acme_admin, tenant_a):  # noqa: F811
    client.force_login(acme_admin)
    response = client.post("/webhooks/", {"url": "http://127.0.0.1:9/crm", "events": ["call.ended", "qa.completed"],
                                          "description": "CRM", "is_active": "on"}, **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        endpoint = WebhookEndpoint.objects.get()
    assert response["Location"] == f"/webhooks/{endpoint.pk}/"
    assert (endpoint.url, endpoint.events, endpoint.description) == ("http://127.0.0.1:9/crm", ["call.ended", "qa.completed"], "CRM")
    page = client.get(f"/webhooks/{endpoint.pk}/", **HOST)
    assert endpoint.secret in page.content.decode() and page["Cache-Control"] == "no-store"
    old_secret = endpoint.secret
    assert client.post(f"/webhooks/{endpoint.pk}/rotate-secret/", **HOST).status_code == 302
    with tenant_context(tenant_a):
        endpoint.refresh_from_db()
    assert endpoint.secret != old_secret and endpoint.secret.startswith("whsec_")


def test_a_bad_endpoint_is_refused_with_a_message(client, acme_admin, tenant_a, settings):  # noqa: F811
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    client.force_login(acme_admin)
    response = client.post("/webhooks/", {"url": "http://127.0.0.1:9/crm", "events": ["call.ended"]}, **HOST)
    assert response.status_code == 200 and "private or local address" in response.content.decode()
    response = client.post("/webhooks/", {"url": "https://example.com/x", "events": ["nope"]}, **HOST)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    with tenant_context(tenant_a):
        assert not WebhookEndpoint.objects.exists()


def test_a_viewer_sees_no_webhook_pages(client, acme_viewer, dead_delivery, tenant_a):  # noqa: F811
    endpoint, delivery = dead_delivery
    client.force_login(acme_viewer)
    assert client.get("/webhooks/", **HOST).status_code == 403
    assert client.get(f"/webhooks/{endpoint.pk}/", **HOST).status_code == 403
    assert client.post(f"/webhooks/deliveries/{delivery.pk}/replay/", **HOST).status_code == 403
    with tenant_context(tenant_a):
        assert WebhookDelivery.objects.get(pk=delivery.pk).status == "dead"


def test_replay_from_the_portal_requeues_with_the_same_id(client, acme_admin, dead_delivery, tenant_a):  # noqa: F811
    endpoint, delivery = dead_delivery
    client.force_login(acme_admin)
    page = client.get(f"/webhooks/{endpoint.pk}/", **HOST).content.decode()
    assert delivery.message_id in page and "Dead-lettered" in page and "#1" in page
    response = client.post(f"/webhooks/deliveries/{delivery.pk}/replay/", **HOST)
    assert response.status_code == 302 and response["Location"] == f"/webhooks/{endpoint.pk}/"
    with tenant_context(tenant_a):
        replayed = WebhookDelivery.objects.get(pk=delivery.pk)
    assert (replayed.status, replayed.attempts, replayed.message_id) == ("pending", 0, delivery.message_id)
    assert replayed.replayed_at is not None
    assert client.post("/webhooks/deliveries/999999/replay/", **HOST).status_code == 404


def test_replay_from_the_client_admin(agency_owner, dead_delivery, tenant_a):
    endpoint, delivery = dead_delivery
    browser = HttpClient()
    browser.force_login(agency_owner)
    link = browser.get(f"/admin/tenancy/client/{tenant_a.pk}/open-admin/", HTTP_HOST="localhost")["Location"]
    browser.get(f"/support/enter/?token={parse_qs(urlparse(link).query)['token'][0]}", **HOST)
    page = browser.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/", **HOST)
    assert page.status_code == 200 and delivery.message_id in page.content.decode()
    response = browser.post("/admin/webhooks/webhookdelivery/", {"action": "replay", "_selected_action": [delivery.pk]},
                            **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert WebhookDelivery.objects.get(pk=delivery.pk).status == "pending"
    assert browser.get("/admin/webhooks/webhookendpoint/", **HOST).status_code == 200
