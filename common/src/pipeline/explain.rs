//! `--explain`: read the event and print every decision, sending nothing and touching nothing.
//!
//! For an operator asking "why did (or didn't) this page?": the event as read, the settings
//! that decided (severities, occurrences, refresh), the filters' verdict, the ledger's record
//! and its verdict, and what the spool holds for the incident. Reads only: no hold is taken,
//! no record or spool entry is written, no request is sent. One line per decision on stdout.

use std::io::Write;

use super::{Provider, try_open_store};
use crate::config::Common;
use crate::event::Event;
use crate::exit::{Code, Result};
use crate::filter::Action;
use crate::http::Deadline;
use crate::log::{Logger, escape_controls};
use crate::spool::Spool;
use crate::state::file::FileStore;
use crate::state::{self, Proposal, Store, Verdict};

/// What `--explain` looks at.
pub(super) struct Input<'a> {
    pub(super) event: &'a Event,
    pub(super) common: &'a Common,
    pub(super) key: &'a str,
    pub(super) action: &'a std::result::Result<Action, (String, bool)>,
    pub(super) proposal: Option<&'a Proposal>,
    pub(super) now: u64,
}

/// Print the decisions for `input`.
pub(super) fn explain<P: Provider>(input: &Input<'_>, log: &Logger) -> Result<Code> {
    let Input { event, common, key, action, proposal, now } = input;
    let mut lines = vec![
        format!(
            "event: {} {}/{} status {} ({})",
            event.format.name(),
            escape_controls(&event.entity),
            escape_controls(&event.check),
            event.status,
            event.status_name()
        ),
        format!("incident key: {}", escape_controls(key)),
        format!(
            "settings: severities {}, occurrences {}{}, refresh {}{}, timeout {}",
            common.severities.iter().map(|s| s.name()).collect::<Vec<_>>().join(","),
            event.min_occurrences.unwrap_or(common.occurrences),
            if event.min_occurrences.is_some() { " (the check's `occurrences`)" } else { "" },
            crate::config::show_duration(crate::filter::refresh_for(event, common)),
            if event.refresh.is_some() { " (the check's `refresh`)" } else { "" },
            crate::config::show_duration(common.timeout)
        ),
    ];
    match action {
        Ok(a) => lines.push(format!("filters: {}", a.name())),
        Err((why, _)) => lines.push(format!("filters: skip ({})", escape_controls(why))),
    }
    if let Some(p) = proposal {
        lines.push(event_time(event, p.event_time, *now));
    }
    // A shared store is only read; the file store and the spool are found, never created.
    let store: std::result::Result<Box<dyn Store>, anyhow::Error> = match common.state_store {
        Some(_) => try_open_store::<P>(common, &Deadline::after(common.timeout), log),
        None => Ok(Box::new(FileStore::find(P::NAME, common.state_dir.as_deref()))),
    };
    // As a real run reads it: `known` is whether the ledger could say (`super::decide`).
    let (record, known) = match store.as_deref() {
        Ok(s) => match state::get(s, key) {
            Ok(r) => {
                let notices = s.take_notices();
                lines.extend(notices.iter().map(|n| format!("ledger: {}", escape_controls(n))));
                lines.push(format!(
                    "ledger ({}): {}",
                    s.describe(),
                    r.as_ref().map_or_else(|| "no record".to_string(), |r| escape_controls(&r.to_value().to_string()).into_owned())
                ));
                (r, notices.is_empty())
            }
            Err(e) => {
                lines.push(format!("ledger ({}): unreadable: {e:#}; a real run delivers without it", s.describe()));
                (None, false)
            }
        },
        Err(e) => {
            lines.push(format!("ledger: unavailable: {e:#}; a real run delivers without it"));
            (None, false)
        }
    };
    // Requests noted in flight: a delivery is under way, a handler died mid-request, or a
    // request of unknown fate waits in a spool (this host's or another's). A real run waits for
    // the first, or settles the others (spooled as of unknown fate, looked up or sent again)
    // before it decides this event.
    if let Some(n) = record.as_ref().map(|r| r.inflight.len()).filter(|n| *n > 0) {
        lines.push(format!(
            "ledger: {n} request(s) noted in flight (a delivery under way, left by a handler that died, or of unknown fate and waiting in a spool): a real run settles them first, then decides this event"
        ));
    }
    if let Some(p) = proposal {
        lines.push(match super::decide::<P>(record.as_ref(), known, p, *now) {
            Verdict::Send => format!("ledger verdict: send the {} (event time {})", p.action.name(), crate::clock::rfc3339(p.event_time)),
            Verdict::Skip(why) => format!("ledger verdict: skip ({})", escape_controls(&why)),
            Verdict::Superseded(why) => format!("ledger verdict: {}", escape_controls(&why)),
        });
    }
    // Listed without moving anything aside (a delivering run's listing does).
    let spool = Spool::find(P::NAME, common.spool_dir.as_deref());
    if !spool.dir().is_dir() {
        lines.push(format!("spool ({}): nothing queued (no such directory yet)", spool.dir().display()));
    } else {
        match spool.peek() {
            Ok(listing) => {
                lines.extend(listing.passed_over.iter().map(|l| escape_controls(l).into_owned()));
                let own = listing.names_for(key).filter(|n| spool.read(n).ok().flatten().is_some_and(|e| e.incident_key == **key)).count();
                let all = listing.names.len();
                lines.push(format!("spool ({}): {own} request(s) queued for this incident, {all} in all", spool.dir().display()));
                if own > 0 && proposal.is_some() {
                    lines.push("spool: this event's requests go after the queued ones".to_string());
                }
            }
            Err(e) => lines.push(format!("spool: unavailable ({e:#})")),
        }
    }
    // The record's requests in flight carry their event's overrides, which may hold a check's
    // own credentials (a Twilio auth token in `check.twilio`) that the event explained need not
    // carry: masked, as `--list` masks them.
    let inflight: Vec<String> =
        record.iter().flat_map(|inc| inc.inflight.iter()).flat_map(|e| crate::config::secret_values(&e.overrides)).collect();
    let mut secrets = log.secrets();
    secrets.extend(inflight.iter().map(String::as_str));
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{}", crate::secret::mask_all(&l, &secrets));
    }
    Ok(Code::Ok)
}

/// The line saying which time the ledger orders the event by (`ordered`, Unix seconds) and,
/// when that is not the time the event gives, why ([`state::ordering_time`]).
fn event_time(event: &Event, ordered: u64, now: u64) -> String {
    let at = crate::clock::rfc3339;
    let given = event.timestamp.and_then(|t| u64::try_from(t).ok()).filter(|t| *t > 0);
    match given {
        None => format!("event time: none given; ordered by receipt, {}", at(ordered)),
        Some(_) if event.time_source == crate::event::TimeSource::Receipt => {
            format!("event time: this host's clock as the event was read; ordered by receipt, {}", at(ordered))
        }
        Some(t) if t == ordered => format!("event time: {}", at(t)),
        Some(t) if t > now => format!("event time: {} is after the receipt; ordered as {}", at(t), at(ordered)),
        Some(t) => format!(
            "event time: {} is from the monitored host's clock, more than {} s before the receipt; ordered as {}",
            at(t),
            now.saturating_sub(ordered),
            at(ordered)
        ),
    }
}
