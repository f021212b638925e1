//! The incident ledger: what pagerpipe remembers between invocations, and the rules that keep
//! it from ever disagreeing with the service for long (DESIGN.md "The incident ledger").
//!
//! Each invocation is a fresh process, so "is this incident open?", "when did we last page for
//! it?", "which event was applied last?" and "which Reactio incident / Twilio calls / Slack
//! channel belong to it?" live in a [`Store`], keyed by the incident key (default
//! `{entity}/{check}`, the Ruby handlers' key, so open incidents carry over). Two stores
//! implement the one trait: [`file::FileStore`] (one host, the default) and
//! [`redis::RedisStore`] (several hosts sharing one Redis).
//!
//! The invariants, and how they are kept:
//!
//! 1. **Event order**: the record keeps the event time of the last action applied
//!    ([`Incident::event_time`], and the source's own sequence number within that second,
//!    [`Incident::event_seq`]); [`decide`] supersedes an older event ([`is_later`]).
//! 2. **Nothing swallowed**: an invocation that finds the incident busy waits for the
//!    [`Store::hold`] within its own deadline, then queues behind it in the spool; it never
//!    exits 0 having sent nothing because someone else was busy. A resolve or acknowledge that
//!    meets a long delivery (Twilio calling one by one) first asks it to stop
//!    ([`request_stop`]).
//! 3. **Nothing silenced by a crash**: nothing is written before the service accepted the
//!    request. The hold is a lock its holder's death releases: a kernel `fcntl` lock (file store) or
//!    a Redis lease of a few seconds that a live holder renews.
//! 4. **Record what the service accepted** ([`apply`], durable, with the event time); an
//!    identical repeat costs one read ([`Store::get`]) and no write.
//! 5. **Recoveries go out**: a resolve or acknowledge with no record is the provider's call
//!    ([`NoRecord`]): PagerDuty sends it, Reactio looks the incident up, Twilio and Slack skip
//!    it with a reason (nobody was paged).

pub mod file;
pub mod locks;
pub mod redis;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::files::Durability;
use crate::filter::Action;

/// How a record is written by [`Store::update_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    /// Durable (survives a machine crash: fsync, or Redis' own persistence) or volatile.
    pub durability: Durability,
    /// When the store forgets the record.
    pub expire: Expiry,
}

/// When a record written by [`Store::update_with`] is forgotten. The file store removes
/// expired records when it next reads them; Redis expires the key itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Whenever the record already would be, or never if it had no expiry: a side note (a
    /// stop request, a request in flight, a skipped event's time) leaves a closed incident to
    /// be forgotten in time.
    Keep,
    /// Never: an open incident is remembered until it is resolved.
    Never,
    /// This long after the write: a closed incident ([`CLOSED_RECORD_TTL`]).
    After(Duration),
}

impl Write {
    /// Durable, kept for good.
    pub const DURABLE: Write = Write { durability: Durability::Durable, expire: Expiry::Never };
    /// Volatile (no fsync), keeping the record's expiry.
    pub const VOLATILE: Write = Write { durability: Durability::Volatile, expire: Expiry::Keep };
}

/// How far before its receipt a time from the monitored host's clock is believed by default,
/// in seconds: 60 s ([`ordering_time`], [`host_clock_lateness`]).
///
/// Enough for what lies between a check starting on the host and its handler starting here
/// (the check running, the transport, a pipeline backlog in a storm), so that events of one
/// check that the monitoring system hands over out of order, or late, are still applied in
/// their own order: a failure handed over after its own recovery must not reopen the incident.
/// A `check.executed` further back is taken as this far back: after a host's clock stepped
/// back, its events are ordered by receipt, and a page is superseded by the host's clock only
/// when it arrives within 60 s of the event applied last (a check re-run later pages), never
/// for as long as the clock is wrong.
pub const HOST_CLOCK_LATENESS_SECS: u64 = 60;

/// Environment variable that sets [`host_clock_lateness`] in seconds (default
/// [`HOST_CLOCK_LATENESS_SECS`]): larger for checks that run for minutes or hosts whose
/// clocks lag (their events are then ordered by receipt), and very large in tests that replay
/// a timeline of `check.executed` times from the past.
pub const HOST_CLOCK_LATENESS_ENV: &str = "PAGERPIPE_HOST_CLOCK_LATENESS";

/// How far before its receipt a time from the monitored host's clock is believed, in seconds:
/// [`HOST_CLOCK_LATENESS_ENV`] when it holds a number, else [`HOST_CLOCK_LATENESS_SECS`].
pub fn host_clock_lateness() -> u64 {
    std::env::var(HOST_CLOCK_LATENESS_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(HOST_CLOCK_LATENESS_SECS)
}

/// The time an event is ordered by in the ledger (Unix seconds), from its `timestamp`, whose
/// clock gave it (`source`), the time of receipt `now` (this machine's clock) and how far
/// before the receipt a host's time is believed (`lateness`, seconds: [`host_clock_lateness`]).
///
/// - No time, or not after 1970: the receipt.
/// - Later than the receipt (a clock far ahead, a forged `check.executed`): the receipt, so
///   that it cannot supersede every later event of the incident.
/// - From the monitored host's clock ([`TimeSource::Host`]) and more than `lateness` before
///   the receipt: that long before the receipt, so that a host cannot drop its own pages
///   with a clock in the past (DESIGN.md "Trust").
/// - This machine's clock as the event was read ([`TimeSource::Receipt`]): the receipt.
/// - Otherwise the time as given: the monitoring server's clock (Nagios `$TIMET$`, Mackerel)
///   is trusted to order events however late they arrive (a Zabbix or Nagios notification
///   retried after minutes must not undo a later recovery).
///
/// [`TimeSource::Host`]: crate::event::TimeSource::Host
/// [`TimeSource::Receipt`]: crate::event::TimeSource::Receipt
pub fn ordering_time(timestamp: Option<i64>, source: crate::event::TimeSource, now: u64, lateness: u64) -> u64 {
    let Some(t) = timestamp.and_then(|t| u64::try_from(t).ok()).filter(|t| *t > 0) else { return now };
    match source {
        crate::event::TimeSource::Monitoring => t.min(now),
        crate::event::TimeSource::Host => t.clamp(now.saturating_sub(lateness), now),
        crate::event::TimeSource::Receipt => now,
    }
}

/// How long a closed incident's record is kept: 7 days (long enough to supersede a late,
/// out-of-order event; short enough that a storm of one-off keys does not fill the store).
pub const CLOSED_RECORD_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A store failure that this machine's settings for it cause, so that trying again cannot
/// help: Redis refused the user or password of `state_store` (`WRONGPASS`, `NOAUTH`), its
/// database, or a command the user's ACL does not allow (`NOPERM`); a URL naming a read-only
/// replica (`READONLY`); a TLS certificate this machine refuses; a `state_store` URL or a
/// `ca_file` that cannot be used; a state directory that cannot be. The message says what to
/// fix. Found anywhere in an error chain by [`failure_code`].
#[derive(Debug)]
pub struct Misconfigured(pub String);

impl std::fmt::Display for Misconfigured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Misconfigured {}

/// The exit code for an operator command (`--list`, `--forget`) that failed with the store
/// error `e`: 78 ([`Code::Config`]) when its settings caused it ([`Misconfigured`]), else 75
/// ([`Code::TempFail`]: Redis unreachable or not answering; try again later).
///
/// [`Code::Config`]: crate::exit::Code::Config
/// [`Code::TempFail`]: crate::exit::Code::TempFail
pub fn failure_code(e: &anyhow::Error) -> crate::exit::Code {
    if e.chain().any(|cause| cause.is::<Misconfigured>()) { crate::exit::Code::Config } else { crate::exit::Code::TempFail }
}

/// An incident's hold: while it is alive no other invocation (on any host sharing the store)
/// delivers for the same incident. Dropping it releases the hold; so does the holder's death
/// (the kernel drops an `fcntl` lock; a Redis lease expires within seconds).
pub trait Hold {}

/// Storage contract: one JSON record per key, an atomic read-modify-write, and a per-key hold.
///
/// Keys are incident keys (`web-01/check_disk`, Zabbix `123-web-01`) or provider records such
/// as Twilio's call caps (`recipients:calls`); a store namespaces them per handler.
pub trait Store {
    /// Where the records live, for log lines: `/var/lib/pagerpipe/pagerduty` or
    /// `redis://host:6379/0` (never a password).
    fn describe(&self) -> String;

    /// Read the record for `key` without waiting for anything (a snapshot; `None` when absent,
    /// expired, or unreadable — an unreadable one is reported by [`Store::take_notices`]).
    ///
    /// Errors: the store cannot be reached or read.
    fn get(&self, key: &str) -> anyhow::Result<Option<Value>>;

    /// [`Store::get`] of each of `keys`, in their order (`None` also for a record that cannot
    /// be read): a snapshot for a scan over many records (what the ledger holds open for other
    /// incidents), not a read that a later [`Store::update_deciding`] of one of them builds on.
    /// Default: `get` each in turn; Redis reads them with `MGET`, a few hundred keys per round
    /// trip.
    ///
    /// Errors: the store cannot be reached (Redis); the default passes over each record it
    /// cannot read and does not fail.
    fn get_many(&self, keys: &[String]) -> anyhow::Result<Vec<Option<Value>>> {
        Ok(keys.iter().map(|k| self.get(k).ok().flatten()).collect())
    }

    /// Atomically: read the record for `key`, call `f`, store the record it returns (`None`
    /// deletes; a value equal to the current one writes nothing) as durably as it says,
    /// forgotten as `expire` says. `f` chooses the durability from the record it is given: what
    /// a crash may lose depends on what the write replaces ([`record_durability`]). Concurrent
    /// callers, on any host sharing the store, never lose an update.
    ///
    /// Errors: the store cannot be reached, read or written.
    fn update_deciding(
        &self,
        key: &str,
        expire: Expiry,
        f: &mut dyn FnMut(Option<Value>) -> (Option<Value>, Durability),
    ) -> anyhow::Result<()>;

    /// [`Store::update_deciding`] with the durability fixed by `how`.
    ///
    /// Errors: as [`Store::update_deciding`].
    fn update_with(&self, key: &str, how: Write, f: &mut dyn FnMut(Option<Value>) -> Option<Value>) -> anyhow::Result<()> {
        self.update_deciding(key, how.expire, &mut |v| (f(v), how.durability))
    }

    /// Take `key`'s hold, waiting for another holder until `until`. `Ok(None)`: still held by
    /// someone else at `until`.
    ///
    /// Errors: the store cannot be reached, or the hold cannot be taken for another reason.
    fn hold(&self, key: &str, until: Instant) -> anyhow::Result<Option<Box<dyn Hold>>>;

    /// Whether another invocation holds `key`'s hold right now: a probe that takes nothing and
    /// waits for nothing (an event the record would skip asks it, so that a delivery in
    /// progress is not overlooked). Default: take the hold and let it go at once.
    ///
    /// Errors: as [`Store::hold`].
    fn busy(&self, key: &str) -> anyhow::Result<bool> {
        Ok(self.hold(key, Instant::now())?.is_none())
    }

    /// [`Store::get`] of `key`, and whether it is [`Store::busy`] when the store can tell in the
    /// same round trip (Redis: `GET` and `EXISTS` in one pipeline), else `None` (ask `busy`
    /// if it matters). The storm path (an identical repeat) needs both. Default: `get`, `None`.
    ///
    /// Errors: as [`Store::get`].
    fn get_and_busy(&self, key: &str) -> anyhow::Result<(Option<Value>, Option<bool>)> {
        Ok((self.get(key)?, None))
    }

    /// Connect again when the store lost its connection since it was opened (Redis restarted,
    /// a proxy or a firewall cut it), so that a write that failed with it may be tried once
    /// more: `Ok(true)` (also when the store's own renewal thread connected again since).
    /// `Ok(false)`: nothing to connect again (the store failed otherwise, or not at all; a file
    /// store). Default: `Ok(false)`.
    ///
    /// Errors: the new connection cannot be made (Redis is still unreachable).
    fn reconnect(&self) -> anyhow::Result<bool> {
        Ok(false)
    }

    /// Whether the store failed before it answered anything in this invocation, for a reason
    /// that lasts as long as the invocation (Redis refused the URL's user, password or
    /// database, or its certificate was refused; no answer within the budget): nothing was
    /// read from it and it is not asked again. The invocation then goes on as with a store
    /// that cannot be opened, and the error of the call that found it is the one line saying
    /// why (not every later call again). Default: `false`.
    fn unusable(&self) -> bool {
        false
    }

    /// Why this invocation's hold of `key` was lost, if it was: its lease lapsed (a shared
    /// store restarted or could not be reached for longer than a lease, or this process was
    /// stalled) and another invocation holds the incident now, so that this holder must not go
    /// on as if it alone delivered for the incident (a Twilio run places no further call). No
    /// round trip: the store's renewals found it. Default: `None` (a file store's lock cannot
    /// be lost while its holder lives).
    fn hold_lost(&self, _key: &str) -> Option<String> {
        None
    }

    /// The keys of every record, in no particular order (for `--list`).
    ///
    /// Errors: the store cannot be listed.
    fn keys(&self) -> anyhow::Result<Vec<String>>;

    /// Warnings gathered since the last call (a corrupt record moved aside …), for the log.
    fn take_notices(&self) -> Vec<String> {
        Vec::new()
    }

    /// Remove the record for `key` whatever it holds, as simply as the store can: where a
    /// write was refused (a full Redis refuses every write but a deletion). Default: an update
    /// to nothing.
    ///
    /// Errors: the store cannot be reached or refuses it.
    fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.update(key, &mut |_| None)
    }

    /// A durable [`Store::update_with`] that keeps the record.
    fn update(&self, key: &str, f: &mut dyn FnMut(Option<Value>) -> Option<Value>) -> anyhow::Result<()> {
        self.update_with(key, Write::DURABLE, f)
    }

    /// A volatile [`Store::update_with`] (no fsync) that keeps the record.
    fn update_volatile(&self, key: &str, f: &mut dyn FnMut(Option<Value>) -> Option<Value>) -> anyhow::Result<()> {
        self.update_with(key, Write::VOLATILE, f)
    }
}

