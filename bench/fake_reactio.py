#!/usr/bin/env python3
"""A minimal Reactio API v1 stand-in for packaging/hot-functions.sh (Python 3 stdlib only).

Listens on 127.0.0.1 only, on a free port chosen by the kernel, and writes that port to the
file given as the first argument once it accepts connections. One thread, one `selectors` loop
(bench/benchlib.py `serve`).

  POST /api/v1/incidents        {"name", …}   -> 201 the incident {"id":N,"name":…,"status":…}
  POST /api/v1/incidents/N/status {"status"}  -> 200 the incident, its status changed
  POST /api/v1/notifications, /api/v1/messages {"incident_id", …} -> 201 {"id":N,…}
                    each needs an `X-Api-Key` header and a JSON object body; otherwise
                    401 {"type":"authentication_error",…} or 400 {"type":"validation_error",…}
  GET  /stats       -> bench/benchlib.py's counts, by incident name prefix up to the first "-"

Requests are not checked against the spec; tests/ does that (tests/fake/reactio.rs).
"""

import re
from typing import ClassVar

from benchlib import FakeHandler, serve

INCIDENTS = {}  # id -> incident
SERIAL = [0]


class Handler(FakeHandler):
    server_version = "fake-reactio"
    not_found: ClassVar[dict] = {"type": "not_found", "message": "not found"}

    def do_POST(self):
        args = self.json_body()
        if not self.headers.get("X-Api-Key"):
            self.reply(401, {"type": "authentication_error", "message": "invalid api key"})
            self.count(False, None)
            return
        if not isinstance(args, dict):
            self.reply(400, {"type": "validation_error", "message": "validation error"})
            self.count(False, None)
            return
        with self.lock:
            SERIAL[0] += 1
            serial = SERIAL[0]
            status = re.fullmatch(r"/api/v1/incidents/(\d+)/status", self.path)
            if self.path == "/api/v1/incidents" and args.get("name"):
                inc = {"id": serial, "name": args["name"], "status": args.get("status", "open")}
                INCIDENTS[serial] = inc
                code, answer, key = 201, inc, inc["name"]
            elif status and int(status.group(1)) in INCIDENTS:
                inc = INCIDENTS[int(status.group(1))]
                inc["status"] = args.get("status", inc["status"])
                code, answer, key = 200, inc, inc["name"]
            elif self.path in ("/api/v1/notifications", "/api/v1/messages") and isinstance(args.get("incident_id"), int) \
                    and args["incident_id"] in INCIDENTS:
                code, answer, key = 201, {"id": serial, **args}, INCIDENTS[args["incident_id"]]["name"]
            else:
                code, answer, key = 404, self.not_found, None
        self.reply(code, answer)
        self.count(code < 300, key)


if __name__ == "__main__":
    serve(Handler)
