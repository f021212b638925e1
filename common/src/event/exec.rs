//! Pages from any batch job: run it, and its exit status and the tail of its output are the
//! event (`--from exec -- COMMAND [ARGS…]`).
//!
//! ```text
//! handler-twilio --from exec --check nightly-export -- /usr/local/bin/export.sh
//! ```
//!
//! The job is started directly (no shell) with stdin on `/dev/null` and the handler's
//! environment minus the handlers' credentials ([`CREDENTIAL_ENV`]); the handler is made
//! non-dumpable first (`keep_from_the_job`), so that the job cannot read them from the
//! handler's `/proc` files or memory either. One reader thread per pipe
//! passes its stdout and stderr through to the handler's own stdout and stderr as they come
//! (cron mail and the journal still see everything) and keeps the last [`TAIL_BYTES`] of both,
//! interleaved in the order the handler read them, so a job that prints gigabytes costs the
//! handler 4 KiB plus two read buffers.
//!
//! The job's end becomes the event ([`Ended`]): exit 0 → `ok` (resolves an open incident),
//! any other exit → `critical`, or with `--exit-codes nagios` 1 → `warning`, 2 → `critical`,
//! 3 → `unknown` as monitoring plugins mean them (other codes stay `critical`); killed by a
//! signal, timed out (`--exec-timeout`), not startable at all, or lost (waiting failed) →
//! `critical`. The output is one line saying how the job ended (program name only: arguments
//! may hold secrets), then the tail.
//! The event's time is when the job ended; `--check` and `--entity` (default: this host) key the
//! incident, so the next good run closes it.
//!
//! With `--exec-timeout` the job runs in its own process group and the whole group gets SIGTERM
//! at the timeout, then SIGKILL [`KILL_GRACE`] later, so a shell script's children die with it.
//! (Without a timeout the job stays in the handler's group, so Ctrl-C and a service stop reach
//! it as they would reach the job run alone.) When the job has ended but a process it left
//! behind still holds its stdout or stderr open, the handler waits [`DRAIN_GRACE`] for more
//! output, then pages with what it has.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::batch::{Notes, Tail};
use super::{Event, Format, Invocation};
use crate::exit::{Code, Result};

/// How much of the job's output the page carries: the last 4 KiB (4096 bytes) of stdout and
/// stderr together.
pub const TAIL_BYTES: usize = 4096;

/// After SIGTERM at the `--exec-timeout`, how long the job's process group has to exit before
/// it gets SIGKILL: 5 s.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// After the job has ended, how long the handler waits for its stdout and stderr to close
/// (a process it started in the background may keep them open): 2 s.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Environment variables the job does not inherit: the handlers' credentials, which a batch job
/// has no business reading. `PAGERPIPE_STATE_STORE` too: its URL may carry the shared Redis
/// ledger's password (`redis://:password@host`), with which the job could rewrite every
/// host's incident records.
pub const CREDENTIAL_ENV: [&str; 6] =
    ["PAGERDUTY_ROUTING_KEY", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY_SECRET", "REACTIO_API_KEY", "SLACK_BOT_TOKEN", "PAGERPIPE_STATE_STORE"];

/// How a job's exit code maps to a check status (`--exit-codes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExitCodes {
    /// 0 → ok, anything else → critical.
    #[default]
    Plain,
    /// Monitoring-plugin codes: 0 ok, 1 warning, 2 critical, 3 unknown; others critical.
    Nagios,
}

impl ExitCodes {
    /// The check status (0–3) for exit `code`.
    pub fn status(self, code: i32) -> u32 {
        match (self, code) {
            (_, 0) => 0,
            (ExitCodes::Nagios, 1..=3) => code as u32,
            _ => 2,
        }
    }
}

/// How the job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code.
    Exited(i32),
    /// A signal (number) killed it.
    Signaled(i32),
    /// It ran past `--exec-timeout` (the duration) and was killed.
    TimedOut(Duration),
    /// It could not be started (the OS error).
    NotStarted(String),
    /// Its end could not be learned: waiting for it failed (the OS error).
    Lost(String),
}

