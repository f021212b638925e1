//! The normalized monitoring event, and reading it from whatever the monitoring system gives.
//!
//! Every input format (Sensu 1.x, Sensu Go, and later Nagios, Zabbix, Mackerel) is parsed into
//! one [`Event`], so the filters, templates and providers never look at a source format. Each
//! format lives in its own module; this one owns the size-capped stdin reader, format
//! detection, and the small JSON helpers that make every parser name the field that is wrong.

pub mod batch;
pub mod exec;
pub mod mackerel;
pub mod nagios;
pub mod sensu;
pub mod sensu_go;
pub mod stdin;
pub mod zabbix;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::exit::{Code, OrExit, Result};

/// Largest event kept: 1 MiB (1 048 576 bytes). Larger JSON input has its long string values
/// cut to [`LONG_VALUE_CHARS`] first ([`read_capped`]); if it is still larger, its largest
/// parts are shrunk to fit (`fit`).
pub const MAX_EVENT_BYTES: u64 = 1024 * 1024;

/// Largest input read from stdin: 16 MiB (16 777 216 bytes). Larger input exits 65. A check
/// that prints megabytes (Sensu Go keeps a check's whole output unless `max_output_size` is
/// set) still pages: see [`read_capped`].
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Longest string value kept, in characters, from JSON input over [`MAX_EVENT_BYTES`]:
/// 16 384 (the page shows a fraction of that: PagerDuty's summary is 1 024).
pub const LONG_VALUE_CHARS: usize = 16 * 1024;

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Sensu Core 1.x event JSON (`client`, `check`, `action`, `occurrences`).
    #[default]
    Sensu,
    /// Sensu Go event JSON (`entity.metadata`, `check.metadata`, `check.state`).
    SensuGo,
    /// Mackerel webhook JSON (`"event": "alert"`).
    #[value(skip)]
    MackerelWebhook,
    /// Nagios 4 notification macros (environment or `--field`).
    #[value(skip)]
    Nagios,
    /// Icinga 2 notification values (environment or `--field`).
    #[value(skip)]
    Icinga,
    /// Zabbix alert script parameters.
    #[value(skip)]
    Zabbix,
    /// mackerel-agent check `action` environment.
    #[value(skip)]
    Mackerel,
    /// A script's flags (`--from cli`).
    #[value(skip)]
    Cli,
    /// A batch job run by the handler (`--from exec`).
    #[value(skip)]
    Exec,
}

impl Format {
    /// Human name used in log and error lines.
    pub fn name(self) -> &'static str {
        match self {
            Format::Sensu => "Sensu 1.x",
            Format::SensuGo => "Sensu Go",
            Format::MackerelWebhook => "Mackerel webhook",
            Format::Nagios => "Nagios",
            Format::Icinga => "Icinga 2",
            Format::Zabbix => "Zabbix",
            Format::Mackerel => "Mackerel check action",
            Format::Cli => "command line",
            Format::Exec => "batch job",
        }
    }
}

/// Monitoring systems that hand an alert over in the environment or arguments (`--from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// Nagios 4 `NAGIOS_*` environment macros or `--field NAME=VALUE`.
    Nagios,
    /// Icinga 2: the same names, or Icinga's (`notification.type`, `service.name`, …).
    Icinga,
    /// Zabbix alert script: `SENDTO SUBJECT MESSAGE`.
    Zabbix,
    /// mackerel-agent check action: `MACKEREL_STATUS`, `MACKEREL_PREVIOUS_STATUS`, …
    Mackerel,
    /// Any script: the result as flags, `--check NAME --status ok|warning|critical|unknown [--output TEXT|-]`.
    Cli,
    /// Any batch job: run `-- COMMAND [ARGS…]`; its exit status and the tail of its output are the event.
    Exec,
}

impl Source {
    /// Human name used in error lines.
    pub fn name(self) -> &'static str {
        match self {
            Source::Nagios => "Nagios",
            Source::Icinga => "Icinga 2",
            Source::Zabbix => "Zabbix",
            Source::Mackerel => "Mackerel",
            Source::Cli => "command line",
            Source::Exec => "batch job",
        }
    }
}

/// Everything an environment/argument source can be read from.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The process environment (or a test's).
    pub env: BTreeMap<String, String>,
    /// `--field NAME=VALUE` pairs, in order.
    pub fields: Vec<(String, String)>,
    /// Positional arguments (Zabbix `SENDTO SUBJECT MESSAGE`).
    pub args: Vec<String>,
    /// `--check NAME`.
    pub check: Option<String>,
    /// `--entity NAME`.
    pub entity: Option<String>,
    /// `--status` (`--from cli`).
    pub status: Option<batch::CheckStatus>,
    /// `--output TEXT`, `-` for stdin (`--from cli`).
    pub output: Option<String>,
    /// The job and its arguments after `--` (`--from exec`).
    pub command: Vec<OsString>,
    /// `--exec-timeout` (`--from exec`).
    pub exec_timeout: Option<Duration>,
    /// `--exit-codes` (`--from exec`).
    pub exit_codes: Option<exec::ExitCodes>,
}

impl Invocation {
    /// Read the event from this invocation's environment/arguments for `source`; `--from cli
    /// --output -` reads `stdin`, `--from exec` runs the job. Lines worth logging (how the job
    /// ended, an output cut to the cap, a Zabbix severity that could not be read) are added to
    /// `notes`.
    ///
    /// Errors: flags of another source, or a batch source's missing flags → usage (exit 2);
    /// otherwise the source's own (exit 65).
    pub fn read(&self, source: Source, stdin: impl Read, notes: &mut batch::Notes) -> Result<Event> {
        batch::check_flags(self, source)?;
        let event = match source {
            Source::Cli => batch::parse(self, stdin, notes),
            Source::Exec => exec::parse(self, notes),
            Source::Zabbix => zabbix::parse(self, notes),
            _ => return self.parse(source),
        };
        event.map_err(|f| f.context(format!("event ({})", source.name())))
    }

    /// Read the event from this invocation's environment/arguments for `source` (the
    /// environment and argument sources; `--from cli` here reads nothing from stdin, and
    /// `--from exec` runs the job).
    pub fn parse(&self, source: Source) -> Result<Event> {
        let event = match source {
            Source::Nagios => nagios::parse(self, Format::Nagios),
            Source::Icinga => nagios::parse(self, Format::Icinga),
            Source::Zabbix => zabbix::parse(self, &mut batch::Notes::new()),
            Source::Mackerel => mackerel::parse(self),
            Source::Cli | Source::Exec => return self.read(source, std::io::empty(), &mut batch::Notes::new()),
        };
        event.map_err(|f| f.context(format!("event ({})", source.name())))
    }
}

/// What the source said happened, when it says so explicitly (Sensu 1.x `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAction {
    /// Sensu 1.x `create`: a check is (still) in a non-OK state.
    Create,
    /// Sensu 1.x `resolve`: the check returned to OK.
    Resolve,
    /// Back to OK, told by a message every monitored object gets, paged or not (Nagios
    /// DOWNTIMEEND in OK; mackerel-agent's first run of a check, OK, after it started): resolves
    /// only an incident the ledger knows open.
    ResolveIfOpen,
    /// Sensu 1.x `flapping`: the check is flapping between states.
    Flapping,
    /// Nagios/Icinga ACKNOWLEDGEMENT: someone is on it.
    Acknowledge,
}

/// A skip decided by the source format itself (Mackerel: no state change; Nagios: DOWNTIME).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSkip {
    /// Why.
    pub reason: String,
    /// Log at debug level only (e.g. Mackerel's every-run action with no change).
    pub quiet: bool,
}

/// Whose clock an event's [`Event::timestamp`] was read from.
///
/// The ledger orders an incident's actions by event time (DESIGN.md "The incident ledger",
/// invariant 1), so a time from the monitored host could supersede, and so drop, its own later
/// pages: a host whose clock stepped back an hour would have every failure in that hour taken
/// for older than the resolve already applied. DESIGN.md "Trust": a monitored host must not be
/// able to drop a page. A [`TimeSource::Host`] time is therefore bounded by the time of receipt
/// ([`crate::state::ordering_time`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeSource {
    /// The monitoring server's clock: Nagios/Icinga `$TIMET$`, a Mackerel alert's times (the
    /// latest of `createdAt`, `statusChangedAt` and `closedAt`), or no time at all (the time of
    /// receipt is used).
    #[default]
    Monitoring,
    /// The monitored host's clock: Sensu 1.x and Sensu Go `check.executed` (and the event
    /// `timestamp`), set by the client or agent on the host, or by whatever wrote the result
    /// to its socket or API.
    Host,
    /// This machine's clock as the handler read the event (`--from cli`, the end of a
    /// `--from exec` job): the time of receipt under another name, ordered as one
    /// ([`crate::state::TimeOrigin::Receipt`]). Hosts sharing a ledger run such scripts for
    /// one incident (`--entity`) on clocks a second or more apart: taken for the event's own
    /// time, a recovery spooled on a host whose clock is behind read as older than the
    /// failure another host paged a moment before it, and was superseded.
    Receipt,
}

