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
    site_header = "Agency admin"  # shown after the agency's name (templates/admin/base_site.html)
    site_title = "Agency admin"
    index_title = "Overview"
    index_template = "admin/agency_index.html"

    def each_context(self, request):
        context = super().each_context(request)
        context["client_switcher"] = _client_switcher(request)
        return context

    def index(self, request, extra_context=None):
        """The console's home: every client's month at a glance, then the usual list of models."""
        from apps.core.selectors import agency_overview

        rows = agency_overview()
        totals = {"calls": sum(row.calls for row in rows), "minutes": sum(row.minutes for row in rows),
                  "alerts": sum(len(row.alerts) for row in rows),
                  "test_minutes": sum(row.test_minutes for row in rows)}
        currencies = {row.currency for row in rows if row.currency}
        if len(currencies) == 1:  # revenue and margin add up only in one currency
            totals["currency"] = currencies.pop()
            totals["revenue"] = sum(row.revenue for row in rows if row.revenue is not None)
            totals["margin"] = sum(row.margin for row in rows if row.margin is not None)
        return super().index(request, {"overview": rows, "totals": totals, **(extra_context or {})})

    def get_urls(self):
        from django.urls import path

        return [path("calls/", self.admin_view(self.calls_view), name="agency_calls"), *super().get_urls()]

    def calls_view(self, request):
        """Calls across clients, newest first (filter: one client, failed only)."""
        from django.template.response import TemplateResponse

        from apps.core.selectors import calls_across_clients
        from apps.tenancy.selectors import client_list

        failed_only = request.GET.get("failed") == "1"
        client_slug = request.GET.get("client", "")
        rows = calls_across_clients(limit=100, failed_only=failed_only, client_slug=client_slug)
        return TemplateResponse(request, "admin/agency_calls.html", {
            **self.each_context(request), "title": "Calls across clients", "rows": rows,
            "clients": client_list(), "failed_only": failed_only, "client_slug": client_slug,
        })


tenant_admin_site = TenantAdminSite(name="tenant_admin")
