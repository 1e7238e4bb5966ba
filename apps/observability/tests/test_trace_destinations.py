"""Where a call's spans go: the agency's collector (OTEL_EXPORTER_OTLP_*), the agency's Langfuse
project (every client) and a client's own (its calls only); the Langfuse link favours the client's."""
from __future__ import annotations

import base64

import pytest
from django_tenants.utils import tenant_context

from apps.calls.services import call_create_inbound
from apps.observability.models import LangfuseProject
from apps.observability.selectors import call_trace_for
from apps.telephony.models import PhoneNumber
from apps.telephony.tests.conftest import make_agent
from apps.voice.telemetry import TraceDestination


def _call(tenant):
    with tenant_context(tenant):
        PhoneNumber.objects.create(number="+15550001000", agent=make_agent(), carrier="twilio", account_sid="AC1",
                                   auth_token="t")
        return call_create_inbound(to_number="+15550001000", from_number="+15557000001", carrier_call_id="CA-1")


def _basic(public: str, secret: str) -> tuple[tuple[str, str], ...]:
    return (("Authorization", "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()),)


pytestmark = pytest.mark.django_db


def test_nowhere_to_send_means_untraced(tenant_a, settings):
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = settings.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = ""
    call = _call(tenant_a)
    with tenant_context(tenant_a):
        assert call_trace_for(client=tenant_a, call=call) is None


def test_collector_agency_and_client_langfuse(tenant_a, tenant_b, settings):
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = "https://otel.example.com:4318/"
    settings.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = ""
    settings.OTEL_EXPORTER_OTLP_HEADERS = "x-api-key=abc%3D%3D, x-team=voice"
    LangfuseProject.objects.create(client=None, host="https://cloud.langfuse.com", public_key="pk-agency",
                                   secret_key="sk-agency")
    LangfuseProject.objects.create(client=tenant_a, host="https://langfuse.acme.example/", public_key="pk-acme",
                                   secret_key="sk-acme")
    LangfuseProject.objects.create(client=tenant_b, host="https://langfuse.globex.example", public_key="pk-globex",
                                   secret_key="sk-globex", enabled=False)
    assert LangfuseProject.objects.get(client=tenant_a).secret_key == "sk-acme"  # encrypted at rest:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_key FROM observability_langfuseproject WHERE client_id = %s", [tenant_a.pk])
        assert cursor.fetchone()[0].startswith("gAAAA")

    call = _call(tenant_a)
    with tenant_context(tenant_a):
        trace = call_trace_for(client=tenant_a, call=call)
    assert trace.settings.trace_id == call.pk.hex
    assert trace.url == f"https://langfuse.acme.example/trace/{call.pk.hex}"
    assert trace.settings.destinations == (
        TraceDestination(name="otlp", endpoint="https://otel.example.com:4318/v1/traces",
                         headers=(("x-api-key", "abc=="), ("x-team", "voice"))),
        TraceDestination(name="langfuse:client", endpoint="https://langfuse.acme.example/api/public/otel/v1/traces",
                         headers=_basic("pk-acme", "sk-acme")),
        TraceDestination(name="langfuse:agency", endpoint="https://cloud.langfuse.com/api/public/otel/v1/traces",
                         headers=_basic("pk-agency", "sk-agency")),
    )
    assert trace.settings.attributes["call.id"] == str(call.pk)
    assert trace.settings.attributes["client"] == "acme"

    # Globex's own project is switched off: the agency's project and link only.
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = ""
    settings.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "http://collector.internal:4318/custom/traces"
    other = _call(tenant_b)
    with tenant_context(tenant_b):
        trace = call_trace_for(client=tenant_b, call=other)
    assert trace.url == f"https://cloud.langfuse.com/trace/{other.pk.hex}"
    assert [(d.name, d.endpoint) for d in trace.settings.destinations] == [
        ("otlp", "http://collector.internal:4318/custom/traces"),
        ("langfuse:agency", "https://cloud.langfuse.com/api/public/otel/v1/traces"),
    ]


def test_langfuse_admin_keeps_the_secret_and_never_shows_it(client, agency_owner):
    project = LangfuseProject.objects.create(client=None, public_key="pk-1", secret_key="sk-secret-1")
    client.force_login(agency_owner)
    page = client.get(f"/admin/observability/langfuseproject/{project.pk}/change/", HTTP_HOST="localhost")
    assert page.status_code == 200 and "sk-secret-1" not in page.content.decode()
    response = client.post(f"/admin/observability/langfuseproject/{project.pk}/change/", {
        "client": "", "host": "https://eu.cloud.langfuse.com", "public_key": "pk-2", "secret_key": "", "enabled": "on",
    }, HTTP_HOST="localhost")
    assert response.status_code == 302, response.content.decode()[:2000]
    project.refresh_from_db()
    assert (project.host, project.public_key, project.secret_key) == ("https://eu.cloud.langfuse.com", "pk-2",
                                                                     "sk-secret-1")
    response = client.post("/admin/observability/langfuseproject/add/", {
        "client": "", "host": "https://cloud.langfuse.com", "public_key": "pk-3", "secret_key": "", "enabled": "on",
    }, HTTP_HOST="localhost")
    assert response.status_code == 200
    assert "The project&#x27;s secret key is required." in response.content.decode()
    assert LangfuseProject.objects.count() == 1
