#!/usr/bin/env bash
# Per-event cost of handler-twilio on loopback HTTP: wall time and peak RSS of one process for one
# broadcast event (3 recipients → 3 calls), next to /bin/true (process start alone).
#
#   bench/twilio.sh                  # 500 events of each kind, about a minute on 2 cores
#   BENCH_N=200 bench/twilio.sh      # quicker
#
# What it does (the method is bench/pagerduty.sh's, and so are the steps in bench/lib.sh; see
# bench/README.md):
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

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_loop 500 20
TOKEN=bench-twilio-token-000000000000000 # only ever sent to the loopback fake

[[ -x /usr/bin/time ]] || bench_tools time

bench_workdir pagerpipe-bench-twilio
bench_build handler-twilio
bench_fake Twilio fake_twilio.py

# --- sanity check ---------------------------------------------------------------------------------
mkdir -p "$work/xcheck/conf.d"
cat >"$work/xcheck/conf.d/twilio.json" <<'JSON'
{"twilio": {"account_sid": "AC0000000000000000000000000000beef", "from": "+14155550199",
  "recipients": ["+14155550101", "+14155550102", "+819012345678"], "conference": true}}
JSON
bench_xcheck 3 TWILIO_AUTH_TOKEN=$TOKEN
grep -q "3 of 3 requests accepted" "$work/xcheck/stderr" || die "a broadcast did not place 3 calls: $(cat "$work/xcheck/stderr")"
say "/usr/bin/time -f %M (KiB), 3 runs each: broadcast ${deliver_rss[*]}; dedup skip ${dedup_rss[*]}"
say "handler says: $(head -1 "$work/xcheck/stderr")"

# --- the measured loop ---------------------------------------------------------------------------
say "measuring: $N events x 4 commands x 2 (timed, RSS) + $WARMUP warm-up rounds"
bench_run python3 -u "$bench_dir/measure_twilio.py" --bin "$bin" --url "$url" --token "$TOKEN" --fixture "$FIXTURE" \
    --work "$work" --n "$N" --warmup "$WARMUP"
