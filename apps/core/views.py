from django.http import JsonResponse
from django.views.decorators.http import require_GET

from apps.core.health import health_report


@require_GET
def healthz(request):
    healthy, report = health_report()
    return JsonResponse({"status": "ok" if healthy else "down", "checks": report}, status=200 if healthy else 503)
