from django_tenants.utils import schema_context

from apps.tenancy.models import AgencySettings


def branding(request):
    """Agency branding (name, logo, colour) for every page."""
    with schema_context("public"):
        agency = AgencySettings.objects.filter(pk=1).first() or AgencySettings()
    return {"agency": agency, "current_client": getattr(request, "tenant", None)}
