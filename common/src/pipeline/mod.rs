//! One invocation, step by step, the same for every handler.
//!
//! Read the event → merge settings → filter → ask the incident ledger → let the provider
//! deliver → record → exit code (DESIGN.md "One invocation, step by step" and "The incident
//! ledger"). A handler supplies a [`Provider`]: how settings become a provider, which incident
//! key an event has, how an action becomes requests (typed payloads the spool can keep), and
//! what the service's answers mean. Everything else — the order of the steps, the incident's
//! hold, the spool as the tail of the incident's log, the log lines and exit codes — is here
//! so the handlers cannot drift apart.
//!
//! The phases of [`run`]: `read` the event and settings; the ledger's fast path (an
//! identical repeat costs one read); older spooled requests of other incidents; take the
//! incident's hold (waiting within the deadline, else queue behind it); this incident's own
//! spooled requests; the provider's delivery; the record of what the service accepted.

mod explain;
mod flush;
mod ledger;
mod settings;

use std::io::Write;
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::cli::CommonArgs;
use crate::config::Common;
use crate::event::{self, Event};
use crate::exit::{Code, Result};
use crate::filter::{self, Action, Decision};
use crate::http::{self, Client, Deadline, Request, Response};
use crate::log::Logger;
use crate::outcome::{Fate, Outcome};
use crate::spool::{self, Spool};
use crate::state::{self, Incident, NoRecord, Proposal, RepeatedTrigger, Stop, Store, Verdict, file::FileStore, redis::RedisStore};

/// What a provider was asked to do.
#[derive(Debug)]
pub struct Job<'a> {
    /// The action the filters and the ledger decided on.
    pub action: Action,
    /// The event.
    pub event: &'a Event,
    /// The incident key the provider sends ([`Provider::incident_key`]: PagerDuty's dedup
    /// key). The ledger's record is under [`Ctx::incident_key`], which differs when the event
    /// chose where the page goes.
    pub incident_key: &'a str,
    /// The incident's record before this invocation (`None` in dry-run or when there is none).
    pub previous: Option<&'a Incident>,
    /// The event's own time (else its receipt), Unix seconds.
    pub event_time: u64,
}

/// A successful delivery.
#[derive(Debug, Default)]
pub struct Done {
    /// Appended to the log line, e.g. `(dedup_key web-01/check_disk)`.
    pub detail: String,
    /// Provider references to store with the incident (merged into `Incident::refs`).
    pub refs: Map<String, Value>,
}

/// What a provider works with during delivery.
pub struct Ctx<'a, P: Provider> {
    /// The provider itself (to build and classify requests from payloads).
    pub provider: &'a P,
    /// The HTTP client.
    pub client: &'a Client,
    /// The invocation's deadline.
    pub deadline: Deadline,
    /// The logger (secrets registered).
    pub log: &'a Logger,
    /// Print instead of send.
    pub dry_run: bool,
    /// The state store, for providers that keep more than the incident record (Twilio's
    /// per-recipient call caps) and for [`Ctx::stop_requested`]. `None` in dry-run and when
    /// the store cannot be opened (deliver anyway, without that memory).
    pub store: Option<&'a dyn Store>,
    /// The ledger's key of the job's incident: its record, hold and spooled requests are
    /// under it ([`Job::incident_key`] with `@` and a hash of the destination, when the event
    /// chose where the page goes).
    pub incident_key: &'a str,
    /// Where requests go that cannot be delivered now (`None` in dry-run, or when no spool
    /// directory can be used).
    queue: Option<Queue<'a>>,
    /// The token of the action delivered ([`Proposal::token`]; `None` in dry-run).
    token: Option<&'a str>,
    /// Whether the last [`Ctx::stop_requested`] could not read the record: its warning is
    /// logged once per outage, not at every status check.
    stop_unread: std::sync::atomic::AtomicBool,
    /// What the first [`Ctx::stop_requested`] found in the record ([`state::stop_requested`]).
    stop_began: std::cell::RefCell<Option<state::StopSignals>>,
    /// Where the delivered event's time comes from ([`state::stop_requested`]).
    time_origin: state::TimeOrigin,
    /// The spooled run a flush carries on ([`Provider::resume`]): its entry keeps the run's
    /// progress notes too ([`Ctx::note_progress`]). `None` outside a flush's run.
    run_entry: Option<RunEntry<'a>>,
}

/// The spool entry of a run a flush carries on, as this delivery rewrites it.
struct RunEntry<'a> {
    spool: &'a Spool,
    /// Its file name in the spool.
    name: &'a str,
    /// The entry, with the progress notes last written.
    entry: std::cell::RefCell<spool::Entry>,
    /// Set when the service refused the credentials a request of the run was sent with (HTTP
    /// 401, [`http::spooled_outcome`]): the flush keeps the run for the fix, holding back only
    /// the entries sent the same way, or refuses it when the credentials are its own.
    refused: std::cell::Cell<bool>,
}

/// The spool as one invocation sees it: what an entry of its requests carries, and whether it
/// must queue instead of sending.
struct Queue<'a> {
    spool: &'a Spool,
    template: spool::Entry,
    /// Entries hold a credential the event carried: owner-only file.
    private: bool,
    /// Queue every request instead of sending it, for this reason (the incident is busy, or
    /// older requests of it are still spooled).
    only: Option<String>,
    /// Whether this delivery turns the incident's recorded state over ([`turns_over`]): then
    /// every request it sends is noted in flight until its record is written, not only one
    /// the provider can look up, so that a kill in between is seen by the next holder.
    turns_over: bool,
    /// The requests of unknown fate this invocation spooled (the service may have acted on
    /// them), and the in-flight notes of those it could not spool: noted in the ledger when the
    /// invocation is done ([`state::leave_inflight`]), so that another host, which cannot see
    /// this spool, or the next holder, when nothing could be spooled, does not take the
    /// incident for being in the state of its last recorded action.
    kept_unknown: std::cell::RefCell<Vec<spool::Entry>>,
    /// How many requests this invocation spooled ([`Ctx::kept`]).
    kept: std::cell::Cell<usize>,
    /// Requests noted in flight with the one before them, which was accepted, and not sent
    /// yet ([`Ctx::send_before`]): their own [`Ctx::send`] goes out under that note.
    /// Each with whether this invocation wrote its note ([`InFlight`]'s `own`).
    noted_ahead: std::cell::RefCell<Vec<(spool::Entry, bool)>>,
    /// When this delivery began (its hold taken): where its requests of unknown fate go in the
    /// spool's order ([`spool::Spool::push_at`]).
    began: std::time::SystemTime,
}

impl Queue<'_> {
    /// Spool `payload`; the outcome to report: [`Outcome::Spooled`] saying where, or — when it
    /// could not be written — [`Outcome::Retry`] saying so (the caller prints the event).
    fn keep<T>(&self, payload: Value, fate: Fate, reason: &str) -> Outcome<T> {
        self.keep_with(payload, fate, reason, None)
    }

    /// [`Queue::keep`], with a run's `progress` notes ([`spool::Entry::progress`]).
    fn keep_with<T>(&self, payload: Value, fate: Fate, reason: &str, progress: Option<state::Progress>) -> Outcome<T> {
        let mut entry = self.template.clone();
        entry.payload = payload;
        entry.fate = fate;
        entry.progress = progress;
        // A request of unknown fate keeps the time of receipt, from before it was first sent:
        // a lookup (Twilio's ListCall) looks for what the service did from then on, and the
        // spool time, up to a deadline later, could miss it and have it sent twice.
        if fate != Fate::Unknown {
            entry.created = crate::clock::now_unix();
        }
        // A request of unknown fate (it may have reached the service) is the incident's action
        // as of when this delivery began: queued at that place, ahead of what another event
        // queued behind this delivery while it was in flight (a later failure, busy-queued,
        // taken first by the flush as an identical repeat, left this recovery to be superseded
        // by it after it had resolved the incident at PagerDuty).
        let pushed = match fate {
            Fate::Unknown => self.spool.push_at(&entry, self.private, self.began),
            _ => self.spool.push(&entry, self.private),
        };
        match pushed {
            Ok(name) => {
                self.kept.set(self.kept.get() + 1);
                if fate == Fate::Unknown {
                    self.kept_unknown.borrow_mut().push(entry);
                }
                Outcome::Spooled(format!("{reason}; spooled as {}/{name} for the next invocation or --flush", self.spool.dir().display()))
            }
            Err(e) => {
                Outcome::Retry(crate::outcome::Retry { reason: format!("{reason}; and it could not be spooled: {e:#}"), fate, after: None })
            }
        }
    }
}

/// A request noted in flight in its incident's record while it is sent ([`state::note_inflight`]):
/// should its sender die before the record of its delivery (kill -9, the monitoring system's
/// handler timeout), whoever holds the incident next finds the note and spools the request as
/// one of unknown fate ([`adopt_inflight`]), instead of deciding from a record that may no
/// longer be the service's state. One code path for a live delivery ([`Ctx::send_with`]) and a
/// flush sending a spooled request (`flush`): the note is made before the request goes out; the
/// record of the delivery removes it ([`state::apply`], by the action's token); a request not
/// delivered clears it ([`InFlight::clear`]), unless a flush keeps it spooled with its fate
/// unknown (then it stays noted, for the hosts that cannot see this spool).
struct InFlight<'a> {
    store: &'a dyn Store,
    /// The note that stands for the request (its incident key is the ledger's key).
    note: spool::Entry,
    /// Whether this sender wrote it (else it stood already, [`state::note_inflight`]).
    own: bool,
}

