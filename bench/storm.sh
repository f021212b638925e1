#!/usr/bin/env bash
# A storm: BENCH_N events (default 1000) for BENCH_INCIDENTS incidents (default 100), one
# handler-pagerduty process each, BENCH_P at a time (default 64, `xargs -P`), against the
# loopback fake PagerDuty. Reports wall time and total CPU of all the handler processes, and of
# the same storm with /bin/true in the handler's place (the ratio to process start), then
# checks that each incident was paged exactly once, that every state record is valid JSON with
# count 1 and no claim left, and that nothing was spooled.
#
#   bench/storm.sh                                 # 1000 events, 100 incidents, -P 64
#   BENCH_N=5000 BENCH_P=128 bench/storm.sh
#
# Environment: BENCH_N, BENCH_INCIDENTS, BENCH_P, BENCH_BIN (skip the build), BENCH_REV (build a
# git revision instead of the working tree), BENCH_KEEP=1, CARGO_TARGET_DIR (default
# ../target-bench), TMPDIR (where state and spool live; use a real disk). Needs python3 and GNU
# time (/usr/bin/time; installed with apt-get when missing). The build, the fake and the work
# directory are set up by bench/lib.sh, as for bench/pagerduty.sh.
set -euo pipefail

bench_tag=storm
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=${BENCH_N:-1000}
INCIDENTS=${BENCH_INCIDENTS:-100}
P=${BENCH_P:-64}
KEY=BenchRoutingKey00000000000000000 # 32 characters, only ever sent to the loopback fake

for v in N INCIDENTS P; do bench_count "BENCH_$v" "${!v}"; done
((INCIDENTS <= N)) || die "BENCH_INCIDENTS must not exceed BENCH_N"
[[ -x /usr/bin/time ]] || bench_tools time

bench_workdir pagerpipe-storm
bench_build handler-pagerduty
bench_fake PagerDuty fake_pagerduty.py

# Events: incident i % INCIDENTS, shuffled so that identical events arrive interleaved.
mkdir -p "$work/events" "$work/logs" "$work/conf.d"
python3 - "$repo/tests/fixtures/sensu/create.json" "$work/events" "$N" "$INCIDENTS" <<'PY'
import json, random, sys, time
fixture, out, n, incidents = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
base = json.load(open(fixture))
# One check run per incident, just now: the fixture's own time (2016) would read as a host
# clock ten years behind (bounded to 60 s before receipt, so a later time every second).
base["check"]["executed"] = base["check"]["issued"] = int(time.time())
order = list(range(n))
random.Random(7).shuffle(order)
for pos, i in enumerate(order):
    base["client"]["name"] = f"s-{i % incidents:05d}"
    with open(f"{out}/{pos:06d}.json", "w") as f:
        json.dump(base, f)
PY

# One shell per event would add its own start-up to every event; a small wrapper execs the handler.
cat >"$work/one" <<EOF
#!/bin/sh
exec "$bin" --api-url "$url" --config "$work/conf.d" --state-dir "$work/state" --spool-dir "$work/spool" <"\$1" 2>"$work/logs/\${1##*/}.log"
EOF
chmod +x "$work/one"

say "$N events, $INCIDENTS incidents, $P at a time, $(nproc) cores, $bin"
export PAGERDUTY_ROUTING_KEY=$KEY
set +e
/usr/bin/time -f '%e %U %S' -o "$work/time" \
    sh -c 'ls "$1"/*.json | xargs -P "$2" -n 1 "$3"' _ "$work/events" "$P" "$work/one"
rc=$?
set -e
read -r wall user sys <"$work/time"
# The same storm with /bin/true in the handler's place (same wrapper, same xargs): what starting
# that many processes costs on this machine right now, for the ratio.
printf '#!/bin/sh\nexec /bin/true <"$1"\n' >"$work/true"
chmod +x "$work/true"
/usr/bin/time -f '%e %U %S' -o "$work/time-true" \
    sh -c 'ls "$1"/*.json | xargs -P "$2" -n 1 "$3"' _ "$work/events" "$P" "$work/true"
read -r twall tuser tsys <"$work/time-true"
failures=$(grep -L -e 'triggered' -e 'skipped' "$work"/logs/*.log | wc -l)
stats=$(python3 -c 'import json,sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]+"/stats").read().decode())' "$url")

python3 - "$work" "$INCIDENTS" "$stats" "$wall" "$user" "$sys" "$N" "$rc" "$failures" "$twall" "$tuser" "$tsys" <<'PY'
import glob, json, os, sys
work, incidents, stats = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
wall, user, sys_s, n, rc, failures = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
twall, tcpu = float(sys.argv[10]), float(sys.argv[11]) + float(sys.argv[12])
problems = []
records = glob.glob(f"{work}/state/pagerduty/*.json")
for p in records:
    try:
        r = json.load(open(p))
    except ValueError as e:
        problems.append(f"{p}: not JSON: {e}")
        continue
    if r.get("count") != 1 or r.get("claim") is not None or not r.get("open"):
        problems.append(f"{p}: count={r.get('count')} claim={r.get('claim')} open={r.get('open')}")
if len(records) != incidents:
    problems.append(f"{len(records)} state records for {incidents} incidents")
stray = [f for f in os.listdir(f"{work}/state/pagerduty") if not (f.endswith(".json") or f.endswith(".lock"))]
if stray:
    problems.append(f"stray files in the state dir: {stray[:5]}")
spooled = glob.glob(f"{work}/spool/pagerduty/*.json")
if spooled:
    problems.append(f"{len(spooled)} requests spooled")
keys = stats["by_prefix"].get("s", {"accepted": 0, "keys": 0})
if keys["accepted"] != incidents or keys["keys"] != incidents:
    problems.append(f"the fake saw {keys['accepted']} pages for {keys['keys']} incidents; expected {incidents} and {incidents}")
if rc != 0 or failures:
    problems.append(f"xargs exit {rc}; {failures} handler logs say neither triggered nor skipped")
cpu = user + sys_s
print(f"storm: {n} events, {incidents} incidents: wall {wall:.2f} s, CPU {cpu:.2f} s "
      f"(user {user:.2f} + sys {sys_s:.2f}), {1000 * cpu / n:.2f} ms CPU per event, "
      f"{stats['accepted']} pages, {stats['rejected']} rejected")
print(f"storm: the same with /bin/true: wall {twall:.2f} s, CPU {tcpu:.2f} s; the handler's storm is "
      f"{wall / max(twall, 0.01):.2f}x /bin/true's wall and {cpu / max(tcpu, 0.01):.2f}x its CPU")
if problems:
    print("storm: FAILED\n  " + "\n  ".join(problems))
    sys.exit(1)
print("storm: each incident paged once, every state record valid, nothing spooled")
PY
