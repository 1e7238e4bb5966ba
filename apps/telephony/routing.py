"""Carrier media websockets (tenant host; config/asgi.py resolves the tenant)."""
from django.urls import path

from apps.telephony.consumers import TwilioMediaConsumer, VonageMediaConsumer

websocket_urlpatterns = [
    path("ws/media/twilio/", TwilioMediaConsumer.as_asgi()),
    path("ws/media/vonage/", VonageMediaConsumer.as_asgi()),
]
