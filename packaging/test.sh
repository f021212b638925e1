#!/usr/bin/env bash
# Packaging test: build every artifact with packaging/build.sh, then check what an operator
# gets (see "Testing" in packaging/README.md). Run by .ci/run after `cargo test --workspace`.
#
#   packaging/test.sh            build and inspect: .deb, .rpm, Sensu Go asset, checksums
#   packaging/test.sh --install  also dpkg -i the .deb on this machine, check the group and
#                                directories, then purge it (root; CI or a throwaway machine)
#
# As root it apt-installs what it needs that is missing (rpm, man-db, systemd); under CI=true a
# missing one fails instead of skipping its checks. Ends with
# "packaging: N passed, N failed"; exits 1 if anything failed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
install=false
case ${1:-} in
  --install) install=true ;;
  "") ;;
  *) echo "usage: $0 [--install]" >&2; exit 2 ;;
esac

HANDLERS=(pagerduty twilio reactio slack)
# A routing key that must never appear unmasked: not in output, not in generated docs.
KEY=0123456789abcdef0123456789abcdef
MASKED='****************************cdef'

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/      /' | head -n 40; }
# check NAME COMMAND...: passes when COMMAND succeeds; its output is shown when it fails.
check() {
  local name=$1 output; shift
  if output=$("$@" 2>&1); then ok "$name"; else fail "$name" "$output"; fi
}
# has FILE TEXT: FILE contains the fixed string TEXT.
has() { grep -qF -- "$2" "$1" || { echo "no '$2' in $1"; return 1; }; }
hasnt() { ! grep -qF -- "$2" "$1" || { echo "'$2' found in $1"; return 1; }; }

# The tools some checks use: rpm (rpm -qlvp), man-db (man -l), systemd (systemd-analyze verify).
missing=()
command -v rpm >/dev/null || missing+=(rpm)
command -v man >/dev/null || missing+=(man-db)
command -v systemd-analyze >/dev/null || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "==> apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# On CI no check may be skipped for want of a tool: say so as a failure instead.
if [ "${CI:-}" = true ]; then
  for tool in rpm man systemd-analyze; do
    command -v "$tool" >/dev/null || fail "$tool is missing on CI, so its checks cannot run"
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pagerpipe-packaging.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/dist

# The generators run with a secret in the environment: it must not reach the man pages.
PAGERDUTY_ROUTING_KEY=$KEY packaging/build.sh --out "$out"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || true)
deb=$out/pagerpipe_${version}-1_amd64.deb
rpm=$out/pagerpipe-${version}-1.x86_64.rpm
asset=pagerpipe_${version}_linux_amd64.tar.gz
echo "==> checking pagerpipe $version${commit:+ (commit $commit)} in $out"

