"""What bench/'s Python scripts share (Python 3 stdlib only); imported, not run.

For the drivers (measure.py, measure_twilio.py): `parse_args`, `write_events`; `Cmd`, one
command timed and measured per run; `measure`, the warm-up and the interleaved loop with the CPU
accounting; `report`, results.json and the table. For the fakes (fake_pagerduty.py,
fake_twilio.py): `FakeHandler`, the request handler with the shared `GET /stats` and the counts
behind it, and `serve`.

How a command is measured — every iteration runs each command twice, as separate processes with
separate events:

  timed run   started directly with posix_spawn and reaped with wait4; wall time is
              perf_counter() around spawn..reap, nothing else in between.
  RSS run     started under GNU `/usr/bin/time -f %M` (peak RSS in KiB, of the process and of
              the children it waited for). Not read from our own wait4: posix_spawn starts the
              child in Python's address space (vfork), and Linux folds that address space's
              high-water mark into the child's ru_maxrss at exec, so every process would look
              as big as this driver (~22 MiB). `time` forks from its own 1 MiB.

The commands are interleaved (one of each per iteration, in a shuffled order) so that machine noise
falls on all of them alike. Every process gets a minimal environment (no proxy variables, no
HOME), stdin from a pre-written event file, stdout to /dev/null and stderr appended to a
per-command log.
"""

import argparse
import json
import os
import random
import resource
import selectors
import socket
import statistics
import sys
import threading
import time
import urllib.request
from typing import ClassVar

GNU_TIME = "/usr/bin/time"
PATH = "/usr/local/bin:/usr/bin:/bin"  # the PATH of every measured process
PROG = os.path.splitext(os.path.basename(sys.argv[0]))[0]  # "measure", "measure_twilio": messages


# --- drivers --------------------------------------------------------------------------------------


def parse_args(n_default, secret):
    """The driver's options: --bin --url --fixture --work --n --warmup and the `secret` one
    (e.g. "--key"). Exits unless --url is on http://127.0.0.1: (nothing may leave the machine).
    Makes work/events and work/logs, in the result as `events` and `logs`."""
    ap = argparse.ArgumentParser()
    for opt in ("--bin", "--url", "--fixture", "--work", secret):
        ap.add_argument(opt, required=True)
    ap.add_argument("--n", type=int, default=n_default)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()
    if not a.url.startswith("http://127.0.0.1:"):
        sys.exit(f"{PROG}: refusing a non-loopback URL")
    a.events, a.logs = os.path.join(a.work, "events"), os.path.join(a.work, "logs")
    for d in (a.events, a.logs):
        os.makedirs(d, exist_ok=True)
    return a


def write_events(fixture, events, counts):
    """For each prefix: count in `counts`, writes `count` copies of the Sensu 1.x `fixture`, each
    with its own entity (client.name) PREFIX-00000, PREFIX-00001, …, to events/ENTITY.json, all
    before any timing starts; returns {prefix: [paths]}. The fakes count by the entity's prefix
    (up to the first "-")."""
    with open(fixture, "rb") as f:
        base = json.load(f)
    # A check run just now: the fixture's own time (2016) would read as a host clock ten years
    # behind, bounded to 60 s before receipt, so each second's first repeat would note a later
    # time (a write) instead of being the read-only identical repeat the dedup rows measure.
    if isinstance(base.get("check"), dict) and "executed" in base["check"]:
        base["check"]["executed"] = int(time.time())

    def write_event(name):
        ev = dict(base)
        ev["client"] = dict(base["client"], name=name)
        p = os.path.join(events, name + ".json")
        with open(p, "w") as f:
            json.dump(ev, f)
        return p

    return {p: [write_event(f"{p}-{i:05d}") for i in range(n)] for p, n in counts.items()}


