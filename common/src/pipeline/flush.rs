//! Delivering spooled requests: an incident's own before its new event, other incidents' within
//! a share of an invocation's deadline, and everything with `--flush`.
//!
//! Each entry is the tail of its incident's log (DESIGN.md "The incident ledger", invariant 6):
//! - entries are taken oldest first, and an incident whose entry cannot go out yet holds back
//!   its later entries (a resolve never overtakes its trigger); a retryable failure also holds
//!   back the entries sent the same way (the same event overrides: routing key, team,
//!   account), and takes at most half of what is left of the flush (all of it for a request
//!   of unknown fate, which needs a whole attempt timeout), so that the others still go out. PagerDuty's rate limit is per routing key, and a check result may carry a key of
//!   its own: one destination answering 429 for good must not stop every other incident's
//!   spooled pages (a service that is down fails every destination alike, one try each);
//! - an entry is delivered under its incident's hold, after checking that it is still there,
//!   so two flushes (or a flush and a new event, on any host sharing the store) never deliver
//!   it twice; without a hold (no store, or it failed) a flush claims the incident's entries
//!   in the spool directory instead ([`Spool::claim`]), and another flush or event of this
//!   host leaves them queued meanwhile;
//! - the ledger decides it again, as a new event would: an entry a later delivered action made
//!   stale (a trigger after a resolve, here or on another host) or an identical repeat inside
//!   `refresh` is not sent, and moves to `failed/` with the reason; a stale one of unknown fate
//!   may have reached the service after that action, undoing it there: a trigger's recovery
//!   is sent again ([`Provider::recovery_of`]: PagerDuty's resolve), and a resolve or
//!   acknowledge leaves the record in doubt, so that the next trigger goes out
//!   ([`state::doubt_trigger`], for a service that merges repeats);
//! - the request is built from the settings in force now (base URL, credentials, proxy, CA)
//!   and the event's own overrides kept with it, never from a stored URL;
//! - a request of unknown fate (it may have reached the service) is looked up first where the
//!   provider can ([`Provider::lookup`]: Twilio lists the calls), and is only tried again with
//!   a whole attempt timeout to spare ([`crate::http::retry`]); one whose lookup gets no
//!   usable answer stays queued for a later flush's lookup, and one whose lookup the service
//!   refuses for good ([`Found::Broken`]: a missing scope, an API key that may not list) stays
//!   queued too, never sent again blind, and the flush exits 78 (the settings must change);
//! - a request whose credentials the service refuses (HTTP 401) is kept for the flush after
//!   the fix, holding back the entries sent the same way only, unless the credentials are the
//!   entry's own (a check's key, kept with it), which no fix reaches: refused, as live;
//! - what the service accepted is recorded in the ledger like a live delivery;
//! - an entry that is a run of the provider's own rather than one request (a Twilio sequential
//!   run, [`Provider::is_run`]) is carried on by the provider within its share
//!   ([`Provider::resume`]): unfinished, it stays queued, and the incident's record notes where
//!   it stands; it is superseded, before anything is sent, by a resolve or acknowledge of a
//!   later event that is already known (the event being handled, or an entry behind it), where
//!   a single request (a broadcast call) still goes before the resolve queued behind it (and so
//!   does a run the provider says is no page of its own, [`Provider::superseded_by_a_later_stop`]);
//! - a request refused for good may have a stand-in ([`Provider::instead`]), written into its
//!   entry before it goes: another request, or a run carried on as above (Slack: a spooled
//!   update whose war room is gone opens a new one, as live).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::settings::{operator_settings, settings_with};
use super::{Ctx, Found, Provider, Resumed};
use crate::cli::CommonArgs;
use crate::config::Common;
use crate::exit::{Code, Result};
use crate::filter::Action;
use crate::http::{self, Client, Deadline, Response};
use crate::log::Logger;
use crate::outcome::{Fate, Outcome};
use crate::spool::{self, Entry, Spool};
use crate::state::{self, Incident, Proposal, Stop, Store, Verdict};

/// How long a flush waits before asking again when a lookup cannot tell yet whether a request
/// of unknown fate went through ([`Found::CannotTell`]): 250 ms, or as long as the last ask took.
const LOOKUP_PAUSE: Duration = Duration::from_millis(250);

/// How many times a flush asks before it sends a request it cannot tell about again: 4.
const LOOKUP_ASKS: u32 = 4;

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Entries delivered and removed.
    pub delivered: usize,
    /// Entries moved to `failed/` because they were refused, unreadable, or too old.
    pub failed: usize,
    /// Entries not sent on purpose (superseded, an identical repeat), moved to `failed/` for
    /// the record.
    pub dropped: usize,
    /// Entries still queued afterwards.
    pub remaining: usize,
    /// Why entries are still queued: what stopped the flush (this machine's configuration), or
    /// the first retryable failure (the service, or one destination, still refusing).
    pub stopped: Option<String>,
    /// The first request of unknown fate kept because the service refused its lookup for good
    /// ([`Found::Broken`]), the line that says so, which whoever ran the flush logs (`--flush`
    /// in its last line; any later one is logged as it is met): only a change of the settings
    /// lets it go out, so the flush exits 78, not 75.
    pub unlookable: Option<String>,
    /// Entries are kept that only a change of the settings lets go out: the service refuses
    /// the credentials in force, this machine's configuration keeps them from being sent (a
    /// CA, a proxy, an `api_url` the service is not behind), the settings build no provider
    /// for them (no routing key), or [`Report::unlookable`]. `--flush` then exits 78, not 75
    /// (waiting does not bring them out), and an event queued behind one too.
    pub needs_settings: bool,
}

impl Report {
    /// Count in what a nested run (one incident's entries) reported.
    fn add(&mut self, other: Report) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.dropped += other.dropped;
        self.remaining += other.remaining;
        if self.stopped.is_none() {
            self.stopped = other.stopped;
        }
        if self.unlookable.is_none() {
            self.unlookable = other.unlookable;
        }
        self.needs_settings |= other.needs_settings;
    }
}

/// Delivers spooled entries of one handler.
pub(super) struct Flusher<'a, P: Provider> {
    spool: Option<&'a Spool>,
    store: Option<&'a dyn Store>,
    /// The operator's settings of `P`, as this invocation read them ([`super::settings::operator_settings`]).
    operator: &'a Map<String, Value>,
    /// The shared settings (`spool_max_age`; `entity_settings` and `check_settings`, which only
    /// the operator sets, say what an entry's overrides may set).
    common: &'a Common,
    log: &'a Logger,
    /// Providers built from the current settings, by the event overrides of their entries.
    providers: RefCell<BTreeMap<String, Rc<std::result::Result<P, String>>>>,
    /// A resolve or acknowledge this invocation is handling for the incident it flushes: a run
    /// of an earlier event ([`Provider::is_run`]) is stale then, and not carried on.
    stop: Option<Stop>,
    /// What this flush delivered, per incident key, as the ledger holds it after [`state::apply`]:
    /// the record when no store is at hand (Redis down, or a write it refused), so that the
    /// requests queued behind a delivered one get its answer (a war room's channel, a Reactio
    /// incident id) and are decided against it ([`Flusher::ledger`]).
    applied: RefCell<BTreeMap<String, Incident>>,
}

/// What became of one entry ([`Flusher::deliver`]).
enum Settled {
    /// What its request (or run) came to, as a request's outcome.
    Request(Outcome),
    /// A run that is over without reaching anyone ([`Resumed::Ended`]), the reason.
    Ended(String),
    /// The service refused the credentials its request (or a request of its run) was sent
    /// with (HTTP 401, [`http::credentials_refused`]), the reason.
    Unauthorized(String),
    /// Answered with a 4xx that is not the service's own (a proxy's "blocked by policy" page, a
    /// wrong `api_url`'s 404: [`crate::http::classify_json_api_with`]), the reason: kept for the
    /// fix, holding back its incident alone. The flush goes on: a content filter may block
    /// one request (for what a monitored host wrote in it) and let the next through, and one
    /// host's check output must not hold back every other incident's page; when the URL is
    /// wrong, every entry is answered alike, each once.
    Blocked(String),
    /// A request of unknown fate whose lookup the service refused for good ([`Found::Broken`]),
    /// the line that says so: kept with its fate unknown, never sent again blind, until the
    /// settings let it be looked up.
    Unlookable(String),
}

impl<'a, P: Provider> Flusher<'a, P> {
    pub(super) fn new(
        spool: Option<&'a Spool>,
        store: Option<&'a dyn Store>,
        operator: &'a Map<String, Value>,
        common: &'a Common,
        log: &'a Logger,
    ) -> Self {
        Flusher {
            spool,
            store,
            operator,
            common,
            log,
            providers: RefCell::new(BTreeMap::new()),
            stop: None,
            applied: RefCell::new(BTreeMap::new()),
        }
    }