impl<'a> InFlight<'a> {
    /// Note `note` in flight, under its incident key, before its request goes out; or find the
    /// note of the same request that stands already. `None` when it could not be written
    /// (logged as a warning: the request still goes out, as before notes existed).
    fn note(store: &'a dyn Store, note: spool::Entry, log: &Logger) -> Option<InFlight<'a>> {
        InFlight::note_all(store, vec![note], log).pop()
    }

    /// [`InFlight::note`] for `notes` of one incident, in one write and in their order (a
    /// request and the one that must follow it: [`Ctx::send_before`]); none when they could
    /// not be written (logged).
    fn note_all(store: &'a dyn Store, notes: Vec<spool::Entry>, log: &Logger) -> Vec<InFlight<'a>> {
        let Some(key) = notes.first().map(|n| n.incident_key.clone()) else { return Vec::new() };
        match state::note_inflight(store, &key, &notes) {
            Ok(standing) => notes
                .into_iter()
                .zip(standing)
                .map(|(note, standing)| match standing {
                    None => InFlight { store, note, own: true },
                    Some(standing) => InFlight { store, note: standing, own: false },
                })
                .collect(),
            Err(e) => {
                log.warn(format!("cannot note the request in flight for {key}: {e:#}"));
                Vec::new()
            }
        }
    }

    /// The request was not delivered, and the spool or the failure takes over: the note this
    /// sender wrote goes (one that stood for the request already is left: it was there for a
    /// reason of its own, a request of unknown fate).
    fn clear(self, log: &Logger) {
        InFlight::clear_all(vec![self], log);
    }

    /// [`InFlight::clear`] for `notes` of one incident, in one write.
    fn clear_all(notes: Vec<InFlight<'_>>, log: &Logger) {
        InFlight::forget_all(notes.into_iter().filter(|n| n.own).collect(), log);
    }

    /// The request leaves the spool undelivered (refused, superseded), or its fate is known
    /// (accepted, with a request that must follow it noted: [`Ctx::send_before`]): whichever
    /// note stands for it goes. A failure is logged as a warning (the next holder then spools
    /// the request again: a duplicate at worst, never a loss).
    fn forget(self, log: &Logger) {
        InFlight::forget_all(vec![self], log);
    }

    /// [`InFlight::forget`] for `notes` of one incident, in one write.
    fn forget_all(notes: Vec<InFlight<'_>>, log: &Logger) {
        let Some(first) = notes.first() else { return };
        let (store, key) = (first.store, first.note.incident_key.clone());
        let entries: Vec<spool::Entry> = notes.into_iter().map(|n| n.note).collect();
        if let Err(e) = state::clear_inflight(store, &key, &entries) {
            log.warn(format!("cannot clear the in-flight note of {key}: {e:#}"));
        }
    }
}

impl<P: Provider> Ctx<'_, P> {
    /// Send the request `payload` stands for: built by [`Provider::request`], delivered with
    /// retries within the deadline, classified by [`Provider::classify`]. What cannot be
    /// delivered in time is spooled ([`Outcome::Spooled`]); a configuration problem still
    /// exits 78 but the request is kept for `--flush` once it is fixed. In dry-run the request
    /// is printed (pretty JSON on stdout, secrets masked) and an empty `200` reported.
    pub fn send(&self, payload: &P::Payload) -> Outcome<Response> {
        self.send_with(payload, &Map::new())
    }

    /// What the answer `resp` to `payload`'s request means ([`Provider::classify`]); in a run
    /// a flush carries on, as for any spooled request ([`http::spooled_outcome`]: the
    /// credentials refused keep it in the spool).
    fn classify(&self, payload: &P::Payload, resp: &Response) -> Outcome {
        self.spooled(resp, self.provider.classify(payload, resp))
    }

    /// `outcome`, a provider's classification of `resp`, as this delivery judges it: for a
    /// request of a run a flush carries on, as a spooled one's ([`http::spooled_outcome`]: the
    /// credentials refused keep it in the spool); otherwise as it is.
    pub fn spooled(&self, resp: &Response, outcome: Outcome) -> Outcome {
        let Some(run) = &self.run_entry else { return outcome };
        let outcome = http::spooled_outcome(resp, outcome);
        if P::credentials_refused(resp) && matches!(outcome, Outcome::Broken(_)) {
            run.refused.set(true);
        }
        outcome
    }

    /// Whether the service refused the credentials a request of the run a flush carries on was
    /// sent with ([`Ctx::spooled`]); `false` outside a flush's run.
    pub(super) fn credentials_refused(&self) -> bool {
        self.run_entry.as_ref().is_some_and(|r| r.refused.get())
    }

    /// [`Ctx::send`], with `refs` for what the payload leaves to the incident's references
    /// ([`Provider::request`]): values this invocation learned from an earlier answer (the
    /// channel a war room was just created with).
    pub fn send_with(&self, payload: &P::Payload, refs: &Map<String, Value>) -> Outcome<Response> {
        self.send_noting(payload, refs, None)
    }

    /// [`Ctx::send`] for a request that `next` must follow as part of the same action
    /// (Reactio's close after its recovery message, with `close_on_resolve`): when `payload`
    /// is noted in flight ([`Provider::note_in_flight`]), `next` is noted with it, in the same
    /// write, before `payload` goes out. A handler killed after the service took `payload`,
    /// before `next` was sent, leaves both notes, and the next holder sends both (in their
    /// order), not `payload` alone: adopted alone, the recovery message was posted again and
    /// the incident never closed. Once `payload` is accepted its own note is removed (its fate
    /// is known: a kill from then on has only `next` sent again) and `next`'s stays until the
    /// record, or until `next` itself is sent ([`Ctx::send`] finds its note and does not note it
    /// twice). When `payload` is not accepted (spooled, refused), `next`'s note goes with its
    /// own: the provider decides what becomes of `next` (spooled behind it, or not sent).
    pub fn send_before(&self, payload: &P::Payload, next: &P::Payload) -> Outcome<Response> {
        self.send_noting(payload, &Map::new(), Some(next))
    }

    /// [`Ctx::send_with`], noting `next` with `payload` ([`Ctx::send_before`]).
    fn send_noting(&self, payload: &P::Payload, refs: &Map<String, Value>, next: Option<&P::Payload>) -> Outcome<Response> {
        let req = match self.provider.request(payload, refs) {
            Ok(req) => req,
            Err(why) => return Outcome::Broken(why),
        };
        if self.dry_run {
            self.print(&req);
            return Outcome::Delivered(Response { status: 200, body: String::new(), retry_after: None, location: None });
        }
        let stored = || serde_json::to_value(payload).unwrap_or(Value::Null);
        if let Some(q) = &self.queue
            && let Some(why) = &q.only
        {
            return q.keep(stored(), Fate::NotSent, why);
        }
        let log = self.log;
        let classify = |resp: &Response| self.classify(payload, resp);
        // A request the provider can look up (a Twilio call) is never sent twice blindly: a
        // first attempt of unknown fate is spooled, and the flush looks it up before placing it.
        // Its note in the ledger while it is in flight lets the next holder look it up if this
        // process dies before the answer ([`state::take_inflight`]). A request that turns the
        // incident's recorded state over is noted too, whether or not it can be looked up: a
        // kill after the service acted on it, before its record, would otherwise leave the
        // record in the old state, and the incident's next event would be skipped as a repeat
        // of it (a recovery as "already resolved" with the failure the dead handler sent open
        // at PagerDuty; a failure as "already notified" after a recovery the service applied).
        // The next holder spools it as a request of unknown fate and sends it again before
        // its own event.
        let lookable = self.provider.lookup(payload, crate::clock::now_unix()).is_some();
        let noted = lookable || self.queue.as_ref().is_some_and(|q| q.turns_over);
        // Noted already, ahead of the request before it ([`Ctx::send_before`]): that note
        // stands for it; else noted now, with the request that must follow it, if any.
        let action = self.queue.as_ref().map(|q| q.template.action);
        let (inflight, ahead) = match (self.noted_ahead(&stored()), action) {
            (Some(note), _) => (Some(note), None),
            (None, Some(action)) if noted && self.provider.note_in_flight(payload, action) => {
                let mut payloads = vec![stored()];
                payloads.extend(
                    next.filter(|n| self.provider.note_in_flight(n, action)).map(|n| serde_json::to_value(n).unwrap_or(Value::Null)),
                );
                let mut notes = self.note_inflight_all(payloads).into_iter();
                (notes.next(), notes.next())
            }
            _ => (None, None),
        };
        let delivered = if lookable {
            self.client.deliver_until_unknown(&req, &self.deadline, &classify, &mut |line| log.info(line))
        } else {
            self.client.deliver(&req, &self.deadline, Fate::NotSent, &classify, &mut |line| log.info(line))
        };
        // Accepted: the note stays until the record of the delivery removes it (a kill in
        // between leaves it for the next holder), unless a request that must follow it was
        // noted with it: that note now stands for the action, and this request, whose fate is
        // known, is not sent again by the next holder. Of unknown fate (the service may have
        // acted on it): the notes stay until the request is in the spool, whose entry replaces
        // them when this invocation is done ([`state::leave_inflight`]), and for good when it
        // cannot be spooled (a full disk), for the next holder to send again. Removed first, a
        // kill or a full disk in between left the record in its old state with nothing to say
        // that the service may not be (a failure after a recovery PagerDuty applied skipped as
        // "already notified"). Otherwise the spool or the failure takes over now, for both.
        let accepted = matches!(delivered, Outcome::Delivered(_));
        let unknown = matches!(&delivered, Outcome::Retry(r) if r.fate == Fate::Unknown);
        let mut standing = Vec::new();
        match (inflight, ahead) {
            (Some(own), Some(ahead)) if accepted => {
                own.forget(log);
                if let Some(q) = &self.queue {
                    q.noted_ahead.borrow_mut().push((ahead.note, ahead.own));
                }
            }
            _ if accepted => {}
            (inflight, ahead) if unknown => standing.extend(inflight.into_iter().chain(ahead).map(|n| n.note)),
            (inflight, ahead) => InFlight::clear_all(inflight.into_iter().chain(ahead).collect(), log),
        }
        match delivered {
            Outcome::Delivered((resp, _)) => Outcome::Delivered(resp),
            Outcome::Retry(r) => match &self.queue {
                Some(q) => {
                    let kept = q.keep(stored(), r.fate, &r.reason);
                    if !matches!(kept, Outcome::Spooled(_)) {
                        q.kept_unknown.borrow_mut().extend(standing);
                    }
                    kept
                }
                None => Outcome::Retry(r),
            },
            // Cannot work from this machine as configured (an untrusted certificate, a proxy
            // refusing the credentials): still exit 78, but keep the page for `--flush` once
            // the configuration is fixed.
            Outcome::Broken(why) => match &self.queue {
                Some(q) => match q.keep::<()>(stored(), Fate::NotSent, &why) {
                    Outcome::Spooled(kept) => Outcome::Broken(kept),
                    _ => Outcome::Broken(why),
                },
                None => Outcome::Broken(why),
            },
            other => other.failure().unwrap_or(Outcome::Skipped(String::new())),
        }
    }

    /// Note `payload`, a run the provider carries out itself ([`Provider::is_run`]: Twilio's
    /// sequential calls), as in flight in the incident's record before it starts: when this
    /// process dies mid-run (killed by the monitoring system's handler timeout, kill -9), the
    /// next holder of the incident, or `--flush`, spools it (as a request a dead holder left in
    /// flight) and carries it on ([`Provider::resume`]) instead of leaving it to the incident's
    /// next event. The record
    /// of the delivery removes the note, and so does the end of an invocation that delivered
    /// nothing (its run is spooled or over). Best effort: a failure is logged, the run goes on.
    pub fn note_run_in_flight(&self, payload: &P::Payload) {
        if !self.dry_run {
            self.note_inflight(serde_json::to_value(payload).unwrap_or(Value::Null));
        }
    }

    /// Note `payload` as in flight in the incident's record ([`InFlight::note`]); the note
    /// (`None` without a ledger or a spool, or when it could not be written: logged, the
    /// request still goes out).
    fn note_inflight(&self, payload: Value) -> Option<InFlight<'_>> {
        self.note_inflight_all(vec![payload]).pop()
    }

