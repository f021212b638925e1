#!/usr/bin/env bash
# The linker of the shipped binaries: packaging/build-bins.sh gives rustc `-C linker=` this
# script, which runs `cc` with rustc's arguments plus a symbol ordering file (lld's
# --symbol-ordering-file) that puts the functions named in the binary's list
# (packaging/hot-functions/handler-NAME.txt) first in .text, in the list's order: those one
# event runs (a dedup skip's first, then a delivery's), as packaging/hot-functions.sh recorded
# them.
#
# Why: every event is a new process, and its code is read from the executable on first use,
# a page fault per 64 KiB window around each touched page (the kernel's fault-around). Spread
# over 3 MiB of text, the functions of one event cost 12-16 more faults and ~1.3 MiB more
# resident memory than gathered at the start (handler-pagerduty: peak RSS 3.52 -> 2.15 MiB a
# delivery, 3.40 -> 1.90 a dedup skip, -0.1x /bin/true on both; bench/HISTORY.md, session
# 17). It moves whole functions and nothing else: what the program does cannot change.
#
# The list names Rust functions as the objects do, rustc's hash included: the hash tells a
# generic function's instances apart (`from_slice::<Event>` from `from_slice::<Settings>`), so
# only those an event runs come first. The hashes stay the same across edits of the source
# (they come from each function's path, its type arguments and cargo's metadata of its
# crate); build-bins.sh builds with the metadata hot-functions.sh records with. Where none of a
# function's listed instances is found (another rustc, changed dependencies) every instance
# of it is placed where the list first names it, as for a name written with `17h*` in place
# of the hash. Names the list has and the binary lacks are skipped, as are non-Rust names
# (glibc's, from libc.a) that the link does not use: a list older than the code only loses
# part of the gain. Whatever keeps the ordering from being made (no nm, no writable directory
# for its file, a linker other than lld) links unordered instead: the report says why, and
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
# Environment: PAGERPIPE_HOT_LIST (default hot-functions/NAME.txt next to this script, NAME the
# output's file name without cargo's `-HASH` (16 hex digits), `_` read as `-`: cargo's
# deps/handler_twilio-HASH and a plain `rustc -o handler-twilio` both read handler-twilio.txt):
# the list. PAGERPIPE_LINKER (default cc): the linker driver to run. PAGERPIPE_HOT_REPORT=FILE:
# write there the names ordered, one per line, or a `# not ordered: WHY` line.
set -euo pipefail
export LC_ALL=C # one byte order for nm's and sort's output: the same inputs, the same binary

linker=${PAGERPIPE_LINKER:-cc}
report=${PAGERPIPE_HOT_REPORT:-/dev/null}

args=() objects=() lld= out= prev=
# scan ARG: note an object file, lld, the output (the argument after `-o`).
scan() {
    case $1 in
    *.o) objects+=("$1") ;;
    -fuse-ld=lld) lld=1 ;;
    esac
    [[ $prev != -o ]] || out=$1
    prev=$1
}
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
    args+=("$arg")
done

name=$(basename "${out:-unnamed}")
[[ ! $name =~ ^(.+)-[0-9a-f]{16}$ ]] || name=${BASH_REMATCH[1]}
list=${PAGERPIPE_HOT_LIST:-$(dirname "${BASH_SOURCE[0]}")/hot-functions/${name//_/-}.txt}

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
    function key(name) { sub(/17h[0-9a-f]+E$/, "17h*", name); return name }
    BEGIN {
        while ((getline name < list) > 0)
            if (name != "" && name !~ /^#/ && !(name in rank)) { rank[name] = ++n; listed[n] = name; has[key(name)] = 0 }
    }
    $2 ~ /^[tTW]$/ && !($1 in present) { present[$1] = 1; sym[++m] = $1; if ($1 in rank) has[key($1)] = 1 }
    END {
        # A listed instance the objects have: its own place. A function none of whose listed
        # instances they have (another rustc or changed dependencies changed the hashes, or
        # the list writes it 17h*): every instance they have, at the first place it is listed.
        for (r = 1; r <= n; r++) {
            name = listed[r]
            if (name in present) print r, name
            else if (!has[key(name)] && !(key(name) in fallback)) fallback[key(name)] = r
            if (!(name in present) && name !~ /^(_ZN|_R)/) print r, name
        }
        for (i = 1; i <= m; i++) if (!(sym[i] in rank) && (key(sym[i]) in fallback)) print fallback[key(sym[i])], sym[i]
    }
' "$order.nm" | sort -n -s -k1,1 | cut -d' ' -f2- >"$order"
rm -f "$order.nm" "$order.err"
cp "$order" "$report" 2>/dev/null || true
# Not exec: the ordering file is removed (the trap) once the linker is done with it.
status=0
"$linker" "${args[@]}" -Wl,--symbol-ordering-file="$order" -Wl,--no-warn-symbol-ordering || status=$?
exit "$status"
