"""A client host (acme.example.com): the client portal, the client admin for
agency staff, carrier webhooks."""
from django.urls import include, path

from apps.core.admin_sites import tenant_admin_site
from apps.core.views import healthz
from config.api import api

urlpatterns = [
    path("admin/", tenant_admin_site.urls),
    path("healthz", healthz, name="healthz"),
    path("telephony/", include("apps.telephony.urls")),
    path("calls/", include("apps.calls.urls")),
    path("billing/", include("apps.billing.urls")),
    path("api/", api.urls),
    path("", include("apps.portal.urls")),
]
