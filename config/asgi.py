"""HTTP goes through Django (django-tenants routes by host); websockets go
through a router whose middleware resolves the tenant and refuses unknown ones."""
import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from apps.core.websockets import TenantWebsocketMiddleware, UnknownWebsocketPath  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402


def websocket_application(patterns: list):
    """Tenant resolution, then the routes; an unknown path is closed with 4404."""
    return TenantWebsocketMiddleware(URLRouter([*patterns, re_path(r"", UnknownWebsocketPath())]))


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_application(websocket_urlpatterns),
    }
)

# What is loaded by now (Django, the apps, Pipecat, the models) lives as long as the process:
# keep it out of the cyclic collector's full passes, which would otherwise walk all of it
# while every live call waits (a full pass took 180 ms with calls running, 20 ms after this;
# benchmarks/call_path_profile.py).
gc.freeze()
