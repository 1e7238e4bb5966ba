"""Client portal clip pages; included at /clips/ by apps/portal/urls.py."""
from django.urls import path

from apps.clips import views

app_name = "clips"
urlpatterns = [
    path("", views.clip_list_view, name="list"),
    path("<int:clip_id>/audio/", views.clip_audio_view, name="audio"),
    path("<int:clip_id>/delete/", views.clip_delete_view, name="delete"),
]