impl Ended {
    fn from_status(s: ExitStatus) -> Ended {
        match (s.code(), s.signal()) {
            (Some(c), _) => Ended::Exited(c),
            (None, Some(sig)) => Ended::Signaled(sig),
            (None, None) => Ended::Exited(-1),
        }
    }

    /// The check status under `map`: 0–3.
    pub fn status(&self, map: ExitCodes) -> u32 {
        match self {
            Ended::Exited(c) => map.status(*c),
            _ => 2,
        }
    }

    /// What happened, after the program's name: `exited with status 1`, `was killed by signal
    /// 9 (SIGKILL)`, `timed out after 30s and was killed`, `could not be started: …`.
    pub fn describe(&self) -> String {
        match self {
            Ended::Exited(c) => format!("exited with status {c}"),
            Ended::Signaled(s) => format!("was killed by signal {s}{}", signal_name(*s).map(|n| format!(" ({n})")).unwrap_or_default()),
            Ended::TimedOut(d) => format!("timed out after {} and was killed", crate::config::show_duration(*d)),
            Ended::NotStarted(e) => format!("could not be started: {e}"),
            Ended::Lost(e) => format!("ended unobserved: waiting for it failed ({e})"),
        }
    }
}

/// Names of the usual Linux signals, for the page's text.
fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => return None,
    })
}

/// A finished job.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub ended: Ended,
    /// How long it ran.
    pub took: Duration,
    /// The last [`TAIL_BYTES`] of its stdout and stderr, interleaved.
    pub tail: String,
    /// Bytes it wrote in all (stdout and stderr).
    pub total: u64,
}

/// Run `--from exec`: the job in `inv.command`, then its event. Lines for the log (how the job
/// ended, its output's size) are added to `notes`.
///
/// Errors: no COMMAND or no `--check` → usage (exit 2). A job that cannot be started is not an
/// error: it pages (`critical`, "could not be started").
pub fn parse(inv: &Invocation, notes: &mut Notes) -> Result<Event> {
    let Some((program, args)) = inv.command.split_first() else {
        return Err(Code::Usage.msg("--from exec needs the job to run after --, e.g. --from exec --check NAME -- /usr/local/bin/job.sh"));
    };
    if inv.check.as_deref().is_none_or(|c| c.trim().is_empty()) {
        // Before running the job: a usage error must not cost a night's batch run.
        return Err(Code::Usage.msg("--check NAME is required with --from exec (it names the incident)"));
    }
    let map = inv.exit_codes.unwrap_or_default();
    let done = run(program, args, inv.exec_timeout, std::io::stdout, std::io::stderr);
    let name = super::os_text(program);
    let ended = format!("{name} {}", done.ended.describe());
    let status = done.ended.status(map);
    notes.push(format!(
        "job {ended} ({}, {} bytes of output); check status {}",
        crate::http::fmt_ms(done.took),
        done.total,
        super::status_name(status)
    ));
    let output = if done.tail.is_empty() { format!("{ended}.") } else { format!("{ended}.\n{}", done.tail) };
    super::batch::event(Format::Exec, inv, status, output, crate::clock::now_unix() as i64)
}

/// Make this process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`), before the job starts.
///
/// The job runs as the handler's user, and a process may read the environment
/// (`/proc/<pid>/environ`) of any process of its own user, and trace it to read its memory: with
/// [`CREDENTIAL_ENV`] taken out of the job's own environment, `cat /proc/$PPID/environ` still
/// printed the credentials the handler was started with. A non-dumpable process's `/proc` files
/// belong to root and only a process with `CAP_SYS_PTRACE` may trace it; the job itself is
/// dumpable again once it is exec'd, and the handler writes no core dump (which would hold its
/// credentials too). Should the call fail (not Linux), the job runs all the same: the page matters more.
fn keep_from_the_job() {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
}

