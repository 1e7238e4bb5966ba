"""Reads: where a call's spans go (the agency's OTLP collector, Langfuse projects)."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote

from django.conf import settings
from django.db.models import Q

from apps.observability.models import LangfuseProject
from apps.voice.telemetry import CallTraceSettings, TraceDestination, trace_id_for

LANGFUSE_OTLP_PATH = "/api/public/otel/v1/traces"


@dataclass(frozen=True)
class CallTrace:
    settings: CallTraceSettings
    url: str  # the trace in Langfuse (the client's project first), "" when it goes to no Langfuse


def otlp_destination() -> TraceDestination | None:
    """The agency's collector, from the standard OTEL_EXPORTER_OTLP_* variables (settings)."""
    endpoint = settings.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    if not endpoint and settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/") + "/v1/traces"
    if not endpoint:
        return None
    headers = []
    for pair in filter(None, (part.strip() for part in settings.OTEL_EXPORTER_OTLP_HEADERS.split(","))):
        name, _, value = pair.partition("=")
        headers.append((unquote(name.strip()), unquote(value.strip())))
    return TraceDestination(name="otlp", endpoint=endpoint, headers=tuple(headers))


def langfuse_destination(project: LangfuseProject) -> TraceDestination:
    token = base64.b64encode(f"{project.public_key}:{project.secret_key}".encode()).decode()
    return TraceDestination(name="langfuse:client" if project.client_id else "langfuse:agency",
                            endpoint=project.host.rstrip("/") + LANGFUSE_OTLP_PATH,
                            headers=(("Authorization", f"Basic {token}"),))


def call_trace_for(*, client, call) -> CallTrace | None:
    """Where `call`'s spans go, or None (then it is not traced at all)."""
    destinations = []
    collector = otlp_destination()
    if collector is not None:
        destinations.append(collector)
    projects = sorted(LangfuseProject.objects.filter(Q(client=client) | Q(client__isnull=True), enabled=True),
                      key=lambda project: project.client_id is None)  # the client's own first
    destinations.extend(langfuse_destination(project) for project in projects)
    if not destinations:
        return None
    trace_id = trace_id_for(call.pk)
    attributes = {
        "call.id": str(call.pk), "session.id": str(call.pk), "client": client.schema_name,
        "client.name": client.name, "call.direction": call.direction, "call.carrier": call.carrier,
        "agent.id": call.agent_id, "agent.version": getattr(call.agent_version, "number", None),
    }
    url = f"{projects[0].host.rstrip('/')}/trace/{trace_id}" if projects else ""
    return CallTrace(settings=CallTraceSettings(trace_id=trace_id, destinations=tuple(destinations),
                                                attributes={k: v for k, v in attributes.items() if v is not None}),
                     url=url)
