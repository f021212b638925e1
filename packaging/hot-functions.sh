#!/usr/bin/env bash
# Write packaging/hot-functions/handler-NAME.txt: the functions each handler runs for one
# event, in the order packaging/link-hot.sh places them at the start of its shipped binary's
# code.
#
#   packaging/hot-functions.sh        # ~2 minutes on 2 cores; then commit the lists
#
# Run it after changes that move a handler's work to other functions (a new dependency, a
# rewritten path); a list older than the code still links, it only orders less of it
# (packaging/test.sh fails when too little of it still matches).
#
# What it does:
#   1. builds the four handlers with build-bins.sh, their symbols kept
#      (PAGERPIPE_KEEP_SYMBOLS=1: the same build, so the same symbol names, hashes included),
#      into $CARGO_TARGET_DIR (default ../target-hot next to the repository);
#   2. starts the bench's loopback fakes (bench/fake_*.py, Python 3 stdlib) on 127.0.0.1 and
#      stops them on exit: no request leaves the machine;
#   3. runs each handler under valgrind's callgrind on three events, each its own process with
#      fresh state: a trigger (tests/fixtures/sensu/create.json), the identical repeat (a
#      dedup skip, the storm path) and the recovery (resolve.json); handler-pagerduty once more
#      with its ledger in a loopback redis-server (--state-store), when redis-server is
#      installed (else with a warning: the Redis store's code is then left where it is), and
#      with the event as Nagios (`--from nagios`) and Zabbix (`--from zabbix`) give it;
#   4. writes, for each handler, every function that ran, named as in the binary (rustc's
#      hash tells a generic function's instances apart): first those of its dedup skips, with
#      what glibc runs natively and not under valgrind (below), then those a trigger adds,
#      then those a recovery adds; within each group those most runs share first (what every
#      store and feed runs, then what fewer do), by name within a count.
#
# glibc's string functions are listed in the variant valgrind's CPU selects (AVX2,
# `__memcpy_avx_unaligned_erms`) and in the EVEX and AVX-512 ones of CPUs that have those.
#
# Needs python3, and valgrind (installed with apt-get when missing and run as root); uses
# redis-server when installed.
set -euo pipefail
export LC_ALL=C # one byte order for sort and comm

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/../target-hot}
say() { echo "hot-functions: $*" >&2; }
die() { say "error: $*"; exit 1; }