/// One monitoring event, normalized.
///
/// Status follows the Nagios plugin convention that every source maps to:
/// 0 OK, 1 WARNING, 2 CRITICAL, 3 (or anything larger) UNKNOWN.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    /// The format it was read from.
    pub format: Format,
    /// The entity (Sensu 1.x client, or proxy `check.source`; Sensu Go `entity.metadata.name`).
    pub entity: String,
    /// The check name.
    pub check: String,
    /// Sensu Go namespace, when given.
    pub namespace: Option<String>,
    /// Check status, 0–3 (larger values are treated as UNKNOWN).
    pub status: u32,
    /// Check output as given (may be multi-line, may be empty).
    pub output: String,
    /// Explicit action from the source, if it states one.
    pub action: Option<SourceAction>,
    /// Consecutive events with the current status (Sensu 1.x `occurrences`, Sensu Go
    /// `check.occurrences`).
    pub occurrences: u64,
    /// Recent statuses, oldest first (Sensu 1.x `check.history`, Sensu Go `check.history[].status`).
    pub history: Vec<u32>,
    /// True when the event is silenced (Sensu 1.x `silenced`, Sensu Go `check.is_silenced`).
    pub silenced: bool,
    /// Check interval in seconds, when known.
    pub interval: Option<u64>,
    /// Check attribute `refresh` in seconds (Sensu 1.x check definition), when given.
    pub refresh: Option<u64>,
    /// Minimum occurrences before handling (Sensu 1.x check attribute `occurrences`), when given.
    pub min_occurrences: Option<u64>,
    /// When the check ran, Unix seconds (`check.executed`, else the event `timestamp`).
    pub timestamp: Option<i64>,
    /// Whose clock [`Event::timestamp`] was read from, which bounds how far the ledger trusts
    /// it ([`crate::state::ordering_time`]).
    pub time_source: TimeSource,
    /// The monitoring server's own number of the state change the event reports (Nagios
    /// `$SERVICEEVENTID$`, `$HOSTEVENTID$`: one counter, incremented at every state change),
    /// which orders events of one incident within the same second of [`Event::timestamp`]
    /// ([`crate::state::is_later`]). Used only beside a timestamp.
    pub sequence: Option<u64>,
    /// The check command line, when given.
    pub command: Option<String>,
    /// Labels (Sensu Go entity labels overlaid with check labels; Sensu 1.x: none).
    pub labels: BTreeMap<String, String>,
    /// Settings overrides from the *check*, per settings section (e.g. `pagerduty`): Sensu 1.x
    /// check attributes that are objects (`check.pagerduty = {...}`), plus `pager_team`; Sensu
    /// Go check annotations `pagerpipe/<section>.<setting>`; Nagios/Icinga custom variables.
    /// Which of them may be used is decided by [`crate::trust`].
    pub overrides: BTreeMap<String, Map<String, Value>>,
    /// Settings overrides from the *entity* (Sensu Go entity annotations
    /// `pagerpipe/<section>.<setting>`, written on the monitored host), per section; trusted
    /// less than the check's ([`crate::trust`]), and overridden by them.
    pub entity_overrides: BTreeMap<String, Map<String, Value>>,
    /// A severity the source states in PagerDuty's words (`info`/`warning`/`error`/`critical`;
    /// Zabbix), used instead of the status-based mapping.
    pub severity: Option<String>,
    /// Zabbix's own severity, which the `zabbix_severities` setting maps to the word the
    /// `severities` filter sees.
    pub zabbix_severity: Option<zabbix::ZabbixSeverity>,
    /// An incident key the source provides (Zabbix `incident_key:` or `{id}-{hostname}`, a
    /// Mackerel webhook's `alert.id`): the `{incident_key}` placeholder, which is the default dedup key template.
    pub incident_key: Option<String>,
    /// Zabbix `{ALERT.SENDTO}`: a per-recipient routing key, phone number or API key.
    pub send_to: Option<String>,
    /// A link back to the monitoring system (Zabbix `url:`, Mackerel `alert.url`).
    pub url: Option<String>,
    /// The entity's address (Nagios `HOSTADDRESS`, Zabbix `ip:`).
    pub address: Option<String>,
    /// Set when the source format itself says there is nothing to do.
    pub skip: Option<SourceSkip>,
    /// The source's own name for what happened (Nagios/Icinga `NOTIFICATIONTYPE`, upper-case),
    /// which the `notification_types` setting can map to an action.
    pub source_type: Option<String>,
    /// Fields that only tune how the event is handled (a Sensu 1.x check definition's
    /// `refresh`, `interval`, `occurrences`; `check.executed`) that the event held in a form
    /// nothing reads (`"refresh": "30m"`): left out, as if not given, so that the page still goes
    /// out. One line each, naming the field, for the log (warn).
    pub ignored: Vec<String>,
}

impl Event {
    /// An input of `format` that pages nobody (a Mackerel webhook that is no alert, a Sensu Go
    /// metrics event): `entity`/`check` name it in the log line, `reason` says why (logged at
    /// info level).
    pub fn skipped(format: Format, entity: String, check: &str, reason: String) -> Event {
        Event {
            format,
            entity,
            check: check.to_string(),
            occurrences: 1,
            skip: Some(SourceSkip { reason, quiet: false }),
            ..Event::default()
        }
    }

    /// Status as a word: `ok`, `warning`, `critical` or `unknown`.
    pub fn status_name(&self) -> &'static str {
        status_name(self.status)
    }

    /// The monitoring system's own key for this incident: the source's key when it gives one
    /// (Zabbix `incident_key:` line, else `{TRIGGER.ID}-{HOST.NAME}`; a Mackerel webhook's
    /// `alert.id`), else `{entity}/{check}`
    /// (the Ruby handlers' key), else — a Sensu Go event outside the `default` namespace —
    /// `{namespace}/{entity}/{check}`. The `{incident_key}` template placeholder and the
    /// default key.
    ///
    /// Sensu Go names an entity and a check within a namespace, and an agent chooses both its
    /// name and its namespace: `web-01` in `dev` is not `web-01` in `prod`, and a key without
    /// the namespace let one's recovery resolve the other's incident, and its failure be
    /// suppressed as "already notified" by the other's. Sensu Go names hold no `/`, so the
    /// three parts cannot run into each other; the `default` namespace keeps the key it had.
    pub fn source_key(&self) -> String {
        match (&self.incident_key, self.qualifying_namespace()) {
            (Some(k), _) => k.clone(),
            (None, Some(ns)) => format!("{ns}/{}/{}", self.entity, self.check),
            (None, None) => format!("{}/{}", self.entity, self.check),
        }
    }

    /// The namespace that is part of this event's identity ([`Event::source_key`]): a Sensu Go
    /// namespace other than `default`; `None` for every other event.
    pub fn qualifying_namespace(&self) -> Option<&str> {
        self.namespace.as_deref().filter(|ns| self.format == Format::SensuGo && !ns.is_empty() && *ns != SENSU_GO_DEFAULT_NAMESPACE)
    }

    /// The status before this one, from the history, if the history holds one.
    pub fn previous_status(&self) -> Option<u32> {
        let n = self.history.len();
        if n >= 2 { Some(self.history[n - 2]) } else { None }
    }

    /// The check's settings overrides for `section` ([`Event::overrides`]), empty when none.
    pub fn overrides_for(&self, section: &str) -> Map<String, Value> {
        self.overrides.get(section).cloned().unwrap_or_default()
    }

    /// The credentials this event carries in the check's settings overrides, in every
    /// section: not only the reading handler's (a check's own Slack token travels in the event
    /// handler-pagerduty reads too), and whether or not [`crate::trust`] lets them be used. The
    /// values of the secret settings ([`crate::config::secret_values`]: `pagerpipe/slack.token`,
    /// Sensu 1.x `check.twilio.auth_token`, Nagios `_SERVICEREACTIO_API_KEY` …), each also as
    /// it is written inside a JSON string when that differs: the event is printed as JSON when
    /// it can be neither delivered nor spooled, and echoed by `--explain` and `--dry-run`, each
    /// line masked with these. Not the entity's ([`Event::entity_credentials`]): the monitored
    /// host writes those, and a word it chose must not be masked in every line about its event.
    pub fn credentials(&self) -> Vec<String> {
        with_escaped(self.overrides.values().flat_map(crate::config::secret_values).collect())
    }

    /// The credentials the entity's settings overrides carry (as [`Event::credentials`]):
    /// masked only in the event itself where it is printed, not in other lines.
    pub fn entity_credentials(&self) -> Vec<String> {
        with_escaped(self.entity_overrides.values().flat_map(crate::config::secret_values).collect())
    }
}

