from django.conf import settings
from django.db import migrations


def create_agency_tenant(apps, schema_editor):
    """The public schema is the agency: django-tenants routes the agency host
    through a tenant row whose schema is `public`."""
    Client = apps.get_model("tenancy", "Client")
    Domain = apps.get_model("tenancy", "Domain")
    AgencySettings = apps.get_model("tenancy", "AgencySettings")
    agency, _ = Client.objects.get_or_create(
        schema_name="public", defaults={"name": "Agency", "slug": "agency"}
    )
    Domain.objects.get_or_create(domain=settings.AGENCY_DOMAIN, defaults={"tenant": agency, "is_primary": True})
    AgencySettings.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]
    operations = [migrations.RunPython(create_agency_tenant, migrations.RunPython.noop)]
