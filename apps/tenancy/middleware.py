from django.shortcuts import render
from django_tenants.middleware.main import TenantMainMiddleware

# Paths a suspended client's host still answers: carrier webhooks answer with a
# polite spoken refusal themselves, and health checks must keep working.
SUSPENSION_EXEMPT_PREFIXES = ("/telephony/", "/healthz", "/static/")


class ClientTenantMiddleware(TenantMainMiddleware):
    """django-tenants' host → schema routing, with a clear page for unknown hosts."""

    def no_tenant_found(self, request, hostname):
        response = render(request, "tenancy/unknown_host.html", {"hostname": hostname}, status=404)
        return response


class SuspendedClientMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        if (
            tenant is not None
            and not tenant.is_agency
            and not tenant.is_active
            and not request.path.startswith(SUSPENSION_EXEMPT_PREFIXES)
        ):
            return render(request, "tenancy/suspended.html", {"client": tenant}, status=403)
        return self.get_response(request)
