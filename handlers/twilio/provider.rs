//! Twilio Programmable Voice and SMS (API 2010-04-01): what requests an event becomes, and
//! what a response means.
//!
//! Contract (`../shared/specs/twilio-api-v2010-calls-messages.json` and the notes in
//! `../shared/specs/README.md`): base URL `https://api.twilio.com`, HTTP Basic auth
//! (`AccountSid:AuthToken`, or `ApiKeySid:ApiKeySecret` with the account SID still in the
//! path), `application/x-www-form-urlencoded` bodies with PascalCase parameters, JSON answers.
//!
//! - **trigger**, `mode: broadcast` (the default): for every recipient, with `voice` in
//!   `channels` (the default), `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`
//!   `To, From, Twiml, Timeout[, MachineDetection]` — inline TwiML (never a `Url`: no callback
//!   server is needed) speaking the message, see [`crate::twiml`]; with `sms` in `channels`,
//!   `POST …/Messages.json` `To, From, Body` (≤ 1600 characters). The returned call and message
//!   SIDs are stored with the incident as `refs.call_sids` / `refs.message_sids`.
//! - **trigger**, `mode: sequential`: one call at a time until a person answers, see
//!   [`crate::sequential`]; a run that cannot finish is spooled whole ([`Payload::Sequence`])
//!   and carried on by a flush ([`Provider::resume`]).
//! - **resolve**: never a call; with `notify_on_resolve`, a `RESOLVED: …` SMS to everyone. A
//!   resolve of an incident nobody was paged for (no record) is skipped with that reason.
//! - **acknowledge** (Nagios ACKNOWLEDGEMENT): nothing is sent; it is recorded, and it stops a
//!   sequential run that is still calling (as a resolve does), on any host sharing the store.
//!   Behind the incident's older requests (still spooled, or another invocation delivering for
//!   it) it queues ([`Payload::Acknowledge`], exit 75), and a flush records it at its turn.
//!
//! A call whose fate is unknown (sent, no answer in time; or answered 5xx, which a gateway can
//! return after Twilio created the call: [`classify_call`]) is spooled as such; before it is
//! placed again the calls to its `To` from its `From` are listed (`GET …/Calls.json`, ListCall)
//! and it is not placed again when Twilio has one.
//!
//! The recipients' order is rotated daily with `rotation: daily` ([`crate::rotation`]), and
//! every call first takes a slot under the per-recipient caps ([`crate::caps`]); a call over a
//! cap is not placed (one log line). `--test` (the flag only: a settings file's `test` is
//! ignored) speaks and texts `test_message` instead of `message`.
//!
//! Every recipient is tried. When some are reached and others fail, the page counts as
//! delivered (the failures are logged as errors); when none is reached, the most hopeful
//! failure decides the exit code (75 if any is retryable, else 69/78). Twilio's error body
//! `{code, message, more_info, status}` is quoted: 401 / 20003 (authentication) and 21211 /
//! 21212 (invalid `To` / `From`, naming the number) are permanent (exit 69; a spooled call or
//! run a flush sends that is answered 401 is kept for the flush after the credentials are fixed:
//! [`common::http::spooled_outcome`]); 429 / 20429, and an SMS's 5xx, are retried within the
//! deadline (then exit 75); a call's 5xx is of unknown fate, looked up before it is placed again.

use std::time::Duration;

use base64::Engine as _;
use common::config::{self, Common, de};
use common::event::Event;
use common::exit::{Code, Result};
use common::filter::Action;
use common::http::{Body, Method, Request, Response, classify_json_api_with};
use common::outcome::{Outcome, Retry};
use common::pipeline::{Ctx, Done, Found, Job, Provider, Resumed};
use common::state::{Incident, NoRecord};
use common::template::{Template, says_nothing, truncate_chars, truncate_utf16};
use common::trust::Trust;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::caps::{self, Caps, Reservation};
use crate::rotation::Rotation;
use crate::twiml::{self, Speech};

/// Default base URL.
pub const API_URL: &str = "https://api.twilio.com";
/// Twilio's limit on an SMS `Body`: 1600 characters (error 21617 beyond), counted as UTF-16
/// code units ([`common::template::utf16_len`]: an emoji is two).
pub const MAX_SMS_CHARS: usize = 1600;
/// Largest ring timeout Twilio accepts, in seconds.
pub const MAX_RING_TIMEOUT: u64 = 600;
/// Key of the placed calls' SIDs in the state store's `refs`.
pub const CALL_SIDS: &str = "call_sids";
/// Key of the sent messages' SIDs in the state store's `refs`.
pub const MESSAGE_SIDS: &str = "message_sids";
/// Key of the call a person answered in sequential mode (`{sid, phone, name}`) in `refs`.
pub const ANSWERED: &str = "answered";
/// Seconds Twilio may add to the ring `Timeout` before it gives up on a call ("we will add a
/// 5-second buffer", the create-Call `Timeout` description in the spec), plus call set-up:
/// sequential mode needs at least `ring_timeout` + this per call.
pub const CALL_OVERHEAD_SECS: u64 = 15;

/// A Twilio resource a request creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resource {
    /// `Calls.json`: a phone call.
    #[serde(rename = "Calls.json")]
    Calls,
    /// `Messages.json`: an SMS.
    #[serde(rename = "Messages.json")]
    Messages,
}

impl Resource {
    /// The path under `/2010-04-01/Accounts/{AccountSid}/`.
    pub fn path(self) -> &'static str {
        match self {
            Resource::Calls => "Calls.json",
            Resource::Messages => "Messages.json",
        }
    }
}

/// One create request as the spool keeps it: the resource and its form (`To`, `From`,
/// `Twiml` or `Body` …), without the account SID and credentials, which are taken from the
/// settings when the request is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Create {
    /// Which resource.
    pub resource: Resource,
    /// The form, PascalCase names, in order.
    pub form: Vec<(String, String)>,
}

/// What the spool keeps of a Twilio delivery ([`Provider::Payload`]): one create request, a
/// whole sequential run, or an acknowledgement queued behind its incident's older requests. An
/// entry of an earlier version is always a create request (the forms are told apart by their
/// fields: a create has `resource` and `form`, a run `twiml`, an acknowledgement `acknowledge`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Payload {
    /// One create request: a broadcast call, an SMS.
    Create(Create),
    /// A sequential run that could not finish (Twilio unreachable, the deadline), which a
    /// flush carries on ([`crate::sequential::Sequence`]).
    Sequence(crate::sequential::Sequence),
    /// An acknowledgement that queued behind older requests of its incident (still spooled, or
    /// another invocation delivering for it): it sends nothing, and a flush records it at its
    /// turn ([`Provider::resume`]), as a run that is over.
    Acknowledge(Acknowledge),
}

/// An acknowledgement as the spool keeps it ([`Payload::Acknowledge`]). Nothing is sent for
/// it; it is queued rather than recorded at once because recorded ahead of its incident's older
/// spooled requests (a RESOLVED SMS of unknown fate, a later failure's calls queued behind it),
/// it made the flush drop them as superseded by it, though it had stopped none of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledge {
    /// Always `true`: what tells this form apart from the others (the payload is untagged).
    pub acknowledge: bool,
}

impl Payload {
    /// The create request, when it is one.
    fn create(&self) -> Option<&Create> {
        match self {
            Payload::Create(c) => Some(c),
            Payload::Sequence(_) | Payload::Acknowledge(_) => None,
        }
    }

    /// Whether it is a create request of a call.
    fn call(&self) -> Option<&Create> {
        self.create().filter(|c| c.resource == Resource::Calls)
    }
}

impl Create {
    /// A form value (`To`, `From` …), empty when absent.
    pub fn field(&self, name: &str) -> &str {
        self.form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }
}

/// State-store key of the calls placed lately, per recipient, on any incident:
/// `{"+1555…": [[noted, "attempt id", "CA…" or null, until], …]}` (Unix seconds), kept for
/// [`SIDS_KEPT_SECS`]. An attempt is noted before its create request goes out (one queued in
/// the spool behind its incident's older requests, never sent, is not one), with the latest
/// time that request could reach Twilio (`until`: its deadline), and gets its SID from
/// Twilio's own answer — never from a guess; one whose handler died keeps `null`.
///
/// A call of unknown fate is looked up with ListCall ([`Twilio::found`],
/// [`unknown_calls`]). Every call pagerpipe places belongs to one attempt noted before it, and a
/// SID is noted only for the attempt that placed it, so the calls in the list that no attempt
/// holds belong to attempts still `null` that could have reached Twilio by then. The attempt
/// looked up was placed only if it is itself noted among those attempts and those calls are
/// at least as many as those attempts; it is known to be a given call only when it is the one
/// such attempt. Several incidents calling one person at once, or notes that cannot be read,
/// can therefore never make a call that was not placed look placed (a page placed twice is
/// better than one lost). An attempt the lookup cannot tell about stays `null` when its
/// request is sent again: the new request is an attempt of its own
/// ([`Provider::attempting`]); one the lookup shows was not placed goes again as itself.
///
/// [`Provider::attempting`]: common::pipeline::Provider::attempting
pub const SIDS_KEY: &str = "recipients:sids";
/// How long noted calls are kept: 2 hours.
pub const SIDS_KEPT_SECS: u64 = 2 * 60 * 60;

