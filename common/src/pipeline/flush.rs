//! Delivering spooled requests: before each invocation's own delivery, and `--flush`.
//!
//! The spool ([`crate::spool`]) keeps order, locking and the `failed/` directory; this module
//! supplies what only a handler knows: how its responses are classified ([`Provider::classify`]),
//! what to remember from them ([`Provider::spooled_refs`]), and whether a trigger is still worth
//! delivering once its incident has been resolved ([`Provider::DROP_TRIGGERS_AFTER_RESOLVE`]).

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{Provider, settings};
use crate::cli::CommonArgs;
use crate::config::Common;
use crate::exit::{Code, Result};
use crate::http::{self, Body, Client, Deadline, Delivery};
use crate::log::Logger;
use crate::secret;
use crate::spool::{Entry, Outcome, Report, Spool};
use crate::state::{self, Incident, Store, file::FileStore};

/// Share of an invocation's deadline that older spooled requests may use before its own
/// delivery: a quarter, so that the new event still has most of the time.
const SHARE_BEFORE_DELIVERY: u32 = 4;

/// Deliver older spooled requests within a quarter of `deadline`, if no other process is
/// flushing; log what happened. Never fails the invocation: its own event comes first.
pub(super) fn before_delivery<P: Provider>(
    spool: &Spool,
    client: &Client,
    deadline: &Deadline,
    store: Option<&FileStore>,
    common: &Common,
    log: &Logger,
) {
    let budget = Deadline::after(deadline.remaining() / SHARE_BEFORE_DELIVERY);
    match run::<P>(spool, client, &budget, false, store, common, log) {
        Ok(report) if report.busy => log.debug("spool: another process is flushing; not waiting for it"),
        Ok(report) => {
            if let Some(why) = &report.stopped {
                log.warn(format!("spool: {} request(s) still queued ({why})", report.remaining));
            }
        }
        Err(e) => log.error(format!("spool: flush failed: {e:#}")),
    }
}

/// `--flush`: deliver everything the spool holds within `--timeout`, waiting for a concurrent
/// flush to finish first.
///
/// Exit codes: 0 the spool is empty; 75 requests remain queued (still unreachable, or the
/// deadline ran out); 69 requests were refused for good in this flush and moved to `failed/`;
/// 78 no spool directory can be used.
pub(super) fn flush_only<P: Provider>(args: &CommonArgs, flags: Map<String, Value>, log: &mut Logger) -> Result<Code> {
    let (section, common) = settings::<P>(args, flags, None, log)?;
    // Mask the configured credentials too, when the settings are complete enough to say.
    if let Ok(provider) = P::from_settings(section, &common) {
        log.add_secrets(provider.secrets());
    }
    let log = &*log;
    let (spool, notice) = Spool::open(P::NAME, common.spool_dir.as_deref())
        .map_err(|e| Code::Config.msg(format!("spool unavailable: {e:#}; set --spool-dir or spool_dir")))?;
    if let Some(n) = notice {
        log.warn(n);
    }
    let store = match FileStore::open(P::NAME, common.state_dir.as_deref()) {
        Ok(opened) => Some(opened.store),
        Err(e) => {
            log.warn(format!("state store unavailable ({e:#}); references from late answers are not remembered"));
            None
        }
    };
    let client = Client::new(common.ca_file.as_deref()).map_err(|e| Code::Config.fail(e))?;
    let deadline = Deadline::after(common.timeout);
    let report = run::<P>(&spool, &client, &deadline, true, store.as_ref(), &common, log)
        .map_err(|e| Code::TempFail.msg(format!("spool: flush failed: {e:#}")))?;
    let took = http::fmt_ms(deadline.elapsed());
    let summary = format!(
        "flushed {}: {} delivered, {} moved to failed/, {} still queued, in {took}",
        spool.dir().display(),
        report.delivered,
        report.failed + report.dropped,
        report.remaining
    );
    if report.failed > 0 {
        return Err(Code::Unavailable.msg(format!(
            "{summary}; read the reasons in {}/failed/ and resend by hand if still needed",
            spool.dir().display()
        )));
    }
    if report.remaining > 0 {
        let why = report.stopped.or(report.busy.then(|| "another flush held the lock until the deadline".to_string()));
        return Err(Code::TempFail.msg(format!("{summary}: {}", why.unwrap_or_else(|| "the deadline ran out".into()))));
    }
    // The flush timer runs every minute: an empty spool (the usual case) is not news.
    if report.delivered == 0 && report.failed + report.dropped == 0 {
        log.debug(summary);
    } else {
        log.info(summary);
    }
    Ok(Code::Ok)
}

