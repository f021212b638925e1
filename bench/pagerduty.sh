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
#      `/usr/bin/time -f %M` for its peak RSS (see measure.py for why not wait4's ru_maxrss);
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
#   CARGO_TARGET_DIR    honoured when set
#   TMPDIR              where the work directory (and so --state-dir) is made; the state store
#                       fsyncs, so this should be a real disk like /var/lib, not tmpfs, for
#                       numbers that mean something
#
# Needs python3, and GNU time (/usr/bin/time), jq and curl: when one of those three is missing the
# script installs it with apt-get (Debian packages `time`, `jq`, `curl`; one `apt-get update`
# first; as root, or through sudo).
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)
N=${BENCH_N:-1000}
WARMUP=${BENCH_WARMUP:-20}
FIXTURE=${BENCH_FIXTURE:-$repo/tests/fixtures/sensu/create.json}
KEY=BenchRoutingKey00000000000000000 # 32 characters, only ever sent to the loopback fake
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(cd "$repo/.." && pwd)/target-bench}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_N must be a positive integer, not '$N'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number, not '$WARMUP'"
command -v python3 >/dev/null || die "python3 is required"
[[ -r $FIXTURE ]] || die "no fixture $FIXTURE"

# --- tools --------------------------------------------------------------------------------------
missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "missing ${missing[*]} and not root: install them (apt-get install ${missing[*]})"
        sudo=(sudo)
    fi
    say "installing ${missing[*]} with apt-get"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- work directory and cleanup -----------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/pagerpipe-bench.XXXXXX")
fake_pid= measure_pid=
cleanup() {
    local rc=$?
    if [[ -n $measure_pid ]]; then
        kill "$measure_pid" 2>/dev/null || true
        wait "$measure_pid" 2>/dev/null || true
    fi
    if [[ -n $fake_pid ]]; then
        kill "$fake_pid" 2>/dev/null || true
        wait "$fake_pid" 2>/dev/null || true
    fi
    if [[ ${BENCH_KEEP:-} == 1 ]]; then
        say "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ---------------------------------------------------------------------------------------
if [[ -n ${BENCH_BIN:-} ]]; then
    bin=$BENCH_BIN
    [[ -x $bin ]] || die "BENCH_BIN=$bin is not an executable"
    say "using $bin (no build)"
else
    src=$repo
    if [[ -n ${BENCH_REV:-} ]]; then
        src=$work/src
        mkdir -p "$src"
        git -C "$repo" archive "$BENCH_REV" | tar -x -C "$src"
        say "building $(git -C "$repo" rev-parse --short "$BENCH_REV") (BENCH_REV=$BENCH_REV) in $CARGO_TARGET_DIR"
    else
        say "building the working tree in $CARGO_TARGET_DIR"
    fi
    (cd "$src" && cargo build --release --locked --bin handler-pagerduty) >&2
    bin=$CARGO_TARGET_DIR/release/handler-pagerduty
fi
say "binary: $(stat -c %s "$bin") bytes, $("$bin" --version)"

# --- fake PagerDuty --------------------------------------------------------------------------------
python3 "$bench_dir/fake_pagerduty.py" "$work/port" &
fake_pid=$!
for _ in $(seq 100); do
    [[ -s $work/port ]] && break
    kill -0 "$fake_pid" 2>/dev/null || die "the fake PagerDuty did not start"
    sleep 0.05
done
[[ -s $work/port ]] || die "the fake PagerDuty did not report its port"
url=http://127.0.0.1:$(<"$work/port")
say "fake PagerDuty at $url (pid $fake_pid)"

# --- sanity check ---------------------------------------------------------------------------------
# A few runs from this shell under /usr/bin/time -f %M (peak RSS in KiB), outside the measured
# loop, with their own entities (xcheck-…) and state directory: fails early if the handler cannot
# deliver or does not suppress a repeat, and shows RSS as measured without the Python driver.
mkdir -p "$work/xcheck/conf.d" "$work/xcheck/state"
xevent() { python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); e["client"]["name"]=sys.argv[2]; print(json.dumps(e))' "$FIXTURE" "$1"; }
hrun() {
    env -i PATH=/usr/bin:/bin PAGERDUTY_ROUTING_KEY=$KEY /usr/bin/time -f %M -o "$work/xcheck/rss" \
        "$bin" --api-url "$url" --config "$work/xcheck/conf.d" --state-dir "$work/xcheck/state" \
        >/dev/null 2>>"$work/xcheck/stderr" || return 1
    cat "$work/xcheck/rss"
}
deliver_rss=() dedup_rss=() true_rss=()
for i in 1 2 3 4 5; do
    xevent "xcheck-$i" >"$work/xcheck/ev"
    deliver_rss+=("$(hrun <"$work/xcheck/ev")") || die "handler failed: $(tail -1 "$work/xcheck/stderr")"
    dedup_rss+=("$(hrun <"$work/xcheck/ev")") || die "handler failed: $(tail -1 "$work/xcheck/stderr")"
    true_rss+=("$(/usr/bin/time -f %M /bin/true 2>&1)")
done
grep -q "already notified" "$work/xcheck/stderr" || die "a repeated event was not suppressed: $(cat "$work/xcheck/stderr")"
say "/usr/bin/time -f %M (KiB), 5 runs each: /bin/true ${true_rss[*]}; delivery ${deliver_rss[*]}; dedup skip ${dedup_rss[*]}"
say "handler says: $(head -1 "$work/xcheck/stderr")"

# --- the measured loop ---------------------------------------------------------------------------
say "measuring: $N events x 4 commands x 2 (timed, RSS) + $WARMUP warm-up rounds"
# In the background and waited for, so that a signal to this script runs the cleanup at once.
python3 -u "$bench_dir/measure.py" --bin "$bin" --url "$url" --key "$KEY" --fixture "$FIXTURE" \
    --work "$work" --n "$N" --warmup "$WARMUP" &
measure_pid=$!
wait "$measure_pid"
measure_pid=
