# shellcheck shell=bash
# Shared by the bench/*.sh scripts; sourced, not run.
#
# Before sourcing, a script may set `bench_tag` (the prefix of its messages; default "bench").
# Sourcing sets `bench_dir` (this directory), `repo` (the repository), exports CARGO_TARGET_DIR
# (default ../target-bench next to the repository, so that a bench build never waits on the
# lock of anyone's target/) and PYTHONDONTWRITEBYTECODE, and dies without python3. The
# functions below then set, in their order of use:
#   bench_loop N WARMUP      N WARMUP FIXTURE   BENCH_N, BENCH_WARMUP, BENCH_FIXTURE or defaults
#   bench_tools PKG...       nothing; installs the missing Debian packages
#   bench_workdir NAME       work    the work directory, removed on exit unless BENCH_KEEP=1
#   bench_build BIN          bin     a copy (bench_install) of the release binary BIN as shipped
#                                    (packaging/build-bins.sh), or of BENCH_BIN
#   bench_fake NAME SCRIPT   url     http://127.0.0.1:PORT of a bench/fake_*.py
#   bench_xcheck ROUNDS ...  deliver_rss dedup_rss true_rss   (sanity runs, peak RSS in KiB)
# and bench_run runs the measuring driver so that a signal stops it at once.

bench_tag=${bench_tag:-bench}
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(cd "$repo/.." && pwd)/target-bench}
export PYTHONDONTWRITEBYTECODE=1 # no bench/__pycache__ from importing benchlib.py
bench_pids=() # background processes to stop on exit, the latest started first
bench_copies=() # directories of measured copies of binaries (bench_install), removed on exit

say() { printf '%s: %s\n' "$bench_tag" "$*" >&2; }
die() { say "$*"; exit 1; }

