"""A Twilio REST API double: a real HTTP server on 127.0.0.1 that the twilio SDK
reaches when settings.TWILIO_API_BASE_URL points at it. It records every request
(method, path, basic-auth user, form fields) and answers like Twilio."""
from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class RecordedRequest:
    method: str
    path: str
    account: str
    form: dict  # field -> list of values, as sent


class TwilioRestDouble:
    def __init__(self):
        self.requests: list[RecordedRequest] = []
        self.fail_with: tuple[int, dict] | None = None  # (status, body) to answer the next create with
        self._count = 0
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                user = base64.b64decode(self.headers.get("Authorization", "Basic ").split(" ", 1)[1] or b"").decode().split(":")[0]
                double.requests.append(RecordedRequest("POST", self.path, user, form))
                create = re.fullmatch(r"/2010-04-01/Accounts/(\w+)/Calls\.json", self.path)
                update = re.fullmatch(r"/2010-04-01/Accounts/(\w+)/Calls/(\w+)\.json", self.path)
                if create and double.fail_with:
                    status, body = double.fail_with
                    return self._json(status, body)
                if create:
                    double._count += 1
                    sid = f"CA{double._count:032d}"
                    return self._json(201, {"sid": sid, "account_sid": create.group(1), "status": "queued",
                                            "to": form["To"][0], "from": form["From"][0]})
                if update:
                    return self._json(200, {"sid": update.group(2), "account_sid": update.group(1),
                                            "status": form.get("Status", ["in-progress"])[0]})
                return self._json(404, {"code": 20404, "message": "not found", "status": 404})

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
