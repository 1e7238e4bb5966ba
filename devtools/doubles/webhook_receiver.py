"""A client's webhook receiver for tests: a real threaded HTTP server on 127.0.0.1
that records every request (headers, raw body) and answers from a script.

    with WebhookReceiver(statuses=[500, 500]) as receiver:   # then 200 for ever
        ... endpoint url = receiver.url ...
        receiver.requests[0].headers["webhook-id"]

`hold_first=True` keeps the first request open (no answer) until `release()`: a
worker can be killed while it waits for the response."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict
    body: bytes
    at: float


class WebhookReceiver:
    def __init__(self, *, statuses: list[int] | None = None, hold_first: bool = False):
        self.statuses = list(statuses or [])
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._held = threading.Event()
        self._release = threading.Event()
        self.hold_first = hold_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.requests.append(ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                             body, time.monotonic()))
                    first = len(receiver.requests) == 1
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if first and receiver.hold_first:
                    receiver._held.set()
                    receiver._release.wait(60)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender is gone (a killed worker)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_held(self, timeout: float = 30.0) -> bool:
        """Until the first request arrived and is being held."""
        return self._held.wait(timeout)

    def release(self) -> None:
        self._release.set()

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