/// A resolve or acknowledge asking a long delivery of the same incident (a Twilio run calling
/// one person after another) to stop: stored in the record by [`request_stop`], read by the
/// delivery between two calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    /// The action that asks.
    pub action: Action,
    /// Its event time, Unix seconds: it stops only deliveries of events up to this time.
    pub event_time: u64,
    /// Where `event_time` comes from: a stop asked by an event ordered by its receipt while
    /// the delivery runs stops it whatever the two hosts' clocks say ([`stop_requested`]).
    /// Absent for [`TimeOrigin::Event`], and in the records of earlier versions.
    #[serde(default, skip_serializing_if = "TimeOrigin::is_event")]
    pub time_origin: TimeOrigin,
}

/// What is remembered about one incident. Times are Unix seconds.
///
/// Records written by earlier versions (with `claim`/`claimed_at`) read fine: unknown fields
/// are ignored and missing ones take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Incident {
    /// The incident key (dedup key).
    pub key: String,
    /// True between a delivered trigger and a delivered resolve.
    pub open: bool,
    /// Status word (`warning`/`critical`/`unknown`) of the last trigger.
    pub severity: Option<String>,
    /// When the first trigger of this open period was delivered.
    pub first_notified: Option<u64>,
    /// When the last trigger was delivered.
    pub last_notified: Option<u64>,
    /// How many triggers were delivered in this open period.
    pub count: u64,
    /// When the incident was last resolved.
    pub resolved_at: Option<u64>,
    /// When the incident was acknowledged in this open period.
    pub acknowledged_at: Option<u64>,
    /// The event time of the last action applied (the event's own time, else its receipt).
    pub event_time: Option<u64>,
    /// The source's sequence number of that event ([`crate::event::Event::sequence`]: Nagios
    /// `$SERVICEEVENTID$`), which orders events of the same second ([`is_later`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<u64>,
    /// Where `event_time` comes from ([`applied_after`]).
    #[serde(skip_serializing_if = "TimeOrigin::is_event")]
    pub time_origin: TimeOrigin,
    /// The last action applied.
    pub last_action: Option<Action>,
    /// The invocation that applied it ([`Proposal::token`]): a spooled request of the same
    /// invocation is the rest of that action, not a repeat.
    pub token: Option<String>,
    /// A pending request to stop a long delivery ([`request_stop`]).
    pub stop: Option<Stop>,
    /// Provider references: Reactio `incident_id`, Twilio `call_sids`, Slack `channel`/`ts` …
    pub refs: Map<String, Value>,
    /// Requests being sent right now whose fate the next holder must settle should their
    /// sender die: one that must not be sent twice blindly (a Twilio call, which the provider
    /// can look up), and one that turns the incident over (a PagerDuty trigger of a resolved
    /// incident: killed after the service acted on it, the record would stay resolved), sent
    /// live or by a flush from the spool ([`crate::spool::Entry::noted_in_flight`]). Noted
    /// before they go out and removed once their fate is known or recorded
    /// ([`note_inflight`]). One still here when the incident is free again belonged to a
    /// holder that died mid-request: it is spooled as a request of unknown fate, looked up
    /// (where the service allows) or sent again before the incident's next event
    /// ([`take_inflight`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inflight: Vec<crate::spool::Entry>,
    /// What a long delivery has done so far, noted as it goes ([`note_progress`]): Twilio's
    /// sequential mode notes each call before and after it places it. One still here when the
    /// incident is free again belonged to a holder that died mid-run: the next holder's provider
    /// finds it in [`crate::pipeline::Job::previous`] and carries on from it (follows the call
    /// that may still ring, or stops it for a resolve) instead of starting again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// The service may not hold the incident open as this record does: a resolve or acknowledge
    /// of unknown fate, superseded by a later action of the open incident (its trigger, or an
    /// acknowledgement after it), may have reached it after that trigger (held up on its way
    /// past its deadline) ([`doubt_trigger`]). The next
    /// trigger goes out even within `refresh` (merged into the incident where it is open,
    /// opening it again where it is not); a trigger or resolve applied clears it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_doubt: bool,
}

/// A long delivery's notes of its progress ([`Incident::progress`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The invocation that wrote them ([`Proposal::token`]).
    pub token: String,
    /// The provider's own notes (Twilio: the calls placed so far, in order).
    pub notes: Value,
}

impl Incident {
    /// The record in `v` for `key`. A record that does not parse, or that names another key,
    /// reads as a new one: the file store shortens names over 180 bytes with a 64-bit hash
    /// (`file::file_name_for`), and a key crafted to share another's name must not read (or
    /// answer for) that incident's record. Its next write still replaces that record, so the
    /// other incident loses what it remembered (at worst its recovery is not sent by Slack or
    /// Twilio); a cryptographic hash would close that (see the notes).
    pub fn from_value(key: &str, v: Option<Value>) -> Incident {
        let mut inc = v
            .and_then(|v| serde_json::from_value::<Incident>(v).ok())
            .filter(|inc| inc.key.is_empty() || inc.key == key)
            .unwrap_or_default();
        inc.key = key.to_string();
        inc
    }

    /// As stored.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What a provider does with a resolve or acknowledge for an incident the ledger has no record
/// of (opened before a migration, on a host that does not share the store, before the state
/// was lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRecord {
    /// Send it anyway: the service accepts (and ignores) one for an unknown key (PagerDuty), or
    /// the provider looks the incident up itself (Reactio).
    Send,
    /// Skip it with this reason (Twilio, Slack: nobody was paged, so nobody is told).
    Skip(&'static str),
}

/// One action proposed for an incident: the input of [`decide`] and [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// What the filters decided.
    pub action: Action,
    /// Status word of the event (`warning`, `critical`, `unknown`, `ok`).
    pub severity: String,
    /// The event's own time (else its receipt), Unix seconds: [`ordering_time`].
    pub event_time: u64,
    /// Whether `event_time` is the event's own or one [`ordering_time`] put in its place.
    pub time_origin: TimeOrigin,
    /// The source's sequence number of the event, when it gives one
    /// ([`crate::event::Event::sequence`]): orders events of the same second.
    pub event_seq: Option<u64>,
    /// Repeated triggers of an open incident with the same severity are suppressed for this
    /// many seconds after the last one.
    pub refresh_secs: u64,
    /// Identifies the invocation that proposed it (and its spooled requests).
    pub token: String,
    /// A resolve for an incident the ledger knows open only, else skipped whatever the
    /// provider's [`NoRecord`] (Nagios DOWNTIMEEND in OK: the problem may have recovered during
    /// the downtime, but every service of a downtime sends one, paged or not). Set only when
    /// the ledger could be read: without it, the resolve is sent (a duplicate beats a page left
    /// open).
    pub only_open: bool,
    /// Decided for a spooled request at its flush rather than for an event as it arrives: it
    /// waited, so it is no longer the last event handled ([`applied_after`]). `Some(spooled)`:
    /// the Unix second it was spooled (the entry's `created`: the receipt of its event, or up
    /// to that invocation's deadline later), never before its event arrived; `None` for an
    /// event as it arrives.
    pub spooled: Option<u64>,
    /// A Nagios/Icinga 2 CUSTOM notification (someone chose to notify, from the web UI or
    /// the `SEND_CUSTOM_SVC_NOTIFICATION` external command) that the operator's
    /// `notification_types` maps to `trigger`: it is never suppressed as a repeat inside
    /// `refresh` ([`decide`]), since a person asked for this page now.
    pub custom: bool,
}

/// Where an event time ([`Proposal::event_time`], [`Incident::event_time`]) comes from. In a
/// record: `"time_origin": "receipt"`, absent for [`TimeOrigin::Event`] (and in the records of
/// earlier versions, whose times read as the events' own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeOrigin {
    /// The time the event gave (for a spooled request, the time it was spooled with).
    #[default]
    Event,
    /// The receipt, or the lateness bound before it ([`ordering_time`]): the event gave no
    /// time, one ahead of its receipt, or a monitored host's time further back than
    /// [`host_clock_lateness`]. It says when the event arrived, not when it happened: every
    /// event received later is ordered later anyway, so a failure's skip does not note it
    /// (a recovery's does: [`skip_moves_time`]), and of two receipts the one handled later is the later event
    /// ([`applied_after`]), whatever the clocks of the hosts that took them say.
    Receipt,
}

impl TimeOrigin {
    /// Whether it is [`TimeOrigin::Event`] (the default, not written in a record).
    pub fn is_event(&self) -> bool {
        *self == TimeOrigin::Event
    }
}

/// How far apart the clocks of hosts sharing a ledger may be, in seconds, for
/// [`applied_after`]: 10.
pub const RECEIPT_SKEW_SECS: u64 = 10;

/// Whether the event applied at (`time`, `seq`, `origin`) comes after `p`, which must then be
/// superseded: [`is_later`] of the two times, except between two receipts
/// ([`TimeOrigin::Receipt`]) and for a recovery after a receipt (below). Their times come from the clocks of the machines that received
/// them, and two hosts sharing the ledger (or one whose clock stepped back) may disagree by a
/// second or more: a recovery received a moment after the failure on a host whose clock is
/// behind would be superseded, and the incident left open. So, between two receipts:
///
/// - an event as it arrives is the later: it is handled after everything applied before it;
/// - a spooled resolve or acknowledge ([`Proposal::spooled`]: it waited behind another
///   delivery, or for the service) is superseded only by an event received more than
///   [`RECEIPT_SKEW_SECS`] after it: a page left open is the worse mistake;
/// - a spooled trigger goes by the times, as every other event: one spooled before a recovery
///   that was delivered meanwhile is stale.
///
/// A receipt applied before a resolve or acknowledge whose time the event gave (a host's
/// clock, believed up to [`host_clock_lateness`] before its receipt; a monitoring server's)
/// cannot say which came first either: the failure arrived then, but happened at some time
/// before. Such a recovery is superseded only by a receipt more than the lateness after its
/// time: a recovery left unsent leaves the incident open for good, while one applied too
/// early is undone by the next failure the check reports. A spooled one is superseded also by
/// a receipt more than [`RECEIPT_SKEW_SECS`] after it was spooled ([`Proposal::spooled`]): that failure arrived after the recovery had, so it is the later
/// (a recovery spooled on a host that could not reach the service must not close the
/// incident another host opened for a failure it received afterwards). A trigger goes by the
/// times.
pub fn applied_after(time: u64, seq: Option<u64>, origin: TimeOrigin, p: &Proposal) -> bool {
    let stops = matches!(p.action, Action::Resolve | Action::Acknowledge);
    match (origin, p.time_origin) {
        (TimeOrigin::Receipt, TimeOrigin::Receipt) => match (p.spooled.is_some(), stops) {
            (false, _) => false,
            (true, true) => time > p.event_time.saturating_add(RECEIPT_SKEW_SECS),
            (true, false) => is_later(time, seq, p.event_time, p.event_seq),
        },
        (TimeOrigin::Receipt, TimeOrigin::Event) if stops => {
            // A spooled one had arrived before a receipt more than the clocks' skew after it.
            let received_before = p.spooled.map_or(u64::MAX, |spooled| spooled.saturating_add(RECEIPT_SKEW_SECS));
            !may_follow(p.event_time, time, TimeOrigin::Receipt) || time > received_before
        }
        _ => is_later(time, seq, p.event_time, p.event_seq),
    }
}

