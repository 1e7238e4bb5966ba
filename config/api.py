"""The project-wide django-ninja API: each app mounts its router here."""
from django.db import DataError
from django.http import HttpRequest
from ninja import NinjaAPI

from apps.api.auth import ApiKeyAuth
from apps.api.throttle import ApiKeyRateThrottle
from apps.core.errors import ApplicationError
from apps.core.middleware import BAD_VALUE_MESSAGE


class AgencyNinjaAPI(NinjaAPI):
    """The OpenAPI document carries the agency's name (white label), read per request."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        from django_tenants.utils import schema_context

        from apps.tenancy.models import AgencySettings

        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        with schema_context("public"):
            agency = AgencySettings.objects.filter(pk=1).first() or AgencySettings()
        schema["info"]["title"] = f"{agency.name} API"
        return schema


api = AgencyNinjaAPI(title="Switchboard API", version="1", urls_namespace="api", auth=ApiKeyAuth(),
                      throttle=[ApiKeyRateThrottle()])
api.add_router("/v1/agents", "apps.agents.api.router")
api.add_router("/v1/calls", "apps.calls.api.router")
api.add_router("/v1/clips", "apps.clips.api.router")
api.add_router("/v1/numbers", "apps.telephony.api.router")
api.add_router("/v1/usage", "apps.billing.api.router")
api.add_router("/v1/quality", "apps.quality.api.router")
api.add_router("/v1/campaigns", "apps.campaigns.api.router")
api.add_router("/v1/knowledge", "apps.knowledge.api.router")


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, exc: ApplicationError):
    return api.create_response(request, exc.as_dict(), status=exc.status_code)


@api.exception_handler(DataError)
def data_error(request: HttpRequest, exc: DataError):
    # A value the database cannot take (past bigint, a NUL in a JSON string): the caller's to fix. Without this,
    # ninja re-raises (and apps.core.middleware answers 400) unless DEBUG, where it would show a traceback.
    return api.create_response(request, {"error": BAD_VALUE_MESSAGE, "details": {}}, status=400)
