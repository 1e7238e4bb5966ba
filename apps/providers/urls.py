"""Client portal provider-key pages; included at /providers/ by apps/portal/urls.py."""
from django.urls import path

from apps.providers import views

app_name = "providers"
urlpatterns = [
    path("", views.provider_account_list_view, name="list"),
    path("add/", views.provider_account_add_view, name="add"),
    path("<int:account_id>/disable/", views.provider_account_disable_view, name="disable"),
]
