from __future__ import annotations

from datetime import datetime

from ninja import Schema


class DocumentOut(Schema):
    id: int
    name: str
    source: str
    url: str
    format: str
    size_bytes: int
    content_hash: str
    status: str
    progress: int
    error: str
    chunk_count: int
    embedding_model: str
    created_at: datetime
    updated_at: datetime
    processed_at: datetime | None


class UploadOut(Schema):
    changed: bool
    document: DocumentOut


class UrlIn(Schema):
    url: str


class PassageOut(Schema):
    source: str
    position: int
    page: int | None
    start: int
    end: int
    score: float
    text: str
    chunk_id: int
    document_id: int


class SearchOut(Schema):
    query: str
    embedding_model: str
    passages: list[PassageOut]
