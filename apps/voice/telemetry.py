"""OpenTelemetry spans of one call: call → turn → stt / llm / tts / tool.

Pipecat's own tracing makes the service spans (`stt`, `llm`, `tts`: model, text, TTFB,
tokens; pipecat/utils/tracing/service_decorators.py) under the turn span that the
pipeline's `TracingContext` names. The call span and the turn spans are made here,
from `CallTracer`'s turns, because those are the `Turn` rows: each turn span carries
exactly the row's latencies (`turn.stt_final_ms`, `turn.llm_ttft_ms`,
`turn.tts_ttfb_ms`, `turn.voice_to_voice_ms`). Pipecat's own turn observer counts
turns differently (a turn starts when the caller starts speaking, acknowledgements
included), so its turn spans would not line up with the rows.

A turn row opens at the caller's transcript, but Pipecat opens the STT span earlier,
inside the STT service, when that transcript is pushed. So when the caller starts a
new turn (VAD start) the next turn's span id is reserved and named as the turn
context; the turn span is made with that id when the row opens (`_CallIdGenerator`).
The call span's trace id is the call's UUID (`trace_id_for`), so the record knows
the trace id (and a Langfuse link) before the call runs.

Process-wide: one TracerProvider (Pipecat's decorators use the global one) whose
`RoutingSpanProcessor` sends each call's spans to that call's destinations (the
agency's OTLP collector, the agency's or the client's Langfuse), each through a
batch processor (a thread of its own: nothing is exported on the event loop). A call
without destinations is not traced at all: `enable_tracing` stays off and no span is
made (Pipecat's service wrappers only read one attribute per frame).

Knows no Django: the destinations come in as plain data (apps.observability builds them).
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from pipecat.utils.tracing.tracing_context import TracingContext

logger = logging.getLogger(__name__)

TRACER_NAME = "switchboard.voice"


@dataclass(frozen=True)
class TraceDestination:
    """Where a call's spans go: an OTLP/HTTP traces endpoint (…/v1/traces) and its headers."""

    name: str  # "otlp", "langfuse:agency", "langfuse:client"
    endpoint: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CallTraceSettings:
    """A traced call: its trace id (hex), the call span's attributes and its destinations."""

    trace_id: str
    destinations: tuple[TraceDestination, ...]
    attributes: dict = field(default_factory=dict)


def trace_id_for(call_id: str | uuid.UUID) -> str:
    """The call's trace id: its UUID's 128 bits, as the 32 hex digits OTLP and Langfuse show."""
    return uuid.UUID(str(call_id)).hex


# -- the process-wide provider ----------------------------------------------------------------

_NEXT_TRACE_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar("next_trace_id", default=None)
_NEXT_SPAN_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar("next_span_id", default=None)


class _CallIdGenerator(RandomIdGenerator):
    """Random ids, except that the call span takes the call's trace id and a turn span the
    id that was reserved for it (both set just around `start_span`)."""

    def generate_trace_id(self) -> int:
        forced = _NEXT_TRACE_ID.get()
        return forced if forced is not None else super().generate_trace_id()

    def generate_span_id(self) -> int:
        forced = _NEXT_SPAN_ID.get()
        return forced if forced is not None else super().generate_span_id()


