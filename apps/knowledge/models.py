"""A client's knowledge base (tenant schema): the documents it uploaded and their
chunks with embeddings. Written only through apps.knowledge.services.

Embeddings of any size live in one `vector` column (no fixed dimension) with the
dimension and the model beside it. HNSW needs a fixed dimension, so there is one
partial expression index per common dimension (`embedding::vector(N)` where
`dimensions = N`, cosine distance); a search casts to the same expression and so uses
the index of its model's size. A model of another size (or above pgvector's 2,000
dimension HNSW limit) is still searched, exactly, by a scan. Only chunks of the
client's current embedding model (`KnowledgeSettings`) are searched."""
from __future__ import annotations

from django.db import models
from pgvector.django import VectorField

# Dimensions that get an HNSW index (created in migration 0001_knowledge_base): wordllama (256), MiniLM (384), 512, nomic / bge-base (768),
# bge-large / mxbai (1024), OpenAI text-embedding-3-small and ada-002 (1536).
INDEXED_DIMENSIONS = (256, 384, 512, 768, 1024, 1536)
MAX_DIMENSIONS = 4096


class KnowledgeSettings(models.Model):
    """Which embedding provider (apps.providers.registry kind "embeddings") this client's
    knowledge base uses. One row (pk=1); none: the offline default."""

    embedding_provider = models.CharField(max_length=40, default="wordllama")
    embedding_settings = models.JSONField(default=dict, blank=True)  # e.g. {"model": "text-embedding-3-small"}
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "knowledge base settings"
        verbose_name_plural = "knowledge base settings"

    def __str__(self) -> str:
        return f"{self.embedding_provider} {self.embedding_settings or ''}".strip()


class Document(models.Model):
    class Source(models.TextChoices):
        FILE = "file", "Uploaded file"
        URL = "url", "Web page"

    class Format(models.TextChoices):
        TXT = "txt", "Text"
        MD = "md", "Markdown"
        HTML = "html", "HTML"
        PDF = "pdf", "PDF"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    # The file name or the URL: a re-upload under the same name replaces the document's chunks.
    name = models.CharField(max_length=500, unique=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.FILE)
    url = models.URLField(max_length=2000, blank=True)
    format = models.CharField(max_length=8, choices=Format.choices, blank=True)  # blank: a URL not fetched yet
    file = models.FileField(upload_to="knowledge/", max_length=500, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    # sha256 of the bytes being processed (file: known at upload; URL: after the fetch).
    content_hash = models.CharField(max_length=64, blank=True)
    # sha256 of the bytes the current chunks came from: an upload with this hash changes nothing.
    indexed_hash = models.CharField(max_length=64, blank=True)
    # Bumped by every upload, refresh and re-index: a task works for one generation, and what it
    # finds newer (a re-upload while it ran) wins; its own results are then dropped.
    generation = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)  # percent of the current processing
    error = models.TextField(blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=200, blank=True)  # of the current chunks
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()  # 0-based order in the document
    start_offset = models.PositiveIntegerField()  # character offsets in the extracted text
    end_offset = models.PositiveIntegerField()
    page = models.PositiveIntegerField(null=True, blank=True)  # PDFs: 1-based page the chunk starts on
    text = models.TextField()
    embedding = VectorField()
    dimensions = models.PositiveSmallIntegerField()
    embedding_model = models.CharField(max_length=200)  # "<provider>:<model>", e.g. "wordllama:l2_supercat_256"

    class Meta:
        ordering = ["document", "position"]
        constraints = [models.UniqueConstraint(fields=["document", "position"], name="knowledge_chunk_position")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.position}"
