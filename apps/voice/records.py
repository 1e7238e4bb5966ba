"""`CallHooks` that write the call record and drive the carrier, each through the
owning app's services, inside the client's schema. The only place the voice
runtime meets the ORM (and only through services and selectors)."""
from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from django_tenants.utils import tenant_context

logger = logging.getLogger(__name__)


class TenantCallHooks:
    def __init__(self, *, tenant, call_id: str):
        self.tenant = tenant
        self.call_id = call_id

    def _in_tenant(self, function, /, **kwargs):
        @database_sync_to_async
        def run():
            with tenant_context(self.tenant):
                return function(**kwargs)

        return run()

    async def on_answered(self) -> None:
        """Already recorded when the stream started (see the consumer)."""

    async def on_turn(self, turn: dict) -> None:
        from apps.calls.services import call_turn_record

        await self._in_tenant(call_turn_record, call_id=self.call_id, turn=turn)

    async def hang_up(self) -> None:
        from apps.telephony.services import telephony_hang_up

        await self._in_tenant(_with_call, action=telephony_hang_up, call_id=self.call_id)

    async def transfer(self, to_number: str) -> None:
        from apps.calls.services import call_transfer_record
        from apps.telephony.services import telephony_transfer

        await self._in_tenant(_with_call, action=telephony_transfer, call_id=self.call_id, to_number=to_number)
        await self._in_tenant(call_transfer_record, call_id=self.call_id, to_number=to_number)

    async def on_vendor_error(self, *, key_id: str | None, error):
        """A stage's vendor failed: classified, and a throttled key cooled down (the next calls lease others)."""
        from apps.providers.services import provider_error_report

        return await self._in_tenant(provider_error_report, call_id=self.call_id, key_id=key_id, error=error)

    async def on_recording(self, wav: bytes, transcript: str) -> None:
        from apps.calls.services import call_recording_save

        await self._in_tenant(call_recording_save, call_id=self.call_id, wav_bytes=wav, transcript=transcript)

    async def on_end(self, *, end_reason: str, error: str, usage: dict) -> None:
        from apps.calls.services import call_end

        await self._in_tenant(call_end, call_id=self.call_id, end_reason=end_reason, error=error, usage=usage)


def _with_call(*, action, call_id: str, **kwargs):
    from apps.calls.selectors import call_get

    return action(call=call_get(call_id=call_id), **kwargs)
