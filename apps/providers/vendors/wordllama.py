"""WordLlama: local, offline embeddings (the knowledge base's default). The PyPI
package `wordllama` ships its model (l2_supercat, 256 dimensions) and tokenizer inside
the wheel; it is loaded from the package's own folder with downloads disabled (its
default path would try to fetch the tokenizer file the wheel already holds). About a
second to load, once per process; then ~0.1 ms per passage on a CPU. No key, no network."""
from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from apps.providers.registry import Vendor

MODEL = "l2_supercat_256"
DIMENSIONS = 256
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _model():
    import wordllama
    from wordllama import WordLlama

    return WordLlama.load(config="l2_supercat", dim=DIMENSIONS, cache_dir=Path(wordllama.__file__).parent,
                          disable_download=True)


def model():
    """The process's one WordLlama model (loaded on first use; thread-safe)."""
    with _lock:
        return _model()


class WordLlamaEmbedder:
    model_id = f"wordllama:{MODEL}"
    dimensions = DIMENSIONS

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return model().embed(list(texts)).astype("float32").tolist()


def build_embeddings(spec, _sample_rate=None) -> WordLlamaEmbedder:
    return WordLlamaEmbedder()


VENDOR = Vendor(
    name="wordllama",
    label="WordLlama (local, offline)",
    settings_schema={"embeddings": {}},
    builders={"embeddings": build_embeddings},
    metrics={"embeddings": ()},  # runs on our own CPU: nothing to bill per token
    needs_key=False,
)