/// Run `program` with `args` (stdin `/dev/null`, its stdout passed through to `stdout()` and its
/// stderr to `stderr()` as they come, the last [`TAIL_BYTES`] of both kept), killing it after
/// `timeout` when given.
pub fn run<O: Write + 'static, E: Write + 'static>(
    program: &OsString,
    args: &[OsString],
    timeout: Option<Duration>,
    stdout: fn() -> O,
    stderr: fn() -> E,
) -> Finished {
    let start = Instant::now();
    keep_from_the_job();
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in CREDENTIAL_ENV {
        cmd.env_remove(name);
    }
    if timeout.is_some() {
        cmd.process_group(0);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Finished { ended: Ended::NotStarted(e.to_string()), took: start.elapsed(), tail: String::new(), total: 0 };
        }
    };
    let tail = Arc::new(Mutex::new(Tail::new(TAIL_BYTES)));
    let (drained_tx, drained_rx) = mpsc::channel::<()>();
    let mut pumps = 0;
    let (out_open, err_open) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    if let Some(out) = child.stdout.take() {
        pumps += 1;
        pump(out, stdout, Arc::clone(&tail), Arc::clone(&out_open), drained_tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        pumps += 1;
        pump(err, stderr, Arc::clone(&tail), Arc::clone(&err_open), drained_tx.clone());
    }
    drop(drained_tx);

    let pid = child.id();
    let (exit_tx, exit_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = exit_tx.send(child.wait());
    });
    let waited = match timeout {
        None => exit_rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        Some(t) => exit_rx.recv_timeout(t),
    };
    let ended = match waited {
        Ok(Ok(status)) => Ended::from_status(status),
        Ok(Err(e)) => Ended::Lost(e.to_string()),
        Err(mpsc::RecvTimeoutError::Disconnected) => Ended::Lost("the waiting thread stopped".into()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let group = rustix::process::Pid::from_raw(pid as i32);
            let signal = |s| {
                if let Some(g) = group {
                    let _ = rustix::process::kill_process_group(g, s);
                }
            };
            signal(rustix::process::Signal::TERM);
            if exit_rx.recv_timeout(KILL_GRACE).is_err() {
                signal(rustix::process::Signal::KILL);
                // Bounded even for a process stuck in the kernel: the page goes out regardless.
                let _ = exit_rx.recv_timeout(KILL_GRACE);
            } else {
                // The job is gone; what it started in its group goes too.
                signal(rustix::process::Signal::KILL);
            }
            Ended::TimedOut(timeout.unwrap_or_default())
        }
    };
    let took = start.elapsed();
    let until = Instant::now() + DRAIN_GRACE;
    for _ in 0..pumps {
        if drained_rx.recv_timeout(until.saturating_duration_since(Instant::now())).is_err() {
            break;
        }
    }
    // A job whose last line has no line end would have the handler's first log line (or
    // --dry-run's request) glued onto it: `partial{"handler":…}` is no JSON line, and in text
    // a job's `\r` or words would stand before the handler's own. End that line here.
    end_line(&out_open, stdout);
    end_line(&err_open, stderr);
    let t = tail.lock().unwrap_or_else(PoisonError::into_inner);
    let mut ignored = Notes::new();
    Finished { ended, took, tail: t.text(&mut ignored, "output"), total: t.total() }
}

/// Write a line end to `to()` when what the job passed through to it last (`open`) ended
/// inside a line.
fn end_line<W: Write>(open: &AtomicBool, to: fn() -> W) {
    if open.swap(false, Ordering::SeqCst) {
        let mut out = to();
        let _ = out.write_all(b"\n").and_then(|()| out.flush());
    }
}

