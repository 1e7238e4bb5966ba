from dataclasses import dataclass

from django.db.models import QuerySet
from django_tenants.utils import remove_www, schema_context

from apps.tenancy.models import AgencySettings, Client


@dataclass(frozen=True)
class Brand:
    """What a page looks like: a name, a logo address (or ""), a colour."""

    name: str
    logo_url: str
    color: str


def _logo(file_field, url: str) -> str:
    return file_field.url if file_field else url


def brand_for(*, client: Client | None) -> tuple[AgencySettings, Brand]:
    """(the agency's settings, the brand for `client`'s pages): each of the client's own
    portal name, logo and colour where the agency set one, else the agency's."""
    with schema_context("public"):
        agency = AgencySettings.objects.filter(pk=1).first() or AgencySettings()
    brand = Brand(name=agency.name, logo_url=_logo(agency.logo, agency.logo_url),
                  color=agency.primary_color or "#4f46e5")
    if client is None or client.is_agency:
        return agency, brand
    return agency, Brand(
        name=client.portal_name or brand.name,
        logo_url=_logo(client.brand_logo, client.brand_logo_url) or brand.logo_url,
        color=client.brand_color or brand.color,
    )


def client_list(*, include_suspended: bool = True) -> QuerySet[Client]:
    clients = Client.objects.exclude(schema_name="public")
    if not include_suspended:
        clients = clients.filter(status=Client.Status.ACTIVE)
    return clients.order_by("name")


def client_get_by_slug(*, slug: str) -> Client | None:
    return client_list().filter(slug=slug).first()


def client_get_for_host(*, host: str) -> Client | None:
    """The tenant (agency or client) serving a host name, port stripped."""
    # The same normalisation django-tenants' HTTP middleware applies.
    hostname = remove_www(host.split(":")[0].lower())
    return Client.objects.filter(domains__domain=hostname).first()
