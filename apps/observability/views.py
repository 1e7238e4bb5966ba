"""The agency's Prometheus endpoint (/metrics on the agency host), behind a bearer token."""
from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from apps.observability.metrics import metrics_exposition


@require_GET
def metrics_view(request):
    token = settings.METRICS_BEARER_TOKEN
    if not token:
        raise Http404("The metrics endpoint is off (METRICS_BEARER_TOKEN is not set).")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        response = HttpResponse("A bearer token is required (Authorization: Bearer <METRICS_BEARER_TOKEN>).\n",
                                status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)  # every Prometheus reads 0.0.4
