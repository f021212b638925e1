//! Flags every handler shares, as a clap `Args` group each handler flattens into its own.
//!
//! Flags left out stay `None` so that they do not override settings files; the defaults that
//! apply then are the settings defaults (documented in each flag's help text).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::{OsStringValueParser, TypedValueParser};
use serde_json::{Map, Value};

use crate::event::batch::CheckStatus;
use crate::event::exec::ExitCodes;
use crate::event::{Format, Invocation, Source};
use crate::log::LogFormat;

/// Shared command-line flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Settings file or directory of *.json files (repeatable; later wins) [default: /etc/sensu/conf.d when it exists]
    #[arg(long = "config", value_name = "PATH")]
    pub config: Vec<PathBuf>,

    /// Overall deadline for delivery, retries included (e.g. 10s, 2m; 100ms to 1day); also how long the event may take to arrive on stdin [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub timeout: Option<String>,

    /// Statuses that page, comma-separated: warning,critical,unknown, and info for Zabbix
    /// Information/Not classified [default: warning,critical,unknown]
    #[arg(long, value_name = "LIST")]
    pub severities: Option<String>,

    /// Service base URL (for proxies and tests)
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// Dedup state directory [default: /var/lib/pagerpipe, else $XDG_STATE_HOME/pagerpipe]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Spool directory for requests not delivered in time [default: /var/spool/pagerpipe, else $XDG_STATE_HOME/pagerpipe/spool]
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Incident ledger shared by several hosts: a `redis://` or `rediss://` URL (the help text
    /// gives its shape); `None`: the file store in `--state-dir`.
    #[arg(
        long,
        value_name = "URL",
        env = "PAGERPIPE_STATE_STORE",
        hide_env_values = true,
        help = "Incident ledger shared by several hosts: redis://[user:password@]host:port/db or rediss://… (password: prefer the environment) [default: the file store in --state-dir]"
    )]
    pub state_store: Option<String>,

    /// Deliver what the spool holds and exit, reading no event (for a cron job or systemd timer)
    #[arg(long, conflicts_with_all = ["input", "from", "dry_run", "list", "forget", "explain"])]
    pub flush: bool,

    /// List the open incidents in the ledger (key, state, since, count, references) and exit; reads no event
    #[arg(long, conflicts_with_all = ["input", "from", "dry_run", "forget", "explain"])]
    pub list: bool,

    /// Remove KEY's record from the ledger and exit (exit 65 when there is none); reads no event
    #[arg(long, value_name = "KEY", conflicts_with_all = ["input", "from", "dry_run", "explain"])]
    pub forget: Option<String>,

    /// Read the event and print every decision (filters, the ledger's record, the spool) without sending or writing anything
    #[arg(long, conflicts_with = "dry_run")]
    pub explain: bool,

    /// PEM file of CA certificates to trust instead of the bundled Mozilla roots, or `system` for the operating system's store (SSL_CERT_FILE / SSL_CERT_DIR honoured)
    #[arg(long, value_name = "FILE|system")]
    pub ca_file: Option<PathBuf>,

    /// Event format on stdin [default: detected]
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "from")]
    pub input: Option<Format>,

    /// Read the event from this system's environment/arguments instead of stdin; `cli`: from --check/--status/--output; `exec`: run the job after -- and page with its exit status and the tail of its output
    #[arg(long, value_enum, value_name = "SYSTEM")]
    pub from: Option<Source>,

    /// A Nagios/Icinga macro as NAME=VALUE, e.g. --field HOSTNAME=$HOSTNAME$ (repeatable; wins over NAGIOS_* environment)
    #[arg(long = "field", value_name = "NAME=VALUE", value_parser = OsStringValueParser::new().try_map(|s| parse_field(&crate::event::os_text(&s))))]
    pub fields: Vec<(String, String)>,

    /// Check name (--from cli and exec: required, with the entity it keys the incident; Mackerel action)
    #[arg(long, value_name = "NAME", value_parser = event_text())]
    pub check: Option<String>,

    /// Entity (host) name (--from cli, exec, Mackerel action) [default: this host's name]
    #[arg(long, value_name = "NAME", value_parser = event_text())]
    pub entity: Option<String>,

    /// Check status (--from cli): ok, warning, critical, unknown or 0-3; ok resolves the incident
    #[arg(long, value_enum, ignore_case = true, value_name = "STATUS", requires = "from")]
    pub status: Option<CheckStatus>,

    /// Check output (--from cli); - reads it from stdin (the last 1 MiB is kept)
    #[arg(long, value_name = "TEXT", value_parser = event_text(), allow_hyphen_values = true, requires = "from")]
    pub output: Option<String>,

    /// Kill the job after this long (--from exec; SIGTERM to its process group, SIGKILL 5s later), e.g. 30m; the page says it timed out [default: none]
    #[arg(long, value_name = "DURATION", value_parser = exec_timeout_arg, requires = "from")]
    pub exec_timeout: Option<std::time::Duration>,

    /// How the job's exit code maps to a status (--from exec): plain 0 ok, else critical; nagios 1 warning, 2 critical, 3 unknown [default: plain]
    #[arg(long, value_enum, value_name = "MAP", requires = "from")]
    pub exit_codes: Option<ExitCodes>,

    /// Zabbix alert script parameters: SENDTO SUBJECT MESSAGE
    #[arg(value_name = "ARG", requires = "from", value_parser = event_text())]
    pub args: Vec<String>,

    /// The batch job to run and its arguments (--from exec), after --; no shell: write sh -c '…' for one
    #[arg(last = true, value_name = "COMMAND", requires = "from")]
    pub command: Vec<OsString>,

    /// Print the request the event calls for (secrets masked) without reading the ledger, as for an incident with no record
    /// (--explain gives the ledger's verdict); send nothing, touch no state
    #[arg(long)]
    pub dry_run: bool,

    /// Log line format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Also send every log line to syslog (the journal), tagged handler-NAME: for Nagios 4 and Icinga 2, which keep a
    /// notification command's stderr only when it exits non-zero [default socket: /dev/log]
    #[arg(long, value_name = "SOCKET", num_args = 0..=1, require_equals = true, default_missing_value = "/dev/log")]
    pub syslog: Option<PathBuf>,

    /// Also log debug lines
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// A duration flag's syntax is checked here (a malformed one is a usage error, exit 2); the
/// value goes on as text, so that its range is checked with the settings and an out-of-range
/// value (`18446744073709551615s`, `500000000000y`) exits 78 naming the setting, like the same
/// value in a settings file.
fn duration_arg(s: &str) -> Result<String, String> {
    match crate::config::de::parse_duration(s) {
        Ok(_) | Err(crate::config::de::DurationError::TooLarge) => Ok(s.to_string()),
        Err(crate::config::de::DurationError::Invalid(why)) => Err(why),
    }
}