def write_flaps(fixtures, events, entity, n):
    """A check that keeps flapping: `n` events of one entity (client.name `entity`), failure
    and recovery in turn (the Sensu 1.x `fixtures`, a create and a resolve), one second apart in
    `check.executed`, all in the past (run them with PAGERPIPE_HOST_CLOCK_LATENESS large, so that
    those times order them). Each one turns the incident over: a failure of an incident the
    ledger holds resolved, a recovery of one it holds open. Returns the paths in order."""
    bases = []
    for fixture in fixtures:
        with open(fixture, "rb") as f:
            bases.append(json.load(f))
    start = int(time.time()) - n - 60
    paths = []
    for k in range(n):
        ev = dict(bases[k % 2])
        ev["client"] = dict(ev["client"], name=entity)
        ev["check"] = dict(ev["check"], executed=start + k, issued=start + k)
        p = os.path.join(events, f"{entity}-{k:05d}.json")
        with open(p, "w") as f:
            json.dump(ev, f)
        paths.append(p)
    return paths


def stats_of(url):
    """The fake's GET /stats, without any proxy."""
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url + "/stats", timeout=5) as r:
        return json.load(r)


def by_prefix(stats, *prefixes):
    """The fake's {"accepted": n, "keys": n} summed over these key prefixes (0 for one it saw none of)."""
    seen = [stats["by_prefix"].get(p, {"accepted": 0, "keys": 0}) for p in prefixes]
    return {k: sum(s[k] for s in seen) for k in ("accepted", "keys")}


def lines_with(path, text):
    """How many lines of the file at `path` contain `text`."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(text in line for line in f)


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
    """One command: its argv; `env(i, rss)` and `event(i, rss)` give the environment and the
    event file of run i (rss: the run under /usr/bin/time); stderr goes to `log`."""

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
        rss_argv = [GNU_TIME, "-f", "%M", "-o", self.rss_file, *self.argv]
        rcode, _, _ = self._spawn(rss_argv, self.env(i, True), self.event(i, True))
        if not record:
            if code or rcode:
                sys.exit(f"{PROG}: warm-up run of {self.name} exited {code or rcode}; see {self.log_path}")
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


class Run:
    """What `measure` returns: the measured `cmds`, the fake's stats `before` and `after` the
    loop, its `elapsed` seconds and `other_share`, the CPU other work took meanwhile (of one CPU)."""

    def __init__(self, cmds, before, after, elapsed, other_share):
        self.cmds, self.before, self.after = cmds, before, after
        self.elapsed, self.other_share = elapsed, other_share

    def checks(self, dedup_log):
        """The checks every driver makes: requests the fake rejected during the loop, its server
        time, and the "already notified" lines (dedup skips) in the dedup command's log."""
        return {
            "rejected": self.after["rejected"] - self.before["rejected"],
            "fake_server_ms_per_request": self.after["server_ms_mean"],
            "dedup_already_notified_lines": lines_with(dedup_log, "already notified"),
        }


def measure(make, n, warmup, url):
    """Runs `make(True)`'s commands `warmup` times unrecorded (page cache, the fake's code paths,
    priming the dedup state), then `make(False)`'s n times, interleaved, each round in a
    shuffled order (seeded by BENCH_SEED, 1 by default)."""
    warm = make(True)
    for i in range(warmup):
        for c in warm:
            c.run(i, record=False)
    before = stats_of(url)

    cmds = make(False)
    # Each round in its own order: a command always run right after the same one (as a rotated
    # order does) reads what that one leaves behind, e.g. a redis-server woken a moment ago for
    # the second Redis row but asleep for the first: 0.1-0.2 ms in session 21.
    order = random.Random(int(os.environ.get("BENCH_SEED", "1")))
    busy0, own0 = busy_cpu_s(), own_cpu_s() + before["cpu_s"]
    t_start = time.perf_counter()
    for i in range(n):
        for c in order.sample(cmds, len(cmds)):
            c.run(i)
    elapsed = time.perf_counter() - t_start
    after = stats_of(url)
    # CPU that other work on the machine took while we measured (our own: driver, the processes
    # it ran, the fake server), as a share of one CPU.
    other = (busy_cpu_s() - busy0) - (own_cpu_s() + after["cpu_s"] - own0)
    return Run(cmds, before, after, elapsed, max(0.0, other / elapsed))


