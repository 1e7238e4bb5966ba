import pytest
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from apps.accounts.models import User
from apps.core.errors import ApplicationError
from apps.tenancy.models import Client, Domain
from apps.tenancy.services import client_create, client_delete


def _tables_in(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=False)
def test_session_tenants_have_their_own_schemas(tenant_a, tenant_b):
    assert schema_exists("acme") and schema_exists("globex")
    assert tenant_a.primary_domain_name == "acme.localhost"
    # Tenant apps' tables live in each client schema, not in public.
    assert "django_migrations" in _tables_in("acme")
    assert "tenancy_client" in _tables_in("public")
    assert "tenancy_client" not in _tables_in("acme")


def test_pgvector_extension_lives_in_public(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'"
        )
        assert cursor.fetchall() == [("public",)]
    with schema_context("acme"), connection.cursor() as cursor:
        cursor.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector")
        assert cursor.fetchone()[0] == 1.0


def test_create_and_delete_client_creates_and_drops_schema(db):
    client, domain, admin = client_create(
        slug="initech", name="Initech", admin_email="boss@initech.test", admin_password="pw-123456789"
    )
    assert schema_exists("initech")
    assert domain.domain == "initech.localhost"
    assert admin.role == User.Role.CLIENT_ADMIN and admin.client_id == client.pk and admin.check_password("pw-123456789")
    assert "django_migrations" in _tables_in("initech")

    client_delete(client=client)
    assert not schema_exists("initech")
    assert not Client.objects.filter(slug="initech").exists()
    assert not Domain.objects.filter(domain="initech.localhost").exists()
    assert not User.objects.filter(email="boss@initech.test").exists()


def test_duplicate_slug_is_refused_and_changes_nothing(db, tenant_a):
    clients_before = Client.objects.count()
    with pytest.raises(ApplicationError, match="already exists"):
        client_create(slug="acme", name="Another Acme")
    assert Client.objects.count() == clients_before


@pytest.mark.parametrize("slug", ["public", "Bad-Slug", "1abc", "x"])
def test_invalid_slugs_are_refused(db, slug):
    clients_before = list(Client.objects.values_list("slug", flat=True))
    with pytest.raises(ApplicationError, match="cannot be a client slug"):
        client_create(slug=slug, name="Nope")
    assert list(Client.objects.values_list("slug", flat=True)) == clients_before


def test_agency_cannot_be_deleted(db):
    agency = Client.objects.get(schema_name="public")
    with pytest.raises(ApplicationError):
        client_delete(client=agency)
    assert schema_exists("public")
