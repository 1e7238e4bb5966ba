from __future__ import annotations

from datetime import datetime

from ninja import Schema


class AgentOut(Schema):
    id: int
    name: str
    version: int | None
    language: str
    stt_provider: str
    llm_provider: str
    tts_provider: str
    pipeline_mode: str  # "cascade" or "speech_to_speech"
    s2s_provider: str  # the speech-to-speech vendor ("" for cascade agents)
    is_active: bool
    updated_at: datetime

    @staticmethod
    def resolve_version(obj) -> int | None:
        return obj.current_version.number if obj.current_version_id else None
