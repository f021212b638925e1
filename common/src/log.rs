//! One log line per decision, on stderr.
//!
//! Monitoring systems keep a handler's stderr in their own log (the Sensu server log; Nagios
//! 4's `nagios.log` and Icinga 2's log only for a command that exits non-zero, hence
//! `--syslog`, which also sends each line to syslog), so every decision is one line there, prefixed
//! with the handler name (`pagerduty: triggered web-01/check_disk (dedup_key …) in 43 ms`), or
//! one JSON object per line with `--log-format json`. Every line passes through the secret
//! mask, so a credential that leaks into a message (an echoed URL, a server's error text) is
//! still never printed whole.

use std::io::Write;

use crate::secret;

/// Longest message a log line carries, in characters: 8 192. A longer one (a key or name of
/// hundreds of kilobytes from the monitored host) is cut, saying how long it was.
pub const MAX_MESSAGE_CHARS: usize = 8 * 1024;

/// `text` with every character that could end, rewrite or disguise a terminal line written
/// as a visible escape: `\n`, `\r`, `\t`, and `\u{…}` for the other C0 controls, DEL, the C1
/// controls (U+0080–U+009F, NEL among them), the Unicode line and paragraph separators
/// (U+2028, U+2029), the bidirectional overrides, isolates and marks (U+202A–U+202E,
/// U+2066–U+2069, U+200E, U+200F, U+061C), and the invisible format characters a name could
/// hide behind (zero-width space and joiners U+200B–U+200D, word joiner and invisible operators
/// U+2060–U+2064, the byte order mark U+FEFF, the soft hyphen U+00AD, the interlinear
/// annotation controls U+FFF9–U+FFFB and the tag characters U+E0000–U+E007F): `web-01` with a
/// zero-width space inside reads `web-\u{200b}01`, never as `web-01`. Everything else,
/// backslashes and emoji included, is kept as it is.
///
/// Text log lines pass through this at render time, so a value from the monitored host (a
/// check or entity name, check output, a service's multi-line error body) can never start a
/// line of its own (`pagerduty: triggered forged/host …`), move the cursor or colour the
/// operator's terminal: one message is always exactly one line. (`--log-format json` lines
/// get the same characters as JSON `\uXXXX` escapes: [`escape_json_line`].)
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether [`escape_controls`] writes `c` as an escape: a control character (C0, DEL, C1),
/// a line or paragraph separator, a bidirectional control, or an invisible format character
/// (the list in [`escape_controls`]).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{61c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// A JSON line (`serde_json` output) with the characters [`escape_controls`] escapes, which
/// the JSON encoder leaves as they are beyond C0 (DEL, NEL and the other C1 controls, U+2028,
/// U+2029, the bidirectional controls), written as `\uXXXX` escapes: the same JSON value,
/// but no reader that splits lines on U+2028 or NEL, and no terminal showing the line, sees
/// them. Outside strings a JSON line holds only ASCII, so every such character is inside one.
pub fn escape_json_line(line: String) -> String {
    if !line.chars().any(needs_escape) {
        return line;
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if needs_escape(c) {
            // Beyond the BMP (the tag characters), JSON writes a UTF-16 surrogate pair.
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{:04x}", unit));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `handler: message`.
    #[default]
    Text,
    /// `{"ts":…,"handler":…,"level":…,"msg":…}`.
    Json,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail only printed with `--verbose`.
    Debug,
    /// A decision or outcome.
    Info,
    /// Something the operator should look at; the handler carries on.
    Warn,
    /// The invocation failed.
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The logger of one invocation.
#[derive(Debug, Clone)]
pub struct Logger {
    handler: &'static str,
    format: LogFormat,
    verbose: bool,
    secrets: Vec<String>,
    /// `--syslog`: the socket every line is also sent to.
    syslog: Option<std::path::PathBuf>,
}

impl Logger {
    /// A logger for `handler` (e.g. `pagerduty`).
    pub fn new(handler: &'static str, format: LogFormat, verbose: bool) -> Logger {
        Logger { handler, format, verbose, secrets: Vec::new(), syslog: None }
    }

    /// Also send every line to the syslog socket `socket` (`--syslog`, `/dev/log`).
    pub fn with_syslog(mut self, socket: Option<std::path::PathBuf>) -> Logger {
        self.syslog = socket;
        self
    }

    /// Mask these values in every later line.
    pub fn add_secrets(&mut self, secrets: impl IntoIterator<Item = String>) {
        self.secrets.extend(secrets.into_iter().filter(|s| !s.is_empty()));
    }

    /// The secrets registered so far.
    pub fn secrets(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }

    /// Render a line (without newline), masked, its message cut to [`MAX_MESSAGE_CHARS`];
    /// `None` when the level is filtered out.
    pub fn render(&self, level: Level, msg: &str) -> Option<String> {
        if level == Level::Debug && !self.verbose {
            return None;
        }
        let mut msg = secret::mask_all(msg, &self.secrets());
        // Cut after masking, so that no part of a secret is left where the cut falls.
        crate::template::cut_marked(&mut msg, MAX_MESSAGE_CHARS);
        Some(match self.format {
            LogFormat::Text => {
                let msg = escape_controls(&msg);
                match level {
                    Level::Info | Level::Debug => format!("{}: {msg}", self.handler),
                    _ => format!("{}: {}: {msg}", self.handler, level.name()),
                }
            }
            LogFormat::Json => escape_json_line(
                serde_json::json!({
                    "ts": crate::clock::rfc3339(crate::clock::now_unix()),
                    "handler": self.handler,
                    "level": level.name(),
                    "msg": msg,
                })
                .to_string(),
            ),
        })
    }

    /// Print one line on stderr, in one write (lines of handlers sharing a stderr do not
    /// interleave).
    pub fn log(&self, level: Level, msg: impl AsRef<str>) {
        if let Some(mut line) = self.render(level, msg.as_ref()) {
            if let Some(socket) = &self.syslog {
                self.send_syslog(socket, level, &line);
            }
            line.push('\n');
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    /// Send one rendered line to the syslog socket as one datagram, `<PRI>handler-NAME[PID]:
    /// line` (facility user; severity err, warning, info or debug), as `logger` does. Nagios 4
    /// and Icinga 2 keep a notification command's stderr only when it exits non-zero, so
    /// without this the lines of a page that went out (Redis unreachable, the ledger not
    /// written, a misspelt setting) reach no log. A stream socket (syslog-ng's
    /// `unix-stream("/dev/log")`, which refuses a datagram with EPROTOTYPE) gets the record on a
    /// connection of its own, ended by a newline ([`send_stream`]), as glibc's `syslog(3)` and
    /// `logger` fall back to. Never waits: a syslog daemon that is behind loses the line
    /// (stderr still has it); one that cannot be reached is said once on stderr.
    fn send_syslog(&self, socket: &std::path::Path, level: Level, line: &str) {
        use std::sync::atomic::{AtomicBool, Ordering};
        static SAID: AtomicBool = AtomicBool::new(false);
        let severity = match level {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug => 7,
        };
        let datagram = format!("<{}>handler-{}[{}]: {line}", 8 + severity, self.handler, std::process::id());
        let sent = std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(|s| s.send_to(datagram.as_bytes(), socket))
            .map(drop);
        let sent = match sent {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PROTOTYPE.raw_os_error()) => send_stream(socket, &datagram),
            other => other,
        };
        if let Err(e) = sent
            && e.kind() != std::io::ErrorKind::WouldBlock
            && !SAID.swap(true, Ordering::Relaxed)
        {
            // Rendered as every line is (a JSON object with `--log-format json`), never sent to
            // the socket it is about.
            let note = format!("--syslog: cannot send to {}: {e}; logging on stderr only", socket.display());
            if let Some(mut note) = self.render(Level::Warn, &note) {
                note.push('\n');
                let _ = std::io::stderr().lock().write_all(note.as_bytes());
            }
        }
    }

    /// [`Level::Info`].
    pub fn info(&self, msg: impl AsRef<str>) {
        self.log(Level::Info, msg)
    }

    /// [`Level::Warn`].
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.log(Level::Warn, msg)
    }

    /// [`Level::Debug`].
    pub fn debug(&self, msg: impl AsRef<str>) {
        self.log(Level::Debug, msg)
    }

    /// [`Level::Error`].
    pub fn error(&self, msg: impl AsRef<str>) {
        self.log(Level::Error, msg)
    }
}

/// Send `record` to the stream syslog socket `socket`: a connection of its own, the record and a
/// newline (the record holds none: lines are escaped, [`escape_controls`]), then closed. Never
/// waits: connected and written non-blocking, so a daemon whose backlog or buffer is full
/// fails it with `WouldBlock` (the line is then dropped there, or cut short and ended by the
/// close, never run into another record).
fn send_stream(socket: &std::path::Path, record: &str) -> std::io::Result<()> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC, None)?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(socket)?)?;
    let mut framed = String::with_capacity(record.len() + 1);
    framed.push_str(record);
    framed.push('\n');
    std::os::unix::net::UnixStream::from(fd).write_all(framed.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;

    #[test]
    fn text_and_json_lines_are_masked() {
        let mut l = Logger::new("pagerduty", LogFormat::Text, false);
        l.add_secrets(["0123456789abcdef0123".to_string()]);
        assert_eq!(l.render(Level::Info, "sent 0123456789abcdef0123").unwrap(), format!("pagerduty: sent {}0123", "*".repeat(16)));
        assert_eq!(l.render(Level::Warn, "x").unwrap(), "pagerduty: warn: x");
        assert_eq!(l.render(Level::Debug, "x"), None);
        let j = Logger::new("twilio", LogFormat::Json, true);
        let v: serde_json::Value = serde_json::from_str(&j.render(Level::Debug, "a \"b\"").unwrap()).unwrap();
        assert_eq!(v["handler"], "twilio");
        assert_eq!(v["level"], "debug");
        assert_eq!(v["msg"], "a \"b\"");
    }

    #[test]
    fn a_value_cannot_forge_or_recolour_a_text_line() {
        let l = Logger::new("pagerduty", LogFormat::Text, false);
        let forged = "web-01\npagerduty: triggered forged/host (dedup_key x) in 1 ms\r\u{1b}[2K\u{85}\u{2028}\u{202e}\u{7f}";
        let line = l.render(Level::Info, &format!("skipped {forged}/check: reason")).unwrap();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        assert_eq!(
            line,
            "pagerduty: skipped web-01\\npagerduty: triggered forged/host (dedup_key x) in 1 ms\\r\\u{1b}[2K\\u{85}\\u{2028}\\u{202e}\\u{7f}/check: reason"
        );
        // Text without controls is passed through untouched (no copy), backslashes included.
        assert!(matches!(escape_controls("C:\\temp ディスク 🔥"), std::borrow::Cow::Borrowed(_)));
        // JSON lines stay one line too.
        let j = Logger::new("pagerduty", LogFormat::Json, false).render(Level::Error, forged).unwrap();
        assert_eq!(j.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["msg"], forged);
        // Not even for readers that also end lines at NEL or U+2028, nor for a terminal's
        // bidirectional rendering: the JSON line holds none of them raw.
        assert!(!j.chars().any(|c| c.is_control() || ('\u{2028}'..='\u{206f}').contains(&c)), "{j:?}");
        assert!(j.contains(r"\u0085\u2028\u202e\u007f"), "{j}");
        assert_eq!(escape_json_line("{\"msg\":\"plain ディスク\"}".into()), "{\"msg\":\"plain ディスク\"}");
    }

    #[test]
    fn an_invisible_character_in_a_name_is_shown() {
        // A host named `web-01` with a zero-width space, a right-to-left mark, a soft hyphen,
        // a byte order mark and a tag character: never rendered as the real `web-01`.
        let spoof = "web-\u{200b}0\u{200f}1\u{ad}\u{feff}\u{e0041}";
        let l = Logger::new("pagerduty", LogFormat::Text, false);
        let line = l.render(Level::Info, &format!("skipped {spoof}/check: reason")).unwrap();
        assert_eq!(line, "pagerduty: skipped web-\\u{200b}0\\u{200f}1\\u{ad}\\u{feff}\\u{e0041}/check: reason");
        let j = Logger::new("pagerduty", LogFormat::Json, false).render(Level::Info, spoof).unwrap();
        assert!(j.is_ascii(), "{j}");
        assert!(j.contains(r"web-\u200b0\u200f1\u00ad\ufeff\udb40\udc41"), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["msg"], spoof, "the same value for a JSON reader");
        // Emoji and other visible text are kept as they are.
        assert!(matches!(escape_controls("🔥 ディスク — ok"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn a_long_message_is_cut_after_masking() {
        let mut log = Logger::new("pagerduty", LogFormat::Text, false);
        let secret = "s3cr3t-key-0123456789";
        log.add_secrets([secret.to_string()]);
        // The secret straddles the cut: masked first, so none of it is left.
        let msg = format!("{}{secret} and more", "k".repeat(MAX_MESSAGE_CHARS - 5));
        let masked = crate::secret::mask_all(&msg, &[secret]);
        let line = log.render(Level::Info, &msg).expect("info is shown");
        assert!(!line.contains("s3cr3"), "no part of the secret is left at the cut");
        let kept: String = masked.chars().take(MAX_MESSAGE_CHARS).collect();
        assert_eq!(line, format!("pagerduty: {kept} … [cut: {} characters]", masked.chars().count()));
        // A short one is left whole.
        assert_eq!(log.render(Level::Info, "triggered web-01/check_disk").as_deref(), Some("pagerduty: triggered web-01/check_disk"));
    }
}
