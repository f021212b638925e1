//! Pages from any script: the event given as flags (`--from cli`).
//!
//! A shell script, a deploy hook or a one-off job that notices a problem has no monitoring
//! system to describe it; it says what it knows on the command line:
//!
//! ```text
//! handler-pagerduty --from cli --check backup --status critical --output "disk full"
//! df -h | handler-twilio --from cli --check disk --status warning --output -
//! handler-pagerduty --from cli --check backup --status ok        # resolves
//! ```
//!
//! `--check` names the check (required), `--entity` the entity (default: this host's name);
//! together they key the incident (`{entity}/{check}`), so a later `--status ok` for the same
//! pair resolves it. `--status` is a word or its Nagios code ([`CheckStatus`]). `--output` is the
//! check output, or `-` to read it from stdin; it is kept to [`MAX_EVENT_BYTES`] like an event on
//! stdin, but a longer output is cut to its last 1 MiB (with a warning) rather than refused: the
//! end of a script's output says most about why it failed, and a page that goes out cut is
//! better than one lost to exit 65. The event's time is the moment the handler read it.
//!
//! This module also holds what `--from exec` ([`super::exec`]) shares with it: the status words,
//! the flag checks, and the entity default.

use std::io::Read;

use super::{Event, Format, Invocation, MAX_EVENT_BYTES, Source, SourceAction};
use crate::exit::{Code, Result};

/// A check status given on the command line (`--status`): the word, or the Nagios plugin code
/// `0`–`3` it stands for (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckStatus {
    /// 0: the check passes; resolves an open incident.
    #[value(alias = "0")]
    Ok,
    /// 1: warning.
    #[value(alias = "1")]
    Warning,
    /// 2: critical.
    #[value(alias = "2")]
    Critical,
    /// 3: unknown (the check could not tell).
    #[value(alias = "3")]
    Unknown,
}

impl CheckStatus {
    /// The Nagios plugin code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) that [`Event::status`] holds.
    pub fn code(self) -> u32 {
        match self {
            CheckStatus::Ok => 0,
            CheckStatus::Warning => 1,
            CheckStatus::Critical => 2,
            CheckStatus::Unknown => 3,
        }
    }
}

/// An event of a batch source (`--from cli`, `--from exec`): `status` (0–3), `output`, time
/// `timestamp` (Unix seconds); `ok` resolves, anything else triggers. One occurrence: the
/// handler pages on the first failure, as a job's caller expects.
pub(super) fn event(format: Format, inv: &Invocation, status: u32, output: String, timestamp: i64) -> Result<Event> {
    let check = match inv.check.as_deref().map(str::trim) {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => return Err(Code::Usage.msg("--check NAME is required with --from cli and --from exec (it names the incident)")),
    };
    let entity = match inv.entity.as_deref().map(str::trim) {
        Some(e) if !e.is_empty() => e.to_string(),
        Some(_) => return Err(Code::Usage.msg("--entity is empty; give a name or leave it out for this host's name")),
        None => super::mackerel::local_hostname().ok_or_else(|| Code::Usage.msg("this host's name is unknown; pass --entity NAME"))?,
    };
    Ok(Event {
        format,
        entity,
        check,
        status,
        output,
        action: Some(if status == 0 { SourceAction::Resolve } else { SourceAction::Create }),
        occurrences: 1,
        timestamp: Some(timestamp),
        // The time of receipt, on whichever host ran the script: ordered as one.
        time_source: super::TimeSource::Receipt,
        ..Event::default()
    })
}

