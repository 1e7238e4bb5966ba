# Client-portal billing pages (invoices); mounted at /billing/ by config/urls_tenant.py.
from django.urls import path, re_path

from apps.billing import views

app_name = "billing"
urlpatterns = [
    path("invoices/", views.portal_invoice_list, name="invoice_list"),
    re_path(
        r"^invoices/(?P<invoice_id>\d+)/(?P<which>pdf|csv)/$", views.portal_invoice_download, name="invoice_download"
    ),
]
