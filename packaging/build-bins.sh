#!/usr/bin/env bash
# Build release binaries as they ship: `packaging/build-bins.sh [handler-NAME...]` (default: all
# four handlers) into $CARGO_TARGET_DIR/release (default target/release). Extra arguments for
# cargo (e.g. --quiet) go in CARGO_ARGS; PAGERPIPE_KEEP_SYMBOLS=1 leaves the symbols in
# (packaging/hot-functions.sh).
#
# Statically linked (`-C target-feature=+crt-static`, a static-pie with glibc): every event is a
# new process, and loading libc.so and libgcc_s.so costs each one ~0.3-0.4 ms and ~0.7 MiB of
# RSS (bench/HISTORY.md); a static binary also runs on hosts with an older glibc
# than the build host's (the Sensu Go asset is one tarball for every Linux).
#
# The flag is given to the final `rustc` only (`cargo rustc … -- FLAG`), not through
# RUSTFLAGS or .cargo/config.toml: for the host target those also reach proc-macro crates
# (serde_derive, clap_derive), which cannot be built with crt-static ("cannot produce
# proc-macro … does not support these crate types"). The dependencies are compiled as usual;
# only the link differs. glibc's getaddrinfo in a static binary handles the `files` and `dns`
# sources of nsswitch.conf itself; other `hosts:` sources (mdns, resolve, myhostname) would
# be loaded from the host's glibc at run time, which the linker warns about.
#
# Linked through packaging/link-hot.sh (`-C linker=`): the functions one event runs
# (packaging/hot-functions/NAME.txt) first in the code, so a process pages in less of the binary
# (~1.3 MiB less resident, ~0.1x /bin/true less per event; link-hot.sh says how). Each binary's
# ordering is written to $CARGO_TARGET_DIR/release/NAME.hot-order (packaging/test.sh checks it);
# a binary linked unordered is warned about here. `--pagerpipe-hot=HASH` (of the list and the
# script, dropped by link-hot.sh) makes cargo relink when either changes.
#
# Stripped at the final link only (`-C strip=symbols`), with the profile's `strip` off: the
# profile's settings are part of cargo's metadata of every crate, and so of every Rust
# function's symbol hash; hot-functions.sh builds through this script with
# PAGERPIPE_KEEP_SYMBOLS=1 (the same build, its symbols kept), so the names it records are
# the names these binaries are linked from, down to the instance of a generic function.
set -euo pipefail

cd "$(dirname "$0")/.."
bins=("$@")
((${#bins[@]})) || bins=(handler-pagerduty handler-twilio handler-reactio handler-slack)
release=$(realpath -m "${CARGO_TARGET_DIR:-target}")/release
strip=(-C strip=symbols)
[[ ${PAGERPIPE_KEEP_SYMBOLS:-} != 1 ]] || strip=()
for b in "${bins[@]}"; do
    hot=$({ cat "packaging/hot-functions/$b.txt" 2>/dev/null || true; cat packaging/link-hot.sh; } | sha256sum | cut -c1-16)
    # shellcheck disable=SC2086 # CARGO_ARGS is a list of words
    PAGERPIPE_HOT_REPORT=$release/$b.hot-order CARGO_PROFILE_RELEASE_STRIP=false \
        cargo rustc --release --locked ${CARGO_ARGS:-} --bin "$b" -- -C target-feature=+crt-static "${strip[@]}" \
        -C linker="$PWD/packaging/link-hot.sh" -C link-arg=--pagerpipe-hot="$hot"
    if [[ ! -s $release/$b.hot-order ]] || grep -q "^# not ordered" "$release/$b.hot-order"; then
        echo "build-bins.sh: warning: $b is linked without its functions ordered ($(head -1 "$release/$b.hot-order" 2>/dev/null || echo "no report"))" >&2
    fi
done
