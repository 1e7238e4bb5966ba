# Carrier media websocket routes; filled in by the telephony area.
websocket_urlpatterns = []
