#!/usr/bin/env python3
"""Interleaved A/B of handler-pagerduty (or handler-twilio) builds, for bench/compare.sh
(Python 3 stdlib only).

Each build given as --build NAME=PATH gets two commands, measured in the same loop as
/bin/true (the method is measure.py's, see bench/benchlib.py): `NAME delivery` (a new entity
every event, into its own state directory, so each is a first delivery: hold, send, durable
record) and `NAME dedup skip` (the same event every time, delivered once in the warm-up: the
storm path). For handler-pagerduty a third, `NAME flap`: one check failing and recovering in
turn, each event turning the incident over (a trigger of an incident the ledger holds resolved, a
resolve of one it holds open: the delivery that notes its request in flight first). One of each
per iteration, in a shuffled order, so that machine noise falls on every build alike; the table
gives each row as a ratio to /bin/true of the same run.

With --floor (bench/compare.sh BENCH_FLOOR=1) two more rows show where a handler's cost starts:
`floor: empty process`, a static Rust binary that does nothing, and `floor: one POST`, one
that makes a delivery's HTTP exchange with the same fake and nothing else (bench/floor/); with
--floor-redis (and BENCH_REDIS=1) a third, `floor: one Redis round trip`, one that makes a
dedup skip's exchange with the same redis-server (connect, GET and EXISTS, close).

With --handler twilio the builds are handler-twilio's, with bench/twilio.sh's settings (three
recipients, a conference, the default call caps): a delivery is a broadcast of three calls, the
handler's clock (PAGERPIPE_NOW) an hour further on for each event so that the caps never bind
(bench/measure_twilio.py says why).

Checks: every delivery reached the fake as its own incident (with three calls for Twilio), each
build's repeated event once, every floor POST was accepted.
"""

import argparse
import json
import os
import sys

import benchlib
from benchlib import PATH, Cmd, by_prefix, finish, measure, report, write_events, write_flaps

T0 = 1_795_219_200  # 2026-11-21T00:00:00Z: handler-twilio's clock for event 0
HOUR = 3600
# Per handler: the environment variable of its secret, its settings section (None: none), and
# how many requests one delivery makes.
HANDLERS = {
    "pagerduty": ("PAGERDUTY_ROUTING_KEY", None, 1),
    "twilio": ("TWILIO_AUTH_TOKEN", {
        "account_sid": "AC" + "0" * 28 + "beef",
        "from": "+14155550199",
        "recipients": [{"name": "Alice", "phone": "+14155550101"}, {"name": "Bob", "phone": "+14155550102"}, "+819012345678"],
        "conference": True,
    }, 3),
}


