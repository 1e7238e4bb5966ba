"""The first agency owner of a fresh installation (or another one later).

    python manage.py create_agency_owner --email you@example.com

Asks for the password twice on a terminal; without one (a script, CI), reads it from
the AGENCY_OWNER_PASSWORD environment variable. Never takes it as an argument, so it
does not end up in shell history or the process list."""
import getpass
import os
import sys

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import agency_owner_create
from apps.core.errors import ApplicationError

PASSWORD_ENV = "AGENCY_OWNER_PASSWORD"


class Command(BaseCommand):
    help = f"Create an agency owner (the agency admin's full access). Password: asked, or ${PASSWORD_ENV}."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="the owner's email, also their login")

    def handle(self, *args, email, **options):
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            if not sys.stdin.isatty():
                raise CommandError(
                    f"No password: run this on a terminal to be asked for one, or set {PASSWORD_ENV}."
                )
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("The two passwords differ; nothing was created. Run the command again.")
        try:
            user = agency_owner_create(email=email, password=password)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} Nothing was created.") from exc
        self.stdout.write(f"created agency owner {user.email}: sign in at the agency host's /admin/")
