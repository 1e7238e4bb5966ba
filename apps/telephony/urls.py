# Filled in by the telephony area; mounted by config/urls_tenant.py.
app_name = "telephony"
urlpatterns = []