    /// Note `payloads` as in flight in the incident's record, in one write and in their order
    /// ([`InFlight::note_all`]); the notes (none without a ledger or a spool, or when they
    /// could not be written: logged, the requests still go out).
    fn note_inflight_all(&self, payloads: Vec<Value>) -> Vec<InFlight<'_>> {
        let (Some(store), Some(q)) = (self.store, self.queue.as_ref()) else { return Vec::new() };
        let created = crate::clock::now_unix();
        let entries: Vec<spool::Entry> = payloads
            .into_iter()
            .map(|payload| {
                let mut entry = q.template.clone();
                entry.payload = payload;
                entry.fate = Fate::Unknown;
                entry.created = created;
                entry
            })
            .collect();
        InFlight::note_all(store, entries, self.log)
    }

    /// The note made for `payload` (its stored form) ahead of the request before it
    /// ([`Ctx::send_before`]), taken: `payload` is going out now under it.
    fn noted_ahead(&self, payload: &Value) -> Option<InFlight<'_>> {
        let store = self.store?;
        let mut ahead = self.queue.as_ref()?.noted_ahead.borrow_mut();
        let at = ahead.iter().position(|(e, _)| e.payload == *payload)?;
        let (note, own) = ahead.remove(at);
        Some(InFlight { store, note, own })
    }

    /// Queue `payload` in the spool without trying it now, for a request that must go after an
    /// earlier one that was spooled (Reactio's close behind its recovery message; Slack's
    /// calls after the first spooled one, which may need a value its answer brings back:
    /// [`Provider::request`] fills that in at flush time from the incident's references). In
    /// dry-run it is printed as by [`Ctx::send`].
    pub fn send_later(&self, payload: &P::Payload, why: &str) -> Outcome<Response> {
        if self.dry_run {
            return self.send(payload);
        }
        self.spool_run(payload, None, why)
    }

    /// [`Ctx::send_later`] for a run ([`Provider::is_run`]) that ended mid-way, with its
    /// `progress` notes kept in the entry ([`spool::Entry::progress`]): the flush that carries
    /// it on reads them there when the ledger cannot give them (Redis down).
    pub fn spool_run(&self, payload: &P::Payload, progress: Option<state::Progress>, why: &str) -> Outcome<Response> {
        if self.dry_run {
            return self.send(payload);
        }
        match &self.queue {
            Some(q) => q.keep_with(serde_json::to_value(payload).unwrap_or(Value::Null), Fate::NotSent, why, progress),
            None => Outcome::Retry(crate::outcome::Retry::not_sent(why)),
        }
    }

    /// How many requests this delivery has kept in the spool so far, for whatever reason (the
    /// service did not answer in time, the requests queue behind others, or this machine's
    /// configuration refused to send one, [`Outcome::Broken`]: exit 78, kept for the flush after
    /// the fix); always 0 in dry-run, without a spool directory, and in a run a flush carries
    /// on (whose own entry is what stays queued). A provider whose request depends on an
    /// earlier one having gone (Reactio's close behind its recovery message) compares it before
    /// and after that one.
    pub fn kept(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.kept.get())
    }

    /// Note a run's `progress` where the next invocation carrying it on finds it: in the
    /// incident's record ([`state::note_progress`]) and, for a spooled run a flush carries on,
    /// in its spool entry ([`spool::Entry::progress`]). Whether it was noted in at least one
    /// of them; each failure is logged as a warning.
    pub fn note_progress(&self, progress: &state::Progress) -> bool {
        let mut noted = false;
        if let Some(run) = &self.run_entry {
            let mut entry = run.entry.borrow_mut();
            entry.progress = Some(progress.clone());
            match run.spool.try_rewrite(run.name, &entry, crate::files::Durability::Durable) {
                Ok(()) => noted = true,
                Err(e) => self.log.warn(format!("cannot note the progress of {} in its spool entry: {e:#}", self.incident_key)),
            }
        }
        if let Some(store) = self.store {
            match state::note_progress(store, self.incident_key, progress) {
                Ok(()) => noted = true,
                Err(e) => self.log.warn(format!("cannot note the progress of {} in {}: {e:#}", self.incident_key, store.describe())),
            }
        }
        noted
    }

    /// The progress notes kept in the spool entry of the run a flush carries on
    /// ([`spool::Entry::progress`]), as last written; `None` outside a flush's run.
    pub fn kept_progress(&self) -> Option<state::Progress> {
        self.run_entry.as_ref()?.entry.borrow().progress.clone()
    }

    /// Whether this delivery's requests queue in the spool ([`Ctx::queued_behind`]): older
    /// requests of the incident are still spooled (a Reactio recovery whose create is), or
    /// another invocation is delivering for it.
    pub fn behind_spooled(&self) -> bool {
        self.queued_behind().is_some()
    }

    /// Why every request of this delivery queues in the spool instead of going out (older
    /// requests of the incident are still spooled, or another invocation is delivering for
    /// it), when it must: a provider that sends without [`Ctx::send`] (Twilio's sequential
    /// calls) spools its whole delivery then ([`Ctx::send_later`]).
    pub fn queued_behind(&self) -> Option<&str> {
        self.queue.as_ref().and_then(|q| q.only.as_deref())
    }

    /// The token of this invocation's action (what its spooled requests, in-flight notes and
    /// progress notes carry); `None` in dry-run.
    pub fn token(&self) -> Option<&str> {
        self.token
    }

    /// Whether a resolve or acknowledge asked this delivery to stop (a long run calling one
    /// person after another, on any host sharing the store): the request, when one was made.
    /// When the store's connection broke (Redis restarted), it connects again first
    /// ([`Store::reconnect`], at most once per renewal period): a resolve on another host still
    /// stops the run. Notices the store gathered meanwhile (its hold renewed or taken again
    /// after a new connection) are logged as warnings. A record that cannot be read is warned
    /// of once (the run carries on), not at every check, until it can be read again.
    pub fn stop_requested(&self, event_time: u64) -> Option<Stop> {
        let store = self.store?;
        let read = state::get(store, self.incident_key).or_else(|e| match store.reconnect() {
            Ok(true) => state::get(store, self.incident_key),
            Ok(false) => Err(e),
            Err(again) => Err(anyhow::anyhow!("{e:#}; {again:#}")),
        });
        for n in store.take_notices() {
            self.log.warn(n);
        }
        let was_unread = self.stop_unread.swap(read.is_err(), std::sync::atomic::Ordering::Relaxed);
        match read {
            Ok(record) => {
                if was_unread {
                    self.log.info(format!("{}: the record can be read again to see whether to stop", self.incident_key));
                }
                // The first check remembers what the record holds, and is decided without it.
                let mut began = self.stop_began.borrow_mut();
                let first = began.is_none();
                let began = &*began.get_or_insert_with(|| state::StopSignals::of(record.as_ref()));
                state::stop_requested(record.as_ref(), event_time, self.time_origin, (!first).then_some(began))
            }
            Err(e) => {
                let line = format!("cannot read the record of {} to see whether to stop: {e:#}", self.incident_key);
                if was_unread {
                    self.log.debug(line)
                } else {
                    self.log.warn(format!("{line}; carrying on, asking again at every check"))
                }
                None
            }
        }
    }

    /// Why this delivery's hold of its incident was lost to another invocation, if it was
    /// ([`Store::hold_lost`]: its lease lapsed while the shared store was away, and another
    /// invocation took the incident): a long run must then place nothing more. No round trip.
    pub fn hold_lost(&self) -> Option<String> {
        self.store?.hold_lost(self.incident_key)
    }

    /// Send a read-only request (a lookup, never spooled) within the deadline, classified by
    /// `classify`. In dry-run nothing is sent: an empty `200` is reported.
    pub fn fetch(&self, req: &Request, classify: &dyn Fn(&Response) -> Outcome) -> Outcome<Response> {
        if self.dry_run {
            return Outcome::Delivered(Response { status: 200, body: String::new(), retry_after: None, location: None });
        }
        let log = self.log;
        self.client.deliver(req, &self.deadline, Fate::NotSent, classify, &mut |line| log.info(line)).map(|(resp, _)| resp)
    }

    /// Print `req` as `--dry-run` shows requests: a log line with the method and URL, the body
    /// as pretty JSON on stdout, secrets masked.
    pub fn print(&self, req: &Request) {
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
        // Line by line: the pretty printer's own line breaks stay, and a host-written value's
        // C1 controls, U+2028 and bidirectional controls (which serde_json leaves raw inside
        // strings) become `\uXXXX` escapes, as in the JSON log lines.
        let text: Vec<String> = text.lines().map(|l| crate::log::escape_json_line(l.to_string())).collect();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", text.join("\n"));
    }
}

/// How many requests a flush sends in place of a refused one, one after another, at most
/// ([`Provider::instead`]): 6 (Slack's five numbered names and a random one).
pub const MAX_INSTEAD: u32 = 6;

/// How many pages of a lookup's answer are read at most ([`Provider::lookup_next`]): 20. A list
/// cut short makes a request that went through look as if it had not (it is sent again: a
/// duplicate, never a loss).
pub const MAX_LOOKUP_PAGES: usize = 20;

/// The pages of a lookup's answer, in order: `first`'s answer, then each page `next` asks for
/// given the pages read so far (the last one the newest), up to [`MAX_LOOKUP_PAGES`]. `fetch`
/// answers one request; its error ends the reading and is returned (a list read in part is
/// never judged: it could say "not there" of what is on the next page).
pub fn read_pages<E>(
    first: Request,
    mut fetch: impl FnMut(&Request) -> std::result::Result<Response, E>,
    next: impl Fn(&[Response]) -> Option<Request>,
) -> std::result::Result<Vec<Response>, E> {
    let mut pages: Vec<Response> = Vec::new();
    let mut request = Some(first);
    while let Some(page) = request.take() {
        pages.push(fetch(&page)?);
        request = next(&pages).filter(|_| pages.len() < MAX_LOOKUP_PAGES);
    }
    Ok(pages)
}

/// What a lookup ([`Provider::lookup`], [`Provider::found`]) says of a request of unknown fate.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// The service acted on it: the references to remember (possibly none).
    Yes(Map<String, Value>),
    /// It did not: send it again.
    No,
    /// The answer cannot tell yet (Twilio: other requests to the same number are still of
    /// unknown fate): the reason. Asked again shortly while time allows, then sent again (a
    /// duplicate, never a loss).
    CannotTell(String),
    /// The lookup got no usable answer: a page that is not the service's (a proxy's or a
    /// load balancer's HTML with a 2xx), or the service's own error for the lookup (Slack's
    /// `internal_error`, `ratelimited`): the reason. Asked again shortly while time allows,
    /// then kept spooled with its fate still unknown, as when the lookup fails in transport:
    /// sent again without a lookup it could ring a second time or open a second war room.
    Unanswered(String),
    /// The service refused the lookup for good, an answer that will not change until the
    /// settings do (Slack: `missing_scope` for a token without `channels:read`,
    /// `invalid_auth`, `not_allowed_token_type`, `invalid_arguments`): the reason, naming what
    /// to fix. Not asked again in this flush. The request stays spooled with its fate unknown,
    /// and its incident's later requests behind it, until a flush can look it up; other
    /// requests go on (the service may take requests it refuses to list); the flush, or the
    /// event queued behind it, exits 78 ([`crate::exit::Code::Config`]: the settings need
    /// fixing, where 75 would wait in vain). Sent again without the lookup it could be a
    /// duplicate (a second Slack war room, refused as `name_taken`; a second phone call). A
    /// lookup answered with an HTTP status the service means for good (a 4xx with its own
    /// error body: Twilio's 401 / 403 for an API key that may create calls but not list them,
    /// Reactio's 401) comes to the same ([`Provider::classify_lookup`]).
    Broken(String),
}

/// A handler's provider: the service-specific half.
pub trait Provider: Sized {
    /// Handler and settings-section name: `pagerduty`, `twilio`, `reactio`, `slack`.
    const NAME: &'static str;

    /// How this handler reads its settings section besides [`Common`] ([`crate::unread`]): its
    /// settings struct(s) (`Reader::of::<Settings>()`), names read by hand, objects the
    /// operator names (teams). A setting of the settings files that none of them reads is
    /// warned about; a reader left out would have its every setting warned about.
    const READERS: &'static [crate::unread::Reader];

