"""Client portal agent pages; included at /agents/ by apps/portal/urls.py."""
from django.urls import path

from apps.agents import views

app_name = "agents"
urlpatterns = [
    path("", views.agent_list_view, name="list"),
    path("new/", views.agent_edit_view, name="create"),
    path("<int:agent_id>/", views.agent_detail_view, name="detail"),
    path("<int:agent_id>/edit/", views.agent_edit_view, name="edit"),
    path("<int:agent_id>/versions/", views.agent_versions_view, name="versions"),
    path("<int:agent_id>/versions/diff/", views.agent_version_diff_view, name="version_diff"),
    path("<int:agent_id>/versions/<int:number>/graph/", views.agent_builder_view, name="version_graph"),
    path("<int:agent_id>/builder/", views.agent_builder_view, name="builder"),
    path("<int:agent_id>/builder/draft/", views.agent_builder_draft_view, name="builder_draft"),
    path("<int:agent_id>/builder/publish/", views.agent_builder_publish_view, name="builder_publish"),
    path("<int:agent_id>/call-me/", views.agent_call_me_view, name="call_me"),
    path("<int:agent_id>/talk/", views.agent_talk_view, name="talk"),
    path("<int:agent_id>/talk/start/", views.agent_talk_start_view, name="talk_start"),
    path("<int:agent_id>/voice-preview/", views.agent_voice_preview_view, name="voice_preview"),
    path("<int:agent_id>/export/", views.agent_export_view, name="export"),
    path("import/", views.agent_import_view, name="import"),
    path("tools/", views.http_tool_list_view, name="tools"),
    path("tools/new/", views.http_tool_edit_view, name="tool_create"),
    path("tools/<int:tool_id>/", views.http_tool_edit_view, name="tool_edit"),
    path("mcp-servers/", views.mcp_server_list_view, name="mcp_servers"),
    path("mcp-servers/new/", views.mcp_server_edit_view, name="mcp_server_create"),
    path("mcp-servers/<int:server_id>/", views.mcp_server_edit_view, name="mcp_server_edit"),
]
