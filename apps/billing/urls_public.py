# Agency-host billing endpoints (Stripe webhook...); mounted at /billing/ by config/urls_public.py.
app_name = "billing_public"
urlpatterns = []
