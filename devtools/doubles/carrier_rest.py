"""Telnyx Call Control, Plivo Call and Vonage Voice REST doubles in one real HTTP server
on 127.0.0.1 (point settings.TELNYX_API_BASE_URL, PLIVO_API_BASE_URL and
VONAGE_API_BASE_URL at `url`). Records every request (method, path, Authorization
header, JSON body) and answers like the carrier:

- Telnyx: dial POST /v2/calls 200 {"data": {"call_control_id": "v3:double-<n>", ...}};
  actions POST /v2/calls/<id>/actions/<action> 200 {"data": {"result": "ok"}}.
- Plivo: make call POST /v1/Account/<auth id>/Call/ 201 {"request_uuid": ...}; transfer
  POST /v1/Account/<auth id>/Call/<uuid>/ 202; hang-up DELETE /v1/Account/<auth id>/Call/<uuid>/ 204.
- Vonage: create call POST /v1/calls 201 {"uuid": ..., "status": "started", ...};
  hang-up / transfer PUT /v1/calls/<uuid> 204.

`fail_next` = (status, body) answers the next request with that instead."""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

from devtools.doubles.http import LoopbackRestDouble, Reply


@dataclass
class CarrierRequest:
    method: str
    path: str
    authorization: str
    body: dict


class CarrierRestDouble(LoopbackRestDouble):
    methods = ("GET", "POST", "PUT", "DELETE")

    def __init__(self):
        super().__init__()
        self.requests: list[CarrierRequest] = []
        self.fail_next: tuple[int, dict] | None = None
        self._count = 0

    def _next_id(self) -> int:
        self._count += 1
        return self._count

    def respond(self, method, path, headers, raw):
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"raw": raw.decode(errors="replace")}
        self.requests.append(CarrierRequest(method, path, headers.get("Authorization", ""), body))
        if self.fail_next is not None:
            (status, answer), self.fail_next = self.fail_next, None
            return Reply(status, answer)
        if method == "POST" and path == "/v2/calls":
            n = self._next_id()
            return Reply(200, {"data": {"call_control_id": f"v3:double-{n}", "call_leg_id": str(uuid.uuid4()),
                                        "call_session_id": str(uuid.uuid4()), "is_alive": False,
                                        "record_type": "call"}})
        if method == "POST" and re.fullmatch(r"/v2/calls/[^/]+/actions/\w+", path):
            return Reply(200, {"data": {"result": "ok"}})
        if method == "POST" and re.fullmatch(r"/v1/Account/\w+/Call/", path):
            n = self._next_id()
            return Reply(201, {"api_id": str(uuid.uuid4()), "message": "call fired",
                               "request_uuid": f"00000000-0000-4000-8000-{n:012d}"})
        if method == "POST" and re.fullmatch(r"/v1/Account/\w+/Call/[\w-]+/", path):
            return Reply(202, {"api_id": str(uuid.uuid4()), "message": "call transferred"})
        if method == "DELETE" and re.fullmatch(r"/v1/Account/\w+/Call/[\w-]+/", path):
            return Reply(204)
        if method == "POST" and path == "/v1/calls":
            n = self._next_id()
            return Reply(201, {"uuid": f"63f61863-4a51-4f6b-86e1-{n:012d}", "status": "started",
                               "direction": "outbound", "conversation_uuid": f"CON-{n:08d}"})
        if method == "PUT" and re.fullmatch(r"/v1/calls/[\w-]+", path):
            return Reply(204)
        return Reply(404, {"errors": [{"code": "10005", "title": "Resource not found"}]})