def report(work, run, keys, n, warmup, checks, ok, cpu_note=""):
    """Writes work/results.json and prints the header and the table; returns the rows by key."""
    rows = [c.summary() for c in run.cmds]
    true_med = rows[0]["wall_ms_median"]  # the first command is /bin/true
    for r in rows:
        r["x_true"] = r["wall_ms_median"] / true_med if true_med else 0.0
    out = {"n": n, "other_cpu_share": run.other_share, "warmup": warmup, "elapsed_s": run.elapsed,
           "checks": checks, "ok": ok, "rows": dict(zip(keys, rows))}
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(out, f, indent=2)

    print()
    print(f"CPU used outside this benchmark's processes during the run: {100 * run.other_share:.0f}% of one "
          f"CPU{cpu_note}")
    if run.other_share > 0.25:
        print("WARNING: the machine was busy with other work; wall means and p95 are inflated (medians less so)")
    print(f"{n} events per command (each timed once directly and once more under /usr/bin/time for RSS),")
    print(f"interleaved, after {warmup} warm-up rounds; {run.elapsed:.1f} s; the fake server spends "
          f"{checks['fake_server_ms_per_request']:.2f} ms per request")
    print()
    width = max(19, *(len(r["name"]) for r in rows))
    fmt = "| {:<%d} | {:>5} | {:>4} | {:>7} | {:>7} | {:>7} | {:>8} | {:>6} | {:>7} | {:>7} | {:>7} |" % width
    print(fmt.format("command", "runs", "fail", "mean ms", "median", "p95", "- true", "x true", "CPU ms", "RSS max", "median"))
    print("|" + "|".join("-" * x for x in (width + 2, 7, 6, 9, 9, 9, 10, 8, 9, 9, 9)) + "|")
    for r in rows:
        print(fmt.format(
            r["name"], r["runs"], r["fails"],
            f"{r['wall_ms_mean']:.2f}", f"{r['wall_ms_median']:.2f}", f"{r['wall_ms_p95']:.2f}",
            f"{r['wall_ms_median'] - true_med:+.2f}", f"{r['x_true']:.2f}", f"{r['cpu_ms_mean']:.2f}",
            f"{mib(r['rss_kib_max']):.2f}", f"{mib(r['rss_kib_median']):.2f}",
        ))
    print()
    return out["rows"]


def mib(kib):
    return kib / 1024.0


def finish(checks, ok, logs):
    """Prints the checks; exits 1 when they failed."""
    print("checks:", json.dumps(checks))
    sys.stdout.flush()
    if not ok:
        print(f"{PROG}: CHECKS FAILED (see the logs in {logs})", file=sys.stderr)
        sys.exit(1)


# --- fakes ----------------------------------------------------------------------------------------


class Headers(dict):
    """A request's headers, looked up case-insensitively (HTTP field names are)."""

    def get(self, name, default=None):
        return super().get(name.lower(), default)


