"""Who may see a client's portal: that client's own users, and agency staff who
entered through an audited support link for this very client."""
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied


def user_can_use_portal(request) -> bool:
    user, tenant = request.user, getattr(request, "tenant", None)
    if not user.is_authenticated or tenant is None or tenant.is_agency:
        return False
    if user.is_agency:
        return request.session.get("support_client_id") == tenant.pk
    return user.client_id == tenant.pk


def portal_login_required(view=None, *, admin_only: bool = False):
    def decorator(view_func):
        @wraps(view_func)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_can_use_portal(request):
                # Rendered by the styled 403 page (templates/403.html) with this message.
                raise PermissionDenied("You do not have access to this client's portal.")
            if admin_only and not request.user.can_edit_client_data(request.tenant):
                raise PermissionDenied("Only this client's admins can do that.")
            return view_func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view else decorator
