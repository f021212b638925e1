#!/usr/bin/env bash
# The linker of the shipped binaries: packaging/build-bins.sh gives rustc `-C linker=` this
# script, which runs `cc` with rustc's arguments unchanged plus a symbol ordering file
# (lld's --symbol-ordering-file) that puts the functions named in packaging/hot-functions.txt
# first in .text, in the list's order: those one event runs (a dedup skip's first, then a
# delivery's), as packaging/hot-functions.sh recorded them.
#
# Why: every event is a new process, and its code is read from the executable on first use,
# a page fault per 64 KiB window around each touched page (the kernel's fault-around). Spread
# over 3 MiB of text, the functions of one event cost ~17 more faults and ~1.1 MiB more resident
# memory than gathered at the start (handler-pagerduty: peak RSS 3.52 -> 2.40 MiB a delivery,
# 3.40 -> 2.15 a dedup skip, 0.04-0.08 ms less; bench/HISTORY.md, session 17). It moves whole
# functions and nothing else: what the program does cannot change.
#
# The list names Rust functions without the hash of rustc's legacy mangling (`...17h<hex>E`
# is written `...17h*`), so that it survives rebuilds; the names in the object files rustc
# passes (read with `nm`) are matched against it, and every instance of a generic function
# matches. Names the list has and the binary lacks are skipped, as are non-Rust names (glibc's,
# from libc.a) that the link does not use: a list older than the code only loses part of the
# gain. Without nm the link goes ahead unordered, with a warning.
#
# Environment: PAGERPIPE_HOT_LIST (default packaging/hot-functions.txt next to this script): the
# list. PAGERPIPE_LINKER (default cc): the linker driver to run. PAGERPIPE_HOT_REPORT=FILE:
# write there the names ordered, one per line (packaging/test.sh checks the list still matches).
set -euo pipefail

list=${PAGERPIPE_HOT_LIST:-$(dirname "${BASH_SOURCE[0]}")/hot-functions.txt}
linker=${PAGERPIPE_LINKER:-cc}
report=${PAGERPIPE_HOT_REPORT:-/dev/null}

objects=() lld=
for arg in "$@"; do
    [[ $arg == *.o ]] && objects+=("$arg")
    [[ $arg == -fuse-ld=lld ]] && lld=1
done
# --symbol-ordering-file is lld's (rustc links with it since 1.90 on x86_64 Linux); GNU ld
# has no such option: link as rustc asked, and say so in the report.
if [[ -z $lld ]]; then
    echo "# not ordered: rustc did not link with lld (-fuse-ld=lld)" >"$report"
    exec "$linker" "$@"
fi

order=$(mktemp "${TMPDIR:-/tmp}/pagerpipe-order.XXXXXX")
trap 'rm -f "$order"' EXIT
if ((${#objects[@]})) && [[ -r $list ]] && command -v nm >/dev/null; then
    # nm --format=posix: "name type value size"; t/T/W are functions (code).
    { nm --defined-only --format=posix "${objects[@]}" 2>/dev/null || true; } | awk -v list="$list" '
        BEGIN { while ((getline name < list) > 0) if (name != "" && name !~ /^#/ && !(name in rank)) rank[name] = ++n }
        $2 ~ /^[tTW]$/ {
            key = $1
            sub(/17h[0-9a-f]+E$/, "17h*", key)
            if (key in rank) { print rank[key], $1; seen[key] = 1 }
        }
        END { for (name in rank) if (!(name in seen) && name !~ /^(_ZN|_R)/) print rank[name], name }
    ' | sort -n -s -k1,1 | cut -d' ' -f2- >"$order"
else
    echo "link-hot.sh: warning: linking without ordering the functions (no objects, no $list, or no nm)" >&2
fi
cp "$order" "$report"
# Not exec: the ordering file is removed (the trap) once the linker is done with it.
status=0
"$linker" "$@" -Wl,--symbol-ordering-file="$order" -Wl,--no-warn-symbol-ordering || status=$?
exit "$status"
