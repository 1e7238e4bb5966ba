"""Client portal call pages; mounted at /calls/ by config/urls_tenant.py."""
from django.urls import path

from apps.calls import views

app_name = "calls"
urlpatterns = [
    path("", views.call_list_view, name="list"),
    path("<uuid:call_id>/", views.call_detail_view, name="detail"),
    path("<uuid:call_id>/recording.wav", views.call_recording_view, name="recording"),
    path("<uuid:call_id>/transcript.txt", views.call_transcript_view, name="transcript"),
]
