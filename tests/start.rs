//! How a handler is started: with standard descriptors closed, or with a stderr nobody reads.
//! The handlers start at a C `main` of their own instead of Rust's runtime start-up
//! (`common::entry`), so what that start-up did for them is asserted here: a closed descriptor
//! 0, 1 or 2 is opened on `/dev/null` before anything else is opened, and `SIGPIPE` is ignored.

use std::process::{Command, Stdio};

use crate::fake::pagerduty::FakePagerDuty;
use crate::util::{RedisServer, Run, Sandbox, pagerduty_sandbox, read_fixture, run_command};

/// `cmd` run through `/bin/sh` with the descriptors in `close` (e.g. `2>&-`) closed: a monitoring
/// system or init script that starts the handler that way. The same program, arguments and
/// environment.
fn with_closed(cmd: &Command, close: &str) -> Command {
    wrapped(cmd, "/bin/sh", &["-c"], &format!("exec \"$0\" \"$@\" {close}"))
}

/// `cmd` started by `wrapper` with `args`, then `/bin/sh -c script` whose `$0` and `$@` are
/// `cmd`'s program and arguments; `cmd`'s environment, and piped standard streams.
fn wrapped(cmd: &Command, wrapper: &str, args: &[&str], script: &str) -> Command {
    let mut sh = Command::new(wrapper);
    sh.args(args).arg(script).arg(cmd.get_program()).args(cmd.get_args());
    sh.env_clear().envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    sh.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    sh
}

/// The page went out once, Redis answered no command with an error (no log line reached it as
/// one), and the record says so.
fn paged_once_and_redis_saw_no_stray_command(fake: &FakePagerDuty, redis: &RedisServer) {
    fake.assert_no_violations();
    assert_eq!(fake.events().len(), 1, "delivered once (an identical repeat skipped): {:?}", fake.events());
    let errors = redis.cli(&["INFO", "stats"]).unwrap();
    assert!(errors.lines().any(|l| l.trim() == "total_error_replies:0"), "Redis answered an error: {errors}");
    let record = redis.cli(&["GET", "pagerpipe:pagerduty:rec:web-01/check_disk"]).unwrap();
    let record: serde_json::Value = serde_json::from_str(record.trim()).unwrap();
    assert_eq!((record["open"].as_bool(), record["count"].as_u64()), (Some(true), Some(1)));
}

#[test]
fn a_closed_stderr_never_turns_a_later_connection_into_the_log() {
    // Without the reopening, the connection to Redis is the first descriptor opened after the
    // settings directory, so it became descriptor 2: the "triggered" line went to Redis as a
    // command (an error reply there), and a line holding the event's names could have been
    // read as one.
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakePagerDuty::start(&[]);
    let sandbox = pagerduty_sandbox().with_state_store(&redis.url);
    let event = read_fixture("sensu/create.json");
    for (close, what) in [("2>&-", "stderr closed"), (">&- 2>&-", "stdout and stderr closed"), ("<&- 2>&-", "stdin and stderr closed")] {
        let run = run_command(with_closed(&sandbox.command(&["--api-url", &fake.url, "-v"]), close), &event);
        if close.starts_with("<&-") {
            // No event to read: the same exit as an empty one, said nowhere (stderr is closed).
            assert_eq!(run.code, Some(65), "{what}");
        } else {
            assert_eq!(run.code, Some(0), "{what}");
        }
    }
    paged_once_and_redis_saw_no_stray_command(&fake, &redis);
}

