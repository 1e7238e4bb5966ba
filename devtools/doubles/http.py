"""A base for vendor REST doubles: a real threaded HTTP server on 127.0.0.1
that the vendor's SDK reaches through its base-URL setting. Subclasses answer
requests in `respond`; the server's life is a context manager."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Reply:
    """What `respond` returns: a status and a JSON body (None: no body)."""

    def __init__(self, status: int, body: dict | None = None):
        self.status, self.body = status, body


class LoopbackRestDouble:
    methods = ("GET", "POST", "DELETE")

    def __init__(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: tests read `requests`, not logs
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                reply = double.respond(self.command, self.path, self.headers, raw)
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        for method in self.methods:
            setattr(Handler, f"do_{method}", Handler._handle)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def respond(self, method: str, path: str, headers, raw: bytes) -> Reply:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
