"""Client portal QA pages; included at /quality/ by apps/portal/urls.py."""
from django.urls import path

from apps.quality import suite_views, views

app_name = "quality"
urlpatterns = [
    path("", views.qa_list_view, name="list"),
    path("agents/<int:agent_id>/", views.qa_settings_view, name="settings"),
    path("agents/<int:agent_id>/publish-gate/", suite_views.publish_gate_view, name="publish_gate"),
    path("calls/<uuid:call_id>/rerun/", views.qa_rerun_view, name="rerun"),
    path("calls/<uuid:call_id>/replay/", suite_views.call_replay_view, name="replay"),
    # AI test personas and regression suites
    path("personas/", suite_views.persona_list_view, name="personas"),
    path("personas/<int:persona_id>/", suite_views.persona_edit_view, name="persona"),
    path("suites/", suite_views.suite_list_view, name="suites"),
    path("suites/<int:suite_id>/", suite_views.suite_view, name="suite"),
    path("suites/<int:suite_id>/settings/", suite_views.suite_settings_view, name="suite_settings"),
    path("suites/<int:suite_id>/run/", suite_views.suite_run_view, name="suite_run"),
    path("suites/<int:suite_id>/scenarios/<int:scenario_id>/", suite_views.scenario_edit_view, name="scenario"),
    path("runs/<int:run_id>/", suite_views.suite_run_detail_view, name="run"),
]
