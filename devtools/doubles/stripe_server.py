"""A local Stripe: a real HTTP server on 127.0.0.1 speaking the subset of Stripe's
REST wire format that billing uses (form-encoded requests, JSON objects,
Idempotency-Key replays, Bearer auth, Stripe error envelopes). The stripe SDK
reaches it through StripeClient(base_addresses={"api": double.url})."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse


class StripeDouble:
    def __init__(self, api_key: str = "sk_test_double"):
        self.api_key = api_key
        self.objects: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.idempotent: dict[str, tuple[int, dict]] = {}
        self.fail_next: dict[str, int] = {}  # path prefix -> how many 500s to answer
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> StripeDouble:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_type(self, obj: str) -> list[dict]:
        return [o for o in self.objects.values() if o["object"] == obj]

    # -- behaviour ----------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def _route(self, method: str, path: str, form: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/customers":
            obj = {
                "id": self._new_id("cus"),
                "object": "customer",
                "name": form.get("name"),
                "email": form.get("email"),
                "metadata": _metadata(form),
            }
        elif method == "POST" and path == "/v1/invoices":
            obj = {
                "id": self._new_id("in"),
                "object": "invoice",
                "status": "draft",
                "customer": form["customer"],
                "currency": form.get("currency"),
                "collection_method": form.get("collection_method"),
                "metadata": _metadata(form),
                "hosted_invoice_url": None,
                "total": 0,
                "amount_due": 0,
            }
        elif method == "POST" and path == "/v1/invoiceitems":
            invoice = self.objects.get(form.get("invoice", ""))
            if invoice is None:
                return 404, _error("No such invoice", "resource_missing")
            if invoice["status"] != "draft":
                return 400, _error("Invoice is not a draft", "invoice_not_editable")
            obj = {
                "id": self._new_id("ii"),
                "object": "invoiceitem",
                "invoice": invoice["id"],
                "customer": form["customer"],
                "amount": int(form["amount"]),
                "currency": form["currency"],
                "description": form.get("description"),
            }
            invoice["total"] += obj["amount"]
            invoice["amount_due"] = invoice["total"]
        elif len(parts) == 3 and parts[1] == "invoices" and method == "GET":
            invoice = self.objects.get(parts[2])
            return (200, invoice) if invoice else (404, _error("No such invoice", "resource_missing"))
        elif len(parts) == 4 and parts[1] == "invoices" and parts[3] == "finalize" and method == "POST":
            invoice = self.objects.get(parts[2])
            if invoice is None:
                return 404, _error("No such invoice", "resource_missing")
            if invoice["status"] != "draft":
                return 400, _error("This invoice is already finalized", "invoice_already_finalized")
            invoice["status"] = "open"
            invoice["hosted_invoice_url"] = f"https://invoice.stripe.test/i/{invoice['id']}"
            return 200, invoice
        else:
            return 404, _error(f"Unrecognized request URL ({method}: {path})", "resource_missing")
        self.objects[obj["id"]] = obj
        return 200, obj

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                path = urlparse(self.path).path
                form = dict(parse_qsl(body, keep_blank_values=True))
                if self.headers.get("Authorization") != f"Bearer {double.api_key}":
                    return self._send(401, _error("Invalid API Key provided", None, "invalid_request_error"))
                key = self.headers.get("Idempotency-Key")
                with double._lock:
                    double.requests.append((method, path, form))
                    for prefix, count in list(double.fail_next.items()):
                        if path.startswith(prefix) and count > 0:
                            double.fail_next[prefix] = count - 1
                            return self._send(500, _error("Something went wrong", None, "api_error"))
                    if method == "POST" and key and key in double.idempotent:
                        status, payload = double.idempotent[key]
                        return self._send(status, payload, replayed=True)
                    status, payload = double._route(method, path, form)
                    if method == "POST" and key:
                        double.idempotent[key] = (status, json.loads(json.dumps(payload)))
                return self._send(status, payload)

            def _send(self, status, payload, replayed=False):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_double")
                if replayed:
                    self.send_header("Idempotent-Replayed", "true")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

        return Handler


def _metadata(form: dict) -> dict:
    return {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")}


def _error(message: str, code: str | None, kind: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": kind, "code": code}}
