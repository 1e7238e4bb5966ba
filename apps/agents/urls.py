"""Client portal agent pages; included at /agents/ by apps/portal/urls.py."""
from django.urls import path

from apps.agents import views

app_name = "agents"
urlpatterns = [
    path("", views.agent_list_view, name="list"),
    path("new/", views.agent_edit_view, name="create"),
    path("<int:agent_id>/", views.agent_detail_view, name="detail"),
    path("<int:agent_id>/edit/", views.agent_edit_view, name="edit"),
    path("<int:agent_id>/versions/", views.agent_versions_view, name="versions"),
]