/// `out`, each also as it is written inside a JSON string when that differs, sorted, once each.
fn with_escaped(mut out: Vec<String>) -> Vec<String> {
    let escaped: Vec<String> =
        out.iter().filter_map(|s| serde_json::to_string(s).ok().map(|q| q[1..q.len() - 1].to_string()).filter(|e| e != s)).collect();
    out.extend(escaped);
    out.sort();
    out.dedup();
    out
}

/// Sensu Go's `default` namespace: its events keep the key `{entity}/{check}` ([`Event::source_key`]).
pub const SENSU_GO_DEFAULT_NAMESPACE: &str = "default";

/// Status word for a status code: 0 `ok`, 1 `warning`, 2 `critical`, anything else `unknown`.
pub fn status_name(status: u32) -> &'static str {
    match status {
        0 => "ok",
        1 => "warning",
        2 => "critical",
        _ => "unknown",
    }
}

/// Longest piece of input quoted in an error message, in characters; longer values are cut
/// with `…`, so that a hostile event (a 1 MiB check name, a 100 KB macro) still gives one short
/// line on stderr.
pub const MAX_QUOTED_CHARS: usize = 64;

/// `value` quoted for an error message (Rust string escaping, so control characters and NULs
/// are visible), cut to [`MAX_QUOTED_CHARS`] characters.
pub fn quoted(value: &str) -> String {
    if value.chars().count() <= MAX_QUOTED_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX_QUOTED_CHARS - 1).collect();
        format!("{head:?}…")
    }
}

/// A JSON value shown in an error message: at most [`MAX_QUOTED_CHARS`] characters of its JSON text.
pub(crate) fn shown_json(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= MAX_QUOTED_CHARS {
        text
    } else {
        let head: String = text.chars().take(MAX_QUOTED_CHARS - 1).collect();
        format!("{head}…")
    }
}

/// What to do about a bad event on stdin, appended to its error line.
const FIX_EVENT: &str = "fix the event the monitoring system sends";

/// An event as read from stdin ([`read_capped`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The event's bytes, at most [`MAX_EVENT_BYTES`].
    pub bytes: Vec<u8>,
    /// A line for the log when long values were cut to fit, saying how many bytes came in.
    pub cut: Option<String>,
    /// A line for the log when stdin stayed open after a whole event, which was then read
    /// without waiting for the end of input ([`stdin::Stdin`]).
    pub open: Option<String>,
    /// A line for the log when the input was not UTF-8 and was read with Latin-1 characters in place of
    /// the bytes that were not ([`read_capped`]).
    pub not_utf8: Option<String>,
    /// A line for the log when values nested deeper than [`MAX_DEPTH`] levels were replaced
    /// by a mark (`prune_deep`), naming where.
    pub deep: Option<String>,
}

/// Read an event from `input`.
///
/// Input up to [`MAX_EVENT_BYTES`] is kept as it is. Larger input, up to [`MAX_INPUT_BYTES`],
/// is read as JSON and every string value longer than [`LONG_VALUE_CHARS`] characters (in
/// practice the check output) is cut to that many, with ` … [cut: N characters]` at the end,
/// so that a check that printed megabytes still pages ([`Input::cut`] says so).
///
/// Still larger (many values: a monitored host's entity labels and annotations, or Sensu 1.x
/// client attributes, which every event of the host carries, its keepalive too), the largest
/// parts are shrunk to fair shares of 1 MiB (`fit`): a host cannot silence the pages about
/// itself by writing more than 1 MiB of them.
///
/// Input read from [`stdin::Stdin`] ends at end of input, or once it pauses after a whole JSON
/// value (the sender left the pipe open: [`Input::open`] says so), or at its time limit.
///
/// Bytes that are not UTF-8 (a check output in Latin-1 or CP1252 that a Sensu 1.x client
/// passed on as it was: `accès refusé` from a French Windows host) are read as the Latin-1
/// characters of their values (`latin1_fallback`), so that the event still pages, with a line
/// saying so ([`Input::not_utf8`]): refused as invalid JSON, the output of the monitored host
/// cost its page. (They can only be inside strings: anywhere else the input is no JSON either
/// way.)
///
/// Errors (exit 65): read failure, empty input, input over [`MAX_INPUT_BYTES`], input still
/// open at the time limit without a whole JSON value, or input over [`MAX_EVENT_BYTES`] that is
/// not JSON (or, which `fit` should never leave, still over it).
pub fn read_capped(input: impl Read) -> Result<Input> {
    let (mut buf, open) = read_input(input)?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(Code::DataErr.msg(format!(
            "event: input is larger than {MAX_INPUT_BYTES} bytes (16 MiB); shorten the check output (Sensu Go: max_output_size)"
        )));
    }
    let not_utf8 = std::str::from_utf8(&buf).is_err().then(|| {
        buf = latin1_fallback(&buf).into_bytes();
        "event: stdin is not UTF-8; the bytes that are not (text in another encoding) are read as Latin-1 characters".to_string()
    });
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Err(Code::DataErr.msg("event: stdin is empty; pipe the event JSON into the handler"));
    }
    let pruned = prune_deep(&buf);
    let deep = (pruned.count > 0).then(|| {
        format!(
            "event: {} value(s) nested deeper than {MAX_DEPTH} levels replaced by {DEEP_MARK:?} (in {}): nothing is read that deep",
            pruned.count,
            pruned.places.join(", ") + if pruned.more_places { ", …" } else { "" },
        )
    });
    if let Cow::Owned(bytes) = pruned.bytes {
        buf = bytes;
    }
    if buf.len() as u64 <= MAX_EVENT_BYTES {
        return Ok(Input { bytes: buf, cut: None, open, not_utf8, deep });
    }
    let mut value: Value = serde_json::from_slice(&buf).map_err(|e| {
        Code::DataErr.msg(format!("event: input of {} bytes is larger than 1 MiB and not valid JSON ({e}); {FIX_EVENT}", buf.len()))
    })?;
    let cut = cut_long_strings(&mut value, LONG_VALUE_CHARS);
    let mut bytes = serde_json::to_vec(&value).or_exit(Code::DataErr)?;
    let mut notice = format!(
        "event: input of {} bytes is larger than 1 MiB: {cut} long value(s) (the check output) cut to {LONG_VALUE_CHARS} characters",
        buf.len()
    );
    if bytes.len() as u64 > MAX_EVENT_BYTES {
        // Still too large: many values (a host's labels, annotations or client attributes).
        // The largest parts are shrunk to fair shares of 1 MiB, so the small fields that name
        // and key the event are kept whole, and the page goes out.
        let mut fitted = Fitted::default();
        fit(&mut value, FIT_BUDGET, &mut fitted, "", false);
        bytes = serde_json::to_vec(&value).or_exit(Code::DataErr)?;
        if bytes.len() as u64 > MAX_EVENT_BYTES {
            return Err(Code::DataErr.msg(format!(
                "event: input of {} bytes is larger than {MAX_EVENT_BYTES} bytes (1 MiB) even with its long values cut; {FIX_EVENT}",
                buf.len()
            )));
        }
        notice = format!(
            "event: input of {} bytes is larger than 1 MiB even with its long values cut: its largest parts shrunk to fit \
             ({} more value(s) cut, {} member(s) left out, in {}: the host's labels, annotations or attributes)",
            buf.len(),
            fitted.cut,
            fitted.dropped,
            fitted.places(),
        );
    }
    Ok(Input { bytes, cut: Some(notice), open, not_utf8, deep })
}

/// `bytes` as UTF-8 text, each byte that is not part of a UTF-8 sequence read as the Latin-1
/// (ISO 8859-1) character of its value: `caf\xe9` → `café`. Not U+FFFD for all of them: two
/// hosts named `h\xe9` and `h\xe8` would then be one incident (`h\u{fffd}/disk`), one's
/// failure skipped as the other's repeat and its recovery resolving the other's. Every byte
/// keeps its own character, so distinct names stay distinct (and Latin-1 or CP1252 text reads as
/// meant, mostly). The one rule for event text from stdin, arguments and the environment.
pub fn latin1_fallback(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.to_string();
    }
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|&b| char::from(b)));
    }
    out
}

/// An argument or environment value as event text ([`latin1_fallback`]).
#[cfg(unix)]
pub fn os_text(s: &std::ffi::OsStr) -> String {
    latin1_fallback(std::os::unix::ffi::OsStrExt::as_bytes(s))
}

/// An argument or environment value as event text (lossily where bytes are not Unix's).
#[cfg(not(unix))]
pub fn os_text(s: &std::ffi::OsStr) -> String {
    s.to_string_lossy().into_owned()
}

