#!/usr/bin/env python3
"""A minimal Slack Web API stand-in for bench/slack.sh (Python 3 stdlib only).

Listens on 127.0.0.1 only, on a free port chosen by the kernel, and writes that port to the
file given as the first argument once it accepts connections. One thread, one `selectors` loop
(bench/benchlib.py `serve`).

  POST /api/conversations.create   {"name", "is_private"} -> {"ok":true,"channel":{"id":"C…","name":…}}
  POST /api/conversations.setTopic {"channel","topic"}    -> {"ok":true,"channel":{…}}
  POST /api/conversations.invite   {"channel","users"}    -> {"ok":true,"channel":{…}}
  POST /api/chat.postMessage       {"channel","text",…}   -> {"ok":true,"channel":…,"ts":"…"}
  POST /api/conversations.archive  {"channel"}            -> {"ok":true}
                    each needs `Authorization: Bearer …` and a JSON object body; otherwise
                    HTTP 200 {"ok":false,"error":"not_authed"|"invalid_arguments"} (Slack's
                    envelope), counted as rejected
  GET  /stats       -> 200 {"accepted":N,"rejected":N,"server_ms_mean":F,"cpu_s":F,
                            "by_prefix":{"h":{"accepted":N,"keys":N},...}}
                       (counted per channel name — the bench names war rooms `{entity}-{check}`
                       — by its prefix up to the first "-", so the bench can check that every
                       event opened its own war room with all four calls)

Every answer has `Connection: close`, as each client is a one-shot process. Requests are not
checked against the spec; tests/ does that (tests/fake/slack.rs). The server, /stats and the
counting are bench/benchlib.py's.
"""

from typing import ClassVar

from benchlib import FakeHandler, serve

CHANNELS = {}  # id -> name
SERIAL = [0]


class Handler(FakeHandler):
    server_version = "fake-slack"
    not_found: ClassVar[dict] = {"ok": False, "error": "unknown_method"}

    def do_POST(self):
        args = self.json_body()
        method = self.path.removeprefix("/api/")
        authed = (self.headers.get("Authorization") or "").startswith("Bearer xoxb-")
        ok = authed and isinstance(args, dict)
        key, answer = "", {"ok": False, "error": "not_authed" if not authed else "invalid_arguments"}
        if ok:
            with self.lock:
                SERIAL[0] += 1
                serial = SERIAL[0]
                if method == "conversations.create" and args.get("name"):
                    cid = f"C{serial:09d}"
                    CHANNELS[cid] = args["name"]
                    key, answer = args["name"], {"ok": True, "channel": {"id": cid, "name": args["name"]}}
                elif method in ("conversations.setTopic", "conversations.invite", "conversations.archive", "chat.postMessage") \
                        and args.get("channel") in CHANNELS:
                    cid = args["channel"]
                    key = CHANNELS[cid]
                    answer = {"ok": True, "channel": {"id": cid, "name": key}}
                    if method == "chat.postMessage":
                        answer = {"ok": True, "channel": cid, "ts": f"1795219200.{serial:06d}"}
                else:
                    ok, answer = False, {"ok": False, "error": "channel_not_found" if "channel" in args else "unknown_method"}
        self.reply(200, answer)
        self.count(ok, key)


if __name__ == "__main__":
    serve(Handler)