    /// The ledger; `None` without one, or once it failed before it answered anything, for a
    /// reason that lasts ([`Store::unusable`]): the call that found it said why, and later
    /// entries go as without a store (claimed in the spool directory) instead of each failing
    /// again.
    fn store(&self) -> Option<&'a dyn Store> {
        self.store.filter(|s| !s.unusable())
    }

    /// This flusher, for an invocation handling `stop` (a resolve or acknowledge) of the
    /// incidents it flushes: runs of earlier events are superseded by it.
    pub(super) fn stopping(mut self, stop: Option<Stop>) -> Self {
        self.stop = stop;
        self
    }

    /// Deliver other incidents' entries (not those whose key hash is `own_hash`) within
    /// `deadline`, passing over incidents another invocation is busy with; logs what is left.
    pub(super) fn others(&self, client: &Client, deadline: &Deadline, own_hash: &str) {
        let report = self.run(client, deadline, &|hash| hash != own_hash, None, None, false);
        if let Some(why) = &report.unlookable {
            self.log.warn(why);
        }
        if let Some(why) = &report.stopped {
            self.log.warn(format!("spool: {} request(s) still queued ({why})", report.remaining));
        }
    }

    /// Deliver `key`'s own entries within `deadline`; `held`: this invocation holds the
    /// incident's hold already. Returns how many are left, the incident's record as this
    /// flush leaves it ([`Flusher::ledger`]: what it delivered, where no store holds it), and
    /// whether one left waits for a fix of the settings ([`Report::needs_settings`]: the event
    /// queued behind it exits 78).
    pub(super) fn incident(&self, client: &Client, deadline: &Deadline, key: &str, held: bool) -> (usize, Option<Incident>, bool) {
        let hash = format!("{:016x}", spool::key_hash(key));
        let report = self.run(client, deadline, &|h| h == hash, Some(key), held.then_some(key), false);
        if let Some(why) = &report.unlookable {
            self.log.warn(why);
        }
        if let Some(why) = &report.stopped {
            self.log.warn(format!("spool: {} request(s) for {key} still queued ({why})", report.remaining));
        }
        (report.remaining, self.ledger(key), report.needs_settings)
    }

    /// Deliver the queued entries whose key hash `wanted` accepts, oldest first, until
    /// `deadline`; with `only`, those of that incident key alone (a hash is 64 bits of FNV-1a,
    /// which a name can be made to share: another incident's entries are neither delivered
    /// nor counted as this one's). `held`: the key whose hold this process has already.
    /// `wait`: wait for another holder of an incident within the deadline (`--flush`) instead
    /// of passing over it. An incident whose entry cannot go out yet holds back its later ones
    /// (by incident key, not by hash).
    pub(super) fn run(
        &self,
        client: &Client,
        deadline: &Deadline,
        wanted: &dyn Fn(&str) -> bool,
        only: Option<&str>,
        held: Option<&str>,
        wait: bool,
    ) -> Report {
        let mut report = Report::default();
        let Some(spool) = self.spool else { return report };
        let listing = match spool.list() {
            Ok(l) => l,
            Err(e) => {
                self.log.error(format!("spool: {e:#}"));
                return report;
            }
        };
        let mut held_back: HashSet<String> = HashSet::new();
        // Destinations (an entry's overrides, as JSON) whose entry could not go out yet.
        let mut retrying: HashSet<String> = HashSet::new();
        // Set when nothing else can go out either (this machine's configuration is wrong).
        let mut halted = false;
        // Destinations whose settings build no provider (named once each), and the first reason
        // an entry waits for its own incident: the summary's reason when nothing was retried.
        let mut unbuilt: HashSet<String> = HashSet::new();
        let mut waiting: Option<String> = None;
        // Claims on incidents this flush delivers without a hold ([`Spool::claim`]), kept
        // until it is done.
        let mut claims: HashMap<String, spool::Claim> = HashMap::new();
        // Incidents whose entries a nested run delivered (after adopting requests left in
        // flight): its report counts them.
        let mut done: HashSet<String> = HashSet::new();
        for name in listing.names {
            let hash = spool::key_hash_of_name(&name).to_string();
            if !wanted(&hash) {
                continue;
            }
            // Nothing more goes out: what is left is counted without reading it (an outage's
            // backlog is not read again by every invocation). With `only`, an entry is counted
            // when its key, not only its hash, is the incident's.
            if only.is_none() && (halted || deadline.remaining().is_zero()) {
                report.remaining += 1;
                continue;
            }
            let entry = match spool.read(&name) {
                Ok(Some(e)) => e,
                // Delivered by another process meanwhile.
                Ok(None) => continue,
                Err(why) => {
                    match spool.fail_unreadable(&name) {
                        Ok(to) => self.log.error(format!("spool: {why}; moved to {}", to.display())),
                        Err(e) => self.log.error(format!("spool: {why}; and it cannot be moved aside: {e:#}")),
                    }
                    report.failed += 1;
                    continue;
                }
            };
            if only.is_some_and(|k| k != entry.incident_key) || done.contains(&entry.incident_key) {
                continue;
            }
            let incident = entry.incident_key.clone();
            if halted || held_back.contains(&incident) || deadline.remaining().is_zero() {
                report.remaining += 1;
                continue;
            }
            let destination = destination_of(&entry.overrides);
            if retrying.contains(&destination) {
                held_back.insert(incident);
                report.remaining += 1;
                continue;
            }
            // Settings that build no provider for this destination (no routing key in the
            // flush's settings): its entries wait for a fix, said once, without taking their
            // incidents' holds; entries sent another way (a Zabbix SENDTO key of their own)
            // still go. One past spool_max_age is given up (`deliver`).
            let expired = crate::clock::age(entry.created, crate::clock::now_unix()) > self.common.spool_max_age.as_secs();
            if !expired && let Err(why) = &*self.provider(&entry.overrides) {
                if unbuilt.insert(destination) {
                    let why = unbuilt_reason::<P>(why);
                    self.log.warn(format!("spool: {why}"));
                    waiting.get_or_insert(why);
                }
                report.needs_settings = true;
                held_back.insert(incident);
                report.remaining += 1;
                continue;
            }
            // The incident's hold, unless this process has it already; whether another
            // holder had it first (this flush waited for it to be done, or to die).
            let mut waited = false;
            let hold = match (self.store(), held == Some(entry.incident_key.as_str())) {
                (Some(store), false) => {
                    let taken = match store.hold(&entry.incident_key, Instant::now()) {
                        Ok(None) if wait => {
                            waited = true;
                            store.hold(&entry.incident_key, Instant::now() + deadline.remaining())
                        }
                        taken => taken,
                    };
                    match taken {
                        Ok(Some(h)) => Some(h),
                        Ok(None) => {
                            self.log.debug(format!("spool: {} is busy in another invocation; its entries wait", entry.incident_key));
                            held_back.insert(incident);
                            report.remaining += 1;
                            continue;
                        }
                        Err(e) => {
                            self.log.error(format!("spool: cannot take the hold of {}: {e:#}; delivering without it", entry.incident_key));
                            None
                        }
                    }
                }
                _ => None,
            };
            // A handler that held the incident while this flush waited for it, and died, may
            // have left requests noted in flight, of unknown fate: they go first, where they
            // were noted, ahead of what queued behind them meanwhile, so the incident's entries
            // are delivered from a fresh listing, holding the incident throughout. (A flush
            // that found the incident free leaves the notes to the next event's holder, as
            // before: one another host left for a request it spooled itself is settled there,
            // and judging this host's entries against it, not the record alone, is what keeps
            // a superseded trigger from resolving the incident again over it.)
            if waited && hold.is_some() && self.adopted(&entry) > 0 {
                let inner = self.run(client, deadline, wanted, Some(&incident), Some(&incident), wait);
                // The report carries one unlookable entry's line up; another is said here.
                if report.unlookable.is_some()
                    && let Some(why) = &inner.unlookable
                {
                    self.log.warn(why);
                }
                report.add(inner);
                done.insert(incident);
                continue;
            }
            // Without a hold (no store, or it failed), the claim in the spool directory keeps
            // another flush off the incident's entries until this one is done with them
            // (carrying on one Twilio sequential run twice called its first person twice).
            if hold.is_none() && held != Some(entry.incident_key.as_str()) && !claims.contains_key(&incident) {
                match spool.claim(&incident, &mut |n| self.log.warn(n)) {
                    Ok(Some(claim)) => {
                        claims.insert(incident.clone(), claim);
                    }
                    Ok(None) => {
                        self.log.info(format!("spool: {incident} is being flushed by another invocation; its entries wait"));
                        waiting.get_or_insert_with(|| format!("another invocation is flushing the entries of {incident}"));
                        held_back.insert(incident);
                        report.remaining += 1;
                        continue;
                    }
                    Err(e) => self.log.error(format!("spool: cannot claim the entries of {incident}: {e:#}; delivering without it")),
                }
            }
            // Under the hold: still there?
            let mut entry = match spool.read(&name) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(_) => entry,
            };
            // Sent noted in flight by a flush that did not see it settled (killed mid-request):
            // the service may have acted on it ([`Flusher::note_in_flight`]).
            if entry.noted_in_flight {
                entry.fate = Fate::Unknown;
            }
            // At most half of what is left, so that one destination that keeps failing leaves
            // time for the others; a request of unknown fate may need a whole attempt timeout
            // (it is sent again only with one to spare), so it may use all of it.
            let half = deadline.share(2);
            let budget = if entry.fate == Fate::Unknown { deadline } else { &half };
            let outcome = match self.deliver(client, budget, &name, &mut entry) {
                Settled::Request(outcome) => outcome,
                // Credentials the entry carries itself (a check's API key, kept with it): no fix
                // of the settings delivers it, so it is refused for good, as a live event's 401.
                Settled::Unauthorized(why) if self.own_credentials(&entry) => {
                    Outcome::Refused(format!("{why} (with credentials the event carried, kept with the entry)"))
                }
                // The credentials in force: kept for the flush after the fix (until
                // spool_max_age). The entries sent the same way wait too (they would be
                // refused alike); other destinations, whose credentials may be their own, go on:
                // one refused key must not hold back every other incident's page.
                Settled::Unauthorized(why) => {
                    report.stopped = Some(self.kept_for_fix(&entry, &why, &mut report));
                    held_back.insert(incident);
                    retrying.insert(destination);
                    continue;
                }
                // Of unknown fate, and the service refused its lookup for good: kept as it is
                // (never sent again blind: a second call, a second war room), and its
                // incident's later entries behind it, for the flush after the settings are
                // fixed; the others go on, those sent the same way too (a token may open what
                // it may not list). Said once: the first in the report, for whoever ran the flush
                // to log (the last line of `--flush`, which exits 78), any other here.
                Settled::Unlookable(why) => {
                    // Looked up with credentials the event carried (a check's own token, kept
                    // with the entry): no fix of the settings reaches them; said so, not "fix
                    // the settings" alone.
                    let why = if self.own_credentials(&entry) {
                        format!(
                            "{why} (the lookup used credentials the event carried, kept with the entry, which no fix of the \
                             settings reaches: it moves to failed/ at spool_max_age unless they are given the right)"
                        )
                    } else {
                        why
                    };
                    self.keep_noted(&entry);
                    report.remaining += 1;
                    report.needs_settings = true;
                    held_back.insert(incident);
                    match &report.unlookable {
                        Some(_) => self.log.warn(&why),
                        None => report.unlookable = Some(why),
                    }
                    continue;
                }
                Settled::Blocked(why) => {
                    let why = self.kept_for_fix(&entry, &why, &mut report);
                    report.stopped.get_or_insert(why);
                    held_back.insert(incident);
                    continue;
                }
                Settled::Ended(why) => {
                    match spool.fail(&name, &mut entry, &why) {
                        Ok(to) => {
                            self.log.error(format!(
                                "spool: {} {}: {why}; moved to {}",
                                entry.action.name(),
                                entry.incident_key,
                                to.display()
                            ));
                            self.settled_unrecorded(&entry);
                        }
                        Err(e) => self.log.error(format!("spool: cannot move {name} to failed/: {e:#}")),
                    }
                    report.dropped += 1;
                    continue;
                }
            };
            match outcome {
                Outcome::Delivered(()) => match spool.remove(&name) {
                    Ok(()) => report.delivered += 1,
                    Err(e) => {
                        self.log.error(format!("spool: {e:#}"));
                        halted = true;
                        report.stopped = Some("a delivered entry could not be removed".into());
                    }
                },
                // An entry that cannot be moved stays queued, and is counted so; it is still
                // the head of its incident's log, which holds back the entries behind it.
                Outcome::Skipped(why) => {
                    if self.moved(spool, &name, &mut entry, &why, false) {
                        report.dropped += 1;
                    } else {
                        held_back.insert(incident);
                        report.remaining += 1;
                    }
                }
                Outcome::Refused(why) => {
                    if self.moved(spool, &name, &mut entry, &why, true) {
                        report.failed += 1;
                    } else {
                        held_back.insert(incident);
                        report.remaining += 1;
                        report.stopped.get_or_insert_with(|| format!("{why}; and failed/ cannot be written"));
                    }
                }
                Outcome::Spooled(why) => {
                    self.log.info(format!("spool: {} waits: {why}", entry.incident_key));
                    held_back.insert(incident);
                    report.remaining += 1;
                    waiting.get_or_insert(why);
                }
                Outcome::Retry(r) => {
                    entry.attempts = entry.attempts.saturating_add(1);
                    if r.fate == Fate::Unknown {
                        entry.fate = Fate::Unknown;
                    }
                    spool.rewrite(&name, &entry);
                    self.keep_noted(&entry);
                    report.remaining += 1;
                    held_back.insert(incident);
                    retrying.insert(destination);
                    self.log.info(format!("spool: {} waits: {}", entry.incident_key, r.reason));
                    report.stopped.get_or_insert(r.reason);
                }
                // This machine's configuration (trust store, proxy, credentials) is still
                // wrong: keep it for the flush after the fix (until spool_max_age), and stop,
                // as every entry would fail alike.
                Outcome::Broken(why) => {
                    self.keep_noted(&entry);
                    report.remaining += 1;
                    report.needs_settings = true;
                    halted = true;
                    report.stopped = Some(format!("{why} (fix the configuration; the entry is kept)"));
                }
            }
        }
        // A service still refusing (or this machine's configuration) says more than one
        // incident waiting for its own reason.
        if report.stopped.is_none() {
            report.stopped = waiting;
        }
        report
    }

    /// `entry` kept for a fix of the settings (`why`, the answer): noted ([`Flusher::keep_noted`]),
    /// counted in `report` as left and waiting for the settings, and said; the line's reason.
    fn kept_for_fix(&self, entry: &Entry, why: &str, report: &mut Report) -> String {
        self.keep_noted(entry);
        let why = format!("{why} (fix the configuration; the entry is kept)");
        self.log.warn(format!("spool: {} waits: {why}", entry.incident_key));
        report.remaining += 1;
        report.needs_settings = true;
        why
    }

    /// `entry`, of unknown fate, stays queued after an attempt (the service could not be
    /// reached, or this machine's configuration or the credentials in force keep it from being
    /// sent): noted in its incident's record unless it is already ([`state::keep_noted`]), as a
    /// live invocation notes what it spooled of unknown fate. One taken from a note, by a
    /// `--flush` or the incident's next holder ([`super::adopt_inflight`], which removes the
    /// note), would otherwise leave the ledger saying nothing of it: another host, which cannot
    /// see this spool, decided the incident's next event from the record alone (a failure
    /// skipped as "already notified" over a recovery PagerDuty had applied). Not a run (a Twilio
    /// sequential run, a Slack war room): its progress notes say where it stands, and a copy
    /// carried on by another host would page twice. A failure to note is logged.
    fn keep_noted(&self, entry: &Entry) {
        let Some(store) = self.store().filter(|_| entry.fate == Fate::Unknown) else { return };
        let single = match (&*self.provider(&entry.overrides), serde_json::from_value::<P::Payload>(entry.payload.clone())) {
            (Ok(provider), Ok(payload)) => !provider.is_run(&payload),
            _ => false,
        };
        if single && let Err(e) = state::keep_noted(store, &entry.incident_key, entry) {
            self.log.warn(format!("cannot note the spooled request of unknown fate of {} in flight: {e:#}", entry.incident_key));
        }
    }

    /// Move the requests a handler that died left noted in flight for `entry`'s incident to
    /// the spool ([`super::adopt_inflight`]); how many. Call it holding the incident.
    fn adopted(&self, entry: &Entry) -> usize {
        let Some(store) = self.store() else { return 0 };
        let Ok(Some(record)) = state::get(store, &entry.incident_key) else { return 0 };
        if record.inflight.is_empty() {
            return 0;
        }
        let provider = self.provider(&entry.overrides);
        let secrets = match &*provider {
            Ok(p) => p.secrets(),
            Err(_) => Vec::new(),
        };
        let is_run = |e: &Entry| provider.as_ref().as_ref().map_or(true, |p| super::entry_is_run(p, e));
        super::adopt_inflight(Some(store), self.spool, &entry.incident_key, Some(&record), &secrets, &is_run, false, self.log)
    }

    /// Move `name` to `failed/` with `why`, logged as an error when `refused`; whether it moved
    /// (else it stays queued, and the error line says why it was not sent).
    fn moved(&self, spool: &Spool, name: &str, entry: &mut Entry, why: &str, refused: bool) -> bool {
        match spool.fail(name, entry, why) {
            Ok(to) if refused => self.log.error(format!(
                "spool: {} {}: {why}; moved to {}, not retried",
                entry.action.name(),
                entry.incident_key,
                to.display()
            )),
            Ok(to) => {
                self.log.info(format!("spool: {} {} not sent: {why}; moved to {}", entry.action.name(), entry.incident_key, to.display()))
            }
            Err(e) => {
                self.log.error(format!(
                    "spool: {} {}: {why}; and it cannot be moved to failed/ ({e:#}), so it stays queued as {name}",
                    entry.action.name(),
                    entry.incident_key
                ));
                return false;
            }
        }
        self.settled_unrecorded(entry);
        true
    }

    /// `entry`, moved to `failed/` without a record of its action: a note in flight of it (one
    /// of unknown fate, which a `--flush` leaves noted as it takes it, [`adopt_all_inflight`],
    /// or noted again after a failed attempt, [`Flusher::keep_noted`]) goes with it
    /// ([`state::clear_noted`]), so that no holder takes it up again. A failure is logged (the
    /// next holder then spools it again, and it is settled the same way).
    fn settled_unrecorded(&self, entry: &Entry) {
        if entry.fate == Fate::Unknown
            && let Some(store) = self.store()
            && let Err(e) = state::clear_noted(store, &entry.incident_key, entry)
        {
            self.log.warn(format!("cannot clear the in-flight note of {}: {e:#}", entry.incident_key));
        }
    }

    /// Whether `entry`'s event overrides hold one of the credentials its provider sends
    /// ([`super::holds_secret`]): a check's own API key or token, kept with the entry.
    fn own_credentials(&self, entry: &Entry) -> bool {
        match &*self.provider(&entry.overrides) {
            Ok(p) => super::holds_secret(&entry.overrides, &p.secrets()),
            Err(_) => false,
        }
    }

    /// The provider for an entry's event overrides, built from the current settings.
    fn provider(&self, overrides: &Map<String, Value>) -> Rc<std::result::Result<P, String>> {
        let cache_key = destination_of(overrides);
        if let Some(p) = self.providers.borrow().get(&cache_key) {
            return Rc::clone(p);
        }
        // `ready` as for a live event: a flush run without the credentials (a timer that was
        // not given the handler's settings file) keeps the entries rather than send a request
        // the service refuses for good (PagerDuty's 400 for an empty routing key).
        let built = settings_with::<P>(self.operator.clone(), self.common, overrides, self.log)
            .and_then(|(section, common)| P::from_settings(&section, &common))
            .and_then(|p| p.ready().map(|()| p))
            .map_err(|e| e.to_string());
        let built = Rc::new(built);
        self.providers.borrow_mut().insert(cache_key, Rc::clone(&built));
        built
    }

    /// `entry` is superseded (`why`, saying so) by the later action `record` holds. One of
    /// unknown fate may have reached the service after that action (held up on its way past
    /// its deadline), undoing it there:
    /// - a trigger after a resolve: the provider's recovery of it ([`Provider::recovery_of`])
    ///   is sent now, whether or not it got there, unless the record notes a later trigger in
    ///   flight, whose settling decides. Kept ([`Outcome::Retry`], still of unknown
    ///   fate) while that recovery cannot be delivered, and for the fix ([`Outcome::Broken`],
    ///   [`Settled::Unauthorized`]) while this machine's configuration or the credentials in
    ///   force keep it from being sent; given up (moved to `failed/`, with a warning) only when
    ///   the service refuses it for good.
    /// - a resolve or acknowledge while the record holds the incident open (a trigger after it,
    ///   maybe acknowledged since), for a service that merges a repeated trigger: the record
    ///   lets the incident's next trigger through ([`state::doubt_trigger`]).
    #[allow(clippy::too_many_arguments)]
    fn superseded(
        &self,
        client: &Client,
        deadline: &Deadline,
        entry: &Entry,
        provider: &P,
        payload: &P::Payload,
        record: Option<&Incident>,
        why: &str,
    ) -> Settled {
        let log = self.log;
        let Some(rec) = record.filter(|_| entry.fate == Fate::Unknown) else {
            return Settled::Request(Outcome::Skipped(why.to_string()));
        };
        if entry.action == Action::Trigger && !rec.open && rec.last_action == Some(Action::Resolve) {
            let Some(recovery) = provider.recovery_of(payload) else { return Settled::Request(Outcome::Skipped(why.to_string())) };
            // A trigger of another invocation noted in flight since that recovery (of unknown
            // fate, spooled on its host: [`state::leave_inflight`]) may have opened the
            // incident at the service for a later failure; whoever holds the incident next
            // settles it (sends it again, or finds it superseded too, and then sends the
            // recovery again). Sent now, the recovery would close that incident until then.
            if rec.inflight.iter().any(|e| e.action == Action::Trigger && e.token != entry.token) {
                log.info(format!(
                    "{why}; as its fate was unknown, it may have reached the service after that recovery, but a later \
                     trigger of unknown fate is noted in flight: settling that one decides, and the recovery is not sent again now"
                ));
                return Settled::Request(Outcome::Skipped(format!("{why}; a later trigger of unknown fate is noted in flight")));
            }
            let req = match provider.request(&recovery, &Map::new()) {
                Ok(req) => req,
                Err(e) => return Settled::Request(Outcome::Skipped(format!("{why}; its recovery cannot be built to send again: {e}"))),
            };
            let last: RefCell<Option<Response>> = RefCell::new(None);
            let classify = |resp: &Response| {
                *last.borrow_mut() = Some(resp.clone());
                http::spooled_outcome(resp, provider.classify(&recovery, resp))
            };
            return Settled::Request(match client.deliver(&req, deadline, Fate::NotSent, &classify, &mut |line| log.info(line)) {
                Outcome::Delivered(_) => {
                    log.info(format!(
                        "{why}; as its fate was unknown, it may have reached the service after that recovery: the recovery was sent again"
                    ));
                    Outcome::Skipped(format!("{why}; the recovery sent again after it"))
                }
                Outcome::Retry(r) => Outcome::Retry(crate::outcome::Retry {
                    reason: format!(
                        "{why}, but as its fate is unknown it may have reached the service after that recovery, \
                         and the recovery sent again after it was not delivered: {}",
                        r.reason
                    ),
                    fate: Fate::Unknown,
                    after: r.after,
                }),
                // This machine's configuration, or the credentials in force: kept for the flush
                // after the fix, as any entry so refused (`run`), not given up.
                Outcome::Broken(reason) => {
                    let why = format!(
                        "{why}, but as its fate is unknown it may have reached the service after that recovery, \
                         and the recovery sent again after it cannot be sent: {reason}"
                    );
                    if last.borrow().as_ref().is_some_and(P::credentials_refused) {
                        return Settled::Unauthorized(why);
                    }
                    Outcome::Broken(why)
                }
                failed => {
                    let reason = failed.reason().unwrap_or("").to_string();
                    log.warn(format!("{why}; the recovery sent again after it (its fate was unknown) failed: {reason}"));
                    Outcome::Skipped(format!("{why}; the recovery sent again after it failed: {reason}"))
                }
            });
        }
        // Open by a trigger, whatever came last: an acknowledgement of that failure delivered
        // meanwhile does not reopen an incident the late resolve closed.
        if entry.action != Action::Trigger
            && rec.open
            && P::REPEATED_TRIGGER == state::RepeatedTrigger::Merged
            && let Some(store) = self.store()
        {
            match state::doubt_trigger(store, &entry.incident_key) {
                Ok(()) => log.warn(format!(
                    "{why}; as its fate was unknown, it may have reached the service after that trigger: \
                     the incident's next trigger goes out even within refresh"
                )),
                Err(e) => log.warn(format!("{why}; cannot mark the record of {} in doubt: {e:#}", entry.incident_key)),
            }
        }
        Settled::Request(Outcome::Skipped(why.to_string()))
    }

    /// Deliver one entry now, under its incident's hold (see the module comment).
    /// A run the provider carries on itself ([`Provider::is_run`]) goes to [`Flusher::resume`],
    /// which rewrites `entry` (named `name` in the spool) with the run's progress notes.
    fn deliver(&self, client: &Client, deadline: &Deadline, name: &str, entry: &mut Entry) -> Settled {
        let log = self.log;
        let what = format!("spooled {} {} from {}", entry.action.name(), entry.incident_key, crate::clock::rfc3339(entry.created));
        let age = crate::clock::age(entry.created, crate::clock::now_unix());
        if age > self.common.spool_max_age.as_secs() {
            // Logged once, as the entry is moved to failed/ (`moved`).
            let why = format!(
                "not delivered within spool_max_age ({}): {what} given up",
                crate::config::show_duration(self.common.spool_max_age)
            );
            return Settled::Request(Outcome::Refused(why));
        }
        let provider = self.provider(&entry.overrides);
        let provider = match provider.as_ref() {
            Ok(p) => p,
            // `run` holds such entries back before their hold; kept if one gets here.
            Err(why) => return Settled::Request(Outcome::Spooled(unbuilt_reason::<P>(why))),
        };
        let payload: P::Payload = match serde_json::from_value(entry.payload.clone()) {
            Ok(p) => p,
            Err(e) => return Settled::Request(Outcome::Refused(format!("{what}: its payload is not one this version reads ({e})"))),
        };
        let now = crate::clock::now_unix();
        let proposal = Proposal {
            action: entry.action,
            severity: entry.severity.clone(),
            event_time: entry.event_time,
            time_origin: entry.time_origin,
            event_seq: entry.event_seq,
            refresh_secs: refresh_of(self.common),
            token: entry.token.clone(),
            // Queued behind what it resolves: decided when it was spooled.
            only_open: false,
            spooled: Some(entry.created),
            custom: entry.custom,
        };
        let record = self.ledger(&entry.incident_key);
        // Sent noted in flight by a flush that did not see it settled (killed), and the record
        // holds its action applied since: the copy another holder took from the note was
        // delivered, or this request itself, recorded before that flush ended. Sent again, it
        // would reach the service a third time ([`Flusher::note_in_flight`]).
        if entry.noted_in_flight
            && record.as_ref().is_some_and(|r| r.token.as_deref() == Some(entry.token.as_str()) && r.last_action == Some(entry.action))
        {
            log.info(format!(
                "{what}: delivered already: a flush sent it noted in flight, and the record holds its {} since; not sent again",
                entry.action.name()
            ));
            return Settled::Request(Outcome::Delivered(()));
        }
        match state::decide(record.as_ref(), &proposal, now, P::NO_RECORD) {
            Verdict::Send => {}
            // A recovery run (Reactio's, looking its incident up by name) of an event before a
            // failure delivered meanwhile (on another host sharing the store), and maybe that
            // failure's recovery: the failure opened an incident of its own, so the one this
            // recovery is for is still open and would stay so. Carried on, passing over the
            // incident the record holds for the later events ([`Provider::resume`] reads it
            // there), and not recorded ([`Flusher::resume`]): the ledger keeps the later events.
            Verdict::Superseded(why)
                if entry.action == Action::Resolve
                    && provider.is_run(&payload)
                    && state::applied_later_event(record.as_ref(), entry.event_time) =>
            {
                log.info(format!("{what}: {why}; still carried on, for the incident opened before it"));
            }
            Verdict::Skip(why) => {
                // Decided under the incident's hold: an older entry after it is superseded.
                if let Some(store) = self.store()
                    && state::skip_moves_time(record.as_ref(), &proposal)
                    && let Err(e) = state::note_skipped(store, &entry.incident_key, &proposal, now, P::NO_RECORD)
                {
                    log.warn(format!("cannot note the event time of {} in {}: {e:#}", entry.incident_key, store.describe()));
                }
                return Settled::Request(Outcome::Skipped(format!("{what}: {why}")));
            }
            Verdict::Superseded(why) => {
                return self.superseded(client, deadline, entry, provider, &payload, record.as_ref(), &format!("{what}: {why}"));
            }
        }
        let noted = self.note_in_flight(name, entry, provider, &payload, record.as_ref());
        let settled = self.send(client, deadline, (name, entry), provider, payload, record.as_ref(), (&proposal, &what));
        self.settle_in_flight(noted, name, entry, &settled);
        settled
    }

    /// Send `entry` (named `name` in the spool), which the ledger decided to send: carried on
    /// as a run ([`Flusher::resume`]), or looked up first when its fate is unknown and the
    /// provider can ([`Provider::lookup`]), then sent (or a stand-in, [`Provider::instead`]);
    /// what the service accepted is recorded. `proposal` is the ledger's view of it, `what`
    /// names it in log lines.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        client: &Client,
        deadline: &Deadline,
        (name, entry): (&str, &mut Entry),
        provider: &P,
        payload: P::Payload,
        record: Option<&Incident>,
        (proposal, what): (&Proposal, &str),
    ) -> Settled {
        let log = self.log;
        if provider.is_run(&payload) {
            return self.resume(client, deadline, (name, entry), provider, &payload, record, proposal, what);
        }
        // Find out first whether a request of unknown fate went through after all.
        let mut fate = entry.fate;
        let lookup = provider.lookup(&payload, entry.created);
        if entry.fate == Fate::Unknown
            && let Some(req) = &lookup
        {
            let mut asked = 0;
            loop {
                asked += 1;
                let started = std::time::Instant::now();
                // Every page of the answer: what is looked for may be on any of them.
                let fetch = |page: &http::Request| {
                    let last: RefCell<Option<Response>> = RefCell::new(None);
                    let classify = |resp: &Response| {
                        *last.borrow_mut() = Some(resp.clone());
                        provider.classify_lookup(&payload, resp)
                    };
                    match client.deliver(page, deadline, Fate::NotSent, &classify, &mut |l| log.debug(l)) {
                        Outcome::Delivered((resp, _)) => Ok(resp),
                        // The service's own answer, meant for good (Twilio's 401 or 403 for a
                        // key that may not list calls): asking again gets the same.
                        Outcome::Refused(why) if last.borrow().as_ref().is_some_and(http::services_own) => {
                            let shown = page.redacted(&log.secrets());
                            Err(Unread::Refused(format!("{} {} answered {why}", shown.method.name(), path_of(&shown.url))))
                        }
                        // This machine's configuration (a CA, a proxy): the same on every try.
                        Outcome::Broken(why) => Err(Unread::Broken(why)),
                        other => Err(Unread::Failed(other.reason().unwrap_or("").to_string())),
                    }
                };
                let pages = match super::read_pages(req.clone(), fetch, |pages| provider.lookup_next(&payload, entry.created, pages)) {
                    Ok(pages) => pages,
                    Err(Unread::Refused(why)) => return Settled::Unlookable(unlookable(what, &why)),
                    // Kept with its fate unknown, as a request this configuration keeps from
                    // being sent is: the flush exits 78.
                    Err(Unread::Broken(why)) => {
                        return Settled::Request(Outcome::Broken(format!("cannot find out whether it went through: {why}")));
                    }
                    Err(Unread::Failed(why)) => {
                        return Settled::Request(Outcome::Retry(crate::outcome::Retry {
                            reason: format!("cannot find out whether it went through: {why}"),
                            fate: Fate::Unknown,
                            after: None,
                        }));
                    }
                };
                // The record holds this very action (its token) when another copy of this
                // entry was delivered or found already: one host's request of unknown fate,
                // taken from the ledger's note by another host ([`state::leave_inflight`]).
                // What it references may then be what this request did: not passed over.
                let own = record.filter(|r| r.token.as_deref() == Some(entry.token.as_str()) && r.last_action == Some(entry.action));
                let mut known = match own {
                    Some(_) => Map::new(),
                    None => record.map(|r| r.refs.clone()).unwrap_or_default(),
                };
                if let Some(store) = self.store() {
                    for (k, v) in provider.known(store) {
                        match (known.get_mut(&k), v) {
                            (Some(Value::Array(mine)), Value::Array(more)) => mine.extend(more),
                            (_, v) => {
                                known.insert(k, v);
                            }
                        }
                    }
                }
                if let Some(r) = own {
                    let mine: Vec<&Value> =
                        r.refs.values().flat_map(|v| if let Value::Array(a) = v { a.iter().collect() } else { vec![v] }).collect();
                    for v in known.values_mut() {
                        if let Value::Array(a) = v {
                            a.retain(|x| !mine.contains(&x));
                        }
                    }
                }
                match provider.found(&payload, &pages, entry.created, &known, &entry.token) {
                    Found::Yes(refs) => {
                        log.info(format!("{what}: the service had acted on it after all; not sent again"));
                        if let Some(store) = self.store() {
                            provider.settled(store, &payload, &entry.token, &refs);
                        }
                        self.record(&entry.incident_key, proposal, &refs, deadline);
                        return Settled::Request(Outcome::Delivered(()));
                    }
                    Found::No => {
                        if let Some(store) = self.store() {
                            provider.not_acted_on(store, &payload, &entry.token);
                        }
                        fate = Fate::NotSent;
                        break;
                    }
                    Found::Broken(why) => return Settled::Unlookable(unlookable(what, &why)),
                    Found::CannotTell(why) => {
                        // Others' requests of unknown fate are mostly still on their way: their
                        // answers settle them within a round trip or two.
                        let pause = LOOKUP_PAUSE.max(started.elapsed());
                        if asked >= LOOKUP_ASKS || deadline.remaining() < pause * 4 {
                            log.info(format!("{what}: cannot tell whether it went through ({why}); sending it again"));
                            break;
                        }
                        log.debug(format!("{what}: cannot tell yet whether it went through ({why}); asking again"));
                        crate::lease::sleep(pause);
                    }
                    Found::Unanswered(why) => {
                        // No usable answer (an error page, the service's own error): as when the
                        // lookup fails in transport, kept for a flush that can look it up, never
                        // sent again blind (a second war room, a second call).
                        let pause = LOOKUP_PAUSE.max(started.elapsed());
                        if asked >= LOOKUP_ASKS || deadline.remaining() < pause * 4 {
                            return Settled::Request(Outcome::Retry(crate::outcome::Retry {
                                reason: format!("cannot find out whether it went through: {why}"),
                                fate: Fate::Unknown,
                                after: None,
                            }));
                        }
                        log.debug(format!("{what}: cannot find out yet whether it went through ({why}); asking again"));
                        crate::lease::sleep(pause);
                    }
                }
            }
        }
        // The ledger's references, and what the entry kept of an earlier answer where the
        // ledger has nothing (it could not be written or read).
        let mut refs = record.map(|r| r.refs.clone()).unwrap_or_default();
        for (k, v) in &entry.refs {
            refs.entry(k.clone()).or_insert_with(|| v.clone());
        }
        // A request refused for good may have a stand-in ([`Provider::instead`]): sent now.
        let mut payload = payload;
        let last: RefCell<Option<Response>> = RefCell::new(None);
        let mut instead = 0;
        loop {
            // A stand-in that is a run of the provider's own (Slack: the war room opened in
            // place of one that is gone), written into the entry already: carried on as one.
            if instead > 0 && provider.is_run(&payload) {
                return self.resume(client, deadline, (name, entry), provider, &payload, record, proposal, what);
            }
            let req = match provider.request(&payload, &refs) {
                Ok(req) => req,
                Err(why) => return Settled::Request(Outcome::Refused(format!("{what}: {why}"))),
            };
            let shown = req.redacted(&log.secrets());
            log.info(format!("{what}: {} {}", shown.method.name(), shown.url));
            let classify = |resp: &Response| {
                *last.borrow_mut() = Some(resp.clone());
                http::spooled_outcome(resp, provider.classify(&payload, resp))
            };
            let lookable = provider.lookup(&payload, entry.created).is_some();
            // A request of unknown fate that the lookup could not tell about may still have been
            // acted on: its first attempt stays unsettled, and this is a new attempt, so that the
            // call it may have placed is never taken for another one's, nor this one's for it. (One
            // the lookup showed was not acted on goes again as the same attempt.)
            let attempt = if fate == Fate::Unknown && lookable {
                format!("{}~{}", entry.token, crate::clock::now_unix_nanos())
            } else {
                entry.token.clone()
            };
            if lookable && let Some(store) = self.store() {
                provider.attempting(store, &payload, &attempt, deadline.end_unix());
            }
            // On disk as of unknown fate while it is on its way: a flush killed before the
            // answer (kill -9, a timer's timeout) leaves it for the next one to look up rather
            // than send again (a second Slack war room, a second call). Only the file: the
            // answer decides what this flush keeps ([`Outcome::Retry`]'s fate).
            if lookable
                && fate != Fate::Unknown
                && let Some(spool) = self.spool
            {
                let marked = Entry { fate: Fate::Unknown, ..entry.clone() };
                if let Err(e) = spool.try_rewrite(name, &marked, crate::files::Durability::Durable) {
                    log.warn(format!("{what}: cannot note it as on its way in the spool ({e:#}); a flush killed now sends it again"));
                }
            }
            let delivered = if lookable {
                // Looked up above when its fate was unknown; a new unknown fate waits for the next
                // flush's lookup rather than a blind repeat.
                client.deliver_until_unknown(&req, deadline, &classify, &mut |line| log.info(line))
            } else {
                client.deliver(&req, deadline, fate, &classify, &mut |line| log.info(line))
            };
            return Settled::Request(match delivered {
                Outcome::Delivered((resp, _)) => {
                    let refs = provider.spooled_refs(&payload, &resp);
                    if let Some(store) = self.store() {
                        provider.settled(store, &payload, &attempt, &refs);
                    }
                    self.record(&entry.incident_key, proposal, &refs, deadline);
                    self.delivered_after(entry, what);
                    Outcome::Delivered(())
                }
                Outcome::Refused(why) => {
                    let answer = last.borrow_mut().take();
                    match answer.filter(|_| instead < super::MAX_INSTEAD).and_then(|resp| provider.instead(&payload, &resp)) {
                        Some(next) => {
                            let how = if provider.is_run(&next) { "carrying on in its place" } else { "sending a request in its place" };
                            log.info(format!("{what}: {why}; {how}"));
                            // The entry holds the stand-in before it goes: should its answer be
                            // lost, the next flush looks up what was sent (Slack: the `-2` room),
                            // not the refused request (whose name is another incident's room).
                            let mut kept = entry.clone();
                            kept.fate = Fate::NotSent;
                            kept.payload = match serde_json::to_value(&next) {
                                Ok(value) => value,
                                Err(e) => return Settled::Request(Outcome::Refused(format!("{what}: its stand-in cannot be kept ({e})"))),
                            };
                            if let Some(spool) = self.spool
                                && let Err(e) = spool.try_rewrite(name, &kept, crate::files::Durability::Durable)
                            {
                                return Settled::Request(Outcome::Retry(crate::outcome::Retry {
                                    reason: format!(
                                        "{what}: {why}, and its stand-in cannot be written into the spool ({e:#}); not sent yet"
                                    ),
                                    fate: Fate::NotSent,
                                    after: None,
                                }));
                            }
                            *entry = kept;
                            fate = Fate::NotSent;
                            payload = next;
                            instead += 1;
                            continue;
                        }
                        None => Outcome::Refused(why),
                    }
                }
                // Kept for the credentials refused (the last answer's 401, Slack's
                // `invalid_auth` …: Provider::credentials_refused), not this machine's
                // configuration.
                Outcome::Broken(why) if last.borrow().as_ref().is_some_and(P::credentials_refused) => {
                    return Settled::Unauthorized(why);
                }
                // An answer, but not the service's (a proxy's 403 page, a wrong api_url's 404:
                // `http::classify_json_api_with`): kept for the fix, holding back its incident
                // alone.
                Outcome::Broken(why) if last.borrow().as_ref().is_some_and(|r| (400..500).contains(&r.status)) => {
                    return Settled::Blocked(why);
                }
                other => other.failure().unwrap_or(Outcome::Skipped(String::new())),
            });
        }
    }

    /// Note `entry` (named `name` in the spool), about to be sent, in flight in its incident's
    /// record, as a live delivery notes its request ([`super::InFlight`], [`Ctx::send_with`]),
    /// when its delivery turns over the state `record` holds ([`super::turns_over`]: a failure
    /// of an incident it holds resolved, a recovery of one it holds open) and the provider notes
    /// such a request ([`Provider::note_in_flight`]). A flush killed after the service acted on
    /// it, before its record, left nothing but this spool entry: another host sharing the
    /// ledger, which cannot see this spool, took the incident for being in its recorded state
    /// (its recovery skipped as "already resolved", its failure as "already notified", while the
    /// service was in the other state until this host's next flush; a recovery so skipped then
    /// superseded the entry, and the incident stayed open at the service for good). (An event of
    /// the incident on this host sends the entry first: it is its incident's spooled request.)
    /// Now whoever holds the incident next
    /// takes the note ([`super::adopt_inflight`]: spooled where the entry was created, ahead of
    /// what queued behind it; not spooled again on this host, where the entry is, by its
    /// token). The entry is marked as noted first ([`Entry::noted_in_flight`]), so that this
    /// host's later flush removes it once the record holds the copy delivered, instead of
    /// sending it a third time. `None` when not noted (nor is the entry marked then), or when
    /// the note could not be written.
    fn note_in_flight(
        &self,
        name: &str,
        entry: &mut Entry,
        provider: &P,
        payload: &P::Payload,
        record: Option<&Incident>,
    ) -> Option<super::InFlight<'a>> {
        let store = self.store()?;
        // A record holding a later event is not turned over by this one (its record changes
        // nothing but the references: `state::apply`).
        if !super::turns_over(record, entry.action)
            || state::applied_later_event(record, entry.event_time)
            || !provider.note_in_flight(payload, entry.action)
        {
            return None;
        }
        entry.noted_in_flight = true;
        // Volatile, as the note: both matter when the flush is killed, which leaves the page
        // cache as it was (a machine crash can lose the mark: the entry is then sent again, a
        // duplicate at worst).
        if let Some(spool) = self.spool
            && let Err(e) = spool.try_rewrite(name, entry, crate::files::Durability::Volatile)
        {
            self.log.warn(format!("cannot mark the spooled {} of {} as noted in flight: {e:#}", entry.action.name(), entry.incident_key));
        }
        super::InFlight::note(store, Entry { fate: Fate::Unknown, ..entry.clone() }, self.log)
    }

    /// `entry` (named `name` in the spool), noted in flight ([`Flusher::note_in_flight`]), was
    /// `settled`: delivered, its record removed the note (by the action's token), and the entry
    /// leaves the spool. Kept in the spool with its fate unknown (no answer in time, or an
    /// attempt before this one, killed, may have reached the service), it stays noted and
    /// marked, for the hosts that cannot see this spool, as a live delivery leaves a request
    /// it spooled of unknown fate ([`state::leave_inflight`]). Otherwise the note goes, and so
    /// does the mark (`run` rewrites an entry a retryable failure keeps; one kept for another
    /// reason is rewritten here).
    fn settle_in_flight(&self, noted: Option<super::InFlight<'a>>, name: &str, entry: &mut Entry, settled: &Settled) {
        if !entry.noted_in_flight {
            return;
        }
        let unknown = entry.fate == Fate::Unknown || matches!(settled, Settled::Request(Outcome::Retry(r)) if r.fate == Fate::Unknown);
        let kept = matches!(
            settled,
            Settled::Unauthorized(_)
                | Settled::Unlookable(_)
                | Settled::Blocked(_)
                | Settled::Request(Outcome::Retry(_) | Outcome::Spooled(_) | Outcome::Broken(_))
        );
        match settled {
            Settled::Request(Outcome::Delivered(())) => return,
            _ if kept && unknown => return,
            _ if kept => noted.into_iter().for_each(|n| n.clear(self.log)),
            // Refused, superseded, or a run that ended: it leaves the spool undelivered.
            _ => noted.into_iter().for_each(|n| n.forget(self.log)),
        }
        entry.noted_in_flight = false;
        if kept
            && !matches!(settled, Settled::Request(Outcome::Retry(_)))
            && let Some(spool) = self.spool
        {
            spool.rewrite(name, entry);
        }
    }

    /// `{what}: delivered after … in the spool`.
    fn delivered_after(&self, entry: &Entry, what: &str) {
        let queued = Duration::from_secs(crate::clock::age(entry.created, crate::clock::now_unix()));
        self.log.info(format!("{what}: delivered after {} in the spool", crate::config::show_duration(queued)));
    }

    /// Carry on the run `payload` of `entry` ([`Provider::resume`]) within `deadline`, under the
    /// incident's hold, its record `record` read under it; the run's progress notes are
    /// rewritten into `entry` and its spool file `name` as it goes ([`Ctx::note_progress`]), and
    /// read from there when the record has none of its own; `p` is the entry's proposal and
    /// `what` names the entry in log lines. A resolve or acknowledge of a later event already
    /// known (the event this invocation handles, or an entry queued behind it) supersedes it
    /// before anything is sent: calling people for an incident that has recovered is what the
    /// ledger is there to prevent. (A single request, such as a broadcast call, still goes
    /// before the resolve queued behind it, as the incident's log says, and so does a run that
    /// pages nobody itself: [`Provider::superseded_by_a_later_stop`].)
    #[allow(clippy::too_many_arguments)]
    fn resume(
        &self,
        client: &Client,
        deadline: &Deadline,
        (name, entry): (&str, &mut Entry),
        provider: &P,
        payload: &P::Payload,
        record: Option<&Incident>,
        p: &Proposal,
        what: &str,
    ) -> Settled {
        if provider.superseded_by_a_later_stop(payload)
            && let Some(why) = self.stopped_behind(entry)
        {
            return Settled::Request(Outcome::Skipped(format!("{what}: {why}")));
        }
        // A run left in flight by a process that died comes as a request of unknown fate, which
        // `run` gives the whole deadline; a run's unknown calls are its notes' business, and it
        // takes half, as any other entry, so that the others still go out.
        let half = deadline.share(2);
        let deadline = if entry.fate == Fate::Unknown { &half } else { deadline };
        let ctx = Ctx {
            provider,
            client,
            deadline: *deadline,
            log: self.log,
            dry_run: false,
            store: self.store(),
            incident_key: &entry.incident_key,
            queue: None,
            token: Some(&entry.token),
            stop_unread: Default::default(),
            stop_began: Default::default(),
            time_origin: entry.time_origin,
            run_entry: self.spool.map(|spool| super::RunEntry {
                spool,
                name,
                entry: std::cell::RefCell::new(entry.clone()),
                refused: std::cell::Cell::new(false),
            }),
        };
        let resumed = provider.resume(&ctx, payload, record, entry.event_time);
        let progress = ctx.kept_progress();
        let refused = ctx.credentials_refused();
        drop(ctx);
        // What the entry keeps from now on (rewritten by `run` after a failed try).
        entry.progress = progress;
        match resumed {
            Resumed::Delivered(done) => {
                // A recovery of the incident before the later events the ledger holds (see
                // `deliver`) leaves their record as it is.
                if !(entry.action == Action::Resolve && state::applied_later_event(record, entry.event_time)) {
                    self.record(&entry.incident_key, p, &done.refs, deadline);
                }
                let detail = if done.detail.is_empty() { String::new() } else { format!(" {}", done.detail) };
                self.log.info(format!("{what}: {}{detail}", entry.action.past()));
                self.delivered_after(entry, what);
                Settled::Request(Outcome::Delivered(()))
            }
            Resumed::Ended(why) => Settled::Ended(format!("{what}: {why}")),
            Resumed::Superseded(why) => Settled::Request(Outcome::Skipped(format!("{what}: {why}"))),
            Resumed::Unfinished(why) => Settled::Request(Outcome::Spooled(format!("{what}: {why}"))),
            Resumed::Unlookable(why) => Settled::Unlookable(unlookable(what, &why)),
            Resumed::Failed(Outcome::Broken(why)) if refused => Settled::Unauthorized(why),
            Resumed::Failed(outcome) => Settled::Request(outcome),
        }
    }

    /// Why `entry`, a run, is stale before it goes on: a resolve or acknowledge of a later (or
    /// the same) event of its incident is what this invocation handles ([`Flusher::stopping`]),
    /// or is queued behind it in the spool; for a run ordered by its receipt
    /// ([`state::TimeOrigin::Receipt`]), one whose time is not more than
    /// [`state::host_clock_lateness`] before it, as [`state::stop_requested`] stops such a run
    /// in progress. The entry itself, and any other of its own event
    /// (its token), is none. A run that is a resolve's own (Reactio's recovery looking its
    /// incident up) is never stale so: what a later resolve queued behind it posts to is the
    /// id this one's delivery records (the incident it finds), and a failure queued between
    /// them opens another incident, which that later resolve closes; superseded, the incident
    /// it looks for stayed open. Later events delivered on another host do not drop it either
    /// ([`Flusher::deliver`]).
    fn stopped_behind(&self, entry: &Entry) -> Option<String> {
        if entry.action != Action::Trigger {
            return None;
        }
        // A run ordered by its receipt: also one whose time is within the lateness bound before
        // it (which came first is not known: `state::applied_after`, `state::stop_requested`).
        let later = |action: Action, time: u64, seq: Option<u64>| {
            action != Action::Trigger
                && (!state::is_later(entry.event_time, entry.event_seq, time, seq)
                    || state::may_follow(time, entry.event_time, entry.time_origin))
        };
        if let Some(stop) = self.stop.filter(|s| later(s.action, s.event_time, None)) {
            return Some(format!("superseded: a {} of a later event is being handled", stop.action.name()));
        }
        let queued = super::spooled_tail(self.spool?, &entry.incident_key);
        let e = queued.iter().filter(|e| e.token != entry.token).find(|e| later(e.action, e.event_time, e.event_seq))?;
        Some(format!("superseded: a {} of a later event is queued behind it", e.action.name()))
    }

    /// The record of `key`: the store's, with the references this flush learned that it lacks
    /// (its write failed), or, without one (no store, Redis down), what this flush delivered
    /// for the incident ([`Flusher::applied`]). Without it, a war room's topic, invites and
    /// alert, or a Reactio recovery queued behind its create, were refused for want of the
    /// channel or incident id the delivered request had just brought back.
    fn ledger(&self, key: &str) -> Option<Incident> {
        let stored = self.store().and_then(|s| state::get(s, key).ok().flatten());
        let applied = self.applied.borrow().get(key).cloned();
        match (stored, applied) {
            (Some(mut stored), Some(applied)) => {
                for (k, v) in applied.refs {
                    stored.refs.entry(k).or_insert(v);
                }
                Some(stored)
            }
            (stored, applied) => stored.or(applied),
        }
    }

    fn record(&self, key: &str, p: &Proposal, refs: &Map<String, Value>, deadline: &Deadline) {
        {
            let mut applied = self.applied.borrow_mut();
            let before = applied.remove(key);
            applied.insert(key.to_string(), state::apply(before, key, p, crate::clock::now_unix(), refs));
        }
        // The requests queued behind it keep what it brought back ([`Entry::refs`]): another
        // process may deliver them, without the ledger.
        if !refs.is_empty()
            && let Some(spool) = self.spool
        {
            for name in spool.queued_for(key).unwrap_or_default() {
                if let Ok(Some(mut queued)) = spool.read(&name)
                    && queued.incident_key == key
                {
                    queued.refs.extend(refs.clone());
                    spool.rewrite(&name, &queued);
                }
            }
        }
        match self.store() {
            Some(store) => super::record_delivered::<P>(store, key, p, refs, "the delivery of a spooled request", deadline, self.log),
            None if p.action == Action::Resolve => super::resolved_without_ledger::<P>(self.common, key, self.log),
            None => {}
        }
    }
}

