"""Junk at the portal, client-admin and agency-admin doors, and names PostgreSQL
cannot take as a schema: a clear refusal, never a 500, nothing created."""
import pytest
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient
from django.urls import URLPattern, URLResolver, get_resolver
from django_tenants.utils import schema_exists

from apps.core.errors import ApplicationError
from apps.tenancy.models import Client
from apps.tenancy.services import client_create
from apps.tenancy.tests.support import support_enter
from conftest import PASSWORD

HUGE = "9" * 25


@pytest.mark.parametrize("slug, message", [
    ("pg_evil", "PostgreSQL reserves schema names starting with 'pg_'"),
    ("PG_Toast", "PostgreSQL reserves schema names starting with 'pg_'"),
    ("public", "is reserved"),
    ("information_schema", "is reserved"),
    ("has-hyphen", "use 2-41 lowercase letters"),
    ("1starts_with_digit", "use 2-41 lowercase letters"),
    ("x" * 64, "use 2-41 lowercase letters"),
    ("quote\"d", "use 2-41 lowercase letters"),
])
def test_the_service_refuses_schema_names_postgresql_cannot_take(db, slug, message):
    before, existed = Client.objects.count(), schema_exists(slug.lower())  # pg_toast, public... exist already
    with pytest.raises(ApplicationError, match=message):
        client_create(slug=slug, name="Nope")
    assert Client.objects.count() == before
    assert schema_exists(slug.lower()) == existed


@pytest.mark.parametrize("domain", ["bad domain.test", "evil.test/path", "-lead.test", "a" * 64 + ".test", "x\x00.test"])
def test_the_service_refuses_a_domain_that_is_not_a_host_name(db, domain):
    with pytest.raises(ApplicationError, match="is not a host name"):
        client_create(slug="hostco", name="Host Co", domain=domain)
    assert not Client.objects.filter(slug="hostco").exists() and not schema_exists("hostco")


def test_the_create_client_command_refuses_pg_slugs(db):
    with pytest.raises(CommandError, match="PostgreSQL reserves schema names starting with 'pg_'"):
        call_command("create_client", "pg_evil", "--name", "Evil")
    assert not Client.objects.filter(slug="pg_evil").exists() and not schema_exists("pg_evil")


def test_the_admin_form_refuses_pg_slugs_with_the_message(client, agency_owner):
    client.force_login(agency_owner)
    response = client.post("/admin/tenancy/client/add/", {
        "name": "Evil", "slug": "pg_evil", "timezone": "UTC", "currency": "USD"}, HTTP_HOST="localhost")
    assert response.status_code == 200
    assert "PostgreSQL reserves schema names starting with &#x27;pg_&#x27;" in response.content.decode()
    assert not Client.objects.filter(slug="pg_evil").exists() and not schema_exists("pg_evil")


def test_the_agency_admin_login_without_next_lands_on_the_admin(agency_owner):
    browser = HttpClient()
    response = browser.post("/admin/login/", {"username": agency_owner.username, "password": PASSWORD},
                            HTTP_HOST="localhost")
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert browser.get("/admin/", HTTP_HOST="localhost").status_code == 200


def test_a_given_next_is_still_followed(agency_owner):
    response = HttpClient().post("/admin/login/?next=/admin/tenancy/client/",
                                 {"username": agency_owner.username, "password": PASSWORD}, HTTP_HOST="localhost")
    assert (response.status_code, response["Location"]) == (302, "/admin/tenancy/client/")


def _plain_routes(urlconf: str, skip: tuple[str, ...]):
    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    return sorted({"/" + route for route in walk(get_resolver(urlconf).url_patterns)
                   if "<" not in route and "(?P" not in route and not route.startswith(skip)})


JUNK = {"page": HUGE, "p": HUGE, "agent": HUGE, "number": HUGE, "id": HUGE, "since": "not-a-date",
        "until": "99999-99-99", "status": "x" * 5000, "o": "99.-99", "q": "' OR 1=1 --", "limit": HUGE,
        "offset": HUGE, "event": "nope"}


def test_portal_pages_answer_junk_queries_without_a_500(tenant_a):
    browser = HttpClient()
    assert browser.post("/login/", {"username": "admin@acme.test", "password": PASSWORD},
                        HTTP_HOST="acme.localhost").status_code == 302
    routes = _plain_routes("config.urls_tenant", ("admin/", "api/", "telephony/", "logout/", "support/", "healthz"))
    assert "/calls/" in routes and "/audit/" in routes
    for route in routes:
        response = browser.get(route, JUNK, HTTP_HOST="acme.localhost")
        assert response.status_code < 500, (route, response.status_code)
        nul = browser.get(route, {"status": "a\x00b", "q": "\x00"}, HTTP_HOST="acme.localhost")
        assert (nul.status_code, nul.content) == (
            400, b"The request contains a NUL character (\\x00); remove it and try again."), route


def test_admin_changelists_answer_junk_queries_without_a_500(agency_owner, tenant_a):
    from django.contrib import admin

    from apps.core.admin_sites import tenant_admin_site

    agency = HttpClient()
    agency.force_login(agency_owner)
    support = HttpClient()
    assert support_enter(agency, support, tenant_a, "open_admin").status_code == 302
    for site, browser, host in ((admin.site, agency, "localhost"), (tenant_admin_site, support, "acme.localhost")):
        for model in site._registry:
            url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
            for query in ({"q": "' OR 1=1 --", "p": HUGE, "o": "99.-99"}, {"id__exact": HUGE, "pk": HUGE},
                          {"created_at__gte": "junk"}):
                response = browser.get(url, query, HTTP_HOST=host)
                assert response.status_code < 500, (url, query, response.status_code)
            assert browser.get(url, {"q": "\x00"}, HTTP_HOST=host).status_code == 400, url
            assert browser.get(f"{url}{HUGE}/change/", HTTP_HOST=host).status_code in (302, 404), url
