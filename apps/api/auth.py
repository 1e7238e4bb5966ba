"""`Authorization: Bearer <key>` for the public API, checked against the API keys
of the client whose host was called (the tenant middleware chose the schema)."""
from __future__ import annotations

from ninja.security import HttpBearer

from apps.api.services import api_key_authenticate


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request, token: str):
        tenant = getattr(request, "tenant", None)
        if tenant is None or getattr(tenant, "is_agency", True):
            return None
        return api_key_authenticate(token=token)
