from __future__ import annotations

from datetime import datetime

from ninja import Schema


class ClipOut(Schema):
    id: int
    name: str
    words: str
    tags: list[str]
    interruptible: bool
    agent_id: int | None
    duration_ms: int
    created_at: datetime