/// The settings' `refresh` in seconds (a spooled entry no longer has its event's check
/// attributes).
fn refresh_of(common: &Common) -> u64 {
    common.refresh.as_secs()
}

/// Requests that handlers which died left in flight (on incidents nobody holds now) join the
/// spool as requests of unknown fate, so that a page interrupted by a kill is looked up and,
/// if it never reached the service, sent — even when no later event for the incident comes.
/// The listing's error when it found the store [`Store::unusable`] (its first command), for
/// the flush to say once if it has entries to deliver.
/// `is_run` as [`super::adopt_inflight`] takes it.
fn adopt_all_inflight(
    store: Option<&dyn Store>,
    spool: &Spool,
    secrets: &[String],
    is_run: &dyn Fn(&Entry) -> bool,
    log: &Logger,
) -> Option<anyhow::Error> {
    let store = store?;
    let keys = match store.keys() {
        Ok(k) => k,
        Err(e) if store.unusable() => return Some(e),
        Err(e) => {
            log.debug(format!("cannot list the ledger for requests left in flight: {e:#}"));
            return None;
        }
    };
    for key in keys {
        let Ok(Some(record)) = state::get(store, &key) else { continue };
        if record.inflight.is_empty() {
            continue;
        }
        // Someone delivering now keeps its own note; only a free incident's are orphans. The
        // notes stay until this flush settles their requests (delivered and recorded, or moved
        // to `failed/`): it lets go of the incident until its run comes to them, and another
        // host handling the incident's next event meanwhile, which cannot see this spool, must
        // still know of them (removed here, a failure was skipped as "already notified" over a
        // recovery PagerDuty had applied, the flush then found that recovery superseded).
        if let Ok(Some(_hold)) = store.hold(&key, Instant::now()) {
            super::adopt_inflight(Some(store), Some(spool), &key, Some(&record), secrets, is_run, true, log);
        }
    }
    None
}