    /// Who may set each of this handler's own settings ([`crate::trust`]); a setting not
    /// named here (nor in [`crate::trust::COMMON`]) is operator-only.
    const SETTINGS: &'static [(&'static str, crate::trust::Trust)] = &[];

    /// What one request needs besides the settings, as the spool keeps it: no URL and no
    /// credential, so that a flush builds the request from the settings then in force.
    type Payload: Serialize + DeserializeOwned + std::fmt::Debug;

    /// What a resolve or acknowledge does when the ledger has no record of the incident.
    const NO_RECORD: NoRecord = NoRecord::Send;

    /// What the service does with a repeated trigger, which decides how durably a delivered
    /// trigger is recorded ([`state::record_durability`]). Only PagerDuty merges repeats.
    const REPEATED_TRIGGER: RepeatedTrigger = RepeatedTrigger::ActedOn;

    /// The settings that say where a page goes (PagerDuty's routing key and its other names).
    /// When an event sets one of them (a Zabbix user's `{ALERT.SENDTO}`, a check's own routing
    /// key), the incident is another one in the ledger (its key gets `@` and a hash of the
    /// destination): the Zabbix action that notifies two users, each with their team's routing
    /// key, pages both teams, where the second was skipped as a repeat of the first.
    const DESTINATION: &'static [&'static str] = &[];

    /// This handler's defaults for settings whose shared default does not suit it, laid under
    /// the settings files (lowest precedence). E.g. Reactio pages for `critical` only, as the
    /// Ruby `reactio_handler.rb` did, where [`Common`] defaults to all three severities.
    fn defaults() -> Map<String, Value> {
        Map::new()
    }

    /// Build the provider from its merged settings section (defaults < files < flags < event
    /// overrides). Errors exit 78 and name the setting.
    fn from_settings(section: &Map<String, Value>, common: &Common) -> Result<Self>;

    /// Credentials to mask in every output.
    fn secrets(&self) -> Vec<String>;

    /// Check that a real delivery is possible (credentials present …). In dry-run a failure is
    /// only logged as a warning.
    fn ready(&self) -> Result<()>;

    /// Whether an event's invocation with deadline `timeout` can carry out what these settings
    /// ask at all (Twilio's sequential mode needs `ring_timeout` + 15 s for one call). Checked
    /// for an event (exit 78 at start; an event override that breaks it is dropped as invalid),
    /// never for a flush: a flush carries a long delivery on over as many flushes as it takes,
    /// each within its own deadline ([`Provider::resume`]). Default: it fits.
    fn fits(&self, _timeout: std::time::Duration) -> Result<()> {
        Ok(())
    }

    /// Which of the provider's templates say nothing of `event` (every placeholder blank:
    /// [`crate::template::Template::render_telling`]), so that their defaults are used: one
    /// warning each, naming the setting, so that the operator learns the template does not fit
    /// every event. Default: none.
    fn template_notes(&self, _event: &Event) -> Vec<String> {
        Vec::new()
    }

    /// The incident key for `event`: by default `{entity}/{check}` (the Ruby handlers' key),
    /// or the key the source provides (Zabbix `{id}-{hostname}`).
    fn incident_key(&self, event: &Event) -> String {
        crate::template::incident_key(None, event)
    }

    /// What a Zabbix `{ALERT.SENDTO}` value means to this provider: the setting it overrides
    /// (e.g. PagerDuty's `routing_key`), or `None` to ignore it.
    ///
    /// Errors: why a value that looks meant as such a setting cannot be one (a routing key with
    /// a character too many): logged as a warning, never naming the value (it may be a
    /// credential), and the value is ignored.
    fn send_to(_value: &str) -> std::result::Result<Option<(&'static str, Value)>, String> {
        Ok(None)
    }

    /// Whether this provider acts on `action` at all (e.g. only PagerDuty acknowledges);
    /// `Some(reason)` skips.
    fn unsupported(&self, _action: Action) -> Option<String> {
        None
    }

    /// Deliver `job` (through [`Ctx::send`]).
    fn act(&self, ctx: &Ctx<'_, Self>, job: &Job<'_>) -> Outcome<Done>;

    /// The HTTP request for `payload` under the current settings; `refs` are the incident's
    /// stored references (a value a spooled payload left open, such as a Reactio incident id).
    /// `Err(why)`: it cannot be built (a value still unknown).
    fn request(&self, payload: &Self::Payload, refs: &Map<String, Value>) -> std::result::Result<Request, String>;

    /// What the service's answer to `payload`'s request means. Default:
    /// [`http::classify_status`].
    fn classify(&self, _payload: &Self::Payload, resp: &Response) -> Outcome {
        http::classify_status(resp)
    }

    /// Whether the answer `resp` refuses the credentials the request was sent with (a token
    /// revoked or rotated): a spooled request so answered waits for the fix, holding back only
    /// the entries sent the same way, or is refused for good when the credentials came with
    /// its event (`--flush`). Default: [`http::credentials_refused`] (HTTP 401).
    fn credentials_refused(resp: &Response) -> bool {
        http::credentials_refused(resp)
    }

    /// The request to send in place of `payload`, which the service refused for good from the
    /// spool with `resp`, when another does what it was for (Slack: a war room whose name was
    /// taken meanwhile asks for the next name, as a live invocation does). A flush tries up to
    /// [`MAX_INSTEAD`] of them in a row, each written into the spool entry (as not sent) before
    /// it goes, so that a lost answer is looked up as what was sent. Default: none (refused).
    fn instead(&self, _payload: &Self::Payload, _resp: &Response) -> Option<Self::Payload> {
        None
    }

    /// The request that takes back `trigger` (a trigger's payload) at the service, for a
    /// trigger of unknown fate that a flush finds superseded by a later resolve: it may have
    /// reached the service after that resolve (held up on its way past its deadline), opening
    /// the incident again with nothing left to close it. The flush sends it whether or not the
    /// trigger got there, so it must be harmless when it did not (PagerDuty: the resolve of its
    /// `dedup_key`, accepted and ignored for an incident that is not open). Default: none.
    fn recovery_of(&self, _trigger: &Self::Payload) -> Option<Self::Payload> {
        None
    }

    /// References to remember from the answer to a spooled request (merged into the
    /// incident's `refs`), e.g. the id of a Reactio incident created late. Default: none.
    fn spooled_refs(&self, _payload: &Self::Payload, _resp: &Response) -> Map<String, Value> {
        Map::new()
    }

    /// For a request whose fate is unknown (sent, no answer in time): a request that finds out
    /// whether the service acted on it anyway (Twilio: the calls to `To` from `From` since
    /// `since`, Unix seconds), so that it is not repeated blindly. Default: none (sent again).
    fn lookup(&self, _payload: &Self::Payload, _since: u64) -> Option<Request> {
        None
    }

    /// Whether a request [`Provider::lookup`] can look up, or one whose delivery turns the
    /// incident over (a failure of an incident the record holds resolved, a recovery of one it
    /// holds open), is noted in the incident's record while in flight, so that the next holder
    /// looks it up, or sends it again, should this process die before the answer
    /// ([`state::take_inflight`]): right for a request that is the whole page (a Twilio call,
    /// a PagerDuty event). Not for one whose page goes on after it in steps that are not noted
    /// (Slack's war room: the create, then the topic, invites and the alert): adopted alone,
    /// its lookup or second create was taken for the page and the alert never went out; the
    /// next event opens the war room itself and finds the room the dead one made. A request
    /// that one more must follow (Reactio's close after its recovery message) goes with
    /// [`Ctx::send_before`], which notes both before the first goes out. A flush asks it of a
    /// spooled request that turns the incident over (a lookable one is marked in its spool
    /// entry instead, unless it turns the incident over too): the steps after it are spooled
    /// behind it, and its flush, or the next one, sends them. `action` is the action the
    /// request delivers (Twilio notes a text only for a recovery, whose texts are all it
    /// sends). Default: yes.
    fn note_in_flight(&self, _payload: &Self::Payload, _action: Action) -> bool {
        true
    }

    /// What the service's answer to a request of [`Provider::lookup`] (or
    /// [`Provider::lookup_next`]) for `payload` means: delivered (a page for
    /// [`Provider::found`]), retryable (kept with its fate unknown for a later lookup), or
    /// refused ([`crate::outcome::Outcome::Refused`]: with the service's own error body, a
    /// refusal for good, [`Found::Broken`]; without one, a page that is not the service's,
    /// such as a proxy's HTML, taken as no answer). The reason quotes the service's error.
    /// Default: [`http::classify_status`].
    fn classify_lookup(&self, _payload: &Self::Payload, resp: &Response) -> Outcome {
        http::classify_status(resp)
    }

    /// The request for the page after the last of `pages` (the answer to [`Provider::lookup`]
    /// for `since`, page after page), when there is one (Twilio's `next_page_uri`, Slack's
    /// `next_cursor`, Reactio's `page` + 1 until a page ends the list): a list is read to its
    /// end, as far as [`MAX_LOOKUP_PAGES`], before [`Provider::found`] judges it, because what
    /// is looked for may be on any page. Default: none (one page).
    fn lookup_next(&self, _payload: &Self::Payload, _since: u64, _pages: &[Response]) -> Option<Request> {
        None
    }

    /// What the answer to [`Provider::lookup`] shows of the request, attempt `attempt` of its
    /// action: acted on (with the references to remember), not, or cannot tell. `pages` are
    /// the answer's pages in order (the first, then each [`Provider::lookup_next`] brought);
    /// `since` is when the request was sent (Unix seconds); `known` the incident's stored
    /// references (what earlier requests brought back, so not this one) and the provider's
    /// [`Provider::known`]. Default: not acted on.
    fn found(&self, _payload: &Self::Payload, _pages: &[Response], _since: u64, _known: &Map<String, Value>, _attempt: &str) -> Found {
        Found::No
    }

    /// A spooled request that can be looked up ([`Provider::lookup`]) is about to go out again
    /// as attempt `attempt` of its action, and may reach the service until `until` (Unix
    /// seconds, its deadline): bookkeeping of the provider's own, before it is sent (Twilio
    /// notes the attempt per number, so that a flush killed while sending leaves an attempt of
    /// unknown fate, never a call nobody knows of). Default: nothing.
    fn attempting(&self, _store: &dyn Store, _payload: &Self::Payload, _attempt: &str, _until: u64) {}

    /// The lookup showed that attempt `attempt` of a spooled request was not acted on (it is
    /// sent again under the same attempt): bookkeeping of the provider's own (Twilio forgets
    /// nothing here; the attempt is noted again before it goes out). Default: nothing.
    fn not_acted_on(&self, _store: &dyn Store, _payload: &Self::Payload, _attempt: &str) {}

    /// A spooled request, attempt `attempt` of its action (the action's token, or the one
    /// given to [`Provider::attempting`]), has been settled by a flush (delivered, or found by
    /// [`Provider::lookup`]) with `refs`: bookkeeping of the provider's own (Twilio notes the
    /// call's SID for later lookups). Default: nothing.
    fn settled(&self, _store: &dyn Store, _payload: &Self::Payload, _attempt: &str, _refs: &Map<String, Value>) {}

    /// References to requests this handler knows it sent lately, whatever the incident (Twilio:
    /// every call SID it learned in the last hours, from a shared record), so that
    /// [`Provider::found`] does not take another incident's request for the one it looks for.
    fn known(&self, _store: &dyn Store) -> Map<String, Value> {
        Map::new()
    }

    /// Whether `payload` is a whole delivery of the provider's own rather than one request
    /// (Twilio's sequential run: one call after another, each decided by how the one before
    /// ended): a flush carries it on with [`Provider::resume`] instead of sending
    /// [`Provider::request`]. Default: never.
    fn is_run(&self, _payload: &Self::Payload) -> bool {
        false
    }

    /// Whether the run `payload` of a trigger ([`Provider::is_run`]) is stale once a resolve or
    /// acknowledge of a later event is known (the event being handled, or an entry queued
    /// behind it): not carried on then, and moved to `failed/` as superseded. Right for a run
    /// that pages people (Twilio's sequential calls: nobody is called about an incident that
    /// has recovered). Not for one that is a message of the incident's log the entries behind
    /// it follow (Slack's war room opened in place of one that is gone: the recovery queued
    /// behind it is posted there, as live). Default: yes.
    fn superseded_by_a_later_stop(&self, _payload: &Self::Payload) -> bool {
        true
    }

    /// Carry on the run `payload` ([`Provider::is_run`]) of a spooled entry, within `ctx`'s
    /// deadline (the flush's share for it) and under the incident's hold: `previous` is the
    /// incident's record (with the notes a run before it left, [`crate::state::Progress`]),
    /// `event_time` the entry's event time (a resolve or acknowledge of a later event asks it
    /// to stop, [`Ctx::stop_requested`]). `ctx` spools nothing. Default: refused (a provider
    /// without runs never spools one).
    fn resume(&self, _ctx: &Ctx<'_, Self>, _payload: &Self::Payload, _previous: Option<&Incident>, _event_time: u64) -> Resumed {
        Resumed::Failed(Outcome::Refused(format!("handler-{} carries on no runs", Self::NAME)))
    }
}

/// What a flush's [`Provider::resume`] of a spooled run came to.
#[derive(Debug)]
pub enum Resumed {
    /// It reached the service's people: recorded as delivered, with the references; the
    /// entry is removed.
    Delivered(Done),
    /// It is over without reaching anyone, with nothing to record (Twilio: nobody answered
    /// after every round), the reason: the entry moves to `failed/` for the record, logged as
    /// an error; the next event for the incident pages afresh.
    Ended(String),
    /// A resolve or acknowledge of a later event stopped it, or the record holds its run as
    /// delivered already, the reason: the entry moves to `failed/` as superseded, nothing is
    /// recorded.
    Superseded(String),
    /// Not over when its share of the flush ran out (a call may still ring), the reason: the
    /// entry stays queued, and what the incident's record notes of it says where the next
    /// flush carries on. Its incident's later entries wait; other entries sent the same way
    /// do not (the service answers).
    Unfinished(String),
    /// Kept, as [`Resumed::Unfinished`], because the service refused for good the lookup of
    /// what an earlier attempt of the run may have done (Slack: the war room a create whose
    /// answer was lost may have opened, `missing_scope` from `conversations.list`), the reason
    /// naming the refusal: nothing is sent again blind, and the flush exits 78, as for a
    /// request whose lookup is refused ([`Found::Broken`]).
    Unlookable(String),
    /// Failed as a request fails: [`Outcome::Retry`] (the service cannot be reached: the
    /// entries sent the same way wait too), [`Outcome::Refused`], [`Outcome::Broken`].
    Failed(Outcome),
}

/// A handler's whole `main`: run one invocation on stdin, print a failure as one masked log
/// line, and return the exit code.
pub fn main<P: Provider>(args: &CommonArgs, flags: Map<String, Value>) -> Code {
    main_with::<P>(args, flags, crate::event::stdin::Stdin::within(args.stdin_limit()))
}

/// [`main`] with the event read from `input` instead of stdin (e.g. a synthetic event for a
/// rehearsal such as `handler-twilio --test`).
// Never inlined into the handler's `run`: its frame (the event, the settings and the provider
// by value, ~28 KiB with what LTO inlines into it) would then be added to that of the clap
// parse that runs before it, instead of reusing the stack pages the parse used: 7 more pages
// for every event to fault in (bench/HISTORY.md, session 17).
#[inline(never)]
pub fn main_with<P: Provider>(args: &CommonArgs, flags: Map<String, Value>, input: impl std::io::Read) -> Code {
    let mut log = Logger::new(P::NAME, args.log_format, args.verbose).with_syslog(args.syslog.clone());
    match run::<P>(args, flags, input, &mut log) {
        Ok(code) => code,
        Err(failure) => {
            log.error(failure.to_string());
            failure.code
        }
    }
}

/// Everything read before anything is decided: the event, the settings, the provider.
struct Read<P> {
    event: Event,
    /// The raw stdin bytes, for printing an event that could not be kept.
    raw: Option<Vec<u8>>,
    /// The event's settings overrides for this handler (kept with spooled requests).
    overrides: Map<String, Value>,
    /// The operator's settings alone, for building spooled requests' settings.
    operator: settings::Operator,
    common: Common,
    provider: P,
}