/// Whether a resolve or acknowledge at `time` (a time the event gave) may have come after a
/// failure at `failure_time` whose time comes from `failure_origin`, though it is earlier:
/// the failure's time is its receipt ([`TimeOrigin::Receipt`]: when it arrived, not when it
/// happened) and `time` is not more than [`host_clock_lateness`] before it. Which came first
/// cannot be told then, and the recovery is not taken for the older event
/// ([`applied_after`], [`stop_requested`], a flush's stale runs).
pub fn may_follow(time: u64, failure_time: u64, failure_origin: TimeOrigin) -> bool {
    failure_origin == TimeOrigin::Receipt && time.saturating_add(host_clock_lateness()) >= failure_time
}

/// Why a resolve that may only close an open incident ([`Proposal::only_open`]) is skipped.
const NOTHING_OPEN: &str = "nothing is open for it in the ledger (this event resolves only an incident that was paged)";

/// The ledger's answer to a [`Proposal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it.
    Send,
    /// An identical repeat, or nothing to do: logged, exit 0, nothing sent.
    Skip(String),
    /// An event older than the last one applied: logged, exit 0, nothing sent.
    Superseded(String),
}

/// A new token for [`Proposal::token`]: `<pid>-<unix nanos>`, unique enough per host, and
/// the host name keeps hosts apart on a shared store.
pub fn new_token() -> String {
    format!("{}-{}-{}", crate::clock::host_name(), std::process::id(), crate::clock::now_unix_nanos())
}

/// Whether `record` holds an action of an event later than `event_time` (Unix seconds): for a
/// spooled recovery, a failure applied after its event (delivered on another host meanwhile),
/// whose incident is that failure's, not the one the recovery closes; or that failure's
/// recovery.
pub fn applied_later_event(record: Option<&Incident>, event_time: u64) -> bool {
    record.is_some_and(|r| r.last_action.is_some() && r.event_time.is_some_and(|t| t > event_time))
}

/// Whether an event at `time` with sequence number `seq` comes after one at `other_time` with
/// `other_seq`: a later second, or the same second and a larger sequence number when both have
/// one.
///
/// Event times have one-second resolution (Nagios `$TIMET$`), and a monitoring server runs the
/// notification commands of one service concurrently (Nagios 4's workers): a passive result
/// CRITICAL and then OK within one second starts the PROBLEM and the RECOVERY handler at once,
/// and either may reach the incident first. Nagios numbers every state change
/// (`$SERVICEEVENTID$`, `$HOSTEVENTID$`, one global counter), so within a second the number
/// says which came last. Without numbers, events of one second are applied in the order they
/// arrive (a trigger after a resolve of the same second is sent: a page left open is better
/// than one lost).
pub fn is_later(time: u64, seq: Option<u64>, other_time: u64, other_seq: Option<u64>) -> bool {
    time > other_time || (time == other_time && matches!((seq, other_seq), (Some(a), Some(b)) if a > b))
}

/// Decide what `p` does to the incident whose record is `record`, at `now` (Unix seconds).
///
/// - older than the last applied event ([`is_later`]) → [`Verdict::Superseded`] (a recorded
///   event time later than `now` counts as `now`);
/// - the rest of an action already applied (same [`Proposal::token`]) → send;
/// - trigger: skipped while the incident is open with the same severity and was notified less
///   than `refresh` ago (a `last_notified` in the future — a clock step — counts as now), unless
///   the record is [`Incident::in_doubt`] or the trigger is a [`Proposal::custom`]
///   notification; otherwise sent;
/// - acknowledge: skipped when the incident is closed, or already acknowledged in this open
///   period with no trigger delivered since; with no record, `no_record` decides;
/// - resolve: skipped when already resolved; with no record, `no_record` decides.
pub fn decide(record: Option<&Incident>, p: &Proposal, now: u64, no_record: NoRecord) -> Verdict {
    // A record that holds only a stop request is no record of the incident.
    // A delivery that died mid-run paged someone: a resolve or acknowledge goes to the provider,
    // which stops what is left of it (a call still ringing).
    let died_mid_run = record.is_some_and(|r| r.progress.is_some()) && p.action != Action::Trigger;
    let Some(rec) = record.filter(|r| r.last_action.is_some()) else {
        return match (p.action, no_record) {
            (Action::Trigger, _) => Verdict::Send,
            _ if died_mid_run => Verdict::Send,
            // A trigger a dead holder left in flight may reach the service yet (a flush adopts
            // it): not "nothing open".
            (Action::Resolve, _) if p.only_open && record.is_none_or(|r| r.inflight.is_empty()) => Verdict::Skip(NOTHING_OPEN.to_string()),
            (_, NoRecord::Send) => Verdict::Send,
            (_, NoRecord::Skip(why)) => Verdict::Skip(why.to_string()),
        };
    };
    if rec.token.is_some() && rec.token.as_deref() == Some(p.token.as_str()) && rec.last_action == Some(p.action) {
        return Verdict::Send;
    }
    // A recorded time in the future (a monitored host's clock far ahead, a record planted in
    // the shared directory) counts as now: it must not supersede every later event forever.
    if let Some(applied) =
        rec.event_time.map(|t| crate::clock::not_after(t, now)).filter(|t| applied_after(*t, rec.event_seq, rec.time_origin, p))
    {
        let last = rec.last_action.map_or("an action", Action::name);
        // Within one second the source's event ids decided: name them.
        let id = |seq: Option<u64>| match seq {
            Some(n) if applied == p.event_time => format!(", event id {n}"),
            _ => String::new(),
        };
        return Verdict::Superseded(format!(
            "superseded: this event is from {}{}, and {last} for a later event ({}{}) was already applied",
            crate::clock::rfc3339(p.event_time),
            id(p.event_seq),
            crate::clock::rfc3339(applied),
            id(rec.event_seq)
        ));
    }
    match p.action {
        Action::Acknowledge | Action::Resolve if died_mid_run => Verdict::Send,
        Action::Trigger => {
            let same = rec.open && rec.severity.as_deref() == Some(p.severity.as_str());
            // A time in the future (the clock stepped back after it was written) counts as now,
            // but only within one refresh: a record from further ahead would otherwise keep
            // suppressing pages until the clock catches up.
            let age = rec.last_notified.filter(|t| t.saturating_sub(now) < p.refresh_secs).map(|t| crate::clock::age(t, now));
            match age {
                Some(age) if same && age < p.refresh_secs && !rec.in_doubt && !p.custom => {
                    Verdict::Skip(format!("already notified {age}s ago (notification {}, refresh {}s)", rec.count, p.refresh_secs))
                }
                _ => Verdict::Send,
            }
        }
        Action::Acknowledge if !rec.open => Verdict::Skip(format!("{} is not open; nothing to acknowledge", rec.key)),
        // An acknowledgement covers the notifications before it: after a trigger delivered
        // since (a re-notification once `refresh` passed, a change of severity, after a Zabbix
        // unacknowledge), the next one goes out, to stop what that trigger started (a Twilio
        // run calling again).
        Action::Acknowledge if rec.acknowledged_at.is_some() && rec.last_action != Some(Action::Trigger) => {
            Verdict::Skip(format!("{} is already acknowledged", rec.key))
        }
        Action::Resolve if !rec.open && rec.resolved_at.is_some() => Verdict::Skip(format!("{} is already resolved", rec.key)),
        Action::Resolve if !rec.open && p.only_open => Verdict::Skip(NOTHING_OPEN.to_string()),
        Action::Resolve if !rec.open => match no_record {
            NoRecord::Send => Verdict::Send,
            NoRecord::Skip(why) => Verdict::Skip(why.to_string()),
        },
        Action::Acknowledge | Action::Resolve => Verdict::Send,
    }
}

/// The record after the service accepted `p` at `now`, with the provider's `refs` merged in.
///
/// An acceptance that arrives after a later event was applied (a long delivery that finished
/// after a resolve was recorded) changes nothing but the references: the record never goes back
/// in event time.
pub fn apply(record: Option<Incident>, key: &str, p: &Proposal, now: u64, refs: &Map<String, Value>) -> Incident {
    let mut inc = record.unwrap_or_else(|| Incident { key: key.to_string(), ..Incident::default() });
    // A recorded time in the future counts as now (see [`decide`]), so it is replaced, not kept.
    let recorded_time = inc.event_time;
    inc.event_time = inc.event_time.map(|t| crate::clock::not_after(t, now));
    // A time moved back to now is no longer the time its sequence number belongs to.
    if inc.event_time != recorded_time {
        inc.event_seq = None;
    }
    // The requests of this action that were noted in flight are accounted for now.
    inc.inflight.retain(|e| e.token != p.token);
    // Its own progress notes are done with; so is a dead run's, once a resolve or acknowledge
    // stopped it.
    inc.progress = inc.progress.take().filter(|pr| pr.token != p.token && p.action == Action::Trigger);
    if inc.event_time.is_some_and(|t| applied_after(t, inc.event_seq, inc.time_origin, p)) {
        inc.refs.extend(refs.clone());
        return inc;
    }
    let rest_of_same_action = inc.token.as_deref() == Some(p.token.as_str()) && inc.last_action == Some(p.action);
    // A trigger or resolve delivered now is what the service holds (an acknowledge of an
    // incident a late resolve closed there is not).
    if p.action != Action::Acknowledge {
        inc.in_doubt = false;
    }
    match p.action {
        Action::Trigger if rest_of_same_action => {}
        Action::Trigger => {
            if !inc.open {
                inc.first_notified = Some(now);
                inc.count = 0;
                // A new period after a resolve starts afresh; references remembered before
                // anything was applied (a war room opened by a page still spooled) are kept.
                if inc.last_action.is_some() {
                    inc.refs = Map::new();
                }
                inc.acknowledged_at = None;
            }
            inc.open = true;
            inc.severity = Some(p.severity.clone());
            inc.last_notified = Some(now);
            inc.count = inc.count.saturating_add(1);
        }
        Action::Acknowledge => {
            inc.acknowledged_at.get_or_insert(now);
        }
        Action::Resolve => {
            inc.open = false;
            inc.resolved_at = Some(now);
            inc.acknowledged_at = None;
        }
    }
    inc.event_seq = match inc.event_time {
        Some(t) if t == p.event_time => inc.event_seq.max(p.event_seq),
        _ => p.event_seq,
    };
    // Two receipts apply in the order handled, so `p` may be before the record's time here:
    // the record keeps the later time, which is a receipt either way.
    if inc.event_time.is_none_or(|t| t <= p.event_time) {
        inc.time_origin = p.time_origin;
    }
    inc.event_time = Some(inc.event_time.map_or(p.event_time, |t| t.max(p.event_time)));
    inc.last_action = Some(p.action);
    inc.token = Some(p.token.clone());
    if inc.stop.is_some_and(|s| s.event_time <= p.event_time) && p.action == Action::Trigger {
        inc.stop = None;
    }
    inc.refs.extend(refs.clone());
    inc
}

/// What a service does with a trigger repeated for an incident it has open, which is what a
/// record of a delivered trigger lost in a machine crash would cost ([`record`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatedTrigger {
    /// Merged into the open incident by its key, and a resolve for a key it does not know is
    /// accepted and ignored: PagerDuty's `dedup_key` (Events API v2, "Alert De-Duplication").
    /// A lost trigger record then costs one repeat that the service merges, never a page.
    Merged,
    /// Acted on again: a phone rung, a message posted, a second incident opened (Twilio,
    /// Slack, Reactio), and the record holds what a recovery needs (call SIDs, a message `ts`,
    /// an incident id).
    ActedOn,
}

