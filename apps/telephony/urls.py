"""Carrier webhooks; mounted at /telephony/ by config/urls_tenant.py (exempt from the suspension page)."""
from django.urls import path

from apps.telephony import views

app_name = "telephony"
urlpatterns = [
    path("twilio/voice/", views.twilio_voice, name="twilio_voice"),
    path("twilio/status/<uuid:call_id>/", views.twilio_status, name="twilio_status"),
    path("telnyx/voice/", views.telnyx_voice, name="telnyx_voice"),
    path("telnyx/call-control/", views.telnyx_call_control, name="telnyx_call_control"),
    path("plivo/answer/", views.plivo_answer, name="plivo_answer"),
    path("vonage/answer/", views.vonage_answer, name="vonage_answer"),
]