/// Phase 1: read the event and the settings, build the provider (its secrets registered with
/// `log`).
fn read<P: Provider>(args: &CommonArgs, flags: Map<String, Value>, stdin: impl std::io::Read, log: &mut Logger) -> Result<Read<P>> {
    let (mut event, raw) = match args.from {
        Some(source) => {
            let mut notes = Vec::new();
            let event = args.invocation().read(source, stdin, &mut notes);
            notes.iter().for_each(|n| log.info(n));
            (event?, None)
        }
        None => {
            let input = event::read_capped(stdin)?;
            // After the event is read: bad input stays one line.
            let event = event::parse_json(&input.bytes, args.input)?;
            for line in input.not_utf8.iter().chain(&input.deep).chain(&input.cut).chain(&input.open) {
                log.warn(line);
            }
            (event, Some(input.bytes))
        }
    };
    event.ignored.iter().for_each(|line| log.warn(line));
    match event.send_to.as_deref().map(P::send_to) {
        Some(Ok(Some((setting, value)))) => {
            event.overrides.entry(P::NAME.to_string()).or_default().insert(setting.to_string(), value);
        }
        Some(Err(why)) => log.warn(why),
        Some(Ok(None)) | None => {}
    }
    // Every credential the check's overrides carry, for any handler (a routing key from SENDTO
    // too), is masked from here on: in the event printed when it can be neither delivered nor
    // spooled, in `--explain` and `--dry-run`, and in every log line, whether or not
    // `crate::trust` lets this handler use it (its own are added again with the provider's).
    // The entity's are masked in the printed event only (`print_undelivered`).
    log.add_secrets(event.credentials());
    log.debug(format!("event: {} {}/{} status {}", event.format.name(), event.entity, event.check, event.status));
    match configure::<P>(args, &flags, &mut event, log) {
        Ok((overrides, operator, common, provider)) => Ok(Read { event, raw, overrides, operator, common, provider }),
        Err(failure) => {
            // The settings cannot be read or used (exit 78: a settings file that is a FIFO, a
            // secret file missing): the event, read already, is not lost with them. Masked as
            // a delivery's would be: the provider never registered its secrets, and the event
            // may quote one (a check's output showing a settings file).
            if !(args.dry_run || args.explain) {
                log.add_secrets(settings::readable_secrets::<P>(args, &flags));
                print_undelivered(log, &event, raw.as_deref());
            }
            Err(failure)
        }
    }
}

/// The settings and the provider for `event` ([`read`]); the provider's secrets registered
/// with `log`.
fn configure<P: Provider>(
    args: &CommonArgs,
    flags: &Map<String, Value>,
    event: &mut Event,
    log: &mut Logger,
) -> Result<(Map<String, Value>, settings::Operator, Common, P)> {
    let settings::Settings { section, common, overrides, operator } = settings::settings::<P>(args, flags, Some(event), log)?;
    crate::trust::narrow_filter_attributes(event, P::NAME, common.check_settings.as_deref(), &mut |l| log.warn(l));
    let provider = P::from_settings(section.as_ref().unwrap_or(&operator.section), &common)
        .and_then(|p| p.fits(common.timeout).map(|()| p))
        .inspect_err(|_| operator.warn_unread::<P>(log))?;
    log.add_secrets(provider.secrets());
    log.add_secrets(common.secrets());
    Ok((overrides, operator, common, provider))
}

/// Run one invocation of handler `P` on the event read from `stdin` (or, with `--flush`,
/// `--list` or `--forget`, work on the spool or the ledger and read nothing).
///
/// `flags` holds the handler's own flags as settings (`routing_key` …), laid over the files
/// together with the shared flags. Returns the exit code for a completed run; errors carry
/// theirs. `log` gets the provider's secrets registered as soon as they are known.
///
/// The phases: `read` the event and settings; `decide_event` (filters, incident key, the
/// ledger's proposal); then `--explain`, `--dry-run`, or `Local::fast_path` → older spooled
/// requests of other incidents → `Local::catch_up` (the incident's hold and its own spooled
/// requests) → `Local::deliver` (the provider, then the record of what the service accepted).
pub fn run<P: Provider>(args: &CommonArgs, flags: Map<String, Value>, stdin: impl std::io::Read, log: &mut Logger) -> Result<Code> {
    if args.flush {
        return flush::flush_only::<P>(args, flags, log);
    }
    if args.list || args.forget.is_some() {
        return ledger::command::<P>(args, flags, log);
    }
    // Never dropped: the event and the settings live as long as this one-shot process, and
    // freeing their maps piece by piece cost 3 % of a dedup skip's instructions (bench/HISTORY.md,
    // session 17). Nothing in them holds a lock or a file (Local does, and is dropped).
    let read = std::mem::ManuallyDrop::new(read::<P>(args, flags, stdin, log)?);
    // Settings nothing reads are named unless the event turns out a dedup skip (Operator::warn_unread).
    let warn_unread = || read.operator.warn_unread::<P>(log);
    if let Err(not_ready) = read.provider.ready() {
        if !(args.dry_run || args.explain) {
            warn_unread();
            // No routing key (exit 78): the event stays in the monitoring system's log.
            print_undelivered(log, &read.event, read.raw.as_deref());
            return Err(not_ready);
        }
        log.warn(format!("{not_ready} (a real run exits {})", not_ready.code.as_u8()));
    }
    for note in read.provider.template_notes(&read.event) {
        log.warn(note);
    }
    let log = &*log;
    let decided = decide_event(&read);
    if args.explain || args.dry_run {
        warn_unread();
    }
    if args.explain {
        let input = explain::Input {
            event: &read.event,
            common: &read.common,
            key: &decided.key,
            action: &decided.action,
            proposal: decided.proposal.as_ref(),
            now: decided.now,
        };
        return explain::explain::<P>(&input, log);
    }
    if let Err((why, quiet)) = &decided.action {
        let line = format!("skipped {}: {why}", decided.key);
        if *quiet { log.debug(line) } else { log.info(line) }
    }
    if args.dry_run {
        return dry_run(&read, &decided, log);
    }
    let local = Local::open(&read, &decided, log);
    if local.fast_path() {
        return Ok(Code::Ok);
    }
    warn_unread();
    local.flush_others();
    let Some(p) = &decided.proposal else { return Ok(Code::Ok) };
    match local.catch_up(p)? {
        CaughtUp::Skip(why) => {
            log.info(format!("skipped {}: {why}", decided.key));
            Ok(Code::Ok)
        }
        CaughtUp::Deliver { hold, record, only, needs_settings, client } => local.deliver(p, record, (only, needs_settings), &client, hold),
    }
}

/// What the filters and the ledger's inputs make of the event.
struct Decided {
    /// The incident's key in the ledger, the spool and the hold ([`ledger_key`]).
    key: String,
    /// The incident key the provider sends (PagerDuty's dedup key): [`Provider::incident_key`].
    incident_key: String,
    /// The action, or why none (and whether that is only worth a debug line).
    action: std::result::Result<Action, (String, bool)>,
    /// What the ledger is asked to apply (`None` when the filters skip).
    proposal: Option<Proposal>,
    /// Now, Unix seconds.
    now: u64,
    /// The invocation's deadline.
    deadline: Deadline,
}

/// Phase 2: the incident key, the filters' action and the ledger's proposal.
fn decide_event<P: Provider>(read: &Read<P>) -> Decided {
    let Read { event, common, provider, .. } = read;
    // From here: the time the event took to arrive (bounded by `CommonArgs::stdin_limit`) or
    // a `--from exec` job took to run is not the page's.
    let deadline = Deadline::after(common.timeout);
    let incident_key = provider.incident_key(event);
    let key = ledger_key::<P>(&incident_key, &read.overrides);
    let action = match filter::decide(event, common) {
        Decision::Act(a) => match provider.unsupported(a) {
            None => Ok(a),
            Some(why) => Err((why, false)),
        },
        Decision::Skip(why) => Err((why, false)),
        Decision::QuietSkip(why) => Err((why, true)),
    };
    let now = crate::clock::now_unix();
    // Bounded by the receipt: a monitored host's clock, ahead or behind, must not supersede the
    // incident's later pages.
    let event_time = state::ordering_time(event.timestamp, event.time_source, now, state::host_clock_lateness());
    // A sequence number orders events of the event's own second only, not of a time replaced
    // by the receipt, nor of a receipt under another name (a batch event's time).
    let own_time =
        event.time_source != event::TimeSource::Receipt && event.timestamp.and_then(|t| u64::try_from(t).ok()) == Some(event_time);
    let proposal = action.as_ref().ok().map(|&action| Proposal {
        action,
        severity: event.status_name().to_string(),
        event_time,
        time_origin: if own_time { state::TimeOrigin::Event } else { state::TimeOrigin::Receipt },
        event_seq: event.sequence.filter(|_| own_time),
        refresh_secs: refresh_secs(event, common),
        token: state::new_token(),
        // Not when the operator's `notification_types` chose the action.
        only_open: event.action == Some(event::SourceAction::ResolveIfOpen) && crate::filter::mapped(event, common).is_none(),
        spooled: None,
        custom: action == Action::Trigger && crate::filter::is_custom(event, common),
    });
    Decided { key, incident_key, action, proposal, now, deadline }
}

/// The ledger's key for the incident `incident_key` whose event laid `overrides` over the
/// operator's settings: `incident_key` itself, or, when the event chose where the page goes
/// (one of [`Provider::DESTINATION`] among its overrides), `incident_key@xxxxxxxx`, a hash of
/// that destination (never the credential itself: it is shown in logs and `--list`). One
/// event's pages to two destinations (two PagerDuty services) are two incidents to the
/// ledger; pages to the operator's own destination keep the plain key.
fn ledger_key<P: Provider>(incident_key: &str, overrides: &Map<String, Value>) -> String {
    let chosen: Vec<String> = P::DESTINATION.iter().filter_map(|s| overrides.get(*s)).map(Value::to_string).collect();
    if chosen.is_empty() {
        return incident_key.to_string();
    }
    // 32 bits: enough to tell a few teams apart, far too few to recover a key from.
    let hash = crate::state::file::fnv1a(chosen.join("\n").as_bytes());
    format!("{incident_key}@{:08x}", (hash >> 32) as u32 ^ hash as u32)
}

/// `--dry-run`: the provider prints what it would send; no state, no spool.
fn dry_run<P: Provider>(read: &Read<P>, d: &Decided, log: &Logger) -> Result<Code> {
    let Some(p) = &d.proposal else { return Ok(Code::Ok) };
    let client = Client::new(read.common.ca_file.as_deref()).map_err(|e| Code::Config.fail(e))?;
    let ctx = Ctx {
        provider: &read.provider,
        client: &client,
        deadline: d.deadline,
        log,
        dry_run: true,
        store: None,
        incident_key: &d.key,
        queue: None,
        token: None,
        stop_unread: Default::default(),
        stop_began: Default::default(),
        time_origin: p.time_origin,
        run_entry: None,
    };
    let job = Job { action: p.action, event: &read.event, incident_key: &d.incident_key, previous: None, event_time: p.event_time };
    finish(log, &d.deadline, true, &job, &d.key, read.provider.act(&ctx, &job))
}

/// What [`Local::catch_up`] leaves to do. (One per invocation, moved once: its size does not
/// matter.)
#[allow(clippy::large_enum_variant)]
enum CaughtUp {
    /// Nothing to send (an identical repeat, a superseded event), with the reason.
    Skip(String),
    /// Deliver, holding the incident (`None`: no ledger, or it stayed busy), with its record as
    /// the provider should see it, queueing every request when `only` says why;
    /// `needs_settings`: what it queues behind waits for a fix of the settings
    /// ([`flush::Report::needs_settings`]: credentials refused, a CA, a proxy, a lookup refused
    /// for good), so the event, spooled, exits 78.
    Deliver { hold: Option<Box<dyn state::Hold>>, record: Option<Incident>, only: Option<String>, needs_settings: bool, client: Client },
}

/// The ledger and the spool of one invocation, and what it decided.
struct Local<'a, P: Provider> {
    read: &'a Read<P>,
    d: &'a Decided,
    log: &'a Logger,
    /// `None` when it cannot be used: the page still goes out, without dedup.
    store: Option<Box<dyn Store>>,
    spool: Option<Spool>,
    /// The key hash of this incident in spool entry names.
    own_hash: String,
    /// Entries of this incident queued when the invocation started.
    own_spooled: usize,
    /// Whether other incidents have entries queued.
    others_spooled: bool,
}

impl<'a, P: Provider> Local<'a, P> {
    /// Open the ledger and the spool and list what the spool holds. A broken store or spool is
    /// logged; the invocation goes on without it.
    fn open(read: &'a Read<P>, d: &'a Decided, log: &'a Logger) -> Self {
        let store = open_store::<P>(&read.common, &d.deadline, log);
        let spool = match Spool::open(P::NAME, read.common.spool_dir.as_deref()) {
            Ok((spool, notice)) => {
                if let Some(n) = notice {
                    log.warn(n);
                }
                Some(spool)
            }
            Err(e) => {
                log.error(format!("spool unavailable ({e:#}); a request not delivered in time will be printed to stderr"));
                None
            }
        };
        let listing = spool.as_ref().and_then(|s| match s.list() {
            Ok(l) => Some(l),
            Err(e) => {
                log.error(format!("{e:#}"));
                None
            }
        });
        if let Some(l) = &listing {
            for line in &l.passed_over {
                log.warn(line);
            }
        }
        let own_hash = format!("{:016x}", spool::key_hash(&d.key));
        let own_spooled = listing.as_ref().map_or(0, |l| l.names.iter().filter(|n| spool::key_hash_of_name(n) == own_hash).count());
        let others_spooled = listing.as_ref().is_some_and(|l| l.names.len() > own_spooled);
        Local { read, d, log, store, spool, own_hash, own_spooled, others_spooled }
    }

