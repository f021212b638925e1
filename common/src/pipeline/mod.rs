//! One invocation, step by step, the same for every handler.
//!
//! Read the event → merge settings → filter → dedup against the state store → let the provider
//! deliver → record → exit code (DESIGN.md "One invocation, step by step"). A handler supplies a
//! [`Provider`]: how settings become a provider, which incident key an event has, and how an
//! action becomes requests. Everything else — the order of the steps, the claim/release dance
//! that keeps storms from paging twice without ever swallowing a failed page, the log lines and
//! exit codes — is here so the three handlers cannot drift apart.

mod flush;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Map, Value};

use crate::cli::CommonArgs;
use crate::config::{self, Common, Files};
use crate::event::{self, Event};
use crate::exit::{Code, Result};
use crate::filter::{self, Action, Decision};
use crate::http::{self, Class, Client, Deadline, Delivery, Request};
use crate::log::Logger;
use crate::spool::{self, Spool};
use crate::state::{self, Claim, ClaimRequest, Incident, file::FileStore};

/// What a provider was asked to do.
#[derive(Debug)]
pub struct Job<'a> {
    /// The action the filters and dedup decided on.
    pub action: Action,
    /// The event.
    pub event: &'a Event,
    /// The incident key.
    pub incident_key: &'a str,
    /// The stored record from before this invocation (`None` in dry-run or when there is none).
    pub previous: Option<&'a Incident>,
}

/// A successful delivery.
#[derive(Debug, Default)]
pub struct Done {
    /// Appended to the log line, e.g. `(dedup_key web-01/check_disk)`.
    pub detail: String,
    /// Provider references to store with the incident (merged into `Incident::refs`).
    pub refs: Map<String, Value>,
}

/// A failed delivery, by exit code.
#[derive(Debug)]
pub enum Failed {
    /// Refused for good (exit 69).
    Permanent(String),
    /// Not deliverable as configured (exit 78).
    Config(String),
    /// Still retryable when the deadline ran out (exit 75).
    NotYet(String),
}

impl Failed {
    /// The explanation, whatever the kind.
    pub fn reason(&self) -> &str {
        match self {
            Failed::Permanent(r) | Failed::Config(r) | Failed::NotYet(r) => r,
        }
    }

    /// From a non-delivered [`Delivery`]; `None` for a delivered one.
    pub fn from_delivery(d: Delivery) -> std::result::Result<http::Response, Failed> {
        match d {
            Delivery::Delivered { response, .. } => Ok(response),
            Delivery::Permanent { reason, .. } => Err(Failed::Permanent(reason)),
            Delivery::Broken(reason) => Err(Failed::Config(reason)),
            Delivery::NotYet { reason, attempts } => {
                Err(Failed::NotYet(format!("{reason} (after {attempts} attempt{})", if attempts == 1 { "" } else { "s" })))
            }
        }
    }
}

/// What a provider works with during delivery.
pub struct Ctx<'a> {
    /// The HTTP client.
    pub client: &'a Client,
    /// The invocation's deadline.
    pub deadline: Deadline,
    /// The logger (secrets registered).
    pub log: &'a Logger,
    /// Print instead of send.
    pub dry_run: bool,
    /// The state store, for providers that keep more than the incident record (Twilio's
    /// per-recipient call caps, a resolve noticed while calling one by one). `None` in dry-run
    /// and when the store cannot be opened (deliver anyway, without that memory).
    pub store: Option<&'a dyn state::Store>,
    /// Where requests go that are still retryable at the deadline (`None` in dry-run, or when
    /// no spool directory can be used).
    pub spool: Option<Queue<'a>>,
}

/// The spool as one invocation sees it: which incident its requests belong to, and what it
/// added.
pub struct Queue<'a> {
    /// The spool.
    pub spool: &'a Spool,
    /// The handler's name ([`Provider::NAME`]).
    pub handler: &'static str,
    /// The invocation's incident key.
    pub incident_key: &'a str,
    /// The invocation's action.
    pub action: Action,
    /// Credentials in the requests, stored with each entry for masking at flush time.
    pub secrets: Vec<String>,
    /// Entries of this incident that were still queued when delivery began: new requests are
    /// queued behind them instead of being sent, so that order is kept per incident.
    pub behind: usize,
    /// Names of the entries this invocation added.
    pub added: RefCell<Vec<String>>,
    /// Set when an entry could not be written.
    pub lost: std::cell::Cell<bool>,
}

