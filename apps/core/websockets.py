"""django-tenants has no websocket middleware: resolve the tenant from the Host
header ourselves, refuse unknown and suspended tenants, and put the tenant in
the scope. Consumers run every ORM call inside `tenant_context(scope["tenant"])`."""
from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from django_tenants.utils import schema_context

logger = logging.getLogger(__name__)

# Close codes in the 4000-4999 private range.
CLOSE_UNKNOWN_TENANT = 4404
CLOSE_SUSPENDED_TENANT = 4403


def _host_from_scope(scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return value.decode("latin-1")
    return ""


@database_sync_to_async
def _tenant_for_host(host: str):
    from apps.tenancy.selectors import client_get_for_host

    with schema_context("public"):
        return client_get_for_host(host=host)


class TenantWebsocketMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        host = _host_from_scope(scope)
        tenant = await _tenant_for_host(host) if host else None
        if tenant is None or tenant.is_agency:
            logger.warning("websocket refused: unknown tenant host %r", host)
            return await _refuse(receive, send, CLOSE_UNKNOWN_TENANT)
        if not tenant.is_active:
            logger.warning("websocket refused: client %s is suspended", tenant.slug)
            return await _refuse(receive, send, CLOSE_SUSPENDED_TENANT)
        return await self.inner({**scope, "tenant": tenant}, receive, send)


async def _refuse(receive, send, code: int):
    # Accept-then-close so the client sees our close code (a bare reject is a 403
    # at the HTTP upgrade and carries no reason).
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": code})


class UnknownWebsocketPath:
    """The last websocket route: any path nothing else matched is closed with 4404
    (instead of the router's ValueError, a traceback and a bare 500 at the upgrade)."""

    async def __call__(self, scope, receive, send):
        logger.warning("websocket refused: no route for %r", scope.get("path", "")[:200])
        return await _refuse(receive, send, CLOSE_UNKNOWN_TENANT)
