"""Carrier webhooks, one set per registered carrier (each carrier module's CARRIER.webhooks),
at /telephony/<carrier>/...; mounted by config/urls_tenant.py (exempt from the suspension page)."""
from apps.telephony.carriers.registry import webhook_urlpatterns

app_name = "telephony"
urlpatterns = webhook_urlpatterns()
