#!/usr/bin/env bash
# Per-event cost of handler-twilio on loopback HTTP: wall time and peak RSS of one process for one
# broadcast event (3 recipients → 3 calls), next to /bin/true (process start alone).
#
#   bench/twilio.sh                  # 500 events of each kind, about a minute on 2 cores
#   BENCH_N=200 bench/twilio.sh      # quicker
#
# What it does (the method is bench/pagerduty.sh's; see bench/README.md):
#   1. builds `cargo build --release --bin handler-twilio` into $CARGO_TARGET_DIR (default
#      ../target-bench next to the repository);
#   2. starts bench/fake_twilio.py (Python 3 stdlib) on a free port of 127.0.0.1 and stops it on
#      exit; no request leaves the machine (--api-url http://127.0.0.1:…, a cleared environment);
#   3. a few sanity runs under `/usr/bin/time -f %M`: the handler calls 3 numbers, then skips the
#      repeat;
#   4. runs bench/measure_twilio.py: BENCH_N iterations of /bin/true, a broadcast delivery with the
#      default call caps, the same with caps off, and a dedup skip, interleaved; each timed
#      (posix_spawn .. wait4) and run once more under /usr/bin/time for the peak RSS; then checks
#      with the fake that every delivery placed 3 calls as its own incident.
#
# Environment: BENCH_N (500), BENCH_WARMUP (20), BENCH_FIXTURE (tests/fixtures/sensu/create.json),
# BENCH_REV (build a git revision instead of the working tree), BENCH_BIN (use this binary, no
# build), BENCH_KEEP=1 (keep the work directory), CARGO_TARGET_DIR, TMPDIR (where --state-dir
# lives; the state store fsyncs, so use a real disk for numbers that mean something).
#
# Needs python3 and GNU time (/usr/bin/time; installed with apt-get when missing).
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)
N=${BENCH_N:-500}
WARMUP=${BENCH_WARMUP:-20}
FIXTURE=${BENCH_FIXTURE:-$repo/tests/fixtures/sensu/create.json}
TOKEN=bench-twilio-token-000000000000000 # only ever sent to the loopback fake
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(cd "$repo/.." && pwd)/target-bench}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_N must be a positive integer, not '$N'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number, not '$WARMUP'"
command -v python3 >/dev/null || die "python3 is required"
[[ -r $FIXTURE ]] || die "no fixture $FIXTURE"

if [[ ! -x /usr/bin/time ]]; then
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "missing /usr/bin/time and not root: apt-get install time"
        sudo=(sudo)
    fi
    say "installing time with apt-get"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends time >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pagerpipe-bench-twilio.XXXXXX")
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
    if [[ ${BENCH_KEEP:-} == 1 ]]; then say "kept $work"; else rm -rf "$work"; fi
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
    (cd "$src" && cargo build --release --locked --bin handler-twilio) >&2
    bin=$CARGO_TARGET_DIR/release/handler-twilio
fi
say "binary: $(stat -c %s "$bin") bytes, $("$bin" --version)"

# --- fake Twilio ---------------------------------------------------------------------------------
python3 "$bench_dir/fake_twilio.py" "$work/port" &
fake_pid=$!
for _ in $(seq 100); do
    [[ -s $work/port ]] && break
    kill -0 "$fake_pid" 2>/dev/null || die "the fake Twilio did not start"
    sleep 0.05
done
[[ -s $work/port ]] || die "the fake Twilio did not report its port"
url=http://127.0.0.1:$(<"$work/port")
say "fake Twilio at $url (pid $fake_pid)"

# --- sanity check ---------------------------------------------------------------------------------
mkdir -p "$work/xcheck/conf.d" "$work/xcheck/state"
cat >"$work/xcheck/conf.d/twilio.json" <<'JSON'
{"twilio": {"account_sid": "AC0000000000000000000000000000beef", "from": "+14155550199",
  "recipients": ["+14155550101", "+14155550102", "+819012345678"], "conference": true}}
JSON
xevent() { python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); e["client"]["name"]=sys.argv[2]; print(json.dumps(e))' "$FIXTURE" "$1"; }
hrun() {
    env -i PATH=/usr/bin:/bin TWILIO_AUTH_TOKEN=$TOKEN /usr/bin/time -f %M -o "$work/xcheck/rss" \
        "$bin" --api-url "$url" --config "$work/xcheck/conf.d" --state-dir "$work/xcheck/state" \
        >/dev/null 2>>"$work/xcheck/stderr" || return 1
    cat "$work/xcheck/rss"
}
deliver_rss=() dedup_rss=()
for i in 1 2 3; do
    xevent "xcheck-$i" >"$work/xcheck/ev"
    deliver_rss+=("$(hrun <"$work/xcheck/ev")") || die "handler failed: $(tail -1 "$work/xcheck/stderr")"
    dedup_rss+=("$(hrun <"$work/xcheck/ev")") || die "handler failed: $(tail -1 "$work/xcheck/stderr")"
done
grep -q "3 of 3 requests accepted" "$work/xcheck/stderr" || die "a broadcast did not place 3 calls: $(cat "$work/xcheck/stderr")"
grep -q "already notified" "$work/xcheck/stderr" || die "a repeated event was not suppressed: $(cat "$work/xcheck/stderr")"
say "/usr/bin/time -f %M (KiB), 3 runs each: broadcast ${deliver_rss[*]}; dedup skip ${dedup_rss[*]}"
say "handler says: $(head -1 "$work/xcheck/stderr")"

# --- the measured loop ---------------------------------------------------------------------------
say "measuring: $N events x 4 commands x 2 (timed, RSS) + $WARMUP warm-up rounds"
python3 -u "$bench_dir/measure_twilio.py" --bin "$bin" --url "$url" --token "$TOKEN" --fixture "$FIXTURE" \
    --work "$work" --n "$N" --warmup "$WARMUP" &
measure_pid=$!
wait "$measure_pid"
measure_pid=
