import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_exists

from apps.accounts.models import User
from apps.tenancy.models import Client
from apps.tenancy.services import client_delete


def test_create_client_command_prints_what_it_created(db, capsys):
    call_command(
        "create_client", "hooli", "--name", "Hooli", "--domain", "hooli.example.test",
        "--admin-email", "Gavin@Hooli.test", "--admin-password", "pw-123456789",
    )
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "created client hooli (Hooli)",
        "  schema: hooli",
        "  domain: hooli.example.test",
        "  admin user: gavin@hooli.test",
    ]
    client = Client.objects.get(slug="hooli")
    assert schema_exists("hooli")
    assert User.objects.get(email="gavin@hooli.test").client_id == client.pk
    client_delete(client=client)


def test_create_client_command_refuses_taken_domain(db, tenant_a):
    with pytest.raises(CommandError, match="already in use"):
        call_command("create_client", "acme2", "--name", "Acme 2", "--domain", "acme.localhost")
    assert not Client.objects.filter(slug="acme2").exists()
    assert not schema_exists("acme2")


def test_seed_demo_is_idempotent(db, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-1")
    call_command("seed_demo")
    call_command("seed_demo")
    demo = Client.objects.get(slug="demo")
    assert demo.primary_domain_name == "demo.localhost"
    assert User.objects.filter(email="owner@agency.local", role=User.Role.AGENCY_OWNER).count() == 1
    assert User.objects.get(email="admin@demo.local").check_password("demo-password-1")
    client_delete(client=demo)
