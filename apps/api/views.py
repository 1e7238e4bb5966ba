"""Client portal API-key pages (client admins only): a new key is shown once."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.api.selectors import api_key_list
from apps.api.services import api_key_create, api_key_revoke
from apps.core.errors import ApplicationError, NotFound
from apps.portal.access import portal_login_required
from apps.portal.forms_errors import form_add_application_error


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. “CRM sync”.")


@portal_login_required(admin_only=True)
def api_key_list_view(request):
    new_token = None
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                key, new_token = api_key_create(name=form.cleaned_data["name"], created_by=request.user.email,
                                                 actor=request.user)
            except ApplicationError as exc:
                form_add_application_error(form, exc)
            else:
                form = ApiKeyForm()
    else:
        form = ApiKeyForm()
    response = render(request, "api/key_list.html", {"keys": api_key_list(), "form": form, "new_token": new_token})
    response["Cache-Control"] = "no-store"  # the page may hold a key shown once
    return response


@require_POST
@portal_login_required(admin_only=True)
def api_key_revoke_view(request, key_id: int):
    try:
        key = api_key_revoke(key_id=key_id, actor=request.user)
    except NotFound:
        raise Http404("No such API key.") from None
    messages.success(request, f"Revoked {key.name}.")
    return HttpResponseRedirect(reverse("portal:api_keys:list"))
