"""Stripe (optional, per agency BillingSettings): push finalised invoices and take
payment webhooks. Amounts and tax are ours; Stripe only collects.

Every request carries an idempotency key derived from our ids, so a retried push
(task redelivered, worker killed mid-way) gets Stripe's stored answer instead of
duplicating customers, items or invoices. The API base comes from
settings.STRIPE_API_BASE (tests point it at a local double speaking Stripe's REST
wire format); the default is Stripe itself."""

from __future__ import annotations

import logging

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from apps.billing.models import BillingAccount, BillingSettings, Invoice, StripeEvent
from apps.billing.money import format_rate, to_minor_units
from apps.core.errors import ApplicationError, ProviderError

logger = logging.getLogger(__name__)


def stripe_client(billing: BillingSettings | None = None) -> stripe.StripeClient:
    billing = billing or BillingSettings.load()
    if not billing.stripe_enabled or not billing.stripe_secret_key:
        raise ApplicationError("Stripe is not enabled: set it up in Billing settings (secret key, webhook secret).")
    base = getattr(settings, "STRIPE_API_BASE", None)
    kwargs = {"base_addresses": {"api": base}} if base else {}
    return stripe.StripeClient(billing.stripe_secret_key, max_network_retries=2, **kwargs)


def _classify(exc: stripe.StripeError) -> ProviderError:
    retryable = isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or (
        isinstance(exc, stripe.APIError) and (exc.http_status or 500) >= 500
    )
    return ProviderError(f"Stripe: {exc.user_message or exc}", retryable=retryable, details={"code": exc.code})


def invoice_push_to_stripe(*, invoice_id: int) -> Invoice | None:
    """Create the customer (once), one invoice item per non-zero line plus tax,
    the Stripe invoice, finalise it and store its hosted URL. Returns None when
    Stripe is disabled. Already pushed: returned unchanged."""
    billing = BillingSettings.load()
    if not billing.stripe_enabled:
        return None
    api = stripe_client(billing)
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("client").get(pk=invoice_id)
        if invoice.is_draft or invoice.status == Invoice.Status.VOID or invoice.kind != Invoice.Kind.INVOICE:
            raise ApplicationError(f"Only finalised invoices go to Stripe ({invoice} is {invoice.status}).")
        if invoice.stripe_hosted_url:
            return invoice
        account, _ = BillingAccount.objects.select_for_update().get_or_create(client=invoice.client)
        currency = invoice.currency.lower()
        key = f"switchboard-invoice-{invoice.pk}"
        try:
            if not account.stripe_customer_id:
                snapshot = invoice.billing_snapshot or {}
                customer = api.v1.customers.create(
                    params={
                        "name": snapshot.get("name") or invoice.client.name,
                        "email": snapshot.get("email") or None,
                        "metadata": {"switchboard_client": invoice.client.slug},
                    },
                    options={"idempotency_key": f"switchboard-customer-{invoice.client.pk}"},
                )
                account.stripe_customer_id = customer.id
                account.save(update_fields=["stripe_customer_id"])
            if not invoice.stripe_invoice_id:
                created = api.v1.invoices.create(
                    params={
                        "customer": account.stripe_customer_id,
                        "currency": currency,
                        "collection_method": "send_invoice",
                        "days_until_due": billing.payment_terms_days,
                        "auto_advance": False,
                        "pending_invoice_items_behavior": "exclude",
                        "metadata": {"switchboard_invoice_id": str(invoice.pk), "number": invoice.number},
                    },
                    options={"idempotency_key": key},
                )
                invoice.stripe_invoice_id = created.id
            items = [(line.position, line.description, line.amount) for line in invoice.lines.all() if line.amount]
            if invoice.tax:
                items.append((0, f"{invoice.tax_label} {format_rate(invoice.tax_rate_percent)}%", invoice.tax))
            for position, description, amount in items:
                api.v1.invoice_items.create(
                    params={
                        "customer": account.stripe_customer_id,
                        "invoice": invoice.stripe_invoice_id,
                        "currency": currency,
                        "amount": to_minor_units(amount, invoice.currency),
                        "description": description,
                    },
                    options={"idempotency_key": f"{key}-item-{position}"},
                )
            remote = api.v1.invoices.retrieve(invoice.stripe_invoice_id)
            if remote.status == "draft":
                remote = api.v1.invoices.finalize_invoice(
                    invoice.stripe_invoice_id,
                    params={"auto_advance": False},
                    options={"idempotency_key": f"{key}-finalize"},
                )
        except stripe.StripeError as exc:
            raise _classify(exc) from exc
        expected = to_minor_units(invoice.total, invoice.currency)
        remote = remote.to_dict()
        if remote.get("total") is not None and remote["total"] != expected:
            logger.error("Stripe invoice %s total %s != ours %s", remote["id"], remote["total"], expected)
        invoice.stripe_hosted_url = remote.get("hosted_invoice_url") or ""
        invoice.save(update_fields=["stripe_invoice_id", "stripe_hosted_url", "updated_at"])
    if invoice.status == Invoice.Status.FINALISED:
        from apps.billing.services.invoices import invoice_mark_sent

        invoice = invoice_mark_sent(invoice_id=invoice.pk)
    return invoice


HANDLED_EVENTS = {"invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"}


def stripe_webhook_receive(*, payload: bytes, signature: str) -> str:
    """Verify, de-duplicate and apply one Stripe webhook. Returns what happened:
    "processed", "duplicate" or "ignored". Raises ApplicationError (400) on a bad
    signature -- nothing is stored then."""
    billing = BillingSettings.load()
    if not billing.stripe_webhook_secret:
        raise ApplicationError("Stripe webhooks are not configured.", status_code=400)
    try:
        event = stripe.Webhook.construct_event(payload, signature, billing.stripe_webhook_secret).to_dict()
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise ApplicationError("Invalid Stripe signature or payload.", status_code=400) from exc
    obj = event["data"]["object"]
    with transaction.atomic():
        invoice = None
        if event["type"].startswith("invoice."):
            stripe_id = obj.get("id")
            metadata = obj.get("metadata") or {}
            invoice = Invoice.objects.select_for_update().filter(stripe_invoice_id=stripe_id).first()
            if invoice is None and metadata.get("switchboard_invoice_id", "").isdigit():
                invoice = Invoice.objects.select_for_update().filter(pk=int(metadata["switchboard_invoice_id"])).first()
        try:
            with transaction.atomic():
                StripeEvent.objects.create(event_id=event["id"], type=event["type"], invoice=invoice)
        except IntegrityError:
            return "duplicate"
        if invoice is None or event["type"] not in HANDLED_EVENTS:
            return "ignored"
        from apps.billing.services.invoices import invoice_mark_paid, invoice_mark_payment_failed

        if event["type"] == "invoice.payment_failed":
            invoice_mark_payment_failed(invoice_id=invoice.pk)
        else:
            try:
                invoice_mark_paid(invoice_id=invoice.pk)
            except ApplicationError as exc:
                logger.error("Stripe says %s is paid but: %s", invoice, exc.message)
                return "ignored"
    return "processed"
