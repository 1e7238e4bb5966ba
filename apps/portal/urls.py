from django.urls import include, path

from apps.portal import views

app_name = "portal"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.PortalLoginView.as_view(), name="login"),
    path("logout/", views.PortalLogoutView.as_view(), name="logout"),
    path("support/enter/", views.support_enter, name="support_enter"),
    path("team/", views.team_view, name="team"),
    path("team/<int:user_id>/role/", views.team_member_role_view, name="team_role"),
    path("team/<int:user_id>/remove/", views.team_member_remove_view, name="team_remove"),
    path("team/accept/<str:uidb64>/<str:token>/", views.team_accept_view, name="team_accept"),
    path("audit/", views.audit_log, name="audit_log"),
    # Each area's portal pages (namespaces portal:agents, portal:providers, portal:numbers, portal:api_keys).
    path("agents/", include("apps.agents.urls")),
    path("clips/", include("apps.clips.urls")),
    path("providers/", include("apps.providers.urls")),
    path("numbers/", include("apps.telephony.portal_urls")),
    path("api-keys/", include("apps.api.urls")),
    path("quality/", include("apps.quality.urls")),
    path("knowledge/", include("apps.knowledge.urls")),
    path("webhooks/", include("apps.webhooks.urls")),
    path("campaigns/", include("apps.campaigns.urls")),
]
