"""Client portal webhook pages; included at /webhooks/ by apps/portal/urls.py."""
from django.urls import path

from apps.webhooks import views

app_name = "webhooks"
urlpatterns = [
    path("", views.endpoint_list_view, name="list"),
    path("<int:endpoint_id>/", views.endpoint_detail_view, name="detail"),
    path("<int:endpoint_id>/rotate-secret/", views.endpoint_rotate_view, name="rotate"),
    path("<int:endpoint_id>/delete/", views.endpoint_delete_view, name="delete"),
    path("deliveries/<int:delivery_id>/replay/", views.delivery_replay_view, name="replay"),
    path("recordings/<str:token>/recording.wav", views.recording_view, name="recording"),
]