def main():
    ap = argparse.ArgumentParser()
    for opt in ("--url", "--fixture", "--work", "--key"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--build", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--state-store", help="also run every build with --state-store URL (a loopback Redis)")
    ap.add_argument("--floor", nargs=2, metavar=("EMPTY", "POST"), help="bench/floor/ binaries to add as rows")
    ap.add_argument("--floor-redis", metavar="REDIS", help="bench/floor/redis.rs built: a row against --state-store's Redis")
    ap.add_argument("--handler", choices=sorted(HANDLERS), default="pagerduty")
    a = ap.parse_args()
    if not a.url.startswith("http://127.0.0.1:"):
        sys.exit("compare: refusing a non-loopback URL")
    if a.floor_redis and not (a.state_store or "").startswith("redis://127.0.0.1:"):
        sys.exit("compare: --floor-redis needs --state-store redis://127.0.0.1:PORT/DB")
    builds = [b.split("=", 1) for b in a.build]
    if any(len(b) != 2 or not b[0].isalnum() for b in builds):
        sys.exit("compare: --build NAME=PATH, NAME letters and digits only")
    if a.state_store and not a.state_store.startswith("redis://127.0.0.1:"):
        sys.exit("compare: refusing a non-loopback state store")
    # (label, event prefix, binary, extra flags): each build on the file store, and on Redis.
    variants = [(name, name, path, []) for name, path in builds]
    if a.state_store:
        # handler-twilio's call caps count calls per number across incidents: each build its
        # own Redis database, so that one build's calls do not cap another's.
        def store(i):
            return a.state_store if a.handler != "twilio" else f"{a.state_store.rsplit('/', 1)[0]}/{i}"

        variants += [(f"{name} redis", name + "rd", path, ["--state-store", store(i)]) for i, (name, path) in enumerate(builds)]
    events, logs = os.path.join(a.work, "events"), os.path.join(a.work, "logs")
    for d in (events, logs):
        os.makedirs(d, exist_ok=True)
    conf = os.path.join(a.work, "conf.d")
    os.makedirs(conf, exist_ok=True)
    secret, section, calls = HANDLERS[a.handler]
    if section is not None:
        with open(os.path.join(conf, a.handler + ".json"), "w") as f:
            json.dump({a.handler: section}, f)

    n, w = a.n, max(1, a.warmup)
    counts = {"t": n, "tr": n, "wt": w, "wtr": w}
    for _, name, _, _ in variants:
        counts |= {f"{name}": n, f"{name}r": n, f"w{name}": w, f"w{name}r": w, f"{name}dedup": 1}
    ev = write_events(a.fixture, events, counts)
    # The flap rows (handler-pagerduty): the timed runs and the RSS runs each their own flapping
    # check, so that each sees failure and recovery in turn; the warm-up its own too.
    flaps = a.handler == "pagerduty"
    if flaps:
        pair = [a.fixture, os.path.join(os.path.dirname(a.fixture), "resolve.json")]
        for _, name, _, _ in variants:
            for p in (f"{name}flap", f"w{name}flap"):
                count = n if p[0] != "w" else w
                ev[p] = [write_flaps(pair, events, f"{p}-{run}", count) for run in ("timed", "rss")]
    env = {"PATH": PATH, secret: a.key}
    if a.handler == "twilio":
        env["PAGERPIPE_NOW"] = str(T0)

    def env_at(i, rss):
        # The delivery of event i: for Twilio an hour after event i-1's (its RSS run half an
        # hour after its timed one), so that the call caps never bind.
        if a.handler != "twilio":
            return env
        return dict(env, PAGERPIPE_NOW=str(T0 + i * HOUR + (HOUR // 2 if rss else 0)))

    def handler(path, state, extra):
        return [path, "--api-url", a.url, "--config", conf, "--state-dir", os.path.join(a.work, state),
                "--spool-dir", os.path.join(a.work, state + "-spool"), *extra]

    def cmd(label, argv, cmd_env, timed, rss, tag):
        env_of = cmd_env if callable(cmd_env) else lambda i, r: cmd_env
        return Cmd(label, argv, env_of, lambda i, r: (rss if r else timed)(i),
                   os.path.join(logs, tag + ".log"), os.path.join(a.work, tag + ".rss"))

    def make(warm):
        p = "w" if warm else ""
        true_ev = lambda i: ev[p + "t"][i], lambda i: ev[p + "tr"][i]  # noqa: E731
        cmds = [cmd("/bin/true", ["/bin/true"], {"PATH": PATH}, *true_ev, "true")]
        if a.floor:
            host = a.url.removeprefix("http://")
            cmds.append(cmd("floor: empty process", [a.floor[0]], {"PATH": PATH}, *true_ev, "floor-empty"))
            cmds.append(cmd("floor: one POST", [a.floor[1], host, "floor-post"], {"PATH": PATH}, *true_ev, "floor-post"))
        if a.floor_redis:
            redis = a.state_store.removeprefix("redis://").split("/")[0]
            cmds.append(cmd("floor: one Redis round trip", [a.floor_redis, redis, "floor"], {"PATH": PATH}, *true_ev, "floor-redis"))
        for label, name, path, extra in variants:
            deliver = ev[p + name], ev[p + name + "r"]
            dedup = ev[name + "dedup"][0]
            cmds.append(cmd(f"{label} delivery", handler(path, f"state-{p}{name}", extra), env_at,
                            lambda i, d=deliver: d[0][i], lambda i, d=deliver: d[1][i], f"{name}-deliver"))
            cmds.append(cmd(f"{label} dedup skip", handler(path, f"state-{name}-dedup", extra), env,
                            lambda i, d=dedup: d, lambda i, d=dedup: d, f"{name}-dedup"))
            if flaps:
                # Run i: event i of one flapping check timed, event i of another under
                # /usr/bin/time: each turns its incident over, failures at even i, recoveries
                # at odd i.
                timed, rss = ev[f"{p}{name}flap"]
                cmds.append(cmd(f"{label} flap", handler(path, f"state-{p}{name}-flap", extra),
                                dict(env, PAGERPIPE_HOST_CLOCK_LATENESS="1000000000"),
                                lambda i, t=timed: t[i], lambda i, r=rss: r[i], f"{name}-flap"))
        return cmds

    run = measure(make, n, w, a.url)
    checks = dict(run.checks(os.path.join(logs, f"{builds[0][0]}-dedup.log")))
    ok = checks["rejected"] == 0 and all(c.fails == 0 for c in run.cmds)
    for _, name, _, _ in variants:
        d = by_prefix(run.after, name, name + "r")
        checks[f"{name}_deliveries"] = d["accepted"]
        checks[f"{name}_dedup_requests"] = by_prefix(run.after, name + "dedup")["accepted"]
        ok = ok and d["accepted"] == calls * 2 * n and d["keys"] == 2 * n and checks[f"{name}_dedup_requests"] == calls
        if flaps:
            # Every flap event delivered: none skipped as a repeat, none superseded.
            checks[f"{name}_flap_requests"] = by_prefix(run.after, name + "flap")["accepted"]
            ok = ok and checks[f"{name}_flap_requests"] == 2 * n
    if a.floor:
        checks["floor_posts"] = by_prefix(run.after, "floor")["accepted"] - by_prefix(run.before, "floor")["accepted"]
        ok = ok and checks["floor_posts"] == 2 * n
    keys = ["true"] + (["floor-empty", "floor-post"] if a.floor else []) + (["floor-redis"] if a.floor_redis else []) + [f"{name}_{k}" for _, name, _, _ in variants for k in ("deliver", "dedup") + (("flap",) if flaps else ())]
    report(a.work, run, keys, n, w, checks, ok)
    finish(checks, ok, logs)


if __name__ == "__main__":
    benchlib.PROG = "compare"
    main()
