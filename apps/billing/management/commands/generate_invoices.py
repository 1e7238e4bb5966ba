"""generate_invoices --period YYYY-MM [--client SLUG] [--finalize]

The same as the month-end beat run, by hand. Safe to re-run: drafts are refreshed,
finalised invoices are left exactly as they are."""

from django.core.management.base import BaseCommand, CommandError

from apps.billing.models import Invoice
from apps.billing.periods import parse_period
from apps.billing.selectors import clients_to_invoice
from apps.billing.services import invoice_generate_and_finalize, invoice_render_documents
from apps.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Generate (and optionally finalise) invoices for a month."

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="YYYY-MM, e.g. 2025-03")
        parser.add_argument("--client", help="client slug; default: every active client")
        parser.add_argument("--finalize", action="store_true", help="number and freeze the invoices, render PDFs")

    def handle(self, *args, period, client=None, finalize=False, **options):
        from apps.tenancy.selectors import client_get_by_slug

        try:
            period_start = parse_period(period)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if client:
            found = client_get_by_slug(slug=client)
            if found is None:
                raise CommandError(f"No client with slug {client!r}. List them with the agency admin (Clients).")
            clients = [found]
        else:
            clients = list(clients_to_invoice())
        failures = 0
        for index, each in enumerate(clients, start=1):
            prefix = f"[{index}/{len(clients)}] {each.slug}"
            try:
                invoice = invoice_generate_and_finalize(client=each, period_start=period_start, finalize=finalize)
                if invoice.status != Invoice.Status.DRAFT and not invoice.pdf:
                    invoice_render_documents(invoice_id=invoice.pk)
            except ApplicationError as exc:
                failures += 1
                self.stderr.write(f"{prefix}: {exc.message}")
                continue
            self.stdout.write(f"{prefix}: {invoice} {invoice.status} total {invoice.total:.2f} {invoice.currency}")
        if failures:
            raise CommandError(f"{failures} of {len(clients)} client(s) failed; see the messages above.")
