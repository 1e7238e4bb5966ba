# Client-portal billing pages (invoices); mounted at /billing/ by config/urls_tenant.py.
app_name = "billing"
urlpatterns = []