/// How [`record`] writes `p` over `current` (the record as [`Store::update_with`] reads it,
/// under the record's lock).
///
/// Durable (fsync of the file and its directory) unless losing the write in a machine crash
/// can only make a later event go out again, for a service that merges repeats
/// ([`RepeatedTrigger::Merged`]): a trigger where the record has no incident (absent,
/// unreadable, or side notes only) or an open one of the same severity (a re-notification),
/// and an acknowledge of an open incident. A crash then leaves the record absent, empty (read
/// as absent) or as it was: each of those sends the next repeat, or acknowledge, again and
/// still sends the resolve. It also loses the lost event's time: an older event arriving
/// afterwards (a resolve delayed from before the lost trigger) is no longer superseded and
/// goes out; the next failure of the check, which finds the incident closed, opens it again. Always durable: a resolve (lost, the record would read open, and
/// the next failure would be taken for a repeat: silence), a trigger over a closed record
/// (lost, the record would read closed, and the resolve would be skipped as done: an incident
/// left open), and a change of severity (lost, the old severity's repeat would be skipped).
pub fn record_durability(current: Option<&Incident>, p: &Proposal, repeats: RepeatedTrigger) -> Durability {
    let current = current.filter(|c| c.last_action.is_some());
    let may_lose = match p.action {
        Action::Trigger => current.is_none_or(|c| c.open && c.severity.as_deref() == Some(p.severity.as_str())),
        Action::Acknowledge => current.is_some_and(|c| c.open),
        Action::Resolve => false,
    };
    match repeats {
        RepeatedTrigger::Merged if may_lose => Durability::Volatile,
        _ => Durability::Durable,
    }
}

/// Record that the service accepted `p` for `key` at `now` (see [`apply`]), as durably as
/// [`record_durability`] says of the record it replaces, for a service whose repeats are
/// `repeats`; a resolved incident's record is forgotten [`CLOSED_RECORD_TTL`] later. An
/// acknowledge of an incident that is not open notes only its event time, and only when there
/// is no record of the incident (there is nothing else to remember); that record is forgotten
/// as a closed one is.
///
/// The durability is decided from the record read under the lock of the write itself, not
/// from an earlier read ([`Store::update_deciding`]); an acknowledgement's expiry from the
/// record read just before (call it holding the incident: in the fallbacks that deliver
/// without the hold, an open record written in between would get a closed one's expiry, and
/// a resolve then goes out without it, as for any incident with no record).
///
/// Errors: as [`Store::update_deciding`].
pub fn record(
    store: &dyn Store,
    key: &str,
    p: &Proposal,
    now: u64,
    refs: &Map<String, Value>,
    repeats: RepeatedTrigger,
) -> anyhow::Result<()> {
    // An acknowledgement the service accepted for an incident with no record (PagerDuty sends
    // one, [`NoRecord::Send`]) notes its event time, as a skipped one does ([`note_skipped`]):
    // Nagios sends one only for a problem, so its PROBLEM is still on its way (delayed,
    // spooled, handed over late by another host) and must be superseded by it, not open an
    // incident the operator already took. That record holds no incident: it is forgotten as a
    // closed one is. Called holding the incident, so the record read here is the one written
    // over (no other invocation writes it meanwhile).
    let unrecorded = |c: &Option<Incident>| c.as_ref().is_none_or(|c| c.last_action.is_none());
    let expire = match p.action {
        Action::Resolve => Expiry::After(CLOSED_RECORD_TTL),
        Action::Acknowledge if unrecorded(&get(store, key)?) => Expiry::After(CLOSED_RECORD_TTL),
        _ => Expiry::Never,
    };
    store.update_deciding(key, expire, &mut |v| {
        let current = v.map(|v| Incident::from_value(key, Some(v)));
        let durability = record_durability(current.as_ref(), p, repeats);
        if p.action == Action::Acknowledge && !current.as_ref().is_some_and(|c| c.open) {
            if unrecorded(&current) && expire != Expiry::Never {
                return (Some(with_time_of(current, key, p).to_value()), durability);
            }
            return (current.map(|c| c.to_value()), durability);
        }
        (Some(apply(current, key, p, now, refs).to_value()), durability)
    })
}

/// `record` (none: a new one for `key`) with `p`'s event time as the record's, `p` as its last
/// action unless it has one: an event that was decided and needed nothing, or that holds no
/// incident (an acknowledgement of nothing), noted so that an older event arriving afterwards
/// is superseded ([`note_skipped`], [`record`]).
fn with_time_of(record: Option<Incident>, key: &str, p: &Proposal) -> Incident {
    let mut inc = record.unwrap_or_else(|| Incident { key: key.to_string(), ..Incident::default() });
    // A resolve skipped for want of a record: the record says the incident is closed as of
    // its time (nothing was resolved at the service: no `resolved_at`).
    inc.last_action.get_or_insert(p.action);
    inc.event_time = Some(p.event_time);
    inc.event_seq = p.event_seq;
    inc.time_origin = p.time_origin;
    inc
}

/// Whether skipping `p` must be noted in `record` ([`note_skipped`]): it needed nothing (an
/// identical repeat, a resolve of a closed incident) but is later than every event the record
/// has applied, so that an older event arriving after it would otherwise undo what it found.
///
/// With no record, a resolve is noted (Twilio and Slack skip it when nobody was paged): its
/// failure may be handed over after it, and must then be superseded, not page for a service
/// that has recovered. Nagios's PROBLEM of the same second, ordered by the event ids
/// ([`is_later`]); a failure a host sharing the ledger hands over late (a Sensu Go backend
/// with a backlog, a Zabbix HA node), or a trigger spooled on a host that Slack or Twilio kept
/// waiting (a rate limit), which the flush would otherwise deliver after its recovery: a war
/// room, or calls, for a check that is OK, with nothing left to close them. It costs one write
/// per recovery of an incident that was not paged (an identical repeat of it, with the same
/// time, writes nothing). Other skips without a record are not written, a downtime's end
/// ([`Proposal::only_open`], one per service of a maintenance window) included.
///
/// An acknowledge is noted too: an acknowledgement covers the notifications before it, so a
/// failure spooled before it on another host (Twilio or Slack unreachable from there) is
/// superseded by it at that host's flush instead of paging, after the operator took the
/// problem, people who will not be asked to acknowledge again. Also one the record skips
/// because the incident looks closed, or that finds no record (Twilio: "nobody was called"):
/// Nagios sends one only for a problem, so its failure is still on its way (busy, spooled,
/// or handed over late by another host), and must not ring everyone once it arrives. Copies
/// of one acknowledgement (one per contact) share its time and write once. Not noted is a
/// failure whose time is the event's receipt ([`TimeOrigin::Receipt`]): it says when the
/// event arrived, not when its check ran, and an event from a monitored host received after
/// it is ordered after it anyway (its own bound is later). Noting it would rewrite the record
/// for every late repeat of a storm of failures, and the receipt time of one host sharing the
/// ledger could supersede a recovery received a moment later on another whose clock runs a
/// second behind. A recovery is noted whatever its time's origin (Zabbix gives none): a failure
/// spooled on another host before it must be superseded all the same, whether the ledger
/// had no record or an incident resolved earlier ("already resolved"). It cannot supersede a
/// recovery (a live event is never superseded by a receipt, a spooled one only by a receipt
/// more than [`RECEIPT_SKEW_SECS`] later: [`applied_after`]), and recoveries come one per
/// state change, not in storms (a repeat in the same second writes nothing).
pub fn skip_moves_time(record: Option<&Incident>, p: &Proposal) -> bool {
    let applied = record.filter(|r| r.last_action.is_some());
    if p.action == Action::Trigger && p.time_origin == TimeOrigin::Receipt {
        return false;
    }
    match applied {
        Some(r) => r.event_time.is_none_or(|t| is_later(p.event_time, p.event_seq, t, r.event_seq)),
        None => p.action != Action::Trigger && !p.only_open,
    }
}

/// Note in `key`'s record that `p` was decided and needed nothing: its event time becomes the
/// record's, so that an older event that arrives afterwards is superseded instead of being
/// applied over it (a resolve from before a repeated failure must not close the incident that
/// failure found open). Call under the incident's hold, only when [`skip_moves_time`] (a storm
/// of identical events, with one event time, writes nothing). Volatile: at worst a crash forgets
/// it, and the order is then that of the events applied. Changes nothing when the record no
/// longer makes `p` a skip.
///
/// Errors: as [`Store::update_with`].
pub fn note_skipped(store: &dyn Store, key: &str, p: &Proposal, now: u64, no_record: NoRecord) -> anyhow::Result<()> {
    let current = get(store, key)?;
    if current.is_none() && !skip_moves_time(None, p) {
        return Ok(());
    }
    // A closed record (or one made here for a skipped resolve) is forgotten CLOSED_RECORD_TTL
    // after this write.
    let expire = if current.is_some_and(|c| c.open) { Expiry::Keep } else { Expiry::After(CLOSED_RECORD_TTL) };
    store.update_with(key, Write { durability: Durability::Volatile, expire }, &mut |v| {
        let record = v.clone().map(|v| Incident::from_value(key, Some(v)));
        let applied = record.as_ref().filter(|r| r.last_action.is_some());
        if !(skip_moves_time(applied, p) && matches!(decide(applied, p, now, no_record), Verdict::Skip(_))) {
            return v;
        }
        Some(with_time_of(record, key, p).to_value())
    })
}

/// Read the typed record for `key`.
///
/// Errors: as [`Store::get`].
pub fn get(store: &dyn Store, key: &str) -> anyhow::Result<Option<Incident>> {
    Ok(store.get(key)?.map(|v| Incident::from_value(key, Some(v))))
}

/// The reference `name` (`refs.NAME`: a Slack war room's `channel_id`, a Reactio
/// `incident_id`) of every open record but `except`'s (`None`: of every open record): what the
/// ledger holds open for other incidents, so that a service object found by name is never
/// taken for this incident's when it is another's. Records that cannot be parsed are passed
/// over.
///
/// Errors: listing the store's keys ([`Store::keys`]) or reading them ([`Store::get_many`]).
pub fn open_refs_of_others(store: &dyn Store, except: Option<&str>, name: &str) -> anyhow::Result<Vec<Value>> {
    let keys: Vec<String> = store.keys()?.into_iter().filter(|k| Some(k.as_str()) != except).collect();
    let records = store.get_many(&keys)?;
    Ok(keys
        .iter()
        .zip(records)
        .filter_map(|(k, v)| v.map(|v| Incident::from_value(k, Some(v))))
        .filter(|r| r.open)
        .filter_map(|mut r| r.refs.remove(name))
        .collect())
}

/// The reference `name` of every open record ([`open_refs_of_others`]) as a provider's
/// `known` map holds it: an array under `as_key`; nothing when the store cannot list its keys.
pub fn open_refs_known(store: &dyn Store, name: &str, as_key: &str) -> Map<String, Value> {
    let mut known = Map::new();
    if let Ok(refs) = open_refs_of_others(store, None, name) {
        known.insert(as_key.to_string(), Value::Array(refs));
    }
    known
}

/// Note `entries` as in flight for `key`, in one write and in their order (a request and the
/// one that must follow it, such as Reactio's close after its recovery message: a kill between
/// two writes left the first noted alone, and the second was never sent). For each entry: `None`
/// when it was added; the note of the same request (its token, action and payload) that stood
/// already otherwise, left as it is: it stands for this one too (a spooled request of unknown
/// fate its invocation left noted, [`leave_inflight`], or one a flush killed while sending it
/// left, sent again by a flush), so that whoever takes the notes spools one copy of the
/// request. Volatile (no `fsync`): it matters when its sender is killed, which leaves the page
/// cache as it was; a machine crash after the service acted on the request, before its record,
/// can lose it (the record then stays in its old state, as before notes existed).
///
/// Errors: as [`Store::update_with`].
pub fn note_inflight(store: &dyn Store, key: &str, entries: &[crate::spool::Entry]) -> anyhow::Result<Vec<Option<crate::spool::Entry>>> {
    let mut standing = Vec::new();
    store.update_volatile(key, &mut |v| {
        // The function may run more than once (on a record another writer changed meanwhile).
        let mut inc = Incident::from_value(key, v.clone());
        standing = entries
            .iter()
            .map(|entry| {
                inc.inflight.iter().find(|e| e.token == entry.token && e.action == entry.action && e.payload == entry.payload).cloned()
            })
            .collect();
        if standing.iter().all(Option::is_some) {
            return v;
        }
        inc.inflight.extend(entries.iter().zip(&standing).filter(|(_, s)| s.is_none()).map(|(e, _)| e.clone()));
        Some(inc.to_value())
    })?;
    Ok(standing)
}

