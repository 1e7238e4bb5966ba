"""Every page a person reaches renders: each agency-admin and client-admin
changelist and add page, and each portal page without an object id, for the
role that may open it. A 500 anywhere fails this test."""

import pytest
from django.contrib import admin
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.core.admin_sites import tenant_admin_site
from apps.tenancy.tests.support import support_enter
from conftest import PASSWORD


def _model_pages(site, urlconf, user):
    request = RequestFactory().get("/")
    request.user = user
    for model, model_admin in site._registry.items():
        meta = model._meta
        yield reverse(f"{site.name}:{meta.app_label}_{meta.model_name}_changelist", urlconf=urlconf)
        if model_admin.has_add_permission(request):
            yield reverse(f"{site.name}:{meta.app_label}_{meta.model_name}_add", urlconf=urlconf)


def _portal_paths():
    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    skip = ("admin/", "api/", "telephony/", "support/", "logout/", "healthz")
    for route in walk(get_resolver("config.urls_tenant").url_patterns):
        if "<" in route or "(?P" in route or route.startswith(skip):
            continue
        yield "/" + route.lstrip("^").rstrip("$")


def test_every_agency_admin_page_renders(agency_owner, tenant_a):
    browser = HttpClient()
    browser.force_login(agency_owner)
    pages = list(_model_pages(admin.site, "config.urls_public", agency_owner)) + ["/admin/"]
    assert len(pages) > 10
    for page in pages:
        response = browser.get(page, HTTP_HOST="localhost")
        assert response.status_code == 200, (page, response.status_code)


def test_every_client_admin_page_renders_for_support_staff(agency_owner, tenant_a):
    agency = HttpClient()
    agency.force_login(agency_owner)
    staff = HttpClient()
    assert support_enter(agency, staff, tenant_a, "open_admin").status_code == 302
    pages = list(_model_pages(tenant_admin_site, "config.urls_tenant", agency_owner)) + ["/admin/"]
    assert len(pages) > 4
    for page in pages:
        response = staff.get(page, HTTP_HOST="acme.localhost")
        assert response.status_code == 200, (page, response.status_code)


@pytest.mark.parametrize("email", ["admin@acme.test"])
def test_every_portal_page_renders(tenant_a, email):
    browser = HttpClient()
    assert browser.post("/login/", {"username": email, "password": PASSWORD}, HTTP_HOST="acme.localhost").status_code == 302
    paths = sorted(set(_portal_paths()))
    assert "/" in paths and "/calls/" in paths
    for path in paths:
        response = browser.get(path, HTTP_HOST="acme.localhost")
        assert response.status_code in (200, 302), (path, response.status_code)
        if response.status_code == 302:  # only a login redirect would be wrong here
            assert "/login/" not in response["Location"], path
