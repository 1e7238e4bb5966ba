"""Client portal provider-key pages: everyone in the client sees the list (last
4 characters only); client admins add and disable keys."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError, NotFound
from apps.portal.access import portal_login_required
from apps.portal.forms_errors import form_add_application_error
from apps.providers.forms import ProviderAccountForm
from apps.providers.selectors import agency_accounts_available, provider_account_list
from apps.providers.services import provider_account_create, provider_account_disable


@portal_login_required
def provider_account_list_view(request):
    return render(request, "providers/account_list.html", {
        "accounts": provider_account_list(), "agency_accounts": agency_accounts_available(client=request.tenant),
        "can_edit": request.user.can_edit_client_data(request.tenant),
    })


@portal_login_required(admin_only=True)
def provider_account_add_view(request):
    if request.method == "POST":
        form = ProviderAccountForm(request.POST)
        if form.is_valid():
            try:
                account = provider_account_create(**form.cleaned_data)
            except ApplicationError as exc:
                form_add_application_error(form, exc)
            else:
                messages.success(request, f"Added the {account.provider} key ending in {account.last4 or '—'}.")
                return HttpResponseRedirect(reverse("portal:providers:list"))
    else:
        form = ProviderAccountForm()
    return render(request, "providers/account_form.html", {"form": form})


@require_POST
@portal_login_required(admin_only=True)
def provider_account_disable_view(request, account_id: int):
    try:
        account = provider_account_disable(account_id=account_id)
    except NotFound:
        raise Http404("No such provider key.") from None
    messages.success(request, f"Disabled the {account.provider} key ending in {account.last4 or '—'}.")
    return HttpResponseRedirect(reverse("portal:providers:list"))