if ! command -v valgrind >/dev/null; then
    [[ $(id -u) == 0 ]] || die "needs valgrind (apt-get install valgrind)"
    say "installing valgrind"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pagerpipe-hot.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n ${HOT_KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT

handlers=(pagerduty twilio reactio slack)
cd "$repo"
say "building the handlers as build-bins.sh does, their symbols kept, in $CARGO_TARGET_DIR"
PAGERPIPE_KEEP_SYMBOLS=1 CARGO_ARGS=-q "$repo/packaging/build-bins.sh" "${handlers[@]/#/handler-}"

# The fake of each service, its port in $work/port-NAME.
for h in "${handlers[@]}"; do
    python3 "$repo/bench/fake_$h.py" "$work/port-$h" >"$work/fake-$h.log" 2>&1 &
    pids+=($!)
done
for h in "${handlers[@]}"; do
    for _ in $(seq 100); do [[ -s $work/port-$h ]] && break; sleep 0.05; done
    [[ -s $work/port-$h ]] || die "the fake $h did not start: $(cat "$work/fake-$h.log")"
done
url() { echo "http://127.0.0.1:$(<"$work/port-$1")"; }

# Settings as an operator's: a settings file for those that need more than a secret.
mkdir -p "$work/conf-twilio" "$work/conf-slack" "$work/conf-reactio"
cat >"$work/conf-twilio/twilio.json" <<'JSON'
{"twilio": {"account_sid": "AC0000000000000000000000000000beef", "from": "+14155550199",
  "recipients": [{"name": "Alice", "phone": "+14155550101"}, "+14155550102"], "conference": true}}
JSON
cat >"$work/conf-slack/slack.json" <<'JSON'
{"slack": {"channel_template": "{entity}-{check}", "responders": ["U01ALICE01"]}}
JSON
cat >"$work/conf-reactio/reactio.json" <<'JSON'
{"reactio": {"notification_text": "{entity}/{check}: {output}"}}
JSON
chmod 600 "$work"/conf-*/*.json

# suffix_of VARIANT: what names a variant's files: "", -redis, -nagios, -zabbix.
suffix_of() {
    case $1 in
    "") ;;
    nagios | zabbix) echo "-$1" ;;
    *) echo -redis ;;
    esac
}

# run HANDLER TAG EVENT [STORE|nagios|zabbix]: one process under callgrind, its function names to
# $work/fns-TAG-HANDLER[-VARIANT]. STORE: with --state-store STORE; nagios: the event as Nagios
# gives it (NAGIOS_* environment macros, EVENT says trigger or resolve); zabbix: as Zabbix's
# alert script (EVENT a message file, the subject `trigger` or `resolve` from its name).
run() {
    local h=$1 tag=$2 event=$3 variant=${4:-} api suffix
    api=$(url "$h")
    suffix=$(suffix_of "$variant")
    local -a args=(--api-url "$api" --state-dir "$work/state-$h$suffix" --spool-dir "$work/spool-$h$suffix")
    local -a input=()
    case $variant in
    "") ;;
    nagios)
        input=(NAGIOS_HOSTNAME=web-01 NAGIOS_HOSTADDRESS=192.0.2.5 NAGIOS_SERVICEDESC=HTTP NAGIOS_NOTIFICATIONNUMBER=1
            NAGIOS_SERVICEOUTPUT="HTTP CRITICAL - 503" NAGIOS_TIMET=1795219100)
        case $event in
        *resolve*) input+=(NAGIOS_NOTIFICATIONTYPE=RECOVERY NAGIOS_SERVICESTATE=OK) ;;
        *) input+=(NAGIOS_NOTIFICATIONTYPE=PROBLEM NAGIOS_SERVICESTATE=CRITICAL) ;;
        esac
        args+=(--from nagios)
        ;;
    zabbix) args+=(--from zabbix pagerduty "$(basename "$event" .txt | sed 's/^[0-9]*-//')" "$(cat "$event")") ;;
    *) args+=(--state-store "$variant") ;;
    esac
    local -a env=(PATH=/usr/bin:/bin PAGERPIPE_NOW=1795219200)
    case $h in
    pagerduty) env+=(PAGERDUTY_ROUTING_KEY=0123456789abcdef0123456789abcdef) ;;
    twilio) env+=(TWILIO_AUTH_TOKEN=hot-functions-token-000000000000) args+=(--config "$work/conf-twilio") ;;
    reactio) env+=(REACTIO_API_KEY=hot-functions-key) args+=(--config "$work/conf-reactio") ;;
    slack) env+=(SLACK_BOT_TOKEN=xoxb-hot-functions) args=(--api-url "$api/api" "${args[@]:2}" --config "$work/conf-slack") ;;
    esac
    local out=$tag-$h$suffix
    env -i "${env[@]}" "${input[@]}" valgrind -q --tool=callgrind --demangle=no --callgrind-out-file="$work/cg-$out" \
        "$CARGO_TARGET_DIR/release/handler-$h" "${args[@]}" <"$event" 2>>"$work/log-$out" \
        || die "handler-$h ($out) failed: $(tail -3 "$work/log-$out")"
    # callgrind names a function once, as "fn=(id) name" or "cfn=(id) name"; a recursion's
    # second instance is "name'2".
    sed -nE "s/^c?fn=\([0-9]+\) (.+)$/\1/p" "$work/cg-$out" | sed -E "s/'[0-9]+$//" \
        | grep -vE '^(0x[0-9a-f]+|\(below main\))$' | sort -u >"$work/fns-$out"
}

# events HANDLER [STORE]: the trigger, its repeat (checked to be a skip) and the recovery.
# events HANDLER [VARIANT [TRIGGER RESOLVE]]: the trigger, its repeat (checked to be a skip)
# and the recovery (run's VARIANT; the Sensu 1.x fixtures unless other event files are given).
events() {
    local variant=${2:-} trigger=${3:-$repo/tests/fixtures/sensu/create.json} resolve=${4:-$repo/tests/fixtures/sensu/resolve.json}
    run "$1" trigger "$trigger" "$variant"
    run "$1" skip "$trigger" "$variant"
    local log
    log=$work/log-skip-$1$(suffix_of "$variant")
    grep -q "skipped" "$log" || die "handler-$1 did not skip the repeat: $(tail -3 "$log")"
    run "$1" resolve "$resolve" "$variant"
}
for h in "${handlers[@]}"; do
    say "handler-$h: trigger, repeat, recovery"
    events "$h"
done
if command -v redis-server >/dev/null; then
    rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
    pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
    say "handler-pagerduty with its ledger in redis-server at 127.0.0.1:$rport"
    events pagerduty "redis://127.0.0.1:$rport/0"
else
    say "warning: no redis-server: the Redis store's functions are not listed"
fi
say "handler-pagerduty from Nagios (environment macros) and from Zabbix (the alert script's arguments)"
events pagerduty nagios "$repo/tests/fixtures/sensu/create.json" "$repo/tests/fixtures/sensu/resolve.json"
zabbix=$repo/tests/fixtures/zabbix/server-6.0.14/basic
events pagerduty zabbix "$zabbix/01-trigger.txt" "$zabbix/03-resolve.txt"

# natively NAMES...: what glibc runs outside valgrind and not under it, placed with a dedup skip.
# Found with `perf record -e page-faults -d` of a dedup skip (bench/HISTORY.md, session 18):
# the entry point and the C runtime's constructors; the vDSO's setup (valgrind hides the vDSO:
# its symbol lookup, its lock, strcmp); and the string functions for
# CPUs with AVX-512 (valgrind's has none, so glibc picks the AVX2 ones there): for each
# AVX2 one that ran, libc.a's EVEX and AVX-512 variants of the same function.
natively() {
    printf '%s\n' _start frame_dummy register_tm_clones __do_global_dtors_aux deregister_tm_clones \
        _dl_new_object _dl_add_to_namespace_list _dl_setup_hash _dl_lookup_symbol_x do_lookup_x \
        check_match _dl_name_match_p pthread_mutex_lock __pthread_mutex_lock pthread_mutex_unlock \
        __pthread_mutex_unlock __strcmp_avx2 __strcmp_evex
    local libc families
    libc=$(cc -print-file-name=libc.a 2>/dev/null) || return 0
    families=$(sed -nE 's/^(__[a-z]+)_avx2?_.*$|^(__[a-z]+)_avx2$/\1\2/p' "$@" | sort -u)
    [[ -n $families && -r $libc ]] || return 0
    nm --defined-only "$libc" 2>/dev/null | awk -v families="$families" '
        BEGIN { n = split(families, f, "\n"); for (i = 1; i <= n; i++) want[f[i]] = 1 }
        $2 ~ /^[tT]$/ && $3 ~ /_(evex|avx512)/ && $3 !~ /(_rtm|_no_vzeroupper)$/ {
            family = $3; sub(/_(evex|avx512).*$/, "", family); if (family in want) print $3 }' | sort -u
}

mkdir -p "$repo/packaging/hot-functions"
# by_use FILES...: the names in FILES, those in the most files first (what every store and
# feed runs together, then what fewer do), by name within a count.
by_use() { cat "$@" | sort | uniq -c | sort -k1,1nr -k2,2 | awk '{ print $2 }'; }
for h in "${handlers[@]}"; do
    out=$repo/packaging/hot-functions/handler-$h.txt
    {
        by_use "$work"/fns-skip-"$h"*
        natively "$work"/fns-skip-"$h"*
    } | awk '!seen[$0]++' >"$work/group1"
    by_use "$work"/fns-trigger-"$h"* | grep -vxFf "$work/group1" >"$work/group2" || true
    by_use "$work"/fns-resolve-"$h"* | grep -vxFf <(cat "$work/group1" "$work/group2") >"$work/group3" || true
    {
        echo "# Written by packaging/hot-functions.sh from $(git -C "$repo" rev-parse --short HEAD) with $(rustc --version | cut -d' ' -f1-2);"
        echo "# read by packaging/link-hot.sh. Functions of a dedup skip, then a trigger's, then a recovery's."
        cat "$work/group1" "$work/group2" "$work/group3"
    } >"$out"
    say "wrote $out: $(wc -l <"$work/group1") + $(wc -l <"$work/group2") + $(wc -l <"$work/group3") functions"
done
