#!/usr/bin/env bash
# What the Redis state store costs one event: handler-pagerduty with --state-store on a loopback
# redis-server next to the same handler with the file store, and /bin/true, in one interleaved
# loop (bench/measure_redis.py; the measuring is bench/benchlib.py's, as for bench/pagerduty.sh).
#
#   bench/redis.sh                 # 1000 events of each kind, a few minutes on 2 cores
#   BENCH_N=200 bench/redis.sh     # quicker
#
# What it does:
#   1. builds `cargo build --release --bin handler-pagerduty` into $CARGO_TARGET_DIR (bench/lib.sh);
#   2. starts bench/fake_pagerduty.py and a redis-server (Debian's `redis-server`, installed with
#      apt-get when missing) on free ports of 127.0.0.1, the latter with a random password and
#      no persistence (`--save '' --appendonly no`: what is measured is the client's cost, not
#      the server's disk), and stops both on exit;
#   3. runs the loop: file and Redis deliveries (a new entity each), file and Redis dedup skips
#      (the same event each time), /bin/true; checks that every delivery reached the fake once
#      and every repeat was suppressed; prints the table and the Redis store's extra cost per
#      event over the file store (target: at most +0.3 ms).
#
# Environment: BENCH_N (1000), BENCH_WARMUP (20), BENCH_FIXTURE, BENCH_REV, BENCH_BIN, BENCH_KEEP,
# CARGO_TARGET_DIR, TMPDIR as for bench/pagerduty.sh.
set -euo pipefail

bench_tag=bench-redis
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_loop 1000 20
KEY=BenchRoutingKey00000000000000000 # 32 characters, only ever sent to the loopback fake

missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v redis-server >/dev/null || missing+=(redis-server)
bench_tools "${missing[@]}"

bench_workdir pagerpipe-bench-redis
bench_build handler-pagerduty
bench_fake PagerDuty fake_pagerduty.py

# --- Redis on loopback ---------------------------------------------------------------------------
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
mkdir -p "$work/redis"
redis_up=
for _ in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    bench_bg redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
        --requirepass "$password" --dir "$work/redis" --logfile "$work/redis/redis.log"
    redis_pid=$!
    for _ in $(seq 250); do
        kill -0 "$redis_pid" 2>/dev/null || break
        if [[ $(redis-cli -h 127.0.0.1 -p "$port" --no-auth-warning -a "$password" ping 2>/dev/null) == PONG ]]; then
            redis_up=1
            break 2
        fi
        sleep 0.02
    done
    kill -0 "$redis_pid" 2>/dev/null && die "redis-server on port $port did not answer PING: $(tail -3 "$work/redis/redis.log")"
    say "redis-server exited (port $port taken?); trying another port"
done
[[ -n $redis_up ]] || die "redis-server did not start: $(tail -3 "$work/redis/redis.log")"
say "redis-server $(redis-server --version | grep -o 'v=[^ ]*') at 127.0.0.1:$port (pid $redis_pid)"
export BENCH_STATE_STORE="redis://:$password@127.0.0.1:$port/0"

# --- the measured loop ---------------------------------------------------------------------------
say "measuring: $N events x 5 commands x 2 (timed, RSS) + $WARMUP warm-up rounds"
bench_run python3 -u "$bench_dir/measure_redis.py" --bin "$bin" --url "$url" --key "$KEY" --fixture "$FIXTURE" \
    --work "$work" --n "$N" --warmup "$WARMUP"
say "Redis: $(redis-cli -h 127.0.0.1 -p "$port" --no-auth-warning -a "$password" info commandstats | grep -E 'cmdstat_(get|set|eval|watch|exec|ping)' | cut -d, -f1 | tr '\r\n' '  ')"