impl Queue<'_> {
    /// Spool `req`; returns the `NotYet` delivery to report, its reason saying where it went.
    fn enqueue(&self, req: &Request, fill: BTreeMap<String, String>, reason: String, attempts: u32) -> Delivery {
        Delivery::NotYet { reason: self.keep(req, fill, reason), attempts }
    }

    /// Spool `req`; returns `reason` extended with where it went (or why it could not be kept).
    fn keep(&self, req: &Request, fill: BTreeMap<String, String>, reason: String) -> String {
        let entry = spool::Entry {
            handler: self.handler.to_string(),
            incident_key: self.incident_key.to_string(),
            action: self.action.name().to_string(),
            created: crate::clock::now_unix(),
            request: req.clone(),
            secrets: self.secrets.clone(),
            fill,
            attempts: 0,
            failure: None,
        };
        match self.spool.push(&entry) {
            Ok(name) => {
                self.added.borrow_mut().push(name.clone());
                format!("{reason}; spooled as {}/{name} for the next invocation or --flush", self.spool.dir().display())
            }
            Err(e) => {
                self.lost.set(true);
                format!("{reason}; and it could not be spooled: {e:#}")
            }
        }
    }
}

impl Ctx<'_> {
    /// Send `req` (or, in dry-run, print its body as pretty JSON on stdout, secrets masked, and
    /// report an empty `200`). `classify` decides delivered / retryable / permanent.
    pub fn send(&self, req: &Request, classify: &dyn Fn(&http::Response) -> Class) -> Delivery {
        if self.dry_run {
            let shown = req.redacted(&self.log.secrets());
            self.log.info(format!("dry run: would {} {}", shown.method.name(), shown.url));
            let text = match &shown.body {
                http::Body::Json(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
                http::Body::Form(pairs) => serde_json::to_string_pretty(
                    &pairs.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<Map<String, Value>>(),
                )
                .unwrap_or_default(),
                http::Body::Empty => String::new(),
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            return Delivery::Delivered {
                response: http::Response { status: 200, body: String::new(), retry_after: None },
                attempts: 0,
            };
        }
        if let Some(q) = self.spool.as_ref().filter(|q| q.behind > 0) {
            let reason = format!("{} older request(s) for this incident are still spooled", q.behind);
            return q.enqueue(req, BTreeMap::new(), reason, 0);
        }
        let log = self.log;
        match self.client.deliver(req, &self.deadline, classify, &mut |line| log.info(line)) {
            Delivery::NotYet { reason, attempts } => match &self.spool {
                Some(q) => q.enqueue(req, BTreeMap::new(), reason, attempts),
                None => Delivery::NotYet { reason, attempts },
            },
            // Cannot work from this machine as configured (an untrusted certificate, a proxy
            // refusing the credentials): still exit 78, but keep the page for `--flush` once
            // the configuration is fixed.
            Delivery::Broken(reason) => match &self.spool {
                Some(q) => Delivery::Broken(q.keep(req, BTreeMap::new(), reason)),
                None => Delivery::Broken(reason),
            },
            other => other,
        }
    }

    /// Queue `req` in the spool without trying it now, for a request that needs a value an
    /// earlier spooled request has not brought back yet: `fill` maps a JSON pointer into the
    /// body (e.g. `/incident_id`) to the name of the stored reference to put there when it is
    /// known (e.g. Reactio's `incident_id`). In dry-run the request is printed as by
    /// [`Ctx::send`]. Without a spool the result is `NotYet` with `why`.
    pub fn send_later(&self, req: &Request, fill: &[(&str, &str)], why: &str) -> Delivery {
        if self.dry_run {
            return self.send(req, &|_| Class::Delivered);
        }
        let fill = fill.iter().map(|(p, n)| ((*p).to_string(), (*n).to_string())).collect();
        match &self.spool {
            Some(q) => q.enqueue(req, fill, why.to_string(), 0),
            None => Delivery::NotYet { reason: why.to_string(), attempts: 0 },
        }
    }
}

/// A handler's provider: the service-specific half.
pub trait Provider: Sized {
    /// Handler and settings-section name: `pagerduty`, `twilio`, `reactio`.
    const NAME: &'static str;

    /// Who may set each of this handler's own settings ([`crate::trust`]); a setting not
    /// named here (nor in [`crate::trust::COMMON`]) is operator-only.
    const SETTINGS: &'static [(&'static str, crate::trust::Trust)] = &[];

    /// This handler's defaults for settings whose shared default does not suit it, laid under
    /// the settings files (lowest precedence). E.g. Reactio pages for `critical` only, as the
    /// Ruby `reactio_handler.rb` did, where [`Common`] defaults to all three severities.
    fn defaults() -> Map<String, Value> {
        Map::new()
    }

    /// Build the provider from its merged settings section (defaults < files < flags < event
    /// overrides). Errors exit 78 and name the setting.
    fn from_settings(section: Map<String, Value>, common: &Common) -> Result<Self>;

    /// Credentials to mask in every output.
    fn secrets(&self) -> Vec<String>;

    /// Check that a real delivery is possible (credentials present …). In dry-run a failure is
    /// only logged as a warning.
    fn ready(&self) -> Result<()>;

    /// The incident key for `event`: by default `{entity}/{check}` (the Ruby handlers' key),
    /// or the key the source provides (Zabbix `{id}-{hostname}`).
    fn incident_key(&self, event: &Event) -> String {
        crate::template::incident_key(None, event)
    }

    /// What a Zabbix `{ALERT.SENDTO}` value means to this provider: the setting it overrides
    /// (e.g. PagerDuty's `routing_key`), or `None` to ignore it.
    fn send_to(_value: &str) -> Option<(&'static str, Value)> {
        None
    }

    /// Whether this provider acts on `action` at all (e.g. only PagerDuty acknowledges);
    /// `Some(reason)` skips.
    fn unsupported(&self, _action: Action) -> Option<String> {
        None
    }

    /// Deliver `job`.
    fn act(&self, ctx: &Ctx<'_>, job: &Job<'_>) -> std::result::Result<Done, Failed>;

    /// How a response to `req` is classified when a spooled request is delivered later (the
    /// closure `act` used is gone by then). Default: [`http::classify_status`].
    fn classify(_req: &Request, resp: &http::Response) -> Class {
        http::classify_status(resp.status)
    }

    /// References to remember from the response to a spooled request (merged into the
    /// incident's `refs`), e.g. the id of a Reactio incident created late. Default: none.
    fn spooled_refs(_req: &Request, _resp: &http::Response) -> Map<String, Value> {
        Map::new()
    }

    /// Whether a spooled trigger is dropped (moved to `failed/`) when its incident was resolved
    /// after it was spooled. `true` for phone calls: a late call about a recovered service
    /// wakes someone for nothing. Default `false`: the trigger and its resolve both go out, so
    /// the service keeps the incident's history.
    const DROP_TRIGGERS_AFTER_RESOLVE: bool = false;
}