# bench_count NAME VALUE [0]: dies unless VALUE is a positive integer (a number >= 0 with "0").
bench_count() {
    if [[ ${3:-} == 0 ]]; then
        [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a number, not '$2'"
    else
        [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, not '$2'"
    fi
}

command -v python3 >/dev/null || die "python3 is required"

# bench_loop N WARMUP: sets N (BENCH_N, else the default N), WARMUP (BENCH_WARMUP, else the
# default WARMUP) and FIXTURE (BENCH_FIXTURE, else tests/fixtures/sensu/create.json: the Sensu
# 1.x event bench_event reads); dies unless N is a positive integer, WARMUP a number and
# FIXTURE readable.
bench_loop() {
    N=${BENCH_N:-$1}
    WARMUP=${BENCH_WARMUP:-$2}
    FIXTURE=${BENCH_FIXTURE:-$repo/tests/fixtures/sensu/create.json}
    bench_count BENCH_N "$N"
    bench_count BENCH_WARMUP "$WARMUP" 0
    [[ -r $FIXTURE ]] || die "no fixture $FIXTURE"
}

# bench_tools PKG...: installs those Debian packages with apt-get (one `apt-get update` first), as
# root or through sudo. Pass only the missing ones; nothing happens without any.
bench_tools() {
    (($#)) || return 0
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "missing $* and not root: install them (apt-get install $*)"
        sudo=(sudo)
    fi
    say "installing $* with apt-get"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# bench_workdir NAME: makes $work, ${TMPDIR:-/tmp}/NAME.XXXXXX, and a trap that on exit stops
# every process in bench_pids and removes $work (keeps it, and says so, with BENCH_KEEP=1).
bench_workdir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local rc=$? pid
    for pid in "${bench_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${BENCH_KEEP:-} == 1 ]]; then
        say "kept $work"
    else
        rm -rf "$work"
    fi
    ((${#bench_copies[@]} == 0)) || rm -rf "${bench_copies[@]}"
    exit "$rc"
}

# bench_bg CMD...: starts CMD in the background, to be stopped on exit; its pid in $!.
bench_bg() {
    "$@" &
    bench_pids=("$!" "${bench_pids[@]}")
}

# bench_run CMD...: runs CMD to the end and returns its status. In the background and waited
# for, so that a signal to the script runs the cleanup (and stops CMD) at once.
bench_run() {
    local pid rc=0
    bench_bg "$@"
    pid=$!
    wait "$pid" || rc=$?
    bench_pids=("${bench_pids[@]:1}")
    return "$rc"
}

# bench_build BIN: sets $bin to BENCH_BIN when set (no build), else builds BIN as the packages
# do (packaging/build-bins.sh: release, statically linked) from the working tree, or from
# BENCH_REV exported with `git archive` into $work/src, into $CARGO_TARGET_DIR.
bench_build() {
    if [[ -n ${BENCH_BIN:-} ]]; then
        bin=$BENCH_BIN
        [[ -x $bin ]] || die "BENCH_BIN=$bin is not an executable"
        say "using $bin (no build)"
    else
        local src=$repo
        if [[ -n ${BENCH_REV:-} ]]; then
            src=$work/src
            mkdir -p "$src"
            git -C "$repo" archive "$BENCH_REV" | tar -x -C "$src"
            say "building $(git -C "$repo" rev-parse --short "$BENCH_REV") (BENCH_REV=$BENCH_REV) in $CARGO_TARGET_DIR"
        else
            say "building the working tree in $CARGO_TARGET_DIR"
        fi
        # As the packages build it: statically linked (packaging/build-bins.sh says why).
        if [[ -x $src/packaging/build-bins.sh ]]; then
            "$src/packaging/build-bins.sh" "$1" >&2
        else # a BENCH_REV from before it
            (cd "$src" && cargo build --release --locked --bin "$1") >&2
        fi
        bin=$CARGO_TARGET_DIR/release/$1
    fi
    bench_install "$bin"
    bin=$installed
    say "binary: $(stat -c %s "$bin") bytes, $("$bin" --version)"
}

# bench_install PATH: copies the executable PATH into a new directory under $CARGO_TARGET_DIR
# (as a package install writes it; on the build's filesystem, not in TMPDIR, which may be
# tmpfs or mounted noexec) and sets $installed to the copy's path; the copy is removed on exit
# (call it in this shell, not in a $(…) subshell, so that the exit trap knows the copy). The
# measured binary is then always a file written the same way: the one the linker left in
# target/ took ~7 page faults (0.05 ms) more per run than a copy of it, as its pages sit
# differently in the page cache (bench/HISTORY.md "Session 5").
bench_install() {
    local dir
    mkdir -p "$CARGO_TARGET_DIR" || die "cannot make $CARGO_TARGET_DIR"
    dir=$(mktemp -d "$CARGO_TARGET_DIR/bench-bin.XXXXXX") || die "cannot make a directory in $CARGO_TARGET_DIR"
    bench_copies+=("$dir")
    install -m 755 "$1" "$dir/" || die "cannot copy $1 into $dir"
    installed=$dir/${1##*/}
}

# bench_fake NAME SCRIPT: starts `python3 bench/SCRIPT PORTFILE` (a fake service, stopped on
# exit), waits up to 5 s for it to write its port, and sets $url to http://127.0.0.1:PORT.
# With BENCH_FAKE=rust the fake PagerDuty is bench/fake/ instead (the same answers, compiled:
# HISTORY.md "Session 8"), built here into $CARGO_TARGET_DIR.
bench_fake() {
    local pid
    case ${BENCH_FAKE:-python}:$2 in
    python:*) bench_bg python3 "$bench_dir/$2" "$work/port" ;;
    rust:fake_pagerduty.py)
        cargo build -q --release --locked --manifest-path "$bench_dir/fake/Cargo.toml" || die "cannot build bench/fake"
        bench_bg "$CARGO_TARGET_DIR/release/fake-pagerduty" "$work/port"
        ;;
    rust:*) die "BENCH_FAKE=rust: only the fake PagerDuty is compiled, not $2" ;;
    *) die "BENCH_FAKE must be python or rust, not '$BENCH_FAKE'" ;;
    esac
    pid=$!
    for _ in $(seq 100); do
        [[ -s $work/port ]] && break
        kill -0 "$pid" 2>/dev/null || die "the fake $1 did not start"
        sleep 0.05
    done
    [[ -s $work/port ]] || die "the fake $1 did not report its port"
    url=http://127.0.0.1:$(<"$work/port")
    say "fake $1 at $url (pid $pid)"
}

# bench_event ENTITY: $FIXTURE (a Sensu 1.x event) with client.name set to ENTITY, on stdout.
bench_event() {
    python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); e["client"]["name"]=sys.argv[2]; print(json.dumps(e))' "$FIXTURE" "$1"
}

# bench_xcheck ROUNDS NAME=VALUE...: sanity runs from this shell under /usr/bin/time -f %M (peak
# RSS in KiB), outside the measured loop, with their own entities (xcheck-1, …) and state
# directory in $work/xcheck, settings from $work/xcheck/conf.d, and an environment of PATH and
# NAME=VALUE only. Each round delivers a new event, runs it again (a dedup skip) and runs
# /bin/true; their RSS go to deliver_rss, dedup_rss and true_rss. Dies when the handler fails or
# no repeat was suppressed; the handler's stderr is in $work/xcheck/stderr.
bench_xcheck() {
    local rounds=$1 i
    shift
    mkdir -p "$work/xcheck/conf.d" "$work/xcheck/state"
    deliver_rss=() dedup_rss=() true_rss=()
    for ((i = 1; i <= rounds; i++)); do
        bench_event "xcheck-$i" >"$work/xcheck/ev"
        deliver_rss+=("$(bench_xrun "$@" <"$work/xcheck/ev")") || die "handler failed: $(tail -1 "$work/xcheck/stderr")"
        dedup_rss+=("$(bench_xrun "$@" <"$work/xcheck/ev")") || die "handler failed: $(tail -1 "$work/xcheck/stderr")"
        true_rss+=("$(/usr/bin/time -f %M /bin/true 2>&1)")
    done
    grep -q "already notified" "$work/xcheck/stderr" || die "a repeated event was not suppressed: $(cat "$work/xcheck/stderr")"
}

bench_xrun() {
    env -i PATH=/usr/bin:/bin "$@" /usr/bin/time -f %M -o "$work/xcheck/rss" \
        "$bin" --api-url "$url" --config "$work/xcheck/conf.d" --state-dir "$work/xcheck/state" \
        --spool-dir "$work/xcheck/spool" \
        >/dev/null 2>>"$work/xcheck/stderr" || return 1
    cat "$work/xcheck/rss"
}
