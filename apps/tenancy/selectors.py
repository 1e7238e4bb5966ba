from django.db.models import QuerySet
from django_tenants.utils import remove_www

from apps.tenancy.models import Client


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