/// A handler's whole `main`: run one invocation on stdin, print a failure as one masked log
/// line, and return the exit code.
pub fn main<P: Provider>(args: &CommonArgs, flags: Map<String, Value>) -> std::process::ExitCode {
    main_with::<P>(args, flags, std::io::stdin().lock())
}

/// [`main`] with the event read from `input` instead of stdin (e.g. a synthetic event for a
/// rehearsal such as `handler-twilio --test`).
pub fn main_with<P: Provider>(args: &CommonArgs, flags: Map<String, Value>, input: impl std::io::Read) -> std::process::ExitCode {
    let mut log = Logger::new(P::NAME, args.log_format, args.verbose);
    match run::<P>(args, flags, input, &mut log) {
        Ok(code) => code.into(),
        Err(failure) => {
            log.error(failure.to_string());
            failure.code.into()
        }
    }
}

/// Run one invocation of handler `P` on the event read from `stdin` (or, with `--flush`, deliver
/// what the spool holds and read nothing).
///
/// `flags` holds the handler's own flags as settings (`routing_key` …), laid over the files
/// together with the shared flags. Returns the exit code for a completed run; errors carry
/// theirs. `log` gets the provider's secrets registered as soon as they are known.
pub fn run<P: Provider>(args: &CommonArgs, flags: Map<String, Value>, stdin: impl std::io::Read, log: &mut Logger) -> Result<Code> {
    if args.flush {
        return flush::flush_only::<P>(args, flags, log);
    }
    let (mut event, raw) = match args.from {
        Some(source) => {
            let mut notes = Vec::new();
            let event = args.invocation().read(source, stdin, &mut notes);
            notes.iter().for_each(|n| log.info(n));
            (event?, None)
        }
        None => {
            let raw = event::read_capped(stdin)?;
            (event::parse_json(&raw, args.input)?, Some(raw))
        }
    };
    if let Some((setting, value)) = event.send_to.as_deref().and_then(P::send_to) {
        event.overrides.entry(P::NAME.to_string()).or_default().insert(setting.to_string(), value);
    }
    log.debug(format!("event: {} {}/{} status {}", event.format.name(), event.entity, event.check, event.status));

    let (section, common) = settings::<P>(args, flags, Some(&event), log)?;
    let provider = P::from_settings(section, &common)?;
    log.add_secrets(provider.secrets());

    if let Err(not_ready) = provider.ready() {
        if !args.dry_run {
            return Err(not_ready);
        }
        log.warn(format!("{not_ready} (dry run carries on; a real run exits {})", not_ready.code.as_u8()));
    }
    let deadline = Deadline::after(common.timeout);
    let new_client = || Client::new(common.ca_file.as_deref()).map_err(|e| Code::Config.fail(e));

    let key = provider.incident_key(&event);
    let action = match filter::decide(&event, &common) {
        Decision::Act(a) if provider.unsupported(a).is_none() => Some(a),
        Decision::Act(a) => {
            log.info(format!("skipped {key}: {}", provider.unsupported(a).unwrap_or_default()));
            None
        }
        Decision::Skip(reason) => {
            log.info(format!("skipped {key}: {reason}"));
            None
        }
        Decision::QuietSkip(reason) => {
            log.debug(format!("skipped {key}: {reason}"));
            None
        }
    };

    if args.dry_run {
        let Some(action) = action else { return Ok(Code::Ok) };
        let client = new_client()?;
        let ctx = Ctx { client: &client, deadline, log, dry_run: true, store: None, spool: None };
        let job = Job { action, event: &event, incident_key: &key, previous: None };
        return finish(log, &ctx, &job, provider.act(&ctx, &job)).map(|_| Code::Ok);
    }

    // Dedup. A broken state store must not silence a page: deliver without dedup, loudly.
    let store = match FileStore::open(P::NAME, common.state_dir.as_deref()) {
        Ok(opened) => {
            if let Some(n) = &opened.fallback_notice {
                log.warn(n);
            }
            // A record's lock held on purpose must not eat the delivery's time.
            Some(opened.store.with_lock_deadline(std::time::Instant::now() + common.timeout / 4))
        }
        Err(e) => {
            log.error(format!(
                "state store unavailable ({e:#}); delivering without dedup (set --state-dir or state_dir to a writable directory)"
            ));
            None
        }
    };
    // Older undelivered requests go first, within a share of this invocation's deadline, even
    // when this event itself is skipped: every invocation is a chance to deliver them.
    // `had_entries`: an empty spool (the usual case) costs one directory listing, not three.
    let (spool, had_entries) = match Spool::open(P::NAME, common.spool_dir.as_deref()) {
        Ok((spool, notice)) => {
            if let Some(n) = notice {
                log.warn(n);
            }
            let had_entries = spool.queued().is_ok_and(|q| !q.is_empty());
            if had_entries {
                flush::before_delivery::<P>(&spool, &new_client()?, &deadline, store.as_ref(), &common, log);
            }
            (Some(spool), had_entries)
        }
        Err(e) => {
            log.error(format!("spool unavailable ({e:#}); a request not delivered in time will be printed to stderr"));
            (None, false)
        }
    };
    let Some(action) = action else { return Ok(Code::Ok) };
    let client = new_client()?;

    let mut notice = |n: String| log.warn(n);
    let refresh = filter::refresh_for(&event, &common).as_secs();
    let interval_slack = event.interval.unwrap_or(0) / 2;
    let req = ClaimRequest {
        key: &key,
        action,
        severity: event.status_name(),
        // Checks run every `interval`, so the event that is due at `refresh` arrives a little
        // early or late; half an interval of slack keeps it from being pushed a whole period.
        refresh_secs: refresh.saturating_sub(interval_slack.min(refresh / 2)),
        claim_ttl_secs: common.timeout.as_secs() + 5,
        now: crate::clock::now_unix(),
    };
    let (previous, token) = match store.as_ref().map(|s| state::claim(s, &req, &mut notice)) {
        None => (None, None),
        Some(Ok(Claim::Skip(reason))) => {
            log.info(format!("skipped {key}: {reason}"));
            return Ok(Code::Ok);
        }
        Some(Ok(Claim::Proceed { previous, token })) => (previous, Some(token)),
        Some(Err(e)) => {
            log.error(format!("state store failed ({e:#}); delivering without dedup"));
            (None, None)
        }
    };

    let queue = spool.as_ref().map(|spool| Queue {
        spool,
        handler: P::NAME,
        incident_key: &key,
        action,
        secrets: provider.secrets(),
        behind: if had_entries { spool.queued_for(&key).unwrap_or(0) } else { 0 },
        added: RefCell::new(Vec::new()),
        lost: std::cell::Cell::new(false),
    });
    let ctx = Ctx {
        client: &client,
        deadline,
        log,
        dry_run: false,
        store: store.as_ref().map(|s| s as &dyn state::Store),
        spool: queue,
    };
    let job = Job { action, event: &event, incident_key: &key, previous: previous.as_ref() };
    let outcome = provider.act(&ctx, &job);
    let spooled = ctx.spool.as_ref().map_or(0, |q| q.added.borrow().len());
    // A request that should have been spooled and could not be (no spool, or the write failed).
    // A provider that retries by itself instead (Twilio's sequential calls) loses nothing.
    let lost = ctx.spool.as_ref().is_none_or(|q| q.lost.get());
    if let (Some(store), Some(token)) = (&store, &token) {
        let recorded = match &outcome {
            Ok(done) => state::confirm(store, &key, token, &mut notice, &mut |inc| {
                inc.refs.extend(done.refs.clone());
            }),
            // Spooled: it will go out, so later events for the incident see it as sent and
            // neither page twice nor drop the resolve.
            Err(Failed::NotYet(_) | Failed::Config(_)) if spooled > 0 => {
                state::confirm(store, &key, token, &mut notice, &mut |_| {})
            }
            Err(_) => state::release(store, &key, token, previous.as_ref(), &mut notice),
        };
        if let Err(e) = recorded {
            log.error(format!("cannot record the outcome for {key} in the state store: {e:#}"));
        }
    }
    if matches!(outcome, Err(Failed::NotYet(_) | Failed::Config(_))) && spooled == 0 && lost {
        // Nowhere to keep it: the monitoring system's log is the last place the event survives.
        let shown = match &raw {
            // One line, whole: compact JSON (it parsed, so it is JSON).
            Some(bytes) => serde_json::from_slice::<Value>(bytes)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| String::from_utf8_lossy(bytes).trim().to_string()),
            None => serde_json::json!({
                "entity": event.entity, "check": event.check, "status": event.status, "output": event.output,
            })
            .to_string(),
        };
        log.error(format!("undelivered event, not spooled: {shown}"));
    }
    finish(log, &ctx, &job, outcome).map(|_| Code::Ok)
}

