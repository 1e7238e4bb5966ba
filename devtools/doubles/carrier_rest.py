"""Telnyx Call Control and Plivo Call REST doubles in one real HTTP server on
127.0.0.1 (point settings.TELNYX_API_BASE_URL and PLIVO_API_BASE_URL at `url`).
Records every request (method, path, Authorization header, JSON body) and answers
like the carrier: Telnyx actions 200 {"data": {"result": "ok"}}, Plivo DELETE 204.
`fail_next` = (status, body) answers the next request with that instead."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from devtools.doubles.http import LoopbackRestDouble, Reply


@dataclass
class CarrierRequest:
    method: str
    path: str
    authorization: str
    body: dict


class CarrierRestDouble(LoopbackRestDouble):
    def __init__(self):
        super().__init__()
        self.requests: list[CarrierRequest] = []
        self.fail_next: tuple[int, dict] | None = None

    def respond(self, method, path, headers, raw):
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"raw": raw.decode(errors="replace")}
        self.requests.append(CarrierRequest(method, path, headers.get("Authorization", ""), body))
        if self.fail_next is not None:
            (status, answer), self.fail_next = self.fail_next, None
            return Reply(status, answer)
        if method == "POST" and re.fullmatch(r"/v2/calls/[^/]+/actions/\w+", path):
            return Reply(200, {"data": {"result": "ok"}})
        if method == "DELETE" and re.fullmatch(r"/v1/Account/\w+/Call/[\w-]+/", path):
            return Reply(204)
        return Reply(404, {"errors": [{"code": "10005", "title": "Resource not found"}]})
