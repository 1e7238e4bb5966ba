"""`CallHooks` that write the call record and drive the carrier, each through the
owning app's services, inside the client's schema. The only place the voice
runtime meets the ORM (and only through services and selectors).

Where each kind of work runs, so that no call waits on another:
- record writes (turns, heartbeat, the end): the call database pool
  (apps.core.tenant_db), a few milliseconds each;
- the recording upload and carrier REST (hang-up, transfer): a thread of their own
  (they take as long as S3 or the carrier takes), never the database pool; a
  hang-up the carrier refused for a moment is retried by a Celery task with backoff.
"""
from __future__ import annotations

import asyncio
import logging

from django_tenants.utils import tenant_context

from apps.core.tenant_db import in_tenant

logger = logging.getLogger(__name__)


class TenantCallHooks:
    def __init__(self, *, tenant, call_id: str):
        self.tenant = tenant
        self.call_id = call_id

    def _in_tenant(self, function, /, **kwargs):
        return in_tenant(self.tenant, function, **kwargs)

    def _in_own_thread(self, function, /, **kwargs):
        def run():
            with tenant_context(self.tenant):
                return function(**kwargs)

        return asyncio.to_thread(run)

    async def on_answered(self) -> None:
        """Already recorded when the stream started (apps.calls.services.call_stream_start)."""

    async def on_heartbeat(self) -> None:
        from apps.calls.services import call_heartbeat

        await self._in_tenant(call_heartbeat, call_id=self.call_id)

    async def on_turn(self, turn: dict) -> None:
        from apps.calls.services import call_turn_record

        await self._in_tenant(call_turn_record, call_id=self.call_id, turn=turn)

    async def hang_up(self) -> None:
        from apps.telephony.services import telephony_hang_up_or_retry

        await self._in_own_thread(telephony_hang_up_or_retry, call_id=self.call_id)

    async def transfer(self, to_number: str) -> None:
        from apps.telephony.services import telephony_transfer_call

        await self._in_own_thread(telephony_transfer_call, call_id=self.call_id, to_number=to_number)

    async def on_vendor_error(self, *, key_id: str | None, error):
        """A stage's vendor failed: classified, and a throttled key cooled down (the next calls lease others)."""
        from apps.providers.services import provider_error_report

        return await self._in_tenant(provider_error_report, call_id=self.call_id, key_id=key_id, error=error)

    async def on_key_failover(self, *, kind: str, from_key: str | None, to_key: str) -> bool:
        """Move the call's `kind` stage to another key (leased now); False if it cannot serve."""
        from apps.calls.services import call_key_failover

        return await self._in_tenant(call_key_failover, client=self.tenant, call_id=self.call_id, kind=kind,
                                     from_key=from_key, to_key=to_key)

    async def search_knowledge(self, *, query: str) -> dict:
        """The `search_knowledge_base` tool: the client's knowledge base, on the call database pool."""
        from apps.knowledge.selectors import knowledge_tool_search

        return await self._in_tenant(knowledge_tool_search, query=query)

    async def on_recording(self, wav: bytes, transcript: str) -> None:
        from apps.calls.services import call_recording_save

        await self._in_own_thread(call_recording_save, call_id=self.call_id, wav_bytes=wav, transcript=transcript)

    async def on_answered_by(self, answered_by: str) -> None:
        """The runtime's classifier heard who picked up (outbound voicemail detection)."""
        from apps.calls.services import call_answered_by_record

        await self._in_tenant(call_answered_by_record, call_id=self.call_id, answered_by=answered_by)

    async def carrier_answered_by(self) -> str:
        """The carrier's answering-machine verdict so far, as its status webhook recorded it."""
        from apps.calls.selectors import call_answered_by

        return await self._in_tenant(call_answered_by, call_id=self.call_id)

    async def on_end(self, *, end_reason: str, error: str, usage: dict) -> None:
        from apps.calls.services import call_stream_end

        await self._in_tenant(call_stream_end, client=self.tenant, call_id=self.call_id, end_reason=end_reason,
                              error=error, usage=usage)
