"""Client portal knowledge base pages; included at /knowledge/ by apps/portal/urls.py."""
from django.urls import path

from apps.knowledge import views

app_name = "knowledge"
urlpatterns = [
    path("", views.knowledge_list_view, name="list"),
    path("progress/", views.knowledge_progress_view, name="progress"),
    path("upload/", views.knowledge_upload_view, name="upload"),
    path("url/", views.knowledge_add_url_view, name="add_url"),
    path("settings/", views.knowledge_settings_view, name="settings"),
    path("<int:document_id>/", views.knowledge_document_view, name="document"),
    path("<int:document_id>/delete/", views.knowledge_delete_view, name="delete"),
    path("<int:document_id>/reindex/", views.knowledge_reindex_view, name="reindex"),
]
