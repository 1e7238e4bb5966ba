"""Carrier media websockets (tenant host; config/asgi.py resolves the tenant)."""
from django.urls import path

from apps.telephony.consumers import (
    PlivoMediaConsumer,
    TelnyxMediaConsumer,
    TwilioMediaConsumer,
    VonageMediaConsumer,
)

websocket_urlpatterns = [
    path("ws/media/twilio/", TwilioMediaConsumer.as_asgi()),
    path("ws/media/telnyx/", TelnyxMediaConsumer.as_asgi()),
    path("ws/media/plivo/", PlivoMediaConsumer.as_asgi()),
    path("ws/media/vonage/", VonageMediaConsumer.as_asgi()),
]
