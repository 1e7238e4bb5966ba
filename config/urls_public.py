"""The agency host: the agency admin, health, billing webhooks."""
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from apps.core.views import healthz
from apps.observability.views import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),  # Prometheus, bearer token (apps/observability/metrics.py)
    path("billing/", include("apps.billing.urls_public")),
]