fn run<P: Provider>(
    spool: &Spool,
    client: &Client,
    deadline: &Deadline,
    wait: bool,
    store: Option<&FileStore>,
    common: &Common,
    log: &Logger,
) -> anyhow::Result<Report> {
    let until = Instant::now() + deadline.remaining();
    let mut notice = |n: String| log.error(n);
    let mut deliver = |entry: &Entry| deliver::<P>(entry, client, deadline, store, log);
    spool.flush(until, wait, common.spool_max_age, crate::clock::now_unix(), &mut notice, &mut deliver)
}

/// Deliver one spooled entry now.
fn deliver<P: Provider>(entry: &Entry, client: &Client, deadline: &Deadline, store: Option<&FileStore>, log: &Logger) -> Outcome {
    let secrets: Vec<&str> = entry.secrets.iter().map(String::as_str).collect();
    let say = |msg: String| secret::mask_all(&msg, &secrets);
    let what = format!("spooled {} {} from {}", entry.action, entry.incident_key, crate::clock::rfc3339(entry.created));
    let drop_check = P::DROP_TRIGGERS_AFTER_RESOLVE && entry.action == "trigger";
    // The stored record is read only when something depends on it.
    let incident = match (drop_check || !entry.fill.is_empty(), store) {
        (true, Some(store)) => state::get(store, &entry.incident_key, &mut |n| log.warn(n)).ok().flatten(),
        _ => None,
    };

    if drop_check
        && incident.as_ref().is_some_and(|i| !i.open && i.resolved_at.is_some_and(|r| r >= entry.created))
    {
        let why = "its incident was resolved before it could be delivered; not sent, so nobody is woken for a recovered service";
        log.warn(format!("{what}: {why}"));
        return Outcome::Dropped(why.into());
    }

    let mut req = entry.request.clone();
    for (pointer, name) in &entry.fill {
        let Some(value) = incident.as_ref().and_then(|i| i.refs.get(name)) else {
            return Outcome::Wait(format!("{name} of {} is not known yet", entry.incident_key));
        };
        if let Body::Json(body) = &mut req.body
            && let Some(slot) = body.pointer_mut(pointer)
        {
            *slot = value.clone();
        }
    }

    let shown = req.redacted(&secrets);
    log.info(say(format!("{what}: {} {}", shown.method.name(), shown.url)));
    let classify = |resp: &http::Response| P::classify(&req, resp);
    let delivery = client.deliver(&req, deadline, &classify, &mut |line| log.info(say(line)));
    match delivery {
        Delivery::Delivered { response, .. } => {
            let refs = P::spooled_refs(&req, &response);
            if let (false, Some(store)) = (refs.is_empty(), store) {
                remember(store, &entry.incident_key, refs, log);
            }
            let queued = Duration::from_secs(crate::clock::now_unix().saturating_sub(entry.created));
            log.info(say(format!("{what}: delivered after {} in the spool", humantime::format_duration(queued))));
            Outcome::Delivered
        }
        Delivery::Permanent { reason, .. } => {
            log.error(say(format!("{what}: refused: {reason}; moved to failed/, not retried")));
            Outcome::Failed(say(reason))
        }
        // This machine's configuration (trust store, proxy) is still wrong: keep it for the
        // flush after the fix (until spool_max_age), and stop, as every entry would fail alike.
        Delivery::Broken(reason) => Outcome::Retry(say(format!("{reason} (fix the configuration; the entry is kept)"))),
        Delivery::NotYet { reason, .. } => Outcome::Retry(say(reason)),
    }
}

/// Merge `refs` into the stored record of `key` (e.g. a late Reactio incident id).
fn remember(store: &FileStore, key: &str, refs: Map<String, Value>, log: &Logger) {
    let result = store.update(key, &mut |n| log.warn(n), &mut |current| {
        let mut inc: Incident = current.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
        inc.key = key.to_string();
        inc.refs.extend(refs.clone());
        serde_json::to_value(inc).ok()
    });
    if let Err(e) = result {
        log.error(format!("cannot record the answer to a spooled request for {key}: {e:#}"));
    }
}