# What both packages hold: "mode path" (dpkg-deb -c style modes, paths without the leading .).
expected_common() {
  for h in "${HANDLERS[@]}"; do
    echo "-rwxr-xr-x /usr/bin/handler-$h"
    echo "-rw-r--r-- /usr/share/man/man1/handler-$h.1.gz"
    echo "-rw-r--r-- /usr/share/bash-completion/completions/handler-$h"
    echo "-rw-r--r-- /usr/share/fish/vendor_completions.d/handler-$h.fish"
  done
  echo "-rw-r--r-- /usr/lib/systemd/system/pagerpipe-flush@.service"
  echo "-rw-r--r-- /usr/lib/systemd/system/pagerpipe-flush@.timer"
  echo "-rw-r--r-- /usr/share/doc/pagerpipe/README.md"
  echo "-rw-r--r-- /usr/share/doc/pagerpipe/PACKAGING.md"
  for f in docs/*; do echo "-rw-r--r-- /usr/share/doc/pagerpipe/docs/$(basename "$f")"; done
  for f in conf.d/*; do echo "-rw-r--r-- /usr/share/doc/pagerpipe/examples/$(basename "$f")"; done
}
# expect_listing LISTING EXPECTED...: every expected "mode path" line is in LISTING.
expect_listing() {
  local listing=$1 missing=0; shift
  for want in "$@"; do
    grep -qxF -- "$want" "$listing" || { echo "missing or wrong mode: $want"; missing=1; }
  done
  return $missing
}

# --- code order (packaging/link-hot.sh) ------------------------------------------------------
# The mechanism, on a program of C functions linked as rustc links (cc, rustc's lld): the
# listed ones come first, in the list's order. A Rust name with its hash is that instance only
# (gen/2222, not gen/1111); written `17h*`, or listed with a hash no instance has any more
# (old/5555: another rustc), every instance of it.
check "link-hot.sh: the listed functions first in .text, in order; an instance by its hash, else every instance" bash -c '
  cd "$1" && mkdir -p hot && cd hot
  {
    for f in cold_a:"x * 3" _ZN4demo3hot17h0123456789abcdefE:"x + 1" _ZN4demo3gen17h1111111111111111E:"x + 2" \
      _ZN4demo3gen17h2222222222222222E:"x + 3" _ZN4demo3old17h3333333333333333E:"x + 4" \
      _ZN4demo3old17h4444444444444444E:"x + 5" hot_c:"x - 1" cold_d:"x / 7"; do
      echo "int ${f%%:*}(int x) { return ${f#*:}; }"; calls="${calls:-0} + ${f%%:*}(c)"
    done
    echo "int main(int c, char **v) { (void)v; return $calls; }"
  } > prog.c
  cc -O0 -ffunction-sections -c prog.c -o prog.o
  printf "%s\n" "# a comment" hot_c _ZN4demo3gen17h2222222222222222E "_ZN4demo3hot17h*" \
    _ZN4demo3old17h5555555555555555E not_in_this_program > list.txt
  gccld=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n "s/^host: //p")/bin/gcc-ld
  PAGERPIPE_HOT_LIST=$PWD/list.txt PAGERPIPE_HOT_REPORT=$PWD/report "$2/packaging/link-hot.sh" prog.o -o prog "-B$gccld" -fuse-ld=lld
  ./prog; ran=$?; [ "$ran" = 23 ] || { echo "the program linked returned $ran, not 23"; exit 1; }
  order=$(nm -n prog | awk "\$2 ~ /^[tT]$/ && \$3 ~ /^(cold_.|hot_c|_ZN4demo.*|main)$/ { print \$3 }" | tr "\n" " ")
  echo "report: $(tr "\n" " " < report); order: $order"
  want="hot_c _ZN4demo3gen17h2222222222222222E _ZN4demo3hot17h0123456789abcdefE"
  want="$want _ZN4demo3old17h3333333333333333E _ZN4demo3old17h4444444444444444E "
  case $order in "$want"*) ;; *) exit 1 ;; esac
  case $order in *_ZN4demo3gen17h1111111111111111E*main*) ;; *) exit 1 ;; esac' _ "$work" "$root"
# Each shipped binary: most of the listed functions found and ordered (a list gone stale after
# a rewrite, or a mangling rustc changed, would order next to nothing). Counted as the list
# names them: a generic function's instances are one. A Rust before 1.90 does not link with lld,
# so nothing can be ordered: said as SKIPPED here, a failure under CI=true.
for h in "${HANDLERS[@]}"; do
  report=${CARGO_TARGET_DIR:-$root/target}/release/handler-$h.hot-order
  if grep -q "^# not ordered: rustc did not link with lld" "$report" 2>/dev/null && [ "${CI:-}" != true ]; then
    ok "link-hot.sh: handler-$h SKIPPED: this rustc ($(rustc --version)) does not link with lld, so no code is ordered"
    continue
  fi
  check "link-hot.sh: handler-$h ordered by packaging/hot-functions/handler-$h.txt (>= 300 listed Rust functions; with the list's rustc, most by their exact instance)" bash -c '
    n=$(grep -E "^(_ZN|_R)" "$1" | sed "s/17h[0-9a-f]*E\$/17h*/" | sort -u | wc -l)
    listed=$(grep -cE "^(_ZN|_R)" "$2")
    exact=$(grep -E "^(_ZN|_R)" "$1" | grep -cxFf "$2")
    echo "$n listed Rust functions ordered in $1; $exact of the $listed instances listed found by their exact name"; grep -m1 "^#" "$1"
    [ "$n" -ge 300 ] || exit 1
    # Built with the rustc the list was recorded with, the names must match as recorded: if
    # most do not, the build and hot-functions.sh no longer share cargo metadata (a flag
    # or profile setting that differs), or the list is stale: run packaging/hot-functions.sh.
    if head -1 "$2" | grep -qF "with $(rustc --version | cut -d" " -f1-2);"; then
      [ $((exact * 2)) -ge "$listed" ] || { echo "fewer than half found by their exact name"; exit 1; }
    fi' _ "$report" "$root/packaging/hot-functions/handler-$h.txt"
done

# --- .deb ------------------------------------------------------------------------------------
check ".deb built" test -s "$deb"
dpkg-deb -c "$deb" | awk '{ sub(/^\./, "", $6); print $1, $6 }' > "$work/deb.list"
dpkg-deb -c "$deb" | awk '{ print $2 }' | sort -u > "$work/deb.owners"
mapfile -t want < <(expected_common; for h in "${HANDLERS[@]}"; do echo "-rw-r--r-- /usr/share/zsh/vendor-completions/_handler-$h"; done)
check ".deb: every expected path with its mode (dpkg-deb -c)" expect_listing "$work/deb.list" "${want[@]}"
check ".deb: every file owned by root:root" test "$(cat "$work/deb.owners")" = "0/0"
check ".deb: nothing installed into /etc or /var" bash -c '! grep -E " /(etc|var)/" "$1"' _ "$work/deb.list"
dpkg-deb -e "$deb" "$work/control"
check ".deb: maintainer scripts are valid sh" bash -c 'for s in "$1"/postinst "$1"/prerm "$1"/postrm; do sh -n "$s" || exit 1; done' _ "$work/control"
check ".deb: postinst makes the group, adds the monitoring users, makes the 2775 root:pagerpipe dirs" bash -c '
  f=$1/postinst
  grep -q "groupadd --system pagerpipe" "$f" && grep -q "for user in sensu nagios icinga zabbix" "$f" \
  && grep -q "usermod -a -G pagerpipe" "$f" && grep -q "for dir in /var/lib/pagerpipe /var/spool/pagerpipe" "$f" \
  && grep -q "chown root:pagerpipe" "$f" && grep -q "chmod 2775" "$f"' _ "$work/control"
# The binaries are static (packaging/build-bins.sh): no libc6 dependency; passwd for the scripts.
check ".deb: depends on passwd (groupadd, usermod)" bash -c 'dpkg-deb -f "$1" Depends | grep -q "passwd"' _ "$deb"
check ".deb: recommends tzdata (Twilio's rotation by a named time zone)" bash -c 'dpkg-deb -f "$1" Recommends | grep -qx "tzdata"' _ "$deb"

# Unpacked into a throwaway root: the binaries run from there.
sysroot=$work/root
dpkg -x "$deb" "$sysroot"
exe=$sysroot/usr/bin/handler-pagerduty
check "dpkg -x: handler-pagerduty --version prints the version and the commit" bash -c '
  v=$("$1" --version); echo "$v"
  case $v in "handler-pagerduty $2 (commit $3)"|"handler-pagerduty $2 (unknown commit)") ;; *) exit 1 ;; esac
  [ -z "$3" ] || [ "$v" = "handler-pagerduty $2 (commit $3)" ]' _ "$exe" "$version" "$commit"
