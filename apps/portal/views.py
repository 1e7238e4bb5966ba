import secrets
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.views import LoginView, LogoutView
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.selectors import team_list
from apps.accounts.services import (
    team_invite_accept,
    team_invite_user,
    team_member_invite,
    team_member_remove,
    team_member_set_role,
)
from apps.core.errors import ApplicationError, NotFound
from apps.core.hosts import agency_url
from apps.portal import selectors
from apps.portal.access import portal_login_required
from apps.portal.forms import DateRangeForm, InviteForm, PortalAuthenticationForm
from apps.portal.forms_errors import form_add_application_error
from apps.tenancy.audit import AuditEvent, audit_log_for_client
from apps.tenancy.services import (
    SUPPORT_BINDING_COOKIE,
    SUPPORT_TOKEN_MAX_AGE_SECONDS,
    support_access_redeem,
    support_access_ticket_check,
    support_binding_hash,
)


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
    """The client-host end of a support ticket (see apps/tenancy/services.py, "support access")."""
    token = request.GET.get("token", "")
    proof = request.GET.get("proof", "")
    session_user = request.user if request.user.is_authenticated else None
    try:
        if session_user is None and not proof:
            # Hop 1: bind the ticket to this browser, then ask the agency host who this is.
            support_access_ticket_check(token=token, client_id=request.tenant.pk)
            nonce = secrets.token_urlsafe(32)
            confirm = reverse("admin:tenancy_client_support_confirm", urlconf="config.urls_public")
            response = HttpResponseRedirect(
                agency_url(confirm) + "?" + urlencode({"token": token, "binding": support_binding_hash(nonce)})
            )
            response.set_cookie(
                SUPPORT_BINDING_COOKIE, nonce, max_age=SUPPORT_TOKEN_MAX_AGE_SECONDS, path="/support/",
                httponly=True, samesite="Lax", secure=request.is_secure(),
            )
            return response
        staff_user, action, next_path = support_access_redeem(
            token=token, client=request.tenant, ip_address=request.META.get("REMOTE_ADDR"),
            session_user=session_user, proof=proof, binding_nonce=request.COOKIES.get(SUPPORT_BINDING_COOKIE, ""),
        )
    except ApplicationError as exc:
        return HttpResponseForbidden(exc.message)
    login(request, staff_user, backend="django.contrib.auth.backends.ModelBackend")
    request.session["support_client_id"] = request.tenant.pk
    messages.info(request, f"You are acting as {request.tenant.name} for support. This access is logged.")
    response = HttpResponseRedirect(next_path)
    response.delete_cookie(SUPPORT_BINDING_COOKIE, path="/support/")
    return response


@portal_login_required(admin_only=True)
def team_view(request):
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = team_member_invite(client=request.tenant, acting_user=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form_add_application_error(form, exc)
        else:
            messages.success(request, f"Invitation sent to {user.email}.")
            return HttpResponseRedirect(reverse("portal:team"))
    return render(request, "portal/team.html", {"members": team_list(client=request.tenant), "form": form})


@require_POST
@portal_login_required(admin_only=True)
def team_member_role_view(request, user_id: int):
    try:
        user = team_member_set_role(client=request.tenant, acting_user=request.user, user_id=user_id,
                                    role=request.POST.get("role", ""))
    except NotFound as exc:
        raise Http404(exc.message) from None
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{user.email} is now {user.get_role_display().lower()}.")
    return HttpResponseRedirect(reverse("portal:team"))


@require_POST
@portal_login_required(admin_only=True)
def team_member_remove_view(request, user_id: int):
    try:
        team_member_remove(client=request.tenant, acting_user=request.user, user_id=user_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Removed.")
    return HttpResponseRedirect(reverse("portal:team"))


def team_accept_view(request, uidb64: str, token: str):
    """The invitation link: choose a password, then log in."""
    if request.user.is_authenticated:
        raise PermissionDenied(f"You are logged in as {request.user.email}: log out, then open the invitation again.")
    invited = team_invite_user(client=request.tenant, uidb64=uidb64, token=token)
    if invited is None:
        return render(request, "portal/team_accept.html", {"invalid": True}, status=404)
    form = SetPasswordForm(invited, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team_invite_accept(client=request.tenant, uidb64=uidb64, token=token,
                               password=form.cleaned_data["new_password1"])
        except ApplicationError as exc:
            form_add_application_error(form, exc)
        else:
            messages.success(request, "Your password is set. Log in to continue.")
            return HttpResponseRedirect(reverse("portal:login"))
    return render(request, "portal/team_accept.html", {"form": form, "invited": invited})


@portal_login_required(admin_only=True)
def audit_log(request):
    """This client's audit log, read-only, for its admins (and support staff)."""
    event_type = request.GET.get("event", "")
    if event_type not in AuditEvent.values:
        event_type = ""
    rows = audit_log_for_client(client=request.tenant, event_type=event_type)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "portal/audit_log.html", {
        "page": page, "events": AuditEvent.choices, "event_type": event_type,
    })
