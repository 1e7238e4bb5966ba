"""Carrier media websockets (tenant host; config/asgi.py resolves the tenant), one per carrier protocol."""
from django.urls import path

from apps.telephony.consumers import MediaStreamConsumer
from apps.voice.carriers import CARRIERS

websocket_urlpatterns = [
    path(f"ws/media/{name}/", MediaStreamConsumer.as_asgi(carrier_name=name)) for name in CARRIERS
]
