#!/usr/bin/env bash
# `--from exec` with a job that prints a lot: the handler passes the job's output through and
# keeps only the last 4 KiB, so its peak RSS must not grow with the output, and passing the
# output through should cost little next to the job writing to /dev/null itself.
#
#   bench/exec.sh                      # outputs of 0, 10 MiB, 100 MiB and 1 GiB, 3 runs each
#   BENCH_SIZES="0 1073741824" BENCH_RUNS=5 bench/exec.sh
#
# What it does: builds `cargo build --release --bin handler-pagerduty` (bench/lib.sh; or
# BENCH_BIN), then for each size runs, BENCH_RUNS times each, under GNU `/usr/bin/time -f %M`:
#   job alone     head -c SIZE /dev/zero > /dev/null
#   handler       handler-pagerduty --dry-run --from exec --check bench -- head -c SIZE /dev/zero
#                 (stdout to /dev/null: the job's output and the printed request; no network)
# and prints the median wall time and the largest peak RSS of each. It also checks that the
# handler said how many bytes the job wrote.
#
# Environment: BENCH_SIZES (bytes, space-separated), BENCH_RUNS=3, BENCH_BIN, BENCH_REV,
# BENCH_KEEP=1, CARGO_TARGET_DIR, as for the other scripts. Needs python3 and GNU time (Debian
# package `time`, installed with apt-get when missing).
set -euo pipefail

bench_tag=bench/exec.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SIZES=${BENCH_SIZES:-0 10485760 104857600 1073741824}
RUNS=${BENCH_RUNS:-3}
bench_count BENCH_RUNS "$RUNS"
for s in $SIZES; do bench_count "a size in BENCH_SIZES" "$s" 0; done

[[ -x /usr/bin/time ]] || bench_tools time
bench_workdir pagerpipe-bench-exec
bench_build handler-pagerduty
key=R0ut1ngKeyF0rTests0000000000abcd # a made-up routing key; --dry-run sends nothing

# measure LABEL CMD...: RUNS runs, each timed with $EPOCHREALTIME around it (microseconds; the
# few ms of /usr/bin/time itself included alike in both rows) and its peak RSS from
# /usr/bin/time -f %M; appends "LABEL median_s max_rss_kib" to $work/rows.
measure() {
    local label=$1 i t0 t1
    shift
    : >"$work/times"
    for ((i = 0; i < RUNS; i++)); do
        t0=$EPOCHREALTIME
        /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>>"$work/stderr"
        t1=$EPOCHREALTIME
        echo "$t0 $t1 $(<"$work/rss")" >>"$work/times"
    done
    python3 - "$label" "$work/times" >>"$work/rows" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[2]) if line.strip()]
wall = statistics.median(float(r[1]) - float(r[0]) for r in rows)
rss = max(int(r[2]) for r in rows)
print(f"{sys.argv[1]}\t{wall:.4f}\t{rss}")
PY
}

: >"$work/rows"
for size in $SIZES; do
    say "output of $size bytes"
    measure "job alone, $size B" sh -c "head -c $size /dev/zero > /dev/null"
    : >"$work/stderr"
    measure "handler, $size B" env -i PATH=/usr/bin:/bin PAGERDUTY_ROUTING_KEY=$key \
        "$bin" --dry-run --state-dir "$work/state" --spool-dir "$work/spool" --config "$work" \
        --from exec --check bench --entity bench -- head -c "$size" /dev/zero
    grep -q "($size bytes of output)\|, $size bytes of output)" "$work/stderr" ||
        die "the handler did not report $size bytes: $(tail -3 "$work/stderr")"
done

python3 - "$work/rows" <<'PY'
import sys
print("| run | median wall | peak RSS (max) |")
print("|---|---|---|")
for line in open(sys.argv[1]):
    label, wall, rss = line.rstrip("\n").split("\t")
    print(f"| {label} | {float(wall) * 1000:.1f} ms | {int(rss) / 1024:.2f} MiB |")
PY
