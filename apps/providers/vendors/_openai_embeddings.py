"""OpenAI's `/v1/embeddings` as an Embedder (apps.providers.embeddings), for the
`openai` and `openai_compatible` vendors: any hosted or self-hosted server speaking it
(OpenAI, vLLM, Ollama, LM Studio, text-embeddings-inference...)."""
from __future__ import annotations

from apps.core.errors import ProviderError
from apps.providers.registry import Setting

EMBEDDINGS_SCHEMA = {
    "model": Setting(str, required=True, help="e.g. text-embedding-3-small"),
    # text-embedding-3-* can shorten their vectors; 256/384/512/768/1024/1536 get an HNSW index.
    "dimensions": Setting(int, help="ask for vectors of this size (models that support it)", min=1, max=4096),
}
BATCH = 128  # inputs per request
TIMEOUT_SECS = 30.0


class OpenAIEmbedder:
    def __init__(self, *, provider: str, api_key: str, base_url: str, model: str, dimensions: int | None):
        self.provider, self.api_key, self.base_url = provider, api_key, base_url
        self.model, self.dimensions = model, dimensions
        suffix = f"@{dimensions}" if dimensions else ""
        self.model_id = f"{provider}:{model}{suffix}"
        self.tokens = 0  # input tokens the server reported, for whoever meters them

    def _client(self):
        from openai import OpenAI

        kwargs = {"base_url": self.base_url} if self.base_url else {}
        return OpenAI(api_key=self.api_key or "none", timeout=TIMEOUT_SECS, max_retries=1, **kwargs)

    def embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        client = self._client()
        vectors: list[list[float]] = []
        extra = {"dimensions": self.dimensions} if self.dimensions else {}
        try:
            for start in range(0, len(texts), BATCH):
                batch = list(texts[start:start + BATCH])
                answer = client.embeddings.create(model=self.model, input=batch, encoding_format="float", **extra)
                data = sorted(answer.data, key=lambda item: item.index)
                if len(data) != len(batch):
                    raise ProviderError(f"The embeddings server answered {len(data)} vectors for {len(batch)} "
                                        "passages.", retryable=False, details={"provider": self.provider})
                vectors.extend(list(item.embedding) for item in data)
                self.tokens += getattr(answer.usage, "prompt_tokens", 0) or 0
        except openai.APIStatusError as error:
            raise ProviderError(f"The embeddings server refused the request (HTTP {error.status_code}): "
                                f"{str(error)[:200]}", retryable=error.status_code == 429 or error.status_code >= 500,
                                details={"provider": self.provider, "status": error.status_code}) from None
        except openai.APIConnectionError as error:
            raise ProviderError(f"The embeddings server could not be reached: {str(error)[:200]}", retryable=True,
                                details={"provider": self.provider}) from None
        finally:
            client.close()
        return vectors


def build_embeddings(spec, _sample_rate=None) -> OpenAIEmbedder:
    return OpenAIEmbedder(provider=spec.provider, api_key=spec.api_key, base_url=spec.base_url,
                          model=spec.settings["model"], dimensions=spec.settings.get("dimensions"))
