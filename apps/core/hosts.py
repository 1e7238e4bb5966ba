"""Absolute URLs for the agency host and client hosts, as people and carriers see them."""
from django.conf import settings


def _origin(host: str) -> str:
    port = settings.PUBLIC_PORT
    default = (settings.PUBLIC_SCHEME == "http" and port == 80) or (settings.PUBLIC_SCHEME == "https" and port == 443)
    return f"{settings.PUBLIC_SCHEME}://{host}" + ("" if default or not port else f":{port}")


def agency_url(path: str = "/") -> str:
    return _origin(settings.AGENCY_DOMAIN) + path


def client_url(client, path: str = "/") -> str:
    return _origin(client.primary_domain_name) + path
