"""What an embeddings vendor builds (registry kind "embeddings"): an `Embedder`.

    embedder = registry.build("embeddings", spec)
    vectors = embedder.embed(["passage one", "passage two"])   # blocking; off the event loop

`model_id` ("<provider>:<model>") is stored on every chunk, so a search only compares
vectors of one model. `embed` raises ProviderError (retryable or not) when the vendor
fails."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Embedder(Protocol):
    model_id: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...


@dataclass(frozen=True)
class EmbeddingBatch:
    vectors: list[list[float]]
    tokens: int = 0
