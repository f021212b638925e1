#!/usr/bin/env python3
"""A minimal PagerDuty Events API v2 stand-in for bench/pagerduty.sh (Python 3 stdlib only).

Listens on 127.0.0.1 only, on a free port chosen by the kernel, and writes that port to the
file given as the first argument once it accepts connections. One thread, one `selectors` loop
(bench/benchlib.py `serve`).

  POST /v2/enqueue  -> 202 {"status":"success","message":"Event processed","dedup_key":...}
                       (400 when the body is not JSON with routing_key, event_action, dedup_key)
  GET  /stats       -> 200 {"accepted":N,"rejected":N,"server_ms_mean":F,"cpu_s":F,
                             "by_prefix":{"h":{"accepted":N,"keys":N},...}}
                       (counts per dedup_key prefix up to the first "-", so the bench can check
                       that every delivery arrived as its own incident)

It answers every request with `Connection: close`, as each client is a one-shot process. It does
no validation beyond the three required fields; the schema is checked by tests/, not here. The
server, /stats and the counting are bench/benchlib.py's.
"""

import json

from benchlib import FakeHandler, serve


class Handler(FakeHandler):
    server_version = "fake-pagerduty"

    def do_POST(self):
        raw = self.body()
        try:
            ev = json.loads(raw)
            key = ev["dedup_key"]
            ok = self.path == "/v2/enqueue" and bool(ev["routing_key"]) and bool(ev["event_action"])
        except (ValueError, KeyError, TypeError):
            ok, key = False, None
        if ok:
            self.reply(202, {"status": "success", "message": "Event processed", "dedup_key": key})
        else:
            self.reply(400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["bad body"]})
        self.count(ok, key)


if __name__ == "__main__":
    serve(Handler)