/// Flags that only one batch source reads, given with another source: a usage error (exit 2)
/// naming the flag, so that e.g. `--check x -- job.sh` without `--from exec` does not wait for an
/// event on stdin and lose the job.
pub(super) fn check_flags(inv: &Invocation, source: Source) -> Result<()> {
    let only = |given: bool, flag: &str, wanted: Source, name: &str| {
        if given && source != wanted { Err(Code::Usage.msg(format!("{flag} is only read with --from {name}"))) } else { Ok(()) }
    };
    only(inv.status.is_some(), "--status", Source::Cli, "cli")?;
    only(inv.output.is_some(), "--output", Source::Cli, "cli")?;
    only(inv.exec_timeout.is_some(), "--exec-timeout", Source::Exec, "exec")?;
    only(inv.exit_codes.is_some(), "--exit-codes", Source::Exec, "exec")?;
    only(!inv.command.is_empty(), "a COMMAND after --", Source::Exec, "exec")
}

/// Warnings for the operator from reading a batch event (an output cut to the cap).
pub type Notes = Vec<String>;

/// Read `--from cli`: the status and output from the flags (`--output -`: from `stdin`).
///
/// Errors: no `--status` or `--check` → usage (exit 2); stdin unreadable → exit 65.
pub fn parse(inv: &Invocation, stdin: impl Read, notes: &mut Notes) -> Result<Event> {
    let status = inv.status.ok_or_else(|| Code::Usage.msg("--status ok|warning|critical|unknown is required with --from cli"))?;
    let output = match inv.output.as_deref() {
        None => String::new(),
        Some("-") => {
            let mut tail = Tail::new(MAX_EVENT_BYTES as usize);
            let mut buf = vec![0; 64 * 1024];
            let mut stdin = stdin;
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => tail.push(&buf[..n]),
                    // A pause: go on waiting, until the end of input or the time limit.
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock) => {}
                    // Still open at the time limit (--timeout): page with what came.
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        notes.push(format!(
                            "--output -: stdin was still open at the time limit (--timeout); paging with the {} bytes read",
                            tail.total()
                        ));
                        break;
                    }
                    Err(e) => return Err(Code::DataErr.msg(format!("--output -: cannot read stdin ({e})"))),
                }
            }
            tail.text(notes, "stdin")
        }
        Some(text) => {
            let mut tail = Tail::new(MAX_EVENT_BYTES as usize);
            tail.push(text.as_bytes());
            tail.text(notes, "--output")
        }
    };
    event(Format::Cli, inv, status.code(), output, crate::clock::now_unix() as i64)
}

/// The last `cap` bytes of a stream, kept in bounded memory however much passes through.
#[derive(Debug)]
pub struct Tail {
    buf: std::collections::VecDeque<u8>,
    cap: usize,
    total: u64,
}