/// `--exec-timeout`: a duration above zero and at most [`crate::config::MAX_DURATION`] (10
/// years), as README's range rule says of every duration. `0` would kill every job at once and
/// page "timed out after 0s" (some tools read 0 as "no limit": here that is leaving the flag
/// out), and a longer one was taken silently. Either is a bad flag value: exit 2 before the job
/// runs, like any other mistake in the batch flags.
fn exec_timeout_arg(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() || d > crate::config::MAX_DURATION {
        return Err("give a duration above 0 and at most 10 years (e.g. 30m, 2h); leave --exec-timeout out for no limit".into());
    }
    Ok(d)
}

/// A file path flag read as text (lossily: a path that is not UTF-8 then fails to open, with
/// the setting named), for flags that become settings through [`flag_settings`], such as
/// `--routing-key-file`.
pub fn path_text() -> impl TypedValueParser<Value = String> {
    OsStringValueParser::new().map(|s| s.to_string_lossy().into_owned())
}

/// Event text from arguments is read as stdin is: bytes that are not UTF-8 as the Latin-1
/// characters of their values ([`crate::event::latin1_fallback`]), as the `NAGIOS_*`
/// environment is. A byte from a mis-encoded check output must not turn a page into a usage
/// error (exit 2) and lose it, and two host names that differ in such a byte must not become
/// one incident (as U+FFFD for both made them).
fn event_text() -> impl TypedValueParser<Value = String> {
    OsStringValueParser::new().map(|s| crate::event::os_text(&s))
}

/// A handler's own flags as a settings object: each `(setting, value)` given on the command
/// line (or from its environment variable) becomes a string setting; absent ones are left out so
/// that they do not override settings files.
pub fn flag_settings<'a>(flags: impl IntoIterator<Item = (&'static str, &'a Option<String>)>) -> Map<String, Value> {
    flags.into_iter().filter_map(|(name, value)| Some((name.to_string(), Value::from(value.as_deref()?)))).collect()
}

fn parse_field(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

impl CommonArgs {
    /// How long the event may take to arrive on stdin ([`crate::event::stdin::Stdin`]):
    /// `--timeout` given as a flag, else [`crate::config::DEFAULT_TIMEOUT`]. A `timeout` in a
    /// settings file does not set it: the files are read after the event. The page's deadline
    /// starts once the event is read.
    pub fn stdin_limit(&self) -> std::time::Duration {
        let (low, high) = crate::config::TIMEOUT_BOUNDS;
        let flag = self.timeout.as_deref().map(crate::config::de::parse_duration);
        match flag {
            Some(Ok(d)) => d.clamp(low, high),
            Some(Err(crate::config::de::DurationError::TooLarge)) => high,
            _ => crate::config::DEFAULT_TIMEOUT,
        }
    }

    /// What `--from` sources read: the environment, `--field`s, positional arguments,
    /// `--check`, `--entity`, and the batch sources' `--status`, `--output`, job and its options.
    pub fn invocation(&self) -> Invocation {
        Invocation {
            env: std::env::vars_os().map(|(k, v)| (crate::event::os_text(&k), crate::event::os_text(&v))).collect(),
            fields: self.fields.clone(),
            args: self.args.clone(),
            check: self.check.clone(),
            entity: self.entity.clone(),
            status: self.status,
            output: self.output.clone(),
            command: self.command.clone(),
            exec_timeout: self.exec_timeout,
            exit_codes: self.exit_codes,
        }
    }

    /// The settings these flags override, as a settings-section object.
    pub fn settings(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(t) = &self.timeout {
            m.insert("timeout".into(), Value::from(t.as_str()));
        }
        if let Some(s) = &self.severities {
            m.insert("severities".into(), Value::from(s.as_str()));
        }
        if let Some(u) = &self.api_url {
            m.insert("api_url".into(), Value::from(u.as_str()));
        }
        if let Some(d) = &self.state_dir {
            m.insert("state_dir".into(), Value::from(d.to_string_lossy().as_ref()));
        }
        if let Some(d) = &self.spool_dir {
            m.insert("spool_dir".into(), Value::from(d.to_string_lossy().as_ref()));
        }
        if let Some(u) = &self.state_store {
            m.insert("state_store".into(), Value::from(u.as_str()));
        }
        if let Some(f) = &self.ca_file {
            m.insert("ca_file".into(), Value::from(f.to_string_lossy().as_ref()));
        }
        m
    }
}
