"""Reads of a client's knowledge base (tenant schema), including the search itself."""
from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import QuerySet

from apps.core.errors import ApplicationError, NotFound
from apps.knowledge.models import INDEXED_DIMENSIONS, Chunk, Document, KnowledgeSettings

DEFAULT_TOP_K = 4
MAX_TOP_K = 20
MAX_QUERY_CHARS = 1000


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    document_id: int
    source: str  # the document's name (file name or URL)
    position: int  # the chunk's 0-based position in its document
    start: int  # character offsets in the document's extracted text
    end: int
    page: int | None
    text: str
    score: float  # cosine similarity, 1 = same direction

    def as_dict(self) -> dict:
        return {"source": self.source, "position": self.position, "page": self.page, "start": self.start,
                "end": self.end, "score": round(self.score, 4), "text": self.text, "chunk_id": self.chunk_id,
                "document_id": self.document_id}


@dataclass(frozen=True)
class SearchResult:
    query: str
    embedding_model: str
    passages: list[Passage]
    embed_ms: float
    search_ms: float


def knowledge_settings_get() -> KnowledgeSettings:
    """The client's settings (not saved when it has none: the offline default)."""
    return KnowledgeSettings.objects.filter(pk=1).first() or KnowledgeSettings(pk=1)


def knowledge_embedder():
    """The client's embedder, built through the provider registry with a usable key."""
    from apps.providers.registry import build, provider_spec_for

    settings = knowledge_settings_get()
    spec = provider_spec_for(kind="embeddings", provider=settings.embedding_provider,
                             settings=settings.embedding_settings)
    return build("embeddings", spec)


def document_list() -> QuerySet[Document]:
    return Document.objects.order_by("name")


def document_get(*, document_id: int) -> Document:
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        raise NotFound("No such document.", details={"document_id": document_id})
    return document


def document_chunks(*, document_id: int) -> QuerySet[Chunk]:
    return Chunk.objects.filter(document_id=document_id).order_by("position")


def chunk_search(*, vector: list[float], embedding_model: str, top_k: int = DEFAULT_TOP_K) -> list[Passage]:
    """The `top_k` chunks of `embedding_model` nearest to `vector` (cosine). Vectors of an
    indexed dimension go through that dimension's HNSW index (the same cast expression
    the index is built on); others are compared exactly, by a scan."""
    dimensions = len(vector)
    # One hand-written statement (the ORM's compilation of a 256-1536 number literal cost more than the
    # search itself); the ORDER BY is the indexed expression, so the planner walks that HNSW index.
    column = f"c.embedding::vector({dimensions})" if dimensions in INDEXED_DIMENSIONS else "c.embedding"
    cast = f"::vector({dimensions})" if dimensions in INDEXED_DIMENSIONS else "::vector"
    literal = "[" + ",".join(repr(float(value)) for value in vector) + "]"
    with transaction.atomic(), connection.cursor() as cursor:
        # The index walk's candidate list (pgvector's default is 40): wider finds answers that sit apart
        # from the bulk of a client's text (benchmarks/knowledge_search.py measures recall against exact).
        cursor.execute(f"SET LOCAL hnsw.ef_search = {int(django_settings.KNOWLEDGE_HNSW_EF_SEARCH)}")
        cursor.execute(
            f"SELECT c.id, c.document_id, d.name, c.position, c.start_offset, c.end_offset, c.page, c.text, "
            f"({column} <=> %s{cast}) AS distance "
            f"FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id "
            f"WHERE c.dimensions = %s AND c.embedding_model = %s ORDER BY {column} <=> %s{cast} LIMIT %s",
            [literal, dimensions, embedding_model, literal, top_k])
        rows = cursor.fetchall()
    return [Passage(chunk_id=row[0], document_id=row[1], source=row[2], position=row[3], start=row[4], end=row[5],
                    page=row[6], text=row[7], score=1.0 - float(row[8])) for row in rows]


def knowledge_tool_search(*, query: str, top_k: int = DEFAULT_TOP_K) -> dict:
    """What the voice runtime's `search_knowledge_base` tool gets (apps.voice.records)."""
    result = knowledge_search(query=query, top_k=top_k)
    return {"embedding_model": result.embedding_model, "passages": [p.as_dict() for p in result.passages]}


def knowledge_search(*, query: str, top_k: int = DEFAULT_TOP_K, embedder=None) -> SearchResult:
    """The passages of the client's knowledge base nearest to `query`."""
    query = (query or "").strip()
    if not query:
        raise ApplicationError("Ask a question or give some words to search for.", details={"query": ""})
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
        raise ApplicationError(f"top_k must be between 1 and {MAX_TOP_K}.", details={"top_k": top_k})
    query = query[:MAX_QUERY_CHARS]
    embedder = embedder or knowledge_embedder()
    started = time.perf_counter()
    vector = embedder.embed([query])[0]
    embedded = time.perf_counter()
    passages = chunk_search(vector=vector, embedding_model=embedder.model_id, top_k=top_k)
    return SearchResult(query=query, embedding_model=embedder.model_id, passages=passages,
                        embed_ms=(embedded - started) * 1000, search_ms=(time.perf_counter() - embedded) * 1000)