/// This invocation is done with `key` without recording a delivery (its requests were spooled
/// or refused): nothing it noted is in flight any more. A record that held nothing else (the
/// note of a run that reached nobody) is removed.
///
/// Errors: as [`Store::update_with`].
pub fn clear_inflight_of(store: &dyn Store, key: &str, token: &str) -> anyhow::Result<()> {
    store.update_volatile(key, &mut |v| {
        let v = v?;
        let mut inc = Incident::from_value(key, Some(v.clone()));
        if !inc.inflight.iter().any(|e| e.token == token) {
            return Some(v);
        }
        inc.inflight.retain(|e| e.token != token);
        (!nothing_but_the_key(&inc)).then(|| inc.to_value())
    })
}

/// Note `entry`, a spooled request of unknown fate that a flush could not deliver yet, as in
/// flight for `key`, unless a note of the same request (its token and payload) is there
/// already: as [`leave_inflight`] notes the requests of unknown fate a live invocation
/// spooled, so that another host, which cannot see this spool, does not decide the incident's
/// next event from its last recorded action alone. Volatile, as [`note_inflight`].
///
/// Errors: as [`Store::update_with`].
pub fn keep_noted(store: &dyn Store, key: &str, entry: &crate::spool::Entry) -> anyhow::Result<()> {
    store.update_volatile(key, &mut |v| {
        let mut inc = Incident::from_value(key, v.clone());
        if inc.inflight.iter().any(|e| e.token == entry.token && e.payload == entry.payload) {
            return v;
        }
        inc.inflight.push(entry.clone());
        Some(inc.to_value())
    })
}

/// `entry`, a spooled request of unknown fate, is settled without a record of its action (a
/// flush moved it to `failed/`: superseded, refused, given up): its notes in flight for `key`
/// (the same token and payload) go, so that no holder takes it up again.
///
/// Errors: as [`Store::update_with`].
pub fn clear_noted(store: &dyn Store, key: &str, entry: &crate::spool::Entry) -> anyhow::Result<()> {
    store.update_volatile(key, &mut |v| {
        let v = v?;
        let mut inc = Incident::from_value(key, Some(v.clone()));
        let before = inc.inflight.len();
        inc.inflight.retain(|e| !(e.token == entry.token && e.payload == entry.payload));
        if inc.inflight.len() == before {
            return Some(v);
        }
        (!nothing_but_the_key(&inc)).then(|| inc.to_value())
    })
}

/// This invocation is done with `key` without recording a delivery, and spooled `kept`, its
/// requests of unknown fate (the service may have acted on them; for one that could not be
/// spooled, its note in flight): its notes in flight are replaced by `kept`, so that whoever
/// holds the incident next, on any host, takes them ([`take_inflight`]) and looks them up, or
/// sends them again, before its own event. With nothing kept, as [`clear_inflight_of`].
///
/// Errors: as [`Store::update_with`].
pub fn leave_inflight(store: &dyn Store, key: &str, token: &str, kept: &[crate::spool::Entry]) -> anyhow::Result<()> {
    if kept.is_empty() {
        return clear_inflight_of(store, key, token);
    }
    store.update_volatile(key, &mut |v| {
        let mut inc = Incident::from_value(key, v);
        inc.inflight.retain(|e| e.token != token);
        inc.inflight.extend(kept.iter().cloned());
        Some(inc.to_value())
    })
}

/// A resolve or acknowledge of unknown fate was found superseded (a flush) by a later action
/// of the incident `key`'s record holds open (its trigger, or an acknowledgement after it): it
/// may have reached the service after that trigger, closing there the incident the record
/// holds open. The record is marked in doubt ([`Incident::in_doubt`]), so that the incident's
/// next trigger goes out. For a service that merges a repeated trigger into the open incident
/// ([`RepeatedTrigger::Merged`]): where the doubt was needless, the repeat costs nothing. A
/// record that is not open is left as it is.
///
/// Errors: as [`Store::update_with`].
pub fn doubt_trigger(store: &dyn Store, key: &str) -> anyhow::Result<()> {
    store.update_volatile(key, &mut |v| {
        let v = v?;
        let mut inc = Incident::from_value(key, Some(v.clone()));
        if !inc.open || inc.in_doubt {
            return Some(v);
        }
        inc.in_doubt = true;
        Some(inc.to_value())
    })
}

/// Note `progress` as what the delivery holding `key` has done so far ([`Incident::progress`],
/// replacing any earlier notes). Durable, unlike [`note_inflight`]: what it notes (a phone
/// call) goes on at the service when this machine reboots. An open incident's record is kept;
/// a closed one's expiry starts again ([`CLOSED_RECORD_TTL`] from now), so that the notes of a
/// run reopening it outlive the run even when the record was about to be forgotten. Call it
/// holding the hold.
///
/// Errors: as [`Store::get`] and [`Store::update_with`].
pub fn note_progress(store: &dyn Store, key: &str, progress: &Progress) -> anyhow::Result<()> {
    let closed = get(store, key)?.is_some_and(|r| !r.open && r.last_action.is_some());
    let expire = if closed { Expiry::After(CLOSED_RECORD_TTL) } else { Expiry::Never };
    store.update_with(key, Write { durability: Durability::Durable, expire }, &mut |v| {
        let mut inc = Incident::from_value(key, v);
        inc.progress = Some(progress.clone());
        Some(inc.to_value())
    })
}

/// Forget the progress notes of `key`: a run that ended without a delivery to record and
/// leaves nothing to carry on from (nobody answered after every round), or a dead run's notes
/// once a resolve or acknowledge that the record does not apply stopped it. A record that held
/// nothing else is removed. Call it holding the hold.
///
/// Errors: as [`Store::update_with`].
pub fn clear_progress(store: &dyn Store, key: &str) -> anyhow::Result<()> {
    store.update_volatile(key, &mut |v| {
        let v = v?;
        let mut inc = Incident::from_value(key, Some(v.clone()));
        if inc.progress.take().is_none() {
            return Some(v);
        }
        let nothing_else = inc.last_action.is_none() && inc.stop.is_none() && inc.inflight.is_empty() && inc.refs.is_empty();
        (!nothing_else).then(|| inc.to_value())
    })
}

/// The fate of `entries` is known (or they will not be sent): they are no longer in flight for
/// `key`; removed in one write.
///
/// Errors: as [`Store::update_with`].
pub fn clear_inflight(store: &dyn Store, key: &str, entries: &[crate::spool::Entry]) -> anyhow::Result<()> {
    store.update_volatile(key, &mut |v| {
        let mut inc = Incident::from_value(key, Some(v?));
        inc.inflight.retain(|e| !entries.contains(e));
        // A record the note made holds nothing now: removed (a failed first page left an
        // empty record behind, which Redis kept for good: it has no expiry).
        (!nothing_but_the_key(&inc)).then(|| inc.to_value())
    })
}

/// Whether `inc` holds nothing but its key: no action applied, no references, no requests in
/// flight, no stop request, no progress, no event time.
fn nothing_but_the_key(inc: &Incident) -> bool {
    inc.last_action.is_none()
        && inc.stop.is_none()
        && inc.inflight.is_empty()
        && inc.refs.is_empty()
        && inc.progress.is_none()
        && inc.event_time.is_none()
}

/// Remove and return what is noted as in flight for `key` — call it holding the incident's
/// hold: any request still noted then belonged to a holder that died.
///
/// Errors: as [`Store::update_with`].
pub fn take_inflight(store: &dyn Store, key: &str) -> anyhow::Result<Vec<crate::spool::Entry>> {
    let mut taken = Vec::new();
    store.update_volatile(key, &mut |v| {
        // The function may run more than once (on a record another writer changed meanwhile):
        // only its last run's entries are taken.
        taken = Vec::new();
        let mut inc = Incident::from_value(key, Some(v?));
        taken = std::mem::take(&mut inc.inflight);
        Some(inc.to_value())
    })?;
    Ok(taken)
}

/// Ask a long delivery of `key` to stop for `stop` (a resolve or acknowledge that found the
/// incident busy). A delivery in progress has recorded nothing yet, so the request may be the
/// first thing the record holds ([`decide`] reads such a record as none).
///
/// Errors: as [`Store::update_with`].
pub fn request_stop(store: &dyn Store, key: &str, stop: Stop) -> anyhow::Result<()> {
    store.update_volatile(key, &mut |v| {
        let mut inc = Incident::from_value(key, v);
        if inc.stop.is_none_or(|s| s.event_time <= stop.event_time) {
            inc.stop = Some(stop);
        }
        Some(inc.to_value())
    })
}

/// What a long delivery's first stop check found in the record ([`stop_requested`]): the
/// stop request, and the resolve applied last (its time and token), if the record is closed
/// by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignals {
    stop: Option<Stop>,
    resolved: Option<(Option<u64>, Option<String>)>,
}

impl StopSignals {
    /// What `record` says.
    pub fn of(record: Option<&Incident>) -> StopSignals {
        StopSignals {
            stop: record.and_then(|r| r.stop),
            resolved: record.filter(|r| !r.open && r.last_action == Some(Action::Resolve)).map(|r| (r.event_time, r.token.clone())),
        }
    }
}

/// Whether a delivery for an event at `event_time` (whose time comes from `origin`) should
/// stop, `began` being what its first check found in the record (`None`: this is the first
/// check):
///
/// - a resolve or acknowledge at or after that time asked it to ([`request_stop`]); or one
///   ordered by its receipt ([`TimeOrigin::Receipt`]) asked since the delivery began: it
///   arrived while the delivery ran, so it is the later event whatever the clocks of the two
///   hosts say (a recovery taken by a host whose clock is behind must stop the calls); or,
///   for a delivery ordered by its receipt, one asked since whose time is not more than
///   [`host_clock_lateness`] before it (which came first is not known: [`applied_after`]);
/// - a resolve was applied since the delivery began, at or after that time, or ordered by its
///   receipt, or as the last item allows. A resolve the record held when the delivery began does not stop it: the ledger
///   decided that this event goes after it (a PROBLEM after its RECOVERY of the same second
///   without event ids, a failure received after a recovery that a host whose clock is ahead
///   recorded), and stopping before the first call would lose the page.
pub fn stop_requested(record: Option<&Incident>, event_time: u64, origin: TimeOrigin, began: Option<&StopSignals>) -> Option<Stop> {
    let rec = record?;
    let now = StopSignals::of(Some(rec));
    // Since the delivery began: whether a stop of `time` from `from` is not older than it.
    let not_older = |time: u64, from: TimeOrigin| time >= event_time || from == TimeOrigin::Receipt || may_follow(time, event_time, origin);
    if let Some(s) = rec.stop {
        let asked_since = began.is_some_and(|b| b.stop != Some(s));
        if s.event_time >= event_time || (asked_since && not_older(s.event_time, s.time_origin)) {
            return Some(s);
        }
    }
    let resolved_since = began.is_some_and(|b| b.resolved != now.resolved);
    match now.resolved {
        Some((Some(t), _)) if resolved_since && not_older(t, rec.time_origin) => {
            Some(Stop { action: Action::Resolve, event_time: t, time_origin: rec.time_origin })
        }
        _ => None,
    }
}

/// Remove the record of `key` (`--forget`). Returns whether there was one.
///
/// Errors: as [`Store::update_with`].
pub fn forget(store: &dyn Store, key: &str) -> anyhow::Result<bool> {
    let mut existed = false;
    store.update_with(key, Write::DURABLE, &mut |v| {
        existed = v.is_some();
        None
    })?;
    Ok(existed)
}

