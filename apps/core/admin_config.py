from django.contrib.admin.apps import AdminConfig


class AgencyAdminConfig(AdminConfig):
    default_site = "apps.core.admin_sites.AgencyAdminSite"
