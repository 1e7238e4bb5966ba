"""Billing doors: the Stripe webhook (agency host) and the client portal's invoice pages."""

from __future__ import annotations

import logging

from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.billing import selectors
from apps.billing.services.stripe_sync import stripe_webhook_receive
from apps.core.errors import ApplicationError, NotFound
from apps.portal.access import portal_login_required

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        outcome = stripe_webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except ApplicationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status_code)
    return JsonResponse({"received": True, "outcome": outcome})


def invoice_file_response(invoice, which: str) -> HttpResponse:
    field = invoice.pdf if which == "pdf" else invoice.usage_csv
    if not field:
        raise Http404("This document is not rendered yet; try again in a minute.")
    suffix = "pdf" if which == "pdf" else "usage.csv"
    return FileResponse(
        field.open("rb"),
        as_attachment=True,
        filename=f"{invoice.number}.{suffix}" if which == "pdf" else f"{invoice.number}-{suffix}",
        content_type="application/pdf" if which == "pdf" else "text/csv",
    )


@portal_login_required
def portal_invoice_list(request):
    client = request.tenant
    return render(
        request,
        "billing/portal_invoices.html",
        {
            "invoices": selectors.invoice_list_for_portal(client=client),
            "cap": selectors.usage_cap_status(client=client),
        },
    )


@portal_login_required
def portal_invoice_download(request, invoice_id: int, which: str):
    try:
        invoice = selectors.invoice_get_for(client=request.tenant, invoice_id=int(invoice_id))
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return invoice_file_response(invoice, which)
