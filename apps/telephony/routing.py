"""Carrier media websockets (tenant host; config/asgi.py resolves the tenant), one per
registered carrier: /ws/media/<carrier>/."""
from apps.telephony.carriers.registry import media_urlpatterns
from apps.telephony.consumers import MediaStreamConsumer

websocket_urlpatterns = media_urlpatterns(MediaStreamConsumer)
