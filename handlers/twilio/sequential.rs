//! Sequential mode: call one person at a time until someone answers.
//!
//! A small team does not want everyone woken for every page. With `mode: sequential` the
//! recipients are called one after another, in the (possibly rotated) list order: each call is
//! placed with `POST …/Calls.json`, then followed with `GET …/Calls/{Sid}.json` every
//! `poll_interval` (default 3 s) until Twilio reports a verdict ([`CallState::verdict`]):
//!
//! - a person answered — `in-progress`, or `completed` with a non-zero `duration`, or, with
//!   `machine_detection`, `answered_by: human` → stop: the page reached someone;
//! - `busy`, `no-answer`, `failed`, `canceled`, a `completed` call of no duration, or (with
//!   `machine_detection`) a machine, fax or undecided pick-up → call the next person.
//!
//! The list is gone through up to `rounds` times (default 2). Before each call and at every
//! poll the incident's record is read from the state store: once a resolve or an acknowledge
//! for the incident asked the run to stop (`state::request_stop`: the invocation handling it
//! finds this run holding the incident, on this host or another sharing the store), or a later
//! resolve was applied, the run stops and a call that is still ringing is cancelled
//! (`POST …/Calls/{Sid}.json` `Status=canceled`), and so is every call it passed over with its
//! fate unknown (below) that may still ring, a create never answered found with ListCall
//! first. The whole run is bounded by `--timeout`.
//!
//! Outcomes ([`Ended`]): answered, or stopped by a resolve or acknowledge → delivered (exit 0;
//! the call SIDs and who answered are stored with the incident); nobody answered after every
//! round → not delivered (exit 75; nothing is recorded and nothing spooled: the run was carried
//! out in full, and the next event for it calls again from the top, within the call caps);
//! Twilio could not be reached, or the deadline ran out first → the rest of the run is spooled
//! as one entry ([`Sequence`], exit 75), which the next invocation or `--flush` carries on from
//! the notes below ([`Twilio::resume_sequence`]), in the incident's order with its other
//! spooled requests. A person over a call cap is texted at their turn instead of called
//! (SMS is not capped: another incident's storm must not keep this one from reaching anyone);
//! no call possible because every recipient is over a cap → texted instead to everyone not
//! texted yet, delivered with a warning.
//! With `sms` in `channels` each person is texted right before their first call, so nobody
//! after the one who answers is disturbed.
//!
//! A run can end mid-way: killed (Sensu 1.x kills a handler after its `timeout`, kill -9 and
//! reboots happen) or out of time while a call still rings. So each call is noted in the
//! incident's record as it is placed — before its create request (number, round, time) and
//! again with its SID ([`Notes`], `common::state::note_progress`), each text before it goes
//! out, those sent instead of calls over a cap too (so that a run carrying this one on texts
//! nobody again, even one whose call was not noted yet; such notes are carried on within
//! `refresh` of the last text), and the run itself is noted
//! in flight as a spool entry (`Ctx::note_run_in_flight`), which the next holder or `--flush`
//! spools when its process died. A spooled run keeps the same notes in its spool entry
//! (`Ctx::spool_run`, and `Ctx::note_progress` as a flush carries it on), which exists
//! whenever the entry does: without a ledger (Redis down, a state directory that cannot be
//! written) a flush still follows the call the one before it placed; the copy written last
//! ([`Notes::written`]) is read. A call that can be noted nowhere is placed by a flush only
//! when its share can follow it to its end. The next invocation that holds the incident (or the flush of
//! that entry) carries on from those notes instead of starting again: it follows the
//! last call (`GET …/Calls/{Sid}.json`) while it is queued, ringing or in progress; answered,
//! the incident counts as answered (recorded and announced as if this run had placed it); not
//! answered, it calls the next person in the order, not the first. A last call that was being
//! placed (no SID yet) is looked up with ListCall: found, it is followed; surely not placed,
//! that person is called now. A last call whose fate cannot be learned is passed over: the
//! next person is called (a page twice rather than none), and its number not again while that
//! call may still ring (`ring_timeout` + 15 s after it was placed), so one phone never rings
//! twice at once. Sequential calls are also noted per recipient (`provider::SIDS_KEY`), so
//! that lookups for other incidents never take them for their own. A call whose create Twilio
//! answers with a 5xx (a gateway error can come after the call was created) is looked up with
//! ListCall at once ([`Twilio::place_or_find`]): found, it is followed; surely not placed, it is
//! placed again. A resolve or acknowledge that finds
//! such notes cancels the last call if it still rings, and the calls passed over with their
//! fate unknown that may still ring, as a run that is stopped does. The notes are cleared when
//! the run's outcome is recorded or nobody answered after every round.

use std::cell::Cell;
use std::collections::HashSet;
use std::time::Duration;

use common::http::{Body, Deadline, Method, Request, Response};
use common::outcome::{Fate, Outcome, Retry};
use common::pipeline::{Ctx, Done, Job, Resumed};
use common::state::{Incident, Stop};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::announce::News;
use crate::provider::{
    ANSWERED, CALL_OVERHEAD_SECS, CALL_SIDS, Create, MESSAGE_SIDS, Payload, Placed, Recipient, Resource, Twilio, forget_call, note_call,
};

/// Call statuses after which Twilio does nothing more with a call (`call_enum_status` in the
/// spec; Twilio's "Call Status Values").
pub const FINAL: [&str; 5] = ["completed", "busy", "failed", "no-answer", "canceled"];

/// Consecutive failed status fetches after which a call is given up on (and the next person
/// is called).
const MAX_FETCH_FAILURES: u32 = 5;
/// The pause before a call whose create was answered 5xx, and that ListCall shows was not
/// placed, is placed again (without a `Retry-After`); it doubles up to [`MAX_PAUSE_AFTER_5XX`].
const FIRST_PAUSE_AFTER_5XX: Duration = Duration::from_millis(250);
/// The longest such pause.
const MAX_PAUSE_AFTER_5XX: Duration = Duration::from_secs(4);

/// Longest time spent on one status check or cancel request, retries included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The time a flush's run needs left to place a call at most: 1 s (an event's run needs two
/// `poll_interval`s, to follow it too). A flush's share may be shorter than one call rings;
/// the call it places is noted, and the next flush follows it.
const FLUSH_ROOM_TO_CALL: Duration = Duration::from_secs(1);

/// A sequential run as the spool keeps it (`provider::Payload::Sequence`): what its calls say
/// and of which incident, rendered from the event when the run began, so that a flush carries
/// it on without the event (as a broadcast call's entry keeps its `Twiml`). Whom to call, in
/// which order, from which number and with which account are the settings in force at the
/// flush, as for every spooled request: rotation and call caps apply then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    /// The TwiML every call speaks ([`Twilio::twiml`]).
    pub twiml: String,
    /// The SMS body ([`Twilio::sms_body`]): texted right before each person's first call with
    /// `sms` in `channels`, and to everyone not texted yet when every recipient is over a call
    /// cap.
    pub sms: String,
    /// How an announcement names the incident: `entity/check (status)`
    /// ([`crate::announce::subject`]).
    pub subject: String,
    /// The check's own `refresh`, seconds (without one, the settings' applies): notes of a run
    /// older than this are not carried on ([`Twilio::too_old`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<u64>,
}

/// One sequential run: an event's, or a spooled one that a flush carries on.
pub(crate) struct Run<'a> {
    /// The incident key (log lines; the war room an announcement goes to).
    key: &'a str,
    /// The time of the event that asked for the run: a resolve or acknowledge of a later event
    /// stops it.
    event_time: u64,
    /// The incident's record before the run: the notes of a run that ended mid-way.
    previous: Option<&'a Incident>,
    /// What the calls say.
    page: &'a Sequence,
    /// A flush's run: it places a call with less time left than following it takes
    /// ([`FLUSH_ROOM_TO_CALL`]).
    flush: bool,
}

/// How a run ended.
pub(crate) enum Ended {
    /// Over: a person answered, every recipient was over a cap and was texted, or every call
    /// was refused (the outcome).
    Over(Outcome<Done>),
    /// A resolve or acknowledge of a later event stopped it (a call still ringing cancelled).
    Stopped(Done),
    /// Every call of every round was placed and nobody answered (the reason): the page was
    /// carried out and reached nobody; the next event for the incident pages again.
    Nobody(String),
    /// This run's hold of the incident was lost to another invocation ([`Ctx::hold_lost`]:
    /// its lease lapsed while the shared store was away, and another invocation took the
    /// incident): it placed no further call and cancelled a call still ringing, so that nobody
    /// is called by two runs at once; the invocation holding the incident now pages (carrying
    /// on from the notes in the record, where they survived).
    HandedOver(String),
    /// Not over: the deadline ran out (a call may still ring), or Twilio could not be reached
    /// (`unreachable`: refused connections, 5xx on every try, no answer in time). The notes in
    /// the record say where to carry on.
    Unfinished {
        /// What stopped it, for the log line.
        reason: String,
        /// Twilio could not be reached, rather than the deadline running out while it answered.
        unreachable: bool,
        /// The run's progress notes, for its spool entry ([`Ctx::spool_run`]): where the ledger
        /// cannot keep them (Redis down), the flush still finds them there.
        progress: Option<common::state::Progress>,
    },
}