    /// The ledger; `None` when it cannot be used: it could not be opened, or it failed before
    /// it answered anything, for a reason that lasts ([`Store::unusable`]: the error of the
    /// call that found it said why, once). Then the invocation goes on as without a store,
    /// asking it nothing more.
    fn store(&self) -> Option<&dyn Store> {
        self.store.as_deref().filter(|s| !s.unusable())
    }

    fn flusher(&self) -> flush::Flusher<'_, P> {
        flush::Flusher::new(self.spool.as_ref(), self.store(), &self.read.operator.section, &self.read.common, self.log)
    }

    /// The client; when `ca_file` cannot be loaded, one that sends nothing
    /// ([`Client::or_unusable`]): each request is then spooled as this machine's configuration
    /// error (exit 78), kept for the flush after the fix, and other incidents' entries stay.
    fn client(&self) -> Client {
        Client::or_unusable(self.read.common.ca_file.as_deref())
    }

    /// Phase 3, the storm path: an identical repeat or a superseded event costs one read, and
    /// is skipped (`true`; older spooled requests of other incidents still get their share).
    /// Not while this incident has spooled requests (they are the tail of its log: decided
    /// after them), nor for a recovery that meets a first delivery in progress.
    fn fast_path(&self) -> bool {
        let Some(p) = &self.d.proposal else { return false };
        let (record, busy, known) = read_record_and_busy(self.store(), &self.d.key, self.log);
        let verdict = decide::<P>(record.as_ref(), known, p, self.d.now);
        let (Verdict::Skip(why) | Verdict::Superseded(why)) = &verdict else { return false };
        if self.own_spooled > 0 {
            return false;
        }
        // A skip is final here only when nobody is delivering for the incident (a resolve in
        // flight makes a repeated failure new again; a trigger in flight makes a repeated
        // resolve needed) and it is no later than the record (else its time is noted under
        // the hold). Nor when a request is noted in flight: one a holder that died left (its
        // fate unknown: the service may be in its state, not the record's) is taken under the
        // hold and goes first. A superseded event stays superseded whatever is in flight.
        if matches!(verdict, Verdict::Skip(_))
            && (state::skip_moves_time(record.as_ref(), p)
                || record.as_ref().is_some_and(|r| !r.inflight.is_empty())
                || busy.unwrap_or_else(|| delivery_in_progress(self.store(), &self.d.key)))
        {
            return false;
        }
        self.log.info(format!("skipped {}: {why}", self.d.key));
        if self.others_spooled {
            self.flusher().others(&self.client(), &self.d.deadline.share(SHARE_BEFORE_DELIVERY), &self.own_hash);
        }
        true
    }

    /// Phase 4: older requests of other incidents, within a share of the deadline: every
    /// invocation is a chance to deliver them.
    fn flush_others(&self) {
        if self.others_spooled {
            self.flusher().others(&self.client(), &self.d.deadline.share(SHARE_BEFORE_DELIVERY), &self.own_hash);
        }
    }

    /// Phase 5: the incident's hold (waiting for another invocation delivering for it, bounded
    /// by the deadline; a resolve or acknowledge asks a long delivery to stop first), then this
    /// incident's own spooled requests, and the ledger's verdict on what the incident's log
    /// will be once they are delivered (a repeat of a spooled trigger is not queued twice).
    ///
    /// With a `ca_file` that cannot be loaded, an event found a repeat of a request still
    /// spooled is no success: it ends as the configuration error it is (exit 78), the
    /// spooled request kept for the flush after the fix.
    fn catch_up(&self, p: &Proposal) -> Result<CaughtUp> {
        let client = self.client();
        let unusable = client.unusable().map(str::to_string);
        match (self.catch_up_with(p, client)?, unusable) {
            (CaughtUp::Skip(why), Some(broken)) => {
                self.log.info(format!("skipped {}: {why}", self.d.key));
                Err(Code::Config.msg(format!(
                    "{} cannot be sent: {broken}; its spooled requests are kept for the next invocation or --flush",
                    self.d.key
                )))
            }
            (caught_up, _) => Ok(caught_up),
        }
    }

    /// [`Local::catch_up`] with `client`.
    fn catch_up_with(&self, p: &Proposal, client: Client) -> Result<CaughtUp> {
        let (key, now) = (&self.d.key, self.d.now);
        let (hold, busy) = take_hold(self.store(), key, p, &self.d.deadline, self.log);
        let mut only = busy.then(|| "another invocation is still delivering for this incident; queued behind it".to_string());
        let mut needs_settings = false;
        let (mut record, mut known) = read_record(self.store(), key, self.log);
        // Requests a holder that died left in flight are this incident's oldest spooled ones
        // now, of unknown fate: looked up before they are sent again.
        let adopted = if hold.is_some() { self.adopt_inflight(record.as_ref()) } else { 0 };
        if adopted > 0 {
            (record, known) = read_record(self.store(), key, self.log);
        }
        // Holding the incident, the spool is listed again: what was queued for it since this
        // invocation listed it at the start is the tail of its log too, and goes first (a
        // request of unknown fate that a `--flush` took from the ledger's note while this
        // invocation was delivering other incidents' requests, and could not deliver: decided
        // from the first listing and the record, note gone, a failure was skipped as "already
        // notified" over a recovery PagerDuty had applied).
        let own_spooled = match (&hold, &self.spool) {
            (Some(_), Some(spool)) => spool.queued_for(key).map_or(self.own_spooled + adopted, |names| names.len()),
            _ => self.own_spooled,
        };
        if hold.is_some() && own_spooled == 0 {
            match decide::<P>(record.as_ref(), known, p, now) {
                Verdict::Send => {}
                Verdict::Skip(why) => {
                    self.note_skipped(p, record.as_ref());
                    return Ok(CaughtUp::Skip(why));
                }
                Verdict::Superseded(why) => return Ok(CaughtUp::Skip(why)),
            }
        }
        if own_spooled > 0 && only.is_none() {
            // A resolve or acknowledge supersedes a run of an earlier event still spooled (a
            // Twilio sequential run): it is not carried on first.
            let stop =
                (p.action != Action::Trigger).then_some(Stop { action: p.action, event_time: p.event_time, time_origin: p.time_origin });
            let (left, flushed, refused) = self.flusher().stopping(stop).incident(&client, &self.d.deadline, key, hold.is_some());
            (record, known) = read_record(self.store(), key, self.log);
            // No store to hold what the flush delivered (Redis down): the flush's own record
            // of it, so that a recovery finds the war room its spooled trigger just opened.
            if record.is_none() {
                record = flushed;
            }
            if left > 0 {
                let tail = self.spool.as_ref().map(|s| spooled_tail(s, key)).unwrap_or_default();
                // The provider sees the incident as it will be (open, if a trigger is spooled).
                record = tail.iter().fold(record, |rec, e| Some(state::apply(rec, key, &proposal_of(e), e.created, &Map::new())));
                only = Some(format!("{left} older request(s) for this incident are still spooled"));
                // Behind a request that only a fix of the settings lets go out (the flush's
                // line names it): kept, but waiting does not bring it out.
                needs_settings = refused;
            }
            match decide::<P>(record.as_ref(), known, p, now) {
                Verdict::Send => {}
                // Later than every spooled request: it cannot be noted in the record before
                // they are delivered (it would supersede them), so it queues behind them and
                // is decided at its turn.
                Verdict::Skip(_) if left > 0 && state::skip_moves_time(record.as_ref(), p) => {}
                Verdict::Skip(why) | Verdict::Superseded(why) if left > 0 => {
                    return Ok(CaughtUp::Skip(format!("{why} (counting the {left} request(s) still spooled for it)")));
                }
                Verdict::Skip(why) => {
                    if hold.is_some() {
                        self.note_skipped(p, record.as_ref());
                    }
                    return Ok(CaughtUp::Skip(why));
                }
                Verdict::Superseded(why) => return Ok(CaughtUp::Skip(why)),
            }
        }
        Ok(CaughtUp::Deliver { hold, record, only, needs_settings, client })
    }

    /// Move the requests a dead holder left in flight ([`state::take_inflight`]) to the spool as
    /// requests of unknown fate; how many. Call it holding the incident.
    fn adopt_inflight(&self, record: Option<&Incident>) -> usize {
        let is_run = |e: &spool::Entry| entry_is_run(&self.read.provider, e);
        adopt_inflight(self.store(), self.spool.as_ref(), &self.d.key, record, &self.read.provider.secrets(), &is_run, false, self.log)
    }

    /// Note a skip later than the record under the hold ([`state::note_skipped`]); a failure
    /// is logged (the skip stands).
    fn note_skipped(&self, p: &Proposal, record: Option<&Incident>) {
        if let Some(store) = self.store()
            && state::skip_moves_time(record, p)
            && let Err(e) = state::note_skipped(store, &self.d.key, p, self.d.now, P::NO_RECORD)
        {
            self.log.warn(format!("cannot note the event time of {} in {}: {e:#}", self.d.key, store.describe()));
        }
    }

    /// Phase 6: the provider delivers (or queues, when `only` says why); what the service
    /// accepted is recorded; the hold is released; the exit code. Queued behind a request that
    /// waits for a fix of the settings (`needs_settings`), the event exits 78 when it is
    /// spooled: waiting (75) does not bring it out, the fix does.
    fn deliver(
        &self,
        p: &Proposal,
        record: Option<Incident>,
        (only, needs_settings): (Option<String>, bool),
        client: &Client,
        hold: Option<Box<dyn state::Hold>>,
    ) -> Result<Code> {
        let (read, key, log) = (self.read, &self.d.key, self.log);
        let queue = self.spool.as_ref().map(|spool| Queue {
            spool,
            template: spool::Entry {
                handler: P::NAME.to_string(),
                incident_key: key.clone(),
                action: p.action,
                severity: p.severity.clone(),
                event_time: p.event_time,
                event_seq: p.event_seq,
                time_origin: p.time_origin,
                token: p.token.clone(),
                created: self.d.now,
                overrides: read.overrides.clone(),
                refs: Map::new(),
                payload: Value::Null,
                fate: Fate::NotSent,
                noted_in_flight: false,
                custom: p.custom,
                attempts: 0,
                failure: None,
                progress: None,
            },
            private: holds_secret(&read.overrides, &read.provider.secrets()),
            only,
            turns_over: turns_over(record.as_ref(), p.action),
            kept_unknown: Default::default(),
            kept: Default::default(),
            noted_ahead: Default::default(),
            began: std::time::SystemTime::now(),
        });
        let ctx = Ctx {
            provider: &read.provider,
            client,
            deadline: self.d.deadline,
            log,
            dry_run: false,
            store: self.store(),
            incident_key: key,
            queue,
            token: Some(&p.token),
            stop_unread: Default::default(),
            stop_began: Default::default(),
            time_origin: p.time_origin,
            run_entry: None,
        };
        let job = Job {
            action: p.action,
            event: &read.event,
            incident_key: &self.d.incident_key,
            previous: record.as_ref(),
            event_time: p.event_time,
        };
        let outcome = read.provider.act(&ctx, &job);
        match (&outcome, self.store()) {
            (Outcome::Delivered(done), Some(store)) => {
                record_delivered::<P>(store, key, p, &done.refs, "the outcome", &self.d.deadline, log)
            }
            (Outcome::Delivered(_), None) if p.action == Action::Resolve => resolved_without_ledger::<P>(&read.common, key, log),
            // Alive and done: what it noted in flight is spooled or refused, not orphaned. What
            // it spooled of unknown fate stays noted: the service may be in that request's
            // state, and a host without this spool must not decide from the last recorded
            // action alone (a recovery skipped as "already resolved" while the failure this
            // spool holds opened the incident again). Whoever holds the incident next takes
            // the note and looks the request up, or sends it again, before its own event.
            (_, Some(store)) if !ctx.dry_run => {
                let kept = ctx.queue.as_ref().map(|q| q.kept_unknown.take()).unwrap_or_default();
                if let Err(e) = state::leave_inflight(store, key, &p.token, &kept) {
                    log.warn(format!("cannot clear the in-flight notes of {key}: {e:#}"));
                }
            }
            _ => {}
        }
        // Not sendable as configured (a `ca_file` that cannot be loaded, a request the settings
        // cannot build) and nothing spooled (no spool, or a full disk): printed too.
        if let Outcome::Broken(_) = &outcome
            && ctx.kept() == 0
        {
            print_undelivered(log, &read.event, read.raw.as_deref());
        }
        if let Outcome::Retry(_) = &outcome {
            print_undelivered(log, &read.event, read.raw.as_deref());
            if p.action == Action::Resolve
                && hold.is_some()
                && let Some(spool) = &self.spool
            {
                fail_superseded_by_unkept(spool, key, p, log);
            }
        }
        drop(hold);
        let waits_for_settings = needs_settings && matches!(outcome, Outcome::Spooled(_));
        match finish(log, &self.d.deadline, false, &job, key, outcome) {
            Err(failure) if waits_for_settings => Err(Code::Config.msg(format!(
                "{failure}; it waits behind a request that only a fix of the settings lets go out (fix the settings named above)"
            ))),
            done => done,
        }
    }
}

