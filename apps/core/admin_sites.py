"""Two admin sites: the agency admin on the agency host (public schema models)
and the per-client admin on each client host (tenant schema models).

Register public-schema models on `django.contrib.admin.site`, tenant-schema
models on `tenant_admin_site`. Agency staff reach a client's admin only through
"Open client admin" in the agency admin, which is audited."""
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.urls import reverse

from apps.core.hosts import agency_url


class _LoginNextAdminSite(admin.AdminSite):
    """A login posted without `next` (a script, a password manager) lands on this
    site's index, not on settings.LOGIN_REDIRECT_URL: that is the portal's
    dashboard, which does not exist on the agency host (NoReverseMatch → 500)."""

    def login(self, request, extra_context=None):
        if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
            request.GET = request.GET.copy()
            request.GET[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=self.name)
        return super().login(request, extra_context)


class TenantAdminSite(_LoginNextAdminSite):
    site_header = "Switchboard — client admin"
    site_title = "Switchboard client admin"
    index_template = "admin/tenant_index.html"
    login_template = "admin/tenant_login.html"

    def has_permission(self, request):
        tenant = getattr(request, "tenant", None)
        return bool(
            request.user.is_active
            and request.user.is_staff
            and tenant is not None
            and request.session.get("support_client_id") == tenant.pk
        )

    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        context["site_header"] = f"{tenant.name} — client admin" if tenant else self.site_header
        context["client_switcher"] = _client_switcher(request)
        return context


def _client_switcher(request):
    from django_tenants.utils import schema_context

    from apps.tenancy.selectors import client_list

    if not (request.user.is_authenticated and request.user.is_staff):
        return []
    with schema_context("public"):
        return [
            {"name": client.name, "url": agency_url(reverse("admin:tenancy_client_open_admin", args=[client.pk], urlconf="config.urls_public"))}
            for client in client_list()
        ]


class AgencyAdminSite(_LoginNextAdminSite):
    site_header = "Switchboard — agency admin"
    site_title = "Switchboard agency admin"
    index_title = "Agency"

    def each_context(self, request):
        context = super().each_context(request)
        context["client_switcher"] = _client_switcher(request)
        return context


tenant_admin_site = TenantAdminSite(name="tenant_admin")