class FakeHandler:
    """A fake service's request handler, one instance per request: a subclass sets
    `server_version` and `not_found` (the 404 body), and its do_POST reads `path`, `headers`
    and `body()` and calls `reply()` and `count()`.

    GET /stats -> 200 {"accepted":N,"rejected":N,"server_ms_mean":F,"cpu_s":F,
                       "by_prefix":{"h":{"accepted":N,"keys":N},...}}
    counts accepted requests per incident key prefix (up to the first "-"), so that a bench can
    check that every delivery arrived as its own incident. Every answer has `Connection: close`,
    as each client is a one-shot process.
    """

    server_version = "fake"
    not_found: ClassVar[dict] = {"status": "not found"}
    lock = threading.Lock()  # guards the counts below, and whatever else a fake keeps
    stats: ClassVar[dict] = {"accepted": 0, "rejected": 0, "server_s": 0.0}
    keys: ClassVar[dict] = {}  # incident key prefix -> {"accepted": n, "keys": set()}

    def __init__(self, method, path, headers, raw_body):
        self.method, self.path, self.headers, self._body = method, path, headers, raw_body
        self.t0 = time.perf_counter()
        self.out = b""

    def body(self):
        """Starts the clock of this request's server time and returns its body."""
        self.t0 = time.perf_counter()
        return self._body

    def json_body(self):
        """Like `body()`, the body read as JSON: None when it is empty or not JSON."""
        raw = self.body()
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        head = (f"HTTP/1.1 {code} {REASONS.get(code, 'Status')}\r\nServer: {self.server_version}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        self.out = head.encode() + body

    def count(self, ok, key):
        """Counts the request as accepted (under incident `key`) or rejected, after its reply."""
        with self.lock:
            self.stats["accepted" if ok else "rejected"] += 1
            self.stats["server_s"] += time.perf_counter() - self.t0
            if ok:
                k = self.keys.setdefault(str(key).split("-", 1)[0], {"accepted": 0, "keys": set()})
                k["accepted"] += 1
                k["keys"].add(key)

    def do_POST(self):
        self.reply(404, self.not_found)

    def do_GET(self):
        if self.path != "/stats":
            self.reply(404, self.not_found)
            return
        with self.lock:
            st = self.stats
            n = st["accepted"] + st["rejected"]
            out = {
                "accepted": st["accepted"],
                "rejected": st["rejected"],
                "by_prefix": {p: {"accepted": v["accepted"], "keys": len(v["keys"])} for p, v in self.keys.items()},
                "server_ms_mean": round(1000 * st["server_s"] / n, 3) if n else 0.0,
                "cpu_s": time.process_time(),
            }
        self.reply(200, out)


REASONS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}


def parse_request(buf):
    """(method, path, Headers, body) once `buf` holds a whole request (headers and a body of
    its Content-Length), else None. Raises ValueError on a request line it cannot read."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = Headers()
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    n = int(headers.get("Content-Length") or 0)
    if len(buf) < end + 4 + n:
        return None
    return method, path, headers, bytes(buf[end + 4 : end + 4 + n])


def serve(handler):
    """Listens on a free port of 127.0.0.1 only, writes the port to the file named by the first
    argument (atomically, once it accepts connections), and serves in one thread: a `selectors`
    loop that reads each connection until its request is whole, answers it and closes it.

    One thread and no HTTP library: the time a client waits for its answer is part of the
    client's wall time, and a thread per connection (http.server's ThreadingHTTPServer) added
    ~0.1-0.2 ms to every delivery measured. Slow clients do not hold others up: every socket is
    non-blocking until its request is read."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1024)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    port = lsock.getsockname()[1]
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, sys.argv[1])
    try:
        while True:
            for key, _ in sel.select():
                if key.data is None:
                    while True:
                        try:
                            conn, _ = lsock.accept()
                        except BlockingIOError:
                            break
                        conn.setblocking(False)
                        sel.register(conn, selectors.EVENT_READ, bytearray())
                    continue
                conn, buf = key.fileobj, key.data
                try:
                    chunk = conn.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                buf += chunk
                try:
                    req = parse_request(buf) if chunk else None
                except ValueError:
                    req = ("BAD", "", Headers(), b"")
                if chunk and req is None:
                    continue
                sel.unregister(conn)
                if req is not None:
                    h = handler(*req)
                    {"GET": h.do_GET, "POST": h.do_POST}.get(h.method, lambda: h.reply(400, {"status": "bad request"}))()
                    try:
                        conn.setblocking(True)
                        conn.sendall(h.out)
                    except OSError:
                        pass
                conn.close()
    except KeyboardInterrupt:
        pass