/// Read `input` to its end, at most [`MAX_INPUT_BYTES`] + 1 bytes; or, when it pauses or
/// times out ([`stdin::Stdin`]), as far as a whole JSON value: the bytes, and a line for the
/// log when the input was left open.
fn read_input(mut input: impl Read) -> Result<(Vec<u8>, Option<String>)> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let open = |buf: &[u8]| format!("event: stdin stayed open after the event ({} bytes); read without waiting for its end", buf.len());
    loop {
        // Straight into `buf` (std's `read_to_end` grows it without zeroing a chunk first);
        // what came before an error stays in `buf`.
        let left = (MAX_INPUT_BYTES + 1).saturating_sub(buf.len() as u64);
        match (&mut input).take(left).read_to_end(&mut buf) {
            // The end of the input, or one byte more than the limit (the caller refuses it).
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A pause, or the time limit: a whole event is read without waiting for the end.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if whole_json(&buf) {
                    let line = open(&buf);
                    return Ok((buf, Some(line)));
                }
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    continue;
                }
                let what = match serde_json::from_slice::<serde::de::IgnoredAny>(&buf) {
                    _ if buf.is_empty() => "nothing came".to_string(),
                    Err(e) => format!("{} bytes came, not a whole event ({e})", buf.len()),
                    Ok(_) => format!("{} bytes came, JSON but not an event object", buf.len()),
                };
                return Err(Code::DataErr.msg(format!(
                    "event: stdin was still open at the time limit (--timeout) and {what}; the sender must write the event and close stdin"
                )));
            }
            Err(e) => return Err(Code::DataErr.msg(format!("event: cannot read stdin ({e}); pipe the event JSON into the handler"))),
        }
    }
    Ok((buf, None))
}

/// Whether `buf` is one whole JSON object (an event) and nothing else but whitespace (at any
/// depth: [`prune_deep`]).
fn whole_json(buf: &[u8]) -> bool {
    buf.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'}')
        && serde_json::from_slice::<serde::de::IgnoredAny>(&prune_deep(buf).bytes).is_ok()
}

/// Deepest nesting of arrays and objects read from an event: 64 levels (the event object is
/// the first). Deeper values are replaced by [`DEEP_MARK`] before the event is parsed
/// (`prune_deep`).
pub const MAX_DEPTH: usize = 64;

/// What a value nested deeper than [`MAX_DEPTH`] levels becomes (a JSON string).
pub const DEEP_MARK: &str = "[cut: nested deeper than 64 levels]";

/// [`prune_deep`]'s result.
#[derive(Debug)]
struct Pruned<'a> {
    /// The JSON text, deep values replaced (borrowed when there were none).
    bytes: Cow<'a, [u8]>,
    /// How many values were replaced.
    count: usize,
    /// Where, the first [`FIT_PLACES_SHOWN`]: `client.custom[]…`.
    places: Vec<String>,
    /// Whether there were more places than those.
    more_places: bool,
}

/// One open array or object, for [`prune_deep`].
struct Open {
    /// An object (else an array).
    object: bool,
    /// The object's last key, as a range of the input (with its quotes).
    key: Option<(usize, usize)>,
}

/// `json` with every array or object nested deeper than [`MAX_DEPTH`] levels replaced by the
/// string [`DEEP_MARK`], by a scan of the text: no recursion, so no depth overflows a stack.
///
/// serde_json refuses JSON nested more than 128 levels ("recursion limit exceeded"), which
/// it must, as everything that reads a parsed value (drop included) recurses. But the
/// monitored host writes much of an event (a Sensu 1.x client's attributes in client.json, a
/// Sensu Go agent's labels): a value of its own nested 127 levels deep cost every page about
/// it, keepalive included. Nothing the handler reads is nested more than a few levels, so the
/// deep part is cut out before parsing, and the page goes out.
///
/// A deep value shorter than the mark's 37 bytes (at most 18 levels more) is kept as it is, so
/// that the text never grows (the size limits hold for what is parsed) and nothing parsed is
/// nested more than 82 levels. Text that is no JSON (unbalanced or mismatched
/// brackets, an unended string, a bracket where no value can be) is left as it is from
/// there on, for the parser to refuse.
fn prune_deep(json: &[u8]) -> Pruned<'_> {
    let mark = serde_json::to_vec(DEEP_MARK).unwrap_or_default();
    let mut out = Pruned { bytes: Cow::Borrowed(json), count: 0, places: Vec::new(), more_places: false };
    let mut text: Vec<u8> = Vec::new();
    // `json[..copied]` is in `text`.
    let mut copied = 0;
    let mut open: Vec<Open> = Vec::with_capacity(MAX_DEPTH);
    // The last byte seen outside a string that is not whitespace (`"` for a string).
    let mut prev = 0u8;
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        match b {
            b'"' => {
                let Some(end) = string_end(json, i) else { break };
                if let Some(o) = open.last_mut().filter(|o| o.object && matches!(prev, b'{' | b',')) {
                    o.key = Some((i, end));
                }
                prev = b'"';
                i = end;
                continue;
            }
            b'[' | b'{' if open.len() == MAX_DEPTH => {
                let value_here = open.last().is_some_and(|o| if o.object { prev == b':' } else { matches!(prev, b'[' | b',') });
                let Some(end) = value_end(json, i).filter(|_| value_here) else { break };
                if end - i >= mark.len() {
                    text.extend_from_slice(&json[copied..i]);
                    text.extend_from_slice(&mark);
                    copied = end;
                    out.count += 1;
                    let place = deep_place(json, &open);
                    if !out.places.contains(&place) {
                        if out.places.len() < FIT_PLACES_SHOWN {
                            out.places.push(place);
                        } else {
                            out.more_places = true;
                        }
                    }
                }
                prev = b'"';
                i = end;
                continue;
            }
            b'[' | b'{' => open.push(Open { object: b == b'{', key: None }),
            b']' | b'}' => {
                // A bracket closing what is not open: no JSON.
                let Some(_closed) = open.pop().filter(|o| o.object == (b == b'}')) else { break };
            }
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            prev = b;
        }
        i += 1;
    }
    if out.count > 0 {
        text.extend_from_slice(&json[copied..]);
        out.bytes = Cow::Owned(text);
    }
    out
}

/// The index just past the end of the JSON string starting (with its quote) at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The index just past the end of the array or object starting at `start`, its brackets
/// matched (on the heap: any depth).
fn value_end(json: &[u8], start: usize) -> Option<usize> {
    let mut open: Vec<u8> = Vec::new();
    let mut i = start;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i = string_end(json, i)?;
                continue;
            }
            b'[' => open.push(b']'),
            b'{' => open.push(b'}'),
            b @ (b']' | b'}') => {
                if open.pop() != Some(b) {
                    return None;
                }
                if open.is_empty() {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where a value inside `open` is, for the log: its first three levels below the event
/// (`client.custom[]…`), keys cut ([`child_path`]).
fn deep_place(json: &[u8], open: &[Open]) -> String {
    let mut place = String::new();
    for o in open.iter().take(3) {
        let name = match o.key {
            Some((from, to)) if o.object => serde_json::from_slice::<String>(&json[from..to]).unwrap_or_default(),
            _ if o.object => String::new(),
            _ => "[]".to_string(),
        };
        place = child_path(&place, &name);
    }
    if open.len() > 3 {
        place.push('…');
    }
    place
}

/// What [`fit`] aims at: 1 MiB less a margin (64 KiB); [`fit`] keeps within it.
const FIT_BUDGET: usize = MAX_EVENT_BYTES as usize - 64 * 1024;

/// The shortest share a member is kept for, in bytes: less, and it is left out.
const FIT_MIN_SHARE: usize = 24;

/// What [`fit`] did.
#[derive(Debug, Default)]
struct Fitted {
    /// Strings cut.
    cut: usize,
    /// Members (object keys and values, array items) left out.
    dropped: usize,
    /// Where (the objects and arrays whose members were cut or left out, as paths such as
    /// `entity.metadata.labels`), the first [`FIT_PLACES_SHOWN`].
    places: Vec<String>,
    /// Whether there were more places than those.
    more_places: bool,
}

/// How many places [`Fitted::places`] names.
const FIT_PLACES_SHOWN: usize = 4;

impl Fitted {
    /// Note that members of the object or array at `path` were cut or left out.
    fn at(&mut self, path: &str) {
        let path = if path.is_empty() { "the event's top level" } else { path };
        if !self.places.iter().any(|p| p == path) {
            if self.places.len() < FIT_PLACES_SHOWN {
                self.places.push(path.to_string());
            } else {
                self.more_places = true;
            }
        }
    }

    /// The places, for the log line: `entity.metadata.labels, client.tags[]`.
    fn places(&self) -> String {
        let mut out = self.places.join(", ");
        if self.more_places {
            out.push_str(", …");
        }
        out
    }
}

/// The path of member `name` (an object key, or `[]` for an array item) of the value at
/// `parent`, for [`Fitted::places`]: `entity.metadata.labels`, `client.tags[]`. A long key is
/// quoted and cut ([`quoted`]).
fn child_path(parent: &str, name: &str) -> String {
    let name = if name.chars().count() <= MAX_QUOTED_CHARS { name.to_string() } else { quoted(name) };
    match (parent.is_empty(), name.starts_with('[')) {
        (true, _) => name,
        (false, true) => format!("{parent}{name}"),
        (false, false) => format!("{parent}.{name}"),
    }
}

/// Length in bytes of `c` inside a JSON string as serde_json writes it: `\"`, `\\` and the
/// control characters with a short escape take 2, the other control characters 6 (`\u001f`).
fn json_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The longest head of `s` that, with `…` after it, is at most `budget` bytes of JSON; the
/// empty string when not even `"…"` fits. For a share too short to hold the mark
/// [`crate::template::cut_marked`] adds (` … [cut: N characters]`, which is longer than a
/// short label), so that a cut value never takes more than its share.
fn head_within(s: &str, budget: usize) -> String {
    let mut len = 2 + '…'.len_utf8();
    if len > budget {
        return String::new();
    }
    let mut end = 0;
    for (i, c) in s.char_indices() {
        len += json_char_len(c);
        if len > budget {
            break;
        }
        end = i + c.len_utf8();
    }
    format!("{}…", &s[..end])
}

/// Serialized length of `value` in bytes (compact JSON, as [`read_capped`] writes it).
fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |b| b.len())
}