/// A call as `GET /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallState {
    /// `queued`, `ringing`, `in-progress`, `completed`, `busy`, `failed`, `no-answer`,
    /// `canceled`.
    pub status: String,
    /// Length of the call in seconds (Twilio sends a string; empty for busy, failed,
    /// unanswered and ongoing calls).
    pub duration: Option<u64>,
    /// With answering machine detection: `human`, `machine_start`, `machine_end_beep`,
    /// `machine_end_silence`, `machine_end_other`, `fax` or `unknown`.
    pub answered_by: Option<String>,
}

/// What a call's state says about reaching a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided yet: keep polling.
    Pending,
    /// A person picked up: stop calling.
    Answered,
    /// Nobody (or a machine) picked up: call the next person.
    NotAnswered,
}

impl CallState {
    fn queued() -> CallState {
        CallState { status: "queued".into(), duration: None, answered_by: None }
    }

    /// From a call resource's JSON; `None` without a `status` string.
    pub fn from_json(body: &str) -> Option<CallState> {
        let v: Value = serde_json::from_str(body).ok()?;
        let status = v.get("status")?.as_str()?.to_string();
        let duration = match v.get("duration") {
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        let answered_by = v.get("answered_by").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        Some(CallState { status, duration, answered_by })
    }

    /// Whether this state means a person answered. `amd`: the call was placed with
    /// `MachineDetection`, so that `answered_by` will tell a person from a machine; then an
    /// `in-progress` call without `answered_by` is still being classified, and a machine, fax
    /// or `unknown` counts as not answered (a missed page is worse than one call too many).
    /// Without it, any pick-up counts (a voicemail cannot be told apart).
    pub fn verdict(&self, amd: bool) -> Verdict {
        match self.answered_by.as_deref() {
            Some("human") => return Verdict::Answered,
            Some(a) if a.starts_with("machine") || a == "fax" || a == "unknown" => return Verdict::NotAnswered,
            _ => {}
        }
        match self.status.as_str() {
            "in-progress" if amd => Verdict::Pending,
            "in-progress" => Verdict::Answered,
            "completed" if self.duration.unwrap_or(0) > 0 => Verdict::Answered,
            s if FINAL.contains(&s) => Verdict::NotAnswered,
            _ => Verdict::Pending,
        }
    }

    /// For log lines: `no-answer`, `completed after 12 s, answered by human`, …
    pub fn describe(&self) -> String {
        let mut out = self.status.clone();
        if let Some(d) = self.duration.filter(|d| *d > 0) {
            out.push_str(&format!(" after {d} s"));
        }
        if let Some(a) = &self.answered_by {
            out.push_str(&format!(", answered by {a}"));
        }
        out
    }
}

/// How following one call ended.
enum Followed {
    Answered(CallState),
    NotAnswered(CallState),
    Stopped(CallState, Stop),
    /// The run's hold was lost to another invocation (why).
    HandedOver(CallState, String),
    OutOfTime(CallState),
    /// The call's status could not be learned (the reason).
    Lost(String),
}

/// A call of the run as its progress notes keep it ([`Notes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NotedCall {
    /// The E.164 number called.
    phone: String,
    /// The recipient's name, for log lines.
    #[serde(default)]
    name: Option<String>,
    /// The round it was placed in, from 1.
    round: u64,
    /// When it was noted, right before its create request went out, Unix seconds.
    at: u64,
    /// The call SID, once Twilio's answer brought it. `None`: the create request was in flight
    /// (a run that died then left a call of unknown fate, looked up with ListCall).
    sid: Option<String>,
    /// The id of its attempt among the calls noted per recipient (`provider::SIDS_KEY`).
    #[serde(default)]
    attempt: Option<String>,
    /// Passed over with its fate unknown (its status could not be read, or its create was
    /// never answered): until when it may still ring, Unix seconds. A run carrying this one
    /// on calls that number again only then, as this run would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ringing_until: Option<u64>,
    /// Its place in the calling order, from 0: a number listed twice is carried on from the
    /// place it was called at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    position: Option<usize>,
}

impl NotedCall {
    /// Whether it was passed over with its fate unknown and may still ring at `now` (Unix
    /// seconds, [`NotedCall::ringing_until`]).
    fn unsettled_at(&self, now: u64) -> bool {
        self.ringing_until.is_some_and(|until| until > now)
    }
}

/// A sequential run's progress notes in the incident's record (`common::state::Progress`),
/// rewritten before and after each call is placed, so that the next holder of the incident
/// carries on where a run that died (kill -9, the monitoring system's handler timeout) or ran
/// out of time left off.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Notes {
    /// The calls placed, in order (those of the runs it carried on from first).
    calls: Vec<NotedCall>,
    /// SIDs of the SMS sent.
    messages: Vec<String>,
    /// The numbers texted, each noted before its text went out (a text of unknown fate is
    /// not sent again by a run carrying this one on).
    texted: Vec<String>,
    /// When the last of `texted` was noted, Unix seconds: notes holding texts but no call are
    /// carried on while younger than the incident's `refresh` ([`Twilio::too_old`]), so that
    /// a run that pages afresh later texts again.
    #[serde(skip_serializing_if = "Option::is_none")]
    texted_at: Option<u64>,
    /// How many times the run's notes were written (counted on from the notes it carried on
    /// from): of the copies in the incident's record and in the run's spool entry, the one
    /// written last has the higher count (the other's write may have failed).
    written: u64,
}

impl Notes {
    /// The notes a run that ended mid-way left, if any: in the incident's record `previous`,
    /// or in the spool entry of the run a flush carries on (`kept`, [`Ctx::kept_progress`]).
    /// The entry's are this run's own (the record's may be another run's, or missing: no
    /// ledger, or a write that failed), so they win unless the record has this run's written
    /// later.
    fn left_off(previous: Option<&Incident>, kept: Option<&common::state::Progress>) -> Option<Notes> {
        let read = |progress: &common::state::Progress| serde_json::from_value::<Notes>(progress.notes.clone()).ok();
        let recorded = previous.and_then(|rec| rec.progress.as_ref());
        let Some(kept) = kept.and_then(|k| Some((k, read(k)?))) else { return recorded.and_then(read) };
        match recorded.filter(|r| r.token == kept.0.token).and_then(read) {
            Some(recorded) if recorded.written >= kept.1.written => Some(recorded),
            _ => Some(kept.1),
        }
    }
}

/// What a sequential run has done so far.
#[derive(Default)]
struct Progress {
    /// The numbers called (for the announcement). Not read from `placed`: it is filled two
    /// ways that differ. A run adds a number once its call has a SID; carrying on
    /// ([`Twilio::carry_on`]) adds every number in the notes, a call with no SID too (accepted
    /// without one, or of unknown fate).
    called: HashSet<String>,
    messages: Vec<String>,
    texted: HashSet<String>,
    /// When the last text was noted ([`Notes::texted_at`]).
    texted_at: Option<u64>,
    capped: HashSet<String>,
    /// `Bob +1…: busy` per finished call.
    outcomes: Vec<String>,
    failures: Vec<Outcome<Done>>,
    /// Every call placed, as noted in the record.
    placed: Vec<NotedCall>,
    /// Numbers with a call whose fate could not be learned, and until when it may still ring
    /// (Unix seconds): no other call to them before then.
    unsettled: Vec<(String, u64)>,
    /// How many times the notes were written ([`Notes::written`]).
    written: std::cell::Cell<u64>,
}

impl Progress {
    /// The SIDs of the calls placed (`CA…`), in order: those of `placed` that have one. A call
    /// Twilio accepted without a SID, or whose create request's fate is unknown, has none.
    fn calls(&self) -> Vec<&str> {
        self.placed.iter().filter_map(|c| c.sid.as_deref()).collect()
    }

    fn refs(&self) -> Map<String, Value> {
        let mut refs = Map::new();
        for (key, sids) in [(CALL_SIDS, self.calls()), (MESSAGE_SIDS, self.messages.iter().map(String::as_str).collect())] {
            if !sids.is_empty() {
                refs.insert(key.into(), json!(sids));
            }
        }
        refs
    }

    fn calls_text(&self) -> String {
        let calls = self.calls();
        match calls.len() {
            0 => "no call".into(),
            1 => format!("call {}", calls[0]),
            _ => format!("calls {}", calls.join(", ")),
        }
    }

    fn outcomes_text(&self) -> String {
        if self.outcomes.is_empty() { String::new() } else { format!(" ({})", self.outcomes.join("; ")) }
    }

    /// The notes to keep in the record.
    fn notes(&self) -> Notes {
        let mut texted: Vec<String> = self.texted.iter().cloned().collect();
        texted.sort();
        Notes {
            calls: self.placed.clone(),
            messages: self.messages.clone(),
            texted,
            texted_at: self.texted_at,
            written: self.written.get(),
        }
    }

    /// The notes as the incident's record and the run's spool entry keep them, for the run of
    /// token `token`.
    fn progress(&self, token: &str) -> common::state::Progress {
        common::state::Progress { token: token.to_string(), notes: serde_json::to_value(self.notes()).unwrap_or(Value::Null) }
    }

