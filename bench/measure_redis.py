#!/usr/bin/env python3
"""What the Redis state store costs one event, for bench/redis.sh (Python 3 stdlib only).

Five commands in one interleaved loop (bench/benchlib.py measures them: one process per event,
wall time from posix_spawn to wait4, peak RSS under /usr/bin/time):

  /bin/true               process start alone
  file, delivery          handler-pagerduty, a DIFFERENT entity every time, file store (--state-dir)
  redis, delivery         the same with --state-store redis://…@127.0.0.1 (loopback Redis)
  file, dedup skip        the same event every time, suppressed by the file store (storm path)
  redis, dedup skip       the same, suppressed by the Redis store

Checks that every delivery reached the fake as its own incident, that each repeated event was
delivered once (in its warm-up) and suppressed afterwards, and that no run failed. Prints the
table and the Redis store's extra cost per event (median minus the file store's median, and
as a multiple of /bin/true's median in the same run).
"""

import os
import sys

from benchlib import PATH, Cmd, by_prefix, finish, lines_with, measure, parse_args, report, write_events


def main():
    a = parse_args(1000, "--key")
    store = os.environ.get("BENCH_STATE_STORE", "")
    if not store.startswith(("redis://", "rediss://")) or "@127.0.0.1:" not in store:
        sys.exit("measure_redis: BENCH_STATE_STORE must be a redis:// URL on 127.0.0.1")
    work, logs = a.work, a.logs
    conf = os.path.join(work, "conf.d")
    os.makedirs(conf, exist_ok=True)

    # Entity prefixes (what the fake counts by): f/fr file deliveries (timed / RSS runs), r/rr
    # Redis deliveries, w* warm-up, dedupf/dedupr the two repeated events.
    n, w = a.n, max(1, a.warmup)
    counts = dict.fromkeys(("f", "fr", "r", "rr"), n) | dict.fromkeys(("wf", "wfr", "wr", "wrr"), w)
    counts |= {"dedupf": 1, "dedupr": 1}
    ev = write_events(a.fixture, a.events, counts)
    henv = {"PATH": PATH, "PAGERDUTY_ROUTING_KEY": a.key}

    def file_store(state):
        return [a.bin, "--api-url", a.url, "--config", conf, "--state-dir", os.path.join(work, state),
                "--spool-dir", os.path.join(work, state + "-spool")]

    def redis_store():
        # --state-dir too: the handler must not need it, but a stray write would show there.
        return [a.bin, "--api-url", a.url, "--config", conf, "--state-dir", os.path.join(work, "state-unused"),
                "--spool-dir", os.path.join(work, "redis-spool"), "--state-store", store]

    def cmd(name, argv, timed, rss, tag):
        return Cmd(name, argv, lambda i, r: henv, lambda i, r: (rss if r else timed)(i),
                   os.path.join(logs, tag + ".log"), os.path.join(work, tag + ".rss"))

    def make(warm):
        p = "w" if warm else ""
        return [
            Cmd("/bin/true", ["/bin/true"], lambda i, r: {"PATH": PATH}, lambda i, r: ev[p + "f"][i],
                os.path.join(logs, "true.log"), os.path.join(work, "true.rss")),
            cmd("file, delivery", file_store("state-warm" if warm else "state-deliver"),
                lambda i: ev[p + "f"][i], lambda i: ev[p + "fr"][i], "file-deliver"),
            cmd("redis, delivery", redis_store(), lambda i: ev[p + "r"][i], lambda i: ev[p + "rr"][i], "redis-deliver"),
            cmd("file, dedup skip", file_store("state-dedup"), lambda i: ev["dedupf"][0], lambda i: ev["dedupf"][0], "file-dedup"),
            cmd("redis, dedup skip", redis_store(), lambda i: ev["dedupr"][0], lambda i: ev["dedupr"][0], "redis-dedup"),
        ]

    run = measure(make, n, w, a.url)

    checks = {
        "file_deliveries": by_prefix(run.after, "f", "fr"),
        "redis_deliveries": by_prefix(run.after, "r", "rr"),
        "file_dedup_requests_total": by_prefix(run.after, "dedupf")["accepted"],
        "redis_dedup_requests_total": by_prefix(run.after, "dedupr")["accepted"],
        "file_dedup_skip_lines": lines_with(os.path.join(logs, "file-dedup.log"), "already notified"),
        "redis_dedup_skip_lines": lines_with(os.path.join(logs, "redis-dedup.log"), "already notified"),
        "redis_store_errors": lines_with(os.path.join(logs, "redis-deliver.log"), "error")
        + lines_with(os.path.join(logs, "redis-dedup.log"), "error"),
        "rejected": run.after["rejected"] - run.before["rejected"],
        "fake_server_ms_per_request": run.after["server_ms_mean"],
    }
    ok = (
        checks["file_deliveries"] == {"accepted": 2 * n, "keys": 2 * n}
        and checks["redis_deliveries"] == {"accepted": 2 * n, "keys": 2 * n}
        and checks["file_dedup_requests_total"] == 1
        and checks["redis_dedup_requests_total"] == 1
        and checks["file_dedup_skip_lines"] >= 2 * n
        and checks["redis_dedup_skip_lines"] >= 2 * n
        and checks["redis_store_errors"] == 0
        and checks["rejected"] == 0
        and all(c.fails == 0 for c in run.cmds)
    )

    rows = report(work, run, ["true", "file_deliver", "redis_deliver", "file_dedup", "redis_dedup"], n, w, checks, ok)
    true_med = rows["true"]["wall_ms_median"]
    print("wall in ms; RSS in MiB; \"- true\" = median minus the median of /bin/true.")
    for path, f, r in (("delivery", "file_deliver", "redis_deliver"), ("dedup skip", "file_dedup", "redis_dedup")):
        fm, rm = rows[f]["wall_ms_median"], rows[r]["wall_ms_median"]
        extra = rm - fm
        print(f"Redis store, {path}: {extra:+.2f} ms per event over the file store (median {rm:.2f} vs {fm:.2f} ms; "
              f"{rm / true_med:.2f}x vs {fm / true_med:.2f}x /bin/true) — target <= +0.3 ms: "
              f"{'ok' if extra <= 0.3 else 'MISSED'}")
    finish(checks, ok, logs)


if __name__ == "__main__":
    main()