impl Tail {
    /// An empty tail that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Tail {
        Tail { buf: std::collections::VecDeque::with_capacity(cap.min(64 * 1024)), cap, total: 0 }
    }

    /// Append `data`, dropping the oldest bytes beyond the cap.
    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        if data.len() >= self.cap {
            self.buf.clear();
            self.buf.extend(&data[data.len() - self.cap..]);
        } else {
            let over = (self.buf.len() + data.len()).saturating_sub(self.cap);
            self.buf.drain(..over);
            self.buf.extend(data);
        }
    }

    /// Bytes pushed in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether bytes were dropped.
    pub fn cut(&self) -> bool {
        self.total > self.buf.len() as u64
    }

    /// The kept bytes as text: bytes that are not UTF-8 as Latin-1 characters, as stdin's
    /// ([`super::latin1_fallback`]), and when the start was cut, a character cut in half there
    /// is dropped (not shown as Latin-1 characters). A cut adds a note naming
    /// `what` and the sizes.
    pub fn text(&self, notes: &mut Notes, what: &str) -> String {
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(self.buf.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        let mut start = 0;
        if self.cut() {
            // At most 3 continuation bytes (10xxxxxx) of a character whose start was dropped.
            while start < bytes.len().min(3) && bytes[start] & 0xC0 == 0x80 {
                start += 1;
            }
            notes.push(format!("{what} was {} bytes; the page carries its last {} bytes", self.total, bytes.len() - start));
        }
        super::latin1_fallback(&bytes[start..])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;
    use crate::filter::{self, Action, Decision};

    fn inv(status: Option<CheckStatus>, output: Option<&str>) -> Invocation {
        Invocation {
            check: Some("backup".into()),
            entity: Some("db-01".into()),
            status,
            output: output.map(str::to_string),
            ..Invocation::default()
        }
    }

    #[test]
    fn flags_make_an_event_keyed_by_entity_and_check() {
        let mut notes = Notes::new();
        let e = parse(&inv(Some(CheckStatus::Critical), Some("disk full")), &b""[..], &mut notes).unwrap();
        assert_eq!(
            (e.format, e.entity.as_str(), e.check.as_str(), e.status, e.output.as_str()),
            (Format::Cli, "db-01", "backup", 2, "disk full")
        );
        assert_eq!(filter::decide(&e, &Default::default()), Decision::Act(Action::Trigger));
        assert_eq!(crate::template::incident_key(None, &e), "db-01/backup");
        let ok = parse(&inv(Some(CheckStatus::Ok), None), &b""[..], &mut notes).unwrap();
        assert_eq!(filter::decide(&ok, &Default::default()), Decision::Act(Action::Resolve));
        assert!(notes.is_empty());
    }

    #[test]
    fn the_entity_defaults_to_this_hosts_name() {
        let mut i = inv(Some(CheckStatus::Critical), None);
        i.entity = None;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let e = parse(&i, &b""[..], &mut Notes::new()).unwrap();
        assert_eq!(e.entity, host.trim());
        assert!(!e.entity.is_empty());
    }

    #[test]
    fn output_dash_reads_stdin_and_keeps_the_tail() {
        let mut notes = Notes::new();
        let e = parse(&inv(Some(CheckStatus::Warning), Some("-")), &b"line 1\nline 2\n"[..], &mut notes).unwrap();
        assert_eq!((e.status, e.output.as_str()), (1, "line 1\nline 2\n"));
        let mut big = vec![b'a'; MAX_EVENT_BYTES as usize + 10];
        big.extend_from_slice(b"THE END");
        let e = parse(&inv(Some(CheckStatus::Warning), Some("-")), &big[..], &mut notes).unwrap();
        assert_eq!(e.output.len(), MAX_EVENT_BYTES as usize);
        assert!(e.output.ends_with("aTHE END"));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains(&format!("{} bytes", MAX_EVENT_BYTES + 17)), "{notes:?}");
    }

    #[test]
    fn missing_flags_are_usage_errors() {
        let mut notes = Notes::new();
        assert_eq!(parse(&inv(None, None), &b""[..], &mut notes).unwrap_err().code, Code::Usage);
        let mut i = inv(Some(CheckStatus::Ok), None);
        i.check = Some(" ".into());
        let err = parse(&i, &b""[..], &mut notes).unwrap_err();
        assert!(err.code == Code::Usage && err.to_string().contains("--check"), "{err}");
        assert!(check_flags(&inv(Some(CheckStatus::Ok), None), Source::Exec).is_err());
        assert!(check_flags(&inv(Some(CheckStatus::Ok), None), Source::Cli).is_ok());
        let job = Invocation { command: vec!["/bin/true".into()], ..Invocation::default() };
        let err = check_flags(&job, Source::Mackerel).unwrap_err();
        assert!(err.to_string().contains("COMMAND after --"), "{err}");
    }

    #[test]
    fn tail_keeps_the_last_bytes_and_whole_characters() {
        let mut t = Tail::new(8);
        t.push(b"0123");
        t.push(b"4567");
        t.push(b"89");
        assert_eq!((t.total(), t.cut()), (10, true));
        let mut notes = Notes::new();
        assert_eq!(t.text(&mut notes, "x"), "23456789");
        let mut t = Tail::new(5);
        t.push("xxあいう".as_bytes()); // the cut lands inside い (3 bytes each)
        assert_eq!(t.text(&mut notes, "x"), "う");
        let mut t = Tail::new(4);
        t.push(&[b'a'; 100]);
        t.push(b"b");
        assert_eq!(t.text(&mut notes, "x"), "aaab");
    }
}
