"""Writes of a client's knowledge base (tenant schema).

A document is added by upload (`document_upload`, bytes and a file name) or by URL
(`document_add_url`); either way a Celery task (`knowledge.process_document`) turns it
into chunks: fetch (URLs), extract the text, cut it into overlapping chunks, embed them
through the provider registry, then replace the document's chunks in one transaction.
Progress (percent) is written on the document row while it runs.

- The same name with the same bytes as the indexed version: nothing happens.
- The same name with other bytes: the document keeps answering from its old chunks
  until the new ones replace them, atomically.
- Every upload/refresh bumps `generation`; a task works for one generation and drops its
  results when a newer one arrived meanwhile (idempotent, safe to run twice).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, NotFound
from apps.knowledge import extract
from apps.knowledge.models import MAX_DIMENSIONS, Chunk, Document, KnowledgeSettings
from apps.tenancy.audit import CURRENT, audit_changes, audit_log_record

logger = logging.getLogger(__name__)

EMBED_BATCH = 64  # chunks per embedding request (and per progress update)
MAX_NAME_CHARS = 500


@dataclass(frozen=True)
class UploadOutcome:
    document: Document
    changed: bool  # False: the same bytes were already indexed (or are being), nothing was done


def _enqueue(document: Document) -> None:
    from apps.knowledge.tasks import process_document

    document_id, generation = document.pk, document.generation
    transaction.on_commit(lambda: process_document.delay(document_id, generation))


def _clean_name(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip().replace("\x00", "")
    if not name:
        raise ApplicationError("The file needs a name.", details={"file": ""})
    return name[:MAX_NAME_CHARS]


@transaction.atomic
def document_upload(*, name: str, data: bytes, actor=CURRENT) -> UploadOutcome:
    """Add a file (txt, md, html, pdf) or replace the one of the same name."""
    name = _clean_name(name)
    fmt = extract.format_for_name(name)
    if not data:
        raise ApplicationError(f"{name} is empty.", details={"file": name})
    if len(data) > extract.MAX_UPLOAD_BYTES:
        raise ApplicationError(f"{name} is {len(data) // (1024 * 1024)} MB; the limit is "
                               f"{extract.MAX_UPLOAD_BYTES // (1024 * 1024)} MB.", details={"file": name})
    digest = hashlib.sha256(data).hexdigest()
    document = Document.objects.select_for_update().filter(name=name).first()
    if document is not None and document.source != Document.Source.FILE:
        raise ApplicationError(f"{name} is already a web page in the knowledge base; delete it first.",
                               details={"file": name})
    if document is not None and digest == document.content_hash and document.status != Document.Status.FAILED:
        return UploadOutcome(document=document, changed=False)  # indexed already, or being indexed
    created = document is None
    if created:
        document = Document(name=name, source=Document.Source.FILE)
    else:
        document.generation += 1
        if document.file:
            old_file, storage = document.file.name, document.file.storage
            transaction.on_commit(lambda: storage.delete(old_file))
    document.format, document.size_bytes, document.content_hash = fmt, len(data), digest
    document.status, document.progress, document.error = Document.Status.PENDING, 0, ""
    document.file.save(f"{digest[:16]}-{name}"[:200], ContentFile(data), save=False)
    document.save()
    audit_log_record(actor=actor, client=CURRENT, event_type="knowledge_document_added", target=document,
                     changes={"content_hash": {"before": None if created else "(previous)", "after": digest}})
    _enqueue(document)
    return UploadOutcome(document=document, changed=True)


def _url_problem(url: str) -> str | None:
    from apps.agents.graph import url_problem

    return url_problem(url, private_hosts_ok=django_settings.AGENT_TOOLS_ALLOW_PRIVATE_HOSTS)


@transaction.atomic
def document_add_url(*, url: str, actor=CURRENT) -> Document:
    """Add a web page (fetched and indexed by the task), or re-fetch the one already added."""
    url = (url or "").strip()
    if len(url) > 2000:
        raise ApplicationError("The URL is longer than 2,000 characters.", details={"url": url[:100]})
    problem = _url_problem(url)
    if problem:
        raise ApplicationError(f"The URL {problem}.", details={"url": url})
    document = Document.objects.select_for_update().filter(name=url).first()
    if document is None:
        document = Document.objects.create(name=url, source=Document.Source.URL, url=url)
        audit_log_record(actor=actor, client=CURRENT, event_type="knowledge_document_added", target=document,
                         changes={"url": {"before": None, "after": url}})
    else:
        document.generation += 1
        document.status, document.progress, document.error = Document.Status.PENDING, 0, ""
        document.save(update_fields=["generation", "status", "progress", "error", "updated_at"])
    _enqueue(document)
    return document


@transaction.atomic
def document_reindex(*, document_id: int) -> Document:
    """Process a document again (a failed one, or after the embedding model changed)."""
    document = Document.objects.select_for_update().filter(pk=document_id).first()
    if document is None:
        raise NotFound("No such document.", details={"document_id": document_id})
    document.generation += 1
    document.status, document.progress, document.error = Document.Status.PENDING, 0, ""
    document.save(update_fields=["generation", "status", "progress", "error", "updated_at"])
    _enqueue(document)
    return document


@transaction.atomic
def document_delete(*, document_id: int, actor=CURRENT) -> None:
    document = Document.objects.select_for_update().filter(pk=document_id).first()
    if document is None:
        raise NotFound("No such document.", details={"document_id": document_id})
    audit_log_record(actor=actor, client=CURRENT, event_type="knowledge_document_deleted", target=document,
                     changes={"name": {"before": document.name, "after": None}})
    stored = document.file.name if document.file else ""
    document.delete()  # its chunks go with it (cascade)
    if stored:
        storage = document.file.storage
        transaction.on_commit(lambda: storage.delete(stored))


@transaction.atomic
def knowledge_settings_save(*, embedding_provider: str, embedding_settings: dict | None = None,
                            actor=CURRENT) -> KnowledgeSettings:
    """Choose the embeddings provider. Changing the model re-indexes every document (their
    old chunks keep answering for the old model until then: a search only compares vectors
    of one model)."""
    from apps.providers.registry import provider_config_validate

    embedding_settings = dict(embedding_settings or {})
    provider_config_validate(kind="embeddings", provider=embedding_provider, settings=embedding_settings)
    current = KnowledgeSettings.objects.select_for_update().filter(pk=1).first()
    before = {"embedding_provider": current.embedding_provider, "embedding_settings": current.embedding_settings} \
        if current else {"embedding_provider": KnowledgeSettings().embedding_provider, "embedding_settings": {}}
    after = {"embedding_provider": embedding_provider, "embedding_settings": embedding_settings}
    changes = audit_changes(before, after)
    row, _ = KnowledgeSettings.objects.update_or_create(pk=1, defaults=after)
    if changes:
        audit_log_record(actor=actor, client=CURRENT, event_type="knowledge_settings_changed", target=row,
                         changes=changes)
        for document_id in Document.objects.values_list("pk", flat=True):
            document_reindex(document_id=document_id)
    return row


# --- processing (the task's work) -------------------------------------------------------------------------------


def _progress(document_id: int, generation: int, percent: int) -> bool:
    """Write progress for `generation`; False when a newer generation took over."""
    return bool(Document.objects.filter(pk=document_id, generation=generation).update(
        progress=percent, updated_at=timezone.now()))


def _fail(document_id: int, generation: int, message: str) -> None:
    Document.objects.filter(pk=document_id, generation=generation).update(
        status=Document.Status.FAILED, error=message[:2000], progress=0, updated_at=timezone.now())


def document_process(*, document_id: int, generation: int) -> str:
    """Fetch (URLs), extract, chunk, embed and store one generation of a document. Returns
    what happened: "indexed", "unchanged", "stale" (a newer generation exists), "gone",
    "failed". Raises ProviderError when the embeddings provider failed (the task retries;
    `document_process_failed` records the last failure)."""
    from apps.knowledge.selectors import knowledge_embedder

    with transaction.atomic():
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None:
            return "gone"
        if document.generation != generation:
            return "stale"
        if document.status == Document.Status.READY:
            return "unchanged"  # this generation is done (a task that ran twice)
        document.status, document.progress, document.error = Document.Status.PROCESSING, 1, ""
        document.save(update_fields=["status", "progress", "error", "updated_at"])

    try:
        embedder = knowledge_embedder()
        if document.source == Document.Source.URL:
            fetched = extract.fetch_url(document.url)
            data, fmt = fetched.data, fetched.format
        else:
            with document.file.open("rb") as handle:
                data = handle.read()
            fmt = document.format
        digest = hashlib.sha256(data).hexdigest()
        if digest == document.indexed_hash and embedder.model_id == document.embedding_model:
            Document.objects.filter(pk=document_id, generation=generation).update(
                status=Document.Status.READY, progress=100, content_hash=digest, format=fmt,
                size_bytes=len(data), updated_at=timezone.now())
            return "unchanged"
        _progress(document_id, generation, 5)
        chunks = extract.chunk_text(extract.extract(data, fmt))
    except ApplicationError as error:
        _fail(document_id, generation, error.message)
        return "failed"
    if not _progress(document_id, generation, 10):
        return "stale"

    vectors: list[list[float]] = []
    for start in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[start:start + EMBED_BATCH]
        vectors.extend(embedder.embed([chunk.text for chunk in batch]))
        done = start + len(batch)
        if not _progress(document_id, generation, 10 + int(85 * done / len(chunks))):
            return "stale"
    dimensions = {len(vector) for vector in vectors}
    if len(dimensions) != 1 or not 1 <= next(iter(dimensions)) <= MAX_DIMENSIONS:
        _fail(document_id, generation, f"The embeddings provider answered vectors of sizes {sorted(dimensions)}; "
                                       f"expected one size of at most {MAX_DIMENSIONS}.")
        return "failed"
    size = dimensions.pop()

    with transaction.atomic():
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None:
            return "gone"
        if document.generation != generation:
            return "stale"
        Chunk.objects.filter(document=document).delete()
        Chunk.objects.bulk_create([
            Chunk(document=document, position=chunk.position, start_offset=chunk.start, end_offset=chunk.end,
                  page=chunk.page, text=chunk.text, embedding=vector, dimensions=size,
                  embedding_model=embedder.model_id)
            for chunk, vector in zip(chunks, vectors, strict=True)
        ], batch_size=1000)
        Document.objects.filter(pk=document_id).update(
            status=Document.Status.READY, progress=100, error="", chunk_count=len(chunks), format=fmt,
            content_hash=digest, indexed_hash=digest, size_bytes=len(data), embedding_model=embedder.model_id,
            processed_at=timezone.now(), updated_at=timezone.now())
    return "indexed"


def document_process_failed(*, document_id: int, generation: int, message: str) -> None:
    """The task gave up (the embeddings provider kept failing): say so on the document."""
    _fail(document_id, generation, message)
