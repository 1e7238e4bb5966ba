# Agency-host billing endpoints; mounted at /billing/ by config/urls_public.py.
from django.urls import path

from apps.billing import views

app_name = "billing_public"
urlpatterns = [
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