class RoutingSpanProcessor(SpanProcessor):
    """Sends each finished span to the destinations of its call (by trace id); spans of a
    trace nobody routed are dropped. One batch processor per destination, reused by every
    call that goes there."""

    def __init__(self):
        self._lock = threading.Lock()
        self._routes: dict[int, tuple[TraceDestination, ...]] = {}
        self._processors: dict[TraceDestination, BatchSpanProcessor] = {}

    def route(self, trace_id: int, destinations: tuple[TraceDestination, ...]) -> None:
        with self._lock:
            for destination in destinations:
                if destination not in self._processors:
                    exporter = OTLPSpanExporter(endpoint=destination.endpoint, headers=dict(destination.headers),
                                                timeout=10)
                    self._processors[destination] = BatchSpanProcessor(exporter, schedule_delay_millis=1000)
            self._routes[trace_id] = tuple(destinations)

    def unroute(self, trace_id: int) -> None:
        with self._lock:
            self._routes.pop(trace_id, None)

    def on_start(self, span, parent_context=None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        destinations = self._routes.get(span.context.trace_id)
        for destination in destinations or ():
            self._processors[destination].on_end(span)

    def shutdown(self) -> None:
        for processor in list(self._processors.values()):
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(processor.force_flush(timeout_millis) for processor in list(self._processors.values()))


_provider_lock = threading.Lock()
_router: RoutingSpanProcessor | None = None


def router() -> RoutingSpanProcessor:
    """The process's router, installing the global TracerProvider the first time."""
    global _router
    with _provider_lock:
        if _router is None:
            provider = TracerProvider(resource=Resource.create({"service.name": "switchboard"}),
                                      id_generator=_CallIdGenerator())
            _router = RoutingSpanProcessor()
            provider.add_span_processor(_router)
            trace.set_tracer_provider(provider)
            if trace.get_tracer_provider() is not provider:
                logger.warning("another TracerProvider was installed first: call spans will not be exported")
        return _router


def flush(timeout_millis: int = 10000) -> bool:
    """Export every finished span now (tests, shutdown)."""
    return _router.force_flush(timeout_millis) if _router is not None else True


def _start_span(tracer, name: str, *, trace_id: int | None = None, span_id: int | None = None, **kwargs):
    trace_token = _NEXT_TRACE_ID.set(trace_id)
    span_token = _NEXT_SPAN_ID.set(span_id)
    try:
        return tracer.start_span(name, **kwargs)
    finally:
        _NEXT_SPAN_ID.reset(span_token)
        _NEXT_TRACE_ID.reset(trace_token)


# -- one call ---------------------------------------------------------------------------------


def _attribute(value):
    """OTel attributes are str/bool/int/float (or lists of one): drop None, stringify the rest."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return str(value)


class CallTelemetry:
    """The spans of one call. The session makes one when the call has destinations and
    hands `tracing_context` to the pipeline worker; `CallTracer` reports its turns here."""

    def __init__(self, settings: CallTraceSettings):
        self.settings = settings
        self.trace_id = int(settings.trace_id, 16)
        self.tracing_context = TracingContext()
        self._router = router()
        self._tracer = trace.get_tracer(TRACER_NAME)
        self._call_span = None
        self._turn_span = None
        self._reserved: tuple[int, int] | None = None  # (span id, start time ns) of the next turn
        self._random = random.SystemRandom()

    def start(self) -> None:
        """The call span (root of the trace), then the first turn's reservation."""
        self._router.route(self.trace_id, self.settings.destinations)
        attributes = {key: _attribute(value) for key, value in self.settings.attributes.items()}
        self._call_span = _start_span(self._tracer, "call", trace_id=self.trace_id, kind=SpanKind.SERVER,
                                      attributes={k: v for k, v in attributes.items() if v is not None})
        conversation_id = str(self.settings.attributes.get("call.id") or self.settings.trace_id)
        self.tracing_context.set_conversation_context(self._call_span.get_span_context(), conversation_id)
        self.expect_turn()

    def expect_turn(self) -> None:
        """A new turn is about to start (the caller started speaking after the agent answered):
        what Pipecat's services start from now on is a child of that turn."""
        if self._reserved is not None or self._call_span is None:
            return
        span_id = self._random.getrandbits(64) or 1
        self._reserved = (span_id, time.time_ns())
        self.tracing_context.set_turn_context(SpanContext(
            trace_id=self.trace_id, span_id=span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)))

    def turn_opened(self, index: int) -> None:
        if self._call_span is None:
            return
        self.expect_turn()
        span_id, started = self._reserved
        self._reserved = None
        parent = trace.set_span_in_context(self._call_span)
        self._turn_span = _start_span(self._tracer, "turn", span_id=span_id, context=parent, start_time=started,
                                      attributes={"turn.index": index})
        self.tracing_context.set_turn_context(self._turn_span.get_span_context())

    def turn_closed(self, turn: dict) -> None:
        """The turn's row is final: its latencies and text on the span, then the span ends."""
        span, self._turn_span = self._turn_span, None
        if span is None:
            return
        for key in ("stt_final_ms", "llm_ttft_ms", "tts_ttfb_ms", "voice_to_voice_ms"):
            if turn.get(key) is not None:
                span.set_attribute(f"turn.{key}", turn[key])
        span.set_attribute("turn.interrupted", bool(turn.get("interrupted")))
        for key in ("user_text", "bot_text", "node", "end_of_turn"):
            if turn.get(key):
                span.set_attribute(f"turn.{key}", str(turn[key]))
        if turn.get("user_text"):
            span.set_attribute("input.value", turn["user_text"])  # what Langfuse shows as the turn's input
        if turn.get("bot_text"):
            span.set_attribute("output.value", turn["bot_text"])
        if turn.get("errors"):
            span.set_attribute("turn.errors", [str(error) for error in turn["errors"]])
            span.set_status(Status(StatusCode.ERROR, str(turn["errors"][0])[:200]))
        span.end()
        if self._reserved is None:
            # Nothing after this turn belongs to it; the next one's services start under the call.
            self.tracing_context.set_turn_context(None)

    def tool_call(self, *, name: str, arguments: dict, duration_secs: float, error: str = "") -> None:
        """A tool the agent used (or the pre-call fetch), as a child of the current turn."""
        if self._call_span is None:
            return
        parent_span = self._turn_span or self._call_span
        end = time.time_ns()
        span = self._tracer.start_span("tool", context=trace.set_span_in_context(parent_span),
                                       start_time=end - int(max(duration_secs, 0.0) * 1e9),
                                       attributes={"tool.name": name, "tool.duration_ms": round(duration_secs * 1000),
                                                   "tool.arguments": _attribute(arguments) or ""})
        if error:
            span.set_attribute("tool.error", error)
            span.set_status(Status(StatusCode.ERROR, error[:200]))
        span.end(end_time=end)

    def finish(self, *, end_reason: str = "", error: str = "") -> None:
        """After the last turn closed: the call span ends (and with it the call's routing)."""
        span, self._call_span = self._call_span, None
        if span is None:
            return
        if self._turn_span is not None:  # a turn the tracer never closed
            self._turn_span.end()
            self._turn_span = None
        self._reserved = None
        self.tracing_context.set_turn_context(None)
        self.tracing_context.set_conversation_context(None)
        if end_reason:
            span.set_attribute("call.end_reason", end_reason)
        if error:
            span.set_attribute("call.error", error)
            span.set_status(Status(StatusCode.ERROR, error[:200]))
        span.end()
        # Spans still open in Pipecat's services end as the pipeline winds down: let them land.
        try:
            asyncio.get_running_loop().call_later(30.0, self._router.unroute, self.trace_id)
        except RuntimeError:
            self._router.unroute(self.trace_id)