/// Record what the service accepted for `key` (`p`, with the provider's `refs`); `what` names
/// it in the log (`the outcome`). When the store lost its connection since the incident's hold
/// was taken (Redis restarted), it connects again once, while `deadline` has time left, and
/// the write is tried again: unrecorded, the next identical event would page again. The
/// compare-and-set decides on what the store holds now (another host may have written
/// meanwhile). When the store refuses the write, a recovery's record is
/// forgotten instead: an open record left behind would make the next failure within refresh
/// pass for a repeat and be skipped while the service has the incident resolved. Likewise, a
/// failure whose write is refused over the record of the incident's last recovery forgets that
/// record, which would make the next recovery pass for a repeat while the service has the
/// incident open. A full Redis
/// (`maxmemory`, `noeviction`) refuses every write but a deletion, which frees memory. Without
/// the record a late event of the incident is no longer ordered against this recovery (a page
/// too many at worst). When even that fails, the error line says what to run once the store
/// works again ([`unrecorded_note`]).
fn record_delivered<P: Provider>(
    store: &dyn Store,
    key: &str,
    p: &Proposal,
    refs: &Map<String, Value>,
    what: &str,
    deadline: &Deadline,
    log: &Logger,
) {
    // What the store did on the way is logged (a planted symlink or FIFO under the record's
    // name, renamed aside by this write): taken here, or it would be lost.
    let record = || {
        let recorded = state::record(store, key, p, crate::clock::now_unix(), refs, P::REPEATED_TRIGGER);
        for n in store.take_notices() {
            log.warn(n);
        }
        recorded
    };
    let Err(mut e) = record() else { return };
    if !deadline.remaining().is_zero() {
        match store.reconnect() {
            Ok(false) => {}
            Ok(true) => match record() {
                Ok(()) => {
                    log.warn(format!("{e:#}; connected again and recorded {what} for {key}"));
                    return;
                }
                Err(again) => e = again,
            },
            Err(reconnect) => e = anyhow::anyhow!("{e:#}; {reconnect:#}"),
        }
    }
    let unrecorded = format!("cannot record {what} for {key} in the state store {}: {e:#}", store.describe());
    // A failure over the record of the incident's last recovery: left, that record says
    // "resolved", and the recovery to come would be skipped as a repeat while the service has
    // the incident open again.
    let closed = p.action == Action::Trigger && matches!(state::get(store, key), Ok(Some(r)) if !r.open);
    if (p.action == Action::Resolve || closed) && store.delete(key).is_ok() {
        let so = if closed { "it said resolved; so that the recovery goes out" } else { "so that a new failure pages" };
        log.warn(format!("{unrecorded}; forgot its record instead ({so}; a late event of it is no longer ordered)"));
        return;
    }
    log.error(format!("{unrecorded}{}", unrecorded_note(P::NAME, key, p.action, closed)));
}

/// A recovery of `key` delivered without the ledger (it could not be opened: a state directory
/// this user cannot write or that is refused, Redis unreachable) left whatever the ledger says
/// of the incident: when that is "open", a new failure within refresh would pass for a repeat
/// and be skipped once the ledger works again. The error line names the `--forget` that
/// prevents it ([`unrecorded_note`]). A file store that can still be read (a read-only disk, a
/// mode changed, a symlink refused) is asked first: no line when its record is absent or closed.
fn resolved_without_ledger<P: Provider>(common: &Common, key: &str, log: &Logger) {
    if common.state_store.is_none()
        && let Ok(record) = state::get(&FileStore::find(P::NAME, common.state_dir.as_deref()), key)
        && !record.is_some_and(|r| r.open)
    {
        return;
    }
    log.error(format!("resolved {key} without the ledger{}", unrecorded_note(P::NAME, key, Action::Resolve, false)));
}

/// What a delivered `action` left unrecorded in the ledger leaves behind, for the error line:
/// after a recovery the ledger may still say `key` is open, so that the next failure within
/// refresh passes for a repeat and is skipped; after a failure over a `closed` record (the
/// incident's last recovery), the ledger may still say it is resolved, so that its recovery is
/// skipped. The note names the `--forget` of `handler` that fixes it. Empty otherwise (an
/// unrecorded trigger at worst pages again).
fn unrecorded_note(handler: &str, key: &str, action: Action, closed: bool) -> String {
    let (says, skipped) = match action {
        Action::Resolve => ("open", "a new failure within refresh"),
        Action::Trigger if closed => ("resolved", "its recovery"),
        Action::Trigger | Action::Acknowledge => return String::new(),
    };
    format!(
        "; the ledger may still say {key} is {says}, so that {skipped} would be skipped as a repeat: \
         once the store works again, run `handler-{handler} --forget {}`",
        shell_word(key)
    )
}

/// `s` as one word for a POSIX shell, for a command a log line tells the operator to run: as
/// it is when it holds only characters no shell interprets, else in single quotes (a key
/// comes from the monitored host: `$(…)` in an entity name must not run when pasted).
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._/@:,+=-".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Seconds a repeated trigger stays suppressed: the check's or the settings' `refresh`, less
/// half a check interval (checks run every `interval`, so the event that is due at `refresh`
/// arrives a little early or late; the slack keeps it from being pushed a whole period).
fn refresh_secs(event: &Event, common: &Common) -> u64 {
    let refresh = filter::refresh_for(event, common).as_secs();
    let slack = event.interval.unwrap_or(0) / 2;
    refresh.saturating_sub(slack.min(refresh / 2))
}

/// Move the requests that a holder that died left in flight for `key`, or that a holder on
/// another host spooled with their fate unknown ([`state::leave_inflight`]), to `spool` as
/// requests of unknown fate (the flush looks them up before sending them again); how many
/// the spool holds of them now (moved, or spooled here already).
/// Call it holding the incident's hold. Without a spool they are dropped from the record,
/// logged: the event at hand still goes out. `is_run`: whether a noted request is a run of
/// the provider's own ([`entry_is_run`]), which a spooled entry of its action carries on.
/// `keep`: the notes stay once their requests are in the spool (a `--flush` that lets go of
/// the incident before it delivers them; the flush removes them as it settles the requests),
/// else each is removed once its request is.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adopt_inflight(
    store: Option<&dyn Store>,
    spool: Option<&Spool>,
    key: &str,
    record: Option<&Incident>,
    secrets: &[String],
    is_run: &dyn Fn(&spool::Entry) -> bool,
    keep: bool,
    log: &Logger,
) -> usize {
    let Some(store) = store else { return 0 };
    if record.is_none_or(|r| r.inflight.is_empty()) {
        return 0;
    }
    let Some(spool) = spool else {
        if let Err(e) = state::take_inflight(store, key) {
            log.warn(format!("cannot take the requests left in flight for {key}: {e:#}"));
        }
        log.warn(format!("{key}: a request was left in flight and there is no spool to look it up from"));
        return 0;
    };
    // Read again under the hold: the caller's copy may be from before it.
    let noted = match state::get(store, key) {
        Ok(record) => record.map(|r| r.inflight).unwrap_or_default(),
        Err(e) => {
            log.warn(format!("cannot read the requests left in flight for {key}: {e:#}"));
            return 0;
        }
    };
    // A holder killed after it spooled its request (a Twilio sequential run), before it
    // cleared the note, left both: the queued copy is the one that goes on. Spooled again, a
    // run whose first copy ended with nobody answering (which records nothing) called everyone
    // again from the top. A run is carried on by any entry of its action (a Slack war room by
    // its steps spooled after the create); a single request only by its own copy: a broadcast's
    // call to the next person, noted as it went out and killed on its way, was taken for the
    // spooled call to the person before it (the same action) and dropped: that person was never
    // called.
    let queued = spooled_tail(spool, key);
    let carried = |note: &spool::Entry| queued.iter().any(|e| e.token == note.token && (e.payload == note.payload || is_run(note)));
    // Each note is removed only once its request is in the spool: a kill, or a full disk, in
    // between leaves the note for the next holder, never neither (the queued copy is then
    // recognised by its token, above).
    let settled = |note: &spool::Entry| {
        if keep {
            return;
        }
        if let Err(e) = state::clear_inflight(store, key, std::slice::from_ref(note)) {
            log.warn(format!("cannot clear the in-flight note of {key} (spooled; its token keeps it from being spooled twice): {e:#}"));
        }
    };
    let mut moved = 0;
    for note in noted {
        if carried(&note) {
            log.info(format!("{key}: a {} request noted in flight is already spooled; that entry carries it on", note.action.name()));
            // Spooled here after this invocation listed the spool (by the holder it waited
            // for): counted, so that it is delivered, or looked up, before the event at hand.
            moved += 1;
            settled(&note);
            continue;
        }
        let mut entry = note.clone();
        entry.fate = Fate::Unknown;
        let private = holds_secret(&entry.overrides, secrets);
        // Queued where it was noted, when it went out: ahead of what queued behind that
        // delivery while it was in flight (a failure queued behind a recovery that was then
        // killed: the recovery, sent again first, leaves the failure to page).
        let at = (std::time::UNIX_EPOCH + std::time::Duration::from_secs(entry.created)).min(std::time::SystemTime::now());
        match spool.push_at(&entry, private, at) {
            Ok(name) => {
                moved += 1;
                log.warn(format!(
                    "{key}: a {} request was in flight when its handler ended; spooled as {name} (its fate is unknown: looked up where the service allows, else sent again, before what follows)",
                    entry.action.name()
                ));
                settled(&note);
            }
            Err(e) => {
                log.error(format!("{key}: a request left in flight cannot be spooled ({e:#}); left noted, and the event at hand goes on"))
            }
        }
    }
    moved
}

/// Whether `entry` is a run of `provider`'s own ([`Provider::is_run`]); one whose payload this
/// version cannot read counts as one (its action's spooled entries carry it on).
pub(crate) fn entry_is_run<P: Provider>(provider: &P, entry: &spool::Entry) -> bool {
    serde_json::from_value::<P::Payload>(entry.payload.clone()).map_or(true, |p| provider.is_run(&p))
}

/// The entries still spooled for `key`, oldest first (unreadable ones, and another incident's
/// whose key shares the hash in their names, left out).
fn spooled_tail(spool: &Spool, key: &str) -> Vec<spool::Entry> {
    spool
        .queued_for(key)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| spool.read(n).ok().flatten())
        .filter(|e| e.incident_key == key)
        .collect()
}

/// The ledger's view of a spooled entry.
fn proposal_of(e: &spool::Entry) -> Proposal {
    Proposal {
        action: e.action,
        severity: e.severity.clone(),
        event_time: e.event_time,
        time_origin: e.time_origin,
        event_seq: e.event_seq,
        refresh_secs: 0,
        token: e.token.clone(),
        only_open: false,
        spooled: Some(e.created),
        custom: e.custom,
    }
}

/// Whether delivering `action` turns over the state `record` holds: a failure of an incident
/// it holds closed, or a recovery of one it holds open. Only then can a kill between the
/// service's acceptance and the record make the incident's next event pass for a repeat of
/// the recorded state and be skipped (the record says resolved, the service has it open). An
/// incident with no record is not turned over: the next recovery is not skipped as a repeat
/// of nothing (PagerDuty sends it, Reactio looks the incident up by name; a Twilio call and
/// Slack's war room are noted in flight anyway), and an acknowledgement leaves it open.
fn turns_over(record: Option<&Incident>, action: Action) -> bool {
    let Some(rec) = record.filter(|r| r.last_action.is_some()) else { return false };
    match action {
        Action::Trigger => !rec.open,
        Action::Resolve => rec.open,
        Action::Acknowledge => false,
    }
}