/// Note an attempt `id` to call `phone` at `now` whose request may reach Twilio until `until`
/// (Unix seconds) ([`SIDS_KEY`]), or (with `sid`) the SID Twilio's answer to it brought. Best
/// effort: errors are the store's.
pub(crate) fn note_call(
    store: &dyn common::state::Store,
    phone: &str,
    id: &str,
    sid: Option<&str>,
    now: u64,
    until: u64,
) -> anyhow::Result<()> {
    store.update_volatile(SIDS_KEY, &mut |v| {
        let mut by_phone = v.and_then(|v| v.as_object().cloned()).unwrap_or_default();
        for list in by_phone.values_mut() {
            if let Some(a) = list.as_array_mut() {
                a.retain(|p| p.get(0).and_then(Value::as_u64).is_some_and(|t| common::clock::age(t, now) < SIDS_KEPT_SECS));
            }
        }
        by_phone.retain(|_, l| l.as_array().is_some_and(|a| !a.is_empty()));
        let list = by_phone.entry(phone.to_string()).or_insert_with(|| Value::Array(Vec::new()));
        if let Some(a) = list.as_array_mut() {
            match a.iter_mut().find(|p| p.get(1).and_then(Value::as_str) == Some(id)) {
                // Its SID; or noted again before it goes out again, until a new deadline.
                Some(Value::Array(p)) => match sid {
                    Some(sid) => p.splice(2.., [Value::from(sid)]).for_each(drop),
                    // A SID once noted is never taken back (the same number listed twice).
                    None if p.get(2).is_none_or(Value::is_null) => p.splice(2.., [Value::Null, Value::from(until)]).for_each(drop),
                    None => {}
                },
                _ => a.push(json!([now, id, sid, until])),
            }
        }
        Some(Value::Object(by_phone))
    })
}

/// The id of the attempt of action `token` to call `phone` ([`SIDS_KEY`]): the spooled request
/// of the same action settles it later.
pub(crate) fn attempt_id(token: &str, phone: &str) -> String {
    format!("{token}:{phone}")
}

/// Forget attempt `id` to call `phone` ([`SIDS_KEY`]): it was not placed. Best effort.
pub(crate) fn forget_call(store: &dyn common::state::Store, phone: &str, id: &str) -> anyhow::Result<()> {
    store.update_volatile(SIDS_KEY, &mut |v| {
        let mut by_phone = v?.as_object().cloned()?;
        if let Some(a) = by_phone.get_mut(phone).and_then(Value::as_array_mut) {
            a.retain(|p| p.get(1).and_then(Value::as_str) != Some(id));
        }
        Some(Value::Object(by_phone))
    })
}

/// The `twilio` settings section (the shared settings live in [`Common`]).
#[derive(Debug, Deserialize)]
#[serde(default)]
struct Settings {
    account_sid: Option<String>,
    auth_token: Option<String>,
    api_key_sid: Option<String>,
    api_key_secret: Option<String>,
    from: Option<String>,
    recipients: Value,
    /// Unset: [`crate::twiml::default_messages`] for `language`.
    message: Option<String>,
    resolve_message: Option<String>,
    test_message: Option<String>,
    language: String,
    voice: Option<String>,
    #[serde(rename = "loop", deserialize_with = "bounded::loops")]
    loops: u64,
    #[serde(deserialize_with = "bounded::pause")]
    pause: u64,
    #[serde(deserialize_with = "bounded::ring_timeout")]
    ring_timeout: u64,
    machine_detection: Value,
    #[serde(deserialize_with = "de::boolean")]
    conference: bool,
    #[serde(deserialize_with = "de::list_of")]
    channels: Vec<Channel>,
    #[serde(deserialize_with = "de::boolean")]
    notify_on_resolve: bool,
    mode: Mode,
    #[serde(deserialize_with = "bounded::rounds")]
    rounds: u64,
    #[serde(deserialize_with = "bounded::poll_interval")]
    poll_interval: Duration,
    rotation: String,
    timezone: String,
    call_caps: Value,
    #[serde(deserialize_with = "de::boolean")]
    test: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            account_sid: None,
            auth_token: None,
            api_key_sid: None,
            api_key_secret: None,
            from: None,
            recipients: Value::Null,
            message: None,
            resolve_message: None,
            test_message: None,
            language: "en-US".into(),
            voice: None,
            loops: 2,
            pause: 0,
            ring_timeout: 30,
            machine_detection: Value::Null,
            conference: false,
            channels: vec![Channel::Voice],
            notify_on_resolve: false,
            mode: Mode::Broadcast,
            rounds: 2,
            poll_interval: Duration::from_secs(3),
            rotation: "none".into(),
            timezone: "UTC".into(),
            call_caps: Value::Null,
            test: false,
        }
    }
}

/// The bounds of Twilio's numeric settings, checked as they are read (exit 78 naming the
/// setting and the bounds, never the value).
mod bounded {
    use std::time::Duration;

    use common::config::de::{duration_within, uint_within};
    use serde::Deserializer;

    /// `loop`: times the message is spoken, 1 to 10.
    pub fn loops<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        uint_within(d, 1, 10)
    }
    /// `pause`: seconds of silence before the message (`<Pause length>`), 0 to 60.
    pub fn pause<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        uint_within(d, 0, 60)
    }
    /// `ring_timeout`: seconds a call rings, 1 to [`super::MAX_RING_TIMEOUT`] (Twilio's maximum).
    pub fn ring_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        uint_within(d, 1, super::MAX_RING_TIMEOUT)
    }
    /// `rounds`: passes through the list in sequential mode, 1 to 10.
    pub fn rounds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        uint_within(d, 1, 10)
    }
    /// `poll_interval`: how often a sequential call's status is read, 10 ms to 60 s.
    pub fn poll_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        duration_within(d, Duration::from_millis(10), Duration::from_secs(60))
    }
}

/// One person to page: an E.164 number and, optionally, a name for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Name shown in log lines (`None`: the number is shown alone).
    pub name: Option<String>,
    /// E.164 number, e.g. `+14155550100`.
    pub phone: String,
}

impl Recipient {
    /// `Name +number`, or the number alone, for log lines.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} {}", self.phone),
            None => self.phone.clone(),
        }
    }
}

/// A way to reach a recipient (`channels` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A phone call speaking the message.
    Voice,
    /// An SMS.
    Sms,
}

/// How the recipients are called (`mode` setting, `--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Everyone at once.
    Broadcast,
    /// One at a time until a person answers, up to `rounds` times through the list.
    Sequential,
}

/// The Twilio provider, built from settings.
#[derive(Debug)]
pub struct Twilio {
    /// `None` when not set ([`Provider::ready`] fails then).
    account_sid: Option<String>,
    /// `user:password` for HTTP Basic auth, when the credentials are complete.
    credentials: Option<String>,
    /// The secret half of the credentials (auth token or API key secret).
    secret: Option<String>,
    base: String,
    from: Option<String>,
    recipients: Vec<Recipient>,
    message: Template,
    resolve_message: Template,
    test_message: Template,
    speech: Speech,
    pub(crate) ring_timeout: u64,
    /// The shared `refresh` setting (a check's own `refresh` wins, see
    /// `common::filter::refresh_for`).
    pub(crate) refresh: Duration,
    /// Twilio's `MachineDetection` value (`Enable` / `DetectMessageEnd`), when asked for.
    pub(crate) machine_detection: Option<&'static str>,
    conference: bool,
    pub(crate) voice: bool,
    pub(crate) sms: bool,
    notify_on_resolve: bool,
    pub(crate) mode: Mode,
    pub(crate) rounds: u64,
    pub(crate) poll_interval: Duration,
    rotation: Rotation,
    caps: Caps,
    test: bool,
    /// Where to say who answered ([`crate::announce`]), when set.
    pub(crate) announcer: Option<crate::announce::Announcer>,
}

