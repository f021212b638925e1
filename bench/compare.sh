#!/usr/bin/env bash
# Interleaved A/B of handler-pagerduty (or handler-twilio) builds: `NAME delivery` and `NAME dedup skip` for each
# build, next to /bin/true, in one loop (bench/compare.py), against the service's loopback fake.
# For choosing between variants on a noisy shared machine: read the ratios to /bin/true.
#
#   bench/compare.sh base=/path/to/handler-pagerduty static=/path/to/other
#   BENCH_N=500 TMPDIR=/dev/shm bench/compare.sh a=... b=...   # state on tmpfs: no fsync cost
#   BENCH_REDIS=1 bench/compare.sh a=...   # each build also with --state-store on a loopback Redis
#   BENCH_FLOOR=1 bench/compare.sh a=...   # add the floor rows: an empty static process, one POST
#   BENCH_FAKE=rust bench/compare.sh a=... # against the compiled fake PagerDuty (bench/fake/)
#   BENCH_HANDLER=twilio bench/compare.sh a=/path/to/handler-twilio b=...  # handler-twilio builds:
#                                          a broadcast of 3 calls and a dedup skip (bench/twilio.sh's
#                                          settings), against the Python fake Twilio
#
# Environment: BENCH_N (300), BENCH_WARMUP (10), BENCH_SEED (1: the seed of each round's shuffled
# order), BENCH_FIXTURE, BENCH_KEEP=1, TMPDIR (where state and spool live), BENCH_REDIS=1
# (start Debian's redis-server on a free loopback port, persistence off, stopped on exit, and
# add rows "NAME redis …": the handler with
# --state-store redis://127.0.0.1:PORT/0), BENCH_FLOOR=1 (compile bench/floor/*.rs with rustc,
# static like the handlers, and add rows "floor: empty process" and "floor: one POST": where a
# handler's cost starts, without its flags, settings, ledger or HTTP library; with BENCH_REDIS=1
# also "floor: one Redis round trip", the exchange a dedup skip makes with Redis and nothing
# else). No build: give built binaries. Needs python3 and GNU
# time (and redis-server for BENCH_REDIS; installed with apt-get when missing).
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

store=()
if [[ ${BENCH_REDIS:-} == 1 ]]; then
    command -v redis-server >/dev/null || bench_tools redis-server
fi

bench_workdir pagerpipe-compare
# Every build measured from a copy in the work directory, written alike (lib.sh bench_install).
for i in "${!builds[@]}"; do
    [[ ${builds[i]} == --build ]] && continue
    bench_install "${builds[i]#*=}"
    builds[i]=${builds[i]%%=*}=$installed
done
case ${BENCH_HANDLER:-pagerduty} in
pagerduty) bench_fake PagerDuty fake_pagerduty.py ;;
twilio) [[ ${BENCH_FLOOR:-} != 1 ]] || die "BENCH_FLOOR=1 is for handler-pagerduty: the floor's POST is PagerDuty's" ;;&
twilio) bench_fake Twilio fake_twilio.py ;;
*) die "BENCH_HANDLER must be pagerduty or twilio, not '$BENCH_HANDLER'" ;;
esac
floor=()
if [[ ${BENCH_FLOOR:-} == 1 ]]; then
    for f in empty post redis; do
        rustc --edition 2021 -C opt-level=s -C panic=abort -C strip=symbols -C target-feature=+crt-static \
            -o "$work/floor-$f" "$bench_dir/floor/$f.rs"
    done
    floor=(--floor "$work/floor-empty" "$work/floor-post")
    [[ ${BENCH_REDIS:-} != 1 ]] || floor+=(--floor-redis "$work/floor-redis")
fi
if [[ ${BENCH_REDIS:-} == 1 ]]; then
    rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    bench_bg redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --dir "$work" --logfile "$work/redis.log"
    for _ in $(seq 100); do
        redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break
        sleep 0.05
    done
    redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG || die "redis-server did not start: $(tail -3 "$work/redis.log")"
    say "redis-server at 127.0.0.1:$rport (pid ${bench_pids[0]}; no persistence)"
    store=(--state-store "redis://127.0.0.1:$rport/0")
fi
bench_run python3 -u "$bench_dir/compare.py" --handler "${BENCH_HANDLER:-pagerduty}" --url "$url" --key "$KEY" --fixture "$FIXTURE" \
    --work "$work" --n "$N" --warmup "$WARMUP" "${builds[@]}" "${store[@]}" "${floor[@]}"
