"""Client portal campaign pages; included at /campaigns/ by apps/portal/urls.py."""
from django.urls import path

from apps.campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_list_view, name="list"),
    path("do-not-call/", views.do_not_call_view, name="do_not_call"),
    path("<int:campaign_id>/", views.campaign_detail_view, name="detail"),
    path("<int:campaign_id>/upload/", views.campaign_upload_view, name="upload"),
    path("<int:campaign_id>/results.csv", views.campaign_results_view, name="results"),
    path("<int:campaign_id>/imports/<int:import_id>/errors.csv", views.campaign_import_errors_view,
         name="import_errors"),
    path("<int:campaign_id>/<str:action>/", views.campaign_action_view, name="action"),
]