impl Provider for Twilio {
    const NAME: &'static str = "twilio";
    /// The settings struct and the announcement's ([`crate::announce`]), both read from the
    /// section, and each `recipients` object ([`RecipientObject`]).
    const READERS: &'static [common::unread::Reader] = &[
        common::unread::Reader::of::<Settings>(),
        crate::announce::READER,
        common::unread::Reader::items_of::<RecipientObject>("recipients"),
    ];
    type Payload = Payload;
    const NO_RECORD: NoRecord = NoRecord::Skip("no record of a page for it: nobody was called, so nobody is told");

    /// Whom to call, from which number, with which account, and how hard to try come from the
    /// operator or the check (a monitored host choosing the numbers is a toll-fraud lever); an
    /// entity may word its own messages, but not keep them silent (`pause`: a minute of silence
    /// before the message has whoever answers hang up, which ends a sequential run; `voice` and
    /// `language`: Twilio documents that a voice and language that do not go together may make
    /// `<Say>` fail, so that whoever answers hears nothing of the page). Call caps and `test` are the operator's, and
    /// so is `announce_webhook`, a URL: where requests go is never an event's to say (a Sensu
    /// result written to a host's client socket carries any check attributes, and one naming
    /// its own webhook had the handler POST who answered, and when, to any address it liked).
    const SETTINGS: &'static [(&'static str, Trust)] = &[
        ("account_sid", Trust::Check),
        ("auth_token", Trust::Check),
        ("api_key_sid", Trust::Check),
        ("api_key_secret", Trust::Check),
        ("from", Trust::Check),
        ("recipients", Trust::Check),
        ("channels", Trust::Check),
        ("mode", Trust::Check),
        ("rounds", Trust::Check),
        ("poll_interval", Trust::Check),
        ("ring_timeout", Trust::Check),
        ("machine_detection", Trust::Check),
        ("conference", Trust::Check),
        ("notify_on_resolve", Trust::Check),
        ("rotation", Trust::Check),
        ("timezone", Trust::Check),
        ("test_message", Trust::Check),
        ("announce_webhook", Trust::Operator),
        ("announce_channel", Trust::Check),
        ("announce_token", Trust::Check),
        ("announce_answered", Trust::Check),
        ("message", Trust::Entity),
        ("resolve_message", Trust::Entity),
        ("language", Trust::Check),
        ("voice", Trust::Check),
        ("loop", Trust::Entity),
        ("pause", Trust::Check),
    ];

    fn from_settings(section: &Map<String, Value>, common: &Common) -> Result<Self> {
        let announcer = crate::announce::Announcer::from_section(section, common)?;
        let s: Settings = config::typed("twilio", section)?;
        let trimmed = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let account_sid = trimmed(s.account_sid);
        if let Some(sid) = &account_sid {
            check_sid("account_sid", sid, "AC")?;
        }
        let api_key_sid = trimmed(s.api_key_sid);
        if let Some(sid) = &api_key_sid {
            check_sid("api_key_sid", sid, "SK")?;
        }
        let (auth_token, api_key_secret) = (trimmed(s.auth_token), trimmed(s.api_key_secret));
        let (user, secret) = match (&api_key_sid, api_key_secret, auth_token) {
            (Some(key), Some(secret), _) => (Some(key.clone()), Some(secret)),
            (Some(_), None, _) => {
                return Err(Code::Config.msg(
                    "settings `twilio.api_key_sid` is set without `twilio.api_key_secret` (or TWILIO_API_KEY_SECRET / --api-key-secret)",
                ));
            }
            (None, _, token) => (account_sid.clone(), token),
        };
        let credentials = user.zip(secret.clone()).map(|(u, p)| format!("{u}:{p}"));
        let from = trimmed(s.from);
        if let Some(f) = &from {
            check_e164("twilio.from", f)?;
        }
        let recipients = recipients(&s.recipients)?;
        let language = s.language.trim().to_string();
        if language.is_empty() || !language.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Code::Config
                .msg(format!("settings `twilio.language`: {} is not a language tag such as en-US or ja-JP", config::shown(&language))));
        }
        let defaults = crate::twiml::default_messages(&language);
        let voice = trimmed(s.voice);
        if let Some(v) = &voice
            && !v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(Code::Config
                .msg(format!("settings `twilio.voice`: {} is not a Twilio voice name such as alice or Polly.Mizuki", config::shown(v))));
        }
        let channels = (s.channels.contains(&Channel::Voice), s.channels.contains(&Channel::Sms));
        let mode = s.mode;
        Ok(Twilio {
            account_sid,
            credentials,
            secret,
            base: common.api_url.as_deref().unwrap_or(API_URL).trim_end_matches('/').to_string(),
            from,
            recipients,
            message: Template::parse("twilio.message", s.message.as_deref().unwrap_or(defaults.message))?,
            resolve_message: Template::parse("twilio.resolve_message", s.resolve_message.as_deref().unwrap_or(defaults.resolve_message))?,
            test_message: Template::parse("twilio.test_message", s.test_message.as_deref().unwrap_or(defaults.test_message))?,
            speech: Speech { language, voice, loops: s.loops, pause: s.pause },
            ring_timeout: s.ring_timeout,
            refresh: common.refresh,
            machine_detection: machine_detection(&s.machine_detection)?,
            conference: s.conference,
            voice: channels.0,
            sms: channels.1,
            notify_on_resolve: s.notify_on_resolve,
            mode,
            rounds: s.rounds,
            poll_interval: s.poll_interval,
            rotation: Rotation::from_settings(&s.rotation, &s.timezone)?,
            caps: Caps::from_setting(&s.call_caps)?,
            test: s.test,
            announcer,
        })
    }

    /// The auth token or API key secret, and the Basic credentials built from it (base64 too).
    /// The message spoken and texted on a trigger.
    fn template_notes(&self, event: &Event) -> Vec<String> {
        let setting = if self.test { "twilio.test_message" } else { "twilio.message" };
        if event.status != 0 && self.trigger_message().render_telling(event).is_none() {
            vec![says_nothing(setting, "the language's default message")]
        } else {
            Vec::new()
        }
    }

    fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self.secret.iter().cloned().collect();
        if let Some(c) = &self.credentials {
            out.push(basic(c));
        }
        out.extend(self.announcer.iter().flat_map(crate::announce::Announcer::secrets));
        out
    }

    fn ready(&self) -> Result<()> {
        if self.account_sid.is_none() {
            return Err(Code::Config.msg("no Twilio account SID: set `twilio.account_sid` (AC + 32 hex digits) or --account-sid"));
        }
        if self.credentials.is_none() {
            return Err(Code::Config.msg(
                "no Twilio credentials: set `twilio.auth_token` (or TWILIO_AUTH_TOKEN / --auth-token), \
                 or an API key with `twilio.api_key_sid` and `twilio.api_key_secret` (or TWILIO_API_KEY_SECRET)",
            ));
        }
        if self.from.is_none() {
            return Err(Code::Config.msg("no caller number: set `twilio.from` to your Twilio number in E.164 (e.g. +14155550100)"));
        }
        if self.recipients.is_empty() {
            return Err(Code::Config.msg("no recipients: set `twilio.recipients` to a list of E.164 numbers or {name, phone} objects"));
        }
        if !self.voice && !self.sms {
            return Err(Code::Config.msg("settings `twilio.channels` is empty: give voice, sms or both"));
        }
        Ok(())
    }

    /// Sequential mode's timeout rule: an event's invocation must have time for one unanswered
    /// call (`ring_timeout` + [`CALL_OVERHEAD_SECS`]); a flush carries a run on over as many
    /// flushes as it takes.
    fn fits(&self, timeout: Duration) -> Result<()> {
        let per_call = Duration::from_secs(self.ring_timeout + CALL_OVERHEAD_SECS);
        if self.mode == Mode::Sequential && self.voice && timeout < per_call {
            return Err(Code::Config.msg(format!(
                "settings `twilio.timeout`: {}s is too short for sequential mode, where one unanswered call takes up to \
                 ring_timeout + {CALL_OVERHEAD_SECS}s = {}s; give --timeout at least recipients × rounds × {}s to reach \
                 everyone (and the monitoring system's handler timeout a little more, see docs/twilio.md)",
                timeout.as_secs(),
                per_call.as_secs(),
                per_call.as_secs()
            )));
        }
        Ok(())
    }

    /// A spooled request's answer, explained as a live one is (`To` and `From` from its form).
    /// A call's create answered 5xx is of unknown fate ([`classify_call`]).
    fn classify(&self, payload: &Payload, resp: &Response) -> Outcome {
        let create = payload.create();
        let outcome = classify(resp, create.map_or("", |c| c.field("To")), create.map_or("", |c| c.field("From")));
        if payload.call().is_some() { classify_call(resp, outcome) } else { outcome }
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/{resource}` with the account and credentials in
    /// force now. A sequential run is no one request ([`Provider::resume`] carries it on).
    fn request(&self, payload: &Payload, _refs: &Map<String, Value>) -> std::result::Result<Request, String> {
        match payload {
            Payload::Create(create) => Ok(self.request(Method::Post, create.resource.path(), Body::Form(create.form.clone()))),
            Payload::Sequence(_) => Err("a sequential run is not one request".into()),
            Payload::Acknowledge(_) => Err("an acknowledgement sends nothing".into()),
        }
    }

    /// ListCall's answer, explained as a create's is (Twilio's `code`, `message` and
    /// `more_info`): a 401 (20003) or 403 refuses the lookup for good ([`Found::Broken`]: the
    /// call stays spooled, exit 78); a 403 names what the credentials lack, as an API key may
    /// be allowed to place calls and not to list them.
    fn classify_lookup(&self, _payload: &Payload, resp: &Response) -> Outcome {
        match classify(resp, "", "") {
            Outcome::Refused(why) if resp.status == 403 => Outcome::Refused(format!(
                "{why} (the credentials in force may not list calls: give the API key the right to read calls, or use the \
                 auth token)"
            )),
            other => other,
        }
    }

    /// ListCall for a call of unknown fate, first of its two lists ([`Twilio::calls_since`]):
    /// `GET …/Calls.json?To=…&From=…&Status=queued`.
    fn lookup(&self, payload: &Payload, _since: u64) -> Option<Request> {
        Some(self.list_calls(payload.call()?, ("Status", "queued")))
    }

    /// A call is noted in flight, and a text only for a recovery. A failure's text is not
    /// noted even when its delivery turns the incident over: adopted after a kill it would be
    /// sent again blindly (a person texted twice, next to a sequential run carried on from its
    /// notes, which says who was texted), and, delivered alone, recorded as the whole page (the
    /// people after the kill never texted, the next failure within `refresh` skipped as a
    /// repeat). A recovery's RESOLVED texts are all it sends, and no run goes with them: not
    /// noted, a kill after Twilio sent one left the record open, and the next failure within
    /// `refresh` was skipped as a repeat after everyone was told the check recovered (a lost
    /// page). Noted, the next holder sends the noted texts again (a person may get RESOLVED
    /// twice; one the killed handler had not reached yet gets none), records the recovery, and
    /// the failure pages.
    fn note_in_flight(&self, payload: &Payload, action: Action) -> bool {
        payload.call().is_some() || (action == Action::Resolve && payload.create().is_some())
    }

    /// The next page of the ListCall answers, list after list ([`Twilio::calls_since`]).
    fn lookup_next(&self, payload: &Payload, since: u64, pages: &[Response]) -> Option<Request> {
        self.calls_since(payload.call()?, since, pages)
    }

    /// A spooled call about to be placed again by a flush: noted as an attempt of its own
    /// ([`SIDS_KEY`]) before it goes out.
    fn attempting(&self, store: &dyn common::state::Store, payload: &Payload, attempt: &str, until: u64) {
        if let Some(create) = payload.call() {
            let to = create.field("To");
            let _ = note_call(store, to, &attempt_id(attempt, to), None, common::clock::now_unix(), until);
        }
    }

    /// A spooled call placed or found by a flush: its attempt gets its SID ([`SIDS_KEY`]). One
    /// found placed without knowing which call is its own keeps no SID, but its call was made
    /// by now: it can no longer own a call made later (its `until` is now).
    fn settled(&self, store: &dyn common::state::Store, payload: &Payload, attempt: &str, refs: &Map<String, Value>) {
        let Some(create) = payload.call() else { return };
        let to = create.field("To");
        let now = common::clock::now_unix();
        let _ = match refs.get(CALL_SIDS).and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str) {
            Some(sid) => note_call(store, to, &attempt_id(attempt, to), Some(sid), now, u64::MAX),
            None => note_call(store, to, &attempt_id(attempt, to), None, now, now),
        };
    }

    /// The calls noted lately on any incident ([`SIDS_KEY`]), as `{"recipients:sids": …}`.
    fn known(&self, store: &dyn common::state::Store) -> Map<String, Value> {
        let mut m = Map::new();
        if let Ok(Some(v)) = store.get(SIDS_KEY) {
            m.insert(SIDS_KEY.into(), v);
        }
        m
    }

    /// A call delivered from the spool brings its SID, remembered with the incident.
    fn spooled_refs(&self, payload: &Payload, resp: &Response) -> Map<String, Value> {
        let mut refs = Map::new();
        if payload.call().is_some()
            && let Some(sid) = serde_json::from_str::<Value>(&resp.body).ok().and_then(|v| v.get("sid")?.as_str().map(str::to_string))
        {
            refs.insert(CALL_SIDS.into(), json!([sid]));
        }
        refs
    }

    /// What ListCall shows of the call ([`SIDS_KEY`] explains the rule, and [`Placed::of`]
    /// reads it): placed → [`Found::Yes`], with the call's SID in `call_sids` when it is known
    /// to be this one's, else without (the record says placed; no other attempt's call is taken
    /// for it); not placed → [`Found::No`]; an answer without a list of calls →
    /// [`Found::Unanswered`] (kept, looked up again later); else [`Found::CannotTell`] (asked
    /// again, then sent again: a duplicate, never a loss).
    fn found(&self, payload: &Payload, pages: &[Response], since: u64, known: &Map<String, Value>, attempt: &str) -> Found {
        let Some(create) = payload.call() else { return Found::No };
        match Placed::of(create, pages, since, known, Some(&attempt_id(attempt, create.field("To")))) {
            None => Found::Unanswered("the answer holds no list of calls".into()),
            Some(Placed::TooOld) => Found::CannotTell("sent too long ago to be told apart from other calls".into()),
            Some(Placed::No) => Found::No,
            Some(Placed::Yes(sid)) => {
                let mut refs = Map::new();
                if let Some(sid) = sid {
                    refs.insert(CALL_SIDS.into(), json!([sid]));
                }
                Found::Yes(refs)
            }
            Some(Placed::CannotTell { calls, attempts }) => Found::CannotTell(format!(
                "{calls} call(s) to that number nobody knows of, {attempts} attempt(s) to call it of unknown fate"
            )),
        }
    }

    /// A sequential run is carried on by a flush as a whole ([`Twilio::resume_sequence`]), and
    /// a queued acknowledgement is recorded at its turn.
    fn is_run(&self, payload: &Payload) -> bool {
        matches!(payload, Payload::Sequence(_) | Payload::Acknowledge(_))
    }

    /// A queued acknowledgement, at its turn (the ledger decided it, after the requests queued
    /// before it): nothing is sent, the last call of a run that ended mid-way is cancelled if it
    /// still rings (as live), and the flush records it.
    fn resume(&self, ctx: &Ctx<'_, Self>, payload: &Payload, previous: Option<&Incident>, event_time: u64) -> Resumed {
        match payload {
            Payload::Sequence(page) => self.resume_sequence(ctx, page, previous, event_time),
            Payload::Acknowledge(_) => {
                let said = self.stop_left_off(ctx, previous).unwrap_or_default();
                Resumed::Delivered(Done {
                    detail: format!("(nothing sent: recorded after the requests queued before it{said})"),
                    refs: Map::new(),
                })
            }
            Payload::Create(_) => Resumed::Failed(Outcome::Refused("a create request is not a run".into())),
        }
    }

    fn act(&self, ctx: &Ctx<'_, Self>, job: &Job<'_>) -> Outcome<Done> {
        let mut sent = Sent::default();
        match job.action {
            Action::Trigger => {
                let order = self.order(ctx);
                if self.mode == Mode::Sequential && self.voice {
                    if !ctx.dry_run {
                        return self.sequential_event(ctx, job, &order);
                    }
                    let names: Vec<String> = order.iter().map(Recipient::label).collect();
                    ctx.log.info(format!(
                        "dry run: sequential mode calls one at a time, in this order, until a person answers (up to {} round{}): {}",
                        self.rounds,
                        if self.rounds == 1 { "" } else { "s" },
                        names.join(", ")
                    ));
                }
                let mut capped = Vec::new();
                if self.voice {
                    let doc = self.twiml(job.event, job.incident_key);
                    let slots = self.take_slots(ctx, &order);
                    let mut placed = Vec::new();
                    for (r, slot) in order.iter().zip(slots) {
                        let Some(slot) = slot else {
                            sent.capped.push(r.label());
                            capped.push(r.clone());
                            continue;
                        };
                        let outcome = self.post(ctx, Resource::Calls, self.call_form(r, &doc), r);
                        if matches!(outcome, Outcome::Refused(_) | Outcome::Broken(_)) {
                            self.give_back(ctx, r, slot);
                        }
                        if let Outcome::Delivered(Some(sid)) = &outcome {
                            placed.push((r.clone(), sid.clone()));
                        }
                        sent.record(ctx, r, "call", outcome);
                    }
                    self.announce_broadcast(ctx, job, &placed);
                }
                if self.sms {
                    let body = self.sms_body(job.event);
                    self.text_all(ctx, &order, &body, &mut sent);
                } else if !capped.is_empty() {
                    // Over a cap, a page is texted instead (SMS is not capped): the cap limits
                    // how often a phone rings, never whether this incident reaches anyone.
                    let body = self.sms_body(job.event);
                    self.text_all(ctx, &capped, &body, &mut sent);
                }
            }
            Action::Resolve if self.notify_on_resolve => {
                if let Some(said) = self.stop_left_off(ctx, job.previous) {
                    ctx.log.info(said.trim_start_matches("; "));
                }
                let body = sms_text(&self.resolve_message, twiml::default_messages(&self.speech.language).resolve_message, job.event);
                self.text_all(ctx, &self.recipients, &body, &mut sent);
            }
            Action::Resolve => {
                let said = self.stop_left_off(ctx, job.previous).unwrap_or_default();
                return Outcome::Delivered(Done {
                    detail: format!("(no call on resolve; set notify_on_resolve for a RESOLVED SMS{said})"),
                    refs: Map::new(),
                });
            }
            // Behind older requests of the incident (spooled, or another invocation's delivery
            // in flight): queued, and recorded at its turn. Recorded now, it came before them in
            // the ledger, and the flush dropped them as superseded by it (the RESOLVED SMS of an
            // earlier recovery, the calls of a failure after it), as DESIGN.md's event order
            // forbids: the spool is the tail of the incident's log.
            Action::Acknowledge if ctx.behind_spooled() => {
                let why = format!("{}; it sends nothing, and is recorded at its turn", ctx.queued_behind().unwrap_or_default());
                return ctx.spool_run(&Payload::Acknowledge(Acknowledge { acknowledge: true }), None, &why).map(|_| Done::default());
            }
            Action::Acknowledge => {
                let said = self.stop_left_off(ctx, job.previous).unwrap_or_default();
                return Outcome::Delivered(Done {
                    detail: format!("(nothing sent: recorded, and a sequential run still calling stops{said})"),
                    refs: Map::new(),
                });
            }
        }
        sent.finish(ctx)
    }
}

/// What one invocation reached, by recipient.
#[derive(Default)]
struct Sent {
    calls: Vec<String>,
    messages: Vec<String>,
    reached: usize,
    /// Requests kept in the spool (they will go out).
    spooled: usize,
    failures: Vec<Outcome<Done>>,
    /// Recipients not called because of a cap.
    capped: Vec<String>,
}

impl Sent {
    /// Note the outcome of one request of `kind` (`call` / `SMS`) to `r`.
    fn record(&mut self, ctx: &Ctx<'_, Twilio>, r: &Recipient, kind: &str, outcome: Outcome<Option<String>>) {
        match outcome {
            Outcome::Delivered(sid) => {
                self.reached += 1;
                if let Some(sid) = sid {
                    if sid.starts_with("SM") || sid.starts_with("MM") { &mut self.messages } else { &mut self.calls }.push(sid);
                }
            }
            failed => {
                if let Outcome::Spooled(why) = &failed {
                    self.spooled += 1;
                    ctx.log.warn(format!("{kind} to {} not placed yet: {why}", r.label()));
                } else {
                    ctx.log.error(format!("{kind} to {} failed: {}", r.label(), failed.reason().unwrap_or("")));
                }
                self.failures.push(failed.failure().unwrap_or(Outcome::Skipped(String::new())));
            }
        }
    }

    /// Delivered when anyone was reached, or when nobody could be because every call was over
    /// a cap (those people were called a lot just now); otherwise the most hopeful failure
    /// (spooled first, then retryable), except that a request neither delivered nor spooled
    /// ([`Outcome::Retry`]: no spool, or its entry could not be written) is reported before
    /// the spooled ones: that person's page is lost, and only a retryable outcome has the event
    /// printed to stderr. Reported as spooled, the event was printed nowhere.
    fn finish(mut self, ctx: &Ctx<'_, Twilio>) -> Outcome<Done> {
        if self.reached == 0 {
            let mut failures = std::mem::take(&mut self.failures);
            let lost = failures.iter().position(|f| matches!(f, Outcome::Retry(_)));
            if let Some(failure) = match lost {
                Some(at) => Some(failures.swap_remove(at)),
                None => Outcome::most_hopeful(failures),
            } {
                return failure;
            }
        }
        let mut refs = Map::new();
        let mut parts = Vec::new();
        for (key, what, sids) in [(CALL_SIDS, "call", &self.calls), (MESSAGE_SIDS, "SMS", &self.messages)] {
            if !sids.is_empty() {
                refs.insert(key.into(), sids.clone().into());
                parts.push(format!("{what} {}", sids.join(", ")));
            }
        }
        if !self.capped.is_empty() {
            parts.push(format!("not called, over the call cap: {}", self.capped.join(", ")));
        }
        let total = self.reached + self.failures.len();
        let mut detail = if ctx.dry_run { format!("({total} requests") } else { format!("({} of {total} requests accepted", self.reached) };
        if !parts.is_empty() {
            detail.push_str(&format!(": {}", parts.join("; ")));
        }
        detail.push(')');
        Outcome::Delivered(Done { detail, refs })
    }
}

impl Twilio {
    fn from(&self) -> &str {
        self.from.as_deref().unwrap_or("+{from}")
    }

    /// The recipients in calling order now: rotated daily with `rotation: daily`.
    pub(crate) fn order(&self, ctx: &Ctx<'_, Twilio>) -> Vec<Recipient> {
        let now = common::clock::now_unix();
        let order = self.rotation.apply(&self.recipients, now);
        if let Some(day) = self.rotation.local_day(now) {
            ctx.log.debug(format!("rotation daily: day {day} starts with {}", order.first().map(Recipient::label).unwrap_or_default()));
        }
        order
    }

    /// The template spoken and texted on a trigger: `test_message` for `--test`.
    fn trigger_message(&self) -> &Template {
        if self.test { &self.test_message } else { &self.message }
    }

    /// The SMS body for a trigger, cut to Twilio's 1600 characters ([`sms_text`]).
    pub(crate) fn sms_body(&self, event: &Event) -> String {
        let defaults = twiml::default_messages(&self.speech.language);
        let fallback = if self.test { defaults.test_message } else { defaults.message };
        sms_text(self.trigger_message(), fallback, event)
    }

    /// The call's TwiML for `event`, the output shortened to fit Twilio's 4000 characters. A
    /// template that renders only blanks (`{output}` alone, and the check printed nothing)
    /// gives way to the language's default message, as for an SMS ([`sms_text`]): Twilio
    /// cannot speak an empty `<Say>` (error 13520, "Say: Invalid text"), and the person who
    /// answered would hear nothing of the incident.
    pub(crate) fn twiml(&self, event: &Event, key: &str) -> String {
        let output = event.output.trim_end();
        let template = self.trigger_message();
        let defaults = twiml::default_messages(&self.speech.language);
        let fallback = Template::constant(if self.test { defaults.test_message } else { defaults.message });
        let render = |n: usize| {
            let mut e = event.clone();
            e.output = truncate_chars(output, n);
            template.render_or(&e, &fallback)
        };
        let conference = self.conference.then(|| twiml::conference_name(key));
        twiml::fitted(&render, output.chars().count(), &self.speech, conference.as_deref())
    }

    /// The create-Call form for `r` speaking `doc`: `To, From, Twiml, Timeout[, MachineDetection]`.
    pub(crate) fn call_form(&self, r: &Recipient, doc: &str) -> Vec<(String, String)> {
        let mut form = vec![
            ("To".to_string(), r.phone.clone()),
            ("From".to_string(), self.from().to_string()),
            ("Twiml".to_string(), doc.to_string()),
            ("Timeout".to_string(), self.ring_timeout.to_string()),
        ];
        if let Some(md) = self.machine_detection {
            form.push(("MachineDetection".to_string(), md.to_string()));
        }
        form
    }

    /// Take a call slot under the caps for each of `rs`, in one locked update: per recipient
    /// `Some(Some(at))` granted and counted, `Some(None)` go ahead uncounted (dry run, no state
    /// store, or the store failed: a broken store must not silence a page), `None` over a cap
    /// (logged here, one line).
    pub(crate) fn take_slots(&self, ctx: &Ctx<'_, Twilio>, rs: &[Recipient]) -> Vec<Option<Option<u64>>> {
        let Some(store) = ctx.store else { return vec![Some(None); rs.len()] };
        let now = common::clock::now_unix();
        let phones: Vec<&str> = rs.iter().map(|r| r.phone.as_str()).collect();
        match self.caps.reserve(store, &phones, now) {
            Ok(reservations) => rs
                .iter()
                .zip(reservations)
                .map(|(r, reservation)| match reservation {
                    Reservation::Granted { at } => Some(Some(at)),
                    Reservation::Over { limit, count } => {
                        ctx.log.warn(format!(
                            "not calling {}: already {count} call{} in the last {} (call_caps {}: {})",
                            r.label(),
                            if count == 1 { "" } else { "s" },
                            limit.label,
                            limit.label,
                            limit.max
                        ));
                        None
                    }
                })
                .collect(),
            Err(e) => {
                ctx.log.error(format!("call caps unavailable ({e:#}); calling anyway"));
                vec![Some(None); rs.len()]
            }
        }
    }

    /// [`Twilio::take_slots`] for one recipient.
    pub(crate) fn take_slot(&self, ctx: &Ctx<'_, Twilio>, r: &Recipient) -> Option<Option<u64>> {
        self.take_slots(ctx, std::slice::from_ref(r)).pop().flatten()
    }

    /// Give back the slot `take_slot` counted for a call that was refused (not for one whose
    /// fate is unknown: spooled for later, or timed out after Twilio may have placed it).
    pub(crate) fn give_back(&self, ctx: &Ctx<'_, Twilio>, r: &Recipient, slot: Option<u64>) {
        if let (Some(store), Some(at)) = (ctx.store, slot)
            && let Err(e) = caps::release(store, &r.phone, at)
        {
            ctx.log.warn(format!("cannot give back the call slot of {}: {e:#}", r.label()));
        }
    }

    /// Send `body` as an SMS to each of `to`.
    fn text_all(&self, ctx: &Ctx<'_, Twilio>, to: &[Recipient], body: &str, sent: &mut Sent) {
        for r in to {
            sent.record(ctx, r, "SMS", self.text(ctx, r, body));
        }
    }

    /// Send `body` as an SMS to `r`; the message SID.
    pub(crate) fn text(&self, ctx: &Ctx<'_, Twilio>, r: &Recipient, body: &str) -> Outcome<Option<String>> {
        let form = vec![
            ("To".to_string(), r.phone.clone()),
            ("From".to_string(), self.from().to_string()),
            ("Body".to_string(), body.to_string()),
        ];
        self.post(ctx, Resource::Messages, form, r)
    }

    /// A request to `{base}/2010-04-01/Accounts/{AccountSid}/{resource}` with the credentials.
    pub(crate) fn request(&self, method: Method, resource: &str, body: Body) -> Request {
        let sid = self.account_sid.as_deref().unwrap_or("{AccountSid}");
        let mut req = Request {
            method,
            url: format!("{}/2010-04-01/Accounts/{sid}/{resource}", self.base),
            headers: vec![("Accept".into(), "application/json".into())],
            body,
        };
        if let Some(c) = &self.credentials {
            req.headers.push(("Authorization".into(), format!("Basic {}", basic(c))));
        }
        req
    }

    /// `GET …/Calls.json?To=…&From=…&{filter}&PageSize=50`: the calls to `create`'s `To` from
    /// its `From` that `filter` (a ListCall parameter and its value) admits.
    fn list_calls(&self, create: &Create, filter: (&str, &str)) -> Request {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("To", create.field("To"))
            .append_pair("From", create.field("From"))
            .append_pair(filter.0, filter.1)
            .append_pair("PageSize", "50")
            .finish();
        self.request(Method::Get, &format!("Calls.json?{query}"), Body::Empty)
    }

    /// The request for the next page of the calls that may be `create`'s, sent at `since`
    /// (Unix seconds), after `pages` (empty: the first): two ListCall lists, each read to its
    /// last page ([`Twilio::next_page`]), `None` after both.
    ///
    /// 1. `Status=queued`: the calls still waiting in Twilio's queue. Twilio places new calls
    ///    at the account's calls per second (1 by default) and queues the rest, and a queued
    ///    call has no `start_time` ("Empty if the call has not yet been dialed", the Call
    ///    resource of the spec), so the second list, which filters on when calls started,
    ///    leaves it out: a call of unknown fate still queued was taken for not placed and
    ///    placed again. Read first, so that a call dialled between the two lists is in one.
    /// 2. `StartTime>=<day>` ("calls that started on or after this date", ListCall in the
    ///    spec), the day of `since` less a minute: the calls dialled since.
    ///
    /// A call on both (dialled meanwhile) is counted once ([`unknown_calls`]).
    pub(crate) fn calls_since(&self, create: &Create, since: u64, pages: &[Response]) -> Option<Request> {
        let Some(last) = pages.last() else { return Some(self.list_calls(create, ("Status", "queued"))) };
        if let Some(next) = self.next_page(last) {
            return Some(next);
        }
        let lists_read = pages.iter().filter(|p| self.next_page(p).is_none()).count();
        if lists_read > 1 {
            return None;
        }
        let day = common::clock::rfc3339(since.saturating_sub(60)).get(..10)?.to_string();
        Some(self.list_calls(create, ("StartTime>", &day)))
    }

    /// The request for the page after `page` of a ListCall answer: its `next_page_uri` (a path
    /// under the account, `null` on the last page; ListCallResponse in the spec) under the base
    /// URL in force. `None` at the end, or when the path is not a list of this account's calls
    /// (the answer never chooses where a request goes).
    pub(crate) fn next_page(&self, page: &Response) -> Option<Request> {
        let v: Value = serde_json::from_str(&page.body).ok()?;
        let uri = v.get("next_page_uri")?.as_str()?;
        let sid = self.account_sid.as_deref()?;
        let rest = uri.strip_prefix(&format!("/2010-04-01/Accounts/{sid}/"))?;
        let query = rest.strip_prefix("Calls.json?")?;
        let safe = query.bytes().all(|b| b.is_ascii_alphanumeric() || b"%&=+-._~<>".contains(&b));
        safe.then(|| self.request(Method::Get, rest, Body::Empty))
    }

    /// How a response to a request about `to` is classified (Twilio's error body explained).
    pub(crate) fn classify_for(&self, resp: &Response, to: &Recipient) -> Outcome {
        classify(resp, &to.phone, self.from())
    }

    /// How the answer to a call's create request to `to` is classified: as [`Twilio::classify_for`],
    /// but a 5xx leaves the call of unknown fate ([`classify_call`]).
    pub(crate) fn classify_call_for(&self, resp: &Response, to: &Recipient) -> Outcome {
        classify_call(resp, self.classify_for(resp, to))
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/{resource}` with `form`, retried within the
    /// deadline, spooled when it cannot go out now; the new resource's `sid` (`None` in dry-run
    /// or when the answer holds none).
    pub(crate) fn post(
        &self,
        ctx: &Ctx<'_, Twilio>,
        resource: Resource,
        form: Vec<(String, String)>,
        to: &Recipient,
    ) -> Outcome<Option<String>> {
        ctx.log.debug(format!("POST {} to {}", resource.path(), to.label()));
        // A call is noted before it goes out, and its SID once answered ([`SIDS_KEY`]). One that
        // queues behind the incident's older requests ([`Ctx::queued_behind`]) does not go out
        // now: noted, it stayed an attempt of unknown fate to that number, and the flush, unable
        // to tell whose the one call nobody holds was, placed a call of unknown fate again and
        // rang the person twice. The flush notes it before it places it
        // ([`Provider::attempting`]).
        let attempt = (resource == Resource::Calls && !ctx.dry_run && ctx.queued_behind().is_none())
            .then(|| attempt_id(ctx.token().unwrap_or("-"), &to.phone));
        let store = ctx.store.filter(|_| attempt.is_some());
        let now = common::clock::now_unix();
        if let (Some(store), Some(id)) = (store, &attempt)
            && let Err(e) = note_call(store, &to.phone, id, None, now, ctx.deadline.end_unix())
        {
            ctx.log.debug(format!("cannot note the call to {}: {e:#}", to.label()));
        }
        let outcome = ctx.send(&Payload::Create(Create { resource, form }));
        if let (Some(store), Some(id)) = (store, &attempt) {
            let sid = match &outcome {
                Outcome::Delivered(response) => {
                    serde_json::from_str::<Value>(&response.body).ok().and_then(|v| v.get("sid")?.as_str().map(str::to_string))
                }
                _ => None,
            };
            // Answered: its SID. Refused: not placed. Anything else (spooled, possibly of unknown
            // fate) stays an unanswered attempt, which only makes lookups more careful.
            let result = match (&outcome, &sid) {
                (Outcome::Delivered(_), Some(sid)) => note_call(store, &to.phone, id, Some(sid), now, u64::MAX),
                (Outcome::Refused(_), _) => forget_call(store, &to.phone, id),
                _ => Ok(()),
            };
            if let Err(e) = result {
                ctx.log.debug(format!("cannot note the call to {}: {e:#}", to.label()));
            }
        }
        outcome.map(|response| {
            let sid = serde_json::from_str::<Value>(&response.body).ok().and_then(|v| v.get("sid")?.as_str().map(str::to_string));
            if !ctx.dry_run {
                ctx.log.debug(format!(
                    "{} for {} answered HTTP {}: {}",
                    resource.path(),
                    to.label(),
                    response.status,
                    truncate_chars(&response.body, 500)
                ));
            }
            sid
        })
    }
}