    /// Since when people have been paged for this run (and the runs it carried on from).
    fn paging_for(&self, ctx: &Ctx<'_, Twilio>) -> Duration {
        match self.placed.first() {
            Some(first) => Duration::from_secs(common::clock::age(first.at, common::clock::now_unix())).max(ctx.deadline.elapsed()),
            None => ctx.deadline.elapsed(),
        }
    }
}

/// Where a run starts in the list: a round (from 1) and a position in the order (from 0).
type Position = (u64, usize);

impl Twilio {
    /// Sequential mode for a trigger event: call `order` one at a time ([`Twilio::sequential`]).
    /// A run that cannot finish — Twilio cannot be reached, or the deadline runs out first —
    /// is spooled ([`Sequence`]) for the next invocation or `--flush` to carry on from the
    /// notes it left in the record (exit 75); so is the run of an event that must queue behind
    /// the incident's earlier spooled requests or another invocation's delivery for it (it
    /// never calls alongside them). One that called everyone in every round without an answer
    /// is over: exit 75, nothing recorded, not spooled.
    pub(crate) fn sequential_event(&self, ctx: &Ctx<'_, Twilio>, job: &Job<'_>, order: &[Recipient]) -> Outcome<Done> {
        let page = Sequence {
            twiml: self.twiml(job.event, job.incident_key),
            sms: self.sms_body(job.event),
            subject: crate::announce::subject(job.event),
            refresh: job.event.refresh,
        };
        if let Some(why) = ctx.queued_behind() {
            let why = why.to_string();
            return self.spool_run(ctx, page, None, &why);
        }
        // A process killed mid-run leaves it to be spooled and carried on by the next holder.
        ctx.note_run_in_flight(&Payload::Sequence(page.clone()));
        let run = Run { key: job.incident_key, event_time: job.event_time, previous: job.previous, page: &page, flush: false };
        match self.sequential(ctx, &run, order) {
            // Every call failed for this machine's configuration (an untrusted certificate, a
            // proxy refusing its credentials): still exit 78, but the run is kept for the flush
            // once it is fixed, as a broadcast call is.
            Ended::Over(Outcome::Broken(why)) => match self.spool_run(ctx, page, None, &why) {
                Outcome::Spooled(kept) => Outcome::Broken(kept),
                _ => Outcome::Broken(why),
            },
            Ended::Over(outcome) => outcome,
            Ended::Stopped(done) => Outcome::Delivered(done),
            Ended::Nobody(why) => Outcome::Retry(Retry::not_sent(why)),
            // The invocation holding the incident now pages (exit 75 all the same: this run
            // reached nobody); the event is not printed as undelivered, which would invite
            // sending it again by hand.
            Ended::HandedOver(why) => Outcome::Spooled(why),
            Ended::Unfinished { reason, progress, .. } => {
                self.spool_run(ctx, page, progress, &format!("{reason}; the rest of the run waits"))
            }
        }
    }

    /// Spool the run `page`, with its `progress` notes when it placed calls (the outcome to
    /// report: spooled, or not when it cannot be).
    fn spool_run(&self, ctx: &Ctx<'_, Twilio>, page: Sequence, progress: Option<common::state::Progress>, why: &str) -> Outcome<Done> {
        match ctx.spool_run(&Payload::Sequence(page), progress, why) {
            Outcome::Delivered(_) => Outcome::Retry(Retry::not_sent(why)),
            other => other.failure().unwrap_or(Outcome::Skipped(String::new())),
        }
    }

    /// A flush carries on the spooled run `page` of the event at `event_time`, from the notes
    /// in the incident's record `previous`, within the flush's share for it: answered, it is
    /// delivered; nobody answered after every round, it is over; stopped by a later resolve
    /// or acknowledge before it called anyone, it is superseded; out of time, it waits for the
    /// next flush (the notes say where it stands); Twilio unreachable, it waits with the
    /// entries sent the same way.
    pub(crate) fn resume_sequence(&self, ctx: &Ctx<'_, Twilio>, page: &Sequence, previous: Option<&Incident>, event_time: u64) -> Resumed {
        // A run whose page the record holds as delivered is over: a copy of it (noted in flight
        // by a process killed right after it spooled the run) is not run again from the top.
        if let Some(rec) = previous
            && rec.last_action == Some(common::filter::Action::Trigger)
            && rec.token.is_some()
            && rec.token.as_deref() == ctx.token()
        {
            return Resumed::Superseded("its run was delivered already".into());
        }
        let order = self.order(ctx);
        let run = Run { key: ctx.incident_key, event_time, previous, page, flush: true };
        match self.sequential(ctx, &run, &order) {
            Ended::Over(Outcome::Delivered(done)) => Resumed::Delivered(done),
            Ended::Over(other) => Resumed::Failed(other.failure().unwrap_or(Outcome::Skipped(String::new()))),
            // It paged people before it was stopped: recorded as an event's run would be.
            Ended::Stopped(done) if done.refs.contains_key(CALL_SIDS) => Resumed::Delivered(done),
            Ended::Stopped(done) => Resumed::Superseded(format!("superseded {}", done.detail)),
            Ended::Nobody(why) => Resumed::Ended(format!("{why}; the run is over, and the next event for the incident pages again")),
            Ended::Unfinished { reason, unreachable: true, .. } => Resumed::Failed(Outcome::Retry(Retry::not_sent(reason))),
            Ended::Unfinished { reason, unreachable: false, .. } | Ended::HandedOver(reason) => Resumed::Unfinished(reason),
        }
    }

