"""Seed (once) the demo agency owner, a demo client and its portal user.

Each app may add demo data of its own: if `apps/<app>/seeds.py` defines
`seed_demo_data(*, client)`, it is called inside the demo client's schema.
Every seeder must be idempotent: `make run` calls this on every start."""
import importlib
import importlib.util
import os

from django.apps import apps
from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.tenancy.models import AgencySettings
from apps.tenancy.selectors import client_get_by_slug
from apps.tenancy.services import client_create

DEMO_CLIENT_SLUG = "demo"
OWNER_EMAIL = "owner@agency.local"
CLIENT_ADMIN_EMAIL = "admin@demo.local"


class Command(BaseCommand):
    help = "Seed demo data once (agency owner, demo client, portal user, per-app demo data)."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD")
        if not password:
            self.stderr.write("DEMO_PASSWORD is not set (make run writes one to var/local.env).")
            return
        agency = AgencySettings.load()
        if agency.name == "Switchboard Agency":
            agency.name = "Northwind Voice Agency"
            agency.support_email = "support@northwind.local"
            agency.save()
        if not User.objects.filter(email=OWNER_EMAIL).exists():
            owner = User(username=OWNER_EMAIL, email=OWNER_EMAIL, role=User.Role.AGENCY_OWNER)
            owner.set_password(password)
            owner.save()
            self.stdout.write(f"seeded agency owner {OWNER_EMAIL}")
        client = client_get_by_slug(slug=DEMO_CLIENT_SLUG)
        if client is None:
            client, _, _ = client_create(
                slug=DEMO_CLIENT_SLUG, name="Demo Dental", admin_email=CLIENT_ADMIN_EMAIL, admin_password=password,
                contact_name="Dana Demo", contact_email="dana@demo.local", billing_name="Demo Dental LLC",
                billing_email="billing@demo.local", billing_address="1 Demo Street\nSpringfield", timezone="America/New_York",
            )
            self.stdout.write(f"seeded demo client {client.slug}")
        for app_config in apps.get_app_configs():
            module_name = f"{app_config.name}.seeds"
            if not app_config.name.startswith("apps.") or importlib.util.find_spec(module_name) is None:
                continue
            seeder = getattr(importlib.import_module(module_name), "seed_demo_data", None)
            if seeder is not None:
                with tenant_context(client):
                    seeder(client=client)
