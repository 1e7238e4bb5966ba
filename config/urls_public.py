"""The agency host: the agency admin, health, billing webhooks."""
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from apps.core.views import healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("billing/", include("apps.billing.urls_public")),
]