    /// Run sequential mode: call `order` one at a time, as the module explains, carrying on
    /// from the calls a run that ended mid-way noted in the record.
    fn sequential(&self, ctx: &Ctx<'_, Twilio>, run: &Run<'_>, order: &[Recipient]) -> Ended {
        let key = run.key;
        let doc = &run.page.twiml;
        let body = self.sms.then(|| run.page.sms.clone());
        let mut p = Progress::default();
        let mut start: Position = (1, 0);
        if let Some(notes) = Notes::left_off(run.previous, ctx.kept_progress().as_ref()) {
            match self.too_old(run, &notes) {
                Some(age) if notes.calls.is_empty() && !notes.texted.is_empty() => ctx.log.info(format!(
                    "{key}: the texts of a run that ended mid-way before it placed a call, {age} s ago, are older than refresh: paging afresh"
                )),
                Some(_) if notes.calls.is_empty() => ctx.log.info(format!("{key}: a run that ended mid-way placed no call: paging afresh")),
                Some(age) => {
                    ctx.log.info(format!("{key}: the calls of a run that ended mid-way {age} s ago are older than refresh: paging afresh"))
                }
                None => match self.carry_on(ctx, run, order, notes, &mut p) {
                    Ok(from) => start = from,
                    Err(ended) => return ended,
                },
            }
        }
        for round in start.0..=self.rounds {
            let mut placed = 0;
            let skip = if round == start.0 { start.1 } else { 0 };
            for (position, r) in order.iter().enumerate().skip(skip) {
                if let Some(ended) = self.halted(ctx, run, &p) {
                    return ended;
                }
                if ctx.deadline.remaining() <= self.room_to_call(run) {
                    return self.out_of_time(ctx, &p, None);
                }
                if let Some(ended) = self.wait_unsettled(ctx, run, &mut p, r) {
                    return ended;
                }
                // A text that surely did not go out is tried again before the person's next
                // call; one Twilio may have taken (no answer), one spooled (the flush sends it)
                // and one refused for good (a number that replied STOP, or is not valid) are
                // not: a person gets the page's text once. It is noted before it goes out, so
                // that a run carrying this one on (this process killed before the call's note)
                // does not text that person again either.
                if let Some(body) = &body {
                    self.text_once(ctx, &mut p, r, body);
                }
                if p.capped.contains(&r.phone) {
                    continue;
                }
                let Some(slot) = self.take_slot(ctx, r) else {
                    // Over a cap: texted at their turn instead (SMS is not capped), once per
                    // run; a text that failed is counted with the run's failures.
                    p.capped.insert(r.phone.clone());
                    if let Some(failure) = self.text_once(ctx, &mut p, r, body.as_deref().unwrap_or(&run.page.sms)) {
                        p.failures.push(failure);
                    }
                    continue;
                };
                // Noted before it goes out, and again with its SID: a run that dies in between
                // leaves a call of unknown fate, never a call nobody knows of.
                let at = common::clock::now_unix();
                let attempt = format!("{}:{}:{}", ctx.token().unwrap_or("-"), r.phone, p.placed.len() + 1);
                p.placed.push(NotedCall {
                    phone: r.phone.clone(),
                    name: r.name.clone(),
                    round,
                    at,
                    sid: None,
                    attempt: Some(attempt.clone()),
                    ringing_until: None,
                    position: Some(position),
                });
                // A call noted nowhere (no ledger, and the spool entry cannot be written) is
                // followed to its end or not placed: the next flush would not know of it, and
                // would ring the same phone again while it still rings.
                if !self.note(ctx, &p) && run.flush && ctx.deadline.remaining() < self.room_to_follow() {
                    p.placed.pop();
                    self.give_back(ctx, r, slot);
                    return self.cannot_note(ctx, &p, r);
                }
                self.note_attempt(ctx, r, &attempt, None);
                // A resolve or acknowledge recorded meanwhile (while the person was texted, or the
                // create is tried again: 429s, 5xx that ListCall shows placed nothing) ends the
                // run before the call goes out.
                let halt = Cell::new(None);
                let halted = || {
                    let ended = self.halted(ctx, run, &p)?;
                    halt.set(Some(ended));
                    Some("the run was stopped meanwhile".to_string())
                };
                let tried = self.place_or_find(ctx, run, r, doc, &p, &halted);
                if let Some(ended) = halt.take() {
                    self.give_back(ctx, r, slot);
                    self.not_placed(ctx, &mut p, r);
                    ctx.log.info(format!("call to {} not placed: the run was stopped while it was being tried again", r.label()));
                    return ended;
                }
                let sid = match tried {
                    Outcome::Delivered(Some(sid)) => sid,
                    Outcome::Delivered(None) => {
                        ctx.log.error(format!("call to {} was accepted without a call SID; cannot follow it, calling the next", r.label()));
                        self.pass_over(ctx, &mut p, &r.phone, at);
                        placed += 1;
                        continue;
                    }
                    // Sent, no answer: Twilio may have placed it. Never sent again blindly (the
                    // phone would ring twice, and a call nobody noted could be taken for another
                    // incident's): its attempt stays noted with no SID, the number is held while
                    // that call could ring, and the run goes on with the next person.
                    Outcome::Retry(retry) if retry.fate == Fate::Unknown && ctx.deadline.remaining() > self.room_to_call(run) => {
                        ctx.log.error(format!("call to {}: {}; its fate is unknown, calling the next", r.label(), retry.reason));
                        p.outcomes.push(format!("{}: status unknown", r.label()));
                        self.pass_over(ctx, &mut p, &r.phone, at);
                        placed += 1;
                        continue;
                    }
                    // Twilio cannot be reached (refused connections, 5xx on every try) until the
                    // deadline: the run cannot go on now. A call surely not placed is dropped
                    // from the notes (its slot given back); one of unknown fate stays noted, for
                    // a lookup before that person is called again.
                    Outcome::Retry(retry) => {
                        if retry.fate == Fate::NotSent {
                            self.give_back(ctx, r, slot);
                            self.not_placed(ctx, &mut p, r);
                        }
                        ctx.log.error(format!("call to {} failed: {}", r.label(), retry.reason));
                        return self.unreachable(ctx, &p, &retry.reason);
                    }
                    f => {
                        self.give_back(ctx, r, slot);
                        self.not_placed(ctx, &mut p, r);
                        ctx.log.error(format!("call to {} failed: {}", r.label(), f.reason().unwrap_or("")));
                        p.failures.push(f.failure().unwrap_or(Outcome::Skipped(String::new())));
                        continue;
                    }
                };
                placed += 1;
                self.placed_as(ctx, &mut p, r, &sid);
                let n = p.calls().len();
                ctx.log.debug(format!("round {round}: call {n} to {} is {sid}", r.label()));
                let followed = self.follow(ctx, run.event_time, &sid, r);
                if let Some(ended) = self.settle(ctx, run, &mut p, r, &sid, at, followed) {
                    return ended;
                }
            }
            if placed == 0 {
                break;
            }
        }
        if p.calls().is_empty() {
            if p.capped.is_empty()
                && let Some(failure) = Outcome::most_hopeful(std::mem::take(&mut p.failures))
            {
                // The run is over: the next event starts afresh.
                self.forget_progress(ctx);
                return Ended::Over(failure);
            }
            // Every recipient is over a cap, or was (the others' calls failed): the page is
            // texted to whoever has not had it (SMS is not capped), so that the cap limits how
            // often phones ring, never whether this incident reaches anyone (another
            // incident's storm filled the caps just now). Each text is noted before it goes
            // out, as in the loop above, and the notes are kept until the outcome is recorded:
            // a run carrying this one on (this process killed meanwhile) texts nobody again.
            let body = body.unwrap_or_else(|| run.page.sms.clone());
            let mut refused = std::mem::take(&mut p.failures);
            for r in order {
                refused.extend(self.text_once(ctx, &mut p, r, &body));
            }
            if p.messages.is_empty()
                && let Some(failure) = Outcome::most_hopeful(refused)
            {
                return match failure {
                    // Kept for the flush, with the notes of the texts that may have gone out.
                    Outcome::Retry(r) => self.unreachable(ctx, &p, &r.reason),
                    other => {
                        self.forget_progress(ctx);
                        Ended::Over(other)
                    }
                };
            }
            // The record of the delivery removes the notes.
            let why = if p.placed.is_empty() {
                "no call placed: every recipient is over the call cap".to_string()
            } else {
                format!("no call could be followed: {} of unknown fate, {} person(s) over the call cap", p.placed.len(), p.capped.len())
            };
            let detail = format!("({why}; {} SMS sent)", p.messages.len());
            return Ended::Over(Outcome::Delivered(Done { detail, refs: p.refs() }));
        }
        // The run is over: the next event starts afresh.
        self.forget_progress(ctx);
        let news = News::Nobody { people: p.called.len(), calls: p.calls().len(), after: p.paging_for(ctx) };
        self.announce(ctx, key, &run.page.subject, news);
        Ended::Nobody(format!(
            "nobody answered {} in {} round{}{}",
            p.calls_text(),
            self.rounds,
            if self.rounds == 1 { "" } else { "s" },
            p.outcomes_text()
        ))
    }

    /// The time following one call to its end may take: `ring_timeout` + 15 s, and a
    /// `poll_interval` to see it end.
    fn room_to_follow(&self) -> Duration {
        Duration::from_secs(self.ring_timeout + CALL_OVERHEAD_SECS) + self.poll_interval
    }

    /// A flush's run stops before calling `r`: the call could be noted nowhere (no ledger, and
    /// the run's spool entry cannot be written), and its share cannot follow the call to its
    /// end. Not over: the entry stays queued; a flush with a longer `--timeout`, or once the
    /// ledger or the spool can be written again, calls.
    fn cannot_note(&self, ctx: &Ctx<'_, Twilio>, p: &Progress, r: &Recipient) -> Ended {
        let reason = format!(
            "the call to {} can be noted neither in the ledger nor in the run's spool entry, and this flush's share ({} ms) cannot \
             follow it to its end ({} s): not placed, so that the next flush does not ring that phone again while it still rings; \
             a --flush with a --timeout of at least {} s, or a writable ledger or spool, carries the run on (after {}{})",
            r.label(),
            ctx.deadline.remaining().as_millis(),
            self.room_to_follow().as_secs_f64().ceil(),
            2 * self.room_to_follow().as_secs_f64().ceil() as u64 + 2,
            p.calls_text(),
            p.outcomes_text()
        );
        ctx.log.error(&reason);
        Ended::Unfinished { reason, unreachable: false, progress: self.progress_of(ctx, p) }
    }

    /// The time the run needs left to place a call: two `poll_interval`s for an event's run (to
    /// follow it too), at most [`FLUSH_ROOM_TO_CALL`] for a flush's.
    fn room_to_call(&self, run: &Run<'_>) -> Duration {
        let room = self.poll_interval * 2;
        if run.flush { room.min(FLUSH_ROOM_TO_CALL) } else { room }
    }

    /// Whether the notes of a run that ended mid-way are too old to carry on from: their last
    /// call was placed at least the incident's `refresh` ago (a page is due again now; what
    /// that run reached counted for its own time) and can no longer ring (`ring_timeout` +
    /// 15 s). The age in seconds when so. Notes without a call are too old once their last
    /// text was noted `refresh` ago (texts of this page: the people texted are not texted
    /// again), and always (0) without a text either.
    fn too_old(&self, run: &Run<'_>, notes: &Notes) -> Option<u64> {
        let refresh = common::filter::refresh_or(run.page.refresh, self.refresh);
        // Notes without a call (the one being placed was refused) carry nothing to follow.
        let Some(last) = notes.calls.last() else {
            let at = notes.texted_at.filter(|_| !notes.texted.is_empty());
            return at.map_or(Some(0), |at| {
                let age = common::clock::age(at, common::clock::now_unix());
                (age >= refresh.as_secs()).then_some(age)
            });
        };
        let age = common::clock::age(last.at, common::clock::now_unix());
        (age >= refresh.as_secs().max(self.ring_timeout + CALL_OVERHEAD_SECS)).then_some(age)
    }

