from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.tenancy.services import client_create


class Command(BaseCommand):
    help = "Create a client: its schema, its portal domain and optionally its first admin user."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--domain", help="portal host, default <slug>.<CLIENT_DOMAIN_SUFFIX>")
        parser.add_argument("--admin-email")
        parser.add_argument("--admin-password")
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--currency", default="USD")

    def handle(self, *args, slug, name, domain, admin_email, admin_password, timezone, currency, **options):
        if admin_password and not admin_email:
            raise CommandError("--admin-password needs --admin-email")
        try:
            client, client_domain, admin_user = client_create(
                slug=slug,
                name=name,
                domain=domain,
                admin_email=admin_email,
                admin_password=admin_password,
                timezone=timezone,
                currency=currency,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"created client {client.slug} ({client.name})")
        self.stdout.write(f"  schema: {client.schema_name}")
        self.stdout.write(f"  domain: {client_domain.domain}")
        if admin_user:
            self.stdout.write(f"  admin user: {admin_user.email}")