/// The merged settings section of `P` and its shared part: `P`'s defaults < settings files
/// (`--config`) < shared flags and `flags` (secrets named by `*_file` settings read in) <
/// the overrides `event` carries, as far as [`crate::trust`] lets them (entity, then check).
/// Errors exit 78. Warnings about the files (a secret readable by others) and about each
/// override not used go to `log`.
fn settings<P: Provider>(
    args: &CommonArgs,
    flags: Map<String, Value>,
    event: Option<&Event>,
    log: &Logger,
) -> Result<(Map<String, Value>, Common)> {
    let files = Files::load(&args.config)?;
    for w in files.warnings() {
        log.warn(w);
    }
    let mut shared = args.settings();
    shared.extend(flags);
    let from_files = config::secret_files(P::NAME, files.section(P::NAME))?;
    let operator = config::overlay(P::defaults(), [from_files, config::secret_files(P::NAME, shared)?]);
    // The operator's own settings must be right (exit 78 otherwise); an event's may not be.
    let common: Common = config::typed(P::NAME, operator.clone())?;
    common.validate(P::NAME)?;
    let valid = |m: &Map<String, Value>| -> Result<()> {
        let common: Common = config::typed(P::NAME, m.clone())?;
        common.validate(P::NAME)?;
        P::from_settings(m.clone(), &common).map(drop)
    };
    let overrides = event.map(|e| crate::trust::overrides_of(e, P::NAME)).unwrap_or_default();
    let section = crate::trust::apply(P::NAME, operator, overrides, P::SETTINGS, &valid, &mut |line| log.warn(line));
    let common: Common = config::typed(P::NAME, section.clone())?;
    common.validate(P::NAME)?;
    Ok((section, common))
}

fn finish(log: &Logger, ctx: &Ctx<'_>, job: &Job<'_>, outcome: std::result::Result<Done, Failed>) -> Result<()> {
    let took = http::fmt_ms(ctx.deadline.elapsed());
    let what = format!("{} {}", job.action.name(), job.incident_key);
    match outcome {
        Ok(done) => {
            let verb = if ctx.dry_run { format!("would have {}", job.action.past()) } else { job.action.past().to_string() };
            let detail = if done.detail.is_empty() { String::new() } else { format!(" {}", done.detail) };
            log.info(format!("{verb} {}{detail} in {took}", job.incident_key));
            Ok(())
        }
        Err(Failed::Permanent(reason)) => {
            Err(Code::Unavailable.msg(format!("{what} refused: {reason}; not retried (fix the request or credentials)")))
        }
        Err(Failed::Config(reason)) => Err(Code::Config.msg(format!("{what} cannot be sent: {reason}"))),
        Err(Failed::NotYet(reason)) => Err(Code::TempFail.msg(format!("{what} not delivered within {took}: {reason}"))),
    }
}