/// `--flush`: deliver everything the spool holds within `--timeout`, waiting for an incident
/// another invocation is busy with.
///
/// Exit codes: 0 the spool is empty; 75 requests remain queued (still unreachable, or the
/// deadline ran out); 69 requests were refused for good in this flush and moved to `failed/`
/// (a run that is over without reaching anyone, [`Resumed::Ended`], also moves there but
/// counts as dropped, not refused: 0, nothing is left to retry); 78 no spool directory can be
/// used, or requests remain that only a fix of the settings lets go out
/// ([`Report::needs_settings`]: credentials refused, a CA, a proxy, no provider, a lookup the
/// service refused for good, [`Found::Broken`]); 69 goes first, then 78, then 75.
/// An empty spool is logged at debug level only (the packaged timer runs it every minute).
pub(super) fn flush_only<P: Provider>(args: &CommonArgs, flags: Map<String, Value>, log: &mut Logger) -> Result<Code> {
    let (operator, common) = operator_settings::<P>(args, &flags, log)?.warned::<P>(log);
    // Mask the configured credentials too, when the settings are complete enough to say.
    let built = P::from_settings(&operator, &common).ok();
    let secrets = built.as_ref().map(|p| p.secrets()).unwrap_or_default();
    log.add_secrets(secrets.clone());
    log.add_secrets(common.secrets());
    let log = &*log;
    let (spool, notice) = Spool::open(P::NAME, common.spool_dir.as_deref())
        .map_err(|e| Code::Config.msg(format!("spool unavailable: {e:#}; set --spool-dir or spool_dir")))?;
    if let Some(n) = notice {
        log.warn(n);
    }
    let deadline = Deadline::after(common.timeout);
    let store = super::open_store::<P>(&common, &deadline, log);
    let is_run = |e: &Entry| built.as_ref().is_none_or(|p| super::entry_is_run(p, e));
    let unusable = adopt_all_inflight(store.as_deref(), &spool, &secrets, &is_run, log);
    let listing = spool.list().map_err(|e| Code::TempFail.msg(format!("spool: {e:#}")))?;
    for line in &listing.passed_over {
        log.warn(line);
    }
    for line in &listing.others {
        log.debug(line);
    }
    if listing.names.is_empty() {
        log.debug(format!("flushed {}: 0 delivered, 0 moved to failed/, 0 still queued: the spool is empty", spool.dir().display()));
        return Ok(Code::Ok);
    }
    // Said once, as when the store cannot be opened, rather than again by every entry.
    if let Some(e) = unusable {
        log.error(format!("{e:#}; {}", super::WITHOUT_SHARED_LEDGER));
    }
    let client = Client::new(common.ca_file.as_deref()).map_err(|e| Code::Config.fail(e))?;
    let flusher = Flusher::<P>::new(Some(&spool), store.as_deref(), &operator, &common, log);
    let report = flusher.run(&client, &deadline, &|_| true, None, None, true);
    let took = http::fmt_ms(deadline.elapsed());
    let summary = format!(
        "flushed {}: {} delivered, {} moved to failed/, {} still queued, in {took}",
        spool.dir().display(),
        report.delivered,
        report.failed + report.dropped,
        report.remaining
    );
    if report.failed > 0 {
        let also = report.unlookable.map(|why| format!("; and {why}")).unwrap_or_default();
        return Err(Code::Unavailable
            .msg(format!("{summary}; read the reasons in {}/failed/ and resend by hand if still needed{also}", spool.dir().display())));
    }
    // A request of unknown fate the service refuses to look up waits for the settings to change
    // (a scope, an API key's rights): 78, as waiting (75) would not fix it.
    if let Some(why) = report.unlookable {
        return Err(Code::Config.msg(format!("{summary}: {why}")));
    }
    if report.remaining > 0 {
        let why = report.stopped.unwrap_or_else(|| "the deadline ran out, or an incident stayed busy".into());
        // Kept for a fix of the settings (credentials, CA, proxy, api_url): 78, as for a live
        // event so kept; anything else left waits for the service (75).
        let code = if report.needs_settings { Code::Config } else { Code::TempFail };
        return Err(code.msg(format!("{summary}: {why}")));
    }
    // The flush timer runs every minute: an empty spool (the usual case) is not news.
    if report.delivered == 0 && report.failed + report.dropped == 0 {
        log.debug(summary);
    } else {
        log.info(summary);
    }
    Ok(Code::Ok)
}

