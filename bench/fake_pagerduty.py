#!/usr/bin/env python3
"""A minimal PagerDuty Events API v2 stand-in for bench/pagerduty.sh (Python 3 stdlib only).

Listens on 127.0.0.1 only, on a free port chosen by the kernel, and writes that port to the
file given as the first argument once it accepts connections. One thread per connection.

  POST /v2/enqueue  -> 202 {"status":"success","message":"Event processed","dedup_key":...}
                       (400 when the body is not JSON with routing_key, event_action, dedup_key)
  GET  /stats       -> 200 {"accepted":N,"rejected":N,"server_ms_mean":F,"cpu_s":F,
                             "by_prefix":{"h":{"accepted":N,"keys":N},...}}
                       (counts per dedup_key prefix up to the first "-", so the bench can check
                       that every delivery arrived as its own incident)

It answers every request with `Connection: close`, as each client is a one-shot process. It does
no validation beyond the three required fields; the schema is checked by tests/, not here.
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATS = {"accepted": 0, "rejected": 0, "server_s": 0.0}
KEYS = {}  # dedup_key prefix (up to the first "-") -> {"accepted": n, "keys": set()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-pagerduty"
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
        try:
            ev = json.loads(raw)
            key = ev["dedup_key"]
            ok = self.path == "/v2/enqueue" and bool(ev["routing_key"]) and bool(ev["event_action"])
        except (ValueError, KeyError, TypeError):
            ok, key = False, None
        if ok:
            self._reply(202, {"status": "success", "message": "Event processed", "dedup_key": key})
        else:
            self._reply(400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["bad body"]})
        with LOCK:
            STATS["accepted" if ok else "rejected"] += 1
            STATS["server_s"] += time.perf_counter() - t0
            if ok:
                k = KEYS.setdefault(str(key).split("-", 1)[0], {"accepted": 0, "keys": set()})
                k["accepted"] += 1
                k["keys"].add(key)

    def do_GET(self):
        if self.path != "/stats":
            self._reply(404, {"status": "not found"})
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