    /// Carry on from `notes`, what a run that ended mid-way did: its calls count as this run's,
    /// and its last call is followed — answered, the run is over (`Err` with the outcome); not
    /// answered, the run goes on with the next person (`Ok` with where). A last call whose
    /// create request was in flight is looked up first (ListCall, [`Twilio::look_up`]): found,
    /// it is followed; surely not placed, that person is called now. One whose fate stays
    /// unknown (the lookup or its status checks fail) is passed over: the next person is
    /// called, and that number not again while the call may still ring (a page twice rather
    /// than none, never one phone rung twice at once).
    fn carry_on(
        &self,
        ctx: &Ctx<'_, Twilio>,
        run: &Run<'_>,
        order: &[Recipient],
        notes: Notes,
        p: &mut Progress,
    ) -> Result<Position, Ended> {
        p.called = notes.calls.iter().map(|c| c.phone.clone()).collect();
        p.messages = notes.messages;
        p.texted = notes.texted.into_iter().collect();
        p.texted_at = notes.texted_at;
        p.placed = notes.calls;
        // Calls it passed over that may still ring hold their numbers here too.
        p.unsettled = p.placed.iter().filter_map(|c| Some((c.phone.clone(), c.ringing_until?))).collect();
        p.written.set(notes.written);
        // From now on they are this run's notes.
        self.note(ctx, p);
        let Some(last) = p.placed.last().cloned() else {
            ctx.log.warn(format!(
                "{}: carrying on from a run that ended mid-way (no call placed, {} person(s) texted, not texted again)",
                run.key,
                p.texted.len()
            ));
            return Ok((1, 0));
        };
        // Where it was called in the order, while the order still has that number there (else
        // where the number is now).
        let index = last
            .position
            .filter(|&i| order.get(i).is_some_and(|r| r.phone == last.phone))
            .or_else(|| order.iter().position(|r| r.phone == last.phone));
        let r = index.map_or_else(|| Recipient { name: last.name.clone(), phone: last.phone.clone() }, |i| order[i].clone());
        let next = match index {
            Some(i) if i + 1 < order.len() => (last.round, i + 1),
            Some(_) => (last.round + 1, 0),
            None => (last.round, 0),
        };
        let what = last.sid.as_deref().map_or_else(|| "its fate unknown".to_string(), |sid| format!("call {sid}"));
        ctx.log.warn(format!(
            "{}: carrying on from a run that ended mid-way ({} call{} placed, the last to {}: {what})",
            run.key,
            p.placed.len(),
            if p.placed.len() == 1 { "" } else { "s" },
            r.label()
        ));
        let sid = match last.sid.clone() {
            Some(sid) => {
                // Its SID may not have been noted per recipient yet when the run ended.
                if let Some(attempt) = &last.attempt {
                    self.note_attempt(ctx, &r, attempt, Some(&sid));
                }
                sid
            }
            None => match self.look_up(ctx, &r, &last, p) {
                Ok(Some(sid)) => {
                    ctx.log.info(format!("ListCall has the call to {} that was being placed: {sid}", r.label()));
                    self.placed_as(ctx, p, &r, &sid);
                    sid
                }
                Ok(None) => {
                    ctx.log.info(format!("ListCall has no call to {} since it was being placed: calling them now", r.label()));
                    self.not_placed(ctx, p, &r);
                    return Ok((last.round, index.unwrap_or(0)));
                }
                Err(reason) => {
                    ctx.log.error(format!("cannot look up the call to {} that was being placed ({reason}); calling the next", r.label()));
                    p.outcomes.push(format!("{}: status unknown", r.label()));
                    self.pass_over(ctx, p, &r.phone, last.at);
                    return Ok(next);
                }
            },
        };
        let followed = self.follow(ctx, run.event_time, &sid, &r);
        match self.settle(ctx, run, p, &r, &sid, last.at, followed) {
            Some(ended) => Err(ended),
            None => Ok(next),
        }
    }

