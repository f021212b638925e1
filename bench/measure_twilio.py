#!/usr/bin/env python3
"""Per-process wall time and peak RSS of handler-twilio, for bench/twilio.sh (Python 3 stdlib).

The method is measure.py's (read its docstring): every iteration runs each command twice, as
separate processes with separate events — once started with posix_spawn and reaped with wait4
for the wall time, once more under GNU `/usr/bin/time -f %M` for the peak RSS — interleaved, in a
shuffled order, after unrecorded warm-up rounds. The measuring, the CPU accounting and the table are
bench/benchlib.py's.

Commands:
  /bin/true                     process start alone;
  broadcast, 3 calls            one Sensu event → 3 `POST …/Calls.json` (conference TwiML), with
                                the default call caps (3 state-store updates more per event); a
                                different entity every event, and the handler's clock
                                (PAGERPIPE_NOW) an hour further on for each, so the caps never
                                bind and the per-recipient records stay as small as in real use;
  broadcast, caps off           the same with `call_caps: {}` (what the caps cost);
  dedup skip                    the same event every time, already called once: suppressed.

Checks with the fake afterwards: 3 calls per delivery, every delivery its own incident, one
delivery (3 calls) for the repeated event, no 400s, every run exited 0.
"""

import json
import os

from benchlib import PATH, Cmd, by_prefix, finish, measure, parse_args, report, write_events

T0 = 1_795_219_200  # 2026-11-21T00:00:00Z, the handler's clock for event 0
HOUR = 3600


def main():
    a = parse_args(500, "--token")
    work, logs = a.work, a.logs
    section = {
        "account_sid": "AC" + "0" * 28 + "beef",
        "from": "+14155550199",
        "recipients": [{"name": "Alice", "phone": "+14155550101"}, {"name": "Bob", "phone": "+14155550102"}, "+819012345678"],
        "conference": True,
    }
    confs = {}
    for name, extra in (("caps", {}), ("nocaps", {"call_caps": {}})):
        d = os.path.join(work, "conf-" + name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "twilio.json"), "w") as f:
            json.dump({"twilio": dict(section, **extra)}, f)
        confs[name] = d

    # One event file per entity; the entity's prefix (up to "-") is what the fake counts by.
    n, w = a.n, max(1, a.warmup)
    counts = dict.fromkeys(("h", "hr", "c", "cr"), n) | dict.fromkeys(("wh", "whr", "wc", "wcr"), w) | {"dedup": 1}
    ev = write_events(a.fixture, a.events, counts)
    ev_dedup = ev["dedup"][0]

    def env_at(i, rss):
        # An hour per event; the RSS run half an hour after the timed one.
        return {"PATH": PATH, "TWILIO_AUTH_TOKEN": a.token, "PAGERPIPE_NOW": str(T0 + i * HOUR + (HOUR // 2 if rss else 0))}

    def env_fixed(_i, _rss):
        return {"PATH": PATH, "TWILIO_AUTH_TOKEN": a.token, "PAGERPIPE_NOW": str(T0)}

    def handler(conf, state):
        return [a.bin, "--api-url", a.url, "--config", confs[conf], "--state-dir", os.path.join(work, state),
                "--spool-dir", os.path.join(work, state + "-spool")]

    def cmd(name, argv, env, event, tag):
        return Cmd(name, argv, env, event, os.path.join(logs, tag + ".log"), os.path.join(work, tag + ".rss"))

    def make(warm):
        h, hr, c, cr = ("wh", "whr", "wc", "wcr") if warm else ("h", "hr", "c", "cr")
        suffix = "-warm" if warm else ""
        return [
            cmd("/bin/true", ["/bin/true"], lambda i, r: {"PATH": PATH}, lambda i, r: ev[h][i], "true"),
            cmd("broadcast, 3 calls", handler("caps", "state-caps" + suffix), env_at,
                lambda i, r: ev[hr if r else h][i], "broadcast"),
            cmd("broadcast, caps off", handler("nocaps", "state-nocaps" + suffix), env_at,
                lambda i, r: ev[cr if r else c][i], "broadcast-nocaps"),
            cmd("dedup skip", handler("caps", "state-dedup"), env_fixed, lambda i, r: ev_dedup, "dedup"),
        ]

    run = measure(make, n, w, a.url)

    caps, nocaps = by_prefix(run.after, "h", "hr"), by_prefix(run.after, "c", "cr")
    checks = {
        "calls_with_caps": caps["accepted"],
        "incidents_with_caps": caps["keys"],
        "calls_caps_off": nocaps["accepted"],
        "incidents_caps_off": nocaps["keys"],
        "dedup_calls_total": by_prefix(run.after, "dedup")["accepted"],  # 3 = the warm-up priming run
        **run.checks(os.path.join(logs, "dedup.log")),
    }
    ok = (
        checks["calls_with_caps"] == 3 * 2 * n and checks["incidents_with_caps"] == 2 * n
        and checks["calls_caps_off"] == 3 * 2 * n and checks["incidents_caps_off"] == 2 * n
        and checks["dedup_calls_total"] == 3 and checks["dedup_already_notified_lines"] >= 2 * n
        and checks["rejected"] == 0 and all(c.fails == 0 for c in run.cmds)
    )

    report(work, run, ["true", "broadcast", "broadcast_caps_off", "dedup"], n, w, checks, ok)
    print("wall in ms; RSS in MiB; \"- true\" = median minus the median of /bin/true; CPU ms = mean user+sys.")
    finish(checks, ok, logs)


if __name__ == "__main__":
    main()
