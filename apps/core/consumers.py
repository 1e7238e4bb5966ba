import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django_tenants.utils import tenant_context


class EchoConsumer(AsyncWebsocketConsumer):
    """Answers each message with the tenant's schema as the ORM sees it, so a
    test can prove a socket on client A's host runs only inside A's schema."""

    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        schema = await self._schema_seen_by_orm()
        await self.send(json.dumps({"tenant": self.scope["tenant"].slug, "schema": schema, "echo": text_data}))

    @database_sync_to_async
    def _schema_seen_by_orm(self) -> str:
        from django.db import connection

        with tenant_context(self.scope["tenant"]):
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_schema()")
                return cursor.fetchone()[0]
