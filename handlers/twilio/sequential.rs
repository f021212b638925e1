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
//! (`POST …/Calls/{Sid}.json` `Status=canceled`). The whole run is bounded by `--timeout`.
//!
//! Outcomes: answered, or stopped by a resolve or acknowledge → delivered (exit 0; the call
//! SIDs and who answered are stored with the incident); nobody answered after every round, or
//! the deadline ran out first → not delivered yet (exit 75; nothing is recorded, so the next
//! event for it calls again, within the call caps); no call possible because every recipient
//! is over a cap → delivered with a warning (they were called repeatedly just now).
//! With `sms` in `channels` each person is texted right before their first call, so nobody
//! after the one who answers is disturbed.

use std::collections::HashSet;
use std::time::Duration;

use common::http::{Body, Deadline, Method, Request, Response};
use common::outcome::{Fate, Outcome, Retry};
use common::pipeline::{Ctx, Done, Job};
use common::state::Stop;
use serde_json::{Map, Value, json};

use crate::announce::News;
use crate::provider::{ANSWERED, CALL_SIDS, MESSAGE_SIDS, Recipient, Twilio};

/// Call statuses after which Twilio does nothing more with a call (`call_enum_status` in the
/// spec; Twilio's "Call Status Values").
pub const FINAL: [&str; 5] = ["completed", "busy", "failed", "no-answer", "canceled"];

/// Consecutive failed status fetches after which a call is given up on (and the next person
/// is called).
const MAX_FETCH_FAILURES: u32 = 5;

/// Longest time spent on one status check or cancel request, retries included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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
    OutOfTime(CallState),
    /// The call's status could not be learned (the reason).
    Lost(String),
}

/// What a sequential run has done so far.
#[derive(Default)]
struct Progress {
    calls: Vec<String>,
    /// The numbers called (for the announcement).
    called: HashSet<String>,
    messages: Vec<String>,
    texted: HashSet<String>,
    capped: HashSet<String>,
    /// `Bob +1…: busy` per finished call.
    outcomes: Vec<String>,
    failures: Vec<Outcome<Done>>,
}

impl Progress {
    fn refs(&self) -> Map<String, Value> {
        let mut refs = Map::new();
        for (key, sids) in [(CALL_SIDS, &self.calls), (MESSAGE_SIDS, &self.messages)] {
            if !sids.is_empty() {
                refs.insert(key.into(), sids.clone().into());
            }
        }
        refs
    }

    fn calls_text(&self) -> String {
        match self.calls.len() {
            0 => "no call".into(),
            1 => format!("call {}", self.calls[0]),
            _ => format!("calls {}", self.calls.join(", ")),
        }
    }

    fn outcomes_text(&self) -> String {
        if self.outcomes.is_empty() { String::new() } else { format!(" ({})", self.outcomes.join("; ")) }
    }
}

