"""Client portal QA pages; included at /quality/ by apps/portal/urls.py."""
from django.urls import path

from apps.quality import views

app_name = "quality"
urlpatterns = [
    path("", views.qa_list_view, name="list"),
    path("agents/<int:agent_id>/", views.qa_settings_view, name="settings"),
    path("calls/<uuid:call_id>/rerun/", views.qa_rerun_view, name="rerun"),
]
