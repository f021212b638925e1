#!/usr/bin/env bash
# Per-event cost of handler-slack on loopback HTTP: wall time and peak RSS of one process for one
# failure that opens a war room (conversations.create + setTopic + invite + chat.postMessage),
# next to /bin/true (process start alone).
#
#   bench/slack.sh                   # 500 events of each kind, about a minute on 2 cores
#   BENCH_N=200 bench/slack.sh       # quicker
#
# What it does (the method is bench/pagerduty.sh's, and so are the steps in bench/lib.sh; see
# bench/README.md):
#   1. builds `cargo build --release --bin handler-slack` into $CARGO_TARGET_DIR (default
#      ../target-bench next to the repository);
#   2. starts bench/fake_slack.py (Python 3 stdlib) on a free port of 127.0.0.1 and stops it on
#      exit; no request leaves the machine (--api-url http://127.0.0.1:…/api, a cleared
#      environment);
#   3. a few sanity runs under `/usr/bin/time -f %M`: the handler opens a war room (4 calls),
#      then skips the repeat;
#   4. runs bench/measure_slack.py: BENCH_N iterations of /bin/true, a war-room delivery and a
#      dedup skip, interleaved; each timed (posix_spawn .. wait4) and run once more under
#      /usr/bin/time for the peak RSS; then checks with the fake that every delivery made its 4
#      calls into its own channel.
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
TOKEN=xoxb-0000000000-0000000000-BenchSlackToken000 # only ever sent to the loopback fake

[[ -x /usr/bin/time ]] || bench_tools time

bench_workdir pagerpipe-bench-slack
bench_build handler-slack
bench_fake Slack fake_slack.py
api=$url/api

# --- sanity check ---------------------------------------------------------------------------------
mkdir -p "$work/xcheck/conf.d"
cat >"$work/xcheck/conf.d/slack.json" <<'JSON'
{"slack": {"channel_template": "{entity}-{check}", "responders": ["U01ALICE01", "U02BOB0002"]}}
JSON
url=$api bench_xcheck 3 SLACK_BOT_TOKEN=$TOKEN
grep -q "alert posted (ts " "$work/xcheck/stderr" || die "no war room was opened: $(cat "$work/xcheck/stderr")"
say "/usr/bin/time -f %M (KiB), 3 runs each: war room ${deliver_rss[*]}; dedup skip ${dedup_rss[*]}"
say "handler says: $(head -1 "$work/xcheck/stderr")"

# --- the measured loop ---------------------------------------------------------------------------
say "measuring: $N events x 3 commands x 2 (timed, RSS) + $WARMUP warm-up rounds"
bench_run python3 -u "$bench_dir/measure_slack.py" --bin "$bin" --url "$url" --token "$TOKEN" --fixture "$FIXTURE" \
    --work "$work" --n "$N" --warmup "$WARMUP"
