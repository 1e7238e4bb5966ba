from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from ninja import Field, Schema


class CallOut(Schema):
    id: UUID
    direction: str
    status: str
    from_number: str
    to_number: str
    carrier: str
    agent_id: int | None
    agent_version_id: int | None
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_secs: Decimal | None
    end_reason: str
    transferred_to: str
    is_test: bool  # a browser test call ("Talk to this agent"): not billed


class ToolCallOut(Schema):
    name: str
    arguments: dict
    result: str
    duration_ms: int | None
    error: str


class TurnOut(Schema):
    index: int
    user_text: str
    bot_text: str
    started_at: datetime | None
    ended_at: datetime | None
    interrupted: bool
    stt_final_ms: int | None
    llm_ttft_ms: int | None
    tts_ttfb_ms: int | None
    voice_to_voice_ms: int | None
    errors: list[str]
    tool_calls: list[ToolCallOut]
    clips: list[dict] = Field(default_factory=list, description="Clips played in the turn: [{name, source}].")

    @staticmethod
    def resolve_errors(obj) -> list[str]:
        return [line for line in obj.errors.splitlines() if line]

    @staticmethod
    def resolve_tool_calls(obj):
        return list(obj.tool_calls.all())


class UsageOut(Schema):
    metric: str
    dimension: str
    provider: str
    quantity: Decimal


class CallDetailOut(CallOut):
    error: str
    turns: list[TurnOut]
    usage: list[UsageOut]

    @staticmethod
    def resolve_turns(obj):
        return list(obj.turns.all())

    @staticmethod
    def resolve_usage(obj):
        return list(obj.usage.all())


class OutboundCallIn(Schema):
    agent_id: int | None = Field(None, description="Defaults to the agent on the from number.")
    to: str = Field(..., min_length=3, max_length=32, description="E.164 number to call.")
    from_number: str = Field(..., min_length=3, max_length=32, description="One of your numbers, E.164.")
    idempotency_key: str = Field(..., min_length=1, max_length=150,
                                 description="Repeat the request with the same key: the call is placed once.")
