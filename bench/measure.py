#!/usr/bin/env python3
"""Per-process wall time and peak RSS for bench/pagerduty.sh (Python 3 stdlib only).

Every iteration runs each command twice, as separate processes with separate events: once
started with posix_spawn and reaped with wait4 for the wall time, once more under GNU
`/usr/bin/time -f %M` for the peak RSS (not from our own wait4; bench/benchlib.py's docstring
says why), interleaved in a shuffled order, after unrecorded warm-up rounds. Every process gets a
minimal environment (PATH and the routing key; no proxy variables, no HOME), stdin from a
pre-written event file, stdout to /dev/null and stderr appended to a per-command log. The
measuring, the CPU accounting and the table are bench/benchlib.py's.

Writes results.json into the work directory and prints a table.
"""

import os

from benchlib import PATH, Cmd, by_prefix, finish, measure, mib, parse_args, report, write_events

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


def main():
    a = parse_args(1000, "--key")
    work, logs = a.work, a.logs
    conf = os.path.join(work, "conf.d")  # empty: no /etc/sensu/conf.d, key from the environment
    os.makedirs(conf, exist_ok=True)

    # One event file per distinct entity. The entity's prefix (up to "-") is what the fake counts
    # by: h/hr handler timed/RSS deliveries, jq/jqr the one-liner's, w* warm-up, dedup the
    # repeated event.
    n, w = a.n, max(1, a.warmup)  # warm-up run 0 primes the dedup state
    counts = dict.fromkeys(("h", "hr", "jq", "jqr"), n) | dict.fromkeys(("wh", "whr", "wjq", "wjqr"), w) | {"dedup": 1}
    ev = write_events(a.fixture, a.events, counts)
    ev_dedup = ev["dedup"][0]

    henv = {"PATH": PATH, "PAGERDUTY_ROUTING_KEY": a.key}
    jenv = {"PATH": PATH, "PD_ROUTING_KEY": a.key}

    def handler(state):
        return [a.bin, "--api-url", a.url, "--config", conf, "--state-dir", os.path.join(work, state),
                "--spool-dir", os.path.join(work, state + "-spool")]

    def cmd(name, argv, env, timed, rss, tag):
        return Cmd(name, argv, lambda i, r: env, lambda i, r: (rss if r else timed)(i),
                   os.path.join(logs, tag + ".log"), os.path.join(work, tag + ".rss"))

    def make(warm):
        h, hr, j, jr = ("wh", "whr", "wjq", "wjqr") if warm else ("h", "hr", "jq", "jqr")
        state = "state-warm" if warm else "state-deliver"
        return [
            cmd("/bin/true", ["/bin/true"], {"PATH": PATH}, lambda i: ev[h][i], lambda i: ev[hr][i], "true"),
            cmd("handler, delivery", handler(state), henv, lambda i: ev[h][i], lambda i: ev[hr][i], "deliver"),
            cmd("handler, dedup skip", handler("state-dedup"), henv, lambda i: ev_dedup, lambda i: ev_dedup, "dedup"),
            cmd("jq | curl", ["/bin/sh", "-c", JQ_CURL, "sh", a.url, JQ_PROGRAM], jenv,
                lambda i: ev[j][i], lambda i: ev[jr][i], "jq-curl"),
        ]

    # Warm-up (not recorded): page cache, the fake's code paths, and the one real delivery that
    # primes the dedup state. The warm-up deliveries use their own state directory.
    run = measure(make, n, w, a.url)

    # Every delivery reached the fake as its own incident; every dedup run was a skip.
    deliveries, jq_curl = by_prefix(run.after, "h", "hr"), by_prefix(run.after, "jq", "jqr")
    checks = {
        "handler_deliveries": deliveries["accepted"],
        "handler_distinct_keys": deliveries["keys"],
        "dedup_requests_total": by_prefix(run.after, "dedup")["accepted"],  # 1 = the warm-up priming run
        "jq_curl_deliveries": jq_curl["accepted"],
        **run.checks(os.path.join(logs, "dedup.log")),
    }
    ok = (
        checks["handler_deliveries"] == 2 * n
        and checks["handler_distinct_keys"] == 2 * n
        and checks["dedup_requests_total"] == 1
        and checks["dedup_already_notified_lines"] >= 2 * n
        and checks["jq_curl_deliveries"] == 2 * n
        and checks["rejected"] == 0
        and all(c.fails == 0 for c in run.cmds)
    )

    cpu_note = (f" ({os.cpu_count()} CPUs; includes kernel threads such as the ext4 journal doing our"
                " fsyncs)")
    rows = report(work, run, ["true", "deliver", "dedup", "jq_curl"], n, w, checks, ok, cpu_note)
    print("wall in ms; RSS in MiB; \"- true\" = median minus the median of /bin/true (cost beyond")
    print("starting a process); CPU ms = mean user+sys of the process and its children.")
    for key, label in (("deliver", "delivery"), ("dedup", "dedup skip")):
        # Issue 11's targets: a delivery at most 2x /bin/true of the same run, the storm path
        # (dedup skip) at most 1.3x, peak RSS at most 4 MiB.
        r, limit = rows[key], {"deliver": 2.0, "dedup": 1.3}[key]
        t_ok = r["x_true"] <= limit
        m_ok = mib(r["rss_kib_max"]) <= 4.0
        print(f"target <= {limit}x /bin/true and <= 4 MiB, {label}: median {r['wall_ms_median']:.2f} ms = "
              f"{r['x_true']:.2f}x {'ok' if t_ok else 'MISSED'}, RSS max {mib(r['rss_kib_max']):.2f} MiB "
              f"{'ok' if m_ok else 'MISSED'}")
    finish(checks, ok, logs)


if __name__ == "__main__":
    main()
