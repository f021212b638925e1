#!/usr/bin/env bash
# Interleaved A/B of handler-pagerduty builds: `NAME delivery` and `NAME dedup skip` for each
# build, next to /bin/true, in one loop (bench/compare.py), against the loopback fake PagerDuty.
# For choosing between variants on a noisy shared machine: read the ratios to /bin/true.
#
#   bench/compare.sh base=/path/to/handler-pagerduty static=/path/to/other
#   BENCH_N=500 TMPDIR=/dev/shm bench/compare.sh a=... b=...   # state on tmpfs: no fsync cost
#
# Environment: BENCH_N (300), BENCH_WARMUP (10), BENCH_FIXTURE, BENCH_KEEP=1, TMPDIR (where
# state and spool live). No build: give built binaries. Needs python3 and GNU time.
set -euo pipefail

bench_tag=compare
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=${BENCH_N:-300}
WARMUP=${BENCH_WARMUP:-10}
FIXTURE=${BENCH_FIXTURE:-$repo/tests/fixtures/sensu/create.json}
KEY=BenchRoutingKey00000000000000000 # only ever sent to the loopback fake

bench_count BENCH_N "$N"
bench_count BENCH_WARMUP "$WARMUP" 0
(($#)) || die "usage: bench/compare.sh NAME=BINARY..."
builds=()
for b in "$@"; do
    [[ $b == *=* && -x ${b#*=} ]] || die "not NAME=executable: $b"
    say "${b%%=*}: $(stat -c %s "${b#*=}") bytes, $("${b#*=}" --version)"
    builds+=(--build "$b")
done
[[ -x /usr/bin/time ]] || bench_tools time

bench_workdir pagerpipe-compare
bench_fake PagerDuty fake_pagerduty.py
bench_run python3 -u "$bench_dir/compare.py" --url "$url" --key "$KEY" --fixture "$FIXTURE" \
    --work "$work" --n "$N" --warmup "$WARMUP" "${builds[@]}"