/// Copy `from` to `to()` (the handler's stdout or stderr) chunk by chunk as it arrives, keeping
/// the tail; says `done` at end of file. `open` says whether what was passed through last ended
/// inside a line ([`end_line`]). A closed or failing `to` stops the copying, never the
/// reading, so the job is not killed by a broken pipe of the handler's.
fn pump<R, W>(mut from: R, to: fn() -> W, tail: Arc<Mutex<Tail>>, open: Arc<AtomicBool>, done: mpsc::Sender<()>)
where
    R: Read + Send + 'static,
    W: Write + 'static,
{
    std::thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        let mut passing = true;
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    tail.lock().unwrap_or_else(PoisonError::into_inner).push(&buf[..n]);
                    if passing {
                        let mut out = to();
                        passing = out.write_all(&buf[..n]).and_then(|()| out.flush()).is_ok();
                        open.store(passing && buf[n - 1] != b'\n', Ordering::SeqCst);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Option<Duration>) -> Finished {
        run(&"/bin/sh".into(), &["-c".into(), script.into()], timeout, std::io::sink, std::io::sink)
    }

    #[test]
    fn exit_codes_map_to_statuses() {
        for (code, plain, nagios) in [(0, 0, 0), (1, 2, 1), (2, 2, 2), (3, 2, 3), (4, 2, 2), (127, 2, 2), (-1, 2, 2)] {
            assert_eq!((ExitCodes::Plain.status(code), ExitCodes::Nagios.status(code)), (plain, nagios), "exit {code}");
        }
        assert_eq!(Ended::Signaled(9).status(ExitCodes::Nagios), 2);
        assert_eq!(Ended::Signaled(9).describe(), "was killed by signal 9 (SIGKILL)");
        assert_eq!(Ended::Signaled(64).describe(), "was killed by signal 64");
        assert_eq!(Ended::TimedOut(Duration::from_secs(90)).describe(), "timed out after 1m 30s and was killed");
    }

    #[test]
    fn a_job_ends_with_its_status_and_output_tail() {
        let f = sh("echo out; echo err >&2; exit 3", None);
        assert_eq!(f.ended, Ended::Exited(3));
        assert!(f.tail.contains("out\n") && f.tail.contains("err\n"), "{:?}", f.tail);
        assert_eq!(f.total, 8);
        let f = sh("kill -SEGV $$", None);
        assert_eq!(f.ended, Ended::Signaled(11));
    }

    #[test]
    fn stdin_is_closed_and_credentials_are_not_inherited() {
        // A test process's environment is its own; the child sees what `run` passes on.
        let f = sh("cat; echo \"[${PAGERDUTY_ROUTING_KEY-unset}]\"", None);
        assert_eq!(f.ended, Ended::Exited(0));
        assert_eq!(f.tail, "[unset]\n");
    }

    #[test]
    fn a_job_that_cannot_start_is_a_critical_ending() {
        let f = run(&"/nonexistent/job".into(), &[], None, std::io::sink, std::io::sink);
        assert!(matches!(&f.ended, Ended::NotStarted(e) if e.contains("No such file")), "{:?}", f.ended);
        assert_eq!(f.ended.status(ExitCodes::Nagios), 2);
    }

    #[test]
    fn a_timeout_kills_the_whole_process_group() {
        // The shell's child `sleep` holds the pipes; only killing the group ends the read.
        let f = sh("echo started; sleep 30; echo never", Some(Duration::from_millis(300)));
        assert_eq!(f.ended, Ended::TimedOut(Duration::from_millis(300)));
        assert_eq!(f.tail, "started\n");
    }

    #[test]
    fn a_job_that_ignores_sigterm_gets_sigkill_after_the_grace() {
        // `trap '' TERM` is inherited by `sleep`: only SIGKILL, KILL_GRACE later, ends them.
        let f = sh("trap '' TERM; echo stubborn; sleep 60", Some(Duration::from_millis(200)));
        assert_eq!(f.ended, Ended::TimedOut(Duration::from_millis(200)));
        assert_eq!(f.tail, "stubborn\n");
        assert!(f.took >= KILL_GRACE, "{:?}", f.took);
    }

    #[test]
    fn only_the_tail_is_kept() {
        let f = sh("head -c 1000000 /dev/zero | tr '\\0' a; printf END", None);
        assert_eq!(f.total, 1_000_003);
        assert_eq!(f.tail.len(), TAIL_BYTES);
        assert!(f.tail.ends_with("aaaEND"));
    }
}
