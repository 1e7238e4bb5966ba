# Filled in by the calls area; mounted by config/urls_tenant.py.
app_name = "calls"
urlpatterns = []
