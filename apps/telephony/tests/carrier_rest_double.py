"""Telnyx Call Control and Plivo Call REST doubles in one real HTTP server on
127.0.0.1 (point settings.TELNYX_API_BASE_URL and PLIVO_API_BASE_URL at `url`).
Records every request (method, path, Authorization header, JSON body) and answers
like the carrier: Telnyx actions 200 {"data": {"result": "ok"}}, Plivo DELETE 204.
`fail_next` = (status, body) answers the next request with that instead."""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class CarrierRequest:
    method: str
    path: str
    authorization: str
    body: dict


class CarrierRestDouble:
    def __init__(self):
        self.requests: list[CarrierRequest] = []
        self.fail_next: tuple[int, dict] | None = None
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"raw": raw.decode(errors="replace")}
                double.requests.append(CarrierRequest(self.command, self.path, self.headers.get("Authorization", ""), body))
                if double.fail_next is not None:
                    (status, answer), double.fail_next = double.fail_next, None
                    return self._json(status, answer)
                if self.command == "POST" and re.fullmatch(r"/v2/calls/[^/]+/actions/\w+", self.path):
                    return self._json(200, {"data": {"result": "ok"}})
                if self.command == "DELETE" and re.fullmatch(r"/v1/Account/\w+/Call/[\w-]+/", self.path):
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return self._json(404, {"errors": [{"code": "10005", "title": "Resource not found"}]})

            do_POST = do_DELETE = _handle

            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