/// Why a lookup ([`Provider::lookup`]) read no list.
enum Unread {
    /// The service refused it for good, with its own answer: the request, and why.
    Refused(String),
    /// This machine's configuration keeps it from going out ([`Outcome::Broken`]: a CA, a
    /// proxy), why: waits for a fix of the settings, as a request so kept does.
    Broken(String),
    /// It failed otherwise (the service unreachable, 5xx, 429, a page that is not the
    /// service's): asked again by a later flush.
    Failed(String),
}

/// The path of `url` (`https://host/a/b?q` → `/a/b`): where a lookup went, without its query
/// (a number, a date) nor its host.
fn path_of(url: &str) -> String {
    url.parse::<ureq::http::Uri>().map_or_else(|_| "/".to_string(), |u| u.path().to_string())
}

/// The line for `what`, a spooled request of unknown fate whose lookup the service refused for
/// good (`why`, the service's answer): kept, and what to do.
fn unlookable(what: &str, why: &str) -> String {
    format!(
        "{what}: the service refused its lookup ({why}); kept spooled with its fate unknown, not sent again until it can be \
         looked up: fix the settings"
    )
}

/// Why a destination's entries wait: its settings (the operator's, or with the entries'
/// overrides) build no provider, `why`.
fn unbuilt_reason<P: Provider>(why: &str) -> String {
    format!("the settings do not build a {} provider: {why}; its entries are kept", P::NAME)
}

/// What tells spooled requests' destinations apart: their event overrides, serialized (the
/// same overrides build the same provider, so requests sent the same way share a key).
fn destination_of(overrides: &Map<String, Value>) -> String {
    Value::Object(overrides.clone()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_is_named_by_its_path_alone() {
        assert_eq!(
            path_of("https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json?To=%2B1&Status=queued"),
            "/2010-04-01/Accounts/AC1/Calls.json"
        );
        assert_eq!(path_of("http://127.0.0.1:8080/api/conversations.list?types=public_channel"), "/api/conversations.list");
        assert_eq!(path_of("https://example.reactio.jp"), "/");
        assert_eq!(path_of("https://h/a#frag"), "/a");
    }
}