/// How long after an attempt's `until` its call may still appear with a later `date_created`
/// in ListCall, in seconds: 120 (Twilio creating a call late under load, and the difference
/// between this machine's clock and Twilio's).
pub const UNTIL_SLACK_SECS: u64 = 120;

/// What ListCall's answer says of an attempt of unknown fate ([`SIDS_KEY`] explains the rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placed {
    /// No call pagerpipe does not know of was made since: not placed.
    No,
    /// Placed: the calls nobody holds are at least as many as the attempts that may own them.
    /// The SID when this attempt is the only such attempt, so the one such call is its own.
    Yes(Option<String>),
    /// Sent more than half of [`SIDS_KEPT_SECS`] ago: its calls cannot be told apart from
    /// calls whose attempts are forgotten.
    TooOld,
    /// Fewer such calls than such attempts: this one may or may not be among them.
    CannotTell {
        /// Calls to that number since, that no attempt holds.
        calls: usize,
        /// Attempts to that number, SID unknown, that may have reached Twilio since.
        attempts: usize,
    },
}

impl Placed {
    /// Read ListCall's answer `resp` for the call of unknown fate `create` sent at `since`
    /// (Unix seconds), attempt `attempt` ([`SIDS_KEY`]'s id), with `known` the incident's stored
    /// references and the calls noted per recipient (`known` `recipients:sids`, read after the
    /// list was fetched). `None`: the answer is no list of calls.
    ///
    /// "Placed" needs the attempt itself among the attempts noted with no SID: when it is not
    /// (the notes could not be read, or were forgotten, or its note failed), the count says
    /// nothing about it, and only "no call nobody holds" still means not placed.
    pub(crate) fn of(create: &Create, pages: &[Response], since: u64, known: &Map<String, Value>, attempt: Option<&str>) -> Option<Placed> {
        if common::clock::age(since, common::clock::now_unix()) > SIDS_KEPT_SECS / 2 {
            return Some(Placed::TooOld);
        }
        let (calls, attempts, counted) = unknown_calls(create, pages, since, known, attempt)?;
        Some(match (calls.len(), attempts) {
            (0, _) => Placed::No,
            (n, a) if !counted => Placed::CannotTell { calls: n, attempts: a },
            (1, 1) => Placed::Yes(calls.into_iter().next()),
            (n, a) if n >= a => Placed::Yes(None),
            (n, a) => Placed::CannotTell { calls: n, attempts: a },
        })
    }
}