/// Members the event is read from, at any depth ([`fit`] serves them first): what names, keys,
/// times and routes it in Sensu 1.x and Sensu Go events (`client.name`, `check.status`,
/// `entity.metadata.name`, `check.executed`, `occurrences`, `history` …) and what carries an
/// override (a check attribute named after a handler, `pager_team`, the `annotations` object).
/// An annotation named `pagerpipe/…` is served first inside `annotations` too.
const FIT_FIRST: &[&str] = &[
    "action",
    "annotations",
    "check",
    "client",
    "command",
    "entity",
    "entity_class",
    "executed",
    "history",
    "id",
    "interval",
    "is_silenced",
    "issued",
    "metadata",
    "name",
    "namespace",
    "occurrences",
    "occurrences_watermark",
    "output",
    "pager_team",
    "pagerduty",
    "reactio",
    "refresh",
    "silenced",
    "slack",
    "source",
    "state",
    "status",
    "timestamp",
    "twilio",
];

/// Whether member `key` of an object (of an `annotations` object: `in_annotations`) is one
/// [`fit`] serves first: one of [`FIT_FIRST`], or an annotation named `pagerpipe/…`. Only
/// inside `annotations`: anywhere else a host could name a hundred thousand keys `pagerpipe/…`
/// beside `client.name` and crowd the name out again.
fn fit_first(key: &str, in_annotations: bool) -> bool {
    FIT_FIRST.contains(&key) || (in_annotations && key.starts_with(sensu_go::ANNOTATION_PREFIX))
}

/// Shrink `value` to at most `budget` bytes of JSON: a string is cut (marked); an object or
/// array gives its members fair shares, smallest first, so that every member within its share
/// is kept whole and only the larger ones shrink in turn; a member whose share is too short to
/// say anything ([`FIT_MIN_SHARE`]) is left out. In an object the members the event is read
/// from ([`FIT_FIRST`]) get their shares first, of the whole budget, and the others share what
/// is left: tens of thousands of tiny labels or client attributes beside `client.name` can
/// never crowd the name out. `path`: where `value` is in the event ([`child_path`], for the
/// log line); `in_annotations`: `value` is an `annotations` object ([`fit_first`]). Numbers,
/// booleans and null are kept.
///
/// An object or an array always ends within `budget` (at least 2 bytes): a string within its
/// share, each member within its own (a string whose share cannot hold the cut mark keeps
/// what fits of its head, [`head_within`]), and the members that still do not fit (a number
/// longer than its share, which nothing shrinks) are left out, largest first, the members
/// served first last ([`overflow`]). Thousands of members a few bytes over their shares put
/// an event of 30 000 short labels back over 1 MiB: exit 65, the page lost.
fn fit(value: &mut Value, budget: usize, fitted: &mut Fitted, path: &str, in_annotations: bool) {
    if json_len(value) <= budget {
        return;
    }
    match value {
        Value::String(s) => {
            // A character is at most 6 bytes of JSON (`\u001f`): start where most text fits.
            let mut max = budget.saturating_sub(48) / 2;
            loop {
                let mut t = s.clone();
                crate::template::cut_marked(&mut t, max);
                if json_len(&Value::String(t.clone())) <= budget {
                    *s = t;
                    break;
                }
                if max == 0 {
                    // Not even the mark fits: what fits of the head, and `…`.
                    *s = head_within(s, budget);
                    break;
                }
                max /= 2;
            }
            fitted.cut += 1;
        }
        Value::Array(items) => {
            let lens: Vec<usize> = items.iter().map(json_len).collect();
            let keep = shares(&lens, budget.saturating_sub(2), &vec![0; lens.len()]);
            let mut i = 0;
            items.retain(|_| {
                i += 1;
                keep[i - 1].is_some()
            });
            let kept: Vec<usize> = keep.into_iter().flatten().collect();
            // Whether members of this array were cut (strings) or left out.
            let mut here = kept.len() < lens.len();
            fitted.dropped += lens.len() - kept.len();
            let items_path = child_path(path, "[]");
            for (item, share) in items.iter_mut().zip(kept) {
                let cut = fitted.cut;
                fit(item, share, fitted, &items_path, false);
                here |= item.is_string() && fitted.cut > cut;
            }
            let lens: Vec<usize> = items.iter().map(json_len).collect();
            let over = overflow(&lens, &vec![false; lens.len()], budget);
            if !over.is_empty() {
                let mut gone = vec![false; lens.len()];
                over.iter().for_each(|&i| gone[i] = true);
                let mut i = 0;
                items.retain(|_| {
                    i += 1;
                    !gone[i - 1]
                });
                fitted.dropped += over.len();
                here = true;
            }
            if here {
                fitted.at(path);
            }
        }
        Value::Object(map) => {
            let names: Vec<String> = map.keys().cloned().collect();
            let key_lens: Vec<usize> = names.iter().map(|k| json_len(&Value::String(k.clone())) + 1).collect();
            let lens: Vec<usize> = map.values().zip(&key_lens).map(|(v, k)| k + json_len(v)).collect();
            let first: Vec<bool> = names.iter().map(|k| fit_first(k, in_annotations)).collect();
            let mut keep = vec![None; names.len()];
            let mut left = budget.saturating_sub(2);
            for serve in [true, false] {
                let these: Vec<usize> = (0..names.len()).filter(|&i| first[i] == serve).collect();
                let pick = |v: &[usize]| these.iter().map(|&i| v[i]).collect::<Vec<usize>>();
                for (&i, share) in these.iter().zip(shares(&pick(&lens), left, &pick(&key_lens))) {
                    if let Some(share) = share {
                        left = left.saturating_sub(share + 1);
                        keep[i] = Some(share);
                    }
                }
            }
            let mut here = false;
            for (name, (share, key_len)) in names.iter().zip(keep.into_iter().zip(&key_lens)) {
                match share {
                    None => {
                        map.remove(name);
                        fitted.dropped += 1;
                        here = true;
                    }
                    Some(share) => {
                        if let Some(v) = map.get_mut(name) {
                            let cut = fitted.cut;
                            fit(v, share.saturating_sub(*key_len), fitted, &child_path(path, name), name == "annotations");
                            here |= v.is_string() && fitted.cut > cut;
                        }
                    }
                }
            }
            // What still does not fit: left out, largest first.
            let names: Vec<String> = map.keys().cloned().collect();
            let lens: Vec<usize> = map.iter().map(|(k, v)| json_len(&Value::String(k.clone())) + 1 + json_len(v)).collect();
            let first: Vec<bool> = names.iter().map(|k| fit_first(k, in_annotations)).collect();
            for i in overflow(&lens, &first, budget) {
                map.remove(&names[i]);
                fitted.dropped += 1;
                here = true;
            }
            if here {
                fitted.at(path);
            }
        }
        _ => {}
    }
}

/// Fair shares of `budget` for members of lengths `lens` (each also needs `fixed[i]` bytes
/// whatever it shrinks to, plus a comma): smallest first, each gets at most an equal part of
/// what is left; `None` for a member whose share would be under [`FIT_MIN_SHARE`] beyond its
/// fixed part.
fn shares(lens: &[usize], budget: usize, fixed: &[usize]) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| lens[i]);
    let mut left = budget;
    let mut out = vec![None; lens.len()];
    for (n, &i) in order.iter().enumerate() {
        let fair = left / (lens.len() - n);
        let want = lens[i] + 1;
        let share = want.min(fair);
        if share < fixed[i] + FIT_MIN_SHARE && share < want {
            continue;
        }
        out[i] = Some(share.saturating_sub(1));
        left -= share;
    }
    out
}

