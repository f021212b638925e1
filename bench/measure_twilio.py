#!/usr/bin/env python3
"""Per-process wall time and peak RSS of handler-twilio, for bench/twilio.sh (Python 3 stdlib).

The method is measure.py's (read its docstring): every iteration runs each command twice, as
separate processes with separate events — once started with posix_spawn and reaped with wait4
for the wall time, once more under GNU `/usr/bin/time -f %M` for the peak RSS — interleaved, order
rotated, after unrecorded warm-up rounds. The helpers for CPU accounting come from measure.py.

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

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import GNU_TIME, busy_cpu_s, own_cpu_s, pct, stats_of  # noqa: E402

T0 = 1_795_219_200  # 2026-11-21T00:00:00Z, the handler's clock for event 0
HOUR = 3600


class Cmd:
    """One command; `env(i, rss)` and `event(i, rss)` give run i's environment and event file."""

    def __init__(self, name, argv, env, event, log, rss_file):
        self.name, self.argv, self.env, self.event = name, argv, env, event
        self.log_path, self.rss_file = log, rss_file
        self.log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.wall, self.cpu, self.rss, self.fails = [], [], [], 0

    def _spawn(self, argv, env, event):
        with open(event, "rb") as f:
            fa = [
                (os.POSIX_SPAWN_DUP2, f.fileno(), 0),
                (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, self.log_fd, 2),
            ]
            t0 = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, env, file_actions=fa)
            _, status, ru = os.wait4(pid, 0)
            dt = time.perf_counter() - t0
        return os.waitstatus_to_exitcode(status), dt, ru.ru_utime + ru.ru_stime

    def run(self, i, record=True):
        code, dt, cpu = self._spawn(self.argv, self.env(i, False), self.event(i, False))
        rcode, _, _ = self._spawn([GNU_TIME, "-f", "%M", "-o", self.rss_file, *self.argv], self.env(i, True), self.event(i, True))
        if not record:
            if code or rcode:
                sys.exit(f"measure_twilio: warm-up run of {self.name} exited {code or rcode}; see {self.log_path}")
            return
        self.wall.append(dt * 1000.0)
        self.cpu.append(cpu * 1000.0)
        with open(self.rss_file) as f:
            self.rss.append(int(f.read().split()[-1]))
        self.fails += (code != 0) + (rcode != 0)

    def summary(self):
        w, r = sorted(self.wall), sorted(self.rss)
        return {
            "name": self.name, "runs": len(w), "fails": self.fails,
            "wall_ms_mean": statistics.fmean(w), "wall_ms_median": statistics.median(w),
            "wall_ms_p95": pct(w, 95), "wall_ms_min": w[0], "cpu_ms_mean": statistics.fmean(self.cpu),
            "rss_kib_max": r[-1], "rss_kib_median": statistics.median(r), "rss_kib_min": r[0],
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()
    if not a.url.startswith("http://127.0.0.1:"):
        sys.exit("measure_twilio: refusing a non-loopback URL")

    work = a.work
    events, logs = os.path.join(work, "events"), os.path.join(work, "logs")
    for d in (events, logs):
        os.makedirs(d, exist_ok=True)
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
    with open(a.fixture, "rb") as f:
        base = json.load(f)

    # One event file per entity; the entity's prefix (up to "-") is what the fake counts by.
    def write_event(name):
        ev = dict(base)
        ev["client"] = dict(base["client"], name=name)
        p = os.path.join(events, name + ".json")
        with open(p, "w") as f:
            json.dump(ev, f)
        return p

    n, w = a.n, max(1, a.warmup)
    ev = {p: [write_event(f"{p}-{i:05d}") for i in range(n)] for p in ("h", "hr", "c", "cr")}
    ev.update({p: [write_event(f"{p}-{i:05d}") for i in range(w)] for p in ("wh", "whr", "wc", "wcr")})
    ev_dedup = write_event("dedup-00000")

    path = "/usr/local/bin:/usr/bin:/bin"

    def env_at(i, rss):
        # An hour per event; the RSS run half an hour after the timed one.
        return {"PATH": path, "TWILIO_AUTH_TOKEN": a.token, "PAGERPIPE_NOW": str(T0 + i * HOUR + (HOUR // 2 if rss else 0))}

    def env_fixed(_i, _rss):
        return {"PATH": path, "TWILIO_AUTH_TOKEN": a.token, "PAGERPIPE_NOW": str(T0)}

    def handler(conf, state):
        return [a.bin, "--api-url", a.url, "--config", confs[conf], "--state-dir", os.path.join(work, state)]

    def cmd(name, argv, env, event, tag):
        return Cmd(name, argv, env, event, os.path.join(logs, tag + ".log"), os.path.join(work, tag + ".rss"))

    def make(warm):
        h, hr, c, cr = ("wh", "whr", "wc", "wcr") if warm else ("h", "hr", "c", "cr")
        suffix = "-warm" if warm else ""
        return [
            cmd("/bin/true", ["/bin/true"], lambda i, r: {"PATH": path}, lambda i, r: ev[h][i], "true"),
            cmd("broadcast, 3 calls", handler("caps", "state-caps" + suffix), env_at,
                lambda i, r: ev[hr if r else h][i], "broadcast"),
            cmd("broadcast, caps off", handler("nocaps", "state-nocaps" + suffix), env_at,
                lambda i, r: ev[cr if r else c][i], "broadcast-nocaps"),
            cmd("dedup skip", handler("caps", "state-dedup"), env_fixed, lambda i, r: ev_dedup, "dedup"),
        ]

    warm = make(True)
    for i in range(w):
        for c in warm:
            c.run(i, record=False)
    before = stats_of(a.url)

    cmds = make(False)
    busy0, own0 = busy_cpu_s(), own_cpu_s() + before["cpu_s"]
    t_start = time.perf_counter()
    for i in range(n):
        r = i % len(cmds)
        for c in cmds[r:] + cmds[:r]:
            c.run(i)
    elapsed = time.perf_counter() - t_start
    after = stats_of(a.url)

    def by(p):
        return after["by_prefix"].get(p, {"accepted": 0, "keys": 0})

    checks = {
        "calls_with_caps": by("h")["accepted"] + by("hr")["accepted"],
        "incidents_with_caps": by("h")["keys"] + by("hr")["keys"],
        "calls_caps_off": by("c")["accepted"] + by("cr")["accepted"],
        "incidents_caps_off": by("c")["keys"] + by("cr")["keys"],
        "dedup_calls_total": by("dedup")["accepted"],  # 3 = the warm-up priming run
        "rejected": after["rejected"] - before["rejected"],
        "fake_server_ms_per_request": after["server_ms_mean"],
    }
    with open(os.path.join(logs, "dedup.log"), encoding="utf-8", errors="replace") as f:
        checks["dedup_already_notified_lines"] = sum("already notified" in line for line in f)
    ok = (
        checks["calls_with_caps"] == 3 * 2 * n and checks["incidents_with_caps"] == 2 * n
        and checks["calls_caps_off"] == 3 * 2 * n and checks["incidents_caps_off"] == 2 * n
        and checks["dedup_calls_total"] == 3 and checks["dedup_already_notified_lines"] >= 2 * n
        and checks["rejected"] == 0 and all(c.fails == 0 for c in cmds)
    )

    keys = ["true", "broadcast", "broadcast_caps_off", "dedup"]
    rows = [c.summary() for c in cmds]
    other = (busy_cpu_s() - busy0) - (own_cpu_s() + after["cpu_s"] - own0)
    other_share = max(0.0, other / elapsed)
    out = {"n": n, "other_cpu_share": other_share, "warmup": w, "elapsed_s": elapsed, "checks": checks, "ok": ok,
           "rows": dict(zip(keys, rows))}
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(out, f, indent=2)

    true_med = rows[0]["wall_ms_median"]
    mib = lambda k: k / 1024.0  # noqa: E731
    print()
    print(f"CPU used outside this benchmark's processes during the run: {100 * other_share:.0f}% of one CPU")
    if other_share > 0.25:
        print("WARNING: the machine was busy with other work; wall means and p95 are inflated (medians less so)")
    print(f"{n} events per command (each timed once directly and once more under /usr/bin/time for RSS),")
    print(f"interleaved, after {w} warm-up rounds; {elapsed:.1f} s; the fake server spends "
          f"{checks['fake_server_ms_per_request']:.2f} ms per request")
    print()
    fmt = "| {:<19} | {:>5} | {:>4} | {:>7} | {:>7} | {:>7} | {:>8} | {:>7} | {:>7} | {:>7} |"
    print(fmt.format("command", "runs", "fail", "mean ms", "median", "p95", "- true", "CPU ms", "RSS max", "median"))
    print("|" + "|".join("-" * x for x in (21, 7, 6, 9, 9, 9, 10, 9, 9, 9)) + "|")
    for r in rows:
        print(fmt.format(
            r["name"], r["runs"], r["fails"],
            f"{r['wall_ms_mean']:.2f}", f"{r['wall_ms_median']:.2f}", f"{r['wall_ms_p95']:.2f}",
            f"{r['wall_ms_median'] - true_med:+.2f}", f"{r['cpu_ms_mean']:.2f}",
            f"{mib(r['rss_kib_max']):.2f}", f"{mib(r['rss_kib_median']):.2f}",
        ))
    print()
    print("wall in ms; RSS in MiB; \"- true\" = median minus the median of /bin/true; CPU ms = mean user+sys.")
    print("checks:", json.dumps(checks))
    sys.stdout.flush()
    if not ok:
        print("measure_twilio: CHECKS FAILED (see the logs in " + logs + ")", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