for h in twilio reactio slack; do
  check "dpkg -x: handler-$h --version" bash -c '"$1" --version | grep -qx "handler-$2 $3 (.*commit.*)"' _ "$sysroot/usr/bin/handler-$h" "$h" "$version"
done
# Stripped by the final link (build-bins.sh's -C strip=symbols; cargo deb runs with --no-strip):
# no symbol table, no debug info.
check "dpkg -x: the handlers are stripped (no .symtab, no .debug_*)" bash -c '
  for f in "$@"; do
    sections=$(readelf -SW "$f") || exit 1
    if grep -qE "\] \.(symtab|debug_)" <<<"$sections"; then echo "$f: $(grep -oE "\.(symtab|debug_[a-z_]+)" <<<"$sections" | tr "\n" " ")"; exit 1; fi
  done' _ "$sysroot"/usr/bin/handler-*
mkdir -p "$work/conf.d"
dry_run() { # EXE: a dry run on the Sensu 1.x fixture, settings only from the environment
  PAGERDUTY_ROUTING_KEY=$KEY "$1" --dry-run --config "$work/conf.d" < tests/fixtures/sensu/create.json
}
dry_run "$exe" > "$work/dry-run.json" 2> "$work/dry-run.log" || true
check "dpkg -x: handler-pagerduty --dry-run prints the trigger for web-01/check_disk" bash -c '
  grep -q "\"event_action\": \"trigger\"" "$1" && grep -q "\"dedup_key\": \"web-01/check_disk\"" "$1" || { cat "$1" "$2"; exit 1; }' _ "$work/dry-run.json" "$work/dry-run.log"