impl Twilio {
    /// Run sequential mode for a trigger: call `order` one at a time, as the module explains.
    pub(crate) fn sequential(&self, ctx: &Ctx<'_, Twilio>, job: &Job<'_>, order: &[Recipient]) -> Outcome<Done> {
        let key = job.incident_key;
        let doc = self.twiml(job.event, key);
        let body = self.sms.then(|| self.sms_body(job.event));
        let mut p = Progress::default();
        for round in 1..=self.rounds {
            let mut placed = 0;
            for r in order {
                if let Some(stop) = ctx.stop_requested(job.event_time) {
                    return Outcome::Delivered(self.stopped(key, stop, &p));
                }
                if ctx.deadline.remaining() <= self.poll_interval * 2 {
                    return self.out_of_time(ctx, &p, None);
                }
                if let Some(body) = &body
                    && p.texted.insert(r.phone.clone())
                {
                    match self.text(ctx, r, body) {
                        Outcome::Delivered(sid) => p.messages.extend(sid),
                        f => ctx.log.error(format!("SMS to {} failed: {}", r.label(), f.reason().unwrap_or(""))),
                    }
                }
                if p.capped.contains(&r.phone) {
                    continue;
                }
                let Some(slot) = self.take_slot(ctx, r) else {
                    p.capped.insert(r.phone.clone());
                    continue;
                };
                let sid = match self.place_call(ctx, r, &doc) {
                    Outcome::Delivered(Some(sid)) => sid,
                    Outcome::Delivered(None) => {
                        ctx.log.error(format!("call to {} was accepted without a call SID; cannot follow it, calling the next", r.label()));
                        placed += 1;
                        continue;
                    }
                    f => {
                        let out_of_time = matches!(f, Outcome::Retry(_));
                        if !out_of_time {
                            self.give_back(ctx, r, slot);
                        }
                        ctx.log.error(format!("call to {} failed: {}", r.label(), f.reason().unwrap_or("")));
                        p.failures.push(f.failure().unwrap_or(Outcome::Skipped(String::new())));
                        if out_of_time {
                            return self.out_of_time(ctx, &p, None);
                        }
                        continue;
                    }
                };
                placed += 1;
                p.calls.push(sid.clone());
                p.called.insert(r.phone.clone());
                let n = p.calls.len();
                ctx.log.debug(format!("round {round}: call {n} to {} is {sid}", r.label()));
                match self.follow(ctx, job.event_time, &sid, r) {
                    Followed::Answered(st) => {
                        ctx.log.info(format!("call {n} to {}: {}", r.label(), st.describe()));
                        let mut refs = p.refs();
                        refs.insert(ANSWERED.into(), json!({"sid": sid, "phone": r.phone, "name": r.name}));
                        let detail = format!("(answered by {} on call {n}: {})", r.label(), p.calls_text());
                        self.announce(ctx, job, News::Answered { who: r, after: ctx.deadline.elapsed() });
                        return Outcome::Delivered(Done { detail, refs });
                    }
                    Followed::NotAnswered(st) => {
                        ctx.log.info(format!("call {n} to {}: {}", r.label(), st.describe()));
                        p.outcomes.push(format!("{}: {}", r.label(), st.describe()));
                    }
                    Followed::Stopped(st, stop) => {
                        if matches!(st.status.as_str(), "queued" | "ringing") {
                            self.cancel(ctx, &sid, r);
                        }
                        return Outcome::Delivered(self.stopped(key, stop, &p));
                    }
                    Followed::OutOfTime(st) => {
                        return self.out_of_time(ctx, &p, Some((r, st)));
                    }
                    Followed::Lost(reason) => {
                        ctx.log.error(format!("cannot follow call {n} to {} ({reason}); calling the next", r.label()));
                        p.outcomes.push(format!("{}: status unknown", r.label()));
                    }
                }
            }
            if placed == 0 {
                break;
            }
        }
        if p.calls.is_empty() {
            if !p.failures.is_empty() {
                p.failures.sort_by_key(Outcome::rank);
                return p.failures.swap_remove(0);
            }
            let detail = format!("(no call placed: every recipient is over the call cap; {} SMS sent)", p.messages.len());
            return Outcome::Delivered(Done { detail, refs: p.refs() });
        }
        self.announce(ctx, job, News::Nobody { people: p.called.len(), calls: p.calls.len(), after: ctx.deadline.elapsed() });
        Outcome::Retry(Retry::not_sent(format!(
            "nobody answered {} in {} round{}{}",
            p.calls_text(),
            self.rounds,
            if self.rounds == 1 { "" } else { "s" },
            p.outcomes_text()
        )))
    }

