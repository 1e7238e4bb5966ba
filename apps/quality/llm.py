"""The reviewer's LLM: one OpenAI-compatible chat request through the `openai` SDK,
pointed at the vendor's base URL with the key the provider registry hands out (the
client's own key first, then the agency's). Streaming with a usage chunk, so token
counts come back the same from OpenAI, OpenAI-compatible servers and the local double.

Only vendors that speak OpenAI's chat API can review (QA_VENDORS); the error a
person sees for another vendor says what to pick instead."""
from __future__ import annotations

from dataclasses import dataclass

import openai

from apps.core.errors import ApplicationError, ProviderError

QA_VENDORS = ("openai", "openai_compatible")
REQUEST_TIMEOUT_SECS = 90.0


@dataclass(frozen=True)
class ChatReply:
    text: str
    input_tokens: int
    output_tokens: int


def qa_llm_spec(*, provider: str, model: str):
    """A ProviderSpec (key, base URL) for the reviewer, without a lease (QA is not a live call)."""
    from apps.providers.registry import provider_spec_for, vendor_get

    if provider not in QA_VENDORS:
        raise ApplicationError(
            f"Post-call QA needs an OpenAI or OpenAI-compatible LLM, not {provider!r}: pick one in the agent's "
            "QA settings (LLM provider).", details={"provider": provider})
    if not model:
        raise ApplicationError("Post-call QA needs an LLM model: set one in the agent's QA settings.")
    spec = provider_spec_for(kind="llm", provider=provider, settings={"model": model})
    vendor = vendor_get(provider)
    if vendor.needs_key and not spec.api_key:
        raise ApplicationError(f"No {vendor.label} key is configured for QA: add one under Provider keys.",
                               details={"provider": provider})
    if vendor.needs_base_url and not spec.base_url:
        raise ApplicationError(f"The {vendor.label} account needs a base URL.", details={"provider": provider})
    return spec


def qa_chat(*, spec, messages: list[dict], json_answer: bool = True, temperature: float = 0,
            what: str = "QA model") -> ChatReply:
    """One chat completion; ProviderError (retryable or not) when the vendor fails. Test personas
    use it too (`json_answer=False`, a little temperature, `what="persona's model"`)."""
    client = openai.OpenAI(api_key=spec.api_key or "none", base_url=spec.base_url or None,
                           timeout=REQUEST_TIMEOUT_SECS, max_retries=1)
    extra = {"response_format": {"type": "json_object"}} if json_answer and spec.provider == "openai" else {}
    try:
        stream = client.chat.completions.create(
            model=spec.settings["model"], messages=messages, temperature=temperature, stream=True,
            stream_options={"include_usage": True}, **extra,
        )
        parts, usage = [], None
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices or []:
                if choice.delta and choice.delta.content:
                    parts.append(choice.delta.content)
    except (openai.RateLimitError, openai.APIConnectionError, openai.InternalServerError) as error:
        raise ProviderError(f"The {what} is unavailable: {error}", retryable=True,
                            details={"provider": spec.provider}) from error
    except openai.APIError as error:
        raise ProviderError(f"The {what} refused the request: {error}", retryable=False,
                            details={"provider": spec.provider}) from error
    return ChatReply(text="".join(parts), input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                     output_tokens=getattr(usage, "completion_tokens", 0) or 0)
