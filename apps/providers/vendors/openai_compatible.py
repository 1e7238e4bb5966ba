"""Any server speaking the OpenAI API at its own base_url: Groq, OpenRouter,
Ollama, vLLM for the LLM; a self-hosted Whisper server for STT; an
OpenAI-style TTS server; any `/v1/embeddings` server (vLLM, Ollama,
text-embeddings-inference, a hosted one) for the knowledge base. The account row
carries the base_url."""
from __future__ import annotations

from apps.providers.registry import Vendor
from apps.providers.vendors._common import LLM_METRICS, STT_METRICS, TTS_METRICS
from apps.providers.vendors._openai_embeddings import EMBEDDINGS_SCHEMA, build_embeddings
from apps.providers.vendors.openai import (
    LLM_SCHEMA,
    STT_SCHEMA,
    TTS_SCHEMA,
    build_llm,
    build_stt,
    build_tts,
    classify_error,
)

VENDOR = Vendor(
    name="openai_compatible",
    label="OpenAI-compatible server",
    settings_schema={"stt": STT_SCHEMA, "llm": LLM_SCHEMA, "tts": TTS_SCHEMA, "embeddings": EMBEDDINGS_SCHEMA},
    builders={"stt": build_stt, "llm": build_llm, "tts": build_tts, "embeddings": build_embeddings},
    metrics={"stt": STT_METRICS, "llm": LLM_METRICS, "tts": TTS_METRICS, "embeddings": ("embedding_tokens",)},
    needs_base_url=True,
    classify_error=classify_error,  # servers that copy OpenAI copy its insufficient_quota too
)
