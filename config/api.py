"""The project-wide django-ninja API: each app mounts its router here."""
from django.db import DataError
from django.http import HttpRequest
from ninja import NinjaAPI

from apps.api.auth import ApiKeyAuth
from apps.api.throttle import ApiKeyRateThrottle
from apps.core.errors import ApplicationError
from apps.core.middleware import BAD_VALUE_MESSAGE

api = NinjaAPI(title="Switchboard API", version="1", urls_namespace="api", auth=ApiKeyAuth(),
                throttle=[ApiKeyRateThrottle()])
api.add_router("/v1/agents", "apps.agents.api.router")
api.add_router("/v1/calls", "apps.calls.api.router")


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, exc: ApplicationError):
    return api.create_response(request, exc.as_dict(), status=exc.status_code)


@api.exception_handler(DataError)
def data_error(request: HttpRequest, exc: DataError):
    # A value the database cannot take (past bigint, a NUL in a JSON string): the caller's to fix. Without this,
    # ninja re-raises (and apps.core.middleware answers 400) unless DEBUG, where it would show a traceback.
    return api.create_response(request, {"error": BAD_VALUE_MESSAGE, "details": {}}, status=400)
