#!/usr/bin/env python3
"""Per-process wall time and peak RSS for bench/pagerduty.sh (Python 3 stdlib only).

Every iteration runs each command twice, as separate processes with separate events:

  timed run   started directly with posix_spawn and reaped with wait4; wall time is
              perf_counter() around spawn..reap, nothing else in between.
  RSS run     started under GNU `/usr/bin/time -f %M` (peak RSS in KiB, of the process and of
              the children it waited for). Not read from our own wait4: posix_spawn starts the
              child in Python's address space (vfork), and Linux folds that address space's
              high-water mark into the child's ru_maxrss at exec, so every process would look
              as big as this driver (~22 MiB). `time` forks from its own 1 MiB.

The commands are interleaved (one of each per iteration, order rotated) so that machine noise
falls on all of them alike. Every process gets a minimal environment (PATH and the routing key;
no proxy variables, no HOME), stdin from a pre-written event file, stdout to /dev/null and
stderr appended to a per-command log.

Writes results.json into the work directory and prints a table.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time
import urllib.request

# The same request the handler builds for a Sensu 1.x event, as a jq program: dedup key
# entity/check, summary "entity/check: output" with whitespace collapsed and cut to 1024
# characters, severity from the status, timestamp from the check time, custom details.
JQ_PROGRAM = r"""
{
  routing_key: $ENV.PD_ROUTING_KEY,
  event_action: (if .action == "resolve" then "resolve" else "trigger" end),
  dedup_key: "\(.client.name)/\(.check.name)",
  payload: {
    summary: ("\(.client.name)/\(.check.name): \(.check.output)"
              | [splits("\\s+")] | map(select(. != "")) | join(" ") | .[0:1024]),
    source: .client.name,
    severity: ({"1": "warning", "2": "critical"}[.check.status | tostring] // "error"),
    timestamp: ((.check.executed // .timestamp // now) | floor | todate),
    component: .check.name,
    custom_details: {
      output: .check.output, status: .check.status, occurrences: .occurrences,
      history: ((.check.history // []) | map(tonumber)), command: .check.command
    }
  }
}
"""

JQ_CURL = (
    'jq -c "$2" | curl -q -sS --fail --noproxy "*" --max-time 10 -o /dev/null '
    '-H "Content-Type: application/json" --data-binary @- "$1/v2/enqueue"'
)

GNU_TIME = "/usr/bin/time"


def stats_of(url):
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url + "/stats", timeout=5) as r:
        return json.load(r)


def busy_cpu_s():
    """CPU seconds the whole machine has spent busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = v[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    """CPU seconds of this driver and every process it has reaped."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def pct(sorted_xs, p):
    k = min(len(sorted_xs) - 1, max(0, round(p / 100 * (len(sorted_xs) - 1))))
    return sorted_xs[k]


class Cmd:
    """One command: its argv and environment, and which event file run i reads."""

    def __init__(self, name, argv, env, timed_event, rss_event, log, rss_file):
        self.name, self.argv, self.env = name, argv, env
        self.timed_event, self.rss_event = timed_event, rss_event
        self.log_path, self.rss_file = log, rss_file
        self.log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.wall, self.cpu, self.rss, self.fails = [], [], [], 0

    def _spawn(self, argv, event):
        with open(event, "rb") as f:
            fa = [
                (os.POSIX_SPAWN_DUP2, f.fileno(), 0),
                (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, self.log_fd, 2),
            ]
            t0 = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, self.env, file_actions=fa)
            _, status, ru = os.wait4(pid, 0)
            dt = time.perf_counter() - t0
        return os.waitstatus_to_exitcode(status), dt, ru.ru_utime + ru.ru_stime

    def run(self, i, record=True):
        code, dt, cpu = self._spawn(self.argv, self.timed_event(i))
        rcode, _, _ = self._spawn([GNU_TIME, "-f", "%M", "-o", self.rss_file, *self.argv], self.rss_event(i))
        if not record:
            if code or rcode:
                sys.exit(f"measure: warm-up run of {self.name} exited {code or rcode}; see {self.log_path}")
            return
        self.wall.append(dt * 1000.0)
        self.cpu.append(cpu * 1000.0)
        with open(self.rss_file) as f:
            # time writes "Command exited with non-zero status N" first when the command fails
            self.rss.append(int(f.read().split()[-1]))
        self.fails += (code != 0) + (rcode != 0)

    def summary(self):
        w, r = sorted(self.wall), sorted(self.rss)
        return {
            "name": self.name,
            "runs": len(w),
            "fails": self.fails,
            "wall_ms_mean": statistics.fmean(w),
            "wall_ms_median": statistics.median(w),
            "wall_ms_p95": pct(w, 95),
            "wall_ms_min": w[0],
            "cpu_ms_mean": statistics.fmean(self.cpu),
            "rss_kib_max": r[-1],
            "rss_kib_median": statistics.median(r),
            "rss_kib_min": r[0],
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()
    if not a.url.startswith("http://127.0.0.1:"):
        sys.exit("measure: refusing a non-loopback URL")

    work = a.work
    events = os.path.join(work, "events")
    conf = os.path.join(work, "conf.d")  # empty: no /etc/sensu/conf.d, key from the environment
    logs = os.path.join(work, "logs")
    for d in (events, conf, logs):
        os.makedirs(d, exist_ok=True)
    with open(a.fixture, "rb") as f:
        base = json.load(f)

    # One event file per distinct entity, all written before any timing starts. The entity's
    # prefix (up to "-") is what the fake counts by: h/hr handler timed/RSS deliveries, jq/jqr
    # the one-liner's, w* warm-up, dedup the repeated event.
    def write_event(name):
        ev = dict(base)
        ev["client"] = dict(base["client"], name=name)
        p = os.path.join(events, name + ".json")
        with open(p, "w") as f:
            json.dump(ev, f)
        return p

    n, w = a.n, max(1, a.warmup)  # warm-up run 0 primes the dedup state
    ev = {p: [write_event(f"{p}-{i:05d}") for i in range(n)] for p in ("h", "hr", "jq", "jqr")}
    ev.update({p: [write_event(f"{p}-{i:05d}") for i in range(w)] for p in ("wh", "whr", "wjq", "wjqr")})
    ev_dedup = write_event("dedup-00000")

    path = "/usr/local/bin:/usr/bin:/bin"
    henv = {"PATH": path, "PAGERDUTY_ROUTING_KEY": a.key}
    jenv = {"PATH": path, "PD_ROUTING_KEY": a.key}

    def handler(state):
        return [a.bin, "--api-url", a.url, "--config", conf, "--state-dir", os.path.join(work, state)]

    def cmd(name, argv, env, timed, rss, tag):
        return Cmd(name, argv, env, timed, rss, os.path.join(logs, tag + ".log"), os.path.join(work, tag + ".rss"))

    def make(warm):
        h, hr, j, jr = ("wh", "whr", "wjq", "wjqr") if warm else ("h", "hr", "jq", "jqr")
        state = "state-warm" if warm else "state-deliver"
        return [
            cmd("/bin/true", ["/bin/true"], {"PATH": path}, lambda i: ev[h][i], lambda i: ev[hr][i], "true"),
            cmd("handler, delivery", handler(state), henv, lambda i: ev[h][i], lambda i: ev[hr][i], "deliver"),
            cmd("handler, dedup skip", handler("state-dedup"), henv, lambda i: ev_dedup, lambda i: ev_dedup, "dedup"),
            cmd("jq | curl", ["/bin/sh", "-c", JQ_CURL, "sh", a.url, JQ_PROGRAM], jenv,
                lambda i: ev[j][i], lambda i: ev[jr][i], "jq-curl"),
        ]

    # Warm-up (not recorded): page cache, the fake's threads, and the one real delivery that
    # primes the dedup state. The warm-up deliveries use their own state directory.
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

    # Every delivery reached the fake as its own incident; every dedup run was a skip.
    def by(p):
        return after["by_prefix"].get(p, {"accepted": 0, "keys": 0})

    checks = {
        "handler_deliveries": by("h")["accepted"] + by("hr")["accepted"],
        "handler_distinct_keys": by("h")["keys"] + by("hr")["keys"],
        "dedup_requests_total": by("dedup")["accepted"],  # 1 = the warm-up priming run
        "jq_curl_deliveries": by("jq")["accepted"] + by("jqr")["accepted"],
        "rejected": after["rejected"] - before["rejected"],
        "fake_server_ms_per_request": after["server_ms_mean"],
    }
    with open(os.path.join(logs, "dedup.log"), encoding="utf-8", errors="replace") as f:
        checks["dedup_already_notified_lines"] = sum("already notified" in line for line in f)
    ok = (
        checks["handler_deliveries"] == 2 * n
        and checks["handler_distinct_keys"] == 2 * n
        and checks["dedup_requests_total"] == 1
        and checks["dedup_already_notified_lines"] >= 2 * n
        and checks["jq_curl_deliveries"] == 2 * n
        and checks["rejected"] == 0
        and all(c.fails == 0 for c in cmds)
    )

    keys = ["true", "deliver", "dedup", "jq_curl"]
    rows = [c.summary() for c in cmds]
    # CPU that other work on the machine took while we measured (our own: driver, the processes
    # it ran, the fake server), as a share of one CPU.
    other = (busy_cpu_s() - busy0) - (own_cpu_s() + after["cpu_s"] - own0)
    other_share = max(0.0, other / elapsed)
    out = {"n": n, "other_cpu_share": other_share, "warmup": w, "elapsed_s": elapsed, "checks": checks, "ok": ok, "rows": dict(zip(keys, rows))}
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(out, f, indent=2)

    true_med = rows[0]["wall_ms_median"]
    mib = lambda k: k / 1024.0
    print()
    print(f"CPU used outside this benchmark's processes during the run: {100 * other_share:.0f}% of one "
          f"CPU ({os.cpu_count()} CPUs; includes kernel threads such as the ext4 journal doing our fsyncs)")
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
    print("wall in ms; RSS in MiB; \"- true\" = median minus the median of /bin/true (cost beyond")
    print("starting a process); CPU ms = mean user+sys of the process and its children.")
    for key, label in (("deliver", "delivery"), ("dedup", "dedup skip")):
        r = out["rows"][key]
        t_ok = r["wall_ms_median"] <= 3.0
        m_ok = mib(r["rss_kib_max"]) <= 5.0
        print(f"target <= 3 ms and <= 5 MiB, {label}: median {r['wall_ms_median']:.2f} ms "
              f"{'ok' if t_ok else 'MISSED'}, RSS max {mib(r['rss_kib_max']):.2f} MiB {'ok' if m_ok else 'MISSED'}")
    print("checks:", json.dumps(checks))
    sys.stdout.flush()
    if not ok:
        print("measure: CHECKS FAILED (see the logs in " + logs + ")", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
