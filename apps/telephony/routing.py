"""Media websockets (tenant host; config/asgi.py resolves the tenant): one per
registered carrier, /ws/media/<carrier>/, and the browser test call, /ws/test-call/."""
from django.urls import path

from apps.telephony.carriers.registry import media_urlpatterns
from apps.telephony.consumers import BrowserCallConsumer, MediaStreamConsumer

websocket_urlpatterns = [
    *media_urlpatterns(MediaStreamConsumer),
    path("ws/test-call/", BrowserCallConsumer.as_asgi()),
]
