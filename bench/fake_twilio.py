#!/usr/bin/env python3
"""A minimal Twilio stand-in for bench/twilio.sh (Python 3 stdlib only).

Listens on 127.0.0.1 only, on a free port chosen by the kernel, and writes that port to the
file given as the first argument once it accepts connections. One thread per connection.

  POST /2010-04-01/Accounts/{AccountSid}/Calls.json
                    -> 201 {"sid":"CA…","status":"queued",…} when the request carries HTTP Basic
                       auth and the form fields To, From and Twiml (400 otherwise)
  GET  /stats       -> 200 {"accepted":N,"rejected":N,"server_ms_mean":F,"cpu_s":F,
                            "by_prefix":{"h":{"accepted":N,"keys":N},...}}
                       (counted per conference name — the incident key `entity/check`, which the
                       bench's settings put in the TwiML — by its prefix up to the first "-", so
                       the bench can check that every event reached every recipient)

Every answer has `Connection: close`, as each client is a one-shot process. The form is not
checked against the spec; tests/ does that (tests/fake/twilio.rs).
"""

import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATS = {"accepted": 0, "rejected": 0, "server_s": 0.0, "serial": 0}
KEYS = {}  # incident-key prefix -> {"accepted": n, "keys": set()}
CALLS = re.compile(r"^/2010-04-01/Accounts/AC[0-9a-fA-F]{32}/Calls\.json$")
CONFERENCE = re.compile(r"<Conference>([^<]*)</Conference>")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-twilio"
    sys_version = ""

    def log_message(self, *args):  # quiet: one line per request would dominate the run
        pass

    def _reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_POST(self):
        t0 = time.perf_counter()
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        form = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace")))
        ok = (
            CALLS.match(self.path) is not None
            and (self.headers.get("Authorization") or "").startswith("Basic ")
            and all(form.get(k) for k in ("To", "From", "Twiml"))
        )
        m = CONFERENCE.search(form.get("Twiml", ""))
        key = m.group(1) if m else ""
        with LOCK:
            STATS["serial"] += 1
            sid = "CA%032x" % STATS["serial"]
        if ok:
            self._reply(201, {"sid": sid, "status": "queued", "to": form["To"], "from": form["From"]})
        else:
            self._reply(400, {"code": 21205, "message": "bad request", "more_info": "", "status": 400})
        with LOCK:
            STATS["accepted" if ok else "rejected"] += 1
            STATS["server_s"] += time.perf_counter() - t0
            if ok:
                k = KEYS.setdefault(key.split("-", 1)[0], {"accepted": 0, "keys": set()})
                k["accepted"] += 1
                k["keys"].add(key)

    def do_GET(self):
        if self.path != "/stats":
            self._reply(404, {"code": 20404, "message": "not found", "more_info": "", "status": 404})
            return
        with LOCK:
            n = STATS["accepted"] + STATS["rejected"]
            out = {
                "accepted": STATS["accepted"],
                "rejected": STATS["rejected"],
                "by_prefix": {p: {"accepted": v["accepted"], "keys": len(v["keys"])} for p, v in KEYS.items()},
                "server_ms_mean": round(1000 * STATS["server_s"] / n, 3) if n else 0.0,
                "cpu_s": time.process_time(),
            }
        self._reply(200, out)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, sys.argv[1])
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
