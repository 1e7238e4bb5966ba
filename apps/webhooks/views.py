"""Client portal webhook pages (client admins: they show signing secrets): endpoints,
their delivery log with replay; and the signed recording link of `call.ended`
(no login: the signature and expiry are the permission)."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.core.errors import ApplicationError, NotFound, PermissionDenied
from apps.portal.access import portal_login_required
from apps.portal.forms_errors import form_add_application_error
from apps.webhooks.events import EVENT_CHOICES, EVENT_TYPES
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.recording_links import recording_token_check
from apps.webhooks.selectors import webhook_delivery_list, webhook_endpoint_get, webhook_endpoint_list
from apps.webhooks.services import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)


class EndpointForm(forms.Form):
    url = forms.URLField(max_length=500, assume_scheme="https", label="URL")
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple)
    is_active = forms.BooleanField(required=False, initial=True, label="Active")


def _no_store(response):
    response["Cache-Control"] = "no-store"  # pages that show signing secrets
    return response


@portal_login_required(admin_only=True)
def endpoint_list_view(request):
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint = webhook_endpoint_create(url=form.cleaned_data["url"], events=form.cleaned_data["events"],
                                                   description=form.cleaned_data["description"])
            except ApplicationError as error:
                form_add_application_error(form, error)
            else:
                messages.success(request, "Endpoint added. Verify our signatures with its signing secret.")
                return HttpResponseRedirect(reverse("portal:webhooks:detail", args=[endpoint.pk]))
    else:
        form = EndpointForm()
    return _no_store(render(request, "webhooks/endpoint_list.html", {
        "endpoints": webhook_endpoint_list(), "form": form, "event_types": EVENT_TYPES}))


@portal_login_required(admin_only=True)
def endpoint_detail_view(request, endpoint_id: int):
    try:
        endpoint = webhook_endpoint_get(endpoint_id=endpoint_id)
    except NotFound:
        raise Http404("No such webhook endpoint.") from None
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                webhook_endpoint_update(endpoint_id=endpoint.pk, **form.cleaned_data)
            except ApplicationError as error:
                form_add_application_error(form, error)
            else:
                messages.success(request, "Endpoint saved.")
                return HttpResponseRedirect(reverse("portal:webhooks:detail", args=[endpoint.pk]))
    else:
        form = EndpointForm(initial={"url": endpoint.url, "description": endpoint.description,
                                     "events": endpoint.events, "is_active": endpoint.is_active})
    status = request.GET.get("status", "")
    deliveries = webhook_delivery_list(endpoint_id=endpoint.pk,
                                       status=status if status in WebhookDelivery.Status.values else "")
    page = Paginator(deliveries, 25).get_page(request.GET.get("page"))
    return _no_store(render(request, "webhooks/endpoint_detail.html", {
        "endpoint": endpoint, "form": form, "page": page, "status": status,
        "statuses": WebhookDelivery.Status.choices}))


@require_POST
@portal_login_required(admin_only=True)
def endpoint_rotate_view(request, endpoint_id: int):
    try:
        webhook_endpoint_rotate_secret(endpoint_id=endpoint_id)
    except NotFound:
        raise Http404("No such webhook endpoint.") from None
    messages.success(request, "New signing secret made; deliveries from now on are signed with it.")
    return HttpResponseRedirect(reverse("portal:webhooks:detail", args=[endpoint_id]))


@require_POST
@portal_login_required(admin_only=True)
def endpoint_delete_view(request, endpoint_id: int):
    try:
        webhook_endpoint_delete(endpoint_id=endpoint_id)
    except NotFound:
        raise Http404("No such webhook endpoint.") from None
    messages.success(request, "Endpoint deleted.")
    return HttpResponseRedirect(reverse("portal:webhooks:list"))


@require_POST
@portal_login_required(admin_only=True)
def delivery_replay_view(request, delivery_id: int):
    try:
        delivery = webhook_delivery_replay(delivery_id=delivery_id)
    except NotFound:
        raise Http404("No such delivery.") from None
    messages.success(request, f"Delivery {delivery.message_id} queued again (same webhook-id).")
    return HttpResponseRedirect(reverse("portal:webhooks:detail", args=[delivery.endpoint_id]))


@require_GET
def recording_view(request, token: str):
    """A `call.ended` recording link: valid signature, not expired, this client's call."""
    from apps.calls.selectors import call_get

    try:
        call_id = recording_token_check(token=token, schema=request.tenant.schema_name)
        call = call_get(call_id=call_id)
    except PermissionDenied as error:
        return HttpResponseForbidden(error.message)
    except NotFound:
        raise Http404("No such call.") from None
    if not call.recording:
        raise Http404("This call has no recording.")
    return FileResponse(call.recording.open("rb"), content_type="audio/wav", filename=f"call-{call.pk}.wav")
