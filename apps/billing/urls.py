# Client-portal billing pages (invoices); mounted at /billing/ by config/urls_tenant.py.
from django.urls import path

from apps.billing import views

app_name = "billing"
urlpatterns = [
    path("invoices/", views.portal_invoice_list, name="invoice_list"),
    path("invoices/<int:invoice_id>/<any(pdf,csv):which>/", views.portal_invoice_download, name="invoice_download"),
]
