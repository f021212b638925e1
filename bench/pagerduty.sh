#!/usr/bin/env bash
# Per-event cost of handler-pagerduty on loopback HTTP: wall time and peak RSS of one process per
# event, next to /bin/true (process start alone) and a `jq | curl` one-liner doing the same POST.
#
#   bench/pagerduty.sh                 # 1000 events of each kind, about a minute on 2 cores
#   BENCH_N=200 bench/pagerduty.sh     # quicker
#
# What it does:
#   1. builds `cargo build --release --bin handler-pagerduty` into $CARGO_TARGET_DIR (default
#      ../target-bench next to the repository, so it never waits on other builds' target/ lock);
#      the steps shared with bench/twilio.sh and bench/storm.sh are in bench/lib.sh;
#   2. starts bench/fake_pagerduty.py (Python 3 stdlib) on a free port of 127.0.0.1 and stops it
#      on exit; no request ever leaves the machine (the handler gets --api-url http://127.0.0.1:…,
#      a cleared environment without proxy variables; curl gets --noproxy '*');
#   3. cross-checks peak RSS with GNU `/usr/bin/time -f %M` on a few runs;
#   4. runs bench/measure.py: BENCH_N iterations, each running, in rotating order,
#        /bin/true                      process start alone,
#        handler, delivery              a DIFFERENT entity every time (h-00000, h-00001, …) so
#                                       each is a real delivery, fresh --state-dir,
#        handler, dedup skip            the same event every time; a warm-up run delivered it
#                                       once, so every measured run is suppressed (storm path),
#        jq | curl                      sh -c 'jq -c PROGRAM | curl --data-binary @- URL',
#      each twice: once started directly and timed (posix_spawn .. wait4), once more under
#      `/usr/bin/time -f %M` for its peak RSS (bench/benchlib.py says why not wait4's ru_maxrss);
#      then checks with the fake that it saw exactly 2 x BENCH_N distinct handler deliveries
#      and a single one for the repeated event, and prints a table (results.json and the
#      handler's stderr logs stay in the work directory with BENCH_KEEP=1).
#
# Environment:
#   BENCH_N=1000        events per command
#   BENCH_WARMUP=20     unrecorded warm-up runs per command (at least 1: it primes the dedup state)
#   BENCH_FIXTURE=tests/fixtures/sensu/create.json   the event (Sensu 1.x; client.name is replaced)
#   BENCH_REV=<rev>     build this git revision (exported with `git archive`) instead of the
#                       working tree, e.g. while the working tree is mid-edit
#   BENCH_BIN=<path>    use this handler binary; skip the build
#   BENCH_KEEP=1        keep the work directory (events, state, logs, results.json)
#   BENCH_FAKE=rust     the fake PagerDuty compiled (bench/fake/) instead of fake_pagerduty.py
#   CARGO_TARGET_DIR    honoured when set
#   TMPDIR              where the work directory (and so --state-dir) is made; the state store
#                       fsyncs, so this should be a real disk like /var/lib, not tmpfs, for
#                       numbers that mean something
#
# Needs python3, and GNU time (/usr/bin/time), jq and curl: when one of those three is missing the
# script installs it with apt-get (Debian packages `time`, `jq`, `curl`; one `apt-get update`
# first; as root, or through sudo).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_loop 1000 20
KEY=BenchRoutingKey00000000000000000 # 32 characters, only ever sent to the loopback fake

missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
bench_tools "${missing[@]}"

bench_workdir pagerpipe-bench
bench_build handler-pagerduty
bench_fake PagerDuty fake_pagerduty.py

# --- sanity check ---------------------------------------------------------------------------------
# Fails early if the handler cannot deliver or does not suppress a repeat, and shows RSS as
# measured without the Python driver.
bench_xcheck 5 PAGERDUTY_ROUTING_KEY=$KEY
say "/usr/bin/time -f %M (KiB), 5 runs each: /bin/true ${true_rss[*]}; delivery ${deliver_rss[*]}; dedup skip ${dedup_rss[*]}"
say "handler says: $(head -1 "$work/xcheck/stderr")"

# --- the measured loop ---------------------------------------------------------------------------
say "measuring: $N events x 4 commands x 2 (timed, RSS) + $WARMUP warm-up rounds"
bench_run python3 -u "$bench_dir/measure.py" --bin "$bin" --url "$url" --key "$KEY" --fixture "$FIXTURE" \
    --work "$work" --n "$N" --warmup "$WARMUP"
