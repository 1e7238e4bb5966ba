from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import render

from apps.core.errors import ApplicationError
from apps.portal import selectors
from apps.portal.access import portal_login_required
from apps.portal.forms import DateRangeForm, PortalAuthenticationForm
from apps.tenancy.services import support_access_redeem


class PortalLoginView(LoginView):
    template_name = "portal/login.html"
    authentication_form = PortalAuthenticationForm
    redirect_authenticated_user = False


class PortalLogoutView(LogoutView):
    next_page = "portal:login"


@portal_login_required
def dashboard(request):
    form = DateRangeForm(request.GET)
    dates = form.cleaned_data if form.is_valid() else {}
    summary = selectors.dashboard_summary(client=request.tenant, since=dates.get("since"), until=dates.get("until"))
    return render(request, "portal/dashboard.html", {"summary": summary, "form": form})


def support_enter(request):
    ip_address = request.META.get("REMOTE_ADDR")
    try:
        staff_user, action, next_path = support_access_redeem(
            token=request.GET.get("token", ""), client=request.tenant, ip_address=ip_address
        )
    except ApplicationError as exc:
        return HttpResponseForbidden(exc.message)
    login(request, staff_user, backend="django.contrib.auth.backends.ModelBackend")
    request.session["support_client_id"] = request.tenant.pk
    messages.info(request, f"You are acting as {request.tenant.name} for support. This access is logged.")
    return HttpResponseRedirect(next_path)
