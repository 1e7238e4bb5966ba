"""A local OTLP/HTTP trace receiver (an OpenTelemetry collector's or Langfuse's
`/v1/traces`): a real threaded HTTP server on 127.0.0.1 that parses each
`ExportTraceServiceRequest` (protobuf, optionally gzip) with opentelemetry-proto and
keeps the spans, the path and the headers they came with.

    with OtlpReceiver() as receiver:
        endpoint = receiver.url + "/v1/traces"            # OTLP collector
        endpoint = receiver.url + "/api/public/otel/v1/traces"   # Langfuse's OTLP endpoint
        ...
        spans = receiver.wait_for(lambda spans: any(s.name == "call" for s in spans))
"""
from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in any_value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in any_value.kvlist_value.values}
    return None if kind is None else getattr(any_value, kind)


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    attributes: dict
    start_ns: int
    end_ns: int
    status_code: int  # 0 unset, 1 ok, 2 error
    resource: dict
    path: str
    headers: dict  # lower-case names

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


class OtlpReceiver:
    def __init__(self, *, status: int = 200):
        self.status = status
        self.spans: list[ReceivedSpan] = []
        self.requests: list[tuple[str, dict]] = []  # (path, headers) of every export
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                try:
                    request.ParseFromString(body)
                except Exception:  # noqa: BLE001 - not OTLP protobuf: a 400, as a collector answers
                    self._answer(400, b"")
                    return
                receiver._keep(self.path, headers, request)
                self._answer(receiver.status, ExportTraceServiceResponse().SerializeToString())

            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _keep(self, path: str, headers: dict, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(ReceivedSpan(
                        name=span.name, trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        start_ns=span.start_time_unix_nano, end_ns=span.end_time_unix_nano,
                        status_code=span.status.code, resource=resource, path=path, headers=headers,
                    ))
        with self._lock:
            self.requests.append((path, headers))
            self.spans.extend(spans)

    def received(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def wait_for(self, condition, timeout: float = 20.0) -> list[ReceivedSpan]:
        """The spans once `condition(spans)` holds; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.received()
            if condition(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"the OTLP receiver did not get the expected spans: {[s.name for s in spans]}")
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
