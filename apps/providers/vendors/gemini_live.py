"""Google Gemini Live: speech to speech over the Live API's BidiGenerateContent websocket
(Pipecat's GeminiLiveLLMService, through google-genai).

An account's base URL (optional) replaces `https://generativelanguage.googleapis.com`:
google-genai opens the websocket at that host, always over TLS (wss://, whatever the
base URL's scheme), so a gateway standing in must serve TLS with a certificate the process
trusts: a public one, or one signed by a CA in settings.PROVIDER_EXTRA_CA_CERTS (which is how
the tests trust devtools/doubles/gemini_live_server.py). Turns are Gemini's own voice activity
detection; the caller's words come from its input transcription, usage (by modality) from the
`usage_metadata` of each turn."""
from __future__ import annotations

import functools

from pipecat.utils.errors import ErrorCategory

from apps.billing.pricing import VendorPrice
from apps.providers.registry import Setting, Vendor
from apps.providers.vendor_errors import vendor_error_parts, vendor_error_report
from apps.providers.vendors._common import S2S_METRICS, extra_ca_ssl_context, language

S2S_SCHEMA = {
    "model": Setting(str, required=True, help="e.g. gemini-2.5-flash-native-audio-preview-09-2025"),
    "voice": Setting(str, help="e.g. Charon, Puck, Kore"),
}


@functools.cache
def _service_class():  # Pipecat's Google modules load when a call needs them, not with the registry
    from loguru import logger
    from pipecat.services.google.gemini_live.llm import MAX_CONSECUTIVE_FAILURES, GeminiLiveLLMService

    from apps.voice.config import TOOL_END_CALL, TOOL_TRANSFER

    class GeminiLiveService(GeminiLiveLLMService):
        """Pipecat's service, with end_call and transfer_to_human declared NON_BLOCKING (where
        the model takes that): their results (`run_llm=False`: the session speaks its own line)
        then go back SILENT. Gemini answers every result of a blocking call, and its own
        "Goodbye!" would play before ours; a result left unsent would leave the turn open and
        its usage unreported."""

        def _function_is_async(self, function_name: str) -> bool:
            return function_name in (TOOL_END_CALL, TOOL_TRANSFER) or super()._function_is_async(function_name)

        async def _connection_task_handler(self, config):
            """A connection refused at its setup (quota spent, service down: the API closes the
            websocket before `setupComplete`) counts as a failure too, as one lost later does:
            Pipecat only counts the latter, so a refused reconnect left the call silent. After the
            third in a row the error reaches the session (the fallback line). Pinned by
            apps/voice/tests/test_gemini_live.py (the outage test)."""
            try:
                await super()._connection_task_handler(config)
            except Exception as error:  # noqa: BLE001 - google-genai raises APIError, websockets' own, OSError
                if self._disconnecting:
                    return
                if await self._handle_connection_error(error):
                    await self._reconnect()

        async def _handle_connection_error(self, error: Exception) -> bool:
            """Pipecat's count of failures in a row, with the last one's cause in the error the
            call records (RESOURCE_EXHAUSTED: the key is throttled, see classify_error)."""
            self._consecutive_failures += 1
            if self._consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                await self.push_error(error_msg=f"Gemini Live failed {self._consecutive_failures} times in a row: "
                                                f"{error}", exception=error)
                return False
            logger.warning(f"Gemini Live connection failed ({self._consecutive_failures}): {error}; reconnecting")
            return True

    return GeminiLiveService


def build_s2s(spec, sample_rate, *, silence_secs: float = 0.5, language_code: str = ""):
    from google.genai.types import HttpOptions
    from pipecat.services.google.gemini_live.llm import GeminiVADParams

    service_class = _service_class()
    values = spec.settings
    ssl_context = extra_ca_ssl_context()
    options = HttpOptions(
        **({"base_url": spec.base_url} if spec.base_url else {}),
        # The websocket's SSL context comes from here (google-genai's async client args).
        **({"async_client_args": {"ssl": ssl_context}} if ssl_context is not None else {}),
    ) if spec.base_url or ssl_context is not None else None
    settings = service_class.Settings(
        model=values["model"], vad=GeminiVADParams(silence_duration_ms=int(round(silence_secs * 1000))),
        **({"voice": values["voice"]} if values.get("voice") else {}),
        **({"language": language(language_code)} if language_code else {}),
    )
    return service_class(api_key=spec.api_key, settings=settings, http_options=options)


def classify_error(error):
    """The Live API closes the websocket with a status word in the reason: RESOURCE_EXHAUSTED
    (rate or quota) cools the key down; the rest as the default reads them."""
    exception, message = vendor_error_parts(error)
    if "RESOURCE_EXHAUSTED" in message:
        return vendor_error_report(category=ErrorCategory.RATE_LIMIT, status_code=429, exception=exception,
                                   message=message)
    return None


_PER_MILLION = 1_000_000

# List prices (USD per 1M tokens): audio in / audio out / text in / text out.
_MODELS = {
    "gemini-2.5-flash-native-audio-preview-09-2025": ("3", "12", "0.50", "2"),
    "gemini-live-2.5-flash-preview": ("3", "12", "0.50", "2"),
    "*": ("3", "12", "0.50", "2"),
}
PRICES = {
    metric: {model: VendorPrice.of(prices[index], per=_PER_MILLION) for model, prices in _MODELS.items()}
    for index, metric in enumerate(S2S_METRICS)
}

VENDOR = Vendor(
    name="gemini_live",
    label="Google Gemini Live",
    settings_schema={"speech_to_speech": S2S_SCHEMA},
    builders={"speech_to_speech": build_s2s},
    metrics={"speech_to_speech": S2S_METRICS},
    prices=PRICES,
    classify_error=classify_error,
)
