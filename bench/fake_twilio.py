#!/usr/bin/env python3
"""A minimal Twilio stand-in for bench/twilio.sh (Python 3 stdlib only).

Listens on 127.0.0.1 only, on a free port chosen by the kernel, and writes that port to the
file given as the first argument once it accepts connections. One thread, one `selectors` loop
(bench/benchlib.py `serve`).

  POST /2010-04-01/Accounts/{AccountSid}/Calls.json
                    -> 201 {"sid":"CA…","status":"queued",…} when the request carries HTTP Basic
                       auth and the form fields To, From and Twiml (400 otherwise)
  GET  /stats       -> 200 {"accepted":N,"rejected":N,"server_ms_mean":F,"cpu_s":F,
                            "by_prefix":{"h":{"accepted":N,"keys":N},...}}
                       (counted per conference name — the incident key `entity/check`, which the
                       bench's settings put in the TwiML — by its prefix up to the first "-", so
                       the bench can check that every event reached every recipient)

Every answer has `Connection: close`, as each client is a one-shot process. The form is not
checked against the spec; tests/ does that (tests/fake/twilio.rs). The server, /stats and the
counting are bench/benchlib.py's.
"""

import re
import urllib.parse
from typing import ClassVar

from benchlib import FakeHandler, serve

CALLS = re.compile(r"^/2010-04-01/Accounts/AC[0-9a-fA-F]{32}/Calls\.json$")
CONFERENCE = re.compile(r"<Conference>([^<]*)</Conference>")
SERIAL = [0]  # calls answered, for the call SIDs


class Handler(FakeHandler):
    server_version = "fake-twilio"
    not_found: ClassVar[dict] = {"code": 20404, "message": "not found", "more_info": "", "status": 404}

    def do_POST(self):
        raw = self.body()
        form = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace")))
        ok = (
            CALLS.match(self.path) is not None
            and (self.headers.get("Authorization") or "").startswith("Basic ")
            and all(form.get(k) for k in ("To", "From", "Twiml"))
        )
        m = CONFERENCE.search(form.get("Twiml", ""))
        key = m.group(1) if m else ""
        with self.lock:
            SERIAL[0] += 1
            sid = f"CA{SERIAL[0]:032x}"
        if ok:
            self.reply(201, {"sid": sid, "status": "queued", "to": form["To"], "from": form["From"]})
        else:
            self.reply(400, {"code": 21205, "message": "bad request", "more_info": "", "status": 400})
        self.count(ok, key)


if __name__ == "__main__":
    serve(Handler)