/// `cmd` run with `close` (e.g. `2>&-`) as [`with_closed`] does, in a mount namespace of its
/// own whose `/dev` is an empty tmpfs: a chroot or container without `/dev/null`. `None` (with a
/// SKIPPED line) where `unshare -m` is not permitted (not root, or a container that forbids it).
fn without_dev_null(cmd: &Command, close: &str) -> Option<Command> {
    let unshare = "/usr/bin/unshare";
    let permitted = Command::new(unshare)
        .args(["-m", "/bin/sh", "-c", "mount -t tmpfs none /dev && ! test -e /dev/null"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !permitted {
        eprintln!("\n*** SKIPPED: `unshare -m` with a tmpfs on /dev is not permitted here (root and util-linux needed) ***\n");
        return None;
    }
    Some(wrapped(cmd, unshare, &["-m", "/bin/sh", "-c"], &format!("mount -t tmpfs none /dev && exec \"$0\" \"$@\" {close}")))
}

#[test]
fn without_dev_null_a_closed_stderr_still_never_turns_a_later_connection_into_the_log() {
    // Rust's start-up aborted when /dev/null would not open for a closed descriptor (no page);
    // the handlers' own start left descriptor 2 closed, so the connection to Redis became it
    // and the "triggered" line went to Redis as a command (an error reply there). Now the
    // number is taken by a descriptor nothing can be written to, and the page goes out.
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakePagerDuty::start(&[]);
    let sandbox = pagerduty_sandbox().with_state_store(&redis.url);
    let Some(cmd) = without_dev_null(&sandbox.command(&["--api-url", &fake.url, "-v"]), "2>&-") else { return };
    let run = run_command(cmd, &read_fixture("sensu/create.json"));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    paged_once_and_redis_saw_no_stray_command(&fake, &redis);
}

#[test]
fn a_stderr_nobody_reads_does_not_stop_the_page() {
    // A pipe whose reading end is closed before the handler starts: every log line fails with
    // EPIPE. With SIGPIPE at its default the first one (verbose: before the request) killed the
    // handler, and nothing was sent.
    let fake = FakePagerDuty::start(&[]);
    let sandbox = pagerduty_sandbox();
    let event = read_fixture("sensu/create.json");
    for _ in 0..2 {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = sandbox.command(&["--api-url", &fake.url, "-v"]);
        cmd.stderr(writer);
        let Run { code, .. } = run_command(cmd, &event);
        assert_eq!(code, Some(0), "exit 0, not killed by SIGPIPE");
    }
    fake.assert_no_violations();
    assert_eq!(fake.events().len(), 1, "delivered once, then the repeat skipped: {:?}", fake.events());
    let record = sandbox.state("pagerduty", "web-01%2Fcheck_disk.json");
    assert_eq!(record["count"].as_u64(), Some(1));
}

#[test]
fn every_handler_starts_with_its_flags_and_ends_with_its_exit_code() {
    // The C entry point reads the arguments and returns the code as `fn main` did: a usage
    // error is 2 with clap's message, --version prints to a stdout that is flushed at exit.
    for bin in [
        env!("CARGO_BIN_EXE_handler-pagerduty"),
        env!("CARGO_BIN_EXE_handler-twilio"),
        env!("CARGO_BIN_EXE_handler-reactio"),
        env!("CARGO_BIN_EXE_handler-slack"),
    ] {
        let name = std::path::Path::new(bin).file_name().unwrap().to_string_lossy().into_owned();
        let sandbox = Sandbox::new(bin);
        let run = run_command(sandbox.command(&["--no-such-flag"]), b"");
        assert_eq!(run.code, Some(2), "{name}: {}", run.stderr);
        assert!(run.stderr.contains("--no-such-flag"), "{name}: {}", run.stderr);
        let run = run_command(sandbox.command(&["--version"]), b"");
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        assert!(run.stdout.starts_with(&format!("{name} ")), "{name}: {:?}", run.stdout);
        // No settings at all: 78, with the one-line error on stderr, and the event printed
        // before it so that the monitoring system's log keeps it.
        let run = run_command(sandbox.command(&[]), &read_fixture("sensu/create.json"));
        assert_eq!(run.code, Some(78), "{name}: {}", run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{name}: {}", run.stderr);
        assert!(lines[0].contains("undelivered event, not spooled: {"), "{name}: {}", run.stderr);
    }
}

#[test]
fn a_job_started_with_from_exec_gets_sigpipe_at_its_default() {
    // The handler ignores SIGPIPE; the job it runs must not inherit that (a `producer | head`
    // in a job script would run on after `head` exits). Rust's `Command` puts it back to the
    // default in the child, as it did when Rust's start-up set the ignoring.
    let fake = FakePagerDuty::start(&[]);
    let sandbox = pagerduty_sandbox();
    let job = ["--from", "exec", "--check", "nightly-export", "--entity", "batch-01", "--"];
    let run = sandbox.run(&[&["--api-url", &fake.url], &job[..], &["/bin/sh", "-c", "grep '^SigIgn:' /proc/self/status"]].concat(), b"");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mask = run.stdout.trim().strip_prefix("SigIgn:").map(str::trim).and_then(|m| u64::from_str_radix(m, 16).ok());
    let sigpipe = 1 << (13 - 1);
    assert_eq!(mask.map(|m| m & sigpipe), Some(0), "the job's ignored signals: {:?}", run.stdout);
}