/// What ListCall's answer (`pages`, every page of it: the spec gives no order, so a call may be
/// on any page) holds for a call of unknown fate `create` sent at `since` (Unix seconds): the
/// SIDs of the calls to its `To` from its `From` created from `since` on (Twilio's
/// `date_created`, RFC 2822, one-second resolution) that no attempt holds — neither the
/// incident's (`known` `call_sids`) nor any noted in `known` `recipients:sids` — in the
/// order listed; how many attempts to that number with no SID could have reached Twilio since
/// (`until` at most [`UNTIL_SLACK_SECS`] before `since`; at least 1, the one looked up); and
/// whether `attempt` is among them. A call whose creation time cannot be read is left out.
/// `None`: a page is no list of calls.
fn unknown_calls(
    create: &Create,
    pages: &[Response],
    since: u64,
    known: &Map<String, Value>,
    attempt: Option<&str>,
) -> Option<(Vec<String>, usize, bool)> {
    let mut listed: Vec<Value> = Vec::new();
    for page in pages {
        let v: Value = serde_json::from_str(&page.body).ok()?;
        listed.extend(v.get("calls")?.as_array()?.iter().cloned());
    }
    if pages.is_empty() {
        return None;
    }
    let (to, from, since) = (create.field("To"), create.field("From"), since.saturating_sub(1));
    let noted = known.get(SIDS_KEY).and_then(|r| r.get(to)).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut known_sids: Vec<String> = noted.iter().filter_map(|p| p.get(2).and_then(Value::as_str).map(str::to_string)).collect();
    known_sids.extend(known.get(CALL_SIDS).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string));
    // An attempt begun before `since` may have reached Twilio after it (a slow request): it
    // counts unless its deadline had passed by then (an entry without one always counts).
    // Counting too many only makes the lookup say "cannot tell" (a page twice, never none).
    let open: Vec<&Value> = noted
        .iter()
        .filter(|p| p.get(2).is_none_or(Value::is_null))
        .filter(|p| p.get(3).and_then(Value::as_u64).is_none_or(|until| until.saturating_add(UNTIL_SLACK_SECS) >= since))
        .collect();
    let counted = attempt.is_some_and(|id| open.iter().any(|p| p.get(1).and_then(Value::as_str) == Some(id)));
    let unanswered = open.len().max(1);
    // A call listed on two pages (the list moved between them) is one call.
    let mut seen = std::collections::HashSet::new();
    let candidates = listed
        .iter()
        .filter(|c| {
            let text = |k: &str| c.get(k).and_then(Value::as_str);
            text("to") == Some(to)
                && text("from") == Some(from)
                && text("sid").is_some_and(|sid| !known_sids.iter().any(|k| k == sid))
                && text("date_created").and_then(rfc2822_secs).is_some_and(|t| t >= since)
        })
        .filter_map(|c| c.get("sid").and_then(Value::as_str).map(str::to_string))
        .filter(|sid| seen.insert(sid.clone()))
        .collect();
    Some((candidates, unanswered, counted))
}