    /// Poll call `sid` to `r` until it has a verdict, a resolve or acknowledge asks the run for
    /// the event at `event_time` to stop, or time runs out.
    fn follow(&self, ctx: &Ctx<'_, Twilio>, event_time: u64, sid: &str, r: &Recipient) -> Followed {
        let amd = self.machine_detection.is_some();
        let mut last = CallState::queued();
        let mut failures = 0;
        loop {
            if ctx.deadline.remaining() <= self.poll_interval {
                return Followed::OutOfTime(last);
            }
            std::thread::sleep(self.poll_interval);
            if let Some(stop) = ctx.stop_requested(event_time) {
                return Followed::Stopped(last, stop);
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

    /// Send `req` about `r`, retried within `deadline`, answered as Twilio's errors are
    /// classified. Never spooled, unlike `Ctx::send`: in sequential mode a call placed late, or
    /// a status asked late, would be wrong. Failed attempts are logged at `info` for a call,
    /// at `debug` for status checks.
    fn exchange(&self, ctx: &Ctx<'_, Twilio>, req: &Request, r: &Recipient, deadline: &Deadline, loud: bool) -> Outcome<Response> {
        let classify = |resp: &Response| self.classify_for(resp, r);
        let log = ctx.log;
        let mut line = |l: String| if loud { log.info(l) } else { log.debug(l) };
        ctx.client.deliver(req, deadline, Fate::NotSent, &classify, &mut line).map(|(resp, _)| resp)
    }

    /// A short deadline for one status check or cancel: [`REQUEST_TIMEOUT`] within what is left.
    fn short(ctx: &Ctx<'_, Twilio>) -> Deadline {
        Deadline::after(REQUEST_TIMEOUT.min(ctx.deadline.remaining()))
    }

    /// `POST …/Calls.json` for `r` speaking `doc`, retried within the run's deadline; the call SID.
    fn place_call(&self, ctx: &Ctx<'_, Twilio>, r: &Recipient, doc: &str) -> Outcome<Option<String>> {
        let req = self.request(Method::Post, "Calls.json", Body::Form(self.call_form(r, doc)));
        ctx.log.debug(format!("POST {} to {}", req.url, r.label()));
        self.exchange(ctx, &req, r, &ctx.deadline, true)
            .map(|response| serde_json::from_str::<Value>(&response.body).ok().and_then(|v| v.get("sid")?.as_str().map(str::to_string)))
    }

    /// One status check, `GET …/Calls/{sid}.json`. Errors: the reason, and whether it is permanent.
    pub(crate) fn fetch(&self, ctx: &Ctx<'_, Twilio>, sid: &str, r: &Recipient) -> Result<CallState, (String, bool)> {
        let req = self.request(Method::Get, &format!("Calls/{sid}.json"), Body::Empty);
        match self.exchange(ctx, &req, r, &Self::short(ctx), false) {
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
        let form = vec![("Status".to_string(), "canceled".to_string())];
        let req = self.request(Method::Post, &format!("Calls/{sid}.json"), Body::Form(form));
        match self.exchange(ctx, &req, r, &Self::short(ctx), false) {
            Outcome::Delivered(_) => ctx.log.info(format!("cancelled the ringing call {sid} to {}", r.label())),
            f => ctx.log.warn(format!("cannot cancel the ringing call {sid} to {}: {}", r.label(), f.reason().unwrap_or(""))),
        }
    }

    fn stopped(&self, key: &str, stop: Stop, p: &Progress) -> Done {
        let by = match stop.action {
            common::filter::Action::Acknowledge => "acknowledged",
            _ => "resolved",
        };
        let detail = format!("(stopped: {key} was {by} meanwhile; {}{})", p.calls_text(), p.outcomes_text());
        Done { detail, refs: p.refs() }
    }

    fn out_of_time(&self, ctx: &Ctx<'_, Twilio>, p: &Progress, ringing: Option<(&Recipient, CallState)>) -> Outcome<Done> {
        let now = match ringing {
            Some((r, st)) => format!("; the call to {} was still {}", r.label(), st.status),
            None => String::new(),
        };
        Outcome::Retry(Retry::not_sent(format!(
            "the deadline ran out in sequential mode after {} ms and {}{}{now}; nobody answered yet (a longer --timeout lets the run finish, see docs/twilio.md)",
            ctx.deadline.elapsed().as_millis(),
            p.calls_text(),
            p.outcomes_text()
        )))
    }
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
