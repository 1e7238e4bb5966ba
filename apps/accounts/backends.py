"""Login throttling in the authentication chain (django-axes)."""
from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check for every login that comes with a request (the portal
    and both admins' forms always pass it). A call without a request is code, not
    a person at a login form (the test client's login(), a shell, a command): it
    has no IP to throttle, so it goes on to the next backend instead of failing."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
