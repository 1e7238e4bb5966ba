"""Client portal number pages; included at /numbers/ by apps/portal/urls.py."""
from django.urls import path

from apps.telephony import portal_views

app_name = "numbers"
urlpatterns = [
    path("", portal_views.phone_number_list_view, name="list"),
    path("<int:number_id>/agent/", portal_views.phone_number_agent_view, name="agent"),
]
