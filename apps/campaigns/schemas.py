from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from ninja import Field, Schema


class RetryRule(Schema):
    attempts: int = 0
    delay_minutes: int = 0


class CampaignIn(Schema):
    name: str
    agent_id: int
    number_ids: list[int] = Field(..., description="The caller-ID pool: ids of this client's numbers.")
    timezone: str = "UTC"
    windows: dict[str, list[list[str]]] = Field(default_factory=dict,
                                                description='{"mon": [["09:00", "17:00"]], ...}; {} = any time')
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_concurrent: int = 5
    calls_per_second: Decimal = Decimal(1)
    retry_policy: dict[str, RetryRule] = Field(default_factory=dict,
                                               description="Per outcome: no_answer, busy, failed, voicemail.")
    breaker_window: int = 20
    breaker_failure_ratio: Decimal = Decimal("0.5")


class CampaignPatch(Schema):
    name: str | None = None
    agent_id: int | None = None
    number_ids: list[int] | None = None
    timezone: str | None = None
    windows: dict[str, list[list[str]]] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_concurrent: int | None = None
    calls_per_second: Decimal | None = None
    retry_policy: dict[str, RetryRule] | None = None
    breaker_window: int | None = None
    breaker_failure_ratio: Decimal | None = None


class ProgressOut(Schema):
    total: int
    done: int
    left: int
    live: int
    percent: int
    outcomes: dict[str, int]
    attempt_outcomes: dict[str, int]
    dials: int
    estimated_finish: datetime | None


class CampaignOut(Schema):
    id: int
    name: str
    agent_id: int
    number_ids: list[int]
    status: str
    pause_kind: str
    pause_reason: str
    timezone: str
    windows: dict
    starts_at: datetime | None
    ends_at: datetime | None
    max_concurrent: int
    calls_per_second: Decimal
    retry_policy: dict
    breaker_window: int
    breaker_failure_ratio: Decimal
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: ProgressOut


class ImportRowError(Schema):
    row: int
    phone_number: str
    error: str


class ImportOut(Schema):
    id: int
    filename: str
    rows_total: int
    rows_imported: int
    errors: list[ImportRowError]
    created_at: datetime


class AttemptOut(Schema):
    number: int
    outcome: str
    from_number: str
    call_id: UUID | None
    started_at: datetime
    settled_at: datetime | None


class ContactOut(Schema):
    id: int
    phone_number: str
    timezone: str
    variables: dict
    status: str
    outcome: str
    attempts: int
    next_attempt_at: datetime | None
    attempt_history: list[AttemptOut]


class DoNotCallIn(Schema):
    number: str
    reason: str = ""


class DoNotCallOut(Schema):
    number: str
    source: str
    reason: str
    call_id: UUID | None
    created_at: datetime
