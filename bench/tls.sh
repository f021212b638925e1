#!/usr/bin/env bash
# What the TLS trust store costs one event: the bundled Mozilla roots (pagerpipe's default),
# a one-certificate ca_file, and the system store (`ca_file: system`) read different ways,
# against a loopback HTTPS server whose certificate a private CA made at start-up.
#
#   bench/tls.sh                  # 300 rounds of each variant, in process and as whole processes
#   BENCH_N=100 bench/tls.sh      # quicker
#
# What it does:
#   1. builds `handler-pagerduty` (release) and bench/tls (`tls-bench`, its own crate, because it
#      also measures ureq's `platform-verifier` feature, which pagerpipe does not enable) into
#      $CARGO_TARGET_DIR (default ../target-bench next to the repository);
#   2. `tls-bench inproc N`: in one process, N rounds, each variant once per round in rotated
#      order, a fresh agent each time (as each handler process has), timed from loading the
#      roots to the response (or to the refused certificate: a store without the private CA
#      fails at the last flight of the handshake, so comparing refused variants with each other
#      isolates what loading their roots costs);
#   3. `tls-bench process BIN N`: the same as whole handler-pagerduty processes, one per event
#      (a different entity each, so every run is a delivery or a refusal, never a dedup skip),
#      with plain HTTP as a reference, and checks each exit code (0 delivered, 78 refused).
#   Both print Markdown tables (median, p90, mean, difference to the reference row).
#
# Everything runs on 127.0.0.1 with a cleared environment: no proxy variables, and no
# SSL_CERT_FILE / SSL_CERT_DIR unless a variant sets them. Needs /etc/ssl/certs (Debian's
# ca-certificates), which the script installs with apt-get when missing.
#
# Environment: BENCH_N=300 rounds; BENCH_REV=<rev> builds that git revision (git archive)
# instead of the working tree; CARGO_TARGET_DIR honoured.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)
N=${BENCH_N:-300}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(cd "$repo/.." && pwd)/target-bench}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_N must be a positive integer, not '$N'"

if [[ ! -s /etc/ssl/certs/ca-certificates.crt ]]; then
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    say "installing ca-certificates with apt-get"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pagerpipe-tls-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

src=$repo
if [[ -n ${BENCH_REV:-} ]]; then
    src=$work/src
    mkdir -p "$src"
    git -C "$repo" archive "$BENCH_REV" | tar -x -C "$src"
    [[ -d $src/bench/tls ]] || die "revision $BENCH_REV has no bench/tls"
    say "building $(git -C "$repo" rev-parse --short "$BENCH_REV") in $CARGO_TARGET_DIR"
else
    say "building the working tree in $CARGO_TARGET_DIR"
fi
(cd "$src" && cargo build --release --locked --bin handler-pagerduty) >&2
(cd "$src/bench/tls" && cargo build --release --locked) >&2
handler=$CARGO_TARGET_DIR/release/handler-pagerduty
tb=$CARGO_TARGET_DIR/release/tls-bench

clean_env=(env -i PATH=/usr/bin:/bin TMPDIR="$work")
say "load before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
(cd "$src" && "${clean_env[@]}" "$tb" inproc "$N")
say "load after in-process: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$src" && "${clean_env[@]}" "$tb" process "$handler" "$N")
say "load after processes: $(cut -d' ' -f1-3 /proc/loadavg)"
