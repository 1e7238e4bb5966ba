"""A Twilio REST API double: a real HTTP server on 127.0.0.1 that the twilio SDK
reaches when settings.TWILIO_API_BASE_URL points at it. It records every request
(method, path, basic-auth user, form fields) and answers like Twilio."""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from devtools.doubles.http import LoopbackRestDouble, Reply


@dataclass
class RecordedRequest:
    method: str
    path: str
    account: str
    form: dict  # field -> list of values, as sent


class TwilioRestDouble(LoopbackRestDouble):
    def __init__(self):
        super().__init__()
        self.requests: list[RecordedRequest] = []
        self.fail_with: tuple[int, dict] | None = None  # (status, body) to answer the next create with
        self._count = 0

    def respond(self, method, path, headers, raw):
        form = parse_qs(raw.decode(), keep_blank_values=True)
        user = base64.b64decode(headers.get("Authorization", "Basic ").split(" ", 1)[1] or b"").decode().split(":")[0]
        self.requests.append(RecordedRequest(method, path, user, form))
        create = re.fullmatch(r"/2010-04-01/Accounts/(\w+)/Calls\.json", path)
        update = re.fullmatch(r"/2010-04-01/Accounts/(\w+)/Calls/(\w+)\.json", path)
        if create and self.fail_with:
            return Reply(*self.fail_with)
        if create:
            self._count += 1
            return Reply(201, {"sid": f"CA{self._count:032d}", "account_sid": create.group(1), "status": "queued",
                               "to": form["To"][0], "from": form["From"][0]})
        if update:
            return Reply(200, {"sid": update.group(2), "account_sid": update.group(1),
                               "status": form.get("Status", ["in-progress"])[0]})
        return Reply(404, {"code": 20404, "message": "not found", "status": 404})
