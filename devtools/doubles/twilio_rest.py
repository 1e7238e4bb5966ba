"""A Twilio REST API double: a real HTTP server on 127.0.0.1 that the twilio SDK
reaches when settings.TWILIO_API_BASE_URL points at it. It records every request
(method, path, basic-auth user, form fields) and answers like Twilio. `dials` counts the
calls created per To number (a dialer test asserts no number was dialled twice);
`dial_delay_secs` holds each create that long after counting it (the carrier has placed the call,
the dialer has not heard back: a worker killed then must not dial again). `most_in_flight`: the
most creates answered at once; `hold_until_in_flight` holds each create (up to 10 s) until that
many have been in flight together (a dialer test proves its dials overlap without timing them)."""
from __future__ import annotations

import base64
import re
import threading
import time
from collections import Counter
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
        self.dials: Counter = Counter()
        self.dial_delay_secs = 0.0
        self.most_in_flight = 0
        self.hold_until_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._flight = threading.Condition()

    def respond(self, method, path, headers, raw):
        form = parse_qs(raw.decode(), keep_blank_values=True)
        user = base64.b64decode(headers.get("Authorization", "Basic ").split(" ", 1)[1] or b"").decode().split(":")[0]
        self.requests.append(RecordedRequest(method, path, user, form))
        create = re.fullmatch(r"/2010-04-01/Accounts/(\w+)/Calls\.json", path)
        update = re.fullmatch(r"/2010-04-01/Accounts/(\w+)/Calls/(\w+)\.json", path)
        if create and self.fail_with:
            return Reply(*self.fail_with)
        if create:
            with self._lock:  # the server is threaded: concurrent dials get distinct sids
                self._count += 1
                count = self._count
                self.dials[form["To"][0]] += 1
            with self._flight:
                self._in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self._in_flight)
                self._flight.notify_all()
                if self.hold_until_in_flight:
                    self._flight.wait_for(lambda: self.most_in_flight >= self.hold_until_in_flight, timeout=10)
            try:
                if self.dial_delay_secs:
                    time.sleep(self.dial_delay_secs)
            finally:
                with self._flight:
                    self._in_flight -= 1
            return Reply(201, {"sid": f"CA{count:032d}", "account_sid": create.group(1), "status": "queued",
                               "to": form["To"][0], "from": form["From"][0]})
        if update:
            return Reply(200, {"sid": update.group(2), "account_sid": update.group(1),
                               "status": form.get("Status", ["in-progress"])[0]})
        return Reply(404, {"code": 20404, "message": "not found", "status": 404})