/// The members (indexes into `lens`, their lengths in bytes of JSON, with the key) to leave
/// out of an object or array so that it fits in `budget`: the largest first, those served
/// first (`first`, [`FIT_FIRST`]) last. None when it fits already, which [`fit`]'s shares
/// should always leave; this is what makes sure.
fn overflow(lens: &[usize], first: &[bool], budget: usize) -> Vec<usize> {
    // Brackets, and a comma between members.
    let mut total = 2 + lens.iter().sum::<usize>() + lens.len().saturating_sub(1);
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| (first[i], std::cmp::Reverse(lens[i])));
    let mut out = Vec::new();
    for i in order {
        if total <= budget {
            break;
        }
        total = total.saturating_sub(lens[i] + 1);
        out.push(i);
    }
    out
}

/// Cut every string in `value` longer than `max` characters to `max`, marked; how many.
fn cut_long_strings(value: &mut Value, max: usize) -> usize {
    match value {
        Value::String(s) => usize::from(crate::template::cut_marked(s, max)),
        Value::Array(items) => items.iter_mut().map(|v| cut_long_strings(v, max)).sum(),
        Value::Object(map) => map.values_mut().map(|v| cut_long_strings(v, max)).sum(),
        _ => 0,
    }
}

/// Parse event JSON, detecting the format unless `forced`.
///
/// Detection: `"event": "alert"` with an `alert` object, or any other `event` beside an
/// `orgName` and no check, means a Mackerel webhook; a `check.metadata` or `entity` object
/// means Sensu Go; a `client` object or a `check.name` means Sensu 1.x. Errors (exit 65) name the missing or mistyped field.
pub fn parse_json(bytes: &[u8], forced: Option<Format>) -> Result<Event> {
    // Nested deeper than anything read: cut out ([`read_capped`] has done it already, and said so).
    let value: Value = serde_json::from_slice(&prune_deep(bytes).bytes).map_err(|e| {
        Code::DataErr
            .msg(format!("event: invalid JSON on stdin ({e}); send one Sensu 1.x, Sensu Go or Mackerel webhook event as a JSON object"))
    })?;
    let Value::Object(root) = value else {
        return Err(
            Code::DataErr.msg(format!("event: expected a JSON object on stdin, found {}; send one event object", field::type_name(&value)))
        );
    };
    let format = match forced {
        Some(f) => f,
        None => detect(&root)?,
    };
    match format {
        Format::SensuGo => sensu_go::parse(&root),
        Format::MackerelWebhook => mackerel::parse_webhook(&root),
        _ => sensu::parse(&root),
    }
    .map_err(|f| Code::DataErr.msg(format!("event ({}) on stdin: {f}; {FIX_EVENT}", format.name())))
}

fn detect(root: &Map<String, Value>) -> Result<Format> {
    if root.get("event").and_then(Value::as_str) == Some("alert") && root.get("alert").is_some_and(Value::is_object) {
        return Ok(Format::MackerelWebhook);
    }
    let check = root.get("check").and_then(Value::as_object);
    // Mackerel posts every event a webhook channel is set to send (`sample`, `alertGroup`,
    // `hostStatus`, `hostRegister`, `hostRetire`, `monitorCreate` …; Mackerel "Webhook"
    // notification docs), each with `orgName`: read as a webhook, whose reader skips them.
    if check.is_none()
        && !root.contains_key("client")
        && !root.contains_key("entity")
        && root.get("event").is_some_and(Value::is_string)
        && root.get("orgName").is_some_and(Value::is_string)
    {
        return Ok(Format::MackerelWebhook);
    }
    // The top-level objects first: the server writes them. A Sensu 1.x check's attributes are
    // free-form and written where the check is defined, on the client for a standalone check
    // or a result sent to its socket, so a custom attribute named `metadata` read the event as
    // Sensu Go, which has no `client`: refused (exit 65), the page lost.
    if root.get("entity").is_some_and(Value::is_object) {
        Ok(Format::SensuGo)
    } else if root.get("client").is_some_and(Value::is_object) {
        Ok(Format::Sensu)
    } else if check.is_some_and(|c| c.contains_key("metadata")) {
        Ok(Format::SensuGo)
    } else if check.is_some_and(|c| c.contains_key("name")) {
        Ok(Format::Sensu)
    } else if check.is_none() {
        Err(Code::DataErr.msg(format!(
            "event: missing field `check` on stdin (not a Sensu 1.x or Sensu Go event); {FIX_EVENT}, or use --from for Nagios, Zabbix or Mackerel"
        )))
    } else {
        Err(Code::DataErr.msg(format!(
            "event: cannot tell the format of stdin: neither `client` (Sensu 1.x) nor `entity` (Sensu Go) is present; {FIX_EVENT}, or force it with --input"
        )))
    }
}

/// Field access that names the JSON path in its errors (all exit 65).
pub(crate) mod field {
    use super::*;