    /// What following call `sid` to `r` (placed at `at`, Unix seconds) means for the run:
    /// `Some` outcome when the run is over (answered, stopped, out of time), `None` to call the
    /// next person.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        ctx: &Ctx<'_, Twilio>,
        run: &Run<'_>,
        p: &mut Progress,
        r: &Recipient,
        sid: &str,
        at: u64,
        followed: Followed,
    ) -> Option<Ended> {
        let calls = p.calls();
        let n = calls.iter().position(|s| *s == sid).map_or(calls.len(), |i| i + 1);
        match followed {
            Followed::Answered(st) => {
                ctx.log.info(format!("call {n} to {}: {}", r.label(), st.describe()));
                let mut refs = p.refs();
                refs.insert(ANSWERED.into(), json!({"sid": sid, "phone": r.phone, "name": r.name}));
                let detail = format!("(answered by {} on call {n}: {})", r.label(), p.calls_text());
                self.announce(ctx, run.key, &run.page.subject, News::Answered { who: r, after: p.paging_for(ctx) });
                Some(Ended::Over(Outcome::Delivered(Done { detail, refs })))
            }
            Followed::NotAnswered(st) => {
                ctx.log.info(format!("call {n} to {}: {}", r.label(), st.describe()));
                p.outcomes.push(format!("{}: {}", r.label(), st.describe()));
                None
            }
            Followed::Stopped(st, stop) => {
                if matches!(st.status.as_str(), "queued" | "ringing") {
                    self.cancel(ctx, sid, r);
                }
                Some(Ended::Stopped(self.stopped(ctx, run.key, stop, p)))
            }
            // Cancelled: the invocation holding the incident now may call the same person
            // (a restarted Redis lost the notes of this call).
            Followed::HandedOver(st, why) => {
                if matches!(st.status.as_str(), "queued" | "ringing") {
                    self.cancel(ctx, sid, r);
                }
                Some(self.handed_over(why, p))
            }
            Followed::OutOfTime(st) => Some(self.out_of_time(ctx, p, Some((r, st)))),
            Followed::Lost(reason) => {
                ctx.log.error(format!("cannot follow call {n} to {} ({reason}); calling the next", r.label()));
                p.outcomes.push(format!("{}: status unknown", r.label()));
                self.pass_over(ctx, p, &r.phone, at);
                None
            }
        }
    }

    /// Whether the run must end before its next call: a resolve or acknowledge asked it to
    /// stop, or its hold of the incident was lost to another invocation (how it ended, after
    /// the calls of `p`).
    fn halted(&self, ctx: &Ctx<'_, Twilio>, run: &Run<'_>, p: &Progress) -> Option<Ended> {
        if let Some(stop) = ctx.stop_requested(run.event_time) {
            return Some(Ended::Stopped(self.stopped(ctx, run.key, stop, p)));
        }
        ctx.hold_lost().map(|why| self.handed_over(why, p))
    }

    /// Pass over the call to `phone` placed at `at` whose fate is unknown: that number is not
    /// called again while the call may still ring (`ring_timeout` + 15 s), noted with the call
    /// ([`NotedCall::ringing_until`]) for a run that carries this one on.
    fn pass_over(&self, ctx: &Ctx<'_, Twilio>, p: &mut Progress, phone: &str, at: u64) {
        let until = at + self.ring_timeout + CALL_OVERHEAD_SECS;
        p.unsettled.push((phone.to_string(), until));
        if let Some(noted) = p.placed.iter_mut().rev().find(|c| c.phone == phone && c.at == at) {
            noted.ringing_until = Some(until);
            self.note(ctx, p);
        }
    }

    /// Before calling `r`: while a call to the same number whose fate is unknown may still ring,
    /// wait (a stop request or the deadline ends the run: `Some`).
    fn wait_unsettled(&self, ctx: &Ctx<'_, Twilio>, run: &Run<'_>, p: &mut Progress, r: &Recipient) -> Option<Ended> {
        let until = p.unsettled.iter().filter(|(phone, _)| *phone == r.phone).map(|(_, t)| *t).max()?;
        p.unsettled.retain(|(phone, _)| *phone != r.phone);
        let now = common::clock::now_unix();
        if until <= now {
            return None;
        }
        ctx.log.info(format!(
            "waiting up to {} s before calling {}: an earlier call to that number may still ring",
            until - now,
            r.label()
        ));
        while common::clock::now_unix() < until {
            if let Some(ended) = self.halted(ctx, run, p) {
                return Some(ended);
            }
            if ctx.deadline.remaining() <= self.room_to_call(run) {
                return Some(self.out_of_time(ctx, p, None));
            }
            common::lease::sleep(self.poll_interval);
        }
        None
    }

    /// Whether Twilio placed the call to `r` noted in `last` whose create request was in flight
    /// when its run ended: ListCall (`GET …/Calls.json?To=…&From=…`, the calls queued and those
    /// started since, [`Twilio::calls_since`]) read as for
    /// a broadcast call of unknown fate ([`Placed::of`]): `Ok(Some(sid))` when it is known to
    /// be that call, `Ok(None)` when no call to that number that pagerpipe does not know of
    /// was made since (not placed).
    ///
    /// Errors: the lookup failed, or it cannot tell which call is its own, or whether there is
    /// one (calls to that number by other incidents' attempts of unknown fate) — the reason.
    fn look_up(&self, ctx: &Ctx<'_, Twilio>, r: &Recipient, last: &NotedCall, p: &Progress) -> Result<Option<String>, String> {
        use common::pipeline::Provider as _;
        let create = Create { resource: Resource::Calls, form: self.call_form(r, "") };
        let first = self.lookup(&Payload::Create(create.clone()), last.at).ok_or("no lookup for calls")?;
        // Every page of both lists ([`Twilio::calls_since`]): the call may be on any of them.
        let fetch = |req: &Request| match self.exchange(ctx, req, r, &Self::short(ctx)) {
            Outcome::Delivered(resp) => Ok(resp),
            f => Err(f.reason().unwrap_or("no answer").to_string()),
        };
        let pages = common::pipeline::read_pages(first, fetch, |pages| self.calls_since(&create, last.at, pages))?;
        let mut known = ctx.store.map(|s| self.known(s)).unwrap_or_default();
        known.insert(CALL_SIDS.into(), json!(p.calls()));
        match Placed::of(&create, &pages, last.at, &known, last.attempt.as_deref()).ok_or("the answer holds no list of calls")? {
            Placed::No => Ok(None),
            Placed::Yes(Some(sid)) => Ok(Some(sid)),
            Placed::Yes(None) => Err("it was placed, but which of the calls to that number is its own cannot be told".to_string()),
            Placed::TooOld => Err("it was being placed too long ago to be told apart from other calls".to_string()),
            Placed::CannotTell { calls, attempts } => {
                Err(format!("{calls} call(s) to that number are not known, and {attempts} attempts to call it are unanswered"))
            }
        }
    }

    /// The call being placed, the last of `p.placed` (noted with no SID before its create
    /// request went out), to `r` is call `sid`: the record's notes are rewritten with the SID
    /// first, then its attempt is noted with the SID per recipient ([`Twilio::note_attempt`]);
    /// with its SID it counts among the run's calls ([`Progress::calls`]), and `r`'s number
    /// among those called. In that order: a run killed between the two writes leaves the SID in
    /// the record, and the next holder notes it per recipient again when it carries on
    /// ([`Twilio::carry_on`]).
    fn placed_as(&self, ctx: &Ctx<'_, Twilio>, p: &mut Progress, r: &Recipient, sid: &str) {
        let Some(noted) = p.placed.last_mut() else { return };
        noted.sid = Some(sid.to_string());
        let attempt = noted.attempt.clone();
        self.note(ctx, p);
        if let Some(attempt) = &attempt {
            self.note_attempt(ctx, r, attempt, Some(sid));
        }
        p.called.insert(r.phone.clone());
    }

    /// The call being placed, the last of `p.placed` (noted with no SID), to `r` surely did not
    /// go out: it is dropped from the record's notes first, then its attempt is forgotten per
    /// recipient ([`Twilio::forget_attempt`]); `r`'s number stays among those called only for
    /// another call to it. In that order: a run killed between the two writes leaves only its
    /// attempt noted per recipient with no SID, which lookups take as any attempt of unknown
    /// fate (`provider::SIDS_KEY`), never a record noting a call whose attempt is forgotten.
    fn not_placed(&self, ctx: &Ctx<'_, Twilio>, p: &mut Progress, r: &Recipient) {
        let Some(dropped) = p.placed.pop() else { return };
        if !p.placed.iter().any(|c| c.phone == dropped.phone) {
            p.called.remove(&dropped.phone);
        }
        self.note(ctx, p);
        if let Some(attempt) = &dropped.attempt {
            self.forget_attempt(ctx, r, attempt);
        }
    }

    /// Note attempt `attempt` to call `r` among the calls noted per recipient, with its SID
    /// once known (`provider::SIDS_KEY`: lookups of other incidents' calls then know it is not
    /// theirs). Best effort.
    fn note_attempt(&self, ctx: &Ctx<'_, Twilio>, r: &Recipient, attempt: &str, sid: Option<&str>) {
        if let Some(store) = ctx.store
            && let Err(e) = note_call(store, &r.phone, attempt, sid, common::clock::now_unix(), ctx.deadline.end_unix())
        {
            ctx.log.debug(format!("cannot note the call to {}: {e:#}", r.label()));
        }
    }

    /// Forget attempt `attempt` to call `r` (it was not placed). Best effort.
    fn forget_attempt(&self, ctx: &Ctx<'_, Twilio>, r: &Recipient, attempt: &str) {
        if let Some(store) = ctx.store
            && let Err(e) = forget_call(store, &r.phone, attempt)
        {
            ctx.log.debug(format!("cannot note the call to {}: {e:#}", r.label()));
        }
    }

    /// Text `r` the page's `body`, once per run: noted before it goes out (so that a run
    /// carrying this one on, this process killed meanwhile, texts nobody again, even one whose
    /// call was not noted yet), and taken back off the notes when it surely did not go out, so
    /// that it is tried again later. A text Twilio may have taken (sent, no answer) counts as
    /// sent; one refused for good (a number that replied STOP) is not tried again either.
    /// `None`: sent now, or texted before in this run; else why it failed (logged).
    fn text_once(&self, ctx: &Ctx<'_, Twilio>, p: &mut Progress, r: &Recipient, body: &str) -> Option<Outcome<Done>> {
        if !p.texted.insert(r.phone.clone()) {
            return None;
        }
        p.texted_at = Some(common::clock::now_unix());
        self.note(ctx, p);
        match self.text(ctx, r, body) {
            Outcome::Delivered(sid) => {
                p.messages.extend(sid);
                None
            }
            f => {
                if matches!(&f, Outcome::Retry(retry) if retry.fate == Fate::NotSent) {
                    p.texted.remove(&r.phone);
                    self.note(ctx, p);
                }
                ctx.log.error(format!("SMS to {} failed: {}", r.label(), f.reason().unwrap_or("")));
                Some(f.failure().unwrap_or(Outcome::Skipped(String::new())))
            }
        }
    }

    /// Write the run's progress notes into the incident's record, and into the run's spool
    /// entry when a flush carries it on ([`Ctx::note_progress`]; failures are logged): whether
    /// they were noted in at least one.
    fn note(&self, ctx: &Ctx<'_, Twilio>, p: &Progress) -> bool {
        let Some(token) = ctx.token() else { return false };
        p.written.set(p.written.get() + 1);
        ctx.note_progress(&p.progress(token))
    }

    /// Forget the progress notes (the run is over, or a dead run's was stopped).
    fn forget_progress(&self, ctx: &Ctx<'_, Twilio>) {
        if let Some(store) = ctx.store
            && let Err(e) = common::state::clear_progress(store, ctx.incident_key)
        {
            ctx.log.warn(format!("cannot clear the notes of the calls of {} in {}: {e:#}", ctx.incident_key, store.describe()));
        }
    }

    /// A resolve or acknowledge finding that a run ended mid-way ([`Notes`] in the incident's
    /// record `previous`):
    /// its last call, and the calls it passed over with their fate unknown that may still ring
    /// ([`NotedCall::ringing_until`]), are cancelled while they are still queued or ringing
    /// ([`Twilio::cancel_if_ringing`]), and the notes are forgotten. A text for the log line.
    pub(crate) fn stop_left_off(&self, ctx: &Ctx<'_, Twilio>, previous: Option<&Incident>) -> Option<String> {
        let notes = Notes::left_off(previous, None)?;
        let known = Progress { placed: notes.calls.clone(), ..Progress::default() };
        let now = common::clock::now_unix();
        let last = notes.calls.len().saturating_sub(1);
        let mut said = String::new();
        for (i, call) in notes.calls.iter().enumerate() {
            if i != last && !call.unsettled_at(now) {
                continue;
            }
            let who = Recipient { name: call.name.clone(), phone: call.phone.clone() }.label();
            match self.cancel_if_ringing(ctx, call, &known) {
                Some((sid, st)) if matches!(st.status.as_str(), "queued" | "ringing") => {
                    said.push_str(&format!("; cancelled call {sid} to {who}, placed by a run that ended mid-way"));
                }
                Some((sid, st)) if i == last => {
                    said.push_str(&format!("; the last call of a run that ended mid-way, {sid} to {who}, was {}", st.describe()));
                }
                _ => {}
            }
        }
        self.forget_progress(ctx);
        (!said.is_empty()).then_some(said)
    }

    /// Cancel `call`, noted among the calls of `p`, while it is still queued or ringing, as a
    /// resolve or acknowledge that stops its run does (`Status=canceled`; [`Twilio::cancel`]):
    /// the call of its SID, or for one whose create request was never answered the call
    /// ListCall finds ([`Twilio::look_up`]; its attempt is then noted with that SID per
    /// recipient, so that no lookup takes it for another's). The SID and the state the call
    /// was in before the cancel; `None` when there is no such call (surely not placed), or
    /// when it cannot be learned (logged: the lookup cannot tell, its status cannot be read).
    fn cancel_if_ringing(&self, ctx: &Ctx<'_, Twilio>, call: &NotedCall, p: &Progress) -> Option<(String, CallState)> {
        let r = Recipient { name: call.name.clone(), phone: call.phone.clone() };
        let sid = match &call.sid {
            Some(sid) => sid.clone(),
            None => match self.look_up(ctx, &r, call, p) {
                Ok(found) => {
                    let sid = found?;
                    ctx.log.info(format!("ListCall has the call to {} whose fate was unknown: {sid}", r.label()));
                    if let Some(attempt) = &call.attempt {
                        self.note_attempt(ctx, &r, attempt, Some(&sid));
                    }
                    sid
                }
                Err(reason) => {
                    ctx.log.warn(format!("cannot look up the call to {} whose fate is unknown, to cancel it: {reason}", r.label()));
                    return None;
                }
            },
        };
        match self.fetch(ctx, &sid, &r) {
            Ok(st) => {
                if matches!(st.status.as_str(), "queued" | "ringing") {
                    self.cancel(ctx, &sid, &r);
                }
                Some((sid, st))
            }
            Err((reason, _)) => {
                ctx.log.warn(format!("cannot read the status of call {sid} to {} to cancel it: {reason}", r.label()));
                None
            }
        }
    }

    /// Poll call `sid` to `r` until it has a verdict, a resolve or acknowledge asks the run for
    /// the event at `event_time` to stop, or time runs out.
    fn follow(&self, ctx: &Ctx<'_, Twilio>, event_time: u64, sid: &str, r: &Recipient) -> Followed {
        let amd = self.machine_detection.is_some();
        let mut last = CallState::queued();
        let mut failures = 0;
        loop {
            // Room for the wait and one status check (the HTTP client starts none with less
            // than its minimum attempt left): else the deadline, not the call, ends the run.
            if ctx.deadline.remaining() <= self.poll_interval + common::http::retry::MIN_ATTEMPT {
                return Followed::OutOfTime(last);
            }
            common::lease::sleep(self.poll_interval);
            if let Some(stop) = ctx.stop_requested(event_time) {
                return Followed::Stopped(last, stop);
            }
            if let Some(why) = ctx.hold_lost() {
                return Followed::HandedOver(last, why);
            }
            match self.fetch(ctx, sid, r) {
                Ok(st) => {
                    failures = 0;
                    if st != last {
                        ctx.log.debug(format!("call {sid} to {}: {}", r.label(), st.describe()));
                    }
                    last = st;
                    match last.verdict(amd) {
                        Verdict::Pending => {}
                        Verdict::Answered => return Followed::Answered(last),
                        Verdict::NotAnswered => return Followed::NotAnswered(last),
                    }
                }
                Err((reason, permanent)) => {
                    failures += 1;
                    if permanent || failures >= MAX_FETCH_FAILURES {
                        return Followed::Lost(reason);
                    }
                    ctx.log.warn(format!("status of call {sid} to {}: {reason}; asking again", r.label()));
                }
            }
        }
    }

    /// Send `req` about `r` (a status check, a cancel, a list), retried within `deadline`,
    /// answered as Twilio's errors are classified; failed attempts are logged at `debug`. Never
    /// spooled, unlike `Ctx::send`: in sequential mode a status asked late would be wrong.
    /// (Calls go out through [`Twilio::place_call`].)
    fn exchange(&self, ctx: &Ctx<'_, Twilio>, req: &Request, r: &Recipient, deadline: &Deadline) -> Outcome<Response> {
        let classify = |resp: &Response| self.classify_for(resp, r);
        let log = ctx.log;
        ctx.client.deliver(req, deadline, Fate::NotSent, &classify, &mut |l| log.debug(l)).map(|(resp, _)| resp)
    }

    /// A short deadline for one status check or cancel: [`REQUEST_TIMEOUT`] within what is left.
    fn short(ctx: &Ctx<'_, Twilio>) -> Deadline {
        Deadline::after(REQUEST_TIMEOUT.min(ctx.deadline.remaining()))
    }

    /// `POST …/Calls.json` for `r` speaking `doc`, retried within the run's deadline while it
    /// surely did not reach Twilio; the call SID. A try that may have reached it ends the
    /// delivery: [`Outcome::Retry`] with [`Fate::Unknown`], and `answered` holds the HTTP
    /// status when Twilio answered it (a 5xx: `provider::classify_call`), `None` when no
    /// answer came (sent, no answer in time).
    /// No try is made once `halted` gives a reason ([`Outcome::Skipped`]).
    fn place_call(
        &self,
        ctx: &Ctx<'_, Twilio>,
        r: &Recipient,
        doc: &str,
        answered: &Cell<Option<u16>>,
        halted: &dyn Fn() -> Option<String>,
    ) -> Outcome<Option<String>> {
        let req = self.request(Method::Post, "Calls.json", Body::Form(self.call_form(r, doc)));
        ctx.log.debug(format!("POST {} to {}", req.url, r.label()));
        let classify = |resp: &Response| {
            let outcome = ctx.spooled(resp, self.classify_call_for(resp, r));
            answered.set(matches!(&outcome, Outcome::Retry(retry) if retry.fate == Fate::Unknown).then_some(resp.status));
            outcome
        };
        let log = ctx.log;
        ctx.client.deliver_until_unknown_unless(&req, &ctx.deadline, halted, &classify, &mut |l| log.info(l)).map(|(response, _)| {
            serde_json::from_str::<Value>(&response.body).ok().and_then(|v| v.get("sid")?.as_str().map(str::to_string))
        })
    }

    /// Place the call to `r` noted last in `p` ([`Twilio::place_call`]). When Twilio answers
    /// its create with a 5xx, it may have placed the call all the same (a gateway error after
    /// the call was created): the call is looked up with ListCall at once ([`Twilio::look_up`],
    /// the answer came, so the create is no longer on its way) — found, its SID, to be followed
    /// as any call; surely not placed, it is placed again (as the same attempt), while the run
    /// has room for a call. One whose fate the lookup cannot tell, or that was never answered,
    /// stays [`Outcome::Retry`] with [`Fate::Unknown`] (the run passes that person over). No
    /// try after the first is made once `halted` gives a reason: [`Outcome::Skipped`], not
    /// placed.
    fn place_or_find(
        &self,
        ctx: &Ctx<'_, Twilio>,
        run: &Run<'_>,
        r: &Recipient,
        doc: &str,
        p: &Progress,
        halted: &dyn Fn() -> Option<String>,
    ) -> Outcome<Option<String>> {
        let mut pause = FIRST_PAUSE_AFTER_5XX;
        loop {
            let answered = Cell::new(None);
            let placed = self.place_call(ctx, r, doc, &answered, halted);
            let (Outcome::Retry(retry), Some(status), Some(last)) = (&placed, answered.get(), p.placed.last()) else { return placed };
            match self.look_up(ctx, r, last, p) {
                Ok(Some(sid)) => {
                    ctx.log.info(format!("ListCall has the call to {} that was answered HTTP {status}: {sid}", r.label()));
                    return Outcome::Delivered(Some(sid));
                }
                Ok(None) => {
                    let wait = retry.after.unwrap_or(pause);
                    let room = self.room_to_call(run).max(common::http::retry::MIN_ATTEMPT);
                    if ctx.deadline.remaining() <= room.saturating_add(wait) {
                        return Outcome::Retry(Retry { fate: Fate::NotSent, ..retry.clone() });
                    }
                    ctx.log.info(format!("ListCall has no call to {} since it was answered HTTP {status}: calling them again", r.label()));
                    common::lease::sleep(wait);
                    if let Some(why) = halted() {
                        return Outcome::Skipped(why);
                    }
                    // The lookup and the pause took longer than planned (a busy machine): no
                    // room is left for another try, and the reason stays Twilio's answer.
                    if ctx.deadline.remaining() <= room {
                        return Outcome::Retry(Retry { fate: Fate::NotSent, ..retry.clone() });
                    }
                    pause = (pause * 2).min(MAX_PAUSE_AFTER_5XX);
                }
                Err(reason) => {
                    return Outcome::Retry(Retry { reason: format!("{}; cannot look it up ({reason})", retry.reason), ..retry.clone() });
                }
            }
        }
    }

    /// One status check, `GET …/Calls/{sid}.json`. Errors: the reason, and whether it is permanent.
    ///
    /// `sid` comes from an answer (the create's, ListCall's) or the ledger: one that is no call
    /// SID (FetchCall's `Sid` is `^CA[0-9a-fA-F]{32}$` in the spec) is not put in a path (an
    /// answer never chooses where a request goes), and cannot be followed: permanent.
    pub(crate) fn fetch(&self, ctx: &Ctx<'_, Twilio>, sid: &str, r: &Recipient) -> Result<CallState, (String, bool)> {
        if !crate::provider::is_sid(sid, "CA") {
            return Err((format!("Twilio answered with {}, which is no call SID (CA and 32 hex digits)", shown_sid(sid)), true));
        }
        let req = self.request(Method::Get, &format!("Calls/{sid}.json"), Body::Empty);
        match self.exchange(ctx, &req, r, &Self::short(ctx)) {
            Outcome::Delivered(response) => {
                CallState::from_json(&response.body).ok_or_else(|| ("the answer holds no call status".to_string(), false))
            }
            f @ (Outcome::Retry(_) | Outcome::Spooled(_) | Outcome::Skipped(_)) => Err((f.reason().unwrap_or("").to_string(), false)),
            f => Err((f.reason().unwrap_or("").to_string(), true)),
        }
    }

    /// Cancel call `sid` to `r` while it is still queued or ringing (`Status=canceled`; Twilio
    /// ignores it once the call is answered). Best effort: a failure is logged.
    fn cancel(&self, ctx: &Ctx<'_, Twilio>, sid: &str, r: &Recipient) {
        // UpdateCall's `Sid` is `^CA[0-9a-fA-F]{32}$` (the spec), as for [`Twilio::fetch`].
        if !crate::provider::is_sid(sid, "CA") {
            ctx.log.warn(format!("cannot cancel the call to {}: {} is no call SID (CA and 32 hex digits)", r.label(), shown_sid(sid)));
            return;
        }
        let form = vec![("Status".to_string(), "canceled".to_string())];
        let req = self.request(Method::Post, &format!("Calls/{sid}.json"), Body::Form(form));
        match self.exchange(ctx, &req, r, &Self::short(ctx)) {
            Outcome::Delivered(_) => ctx.log.info(format!("cancelled the ringing call {sid} to {}", r.label())),
            f => ctx.log.warn(format!("cannot cancel the ringing call {sid} to {}: {}", r.label(), f.reason().unwrap_or(""))),
        }
    }

    /// The run stops after the calls of `p`: a resolve or acknowledge (`stop`) asked it to. The
    /// call it follows is cancelled by the caller; the calls it passed over with their fate
    /// unknown that may still ring ([`NotedCall::ringing_until`]: a create never answered, a
    /// status that could not be read) are cancelled here while queued or ringing
    /// ([`Twilio::cancel_if_ringing`], a create never answered looked up with ListCall
    /// first), so that no phone of the incident rings after its recovery or acknowledgement.
    /// The record's `call_sids` include the calls found so.
    fn stopped(&self, ctx: &Ctx<'_, Twilio>, key: &str, stop: Stop, p: &Progress) -> Done {
        let by = match stop.action {
            common::filter::Action::Acknowledge => "acknowledged",
            _ => "resolved",
        };
        let now = common::clock::now_unix();
        let mut sids: Vec<String> = Vec::new();
        let mut cancelled = String::new();
        for call in &p.placed {
            let found = if call.unsettled_at(now) { self.cancel_if_ringing(ctx, call, p) } else { None };
            if let Some((sid, st)) = &found
                && matches!(st.status.as_str(), "queued" | "ringing")
            {
                let who = Recipient { name: call.name.clone(), phone: call.phone.clone() }.label();
                cancelled.push_str(&format!("; cancelled call {sid} to {who}, of unknown fate"));
            }
            sids.extend(call.sid.clone().or(found.map(|(sid, _)| sid)));
        }
        let detail = format!("(stopped: {key} was {by} meanwhile; {}{}{cancelled})", p.calls_text(), p.outcomes_text());
        let mut refs = p.refs();
        if !sids.is_empty() {
            refs.insert(CALL_SIDS.into(), json!(sids));
        }
        Done { detail, refs }
    }

    /// The run's hold was lost to another invocation (`why`, [`Ctx::hold_lost`]) after the
    /// calls of `p`: it ends here, and its notes stay in the record for the new holder.
    fn handed_over(&self, why: String, p: &Progress) -> Ended {
        Ended::HandedOver(format!(
            "{why}; this run places no further call and cancels one still ringing (after {}{}), so that nobody is called by \
             two runs at once: the invocation holding the incident pages, carrying on from the calls noted in its record",
            p.calls_text(),
            p.outcomes_text()
        ))
    }

    fn out_of_time(&self, ctx: &Ctx<'_, Twilio>, p: &Progress, ringing: Option<(&Recipient, CallState)>) -> Ended {
        let now = match ringing {
            Some((r, st)) => format!("; the call to {} was still {}", r.label(), st.status),
            None => String::new(),
        };
        let reason = format!(
            "the deadline ran out in sequential mode after {} ms and {}{}{now}; nobody answered yet (a longer --timeout lets the run finish, see docs/twilio.md)",
            ctx.deadline.elapsed().as_millis(),
            p.calls_text(),
            p.outcomes_text()
        );
        Ended::Unfinished { reason, unreachable: false, progress: self.progress_of(ctx, p) }
    }

    /// The notes of `p` for the run's spool entry; `None` when it placed no call and texted
    /// nobody (nothing to carry on from) or in a dry run.
    fn progress_of(&self, ctx: &Ctx<'_, Twilio>, p: &Progress) -> Option<common::state::Progress> {
        let token = ctx.token()?;
        (!p.placed.is_empty() || !p.texted.is_empty()).then(|| p.progress(token))
    }

    /// Twilio could not be reached (`why`) after the calls of `p`.
    fn unreachable(&self, ctx: &Ctx<'_, Twilio>, p: &Progress, why: &str) -> Ended {
        let reason = format!(
            "Twilio cannot be reached in sequential mode ({why}) after {} ms and {}{}; nobody answered yet",
            ctx.deadline.elapsed().as_millis(),
            p.calls_text(),
            p.outcomes_text()
        );
        Ended::Unfinished { reason, unreachable: true, progress: self.progress_of(ctx, p) }
    }
}