/// `%XX` sequences decoded (invalid ones kept as written; invalid UTF-8 replaced): a Redis
/// URL's password ([`redis::secrets_of`]) and a state file's name ([`file::file_name_for`]
/// undone; a shortened name stays as it is).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(action: Action, severity: &str, t: u64, token: &str) -> Proposal {
        Proposal {
            action,
            severity: severity.into(),
            event_time: t,
            time_origin: TimeOrigin::Event,
            event_seq: None,
            refresh_secs: 1800,
            token: token.into(),
            only_open: false,
            spooled: None,
            custom: false,
        }
    }

    const SEND: NoRecord = NoRecord::Send;
    const SKIP: NoRecord = NoRecord::Skip("nobody was paged");

    #[test]
    fn a_resolve_for_open_incidents_only_skips_unknown_and_closed_ones_whatever_the_provider() {
        let k = "web-01/HTTP";
        let open = apply(None, k, &p(Action::Trigger, "critical", 1000, "a"), 1000, &Map::new());
        let closed = apply(Some(open.clone()), k, &p(Action::Resolve, "ok", 1100, "b"), 1100, &Map::new());
        let mut downtime_end = p(Action::Resolve, "ok", 1200, "c");
        downtime_end.only_open = true;
        for no_record in [SEND, SKIP] {
            assert_eq!(decide(Some(&open), &downtime_end, 1200, no_record), Verdict::Send);
            match decide(None, &downtime_end, 1200, no_record) {
                Verdict::Skip(why) => assert!(why.contains("nothing is open"), "{why}"),
                other => panic!("no record: {other:?}"),
            }
            assert!(matches!(decide(Some(&closed), &downtime_end, 1200, no_record), Verdict::Skip(_)));
        }
        // A plain resolve with no record still goes where the provider says (PagerDuty: sent).
        assert_eq!(decide(None, &p(Action::Resolve, "ok", 1200, "d"), 1200, SEND), Verdict::Send);
        // A record of a trigger a dead holder left in flight (a flush sends it yet) is not
        // "nothing open".
        let entry = crate::spool::Entry {
            token: "a".into(),
            payload: Value::Null,
            fate: crate::outcome::Fate::Unknown,
            ..crate::spool::sample(k, Action::Trigger, 1000)
        };
        let in_flight = Incident { inflight: vec![entry], ..Incident::default() };
        assert_eq!(decide(Some(&in_flight), &downtime_end, 1200, SEND), Verdict::Send);
    }

    #[test]
    fn a_record_goes_without_fsync_only_where_losing_it_cannot_silence_or_strand() {
        let k = "web-01/check_disk";
        let t = p(Action::Trigger, "critical", 1000, "a");
        let open = apply(None, k, &t, 1000, &Map::new());
        let closed = apply(Some(open.clone()), k, &p(Action::Resolve, "ok", 1100, "b"), 1100, &Map::new());
        let notes_only = Incident {
            stop: Some(Stop { action: Action::Resolve, event_time: 900, time_origin: TimeOrigin::Event }),
            ..Incident::default()
        };
        let (again, warning, ack, resolve) = (
            p(Action::Trigger, "critical", 3000, "c"),
            p(Action::Trigger, "warning", 1200, "c"),
            p(Action::Acknowledge, "critical", 1200, "d"),
            p(Action::Resolve, "ok", 1200, "e"),
        );
        // A service that acts on every repeat: everything durable.
        for cur in [None, Some(&open), Some(&closed)] {
            for q in [&again, &warning, &ack, &resolve] {
                assert_eq!(record_durability(cur, q, RepeatedTrigger::ActedOn), Durability::Durable, "{cur:?} {q:?}");
            }
        }
        // A resolve, a trigger that reopens a closed incident or changes its severity, and an
        // acknowledge of no open incident are durable everywhere.
        for cur in [None, Some(&open), Some(&closed), Some(&notes_only)] {
            assert_eq!(record_durability(cur, &resolve, RepeatedTrigger::Merged), Durability::Durable);
        }
        for (cur, q) in [(Some(&closed), &again), (Some(&open), &warning), (None, &ack), (Some(&closed), &ack)] {
            assert_eq!(record_durability(cur, q, RepeatedTrigger::Merged), Durability::Durable, "{cur:?} {q:?}");
        }
        // What goes without: a trigger where there is no incident, a re-notification of an open
        // one, an acknowledge of an open one. Lost in a crash, the record is what it was, and a
        // later resolve still goes out.
        for (cur, q) in [(None, &t), (Some(&notes_only), &t), (Some(&open), &again), (Some(&open), &ack)] {
            assert_eq!(record_durability(cur, q, RepeatedTrigger::Merged), Durability::Volatile, "{cur:?} {q:?}");
            assert_eq!(decide(cur, &p(Action::Resolve, "ok", 3100, "f"), 3100, SEND), Verdict::Send);
        }
        // The same resolve over the closed record would be skipped: that is why a reopening is durable.
        assert!(matches!(decide(Some(&closed), &p(Action::Resolve, "ok", 3100, "f"), 3100, SEND), Verdict::Skip(_)));
    }

    /// A file store that notes how each write that changed something was asked to be made.
    struct Watched {
        inner: file::FileStore,
        writes: std::cell::RefCell<Vec<Durability>>,
    }

    impl Store for Watched {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn get(&self, key: &str) -> anyhow::Result<Option<Value>> {
            self.inner.get(key)
        }
        fn update_deciding(
            &self,
            key: &str,
            expire: Expiry,
            f: &mut dyn FnMut(Option<Value>) -> (Option<Value>, Durability),
        ) -> anyhow::Result<()> {
            self.inner.update_deciding(key, expire, &mut |v| {
                let (new, durability) = f(v.clone());
                if new != v {
                    self.writes.borrow_mut().push(durability);
                }
                (new, durability)
            })
        }
        fn hold(&self, key: &str, until: Instant) -> anyhow::Result<Option<Box<dyn Hold>>> {
            self.inner.hold(key, until)
        }
        fn keys(&self) -> anyhow::Result<Vec<String>> {
            self.inner.keys()
        }
    }

    #[test]
    fn record_decides_durability_from_the_record_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = Watched { inner: file::FileStore::at(dir.path().to_path_buf()).unwrap(), writes: Default::default() };
        let k = "web-01/check_disk";
        let step = |q: Proposal, repeats: RepeatedTrigger| {
            store.writes.borrow_mut().clear();
            record(&store, k, &q, q.event_time, &Map::new(), repeats).unwrap();
            let writes = store.writes.borrow().clone();
            (writes, get(&store, k).unwrap().unwrap())
        };
        use Durability::{Durable, Volatile};
        use RepeatedTrigger::{ActedOn, Merged};
        assert_eq!(step(p(Action::Trigger, "critical", 1000, "a"), Merged).0, [Volatile]);
        assert_eq!(step(p(Action::Acknowledge, "critical", 1100, "b"), Merged).0, [Volatile]);
        assert_eq!(step(p(Action::Trigger, "warning", 1200, "c"), Merged).0, [Durable]);
        let (writes, rec) = step(p(Action::Resolve, "ok", 1300, "d"), Merged);
        assert_eq!((writes, rec.open), (vec![Durable], false));
        // A caller that read the record before this resolve was recorded still gets a durable
        // reopening: the volatile attempt finds the closed record and writes nothing.
        let (writes, rec) = step(p(Action::Trigger, "critical", 1400, "e"), Merged);
        assert_eq!((writes, rec.open, rec.event_time), (vec![Durable], true, Some(1400)));
        assert_eq!(step(p(Action::Trigger, "critical", 1500, "f"), ActedOn).0, [Durable]);
    }

    #[test]
    fn a_record_in_doubt_lets_the_next_trigger_through_and_a_trigger_or_resolve_ends_the_doubt() {
        let k = "web-01/check_disk";
        let rec = apply(None, k, &p(Action::Trigger, "critical", 1000, "a"), 1000, &Map::new());
        let repeat = p(Action::Trigger, "critical", 1100, "b");
        assert!(matches!(decide(Some(&rec), &repeat, 1100, SKIP), Verdict::Skip(_)));
        let doubted = Incident { in_doubt: true, ..rec };
        assert_eq!(decide(Some(&doubted), &repeat, 1100, SKIP), Verdict::Send);
        // An acknowledge delivered does not settle it; the repeat does.
        let acked = apply(Some(doubted), k, &p(Action::Acknowledge, "", 1050, "c"), 1100, &Map::new());
        assert!(acked.in_doubt);
        let repeated = apply(Some(acked), k, &repeat, 1100, &Map::new());
        assert!(!repeated.in_doubt);
        assert!(matches!(decide(Some(&repeated), &p(Action::Trigger, "critical", 1200, "d"), 1200, SKIP), Verdict::Skip(_)));
        // Not written when false: records from before it read alike.
        assert!(!repeated.to_value().as_object().unwrap().contains_key("in_doubt"));
    }

    #[test]
    fn trigger_repeat_refresh_severity_change_and_resolve() {
        let k = "web-01/check_disk";
        let t1 = p(Action::Trigger, "critical", 1000, "a");
        assert_eq!(decide(None, &t1, 1000, SKIP), Verdict::Send);
        let rec = apply(None, k, &t1, 1000, &Map::new());
        assert_eq!((rec.open, rec.count, rec.first_notified), (true, 1, Some(1000)));
        // Identical repeat inside refresh: skipped.
        let t2 = p(Action::Trigger, "critical", 1100, "b");
        assert!(matches!(decide(Some(&rec), &t2, 1100, SKIP), Verdict::Skip(r) if r.contains("already notified 100s ago")));
        // The same, sent by hand (a CUSTOM notification mapped to trigger): paged.
        assert_eq!(decide(Some(&rec), &Proposal { custom: true, ..t2.clone() }, 1100, SKIP), Verdict::Send);
        // Severity change: sent at once.
        let w = p(Action::Trigger, "warning", 1200, "c");
        assert_eq!(decide(Some(&rec), &w, 1200, SKIP), Verdict::Send);
        let rec = apply(Some(rec), k, &w, 1200, &Map::new());
        // After refresh: sent.
        let w2 = p(Action::Trigger, "warning", 3001, "d");
        assert_eq!(decide(Some(&rec), &w2, 3001, SKIP), Verdict::Send);
        let rec = apply(Some(rec), k, &w2, 3001, &Map::new());
        assert_eq!((rec.count, rec.first_notified, rec.last_notified), (3, Some(1000), Some(3001)));
        // Resolve closes; a repeat resolve is skipped.
        let r = p(Action::Resolve, "ok", 3100, "e");
        assert_eq!(decide(Some(&rec), &r, 3100, SKIP), Verdict::Send);
        let rec = apply(Some(rec), k, &r, 3100, &Map::new());
        assert!(!rec.open);
        assert!(matches!(decide(Some(&rec), &p(Action::Resolve, "ok", 3200, "f"), 3200, SEND), Verdict::Skip(_)));
        // A new trigger starts a new period.
        let t3 = p(Action::Trigger, "critical", 3300, "g");
        let rec = apply(Some(rec), k, &t3, 3300, &Map::new());
        assert_eq!((rec.count, rec.first_notified), (1, Some(3300)));
    }

    #[test]
    fn ordering_time_bounds_the_monitored_hosts_clock_by_the_receipt() {
        use crate::event::TimeSource::{Host, Monitoring};
        const L: u64 = HOST_CLOCK_LATENESS_SECS;
        let now = 1_000_000;
        // No time, or none worth the name: the receipt.
        assert_eq!(ordering_time(None, Host, now, L), now);
        assert_eq!(ordering_time(Some(0), Monitoring, now, L), now);
        assert_eq!(ordering_time(Some(-5), Host, now, L), now);
        // Ahead of the receipt, whoever's clock: the receipt.
        assert_eq!(ordering_time(Some(now as i64 + 3600), Host, now, L), now);
        assert_eq!(ordering_time(Some(i64::MAX), Monitoring, now, L), now);
        // A host's time within the lateness is believed; further back it is the bound.
        assert_eq!(ordering_time(Some(now as i64 - 7), Host, now, L), now - 7);
        assert_eq!(ordering_time(Some(now as i64 - 59), Host, now, L), now - 59);
        assert_eq!(ordering_time(Some(now as i64 - 3600), Host, now, L), now - HOST_CLOCK_LATENESS_SECS);
        // The monitoring server's clock orders however late the event arrives.
        assert_eq!(ordering_time(Some(now as i64 - 3600), Monitoring, now, L), now - 3600);
        // A batch event's time is this machine's clock as it was read: the receipt.
        assert_eq!(ordering_time(Some(now as i64 - 1), crate::event::TimeSource::Receipt, now, L), now);
    }

    #[test]
    fn a_host_clock_stepped_back_cannot_supersede_a_later_failure() {
        use crate::event::TimeSource::Host;
        const L: u64 = HOST_CLOCK_LATENESS_SECS;
        // The resolve was applied with the host's clock right; then its clock steps back an
        // hour. The next failure, a check interval later, reads an hour old.
        let resolved_at = 50_000;
        let rec = apply(None, "k", &p(Action::Resolve, "ok", resolved_at, "a"), resolved_at, &Map::new());
        let received = resolved_at + 120;
        let t = ordering_time(Some(resolved_at as i64 + 120 - 3600), Host, received, L);
        assert_eq!(decide(Some(&rec), &p(Action::Trigger, "critical", t, "b"), received, SEND), Verdict::Send);
        // A failure from 5 s before the recovery, handed over 40 s after it (a backlog in a
        // storm): still superseded, the incident is not reopened.
        let t = ordering_time(Some(resolved_at as i64 - 5), Host, resolved_at + 40, L);
        assert!(matches!(decide(Some(&rec), &p(Action::Trigger, "critical", t, "d"), resolved_at + 40, SEND), Verdict::Superseded(_)));
        // A failure really from before the resolve, handed over just after it (the monitoring
        // system ran the two handlers out of order), is still superseded.
        let t = ordering_time(Some(resolved_at as i64 - 5), Host, resolved_at + 1, L);
        assert!(matches!(decide(Some(&rec), &p(Action::Trigger, "critical", t, "c"), resolved_at + 1, SEND), Verdict::Superseded(_)));
    }

    #[test]
    fn older_events_are_superseded() {
        let rec = apply(None, "k", &p(Action::Resolve, "ok", 2000, "a"), 2000, &Map::new());
        // A trigger from before the resolve (a retried or reordered event) is not sent.
        assert!(matches!(decide(Some(&rec), &p(Action::Trigger, "critical", 1999, "b"), 2100, SEND), Verdict::Superseded(_)));
        // One from the same second is not older.
        assert_eq!(decide(Some(&rec), &p(Action::Trigger, "critical", 2000, "c"), 2100, SEND), Verdict::Send);
    }

    #[test]
    fn a_sequence_number_orders_events_of_one_second() {
        let seq = |mut p: Proposal, n: u64| {
            p.event_seq = Some(n);
            p
        };
        // Nagios ran the RECOVERY (event 11) before the PROBLEM (event 10) of the same second.
        let rec = apply(None, "k", &seq(p(Action::Resolve, "ok", 2000, "a"), 11), 2000, &Map::new());
        assert_eq!(rec.event_seq, Some(11));
        let problem = seq(p(Action::Trigger, "critical", 2000, "b"), 10);
        match decide(Some(&rec), &problem, 2001, SEND) {
            // The log says which ids decided, the time being the same.
            Verdict::Superseded(why) => assert!(why.contains(", event id 10, and resolve") && why.contains(", event id 11)"), "{why}"),
            other => panic!("{other:?}"),
        }
        // An acceptance arriving late changes nothing: the record stays resolved.
        assert!(!apply(Some(rec.clone()), "k", &problem, 2001, &Map::new()).open);
        // A later state change of that second, and any event of a later second, is applied.
        assert_eq!(decide(Some(&rec), &seq(p(Action::Trigger, "critical", 2000, "c"), 12), 2001, SEND), Verdict::Send);
        assert_eq!(decide(Some(&rec), &seq(p(Action::Trigger, "critical", 2001, "d"), 1), 2001, SEND), Verdict::Send);
        // The acknowledgement of a problem carries the problem's number: not older than it.
        let open = apply(None, "k", &seq(p(Action::Trigger, "critical", 2000, "e"), 10), 2000, &Map::new());
        assert_eq!(decide(Some(&open), &seq(p(Action::Acknowledge, "critical", 2000, "f"), 10), 2000, SEND), Verdict::Send);
        // Without a number on either side, one second's events are applied as they come.
        assert_eq!(decide(Some(&rec), &p(Action::Trigger, "critical", 2000, "g"), 2001, SEND), Verdict::Send);
        // A skip of the same second with a later number is noted, so the older one is superseded.
        assert!(skip_moves_time(Some(&rec), &seq(p(Action::Resolve, "ok", 2000, "h"), 12)));
        assert!(!skip_moves_time(Some(&rec), &seq(p(Action::Resolve, "ok", 2000, "i"), 11)));
        // With no record, a resolve is noted (Twilio and Slack skip it), nothing else.
        assert!(skip_moves_time(None, &seq(p(Action::Resolve, "ok", 2000, "j"), 11)));
        assert!(skip_moves_time(None, &p(Action::Resolve, "ok", 2000, "k")));
        assert!(!skip_moves_time(None, &seq(p(Action::Trigger, "critical", 2000, "l"), 11)));
        // Nor a downtime's end, which every service of a maintenance window sends.
        let mut downtime_end = seq(p(Action::Resolve, "ok", 2000, "m"), 11);
        downtime_end.only_open = true;
        assert!(!skip_moves_time(None, &downtime_end));
    }

    #[test]
    fn a_recorded_event_time_in_the_future_counts_as_now() {
        // A trigger stamped in the year 2100 (a host clock far ahead, a planted record).
        let rec = apply(None, "k", &p(Action::Trigger, "critical", 4_102_444_800, "a"), 1000, &Map::new());
        let r = p(Action::Resolve, "ok", 1010, "b");
        assert_eq!(decide(Some(&rec), &r, 1010, SEND), Verdict::Send, "the resolve is not superseded");
        let rec = apply(Some(rec), "k", &r, 1010, &Map::new());
        assert!(!rec.open);
        assert_eq!(rec.event_time, Some(1010));
    }

    #[test]
    fn resolve_and_acknowledge_without_a_record_follow_the_provider() {
        let r = p(Action::Resolve, "ok", 10, "a");
        assert_eq!(decide(None, &r, 10, SEND), Verdict::Send);
        assert_eq!(decide(None, &r, 10, SKIP), Verdict::Skip("nobody was paged".into()));
        let a = p(Action::Acknowledge, "critical", 10, "a");
        assert_eq!(decide(None, &a, 10, SEND), Verdict::Send);
    }

    #[test]
    fn the_rest_of_an_applied_action_is_not_a_repeat() {
        let t = p(Action::Trigger, "critical", 1000, "tok");
        let rec = apply(None, "k", &t, 1000, &Map::new());
        // A spooled call of the same broadcast, delivered later.
        assert_eq!(decide(Some(&rec), &t, 1010, SKIP), Verdict::Send);
        let rec = apply(Some(rec), "k", &t, 1010, &Map::new());
        assert_eq!(rec.count, 1, "the rest of one action counts once");
    }

    #[test]
    fn a_record_time_in_the_future_counts_as_now_for_one_refresh_at_most() {
        // The clock stepped back by a few minutes: the repeat is suppressed (as if just sent).
        let rec = apply(None, "k", &p(Action::Trigger, "critical", 1000, "a"), 1_300, &Map::new());
        assert_eq!(
            decide(Some(&rec), &p(Action::Trigger, "critical", 1001, "b"), 1001, SKIP),
            Verdict::Skip("already notified 0s ago (notification 1, refresh 1800s)".into())
        );
        // It stepped back by more than a refresh: the future time does not silence pages until
        // the clock catches up.
        let rec = apply(None, "k", &p(Action::Trigger, "critical", 1000, "a"), 50_000, &Map::new());
        assert_eq!(decide(Some(&rec), &p(Action::Trigger, "critical", 1001, "b"), 1001, SKIP), Verdict::Send);
    }

    #[test]
    fn acknowledge_is_recorded_once_and_stop_requests_reach_older_deliveries() {
        let rec = apply(None, "k", &p(Action::Trigger, "critical", 1000, "a"), 1000, &Map::new());
        let ack = p(Action::Acknowledge, "critical", 1010, "b");
        assert_eq!(decide(Some(&rec), &ack, 1010, SKIP), Verdict::Send);
        let rec = apply(Some(rec), "k", &ack, 1010, &Map::new());
        assert_eq!(rec.acknowledged_at, Some(1010));
        assert!(matches!(decide(Some(&rec), &p(Action::Acknowledge, "critical", 1020, "c"), 1020, SKIP), Verdict::Skip(_)));
        let mut rec = rec;
        rec.stop = Some(Stop { action: Action::Acknowledge, event_time: 1030, time_origin: TimeOrigin::Event });
        assert!(stop_requested(Some(&rec), 1000, TimeOrigin::Event, None).is_some());
        assert!(stop_requested(Some(&rec), 1031, TimeOrigin::Event, None).is_none());
    }

    #[test]
    fn a_late_acceptance_never_moves_the_record_back_in_time() {
        let t = p(Action::Trigger, "critical", 1000, "a");
        let r = p(Action::Resolve, "ok", 1100, "b");
        let rec = apply(None, "k", &r, 1100, &Map::new());
        let mut refs = Map::new();
        refs.insert("call_sids".into(), serde_json::json!(["CA1"]));
        let rec = apply(Some(rec), "k", &t, 1200, &refs);
        assert!(!rec.open, "the resolve stays applied");
        assert_eq!(rec.refs["call_sids"], serde_json::json!(["CA1"]));
    }

    #[test]
    fn a_record_of_another_key_under_the_same_name_is_no_record() {
        let theirs = apply(None, "web-01/a-very-long-check", &p(Action::Trigger, "critical", 1000, "a"), 1000, &Map::new());
        let read = Incident::from_value("evil-01/crafted-to-collide", Some(theirs.to_value()));
        assert_eq!(read, Incident { key: "evil-01/crafted-to-collide".into(), ..Incident::default() });
        assert_eq!(decide(Some(&read), &p(Action::Resolve, "ok", 1100, "b"), 1100, SKIP), Verdict::Skip("nobody was paged".into()));
        assert_eq!(Incident::from_value("web-01/a-very-long-check", Some(theirs.to_value())), theirs);
    }

    #[test]
    fn two_receipts_are_in_the_order_handled_whatever_their_clocks_say() {
        let receipt = |p: Proposal| Proposal { time_origin: TimeOrigin::Receipt, ..p };
        // A trigger received at 1000 on one host; a resolve a moment later on another whose
        // clock reads 998.
        let rec = apply(None, "k", &receipt(p(Action::Trigger, "critical", 1000, "a")), 1000, &Map::new());
        assert_eq!(rec.time_origin, TimeOrigin::Receipt);
        let late = receipt(p(Action::Resolve, "ok", 998, "b"));
        assert_eq!(decide(Some(&rec), &late, 998, SEND), Verdict::Send);
        let closed = apply(Some(rec.clone()), "k", &late, 998, &Map::new());
        assert!(!closed.open && closed.last_action == Some(Action::Resolve), "{closed:?}");
        // The record's time ahead of this host's clock counts as its now (see `decide`).
        assert_eq!((closed.event_time, closed.time_origin), (Some(998), TimeOrigin::Receipt));
        // A recovery's time the event gave, against a receipt: superseded only when more than
        // the lateness before it (which came first is not known within it).
        assert_eq!(decide(Some(&rec), &p(Action::Resolve, "ok", 998, "c"), 1005, SEND), Verdict::Send);
        let lateness = host_clock_lateness();
        assert_eq!(decide(Some(&rec), &p(Action::Acknowledge, "ok", 1000 - lateness, "c"), 1005, SEND), Verdict::Send);
        let stale = p(Action::Resolve, "ok", 999 - lateness, "c");
        assert!(matches!(decide(Some(&rec), &stale, 1005, SEND), Verdict::Superseded(_)));
        // A spooled one, also by a receipt more than RECEIPT_SKEW_SECS after it was spooled.
        let spooled_at = |at: u64| Proposal { spooled: Some(at), ..p(Action::Resolve, "ok", 990, "s") };
        assert_eq!(decide(Some(&rec), &spooled_at(1000 - RECEIPT_SKEW_SECS), 1005, SEND), Verdict::Send);
        assert!(matches!(decide(Some(&rec), &spooled_at(999 - RECEIPT_SKEW_SECS), 1005, SEND), Verdict::Superseded(_)));
        // A failure's time the event gave orders as always against a receipt, and a receipt
        // against a time the event gave, either action.
        let resolved = apply(None, "k", &receipt(p(Action::Resolve, "ok", 1000, "r")), 1000, &Map::new());
        assert!(matches!(decide(Some(&resolved), &p(Action::Trigger, "critical", 998, "c"), 1005, SEND), Verdict::Superseded(_)));
        let given = apply(None, "k", &p(Action::Trigger, "critical", 1000, "d"), 1000, &Map::new());
        assert!(matches!(decide(Some(&given), &late, 1005, SEND), Verdict::Superseded(_)));
        // Written only when it is a receipt; records of earlier versions read as the event's.
        assert!(rec.to_value().to_string().contains(r#""time_origin":"receipt""#));
        assert!(!given.to_value().to_string().contains("time_origin"));
        assert_eq!(Incident::from_value("k", Some(given.to_value())).time_origin, TimeOrigin::Event);
        // A spooled resolve waited: superseded by a receipt only more than RECEIPT_SKEW_SECS later.
        let spooled = |p: Proposal| Proposal { spooled: Some(p.event_time), ..receipt(p) };
        assert_eq!(decide(Some(&rec), &spooled(p(Action::Resolve, "ok", 1000 - RECEIPT_SKEW_SECS, "e")), 1005, SEND), Verdict::Send);
        let older = spooled(p(Action::Resolve, "ok", 999 - RECEIPT_SKEW_SECS, "f"));
        assert!(matches!(decide(Some(&rec), &older, 1005, SEND), Verdict::Superseded(_)));
        // A spooled trigger goes by the times: one from before a delivered recovery is stale.
        let resolved = apply(Some(rec.clone()), "k", &receipt(p(Action::Resolve, "ok", 1002, "g")), 1002, &Map::new());
        assert!(matches!(decide(Some(&resolved), &spooled(p(Action::Trigger, "critical", 1001, "h")), 1005, SEND), Verdict::Superseded(_)));
    }

    #[test]
    fn one_request_is_noted_in_flight_once_and_its_note_goes_with_its_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = file::FileStore::at(dir.path().join("pd")).expect("store");
        record(&store, "k", &p(Action::Trigger, "critical", 1000, "a"), 1000, &Map::new(), RepeatedTrigger::Merged).expect("record");
        let note = crate::spool::Entry {
            severity: "ok".into(),
            token: "b".into(),
            payload: serde_json::json!({"event_action": "resolve"}),
            fate: crate::outcome::Fate::Unknown,
            ..crate::spool::sample("k", Action::Resolve, 1060)
        };
        let one = |e: &crate::spool::Entry| note_inflight(&store, "k", std::slice::from_ref(e)).expect("note").remove(0);
        assert_eq!(one(&note), None, "added");
        // The same request sent again by a flush (marked, its own created time): the note that
        // stands is returned, and it stays the only one, so that one copy is adopted.
        let again = crate::spool::Entry { noted_in_flight: true, created: 1200, ..note.clone() };
        assert_eq!(one(&again), Some(note.clone()));
        // Another request of the same action is noted besides it.
        let other = crate::spool::Entry { payload: serde_json::json!({"event_action": "resolve", "n": 2}), ..note.clone() };
        assert_eq!(one(&other), None);
        assert_eq!(get(&store, "k").expect("read").expect("a record").inflight, [note.clone(), other]);
        // The record of the action removes its notes.
        record(&store, "k", &p(Action::Resolve, "ok", 1060, "b"), 1300, &Map::new(), RepeatedTrigger::Merged).expect("record");
        assert!(get(&store, "k").expect("read").expect("a record").inflight.is_empty());
    }

    #[test]
    fn a_noted_skip_says_its_time_is_the_events_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = file::FileStore::at(dir.path().join("pd")).expect("store");
        let late = Proposal { time_origin: TimeOrigin::Receipt, ..p(Action::Trigger, "critical", 1000, "a") };
        record(&store, "k", &late, 1000, &Map::new(), RepeatedTrigger::Merged).expect("record");
        assert_eq!(get(&store, "k").expect("read").map(|r| r.time_origin), Some(TimeOrigin::Receipt));
        // A repeat whose own time is later: noted, and the record's time is the event's now.
        note_skipped(&store, "k", &p(Action::Trigger, "critical", 1010, "b"), 1010, SEND).expect("note");
        let rec = get(&store, "k").expect("read").expect("a record");
        assert_eq!((rec.event_time, rec.time_origin), (Some(1010), TimeOrigin::Event));
    }

    #[test]
    fn a_noted_skip_supersedes_older_events_that_arrive_after_it() {
        // Open at 1000; a repeat at 1100 needs nothing but is later than anything applied.
        let rec = apply(None, "k", &p(Action::Trigger, "critical", 1000, "a"), 1000, &Map::new());
        let repeat = p(Action::Trigger, "critical", 1100, "b");
        assert!(matches!(decide(Some(&rec), &repeat, 1100, SEND), Verdict::Skip(_)));
        assert!(skip_moves_time(Some(&rec), &repeat));
        assert!(!skip_moves_time(Some(&rec), &p(Action::Trigger, "critical", 1000, "c")), "the same event time: nothing to note");
        assert!(!skip_moves_time(None, &repeat));
        let acked = apply(Some(rec.clone()), "k", &p(Action::Acknowledge, "critical", 1100, "e"), 1100, &Map::new());
        let again = p(Action::Acknowledge, "critical", 1200, "e2");
        assert!(matches!(decide(Some(&acked), &again, 1200, SEND), Verdict::Skip(_)));
        assert!(skip_moves_time(Some(&acked), &again), "an acknowledge skipped over an open incident is noted");
        assert!(!skip_moves_time(Some(&acked), &p(Action::Acknowledge, "critical", 1100, "e3")), "a copy of the same time is not");
        let received = Proposal { time_origin: TimeOrigin::Receipt, ..repeat.clone() };
        assert!(!skip_moves_time(Some(&rec), &received), "a failure whose time is the receipt is not noted");
        let recovered = Proposal { time_origin: TimeOrigin::Receipt, ..p(Action::Resolve, "ok", 1100, "f") };
        assert!(skip_moves_time(None, &recovered), "a recovery is noted whatever its time's origin");
        let closed = apply(Some(rec.clone()), "k", &p(Action::Resolve, "ok", 1050, "g"), 1050, &Map::new());
        assert!(skip_moves_time(Some(&closed), &recovered), "also over a record of an earlier recovery");
        // An acknowledge of an incident the record holds closed, or has no record of: its
        // failure is still on its way, and is superseded by it when it arrives.
        assert!(skip_moves_time(Some(&closed), &p(Action::Acknowledge, "critical", 1200, "h")), "an acknowledge of a closed incident");
        assert!(skip_moves_time(None, &p(Action::Acknowledge, "critical", 1200, "h2")), "and one with no record");
        assert!(!skip_moves_time(Some(&closed), &Proposal { event_time: 1050, ..recovered }), "not one of the same second");
        let mut noted = rec.clone();
        noted.event_time = Some(1100);
        // A resolve from 1050 arriving now would close what the 1100 failure found open.
        let late = p(Action::Resolve, "ok", 1050, "d");
        assert_eq!(decide(Some(&rec), &late, 1101, SEND), Verdict::Send);
        assert!(matches!(decide(Some(&noted), &late, 1101, SEND), Verdict::Superseded(_)));
    }

    #[test]
    fn a_run_that_died_mid_way_is_stopped_by_a_resolve_and_its_notes_go_with_the_record() {
        let notes = Progress { token: "dead".into(), notes: serde_json::json!({"calls": [{"phone": "+14155550101"}]}) };
        let stub = Incident { key: "k".into(), progress: Some(notes.clone()), ..Incident::default() };
        // Someone was called: a recovery or acknowledgement goes to the provider to stop it.
        assert_eq!(decide(Some(&stub), &p(Action::Resolve, "ok", 5, "x"), 5, SKIP), Verdict::Send);
        assert_eq!(decide(Some(&stub), &p(Action::Acknowledge, "critical", 5, "x"), 5, SKIP), Verdict::Send);
        assert_eq!(decide(Some(&stub), &p(Action::Trigger, "critical", 5, "x"), 5, SKIP), Verdict::Send);
        // Also when the run had reopened a closed incident.
        let closed = apply(None, "k", &p(Action::Resolve, "ok", 1, "a"), 1, &Map::new());
        assert!(matches!(decide(Some(&closed), &p(Action::Resolve, "ok", 5, "x"), 5, SKIP), Verdict::Skip(_)));
        let reopening = Incident { progress: Some(notes.clone()), ..closed.clone() };
        assert_eq!(decide(Some(&reopening), &p(Action::Resolve, "ok", 5, "x"), 5, SKIP), Verdict::Send);
        assert!(matches!(decide(Some(&reopening), &p(Action::Resolve, "ok", 0, "x"), 5, SKIP), Verdict::Superseded(_)));
        // The run's own record ends its notes; another's trigger leaves them; a resolve or
        // acknowledge (which stopped the run) ends them too.
        let recorded = |action, token| apply(Some(stub.clone()), "k", &p(action, "critical", 5, token), 5, &Map::new()).progress;
        assert_eq!(recorded(Action::Trigger, "dead"), None);
        assert_eq!(recorded(Action::Trigger, "other"), Some(notes.clone()));
        assert_eq!(recorded(Action::Resolve, "other"), None);
        assert_eq!(recorded(Action::Acknowledge, "other"), None);
        // Stored and read back as written; a record without notes has no `progress` field.
        assert_eq!(Incident::from_value("k", Some(stub.to_value())), stub);
        assert!(closed.to_value().get("progress").is_none());
    }

    #[test]
    fn a_delivery_is_stopped_by_what_came_after_it_began_not_by_the_resolve_it_was_decided_after() {
        let receipt = |p: Proposal| Proposal { time_origin: TimeOrigin::Receipt, ..p };
        // A resolve recorded at 1005 by a host whose clock is ahead; a failure received at 1002
        // on another is decided after it (a live receipt), and its run is not stopped by it.
        let resolved = apply(None, "k", &receipt(p(Action::Resolve, "ok", 1005, "a")), 1005, &Map::new());
        assert_eq!(decide(Some(&resolved), &receipt(p(Action::Trigger, "critical", 1002, "b")), 1002, SEND), Verdict::Send);
        let began = StopSignals::of(Some(&resolved));
        assert_eq!(stop_requested(Some(&resolved), 1002, TimeOrigin::Event, None), None);
        assert_eq!(stop_requested(Some(&resolved), 1002, TimeOrigin::Event, Some(&began)), None);
        // The same for a resolve of the same second applied before it (no event ids).
        let same = apply(None, "k", &p(Action::Resolve, "ok", 1000, "c"), 1000, &Map::new());
        assert_eq!(stop_requested(Some(&same), 1000, TimeOrigin::Event, None), None);
        // A resolve applied since the delivery began stops it.
        let open = apply(None, "k", &p(Action::Trigger, "critical", 990, "d"), 990, &Map::new());
        let began = StopSignals::of(Some(&open));
        let applied = apply(Some(open.clone()), "k", &p(Action::Resolve, "ok", 1000, "e"), 1000, &Map::new());
        assert!(stop_requested(Some(&applied), 1000, TimeOrigin::Event, Some(&began)).is_some());
        // A stop asked since the delivery began by a receipt from a clock that is behind stops
        // it; one with a time of its own goes by the times.
        let asked =
            |origin| Incident { stop: Some(Stop { action: Action::Resolve, event_time: 998, time_origin: origin }), ..open.clone() };
        assert!(stop_requested(Some(&asked(TimeOrigin::Receipt)), 1000, TimeOrigin::Event, Some(&began)).is_some());
        assert_eq!(stop_requested(Some(&asked(TimeOrigin::Event)), 1000, TimeOrigin::Event, Some(&began)), None);
        // A delivery ordered by its receipt: a stop with a time of its own asked since stops it
        // within the lateness before it (applied_after would not supersede it), not further.
        assert!(stop_requested(Some(&asked(TimeOrigin::Event)), 1000, TimeOrigin::Receipt, Some(&began)).is_some());
        let old = Incident {
            stop: Some(Stop { action: Action::Resolve, event_time: 999 - host_clock_lateness(), time_origin: TimeOrigin::Event }),
            ..open.clone()
        };
        assert_eq!(stop_requested(Some(&old), 1000, TimeOrigin::Receipt, Some(&began)), None);
        // One that was there when it began goes by the times.
        let began = StopSignals::of(Some(&asked(TimeOrigin::Receipt)));
        assert_eq!(stop_requested(Some(&asked(TimeOrigin::Receipt)), 1000, TimeOrigin::Event, Some(&began)), None);
    }

    #[test]
    fn a_stop_request_alone_is_no_record() {
        let stub = Incident {
            key: "k".into(),
            stop: Some(Stop { action: Action::Resolve, event_time: 5, time_origin: TimeOrigin::Event }),
            ..Incident::default()
        };
        assert_eq!(decide(Some(&stub), &p(Action::Resolve, "ok", 5, "x"), 5, SKIP), Verdict::Skip("nobody was paged".into()));
        assert_eq!(decide(Some(&stub), &p(Action::Trigger, "critical", 4, "x"), 5, SKIP), Verdict::Send);
    }
}
