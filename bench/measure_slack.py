#!/usr/bin/env python3
"""Per-process wall time and peak RSS of handler-slack, for bench/slack.sh (Python 3 stdlib).

The method is measure.py's (read its docstring): every iteration runs each command twice, as
separate processes with separate events — once started with posix_spawn and reaped with wait4
for the wall time, once more under GNU `/usr/bin/time -f %M` for the peak RSS — interleaved, in a
shuffled order, after unrecorded warm-up rounds. The measuring, the CPU accounting and the table are
bench/benchlib.py's.

Commands:
  /bin/true                     process start alone;
  war room, 4 calls             one Sensu event → conversations.create, conversations.setTopic,
                                conversations.invite (2 responders), chat.postMessage (Block Kit
                                alert), one process; a different entity every event, so each is
                                a new incident and a new channel (`{entity}-{check}`);
  dedup skip                    the same event every time, its war room opened once: suppressed.

Checks with the fake afterwards: 4 calls per delivery, every delivery its own channel, one
war room (4 calls) for the repeated event, no rejected calls, every run exited 0.
"""

import json
import os

from benchlib import PATH, Cmd, by_prefix, finish, measure, parse_args, report, write_events

T0 = 1_795_219_200  # 2026-11-21T00:00:00Z, the handler's clock


def main():
    a = parse_args(500, "--token")
    work, logs = a.work, a.logs
    conf = os.path.join(work, "conf")
    os.makedirs(conf, exist_ok=True)
    with open(os.path.join(conf, "slack.json"), "w") as f:
        json.dump({"slack": {"channel_template": "{entity}-{check}", "responders": ["U01ALICE01", "U02BOB0002"],
                             "link_template": "https://sensu.example.com/events/{entity}/{check}"}}, f)

    # One event file per entity; the entity's prefix (up to "-") is what the fake counts by.
    n, w = a.n, max(1, a.warmup)
    counts = dict.fromkeys(("h", "hr"), n) | dict.fromkeys(("wh", "whr"), w) | {"dedup": 1}
    ev = write_events(a.fixture, a.events, counts)
    ev_dedup = ev["dedup"][0]

    def env(_i, _rss):
        return {"PATH": PATH, "SLACK_BOT_TOKEN": a.token, "PAGERPIPE_NOW": str(T0)}

    def handler(state):
        return [a.bin, "--api-url", a.url + "/api", "--config", conf, "--state-dir", os.path.join(work, state),
                "--spool-dir", os.path.join(work, state + "-spool")]

    def cmd(name, argv, env_of, event, tag):
        return Cmd(name, argv, env_of, event, os.path.join(logs, tag + ".log"), os.path.join(work, tag + ".rss"))

    def make(warm):
        h, hr = ("wh", "whr") if warm else ("h", "hr")
        suffix = "-warm" if warm else ""
        return [
            cmd("/bin/true", ["/bin/true"], lambda i, r: {"PATH": PATH}, lambda i, r: ev[h][i], "true"),
            cmd("war room, 4 calls", handler("state-warroom" + suffix), env, lambda i, r: ev[hr if r else h][i], "warroom"),
            cmd("dedup skip", handler("state-dedup"), env, lambda i, r: ev_dedup, "dedup"),
        ]

    run = measure(make, n, w, a.url)

    rooms = by_prefix(run.after, "h", "hr")
    checks = {
        "calls": rooms["accepted"],
        "war_rooms": rooms["keys"],
        "dedup_calls_total": by_prefix(run.after, "dedup")["accepted"],  # 4 = the warm-up priming run
        **run.checks(os.path.join(logs, "dedup.log")),
    }
    ok = (
        checks["calls"] == 4 * 2 * n and checks["war_rooms"] == 2 * n
        and checks["dedup_calls_total"] == 4 and checks["dedup_already_notified_lines"] >= 2 * n
        and checks["rejected"] == 0 and all(c.fails == 0 for c in run.cmds)
    )

    report(work, run, ["true", "warroom", "dedup"], n, w, checks, ok)
    print("wall in ms; RSS in MiB; \"- true\" = median minus the median of /bin/true; CPU ms = mean user+sys.")
    finish(checks, ok, logs)


if __name__ == "__main__":
    main()