/// A SID from an answer as a log line shows it: at most 40 characters, control characters
/// escaped.
fn shown_sid(sid: &str) -> String {
    format!("{:?}", common::template::truncate_chars(sid, 40))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(status: &str, duration: Option<u64>, answered_by: Option<&str>) -> CallState {
        CallState { status: status.into(), duration, answered_by: answered_by.map(str::to_string) }
    }

    #[test]
    fn who_answered() {
        use Verdict::*;
        for (state, plain, amd) in [
            (st("queued", None, None), Pending, Pending),
            (st("ringing", None, None), Pending, Pending),
            (st("in-progress", None, None), Answered, Pending),
            (st("in-progress", None, Some("human")), Answered, Answered),
            (st("in-progress", None, Some("machine_start")), NotAnswered, NotAnswered),
            (st("completed", Some(12), None), Answered, Answered),
            (st("completed", Some(0), None), NotAnswered, NotAnswered),
            (st("completed", None, None), NotAnswered, NotAnswered),
            (st("completed", Some(20), Some("machine_end_beep")), NotAnswered, NotAnswered),
            (st("completed", Some(20), Some("fax")), NotAnswered, NotAnswered),
            (st("completed", Some(20), Some("unknown")), NotAnswered, NotAnswered),
            (st("completed", Some(20), Some("human")), Answered, Answered),
            (st("busy", None, None), NotAnswered, NotAnswered),
            (st("no-answer", None, None), NotAnswered, NotAnswered),
            (st("failed", None, None), NotAnswered, NotAnswered),
            (st("canceled", None, None), NotAnswered, NotAnswered),
        ] {
            assert_eq!((state.verdict(false), state.verdict(true)), (plain, amd), "{state:?}");
        }
    }

    /// Notes of `calls` calls to `phone`, written `written` times, as run `token` keeps them.
    fn noted(token: &str, phone: &str, calls: usize, written: u64) -> common::state::Progress {
        let call =
            NotedCall { phone: phone.into(), name: None, round: 1, at: 1, sid: None, attempt: None, ringing_until: None, position: None };
        let notes = Notes { calls: vec![call; calls], messages: vec![], texted: vec![], texted_at: None, written };
        common::state::Progress { token: token.into(), notes: serde_json::to_value(notes).unwrap() }
    }

    fn record(progress: common::state::Progress) -> Incident {
        Incident { progress: Some(progress), ..Incident::default() }
    }

    /// Of the copies in the record and in the spool entry, the run's own written last is read:
    /// a note write that failed in one (Redis refusing it, a full spool) leaves the other ahead.
    #[test]
    fn the_notes_written_last_are_carried_on() {
        let calls = |n: Option<Notes>| n.map(|n| (n.calls.len(), n.calls[0].phone.clone()));
        // No entry copy (an event's run): the record's.
        assert_eq!(calls(Notes::left_off(Some(&record(noted("t", "+1", 2, 4))), None)), Some((2, "+1".into())));
        // No record (no ledger): the entry's.
        assert_eq!(calls(Notes::left_off(None, Some(&noted("t", "+2", 1, 2)))), Some((1, "+2".into())));
        // The record's write of the last call failed: the entry is ahead.
        let rec = record(noted("t", "+1", 1, 2));
        assert_eq!(calls(Notes::left_off(Some(&rec), Some(&noted("t", "+2", 2, 3)))), Some((2, "+2".into())));
        // The entry's rewrite failed: the record is ahead (or level: the record's).
        let rec = record(noted("t", "+1", 3, 5));
        assert_eq!(calls(Notes::left_off(Some(&rec), Some(&noted("t", "+2", 2, 3)))), Some((3, "+1".into())));
        assert_eq!(calls(Notes::left_off(Some(&rec), Some(&noted("t", "+2", 3, 5)))), Some((3, "+1".into())));
        // Another run's notes in the record: the entry's own.
        let rec = record(noted("other", "+1", 4, 9));
        assert_eq!(calls(Notes::left_off(Some(&rec), Some(&noted("t", "+2", 1, 2)))), Some((1, "+2".into())));
    }

    #[test]
    fn call_resources_are_read_as_twilio_sends_them() {
        let body = r#"{"sid": "CA1", "status": "completed", "duration": "4", "answered_by": "machine_start"}"#;
        assert_eq!(CallState::from_json(body), Some(st("completed", Some(4), Some("machine_start"))));
        let body = r#"{"sid": "CA1", "status": "ringing", "duration": null, "answered_by": null}"#;
        assert_eq!(CallState::from_json(body), Some(st("ringing", None, None)));
        assert_eq!(CallState::from_json(r#"{"sid": "CA1"}"#), None);
        assert_eq!(CallState::from_json("<html>"), None);
        assert_eq!(st("completed", Some(12), Some("human")).describe(), "completed after 12 s, answered by human");
        assert_eq!(st("no-answer", Some(0), None).describe(), "no-answer");
    }
}
