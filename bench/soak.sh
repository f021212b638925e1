#!/usr/bin/env bash
# The ledger's kill, race and storm tests, again and again, each round with other kill points
# and event mixes (PAGERPIPE_TEST_SEED moves the tests' pseudo-random sequences): what one
# clean run of the suite cannot show. Every test asserts nothing lost and nothing doubled;
# a round that fails keeps its output.
#
#   bench/soak.sh                  # 5 rounds of every ledger:: test, both stores
#   SOAK_ROUNDS=20 SOAK_FILTER=ledger::redis_store::kill_9 bench/soak.sh
#   SOAK_FIRST=6 SOAK_FILTER="ledger:: multi_host::" bench/soak.sh   # seeds 6.., two modules
#
# Prints one line per round and a summary: rounds, tests run, failures (by name). Needs what
# the suite needs (redis-server for the Redis half). Exit 0 when every round passed.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${SOAK_ROUNDS:-5}
first=${SOAK_FIRST:-1}
filter=${SOAK_FILTER:-ledger::}
out=${SOAK_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/pagerpipe-soak.XXXXXX")}
mkdir -p "$out"

cargo test -q --test tests --no-run 2>/dev/null
tests=0
failed=0
for round in $(seq "$first" $((first + rounds - 1))); do
  log="$out/round-$round.log"
  start=$(date +%s)
  # shellcheck disable=SC2086 # one test filter per word
  if PAGERPIPE_TEST_SEED=$round cargo test -q --test tests -- $filter >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed=$((failed + 1))
  fi
  ran=$(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$log" | awk '{p+=$1; f+=$2} END {print p+f}')
  tests=$((tests + ${ran:-0}))
  echo "round $round (seed $round): $status, ${ran:-0} tests, $(($(date +%s) - start)) s"
  if [ "$status" = FAILED ]; then
    grep -E '^    [a-z_:]+$' "$log" | sed 's/^ */  failed: /' || true
  fi
done
echo "soak: $rounds rounds of '$filter', $tests test runs, $failed round(s) failed; logs in $out"
[ "$failed" = 0 ]