/// [`state::decide`] with `P`'s rule for incidents without a record.
/// `known`: the ledger was read (a store, and the read succeeded). Without it, a resolve that
/// would close only an open incident ([`Proposal::only_open`]) is decided as a plain one.
fn decide<P: Provider>(record: Option<&Incident>, known: bool, p: &Proposal, now: u64) -> Verdict {
    if p.only_open && !known {
        return state::decide(record, &Proposal { only_open: false, ..p.clone() }, now, P::NO_RECORD);
    }
    state::decide(record, p, now, P::NO_RECORD)
}

/// Open the ledger: Redis when `state_store` names one, else the file store. `None` (logged
/// as an error) when it cannot be used: the page still goes out, without dedup.
fn open_store<P: Provider>(common: &Common, deadline: &Deadline, log: &Logger) -> Option<Box<dyn Store>> {
    try_open_store::<P>(common, deadline, log)
        .map_err(|e| {
            let without = match common.state_store {
                Some(_) => WITHOUT_SHARED_LEDGER,
                None => "delivering without dedup",
            };
            log.error(format!("{e:#}; {without}"));
        })
        .ok()
}

/// What an invocation whose shared store (Redis) cannot be used does, for its error line.
const WITHOUT_SHARED_LEDGER: &str = "delivering without the shared ledger (a duplicate page is better than none)";

/// [`open_store`], for a caller that decides what a failure means (`--list`, `--forget`,
/// `--explain`).
///
/// Errors: the store cannot be used: [`state::Misconfigured`] when a setting is the cause (a
/// URL, `ca_file`, a state directory that cannot be used), else Redis is not reachable.
fn try_open_store<P: Provider>(common: &Common, deadline: &Deadline, log: &Logger) -> anyhow::Result<Box<dyn Store>> {
    if let Some(url) = &common.state_store {
        let budget = state::redis::budget(deadline.remaining());
        let store = RedisStore::connect(url, P::NAME, common.ca_file.as_deref(), budget)?;
        return Ok(Box::new(match state::redis::lease_from_env() {
            Some(lease) => store.with_lease(lease),
            None => store,
        }));
    }
    match FileStore::open(P::NAME, common.state_dir.as_deref()) {
        Ok(opened) => {
            if let Some(n) = &opened.fallback_notice {
                log.warn(n);
            }
            // A record's lock held on purpose must not eat the delivery's time.
            Ok(Box::new(opened.store.with_lock_deadline(Instant::now() + common.timeout / 4)))
        }
        Err(e) => Err(anyhow::Error::new(state::Misconfigured(format!(
            "state store unavailable ({e:#}): set --state-dir or state_dir to a writable directory"
        )))),
    }
}

/// The record of `key`, `None` when there is none or the store failed (logged: deliver
/// without it rather than stay silent), and whether the ledger was read (false: no store, it
/// failed, or it noticed something wrong with the record). Notices the store gathered are
/// logged as warnings. A store found [`Store::unusable`] here is told of as one that cannot be
/// opened: why, and that the page goes out without it.
fn read_record(store: Option<&dyn Store>, key: &str, log: &Logger) -> (Option<Incident>, bool) {
    let (record, _, known) = read_record_and_busy(store, key, log);
    (record, known)
}

/// [`read_record`], with whether a delivery for `key` is in progress when the store told in the
/// same round trip ([`Store::get_and_busy`]; `None`: ask [`delivery_in_progress`] if it matters).
fn read_record_and_busy(store: Option<&dyn Store>, key: &str, log: &Logger) -> (Option<Incident>, Option<bool>, bool) {
    let Some(store) = store else { return (None, None, false) };
    let got = store.get_and_busy(key);
    // A record there but unusable (not JSON, another user's, not a file) says nothing either.
    let notices = store.take_notices();
    for n in &notices {
        log.warn(n);
    }
    match got {
        Ok((record, busy)) => (record.map(|v| Incident::from_value(key, Some(v))), busy, notices.is_empty()),
        Err(e) if store.unusable() => {
            log.error(format!("{e:#}; {WITHOUT_SHARED_LEDGER}"));
            (None, None, false)
        }
        Err(e) => {
            log.error(format!("state store {} failed ({e:#}); delivering without dedup", store.describe()));
            (None, None, false)
        }
    }
}

/// Whether another invocation is delivering for the incident right now (a first page being
/// sent, a resolve in flight, a Twilio run calling one person after another): then an event the
/// record alone would skip must not be skipped, but wait for that delivery (a resolve or
/// acknowledge asking it to stop first) and be decided again against what it recorded.
fn delivery_in_progress(store: Option<&dyn Store>, key: &str) -> bool {
    store.is_some_and(|store| matches!(store.busy(key), Ok(true)))
}

/// The share of the deadline older spooled requests of other incidents may take before this
/// invocation's own request: a quarter.
const SHARE_BEFORE_DELIVERY: u32 = 4;

/// How long an invocation waits for another one's hold on its incident: until three quarters
/// of its deadline, so that a quarter is left to queue behind it.
const HOLD_WAIT_SHARE: u32 = 4;

/// Take the incident's hold: `(hold, busy)`. `busy`: another invocation held it for the whole
/// wait, or the store failed during the wait, so this one queues behind it. A resolve or acknowledge that finds it held first asks
/// the holder to stop (a Twilio run calling one person after another).
fn take_hold(
    store: Option<&dyn Store>,
    key: &str,
    p: &Proposal,
    deadline: &Deadline,
    log: &Logger,
) -> (Option<Box<dyn state::Hold>>, bool) {
    let Some(store) = store else { return (None, false) };
    let failed = |e: anyhow::Error| {
        log.error(format!("cannot take the hold of {key} in {} ({e:#}); delivering without it", store.describe()));
        (None, false)
    };
    match store.hold(key, Instant::now()) {
        Ok(Some(h)) => return (Some(h), false),
        Ok(None) => {}
        Err(e) => return failed(e),
    }
    if p.action != Action::Trigger
        && let Err(e) = state::request_stop(store, key, Stop { action: p.action, event_time: p.event_time, time_origin: p.time_origin })
    {
        log.warn(format!("cannot ask the delivery in progress for {key} to stop: {e:#}"));
    }
    let wait = deadline.remaining().saturating_sub(deadline.remaining() / HOLD_WAIT_SHARE);
    log.info(format!("{key}: another invocation is delivering for this incident; waiting up to {} for it", http::fmt_ms(wait)));
    match store.hold(key, Instant::now() + wait) {
        Ok(Some(h)) => (Some(h), false),
        Ok(None) => (None, true),
        // The store failed while another invocation was delivering for the incident: sent
        // now, this event could overtake that delivery (a recovery reaching the service before
        // the trigger it follows, which is retrying: the incident stays open). It queues
        // behind it, as when the hold stays held (the flush sends it, with or without Redis).
        Err(e) => {
            log.error(format!("cannot wait for the hold of {key} in {} ({e:#}); queued behind the delivery in progress", store.describe()));
            (None, true)
        }
    }
}

/// Whether the event's overrides hold one of the provider's credentials (a Zabbix `SENDTO`
/// routing key): its spooled requests are then readable by their owner only.
fn holds_secret(overrides: &Map<String, Value>, secrets: &[String]) -> bool {
    let text = Value::Object(overrides.clone()).to_string();
    secrets.iter().any(|s| !s.is_empty() && text.contains(s.as_str()))
}

/// A recovery `p` of `key` that could be neither delivered nor spooled (printed instead) leaves
/// the incident's older spooled requests behind, and a flush would deliver them once the
/// service is back: a trigger would open at the service an incident whose problem is gone,
/// and nothing would resolve it. They move to `failed/` as superseded instead ([`Spool::fail`]:
/// a rename, where a full disk has no room for more), each logged. Requests for a later event
/// than `p` stay queued. Call it holding the incident's hold (nobody else flushes them).
fn fail_superseded_by_unkept(spool: &Spool, key: &str, p: &Proposal, log: &Logger) {
    for name in spool.queued_for(key).unwrap_or_default() {
        let Ok(Some(mut entry)) = spool.read(&name) else { continue };
        if entry.incident_key != key || !state::is_later(p.event_time, p.event_seq, entry.event_time, entry.event_seq) {
            continue;
        }
        let why =
            format!("superseded by this recovery (event of {}), which could not be spooled either", crate::clock::rfc3339(p.event_time));
        match spool.fail(&name, &mut entry, &why) {
            Ok(to) => log.warn(format!("spool: {} {key} not sent: {why}; moved to {}", entry.action.name(), to.display())),
            Err(e) => log.error(format!("spool: {} {key} stays queued although {why}: {e:#}", entry.action.name())),
        }
    }
}

/// Nowhere to keep it: the monitoring system's log is the last place the event survives.
/// An event read from stdin is printed as it came; one read from arguments or the environment
/// (`--from`) as what was read of it: the source's incident key, time, severity, link, routing
/// override (masked like every secret) besides the host, check, status and output.
fn print_undelivered(log: &Logger, event: &Event, raw: Option<&[u8]>) {
    let shown = match raw {
        // One line, whole: compact JSON (it parsed, so it is JSON).
        Some(bytes) => serde_json::from_slice::<Value>(bytes)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| String::from_utf8_lossy(bytes).trim().to_string()),
        None => {
            let mut shown = serde_json::json!({
                "format": event.format.name(), "entity": event.entity, "check": event.check, "status": event.status,
                "output": event.output,
            });
            if let Some(obj) = shown.as_object_mut() {
                let optional = [
                    ("namespace", event.namespace.clone().map(Value::from)),
                    ("timestamp", event.timestamp.map(Value::from)),
                    ("sequence", event.sequence.map(Value::from)),
                    ("incident_key", event.incident_key.clone().map(Value::from)),
                    ("severity", event.severity.clone().map(Value::from)),
                    ("zabbix_severity", event.zabbix_severity.and_then(|s| serde_json::to_value(s).ok())),
                    ("source_type", event.source_type.clone().map(Value::from)),
                    ("send_to", event.send_to.clone().map(Value::from)),
                    ("url", event.url.clone().map(Value::from)),
                    ("address", event.address.clone().map(Value::from)),
                    ("overrides", (!event.overrides.is_empty()).then(|| serde_json::json!(event.overrides))),
                ];
                obj.extend(optional.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))));
            }
            shown.to_string()
        }
    };
    // What the entity carries for a handler's credential is masked in the event itself (the
    // lines' masking covers the check's and the handler's own: `read`).
    let entity_credentials = event.entity_credentials();
    let shown = crate::secret::mask_all(&shown, &entity_credentials.iter().map(String::as_str).collect::<Vec<_>>());
    log.error(format!("undelivered event, not spooled: {shown}"));
}

/// The log line and exit code of an event's outcome. The incident is named by the key the
/// provider sends, and by the ledger's key `ledger_key` too when that differs (the event chose
/// where the page goes: `--list`, `--explain` and skips name it so).
fn finish(log: &Logger, deadline: &Deadline, dry_run: bool, job: &Job<'_>, ledger_key: &str, outcome: Outcome<Done>) -> Result<Code> {
    let took = http::fmt_ms(deadline.elapsed());
    let shown = if ledger_key == job.incident_key {
        job.incident_key.to_string()
    } else {
        format!("{} (ledger key {ledger_key})", job.incident_key)
    };
    let what = format!("{} {shown}", job.action.name());
    let code = outcome.code();
    match outcome {
        Outcome::Delivered(done) => {
            let verb = if dry_run { format!("would have {}", job.action.past()) } else { job.action.past().to_string() };
            let detail = if done.detail.is_empty() { String::new() } else { format!(" {}", done.detail) };
            log.info(format!("{verb} {shown}{detail} in {took}"));
            Ok(code)
        }
        Outcome::Skipped(why) => {
            log.info(format!("skipped {shown}: {why}"));
            Ok(code)
        }
        Outcome::Refused(why) => Err(code.msg(format!("{what} refused: {why}; not retried (fix the request or credentials)"))),
        Outcome::Broken(why) => Err(code.msg(format!("{what} cannot be sent: {why}"))),
        // The time spent, and the timeout it had: a retry that could not fit in what was left
        // gives up before the timeout runs out.
        Outcome::Spooled(why) | Outcome::Retry(crate::outcome::Retry { reason: why, .. }) => {
            Err(code.msg(format!("{what} not delivered ({took} of the {} timeout): {why}", crate::config::show_duration(deadline.total()))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn a_key_in_a_command_to_run_is_one_inert_shell_word() {
        assert_eq!(shell_word("web-01/check_disk"), "web-01/check_disk");
        assert_eq!(shell_word("13502-web-01@aae48d64"), "13502-web-01@aae48d64");
        assert_eq!(shell_word("web $(reboot)/x"), "'web $(reboot)/x'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
