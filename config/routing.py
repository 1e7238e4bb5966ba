"""Every websocket route, each app contributing its own patterns."""
from django.urls import path

from apps.core.consumers import EchoConsumer
from apps.telephony.routing import websocket_urlpatterns as telephony_patterns

websocket_urlpatterns = [
    # A tiny tenant-scoped consumer: liveness for load balancers and the isolation tests.
    path("ws/echo/", EchoConsumer.as_asgi()),
]


websocket_urlpatterns += telephony_patterns
