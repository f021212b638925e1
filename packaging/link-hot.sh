#!/usr/bin/env bash
# The linker of the shipped binaries: packaging/build-bins.sh gives rustc `-C linker=` this
# script, which runs `cc` with rustc's arguments plus a symbol ordering file (lld's
# --symbol-ordering-file) that puts the functions named in packaging/hot-functions.txt first
# in .text, in the list's order: those one event runs (a dedup skip's first, then a
# delivery's), as packaging/hot-functions.sh recorded them.
#
# Why: every event is a new process, and its code is read from the executable on first use,
# a page fault per 64 KiB window around each touched page (the kernel's fault-around). Spread
# over 3 MiB of text, the functions of one event cost 12-16 more faults and ~1.3 MiB more
# resident memory than gathered at the start (handler-pagerduty: peak RSS 3.52 -> 2.15 MiB a
# delivery, 3.40 -> 1.90 a dedup skip, -0.1x /bin/true on both; bench/HISTORY.md, session
# 17). It moves whole functions and nothing else: what the program does cannot change.
#
# The list names Rust functions without the hash of rustc's legacy mangling (`...17h<hex>E`
# is written `...17h*`), so that it survives rebuilds; the names in the object files rustc
# passes (read with `nm`) are matched against it, and every instance of a generic function
# matches. Names the list has and the binary lacks are skipped, as are non-Rust names (glibc's,
# from libc.a) that the link does not use: a list older than the code only loses part of the
# gain. Whatever keeps the ordering from being made (no nm, no writable directory for its
# file, a linker other than lld) links unordered instead: the report says why, and
# build-bins.sh warns (rustc shows a linker's own output only when the link fails).
#
# rustc's arguments as given, except `--pagerpipe-hot=HASH`, which build-bins.sh adds (the hash
# of the list and of this script) only so that cargo relinks when either changes: dropped here.
# An argument file (`@path`, rustc's fallback for a command line too long) is read for the
# object files and the linker flavour, and passed on as it is.
#
# For the host's x86-64 Linux target, as the packages are built; a cross build would need its
# own linker driver: PAGERPIPE_LINKER.
#
# Environment: PAGERPIPE_HOT_LIST (default packaging/hot-functions.txt next to this script): the
# list. PAGERPIPE_LINKER (default cc): the linker driver to run. PAGERPIPE_HOT_REPORT=FILE:
# write there the names ordered, one per line, or a `# not ordered: WHY` line.
set -euo pipefail
export LC_ALL=C # one byte order for nm's and sort's output: the same inputs, the same binary

list=${PAGERPIPE_HOT_LIST:-$(dirname "${BASH_SOURCE[0]}")/hot-functions.txt}
linker=${PAGERPIPE_LINKER:-cc}
report=${PAGERPIPE_HOT_REPORT:-/dev/null}

args=() objects=() lld= out=
# scan ARG: note an object file, lld, the output.
scan() {
    case $1 in
    *.o) objects+=("$1") ;;
    -fuse-ld=lld) lld=1 ;;
    esac
}
prev=
for arg in "$@"; do
    case $arg in
    --pagerpipe-hot=*) continue ;;
    @*)
        # rustc's argument file (in its own temporary directory): one argument per line, `\`
        # escaping (read without -r undoes it); without our hash line, in a copy beside it.
        file=${arg#@}
        if grep -q '^--pagerpipe-hot=' "$file"; then
            grep -v '^--pagerpipe-hot=' "$file" >"$file.hot"
            arg=@$file.hot file=$file.hot
        fi
        while IFS= read line || [[ -n $line ]]; do scan "$line"; done <"$file"
        ;;
    *) scan "$arg" ;;
    esac
    [[ $prev == -o ]] && out=$arg
    prev=$arg
    args+=("$arg")
done

# unordered WHY: link as rustc asked, saying why in the report.
unordered() {
    { echo "# not ordered: $1" >"$report"; } 2>/dev/null || true
    exec "$linker" "${args[@]}"
}
# --symbol-ordering-file is lld's (rustc links with it since 1.90 on x86_64 Linux); GNU ld
# has no such option.
[[ -n $lld ]] || unordered "rustc did not link with lld (-fuse-ld=lld)"
((${#objects[@]})) || unordered "no object files among the linker's arguments"
[[ -r $list ]] || unordered "cannot read $list"
command -v nm >/dev/null || unordered "no nm (binutils)"
order=$(mktemp "${TMPDIR:-/tmp}/pagerpipe-order.XXXXXX" 2>/dev/null) \
    || order=$(mktemp "$(dirname "${out:-.}")/pagerpipe-order.XXXXXX" 2>/dev/null) \
    || unordered "no directory to write the ordering file in (TMPDIR, or next to the output)"
trap 'rm -f "$order" "$order.nm" "$order.err"' EXIT

# nm --format=posix: "name type value size"; t/T/W are functions (code).
if ! nm --defined-only --format=posix "${objects[@]}" >"$order.nm" 2>"$order.err"; then
    why=$(head -c 300 "$order.err")
    rm -f "$order" "$order.nm" "$order.err"
    unordered "nm failed: $why"
fi
awk -v list="$list" '
    BEGIN { while ((getline name < list) > 0) if (name != "" && name !~ /^#/ && !(name in rank)) rank[name] = ++n }
    $2 ~ /^[tTW]$/ {
        key = $1
        sub(/17h[0-9a-f]+E$/, "17h*", key)
        if (key in rank) { print rank[key], $1; seen[key] = 1 }
    }
    END { for (name in rank) if (!(name in seen) && name !~ /^(_ZN|_R)/) print rank[name], name }
' "$order.nm" | sort -n -s -k1,1 | cut -d' ' -f2- >"$order"
rm -f "$order.nm" "$order.err"
cp "$order" "$report" 2>/dev/null || true
# Not exec: the ordering file is removed (the trap) once the linker is done with it.
status=0
"$linker" "${args[@]}" -Wl,--symbol-ordering-file="$order" -Wl,--no-warn-symbol-ordering || status=$?
exit "$status"