check "dpkg -x: the dry run masks the routing key" bash -c 'grep -qF "$2" "$1" && ! grep -qF "$3" "$1" "$4"' _ "$work/dry-run.json" "$MASKED" "$KEY" "$work/dry-run.log"

man=$work/handler-pagerduty.1
gzip -dc "$sysroot/usr/share/man/man1/handler-pagerduty.1.gz" > "$man"
check "man page: title, flags, environment variable, files, version" bash -c '
  grep -q "^\.TH handler-pagerduty 1 " "$1" && grep -qF "\-\-routing\-key" "$1" && grep -qF "\-\-flush" "$1" \
  && grep -qF "PAGERDUTY_ROUTING_KEY" "$1" && grep -qF "/var/spool/pagerpipe" "$1" && grep -qF "$2" "$1"' _ "$man" "$version"
check "man page: no hidden --generate flag, no secret value" bash -c '! grep -qF "generate" "$1" && ! grep -qF "$2" "$1"' _ "$man" "$KEY"
if command -v man >/dev/null; then
  check "man page renders (man -l)" bash -c 'MANWIDTH=80 man -l "$1" 2>&1 >/dev/null | { ! grep -q .; }' _ "$man"
fi
bash_completion=$sysroot/usr/share/bash-completion/completions/handler-pagerduty
check "bash completion: loads and registers handler-pagerduty" bash -c 'source "$1" && complete -p handler-pagerduty' _ "$bash_completion"
check "bash completion: offers --routing-key and --flush, not --generate" bash -c '
  source "$1"; fn=$(complete -p handler-pagerduty | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
  COMP_WORDS=(handler-pagerduty --); COMP_CWORD=1; COMP_LINE="handler-pagerduty --"; COMP_POINT=${#COMP_LINE}
  "$fn" handler-pagerduty -- handler-pagerduty
  printf "%s\n" "${COMPREPLY[@]}" | grep -qx -- --routing-key && printf "%s\n" "${COMPREPLY[@]}" | grep -qx -- --flush \
  && ! printf "%s\n" "${COMPREPLY[@]}" | grep -q generate' _ "$bash_completion"
check "zsh completion: a #compdef function with --routing-key" bash -c '
  head -n1 "$1" | grep -qx "#compdef handler-pagerduty" && grep -qF -- "--routing-key" "$1"' _ "$sysroot/usr/share/zsh/vendor-completions/_handler-pagerduty"
check "fish completion: --routing-key" has "$sysroot/usr/share/fish/vendor_completions.d/handler-pagerduty.fish" "complete -c handler-pagerduty -l routing-key"
check "examples are conf.d, byte for byte" diff -r conf.d "$sysroot/usr/share/doc/pagerpipe/examples"

if command -v systemd-analyze >/dev/null; then
  units=$work/units
  mkdir -p "$units"
  cp "$sysroot"/usr/lib/systemd/system/pagerpipe-flush@.* "$units/"
  ln -s pagerpipe-flush@.service "$units/pagerpipe-flush@nagios.service"
  ln -s pagerpipe-flush@.timer "$units/pagerpipe-flush@nagios.timer"
  check "systemd-analyze verify: the flush service and timer (as instance @nagios)" bash -c '
    out=$(systemd-analyze verify --man=no "$1/pagerpipe-flush@nagios.service" "$1/pagerpipe-flush@nagios.timer" 2>&1) && [ -z "$out" ] || { echo "$out"; exit 1; }' _ "$units"
fi
check "flush service runs --flush for each handler as the instance user, minutely timer" bash -c '
  s=$1/pagerpipe-flush@.service; t=$1/pagerpipe-flush@.timer
  grep -qx "User=%i" "$s" && grep -qx "SupplementaryGroups=pagerpipe" "$s" \
  && grep -qx "Environment=\"PAGERPIPE_FLUSH=pagerduty twilio reactio slack\"" "$s" \
  && grep -qF "/usr/bin/handler-\$\$h --flush" "$s" && grep -qx "OnCalendar=minutely" "$t"' _ "$sysroot/usr/lib/systemd/system"

# --- .rpm ------------------------------------------------------------------------------------
check ".rpm built" test -s "$rpm"
if command -v rpm >/dev/null; then
  rpm -qlvp "$rpm" 2>/dev/null | awk '{ print $1, $NF }' > "$work/rpm.list"
  mapfile -t want < <(expected_common; for h in "${HANDLERS[@]}"; do echo "-rw-r--r-- /usr/share/zsh/site-functions/_handler-$h"; done)
  check ".rpm: every expected path with its mode (rpm -qlvp)" expect_listing "$work/rpm.list" "${want[@]}"
  check ".rpm: name, version, summary" bash -c 'rpm -qp --qf "%{NAME} %{VERSION}\n" "$1" 2>/dev/null | grep -qx "pagerpipe $2"' _ "$rpm" "$version"
  rpm -qp --scripts "$rpm" > "$work/rpm.scripts" 2>/dev/null
  check ".rpm: %pre makes the group, %post adds the users and makes the 2775 root:pagerpipe dirs" bash -c '
    grep -q "groupadd -r pagerpipe" "$1" && grep -q "usermod -a -G pagerpipe" "$1" && grep -q "chmod 2775" "$1" \
    && grep -q "chown root:pagerpipe" "$1" && grep -q "for dir in /var/lib/pagerpipe /var/spool/pagerpipe" "$1"' _ "$work/rpm.scripts"
  check ".rpm: requires groupadd and usermod" bash -c 'rpm -qp --requires "$1" 2>/dev/null | grep -q /usr/sbin/groupadd && rpm -qp --requires "$1" 2>/dev/null | grep -q /usr/sbin/usermod' _ "$rpm"
else
  # No rpm tool (not root, or no apt): the lead and the header's file names still say a lot.
  check ".rpm: RPM lead magic" bash -c '[ "$(head -c4 "$1" | od -An -tx1 | tr -d " ")" = edabeedb ]' _ "$rpm"
  check ".rpm: header names every handler, man page and unit" bash -c '
    for n in handler-pagerduty handler-twilio handler-reactio handler-slack handler-pagerduty.1.gz pagerpipe-flush@.timer; do
      grep -aqF "$n" "$1" || { echo "no $n"; exit 1; }; done' _ "$rpm"
fi

# --- Sensu Go asset --------------------------------------------------------------------------
check "asset: sha512 file verifies" bash -c 'cd "$1" && sha512sum --quiet -c "$2.sha512"' _ "$out" "$asset"
check "SHA256SUMS verifies and covers every artifact" bash -c '
  cd "$1" && sha256sum --quiet -c SHA256SUMS && [ "$(ls | grep -vx SHA256SUMS | sort)" = "$(awk "{print \$2}" SHA256SUMS | sort)" ]' _ "$out"
check "asset: tarball holds exactly bin/handler-* (0755, root)" bash -c '
  listing=$(tar -tvzf "$1" | awk "{print \$1, \$2, \$6}")
  expected=$(printf "%s\n" "drwxr-xr-x 0/0 bin/" "-rwxr-xr-x 0/0 bin/handler-pagerduty" "-rwxr-xr-x 0/0 bin/handler-reactio" "-rwxr-xr-x 0/0 bin/handler-slack" "-rwxr-xr-x 0/0 bin/handler-twilio")
  [ "$listing" = "$expected" ] || { echo "$listing"; exit 1; }' _ "$out/$asset"
mkdir -p "$work/asset"
tar -xzf "$out/$asset" -C "$work/asset"
dry_run "$work/asset/bin/handler-pagerduty" > "$work/asset-dry-run.json" 2> "$work/asset-dry-run.log" || true
check "asset: bin/handler-pagerduty --dry-run runs from the unpacked tarball" bash -c '
  grep -q "\"event_action\": \"trigger\"" "$1" && grep -qF "$3" "$1" || { cat "$1" "$2"; exit 1; }' _ "$work/asset-dry-run.json" "$work/asset-dry-run.log" "$MASKED"
check "asset: the Asset definition carries the tarball's sha512 and URL" bash -c '
  y=$1/pagerpipe_$3_asset.yml
  grep -qx "      sha512: $(cut -d" " -f1 "$1/$2.sha512")" "$y" && grep -qE "^    - url: .*/$2\$" "$y" && grep -qx "type: Asset" "$y"' _ "$out" "$asset" "$version"
check "asset: the Handler definitions use the asset for all four handlers" bash -c '
  y=$1/pagerpipe_$2_handlers.yml
  [ "$(grep -c "^  runtime_assets: \[pagerpipe\]$" "$y")" = 4 ] && for h in pagerduty twilio reactio slack; do grep -q "^  command: handler-$h " "$y" || exit 1; done' _ "$out" "$version"

# --- a real install (CI, or --install on a throwaway machine) --------------------------------
if $install; then
  if [ "$(id -u)" != 0 ]; then
    fail "--install needs root"
  else
    export DEBIAN_FRONTEND=noninteractive
    check "dpkg -i installs the .deb" dpkg -i "$deb"
    check "the pagerpipe group exists" getent group pagerpipe
    for d in /var/lib/pagerpipe /var/spool/pagerpipe; do
      check "$d is root:pagerpipe 2775" bash -c '[ "$(stat -c "%U:%G %a" "$1")" = "root:pagerpipe 2775" ] || stat -c "%U:%G %a" "$1"' _ "$d"
    done
    check "installed: handler-pagerduty --version" bash -c '/usr/bin/handler-pagerduty --version | grep -q "^handler-pagerduty $1 "' _ "$version"
    if command -v man >/dev/null; then
      check "installed: man finds handler-pagerduty(1)" man -w handler-pagerduty
    fi
    if getent passwd nagios >/dev/null; then
      check "postinst put nagios in the group pagerpipe" bash -c 'id -nG nagios | tr " " "\n" | grep -qx pagerpipe'
      # What the group and setgid promise: nagios creates files there, and they belong to the group.
      check "nagios can write /var/spool/pagerpipe; what it creates belongs to pagerpipe" bash -c '
        runuser -u nagios -- mkdir /var/spool/pagerpipe/.install-test && runuser -u nagios -- touch /var/spool/pagerpipe/.install-test/f \
        && [ "$(stat -c "%U:%G" /var/spool/pagerpipe/.install-test/f)" = "nagios:pagerpipe" ]; rc=$?; rm -rf /var/spool/pagerpipe/.install-test; exit $rc'
      chmod 755 "$work" # nagios reads the empty settings directory in it
      check "nagios runs the installed handler (dry run)" bash -c '
        runuser -u nagios -- env PAGERDUTY_ROUTING_KEY="$1" /usr/bin/handler-pagerduty --dry-run --config "$2" < tests/fixtures/sensu/create.json | grep -q "\"event_action\": \"trigger\""' _ "$KEY" "$work/conf.d"
    fi
    check "dpkg --purge removes the package, the state and the spool" bash -c '
      dpkg --purge pagerpipe >/dev/null && [ ! -e /usr/bin/handler-pagerduty ] && [ ! -e /var/lib/pagerpipe ] && [ ! -e /var/spool/pagerpipe ]'
  fi
fi

echo "packaging: $passed passed, $failed failed"
[ "$failed" = 0 ]