/// Twilio's `MachineDetection` from the `machine_detection` setting: `null`, `false`, `""`,
/// `"none"` → off; `true`, `"Enable"` → `Enable`; `"DetectMessageEnd"` (any case). Other
/// values exit 78.
fn machine_detection(v: &Value) -> Result<Option<&'static str>> {
    let bad = || {
        let shown = match v {
            Value::String(s) => config::shown(s),
            other => common::config::shown(&other.to_string()),
        };
        Code::Config.msg(format!("settings `twilio.machine_detection`: {shown} is not one of Enable, DetectMessageEnd, false"))
    };
    match v {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::Bool(true) => Ok(Some("Enable")),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "false" | "off" => Ok(None),
            "enable" | "true" => Ok(Some("Enable")),
            "detectmessageend" => Ok(Some("DetectMessageEnd")),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// `template` rendered for `event` as an SMS `Body`, cut to [`MAX_SMS_CHARS`]. Twilio refuses a
/// message without a body (create-Message needs one of `Body`, `MediaUrl`, `ContentSid`; error
/// 21602, `specs/README.md`), so a template that renders only blanks (`{output}` alone, and the
/// check printed nothing) gives way to `fallback`, the language's default message, rather than
/// the page being refused for good.
fn sms_text(template: &Template, fallback: &'static str, event: &Event) -> String {
    truncate_utf16(&template.render_or(event, &Template::constant(fallback)), MAX_SMS_CHARS)
}

/// Unix seconds of an RFC 2822 date as Twilio writes them (`Tue, 01 Dec 2026 14:00:00 +0000`).
fn rfc2822_secs(s: &str) -> Option<u64> {
    let gmt = s.trim().strip_suffix("+0000").map(|d| format!("{}GMT", d)).unwrap_or_else(|| s.trim().to_string());
    httpdate::parse_http_date(&gmt).ok()?.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// base64 of `user:password` for an HTTP Basic `Authorization` header.
fn basic(credentials: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(credentials)
}

/// Whether `sid` is `prefix` (`AC`, `SK`, `CA` …) and 32 hex digits: the pattern of every SID
/// in the spec (`^CA[0-9a-fA-F]{32}$` for a call).
pub(crate) fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.len() == 34 && sid.starts_with(prefix) && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// `sid` must be `prefix` + 32 hex digits (exit 78 naming `twilio.<setting>`).
fn check_sid(setting: &str, sid: &str, prefix: &str) -> Result<()> {
    if is_sid(sid, prefix) {
        Ok(())
    } else {
        Err(Code::Config.msg(format!("settings `twilio.{setting}`: {} is not {prefix} followed by 32 hex digits", config::shown(sid))))
    }
}

/// Whether `s` is an E.164 number: `+`, a non-zero digit, then 1 to 14 digits.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else { return false };
    (2..=15).contains(&digits.len()) && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `number` must be E.164 (exit 78 naming `setting` and the number).
fn check_e164(setting: &str, number: &str) -> Result<()> {
    if is_e164(number) {
        Ok(())
    } else {
        Err(Code::Config.msg(format!(
            "settings `{setting}`: {} is not an E.164 number (+, country code and number, at most 15 digits, no spaces, e.g. +14155550100)",
            // A number is at most 16 characters; anything longer may be a pasted secret.
            config::shown_within(number, 20)
        )))
    }
}

/// A recipient given as an object in `twilio.recipients`: its keys, as [`recipients`] reads
/// them (any JSON value: the types are checked there) and as [`common::unread`] names the
/// others (`"phnoe"`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RecipientObject {
    /// Shown in log lines.
    name: Value,
    /// The E.164 number.
    phone: Value,
}

/// Recipients from `twilio.recipients`: a list of E.164 strings and `{name, phone}` objects,
/// or one comma-separated string (from the environment). Every number is checked.
fn recipients(v: &Value) -> Result<Vec<Recipient>> {
    let items: Vec<Value> = match v {
        Value::Null => Vec::new(),
        Value::String(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Value::from).collect(),
        Value::Array(a) => a.clone(),
        other => {
            return Err(Code::Config
                .msg(format!("settings `twilio.recipients`: expected a list of numbers, found {}", config::shown(&other.to_string()))));
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let setting = format!("twilio.recipients[{i}]");
        let r = match item {
            Value::String(s) => Recipient { name: None, phone: s.trim().to_string() },
            Value::Object(o) => {
                let o: RecipientObject = serde_json::from_value(Value::Object(o.clone())).unwrap_or_default();
                let text = |v: &Value| v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
                let Some(phone) = text(&o.phone) else {
                    return Err(Code::Config.msg(format!("settings `{setting}`: an object needs a \"phone\" string")));
                };
                Recipient { name: text(&o.name), phone }
            }
            other => return Err(Code::Config.msg(format!("settings `{setting}`: expected a number or {{name, phone}}, found {other}"))),
        };
        check_e164(&setting, &r.phone)?;
        out.push(r);
    }
    Ok(out)
}

/// Twilio's error `code` in the answer `resp`, when it has one.
fn twilio_code(resp: &Response) -> Option<u64> {
    serde_json::from_str::<Value>(&resp.body).ok()?.get("code")?.as_u64()
}

/// The reason a failed delivery carries.
/// 2xx delivered; 20429 retryable whatever the status; otherwise by status (429, 5xx retryable;
/// other 4xx permanent), explained with Twilio's `code`, `message` and `more_info`, and for
/// 21211 / 21212 the number at fault (`to` / `from`). A call's create: [`classify_call`].
fn classify(resp: &Response, to: &str, from: &str) -> Outcome {
    let v: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    let code = v.get("code").and_then(Value::as_u64);
    let explain = || {
        let text = |k: &str| truncate_chars(v.get(k).and_then(Value::as_str).unwrap_or("").trim(), 300);
        let mut out = format!("HTTP {}", resp.status);
        if let Some(c) = code {
            out.push_str(&format!(" Twilio error {c}"));
        }
        let message = text("message");
        if !message.is_empty() {
            out.push_str(&format!(": {message}"));
        }
        match code {
            Some(21211) => out.push_str(&format!(" (To {to}: check twilio.recipients)")),
            Some(21212) => out.push_str(&format!(" (From {from}: check twilio.from, it must be a Twilio number of the account)")),
            Some(20003) => out.push_str(" (check the account SID and auth token / API key)"),
            _ => {}
        }
        let more = text("more_info");
        if !more.is_empty() {
            out.push_str(&format!(" {more}"));
        }
        out
    };
    if code == Some(20429) && !(200..300).contains(&resp.status) {
        return Outcome::Retry(Retry { reason: explain(), fate: common::outcome::Fate::NotSent, after: resp.retry_after });
    }
    classify_json_api_with(resp, explain)
}

/// `outcome`, the classification of `resp` (an answer to a create-Call request), with a 5xx
/// answer's fate unknown: Twilio may have placed the call before the error came back (a
/// gateway's 500, 502 or 504 after its backend created the call, a 503 from an edge that had
/// passed the request on). The spec documents no 5xx for a create, and only 429 / 20429 as
/// always safe to retry, so a 5xx (with `Retry-After` too) promises nothing: the call is looked
/// up with ListCall before it is placed again, as one whose answer never came. A 20429 (rate
/// limited, whatever the status) stays safe to retry at once. SMS keeps retrying a 5xx: the
/// spec extract has no way to look a message up (no ListMessage).
fn classify_call(resp: &Response, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Retry(r) if (500..=599).contains(&resp.status) && twilio_code(resp) != Some(20429) => {
            Outcome::Retry(Retry { fate: common::outcome::Fate::Unknown, ..r })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(v: Value) -> Result<Twilio> {
        let m = match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Twilio::from_settings(&m, &config::typed("twilio", &m)?)
    }

    const SID: &str = "AC0123456789abcdef0123456789ABCDEF";

    /// A ListCall answer holding `calls` (SID, created at, Unix seconds) to +14155550101.
    fn listed(calls: &[(&str, u64)]) -> Response {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(sid, at)| {
                let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(*at)).replace("GMT", "+0000");
                json!({"sid": sid, "to": "+14155550101", "from": "+14155550199", "date_created": date})
            })
            .collect();
        Response { status: 200, body: json!({"calls": calls}).to_string(), retry_after: None, location: None }
    }

    fn placed(calls: &[(&str, u64)], noted: Value, since: u64) -> Placed {
        let create =
            Create { resource: Resource::Calls, form: vec![("To".into(), "+14155550101".into()), ("From".into(), "+14155550199".into())] };
        let known: Map<String, Value> = json!({ SIDS_KEY: { "+14155550101": noted } }).as_object().cloned().unwrap_or_default();
        Placed::of(&create, &[listed(calls)], since, &known, Some("x")).expect("a list of calls")
    }

    #[test]
    fn a_call_listed_on_two_pages_is_one_call() {
        let t = common::clock::now_unix();
        let create =
            Create { resource: Resource::Calls, form: vec![("To".into(), "+14155550101".into()), ("From".into(), "+14155550199".into())] };
        // Two attempts of unknown fate, one call, listed again on the next page (the list moved
        // between the two requests): counted twice, it read as both attempts placed.
        let known: Map<String, Value> = json!({ SIDS_KEY: { "+14155550101": [[t, "x", null, t + 10], [t, "y", null, t + 10]] } })
            .as_object()
            .cloned()
            .unwrap_or_default();
        let pages = [listed(&[("CA1", t)]), listed(&[("CA1", t)])];
        assert_eq!(Placed::of(&create, &pages, t, &known, Some("x")), Some(Placed::CannotTell { calls: 1, attempts: 2 }));
    }

    #[test]
    fn a_call_of_unknown_fate_is_placed_only_when_no_other_attempt_can_own_the_calls_nobody_holds() {
        let t = common::clock::now_unix();
        // Its own call, alone: known to be it.
        assert_eq!(placed(&[("CA1", t)], json!([[t, "x", null, t + 10]]), t), Placed::Yes(Some("CA1".into())));
        // No call nobody holds: not placed.
        assert_eq!(placed(&[("CA1", t)], json!([[t, "x", null, t + 10], [t, "y", "CA1", t + 10]]), t), Placed::No);
        // Another incident's attempt of unknown fate may own the one call: cannot tell (this is
        // how a page was lost: another attempt's call taken for this one's).
        assert_eq!(
            placed(&[("CA2", t)], json!([[t, "x", null, t + 10], [t, "y", null, t + 10]]), t),
            Placed::CannotTell { calls: 1, attempts: 2 }
        );
        // Two calls nobody holds, two such attempts: placed, but which is its own is unknown.
        assert_eq!(placed(&[("CA2", t), ("CA3", t)], json!([[t, "x", null, t + 10], [t, "y", null, t + 10]]), t), Placed::Yes(None));
        // An attempt whose deadline passed well before `since` (more than the slack for a
        // late call or a clock apart) cannot own a call made since; one just before it can.
        let later = t + 10 + UNTIL_SLACK_SECS + 60;
        assert_eq!(
            placed(&[("CA2", later)], json!([[t, "old", null, t + 10], [later, "x", null, later + 10]]), later),
            Placed::Yes(Some("CA2".into()))
        );
        assert_eq!(
            placed(&[("CA2", t + 60)], json!([[t, "old", null, t + 10], [t + 60, "x", null, t + 70]]), t + 60),
            Placed::CannotTell { calls: 1, attempts: 2 }
        );
        // An attempt noted before deadlines were (no `until`) always counts.
        assert_eq!(
            placed(&[("CA2", later)], json!([[t, "old", null], [later, "x", null, later + 10]]), later),
            Placed::CannotTell { calls: 1, attempts: 2 }
        );
        // Its own note missing (unreadable, forgotten, never written): the count says nothing
        // about it, and another attempt's call is never taken for it; no unknown call at all
        // still means not placed.
        assert_eq!(placed(&[("CA2", t)], json!([]), t), Placed::CannotTell { calls: 1, attempts: 1 });
        assert_eq!(placed(&[("CA2", t)], json!([[t, "y", null, t + 10]]), t), Placed::CannotTell { calls: 1, attempts: 1 });
        assert_eq!(placed(&[], json!([]), t), Placed::No);
        // Sent over an hour ago: its attempt may be forgotten already.
        assert_eq!(placed(&[("CA2", t)], json!([[t, "x", null, t + 10]]), t - SIDS_KEPT_SECS / 2 - 60), Placed::TooOld);
    }

    #[test]
    fn e164() {
        for ok in ["+14155550100", "+819012345678", "+12"] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in ["14155550100", "+04155550100", "+1 415 555 0100", "+1234567890123456", "+1", "+", "+1-415"] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn settings_are_checked_at_load() {
        let p = provider(json!({"account_sid": SID, "auth_token": "t0k3n", "from": "+14155550100",
            "recipients": ["+14155550101", {"name": "Hanako", "phone": "+819012345678"}]}))
        .expect("provider");
        assert!(p.ready().is_ok());
        assert_eq!(p.recipients[1], Recipient { name: Some("Hanako".into()), phone: "+819012345678".into() });
        assert_eq!(p.credentials.as_deref(), Some(&*format!("{SID}:t0k3n")));
        assert_eq!(p.base, API_URL);
        for (settings, named) in [
            (json!({"recipients": ["+14155550101", "+1 415 555"]}), "twilio.recipients[1]"),
            (json!({"recipients": [{"name": "x"}]}), "twilio.recipients[0]"),
            (json!({"from": "0312345678"}), "twilio.from"),
            (json!({"account_sid": "AC123"}), "twilio.account_sid"),
            (json!({"api_key_sid": "SK0123456789abcdef0123456789abcdef"}), "twilio.api_key_secret"),
            (json!({"ring_timeout": 601}), "twilio.ring_timeout"),
            (json!({"channels": ["voice", "fax"]}), "twilio.channels"),
            (json!({"language": "ja JP"}), "twilio.language"),
            (json!({"message": "{host}"}), "twilio.message"),
            (json!({"test_message": "{nope}"}), "twilio.test_message"),
            (json!({"mode": "round-robin"}), "twilio.mode"),
            (json!({"rounds": 0}), "twilio.rounds"),
            (json!({"poll_interval": "0s"}), "twilio.poll_interval"),
            (json!({"rotation": "weekly"}), "twilio.rotation"),
            (json!({"rotation": "daily", "timezone": "JST"}), "twilio.timezone"),
            (json!({"machine_detection": "yes please"}), "twilio.machine_detection"),
            (json!({"pause": 61}), "twilio.pause"),
            (json!({"call_caps": {"15m": 0}}), "twilio.call_caps.15m"),
        ] {
            let err = provider(settings.clone()).expect_err(&settings.to_string());
            assert_eq!(err.code, Code::Config);
            assert!(err.to_string().contains(named), "{err}");
        }
        let p = provider(json!({"account_sid": SID, "api_key_sid": "SK0123456789abcdef0123456789abcdef", "api_key_secret": "s3cr3t",
            "auth_token": "ignored", "recipients": "+14155550101, +14155550102"}))
        .expect("provider");
        assert_eq!(p.credentials.as_deref(), Some("SK0123456789abcdef0123456789abcdef:s3cr3t"));
        assert_eq!(p.recipients.len(), 2);
        assert!(p.ready().expect_err("no from").to_string().contains("twilio.from"));
        // Sequential mode needs time for one call in an event's invocation, not in a flush,
        // which carries a run on over as many flushes as it takes.
        let p = provider(json!({"mode": "sequential"})).expect("a provider a flush can use");
        let err = p.fits(Duration::from_secs(10)).expect_err("10s is shorter than one call");
        assert_eq!(err.code, Code::Config);
        assert!(err.to_string().contains("twilio.timeout"), "{err}");
        assert!(p.fits(Duration::from_secs(45)).is_ok());
        assert!(provider(json!({"mode": "broadcast"})).expect("provider").fits(Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn machine_detection_and_mode_settings() {
        let md = |v: Value| machine_detection(&v).expect("valid");
        assert_eq!(md(Value::Null), None);
        assert_eq!(md(json!(false)), None);
        assert_eq!(md(json!("")), None);
        assert_eq!(md(json!(true)), Some("Enable"));
        assert_eq!(md(json!("enable")), Some("Enable"));
        assert_eq!(md(json!("DetectMessageEnd")), Some("DetectMessageEnd"));
        let p = provider(json!({"machine_detection": "Enable", "mode": "sequential", "timeout": "2m", "ring_timeout": 20, "rounds": "3"}))
            .expect("provider");
        assert_eq!((p.mode, p.rounds, p.poll_interval), (Mode::Sequential, 3, Duration::from_secs(3)));
        let r = Recipient { name: None, phone: "+14155550101".into() };
        let form = p.call_form(&r, "<Response/>");
        assert_eq!(form.last(), Some(&("MachineDetection".to_string(), "Enable".to_string())));
        // Broadcast (the default) needs no long timeout; sequential needs one call's worth.
        assert!(provider(json!({"ring_timeout": 60})).is_ok());
        assert!(provider(json!({"mode": "sequential", "ring_timeout": 15, "timeout": "30s"})).is_ok());
    }

    #[test]
    fn twilio_errors_are_explained_and_classified() {
        let r = |status, body: Value| Response { status, body: body.to_string(), retry_after: None, location: None };
        let err = |code: u64, status: u16| json!({"code": code, "message": "m", "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status});
        assert_eq!(
            classify(&r(400, err(21211, 400)), "+15005550001", "+15005550006"),
            Outcome::Refused(
                "HTTP 400 Twilio error 21211: m (To +15005550001: check twilio.recipients) https://www.twilio.com/docs/errors/21211".into()
            )
        );
        assert!(matches!(classify(&r(400, err(21212, 400)), "+1", "+15005550006"), Outcome::Refused(m) if m.contains("From +15005550006")));
        assert!(matches!(classify(&r(401, err(20003, 401)), "", ""), Outcome::Refused(m) if m.contains("20003")));
        assert!(matches!(classify(&r(429, err(20429, 429)), "", ""), Outcome::Retry(_)));
        assert!(matches!(classify(&r(400, err(20429, 400)), "", ""), Outcome::Retry(_)));
        assert!(matches!(classify(&r(503, json!(null)), "", ""), Outcome::Retry(r) if r.reason == "HTTP 503"));
        assert_eq!(classify(&r(201, json!({"sid": "CA"})), "", ""), Outcome::Delivered(()));
        // A call's create: a 5xx may have placed it (unknown fate); a 429 / 20429 did not.
        use common::outcome::Fate;
        let call = |resp: &Response| classify_call(resp, classify(resp, "", ""));
        for status in [500, 502, 503, 504] {
            assert!(matches!(call(&r(status, err(20500, status))), Outcome::Retry(r) if r.fate == Fate::Unknown), "{status}");
        }
        assert!(matches!(call(&r(429, err(20429, 429))), Outcome::Retry(r) if r.fate == Fate::NotSent));
        assert!(matches!(call(&r(503, err(20429, 503))), Outcome::Retry(r) if r.fate == Fate::NotSent));
        assert!(matches!(call(&r(400, err(21211, 400))), Outcome::Refused(_)));
        assert!(matches!(classify(&r(502, json!(null)), "", ""), Outcome::Retry(r) if r.fate == Fate::NotSent), "an SMS: retried");
    }

    #[test]
    fn basic_credentials() {
        assert_eq!(format!("Basic {}", basic("Aladdin:open sesame")), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    /// README.md's "Who may set what" says what `SETTINGS` says.
    #[test]
    fn the_readme_says_who_may_set_each_setting() {
        let found = common::trust::readme::disagreements(include_str!("../../README.md"), Twilio::NAME, Twilio::SETTINGS);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}