    /// The JSON type of `v` with its article, for messages: `a string`, `an array`, `null`.
    pub fn type_name(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    fn wrong(path: &str, want: &str, got: &Value) -> crate::exit::Failure {
        Code::DataErr.msg(format!("field `{path}` must be {want}, found {}", type_name(got)))
    }

    fn missing(path: &str) -> crate::exit::Failure {
        Code::DataErr.msg(format!("missing field `{path}`"))
    }

    /// Optional object; null counts as absent.
    pub fn object<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a Map<String, Value>>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(v) => Err(wrong(path, "an object", v)),
        }
    }

    /// Required object.
    pub fn req_object<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a Map<String, Value>> {
        object(m, key, path)?.ok_or_else(|| missing(path))
    }

    /// Optional string; null counts as absent.
    pub fn string<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a str>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(wrong(path, "a string", v)),
        }
    }

    /// Required, non-empty string.
    pub fn req_string<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str> {
        match string(m, key, path)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(Code::DataErr.msg(format!("field `{path}` is empty"))),
            None => Err(missing(path)),
        }
    }

    /// Optional non-negative integer; null counts as absent.
    pub fn uint(m: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u64>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| wrong(path, "a non-negative integer", v)),
            Some(v) => Err(wrong(path, "a non-negative integer", v)),
        }
    }

    /// Optional time in Unix seconds (`check.executed`, `timestamp`): an integer, or a number
    /// with a fraction (a script writing `time.time()` to a Sensu 1.x client socket), cut to
    /// whole seconds; a number no `i64` holds (`1e30`, a host's or a script's mistake) is
    /// absent, as if not given, instead of costing the page (a `check.executed` so left out
    /// gives way to the event's `timestamp`, else to the time of receipt). These times only
    /// order an incident's events. Not a number: an error, as for every field.
    pub fn time(m: &Map<String, Value>, key: &str, path: &str) -> Result<Option<i64>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_i64().or_else(|| {
                n.as_f64().filter(|f| f.is_finite() && *f >= i64::MIN as f64 && *f < i64::MAX as f64).map(|f| f.trunc() as i64)
            })),
            Some(v) => Err(wrong(path, "a number (Unix seconds)", v)),
        }
    }

    /// Optional integer (may be negative); null counts as absent.
    pub fn int(m: &Map<String, Value>, key: &str, path: &str) -> Result<Option<i64>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| wrong(path, "an integer", v)),
            Some(v) => Err(wrong(path, "an integer", v)),
        }
    }

    /// Required check status: a non-negative integer that fits in `u32`.
    pub fn status(m: &Map<String, Value>, key: &str, path: &str) -> Result<u32> {
        let s = uint(m, key, path)?.ok_or_else(|| missing(path))?;
        u32::try_from(s).map_err(|_| Code::DataErr.msg(format!("field `{path}` is out of range: {s}")))
    }

    /// Optional boolean; null counts as absent.
    pub fn boolean(m: &Map<String, Value>, key: &str, path: &str) -> Result<Option<bool>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(wrong(path, "a boolean", v)),
        }
    }

    /// Optional map of strings (labels, annotations); null counts as absent.
    pub fn string_map(m: &Map<String, Value>, key: &str, path: &str) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        if let Some(o) = object(m, key, path)? {
            for (k, v) in o {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    other => {
                        let key = if k.chars().count() <= MAX_QUOTED_CHARS { k.clone() } else { quoted(k) };
                        return Err(wrong(&format!("{path}.{key}"), "a string", other));
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that gives `steps` in turn: bytes, or an error of that kind.
    struct Scripted(Vec<std::result::Result<&'static [u8], std::io::ErrorKind>>);

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            match self.0.remove(0) {
                Ok(bytes) => {
                    buf[..bytes.len()].copy_from_slice(bytes);
                    Ok(bytes.len())
                }
                Err(kind) => Err(kind.into()),
            }
        }
    }

    #[test]
    fn a_pause_after_a_whole_event_ends_the_input_and_a_pause_inside_one_does_not() {
        use std::io::ErrorKind::{TimedOut, WouldBlock};
        let (whole, half1, half2) = (&b"{\"a\": 1}\n"[..], &b"{\"a\""[..], &b": 1}"[..]);
        // A whole event, then a pause: read without waiting for the end (nor reading past it).
        let input = read_capped(Scripted(vec![Ok(whole), Err(WouldBlock), Ok(b"never read")])).unwrap();
        assert_eq!(input.bytes, whole);
        assert!(input.open.as_deref().is_some_and(|l| l.contains("stdin stayed open")), "{input:?}");
        // A pause in the middle of one: go on reading.
        let input = read_capped(Scripted(vec![Ok(half1), Err(WouldBlock), Ok(half2)])).unwrap();
        assert_eq!((input.bytes.as_slice(), input.open), (&b"{\"a\": 1}"[..], None));
        // The time limit with half an event, or nothing: exit 65, naming --timeout.
        for steps in [vec![Ok(half1), Err(WouldBlock), Err(TimedOut)], vec![Err(TimedOut)]] {
            let err = read_capped(Scripted(steps)).unwrap_err();
            assert_eq!(err.code, Code::DataErr);
            assert!(err.to_string().contains("still open at the time limit (--timeout)"), "{err}");
        }
        // The time limit right after a whole event: it is read.
        assert_eq!(read_capped(Scripted(vec![Ok(whole), Err(TimedOut)])).unwrap().bytes, whole);
    }

    #[test]
    fn cap_rejects_oversize_input() {
        let big = vec![b' '; (MAX_INPUT_BYTES + 10) as usize];
        let err = read_capped(&big[..]).unwrap_err();
        assert_eq!(err.code, Code::DataErr);
        assert!(err.to_string().contains("larger than 16777216 bytes"), "{err}");
        // Over 1 MiB and not JSON: exit 65 too.
        let err = read_capped(&vec![b'x'; (MAX_EVENT_BYTES + 10) as usize][..]).unwrap_err();
        assert_eq!(err.code, Code::DataErr);
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[test]
    fn cap_accepts_exactly_one_mib() {
        let mut buf = vec![b' '; MAX_EVENT_BYTES as usize];
        buf[0] = b'{';
        let input = read_capped(&buf[..]).unwrap();
        assert_eq!((input.bytes.len() as u64, input.cut), (MAX_EVENT_BYTES, None));
    }

    #[test]
    fn a_check_that_printed_megabytes_still_pages_with_its_output_cut() {
        let output = "é".repeat(3 * 1024 * 1024);
        let event = serde_json::json!({"client": {"name": "web-01"}, "check": {"name": "check_log", "status": 2, "output": output}});
        let input = read_capped(event.to_string().as_bytes()).expect("read");
        assert!(
            input.cut.as_deref().is_some_and(|c| c.contains("1 long value(s) (the check output) cut to 16384 characters")),
            "{:?}",
            input.cut
        );
        let e = parse_json(&input.bytes, None).expect("parsed");
        assert_eq!((e.entity.as_str(), e.check.as_str(), e.status), ("web-01", "check_log", 2));
        assert!(e.output.starts_with("éé"));
        assert!(e.output.ends_with(" … [cut: 3145728 characters]"), "{}", &e.output[e.output.len() - 40..]);
        assert_eq!(e.output.chars().count(), LONG_VALUE_CHARS + " … [cut: 3145728 characters]".chars().count());
    }

    /// Still over 1 MiB with every long value cut (a host's many labels, annotations or
    /// client attributes, or a key of megabytes): the largest parts shrink to fit, the fields
    /// that name, key and time the event are kept whole, and it parses as the same event.
    #[test]
    fn an_event_bloated_by_many_values_is_fitted_into_one_mib() {
        let labels: Map<String, Value> = (0..200_000).map(|i| (format!("l{i}"), Value::from("v"))).collect();
        let long: Map<String, Value> = (0..100).map(|i| (format!("a{i}"), Value::from("x".repeat(16_000)))).collect();
        let key: Map<String, Value> = [("k".repeat(2_000_000), Value::from("v"))].into_iter().collect();
        for (what, entity) in [
            ("labels", serde_json::json!({"metadata": {"name": "web-01", "namespace": "prod", "labels": labels}})),
            ("annotations", serde_json::json!({"metadata": {"name": "web-01", "namespace": "prod", "annotations": long}})),
            ("a long key", serde_json::json!({"metadata": {"name": "web-01", "namespace": "prod", "labels": key}})),
        ] {
            let event = serde_json::json!({
                "entity": entity,
                "check": {"metadata": {"name": "keepalive", "namespace": "prod"}, "status": 2, "executed": 1_700_000_000,
                          "output": "No keepalive sent from web-01 for 120 seconds", "occurrences": 3,
                          "history": [{"status": 0, "executed": 1}, {"status": 2, "executed": 2}]},
            });
            let input = read_capped(event.to_string().as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(input.bytes.len() as u64 <= MAX_EVENT_BYTES, "{what}");
            assert!(input.cut.as_deref().is_some_and(|c| c.contains("shrunk to fit")), "{what}: {:?}", input.cut);
            let e = parse_json(&input.bytes, None).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!((e.entity.as_str(), e.check.as_str(), e.status, e.namespace.as_deref()), ("web-01", "keepalive", 2, Some("prod")));
            assert_eq!((e.timestamp, e.occurrences, e.history.as_slice()), (Some(1_700_000_000), 3, &[0, 2][..]), "{what}");
            assert_eq!(e.output, "No keepalive sent from web-01 for 120 seconds", "{what}");
        }
        // The shares: small members whole, the rest fair; too short a share leaves one out.
        assert_eq!(shares(&[10, 1000, 1000], 600, &[0, 0, 0]), [Some(10), Some(293), Some(294)]);
        assert_eq!(shares(&[10, 1000], 40, &[0, 20]), [Some(10), None]);
    }

    /// Tens of thousands of members smaller than the fields beside them (Sensu 1.x client or
    /// check attributes, Sensu Go annotations) never crowd out what names, keys or routes the
    /// event: those members are served first.
    #[test]
    fn many_tiny_members_never_crowd_out_the_names_or_an_override() {
        let tiny = |n: usize| -> Map<String, Value> { (0..n).map(|i| (format!("a{i}"), Value::from(i))).collect() };
        let mut client = tiny(120_000);
        client.insert("name".into(), "web-01".into());
        // Keys named like annotations the handler reads are served first only as annotations.
        client.extend((0..120_000).map(|i| (format!("pagerpipe/a{i}"), Value::from(i))));
        let mut check = tiny(120_000);
        check.extend(
            [("name", Value::from("check_disk")), ("status", 2.into()), ("output", "DISK CRITICAL".into())].map(|(k, v)| (k.into(), v)),
        );
        check.insert("pagerduty".into(), serde_json::json!({"pager_team": "dba"}));
        let sensu = serde_json::json!({"client": client, "check": check, "occurrences": 1, "action": "create"});
        let input = read_capped(sensu.to_string().as_bytes()).expect("fitted");
        let e = parse_json(&input.bytes, None).expect("parses");
        assert_eq!((e.entity.as_str(), e.check.as_str(), e.status, e.output.as_str()), ("web-01", "check_disk", 2, "DISK CRITICAL"));
        assert_eq!(e.overrides.get("pagerduty").and_then(|o| o.get("pager_team")), Some(&Value::from("dba")));

        let mut annotations: Map<String, Value> = (0..90_000).map(|i| (format!("a{i}"), Value::from("v"))).collect();
        annotations.insert("pagerpipe/pagerduty.pager_team".into(), "dba".into());
        let go = serde_json::json!({
            "entity": {"metadata": {"name": "web-01", "namespace": "default", "annotations": annotations}},
            "check": {"metadata": {"name": "check_disk", "namespace": "default"}, "status": 2, "output": "DISK CRITICAL", "occurrences": 1},
        });
        let input = read_capped(go.to_string().as_bytes()).expect("fitted");
        assert!(input.bytes.len() as u64 <= MAX_EVENT_BYTES);
        let e = parse_json(&input.bytes, None).expect("parses");
        assert_eq!((e.entity.as_str(), e.check.as_str(), e.status), ("web-01", "check_disk", 2));
        assert_eq!(e.entity_overrides.get("pagerduty").and_then(|o| o.get("pager_team")), Some(&Value::from("dba")));
    }

    /// Members each longer than their share of 1 MiB (30 000 labels of 25 characters: the
    /// mark ` … [cut: 25 characters]` is no shorter than the value) were kept over their
    /// shares, and thousands of overruns put the event back over 1 MiB (exit 65). Whatever the
    /// shape, the fitted value now ends within its budget, and the log line names where.
    #[test]
    fn fitting_always_ends_within_the_budget() {
        let labels = |n: usize, value: &str| -> Map<String, Value> { (0..n).map(|i| (format!("l{i:05}"), Value::from(value))).collect() };
        let shapes = [
            ("labels of 25", Value::Object(labels(5_000, &"v".repeat(25)))),
            ("labels of 100", Value::Object(labels(5_000, &"v".repeat(100)))),
            ("control characters", Value::Object(labels(5_000, &"\u{1}".repeat(30)))),
            ("quotes", Value::Object(labels(5_000, &"\"".repeat(30)))),
            ("wide characters", Value::Object(labels(5_000, &"🔥".repeat(30)))),
            ("strings in an array", Value::Array(vec![Value::from("x".repeat(40)); 5_000])),
            ("numbers", Value::Array(vec![Value::from(-1.797_693_134_862_315_7e308); 10_000])),
            ("nested", serde_json::json!({"a": [labels(2_000, &"v".repeat(30)), labels(2_000, &"é".repeat(30))], "b": labels(4_000, "x")})),
        ];
        for (what, value) in shapes {
            for budget in [2, 23, 24, 100, 4_096, 150_000] {
                let mut v = value.clone();
                let mut fitted = Fitted::default();
                fit(&mut v, budget, &mut fitted, "entity.metadata.labels", false);
                assert!(json_len(&v) <= budget, "{what} in {budget}: {} bytes", json_len(&v));
                assert!(fitted.places.iter().any(|p| p.starts_with("entity.metadata.labels")), "{what} in {budget}: {:?}", fitted.places);
            }
        }
        // A share too short for the mark keeps what fits of the head.
        assert_eq!(head_within("vvvvvvvv", 8), "vvv…");
        assert_eq!(head_within("\"\"\"\"", 9), "\"\"…");
        assert_eq!(head_within("🔥🔥", 9), "🔥…");
        assert_eq!(head_within("vvvv", 4), "");
        // The event of 30 000 labels of 25 characters pages, its name and check whole.
        let event = serde_json::json!({
            "entity": {"metadata": {"name": "big", "namespace": "default", "labels": labels(30_000, &"v".repeat(25))}},
            "check": {"metadata": {"name": "keepalive"}, "status": 2, "output": "no keepalive", "executed": 1_700_000_000},
        });
        let input = read_capped(event.to_string().as_bytes()).expect("fitted");
        assert!(input.bytes.len() as u64 <= MAX_EVENT_BYTES);
        assert!(input.cut.as_deref().is_some_and(|c| c.contains("in entity.metadata.labels:")), "{:?}", input.cut);
        let e = parse_json(&input.bytes, None).expect("parses");
        assert_eq!((e.entity.as_str(), e.check.as_str(), e.status, e.output.as_str()), ("big", "keepalive", 2, "no keepalive"));
    }

    /// Values nested deeper than 64 levels are cut out of the text before parsing, at any
    /// depth, and only those.
    #[test]
    fn values_nested_too_deep_are_replaced_by_a_mark() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let mark = serde_json::to_string(DEEP_MARK).unwrap();
        for depth in [127, 1_000, 100_000] {
            let text =
                format!(r#"{{"client":{{"name":"web-01","custom":{}}},"check":{{"name":"c","status":2,"output":"[{{\"]"}}}}"#, deep(depth));
            let pruned = prune_deep(text.as_bytes());
            assert_eq!((pruned.count, pruned.places.as_slice()), (1, &["client.custom[]…".to_string()][..]), "{depth}");
            let v: Value = serde_json::from_slice(&pruned.bytes).expect("parses");
            let mut inner = &v["client"]["custom"];
            for _ in 0..62 {
                inner = &inner[0];
            }
            assert_eq!(inner, &Value::from(DEEP_MARK), "{depth}");
            assert_eq!(v["check"]["output"], "[{\"]", "brackets in strings are text");
            let input = read_capped(text.as_bytes()).expect("read");
            assert!(
                input.deep.as_deref().is_some_and(|d| d.contains("1 value(s) nested deeper than 64 levels") && d.contains("client.custom"))
            );
            let e = parse_json(text.as_bytes(), None).expect("parsed");
            assert_eq!((e.entity.as_str(), e.check.as_str(), e.status), ("web-01", "c", 2));
        }
        // Objects too, several, and an event over 1 MiB (parsed to be fitted).
        let objects = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
        let big = format!(
            r#"{{"client":{{"name":"w","x":{},"y":[{}],"pad":"{}"}},"check":{{"name":"c","status":2}}}}"#,
            objects(500),
            deep(200),
            "p".repeat(2_000_000)
        );
        let input = read_capped(big.as_bytes()).expect("read");
        assert!(
            input.deep.as_deref().is_some_and(|d| d.starts_with("event: 2 value(s)") && d.contains("client.x.a…, client.y[]…")),
            "{:?}",
            input.deep
        );
        assert!(input.cut.is_some() && input.bytes.len() as u64 <= MAX_EVENT_BYTES);
        assert_eq!(parse_json(&input.bytes, None).expect("parsed").entity, "w");
        // Within 64 levels, or a deep value shorter than the mark (36 bytes at level 65: 82
        // levels in all, which parse): as it was. One byte more is cut.
        assert_eq!((deep(18).len(), deep(19).len(), mark.len()), (36, 38, 37));
        for kept in [deep(64), format!("[{}]", deep(64 + 17))] {
            let pruned = prune_deep(kept.as_bytes());
            assert!(matches!(pruned.bytes, Cow::Borrowed(_)) && pruned.count == 0);
            assert!(serde_json::from_slice::<Value>(kept.as_bytes()).is_ok());
        }
        assert_eq!(prune_deep(format!("[{}]", deep(64 + 18)).as_bytes()).count, 1);
        // No JSON: left for the parser to refuse, never made valid.
        for broken in [
            "[".repeat(100_000),
            format!("{}{}", "[".repeat(100), "}".repeat(100)),
            format!("{}{{{}:1}}{}", "[".repeat(63), deep(40), "]".repeat(63)),
            format!("{}\"{}", "[".repeat(100), "]".repeat(100)),
        ] {
            let pruned = prune_deep(broken.as_bytes());
            assert_eq!(pruned.count, 0);
            assert!(parse_json(broken.as_bytes(), None).is_err());
        }
    }

    #[test]
    fn empty_input_is_a_data_error() {
        let err = read_capped(&b"  \n"[..]).unwrap_err();
        assert_eq!(err.code, Code::DataErr);
        assert!(err.to_string().contains("empty"));
    }

    #[test]
    fn invalid_json_and_non_objects_are_data_errors() {
        for input in [&b"{\"check\":"[..], b"[1,2]", b"\xff\xfe", b"42"] {
            let err = parse_json(input, None).unwrap_err();
            assert_eq!(err.code, Code::DataErr, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn missing_check_is_named() {
        let err = parse_json(br#"{"client":{"name":"a"}}"#, None).unwrap_err();
        assert!(err.to_string().contains("missing field `check`"), "{err}");
        let err = parse_json(br#"{"foo":1}"#, None).unwrap_err();
        assert!(err.to_string().contains("missing field `check`"), "{err}");
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowed() {
        let mut s = String::new();
        for _ in 0..10_000 {
            s.push('[');
        }
        let err = parse_json(s.as_bytes(), None).unwrap_err();
        assert_eq!(err.code, Code::DataErr);
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        assert_eq!(quoted("PROBLEM"), "\"PROBLEM\"");
        assert_eq!(quoted("a\0b"), "\"a\\0b\"");
        let q = quoted(&"ア".repeat(10_000));
        assert!(q.ends_with('…') && q.chars().count() <= MAX_QUOTED_CHARS + 3, "{q}");
        let long_type = format!(r#"{{"client":{{"name":"a"}},"check":{{"name":"c","status":2}},"action":"{}"}}"#, "x".repeat(100_000));
        let err = parse_json(long_type.as_bytes(), None).unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
        let long_key = format!(
            r#"{{"entity":{{"metadata":{{"name":"a","labels":{{"{}":1}}}}}},"check":{{"metadata":{{"name":"c"}},"status":2}}}}"#,
            "k".repeat(100_000)
        );
        let err = parse_json(long_key.as_bytes(), None).unwrap_err().to_string();
        assert!(err.contains("entity.metadata.labels.\"kkk") && err.len() < 300, "{err}");
    }

    #[test]
    fn entity_and_check_overrides_are_kept_apart() {
        let e = parse_json(
            br#"{"entity":{"metadata":{"name":"a","annotations":{"pagerpipe/pagerduty.api_url":"http://evil.example",
                  "pagerpipe/pagerduty.severities":"warning"}}},
                 "check":{"metadata":{"name":"c","annotations":{"pagerpipe/pagerduty.severities":"critical"}},"status":2}}"#,
            None,
        )
        .unwrap();
        assert_eq!(Value::Object(e.overrides_for("pagerduty")), serde_json::json!({"severities": "critical"}));
        assert_eq!(
            Value::Object(e.entity_overrides["pagerduty"].clone()),
            serde_json::json!({"api_url": "http://evil.example", "severities": "warning"})
        );
    }

    #[test]
    fn status_names() {
        assert_eq!(status_name(0), "ok");
        assert_eq!(status_name(1), "warning");
        assert_eq!(status_name(2), "critical");
        assert_eq!(status_name(3), "unknown");
        assert_eq!(status_name(127), "unknown");
    }
}
