//! Slack war rooms: what requests an event becomes, and what is remembered about them.
//!
//! Contract: `../shared/specs/slack-web-api.md` (the Slack Web API subset a per-incident
//! channel needs; §8 sums up the flow). Two modes, by settings:
//!
//! - **war room** (default, `channel_template`): a **trigger** with no open incident opens a
//!   channel: `conversations.create` with a name from `channel_template` (default
//!   `inc-{date}-{entity}-{check}`, made valid by [`crate::name`]); on `name_taken` the channel
//!   this incident already has (its stored name), else the name with `-2`, `-3`, … (up to
//!   [`MAX_NAME_TRIES`] names), then the name with a random suffix; `is_private`;
//!   `conversations.setTopic` (status, entity/check, the output's first line, the link); `conversations.invite` of `responders` with
//!   `force=true` (a user Slack does not know is logged, the others are invited; ≤ 100 per
//!   call); then `chat.postMessage` with the alert. The channel ID, its name and the alert's
//!   `ts` go into the incident record's `refs` (`channel_id`, `channel_name`, `ts`).
//! - **one channel** (`channel`): the alert is posted to that existing channel; the rest is the
//!   same thread logic, and nothing is created, invited or archived.
//!
//! Then, for the open incident: a repeat after `refresh` is a reply in the alert's thread; a
//! severity change too, also broadcast to the channel (`reply_broadcast`); an acknowledge is a
//! thread reply; a recovery is a thread reply broadcast to the channel, and with
//! `archive_on_resolve` the war room is archived afterwards (`already_archived` is fine; a
//! failed archive is a warning). When the war room of an open incident was archived or deleted,
//! or the bot removed from it (`is_archived`, `channel_not_found`, `not_in_channel` on the
//! update), a new war room is opened and the update
//! becomes its first message (at `--flush` too, for an update spooled meanwhile: the run
//! [`Slack::resume`] carries on); in one-channel mode that is an error naming the setting. So with
//! a war room remembered for an alert that never went out: the next failure's alert opens a
//! new one when that room is gone, and so does the spooled alert itself at `--flush`.
//! A failure for the open incident that queues behind another delivery of it (the incident
//! busy, or older requests spooled: maybe its recovery) is spooled as a run decided at
//! `--flush` from the ledger then ([`Sent::queued`]): the update while the incident is still
//! open, a new war room with the alert when it recovered meanwhile, as live. A recovery or an
//! acknowledgement queued behind another delivery goes, at `--flush`, into the war room the
//! record holds then ([`Sent::follows`]): what it queued behind may have opened a new one.
//!
//! Errors are classified by Slack's code ([`crate::api`]): retryable ones are retried within
//! the deadline and then spooled together with the steps after them (a step that needs the
//! channel ID or the alert's `ts` from a spooled answer gets it filled in at `--flush`); an auth
//! or scope error on the create or the post exits 69 naming what to fix (the scope), and any
//! other code exits 69 with Slack's code (spec §5: both are "perm"). Topic and invite are part of the war room but not of the page: their
//! failures are logged (errors naming the scope or the user) and the alert still goes out.

use common::config::{self, Common, de};
use common::event::Event;
use common::exit::{Code, Result};
use common::filter::Action;
use common::http::{Request, Response};
use common::outcome::{Outcome, Retry};
use common::pipeline::{Ctx, Done, Found, Job, Provider, Resumed};
use common::state::{Incident, NoRecord};
use common::template::Template;
use common::trust::Trust;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::api::{self, Call, MAX_INVITE, Method, SlackError, Thread};
use crate::message::{self, Kind, Mention};
use crate::mrkdwn;
use crate::name::{self, ChannelTemplate};

pub use crate::api::{CHANNEL_ID, TS};
/// `refs` key of the war room's name.
pub const CHANNEL_NAME: &str = "channel_name";
/// How many numbered names are tried on `name_taken` (the template's, then `-2` … `-5`);
/// then one with a random suffix ([`crate::name::with_random_suffix`]).
pub const MAX_NAME_TRIES: u32 = 5;
/// How many pages of `conversations.list` are read when looking for a war room by name.
pub const MAX_LIST_PAGES: u32 = 5;

/// Shown in `--dry-run` output where Slack's answers would go (dry runs send nothing).
const DRY_CHANNEL: &str = "{channel id}";
const DRY_TS: &str = "{ts}";

/// A call as handler-slack sends it or the spool keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// The call.
    #[serde(flatten)]
    pub call: Call,
    /// Sent by the invocation itself, whose answer [`api::read`] judges (so every readable
    /// answer is a delivery here), rather than from the spool (judged by Slack's code alone,
    /// [`api::classify_spooled`]). Never stored: what is read back from the spool is not live.
    #[serde(skip)]
    pub live: bool,
    /// A recovery's or an acknowledgement's post: at `--flush`, a war room that is gone
    /// ([`room_gone`]) has nothing more to say to it, and the incident is recorded as the event
    /// says, as a live invocation does ([`Session::follow_up`]), rather than left open.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closes: bool,
    /// A trigger's message into a war room: the war room to open in its place should that
    /// room be gone when `--flush` sends it ([`room_gone`]), as a live invocation does
    /// ([`Session::update`]); what the event says of it, decided when it was spooled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub or_else: Option<Box<Replacement>>,
    /// The message met a war room that is gone at `--flush`: the entry is now the run that
    /// opens [`Sent::or_else`] and posts its alert there ([`Provider::is_run`]), written into the
    /// spool before any of it is sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replacing: bool,
    /// A failure's message into the war room of its incident stored open, queued behind
    /// another delivery of it (the incident busy, or older requests spooled), which may be its
    /// recovery: a run ([`Provider::is_run`]) decided at `--flush` from the ledger then
    /// ([`Slack::resume`]): `call` while the ledger still holds the incident open, the war room
    /// [`Sent::or_else`] with its alert when the incident recovered meanwhile (a failure after a
    /// recovery is a new incident, as live). An entry of an earlier version reads as `false`
    /// (sent as it was spooled).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    /// A message (a recovery's, an acknowledgement's) or a recovery's archive queued behind
    /// another delivery of its incident in war-room mode ([`Session::queue_behind`]): at
    /// `--flush` it goes to the war room the record holds then, a reply under that room's
    /// alert ([`following`]), not to the room the record held when it was queued. What was
    /// spooled ahead of it may have recovered that room and opened another (a failure after a
    /// recovery is a new incident): the channel taken when it was queued, and the thread's
    /// `ts` left to the flush, posted the RECOVERED into the old room threaded under the new
    /// room's alert (`thread_not_found`), and the new room never recovered. The channel it
    /// holds is where it goes when the record names no room at the flush. An entry of an
    /// earlier version reads as `false` (sent as it was spooled).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follows: bool,
    /// A reply whose thread Slack refused at `--flush` ([`thread_refused`]), posted to the
    /// channel in its place ([`Slack::instead`]): a message outside a thread that is not an
    /// alert, so its `ts` is not the incident's thread ([`Slack::spooled_refs`]), as a live
    /// reply posted to the channel so is not ([`Session::reply`]). Taken for an alert, an
    /// acknowledgement's or a severity change's became the thread of every later reply (the
    /// recovery threaded under the acknowledgement), and a recovery's the recovered record's
    /// alert. An entry of an earlier version reads as `false` (its `ts` recorded, as before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unthreaded: bool,
}

impl Sent {
    /// `call` as read back from the spool: not live, nothing more to it.
    pub fn of(call: Call) -> Sent {
        Sent { call, live: false, closes: false, or_else: None, replacing: false, queued: false, follows: false, unthreaded: false }
    }
}

/// The war room a spooled trigger's message opens when the room it was for is gone at
/// `--flush` ([`Sent::or_else`]): what comes from the event, rendered when it was spooled (a
/// flush has no event). The name's suffix (past the gone room's), privacy and the responders
/// come from the record and the settings at the flush, as for a live replacement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replacement {
    /// The name from `channel_template` ([`crate::name`]), before a suffix.
    pub base: String,
    /// The topic ([`message::topic`]).
    pub topic: String,
    /// The topic's words for the incident ([`message::topic_incident`]): a channel of the name
    /// whose topic names them is the one a flush killed or out of time opened ([`api::find_own`]).
    pub incident: String,
    /// The alert, the new room's first message ([`message::body`]).
    pub alert: Value,
    /// When the flush began to open it, Unix seconds (0 until then): a channel of its name
    /// created since is its own. For a failure queued to be decided at the flush
    /// ([`Sent::queued`]), when it was queued: its entry is not written again before the
    /// flush opens the room, and a flush killed after the create finds the room by it.
    #[serde(default)]
    pub asked: u64,
}

/// `refs` key of the war rooms a flush replaced for the open incident (channel IDs): a spooled
/// call queued behind the message that replaced one goes to the room the record holds instead
/// ([`followed`]).
pub const REPLACED: &str = "replaced_channels";

/// [`Provider::known`] key of the war rooms (channel IDs) the ledger holds open for any incident.
const HELD_ROOMS: &str = "held_channels";

/// What a war room opened in place of one that is gone has come to so far ([`Slack::resume`]),
/// in the run's progress notes: a flush killed or out of time leaves them for the next one,
/// which goes on from there instead of opening a second room.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Opening {
    /// The name asked for last (noted before its create goes out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The room, once Slack answered its create (or a lookup found it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel_id: Option<String>,
    /// The alert's `ts`, once posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ts: Option<String>,
}

/// The `slack` settings section (the shared settings live in [`Common`]).
#[derive(Debug, Deserialize)]
#[serde(default)]
struct Settings {
    token: Option<String>,
    channel: Option<String>,
    channel_template: String,
    #[serde(deserialize_with = "de::boolean")]
    is_private: bool,
    #[serde(deserialize_with = "de::list")]
    responders: Vec<String>,
    link_template: Option<String>,
    #[serde(deserialize_with = "de::boolean")]
    archive_on_resolve: bool,
    mention: Mention,
    #[serde(deserialize_with = "de::boolean")]
    test: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token: None,
            channel: None,
            channel_template: name::DEFAULT_TEMPLATE.into(),
            is_private: false,
            responders: Vec::new(),
            link_template: None,
            archive_on_resolve: false,
            mention: Mention::None,
            test: false,
        }
    }
}

/// Where alerts go.
#[derive(Debug)]
enum Target {
    /// A new channel per incident.
    WarRoom { template: ChannelTemplate, is_private: bool, archive_on_resolve: bool },
    /// One existing channel (ID such as `C0123ABCD`, or a name).
    Channel(String),
}

/// The Slack provider, built from settings.
#[derive(Debug)]
pub struct Slack {
    token: Option<String>,
    api_url: String,
    target: Target,
    responders: Vec<String>,
    link: Option<Template>,
    mention: Mention,
    test: bool,
}

/// What the incident record says about its Slack messages.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    channel_id: String,
    channel_name: Option<String>,
    ts: Option<String>,
}

impl Stored {
    fn from_refs(refs: &Map<String, Value>) -> Option<Stored> {
        let s = |k: &str| refs.get(k).and_then(Value::as_str).map(str::to_string).filter(|s| !s.is_empty());
        Some(Stored { channel_id: s(CHANNEL_ID)?, channel_name: s(CHANNEL_NAME), ts: s(TS) })
    }

    fn refs(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(CHANNEL_ID.into(), self.channel_id.clone().into());
        if let Some(n) = &self.channel_name {
            m.insert(CHANNEL_NAME.into(), n.clone().into());
        }
        if let Some(t) = &self.ts {
            m.insert(TS.into(), t.clone().into());
        }
        m
    }

    fn shown(&self) -> String {
        match &self.channel_name {
            Some(n) => format!("#{n} {}", self.channel_id),
            None => self.channel_id.clone(),
        }
    }
}

/// The stored references of the open incident, or of a war room remembered for it before
/// anything was applied: opened by an invocation whose alert is still spooled (on this host or
/// another sharing the ledger), so that the next failure posts its alert there instead of
/// opening a second room.
fn stored(job: &Job<'_>) -> Option<Stored> {
    job.previous.filter(|p| p.open || p.last_action.is_none()).and_then(|p| Stored::from_refs(&p.refs))
}

impl Provider for Slack {
    const NAME: &'static str = "slack";
    const READERS: &'static [common::unread::Reader] = &[common::unread::Reader::of::<Settings>()];
    type Payload = Sent;
    const NO_RECORD: NoRecord = NoRecord::Skip("no record of a page for it: no war room was opened, so there is nowhere to post it");

    /// The token, the channel, the war room's name and who is invited or mentioned decide
    /// which workspace and which people a page reaches: the operator's or the check's. So does
    /// the link: `link_template` is shown as `open in monitoring` behind the operator's label,
    /// so one from an entity annotation would let the monitored host put a link of its choosing
    /// (a look-alike login page) in the war room under that label. `test` is the operator's.
    const SETTINGS: &'static [(&'static str, Trust)] = &[
        ("token", Trust::Check),
        ("channel", Trust::Check),
        ("channel_template", Trust::Check),
        ("is_private", Trust::Check),
        ("responders", Trust::Check),
        ("archive_on_resolve", Trust::Check),
        ("mention", Trust::Check),
        ("link_template", Trust::Check),
    ];

    fn from_settings(section: &Map<String, Value>, common: &Common) -> Result<Self> {
        let s: Settings = config::typed("slack", section)?;
        let channel = s.channel.as_deref().map(|c| c.trim().trim_start_matches('#').to_string()).filter(|c| !c.is_empty());
        let target = match channel {
            Some(c) => {
                if c.chars().any(|ch| ch.is_whitespace() || ch == ',') || c.len() > 80 {
                    return Err(Code::Config.msg(format!(
                        "settings `slack.channel`: {} is not a channel ID (C0123ABCD) or name; give one existing channel",
                        config::shown_within(&c, 24)
                    )));
                }
                Target::Channel(c)
            }
            None => Target::WarRoom {
                template: ChannelTemplate::parse("slack.channel_template", &s.channel_template)?,
                is_private: s.is_private,
                archive_on_resolve: s.archive_on_resolve,
            },
        };
        let mut responders = Vec::new();
        for r in s.responders.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
            if !is_user_id(r) {
                return Err(Code::Config.msg(format!(
                    "settings `slack.responders`: {} is not a Slack user ID (U0123ABCD: a member's profile → ⋮ → Copy member ID)",
                    config::shown_within(r, 24)
                )));
            }
            if !responders.iter().any(|x| x == r) {
                responders.push(r.to_string());
            }
        }
        let mention = s.mention;
        let link = match s.link_template.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            Some(l) => Some(Template::parse("slack.link_template", l)?),
            None => None,
        };
        Ok(Slack {
            token: s.token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
            api_url: common.api_url.clone().unwrap_or_else(|| api::DEFAULT_API_URL.into()).trim_end_matches('/').to_string(),
            target,
            responders,
            link,
            mention,
            test: s.test,
        })
    }

    fn secrets(&self) -> Vec<String> {
        self.token.iter().cloned().collect()
    }

    fn ready(&self) -> Result<()> {
        match &self.token {
            None => Err(Code::Config.msg(
                "no Slack bot token: set `slack.token` in a settings file, SLACK_BOT_TOKEN, or --token \
                 (the app's Bot User OAuth Token, xoxb-…)",
            )),
            Some(t) if !common::http::is_header_credential(t) => Err(Code::Config.msg(
                "the Slack token holds whitespace or another character an HTTP header cannot carry (visible ASCII only); \
                 give the xoxb-… token alone",
            )),
            Some(_) => Ok(()),
        }
    }

    fn act(&self, ctx: &Ctx<'_, Self>, job: &Job<'_>) -> Outcome<Done> {
        let mut s = Session::new(self, ctx, job);
        let outcome = if self.test { s.test() } else { s.run() };
        s.finish(outcome)
    }

    fn classify(&self, sent: &Sent, resp: &Response) -> Outcome {
        let method = sent.call.method();
        if sent.live {
            return api::classify_live(method, resp);
        }
        // A recovery's post, or its archive, for a war room that is gone: nothing is left to
        // say or to archive there, as a live recovery finds ([`Session::follow_up`]).
        let ends = sent.closes || matches!(sent.call, Call::Archive { .. });
        match api::classify_spooled(method, resp) {
            Outcome::Refused(_)
                if ends
                    && api::read(method, resp).err().is_some_and(|e| {
                        room_gone(&e.code) && (e.code != "not_in_channel" || matches!(self.target, Target::WarRoom { .. }))
                    }) =>
            {
                Outcome::Delivered(())
            }
            other => other,
        }
    }

    /// Slack answers a token it refuses with HTTP 200 and an auth error code (`invalid_auth`,
    /// `token_revoked`, `missing_scope` …: [`api::auth_refused`]), not a 401.
    fn credentials_refused(resp: &Response) -> bool {
        api::auth_refused(resp)
    }

    /// `POST {api_url}/{method}` with the token in force now; what the call leaves open comes
    /// from the incident's references.
    ///
    /// A call into a war room a flush has replaced since it was spooled ([`followed`]) goes to
    /// the room the record holds now, and so does one queued to follow the record
    /// ([`Sent::follows`], [`following`]).
    fn request(&self, sent: &Sent, refs: &Map<String, Value>) -> std::result::Result<Request, String> {
        let call = if sent.follows { following(&sent.call, refs) } else { followed(&sent.call, refs) };
        call.as_ref().unwrap_or(&sent.call).request(&self.api_url, self.token.as_deref().unwrap_or("xoxb-…"), refs)
    }

    /// A create of unknown fate (sent, no answer) is looked for before it is sent again:
    /// `conversations.list` (§5.8), every page ([`Provider::lookup_next`]).
    fn lookup(&self, sent: &Sent, _since: u64) -> Option<Request> {
        let Call::Create { is_private, .. } = &sent.call else { return None };
        Some(api::list_request(&self.api_url, self.token.as_deref().unwrap_or("xoxb-…"), *is_private, None))
    }

    /// A live create is not noted in flight: the war room's topic, invites and alert come
    /// after it, and only the create would be looked up or sent again after a kill. The war
    /// room as a whole is noted instead, before the create ([`Session::note_turning_over`]):
    /// the next holder opens it (`name_taken`, then the room the killed attempt made,
    /// [`api::find_own`]) and posts its alert.
    fn note_in_flight(&self, sent: &Sent, _action: Action) -> bool {
        !sent.live
    }

    /// The next page of `conversations.list` while its `next_cursor` is not empty: "a short or
    /// even empty page does not mean the end" (§5.8).
    /// The next page, unless this one holds the war room ([`Self::found`] needs no more: a
    /// channel name is unique, and every further page is one more request of the deadline's
    /// and of Slack's rate limit).
    fn lookup_next(&self, sent: &Sent, _since: u64, pages: &[Response]) -> Option<Request> {
        let Call::Create { name, asked, is_private } = &sent.call else { return None };
        let body = api::read(Method::List, pages.last()?).ok()?;
        if api::find_own(&body, name, *asked, None).is_some() {
            return None;
        }
        let cursor = api::next_cursor(&body)?;
        Some(api::list_request(&self.api_url, self.token.as_deref().unwrap_or("xoxb-…"), *is_private, Some(&cursor)))
    }

    /// The war room the lost create made: a channel of its name, the bot in it, created since
    /// the war room was asked for, on any page of the list.
    ///
    /// A page Slack answered with an error (`{"ok": false}`: `internal_error`, `ratelimited`
    /// …), or a 2xx page that is not Slack's (a proxy's HTML), cannot say the war room is not
    /// there: [`Found::Unanswered`], asked again, then kept spooled for a later flush's lookup
    /// (created again, it would open a second war room under the next name). A list that goes on
    /// past the pages read is judged as read: asking again would read the same pages. A lookup
    /// Slack refuses for good ([`api::refuses_lookup`]: `missing_scope` without `channels:read`,
    /// `invalid_auth`, `not_allowed_token_type`, `invalid_arguments` …) will be refused on
    /// every ask: [`Found::Broken`], naming the scope (kept spooled until fixed, exit 78; other
    /// requests go on).
    ///
    /// Nor a war room the ledger holds open for another incident ([`Provider::known`]; the
    /// incident's own record's is in `known` as its `channel_id`): a room whose topic Slack
    /// did not take looks like a lost create's, and a host chooses the names its room is named
    /// after.
    fn found(&self, sent: &Sent, pages: &[Response], _since: u64, known: &Map<String, Value>, _attempt: &str) -> Found {
        let Call::Create { name, asked, .. } = &sent.call else { return Found::No };
        let held = |id: &str| {
            known.get(CHANNEL_ID).and_then(Value::as_str) != Some(id)
                && known.get(HELD_ROOMS).and_then(Value::as_array).is_some_and(|a| a.iter().any(|r| r.as_str() == Some(id)))
        };
        for page in pages {
            match api::read(Method::List, page) {
                Ok(body) => {
                    if let Some((id, name)) = api::find_own(&body, name, *asked, None) {
                        if held(&id) {
                            return Found::No;
                        }
                        return Found::Yes(Stored { channel_id: id, channel_name: Some(name), ts: None }.refs());
                    }
                }
                Err(e) if api::refuses_lookup(page, &e) => return Found::Broken(e.explain()),
                Err(e) => return Found::Unanswered(format!("conversations.list answered {}", e.code)),
            }
        }
        Found::No
    }

    /// A spooled war room whose name was taken meanwhile (`name_taken` at `--flush`: another
    /// incident's room of a name that folds alike, `web.01` and `web-01`, opened first, or an
    /// earlier room of the day the spooling invocation could not know of) asks for the next
    /// name, as a live invocation does: `-2` … `-5` after the template's, then a random
    /// suffix. Refused before, it took the alert and the steps behind it with it.
    ///
    /// A spooled reply whose thread Slack refuses ([`thread_refused`]: the alert takes no
    /// replies, or its thread was locked) goes to the channel itself, as live, and is not
    /// taken for an alert when it is delivered ([`Sent::unthreaded`]).
    ///
    /// A spooled trigger's message (an update, or the alert) into a war room that is gone by
    /// now ([`room_gone`]: archived, deleted, the bot removed) opens a new war room with the
    /// alert, as live ([`Session::update`], [`Session::alert_into`]): the run [`Slack::resume`]
    /// carries on. Refused before, the page (a severity change to CRITICAL, or the incident's
    /// first alert) reached nobody.
    fn instead(&self, sent: &Sent, resp: &Response) -> Option<Sent> {
        if let Call::Post { channel, thread, message } = &sent.call {
            let code = api::read(Method::PostMessage, resp).err()?.code;
            if room_gone(&code) && !sent.replacing && sent.or_else.is_some() && matches!(self.target, Target::WarRoom { .. }) {
                let mut run = sent.clone();
                run.replacing = true;
                if let Some(room) = run.or_else.as_mut() {
                    room.asked = common::clock::now_unix();
                }
                return Some(run);
            }
            if !matches!(thread, Thread::Reply { .. }) || !thread_refused(&code) {
                return None;
            }
            return Some(Sent {
                call: Call::Post { channel: channel.clone(), thread: Thread::Root, message: message.clone() },
                live: false,
                closes: sent.closes,
                or_else: sent.or_else.clone(),
                replacing: false,
                queued: false,
                follows: sent.follows,
                unthreaded: true,
            });
        }
        let Call::Create { name, is_private, asked } = &sent.call else { return None };
        if api::read(Method::Create, resp).err()?.code != "name_taken" {
            return None;
        }
        let numbered = name
            .rsplit_once('-')
            .and_then(|(stem, n)| n.parse::<u32>().ok().filter(|n| (2..=MAX_NAME_TRIES).contains(n)).map(|n| (stem, n)));
        let next = match numbered {
            Some((stem, n)) if n < MAX_NAME_TRIES => name::with_suffix(stem, n + 1),
            Some((stem, _)) => name::with_random_suffix(stem),
            None => name::with_suffix(name, 2),
        };
        Some(Sent::of(Call::Create { name: next, is_private: *is_private, asked: *asked }))
    }

    /// The war rooms the ledger holds open, whatever the key ([`HELD_ROOMS`]): none of another
    /// incident's is what a lost create made ([`Provider::found`]).
    fn known(&self, store: &dyn common::state::Store) -> Map<String, Value> {
        common::state::open_refs_known(store, CHANNEL_ID, HELD_ROOMS)
    }

    /// A spooled create brings the channel; a spooled alert (a post outside a thread) its `ts`.
    /// A reply posted to the channel in place of its thread ([`Sent::unthreaded`]) brings
    /// nothing: it is no alert, and what comes after it is threaded under the alert.
    fn spooled_refs(&self, sent: &Sent, resp: &Response) -> Map<String, Value> {
        let body: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
        let mut refs = Map::new();
        match &sent.call {
            Call::Create { .. } => {
                if let Some(id) = body["channel"]["id"].as_str() {
                    refs.insert(CHANNEL_ID.into(), id.into());
                    refs.insert(CHANNEL_NAME.into(), body["channel"]["name"].clone());
                }
            }
            Call::Post { thread: Thread::Root, .. } if !sent.unthreaded => {
                if let Some(channel) = body["channel"].as_str() {
                    refs.insert(CHANNEL_ID.into(), channel.into());
                }
                let ts = api::posted_ts(&body);
                no_thread(&mut refs, ts);
                if let Some(ts) = ts {
                    refs.insert(TS.into(), ts.into());
                }
            }
            _ => {}
        }
        refs
    }

    /// A war room opened at `--flush` in place of one that is gone ([`Sent::replacing`]), and a
    /// failure queued to be decided at `--flush` ([`Sent::queued`]).
    fn is_run(&self, sent: &Sent) -> bool {
        sent.replacing || sent.queued
    }

    /// The war room opened in place of one that is gone is a message of the incident's log,
    /// not a page of its own: a recovery queued behind it is posted there, as live. So is a
    /// failure decided at the flush: a recovery of a later event queued behind it recovers
    /// the war room it opens, as live.
    fn superseded_by_a_later_stop(&self, _sent: &Sent) -> bool {
        false
    }

    /// Open the war room [`Sent::or_else`] in place of the one that is gone, as a live update
    /// does ([`Session::open_war_room`]): create (past the gone room's name; on `name_taken`
    /// the room this run made before a kill or a lost answer, looked up, else the next name),
    /// topic, invites, then the alert. Each step is noted in the run's progress notes
    /// ([`Opening`]) before the next, so that a flush killed or out of time leaves the next one
    /// to go on in the same room, not to open another (two flushes never run it at once: it
    /// is carried on under the incident's hold or claim).
    ///
    /// A failure queued to be decided at the flush ([`Sent::queued`]): [`Slack::decide_queued`].
    fn resume(&self, ctx: &Ctx<'_, Self>, sent: &Sent, previous: Option<&Incident>, _event_time: u64) -> Resumed {
        if sent.queued && !sent.replacing {
            return self.decide_queued(ctx, sent, previous);
        }
        let Some(room) = sent.or_else.as_deref().filter(|_| sent.replacing) else {
            return Resumed::Failed(Outcome::Refused("only a war room opened in place of one that is gone is carried on".into()));
        };
        let gone = match &sent.call {
            Call::Post { channel: Some(c), .. } => Some(c.clone()),
            _ => previous.and_then(|p| Stored::from_refs(&p.refs)).map(|s| s.channel_id),
        };
        let shown = gone.as_deref().unwrap_or("its war room");
        let Target::WarRoom { is_private, .. } = &self.target else {
            return Resumed::Failed(Outcome::Refused(format!(
                "{shown} is gone, and with slack.channel set no war room is opened in its place"
            )));
        };
        done_with_notes(ctx, Reopening { slack: self, ctx, room, is_private: *is_private, previous, anew: false }.run(gone))
    }
}

impl Slack {
    /// A failure queued behind another delivery of its open incident ([`Sent::queued`]),
    /// decided now from the ledger, as a live failure would be. While the record holds the
    /// incident open, its message goes into the war room the record holds (a reply under its
    /// alert, or into the channel when the thread takes none), and a new war room opens when
    /// that room is gone ([`Session::update`]); with no record to read, into the room it was
    /// queued for. When the record shows the incident recovered meanwhile (the delivery it
    /// queued behind was its recovery), the failure is a new incident
    /// ([`Session::open_war_room`]): a new war room, past the old room's name, with the alert.
    fn decide_queued(&self, ctx: &Ctx<'_, Self>, sent: &Sent, previous: Option<&Incident>) -> Resumed {
        let (Some(room), Target::WarRoom { is_private, .. }) = (sent.or_else.as_deref(), &self.target) else {
            return Resumed::Failed(Outcome::Refused(
                "a failure queued for its war room: with slack.channel set now, no war room is posted to or opened".into(),
            ));
        };
        let reopening = |anew: bool, gone: String| {
            done_with_notes(ctx, Reopening { slack: self, ctx, room, is_private: *is_private, previous, anew }.run(Some(gone)))
        };
        let stored = previous.and_then(|p| Stored::from_refs(&p.refs));
        if previous.is_some_and(|p| !p.open && p.last_action.is_some()) {
            return reopening(true, stored.map_or_else(|| "its war room".to_string(), |s| s.shown()));
        }
        // A first war room's failure noted in flight by a handler that died opening it
        // ([`Session::note_turning_over`]: no room to post to): the room is opened now, as that
        // handler would have, unless another event opened one meanwhile.
        if matches!(&sent.call, Call::Post { channel: None, .. }) && previous.is_none_or(|p| !p.open) {
            return reopening(true, "its war room".to_string());
        }
        let Call::Post { channel, thread, message } = &sent.call else {
            return Resumed::Failed(Outcome::Refused("only a message is queued to be decided at the flush".into()));
        };
        let (channel, thread) = match (stored, thread) {
            (Some(s), Thread::Reply { broadcast, .. }) => {
                let thread = match s.ts {
                    Some(ts) => Thread::Reply { ts: Some(ts), broadcast: *broadcast },
                    None => Thread::Root,
                };
                (s.channel_id, thread)
            }
            _ => (channel.clone().unwrap_or_default(), thread.clone()),
        };
        let call = Call::Post { channel: Some(channel.clone()), thread: thread.clone(), message: message.clone() };
        let posted = match flush_call(self, ctx, call, &Map::new(), true) {
            Err(Step::Slack(e)) if room_gone(&e.code) => return reopening(false, channel),
            Err(Step::Slack(e)) if matches!(thread, Thread::Reply { .. }) && thread_refused(&e.code) => {
                let root = Call::Post { channel: Some(channel.clone()), thread: Thread::Root, message: message.clone() };
                flush_call(self, ctx, root, &Map::new(), true).map(|_| "to the channel (its thread takes no reply)")
            }
            other => other.map(|_| if matches!(thread, Thread::Root) { "to the channel" } else { "in the thread" }),
        };
        match posted {
            Ok(place) => Resumed::Delivered(Done { detail: format!("(update posted {place} of {channel})"), refs: Map::new() }),
            Err(Step::Slack(e)) => Resumed::Failed(Outcome::Refused(e.explain())),
            Err(Step::Failed(o)) => Resumed::Failed(o),
        }
    }
}

/// `resumed`, the end of a run of [`Slack::resume`]; refused for good, the entry moves to
/// failed/: its notes in the record are done with.
fn done_with_notes(ctx: &Ctx<'_, Slack>, resumed: Resumed) -> Resumed {
    if matches!(resumed, Resumed::Failed(Outcome::Refused(_)))
        && let Some(store) = ctx.store
        && let Err(e) = common::state::clear_progress(store, ctx.incident_key)
    {
        ctx.log.warn(format!("cannot clear the notes of the war room opened for {} in {}: {e:#}", ctx.incident_key, store.describe()));
    }
    resumed
}

/// `call` ([`Sent::follows`]) as it goes to the war room `refs` (the record at the flush)
/// name: into that room, a reply under its alert (into the channel when its alert is not
/// known), or its archive. Channel and thread always come from the same record, never the
/// channel from one and the `ts` from another. `None`: the record names no room; as it is.
fn following(call: &Call, refs: &Map<String, Value>) -> Option<Call> {
    refs.get(CHANNEL_ID).and_then(Value::as_str).filter(|c| !c.is_empty())?;
    let mut call = call.clone();
    match &mut call {
        Call::Post { channel, thread, .. } => {
            *channel = None;
            if let Thread::Reply { ts, .. } = thread {
                *ts = None;
            }
        }
        Call::Archive { channel } => *channel = None,
        _ => return None,
    }
    Some(call)
}

/// `call` as it goes now that the war room it names was replaced by a flush since it was
/// spooled (its ID in the record's [`REPLACED`]): into the room the record holds, a reply under
/// its alert. `None`: as it is. A recovery queued behind a severity change that opened a new
/// room was otherwise posted to the room that is gone (nothing posted), and the new one never
/// heard of it.
fn followed(call: &Call, refs: &Map<String, Value>) -> Option<Call> {
    let replaced = refs.get(REPLACED)?.as_array()?;
    let gone = |c: &Option<String>| c.as_deref().is_some_and(|c| replaced.iter().any(|r| r.as_str() == Some(c)));
    let mut call = call.clone();
    match &mut call {
        Call::Post { channel, thread, .. } if gone(channel) => {
            *channel = None;
            if let Thread::Reply { ts, .. } = thread {
                *ts = None;
            }
        }
        Call::SetTopic { channel, .. } | Call::Invite { channel, .. } | Call::Archive { channel } if gone(channel) => *channel = None,
        _ => return None,
    }
    Some(call)
}

/// Why a step of [`Reopening`] did not give an answer.
enum Step {
    /// Slack refused it with this code.
    Slack(Box<SlackError>),
    /// As a request fails otherwise (a retry, the token refused for the page's steps, …).
    Failed(Outcome),
}

/// A flush opening a war room in place of one that is gone ([`Slack::resume`]).
struct Reopening<'a, 'c> {
    slack: &'a Slack,
    ctx: &'a Ctx<'c, Slack>,
    room: &'a Replacement,
    is_private: bool,
    /// The incident's record, read under its hold: the gone room's name, the rooms replaced
    /// before, and notes of this run a killed flush left.
    previous: Option<&'a Incident>,
    /// The room is a new incident's, not a replacement: the record's incident recovered since
    /// the failure was queued ([`Slack::decide_queued`]). Its room is not gone; nor are the
    /// rooms replaced for it this incident's.
    anew: bool,
}

impl Reopening<'_, '_> {
    /// `gone`: the room it replaces (with [`Reopening::anew`], the recovered incident's).
    fn run(&self, gone: Option<String>) -> Resumed {
        let ctx = self.ctx;
        let token = ctx.token().map(str::to_string);
        let mine = |p: &common::state::Progress| token.as_deref() == Some(p.token.as_str());
        let mut opening: Opening = ctx
            .kept_progress()
            .filter(mine)
            .or_else(|| self.previous.and_then(|p| p.progress.clone()).filter(mine))
            .and_then(|p| serde_json::from_value(p.notes).ok())
            .unwrap_or_default();
        let note = |o: &Opening| {
            if let Some(t) = &token {
                ctx.note_progress(&common::state::Progress { token: t.clone(), notes: serde_json::to_value(o).unwrap_or(Value::Null) });
            }
        };
        let shown = gone.as_deref().unwrap_or("its war room");
        // No incident applied before it: the first war room, which a handler that died was
        // opening ([`Session::note_turning_over`]).
        let first = self.anew && self.previous.is_none_or(|p| p.last_action.is_none());
        let mut notes = vec![match (self.anew, first) {
            (true, true) => "the war room a handler that died was opening".to_string(),
            (true, false) => format!("a new incident: {shown} recovered meanwhile"),
            (false, _) => format!("{shown} is gone"),
        }];
        if opening.channel_id.is_none() && first {
            ctx.log.info(format!("{}: opening the war room a handler that died was opening", ctx.incident_key));
        } else if opening.channel_id.is_none() && self.anew {
            ctx.log.info(format!("{}: {shown} recovered since this failure was queued; opening a new war room", ctx.incident_key));
        } else if opening.channel_id.is_none() {
            ctx.log.warn(format!("war room {shown} is gone; opening a new one for {}", ctx.incident_key));
        }
        let (channel_id, channel_name) = match (&opening.channel_id, &opening.name) {
            (Some(id), Some(name)) => {
                notes.push(format!("#{name} {id} opened by an earlier flush"));
                (id.clone(), name.clone())
            }
            _ => match self.create(&mut opening, &note) {
                Ok((id, name, how)) => {
                    notes.push(how);
                    (id, name)
                }
                Err(r) => return r,
            },
        };
        let ts = match &opening.ts {
            Some(ts) => ts.clone(),
            None => {
                if let Err(r) = self.side_steps(&channel_id, &mut notes) {
                    return r;
                }
                let alert = Call::Post { channel: Some(channel_id.clone()), thread: Thread::Root, message: self.room.alert.clone() };
                let posted = match self.call(alert, true) {
                    Ok(body) => body,
                    Err(Step::Slack(e)) => return Resumed::Failed(Outcome::Refused(e.explain())),
                    Err(Step::Failed(o)) => return Resumed::Failed(o),
                };
                // Posted without a `ts` in the answer: noted as posted (empty), not sent again.
                let ts = api::posted_ts(&posted).unwrap_or_default().to_string();
                opening.ts = Some(ts.clone());
                note(&opening);
                ts
            }
        };
        let ts = Some(ts).filter(|t| !t.is_empty());
        notes.push(alert_posted("", ts.as_deref()));
        let mut refs = Stored { channel_id, channel_name: Some(channel_name), ts: ts.clone() }.refs();
        no_thread(&mut refs, ts.as_deref());
        if self.anew {
            return Resumed::Delivered(Done { detail: format!("({})", notes.join(", ")), refs });
        }
        let mut replaced: Vec<Value> =
            self.previous.and_then(|p| p.refs.get(REPLACED)).and_then(Value::as_array).cloned().unwrap_or_default();
        if let Some(g) = gone.filter(|g| !replaced.iter().any(|r| r.as_str() == Some(g))) {
            replaced.push(g.into());
        }
        refs.insert(REPLACED.into(), replaced.into());
        Resumed::Delivered(Done { detail: format!("({})", notes.join(", ")), refs })
    }

    /// Create the war room: `(id, name, note)`, or what the run comes to when it cannot.
    fn create(&self, opening: &mut Opening, note: &dyn Fn(&Opening)) -> std::result::Result<(String, String, String), Resumed> {
        let base = &self.room.base;
        let asked = if self.room.asked > 0 { self.room.asked } else { common::clock::now_unix() };
        let previous_name = self.previous.and_then(|p| Stored::from_refs(&p.refs)).and_then(|s| s.channel_name);
        let first = previous_name.as_deref().and_then(|n| name::suffix_after(base, n)).unwrap_or(1);
        let name_for = |n: u32| if n == 1 { base.clone() } else { name::with_suffix(base, n) };
        let mut names: Vec<String> = (first..first + MAX_NAME_TRIES).map(name_for).collect();
        names.push(name::with_random_suffix(base));
        // A flush before this one asked for a name already: from there on (a random one cannot
        // be told again).
        if let Some(n) = &opening.name {
            match names.iter().position(|x| x == n) {
                Some(i) => drop(names.drain(..i)),
                None => names = vec![n.clone()],
            }
        }
        for name in &names {
            opening.name = Some(name.clone());
            note(opening);
            match self.call(Call::Create { name: name.clone(), is_private: self.is_private, asked }, true) {
                Ok(body) => {
                    // Answered without the channel's id: retried as of unknown fate by the
                    // classification ([`api::classify_live`]); the next flush looks it up.
                    let Some(id) = api::created_id(&body).map(str::to_string) else {
                        return Err(Resumed::Failed(Outcome::Retry(Retry {
                            fate: common::outcome::Fate::Unknown,
                            ..Retry::not_sent(format!("conversations.create of #{name} answered ok without the channel's id"))
                        })));
                    };
                    let got = body["channel"]["name"].as_str().unwrap_or(name).to_string();
                    opening.channel_id = Some(id.clone());
                    opening.name = Some(got.clone());
                    note(opening);
                    return Ok((id.clone(), got.clone(), format!("created #{got} {id}")));
                }
                Err(Step::Slack(e)) if e.code == "name_taken" => {
                    if let Some(id) = self.find_own(name, asked)? {
                        opening.channel_id = Some(id.clone());
                        note(opening);
                        return Ok((id.clone(), name.clone(), format!("#{name} {id} was created by an attempt whose answer was lost")));
                    }
                    self.ctx.log.info(format!("#{name} is taken; trying the next name"));
                }
                Err(Step::Slack(e)) => return Err(Resumed::Failed(Outcome::Refused(e.explain()))),
                Err(Step::Failed(o)) => return Err(Resumed::Failed(o)),
            }
        }
        Err(Resumed::Failed(Outcome::Refused(format!(
            "conversations.create answered name_taken for #{} and the names before it; archive or rename old channels, or change \
             slack.channel_template",
            names.last().map_or(base.as_str(), String::as_str)
        ))))
    }

    /// The channel `name` an earlier attempt of this run created since `asked` (its answer
    /// lost, or the flush killed before its notes said so): `conversations.list` (§5.8). A list
    /// that cannot be read keeps the run for the next flush rather than open a second room: a
    /// lookup Slack refuses for good ([`api::refuses_lookup`]: `missing_scope` without
    /// `channels:read` …) as [`Resumed::Unlookable`], naming the scope (exit 78); anything else
    /// as a retry.
    fn find_own(&self, name: &str, asked: u64) -> std::result::Result<Option<String>, Resumed> {
        let slack = self.slack;
        let token = slack.token.as_deref().unwrap_or("xoxb-…");
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let req = api::list_request(&slack.api_url, token, self.is_private, cursor.as_deref());
            let body = match self.ctx.fetch(&req, &|r| api::classify_live(Method::List, r)) {
                Outcome::Delivered(resp) => match api::read(Method::List, &resp) {
                    Ok(body) => body,
                    Err(e) if api::refuses_lookup(&resp, &e) => {
                        return Err(Resumed::Unlookable(format!("of #{name}, which an earlier attempt may have opened: {}", e.explain())));
                    }
                    Err(e) => {
                        return Err(Resumed::Failed(Outcome::Retry(Retry::not_sent(format!("cannot look #{name} up: {}", e.explain())))));
                    }
                },
                other => {
                    let why = format!("cannot look #{name} up: {}", other.reason().unwrap_or(""));
                    return Err(Resumed::Failed(Outcome::Retry(Retry::not_sent(why))));
                }
            };
            if let Some((id, _)) = api::find_own(&body, name, asked, Some(&self.room.incident)) {
                if held_for_another(self.ctx, &id, name) {
                    return Ok(None);
                }
                return Ok(Some(id));
            }
            let Some(next) = api::next_cursor(&body) else { return Ok(None) };
            cursor = Some(next);
        }
        Ok(None)
    }

    /// Topic and invites: part of the war room, not of the page. Slack refusing one is logged
    /// and the alert still goes out, as live; Slack unreachable keeps the run (the notes say
    /// the room is open).
    fn side_steps(&self, channel: &str, notes: &mut Vec<String>) -> std::result::Result<(), Resumed> {
        let log = self.ctx.log;
        match self.call(Call::SetTopic { channel: Some(channel.to_string()), topic: self.room.topic.clone() }, false) {
            Ok(_) => notes.push("topic set".into()),
            Err(Step::Slack(e)) => {
                log.error(format!("the topic was not set: {}", e.explain()));
                notes.push(format!("the topic was not set ({})", e.code));
            }
            Err(Step::Failed(o)) => return Err(Resumed::Failed(o)),
        }
        let mut invited = None;
        for batch in self.slack.responders.chunks(MAX_INVITE) {
            let failed = match self.call(Call::Invite { channel: Some(channel.to_string()), users: batch.to_vec() }, false) {
                Ok(body) => user_failures(&body),
                Err(Step::Slack(e)) if e.about_users() => e.user_errors.clone(),
                Err(Step::Slack(e)) => {
                    log.error(format!("responders were not invited: {}", e.explain()));
                    notes.push(format!("responders were not invited ({})", e.code));
                    continue;
                }
                Err(Step::Failed(o)) => return Err(Resumed::Failed(o)),
            };
            for (user, code) in &failed {
                log.error(format!("responder {user} was not invited: {code} (check slack.responders)"));
            }
            *invited.get_or_insert(0) += batch.len().saturating_sub(failed.len());
        }
        if let Some(n) = invited {
            notes.push(format!("{n} responder{} invited", if n == 1 { "" } else { "s" }));
        }
        Ok(())
    }

    /// Make `call` within the flush's share ([`flush_call`]).
    fn call(&self, call: Call, page: bool) -> std::result::Result<Value, Step> {
        flush_call(self.slack, self.ctx, call, &Map::new(), page)
    }
}

/// Make `call` within a flush's share for a run ([`Slack::resume`]), what it leaves open
/// taken from `refs`: Slack's answer, or why there is none. `page`: the create or a message,
/// whose token refused keeps the run for the fix ([`Ctx::spooled`]), as for any spooled
/// request; the topic's or invites' is Slack refusing that step (logged).
fn flush_call(slack: &Slack, ctx: &Ctx<'_, Slack>, call: Call, refs: &Map<String, Value>, page: bool) -> std::result::Result<Value, Step> {
    let method = call.method();
    let req = call
        .request(&slack.api_url, slack.token.as_deref().unwrap_or("xoxb-…"), refs)
        .map_err(|why| Step::Failed(Outcome::Refused(why)))?;
    ctx.log.debug(format!("POST {}/{}", slack.api_url, method.name()));
    match ctx.fetch(&req, &|r| api::classify_live(method, r)) {
        Outcome::Delivered(resp) => match api::read(method, &resp) {
            Ok(body) => Ok(body),
            Err(e) if page && e.class() == api::ErrorClass::Auth => Err(Step::Failed(ctx.spooled(&resp, Outcome::Broken(e.explain())))),
            Err(e) => Err(Step::Slack(e)),
        },
        other => Err(Step::Failed(other.failure().unwrap_or(Outcome::Skipped(String::new())))),
    }
}

/// The note of an alert posted: with its `ts`, or without one (Slack's answer gave none).
fn alert_posted(to: &str, ts: Option<&str>) -> String {
    match ts {
        Some(ts) => format!("alert posted{to} (ts {ts})"),
        None => format!("alert posted{to} (Slack's answer gave no ts: later messages go to the channel, not a thread)"),
    }
}

/// An alert posted whose answer gave no `ts` (§5.5 promises one): nothing to thread under, so
/// the record keeps no `ts` (a `null` in the merge, over a gone room's), and later replies go
/// to the channel, as when a thread is refused. Never a placeholder: those are `--dry-run`'s.
fn no_thread(refs: &mut Map<String, Value>, ts: Option<&str>) {
    if ts.is_none() {
        refs.insert(TS.into(), Value::Null);
    }
}

/// A Slack user ID: `U` or `W` and at least two more upper-case letters or digits.
fn is_user_id(s: &str) -> bool {
    s.len() >= 3
        && s.len() <= 32
        && matches!(s.as_bytes()[0], b'U' | b'W')
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Why a step did not give an answer.
#[derive(Debug)]
enum Stop {
    /// Not delivered yet, and spooled: the steps after it are spooled too.
    Later(String),
    /// Not delivered, and not spooled either (no spool directory can be used, or the entry
    /// could not be written): the step is lost unless something else keeps it. Never reported
    /// as spooled: when it is the page's own step, the outcome is [`Outcome::Retry`], and the
    /// event is printed to stderr (the pipeline's `print_undelivered`). The steps after it are
    /// not queued behind it (nothing is spooled to queue behind).
    Unkept(Retry),
    /// Slack refused it with this code.
    Slack(Box<SlackError>),
    /// Another failure (HTTP status without Slack's envelope, TLS, …).
    Failed(Outcome),
}

/// One invocation's conversation with Slack.
struct Session<'a> {
    slack: &'a Slack,
    ctx: &'a Ctx<'a, Slack>,
    job: &'a Job<'a>,
    /// Set once a request has been spooled (and only then: one that could not be spooled
    /// leaves nothing to queue behind): every later request is queued behind it.
    deferred: Option<String>,
    /// The calls made from now on go, at `--flush`, to the war room the record holds then
    /// ([`Sent::follows`]).
    follows: bool,
    /// What is known so far (merged into the record).
    refs: Map<String, Value>,
    /// Short notes for the log line (`topic set`, `2 invited`, …).
    notes: Vec<String>,
    calls: u32,
    /// [`Session::link`], worked out once (a template that gives no URL is warned of once).
    link: std::cell::OnceCell<Option<String>>,
    /// [`Session::replacement`], worked out once.
    replacement: std::cell::OnceCell<Option<Box<Replacement>>>,
}

impl<'a> Session<'a> {
    fn new(slack: &'a Slack, ctx: &'a Ctx<'a, Slack>, job: &'a Job<'a>) -> Session<'a> {
        Session {
            slack,
            ctx,
            job,
            deferred: None,
            follows: false,
            refs: Map::new(),
            notes: Vec::new(),
            calls: 0,
            link: std::cell::OnceCell::new(),
            replacement: std::cell::OnceCell::new(),
        }
    }

    fn event(&self) -> &Event {
        self.job.event
    }

    /// The link back to the monitoring system, when configured and a valid http(s) URL. The
    /// placeholders' values (host-written names) go in percent-encoded as URL components
    /// (RFC 3986 §2.3: all but unreserved characters), so a `#`, `?`, `&` or `/` in a check
    /// name stays part of that name: it neither cuts the link nor adds parameters, and a host
    /// name cannot take the link to another site. A value that is `.` or `..` would be a dot
    /// segment, which a browser resolves (also percent-encoded: the WHATWG URL Standard's
    /// "double-dot URL path segment" includes `%2e%2e`), moving the link up the operator's
    /// site: then no link is shown.
    fn link(&self) -> Option<String> {
        const COMPONENT: &percent_encoding::AsciiSet =
            &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
        self.link
            .get_or_init(|| {
                let t = self.slack.link.as_ref()?;
                let dot_segment = std::cell::Cell::new(false);
                let rendered = t.render_escaped(self.event(), &|v| {
                    dot_segment.set(dot_segment.get() || v == "." || v == "..");
                    percent_encoding::utf8_percent_encode(v, COMPONENT).into()
                });
                if dot_segment.get() {
                    self.ctx.log.warn(
                        "slack.link_template: a name in this event is `.` or `..`, which would move the link up a level; no link shown",
                    );
                    return None;
                }
                let url = mrkdwn::link_url(&rendered);
                if url.is_none() {
                    self.ctx.log.warn("slack.link_template did not give an http(s) URL for this event; no link shown");
                }
                url
            })
            .clone()
    }

    /// The war room a trigger's message (an update, or the alert) opens at `--flush` should its
    /// room be gone by then ([`Sent::or_else`]): `None` in one-channel mode, and for other
    /// actions' calls.
    fn replacement(&self, call: &Call) -> Option<Box<Replacement>> {
        if self.job.action != Action::Trigger || !matches!(call, Call::Post { .. }) {
            return None;
        }
        self.replacement
            .get_or_init(|| {
                let Target::WarRoom { template, .. } = &self.slack.target else { return None };
                let link = self.link();
                let event = self.event();
                Some(Box::new(Replacement {
                    base: template.name(event, &name::date(common::clock::now_unix())),
                    topic: message::topic(event, link.as_deref()),
                    incident: message::topic_incident(event),
                    alert: message::body(Kind::Alert, event, self.job.incident_key, link.as_deref(), self.slack.mention),
                    asked: 0,
                }))
            })
            .clone()
    }

    /// Make `call`. Once a request is spooled, later ones are queued behind it, with what
    /// they leave open (the channel, the alert's ts) filled in at delivery from the answers
    /// to the earlier ones.
    fn call(&mut self, call: Call) -> std::result::Result<Value, Stop> {
        let method = call.method();
        self.calls += 1;
        let closes = matches!(call, Call::Post { .. }) && matches!(self.job.action, Action::Resolve | Action::Acknowledge);
        let or_else = self.replacement(&call);
        let sent = Sent { call, live: true, closes, or_else, replacing: false, queued: false, follows: self.follows, unthreaded: false };
        if let Some(why) = &self.deferred {
            let why = format!("queued behind this incident's spooled request ({why})");
            return match self.ctx.send_later(&sent, &why) {
                Outcome::Spooled(reason) => Err(Stop::Later(reason)),
                Outcome::Retry(r) => Err(Stop::Unkept(r)),
                other => Err(Stop::Failed(other.failure().unwrap_or(Outcome::Skipped(why)))),
            };
        }
        self.ctx.log.debug(format!("POST {}/{}", self.slack.api_url, method.name()));
        let kept = self.ctx.kept();
        match self.ctx.send_with(&sent, &self.refs) {
            Outcome::Delivered(_) if self.ctx.dry_run => Ok(dry_answer(&sent.call)),
            Outcome::Delivered(response) => api::read(method, &response).map_err(Stop::Slack),
            Outcome::Spooled(reason) => {
                self.deferred = Some(format!("{} not delivered", method.name()));
                Err(Stop::Later(reason))
            }
            // Neither delivered nor spooled: nothing to queue the later steps behind.
            Outcome::Retry(r) => Err(Stop::Unkept(r)),
            Outcome::Broken(reason) => {
                // Kept for the flush after the fix (exit 78): the later steps queue behind it.
                if self.ctx.kept() > kept {
                    self.deferred = Some(format!("{} could not be sent", method.name()));
                }
                Err(Stop::Failed(Outcome::Broken(reason)))
            }
            other => Err(Stop::Failed(other.failure().unwrap_or(Outcome::Skipped(String::new())))),
        }
    }

    /// The whole invocation, by action and what the record holds.
    fn run(&mut self) -> std::result::Result<(), Stop> {
        let stored = stored(self.job);
        let open = self.job.previous.is_some_and(|p| p.open);
        // This incident's earlier requests are still in the spool (its war room or alert is
        // not open yet): queue behind them, taking the channel and the alert's ts from their
        // answers at delivery, instead of opening a second war room. So does an acknowledge or
        // recovery that found another invocation (on any host sharing the ledger) still
        // delivering for the incident when its wait ran out: the war room that one is opening
        // is not in the record yet, and taking "no war room is stored" for the answer would
        // record the recovery with nothing posted, leaving the room open for good.
        let pending = self.ctx.behind_spooled() && (open || self.job.action != Action::Trigger);
        let fixed = match &self.slack.target {
            Target::Channel(c) => Some(Stored { channel_id: c.clone(), channel_name: None, ts: None }),
            Target::WarRoom { .. } => None,
        };
        let kind = self.kind();
        // Queued behind another delivery of the open incident, which may be its recovery:
        // whether this failure is an update or a new incident is for the ledger to say when it
        // goes out.
        let undecided = open && self.ctx.behind_spooled() && !self.ctx.dry_run && self.war_room();
        match (self.job.action, stored) {
            // Whether its alert's `ts` is known yet (the alert still spooled) makes no
            // difference: what it queues behind may be the incident's recovery all the same.
            // Queued as a reply into the room the record holds now, it went into the recovered
            // room at the flush, and the new incident had no war room (nor its record one for
            // its recovery).
            (Action::Trigger, Some(s)) if undecided => self.queue_undecided(s, kind),
            (Action::Trigger, Some(s)) if s.ts.is_some() => self.update(s, kind),
            (_, s) if pending => self.queue_behind(s.or(fixed), kind),
            (Action::Trigger, Some(s)) => self.alert_into(s),
            (Action::Trigger, None) => match fixed {
                Some(c) => self.alert_into(c),
                None => self.open_war_room(true),
            },
            (Action::Acknowledge | Action::Resolve, Some(s)) => self.follow_up(s),
            (Action::Acknowledge | Action::Resolve, None) => match fixed {
                Some(c) => self.follow_up(c),
                None => {
                    self.notes.push(format!("no war room is stored for it, so there is nowhere to post the {}", self.job.action.name()));
                    Ok(())
                }
            },
        }
    }

    /// What this event's message reports.
    fn kind(&self) -> Kind {
        match self.job.action {
            Action::Resolve => Kind::Recovered,
            Action::Acknowledge => Kind::Acknowledged,
            Action::Trigger => match self.job.previous.filter(|p| p.open).and_then(|p| p.severity.as_deref()).map(static_status) {
                Some(from) if from != self.event().status_name() => Kind::SeverityChange { from },
                _ => Kind::Repeat,
            },
        }
    }

    /// Spool this failure for the open incident `s` behind another delivery of it (the incident
    /// busy, or older requests spooled), which may be its recovery, as a run decided at
    /// `--flush` from the ledger then ([`Sent::queued`], [`Slack::decide_queued`]): `kind`'s
    /// message in the war room while the incident is still open, a new war room with the alert
    /// when it recovered meanwhile. Built from the record as it is now, the message went into
    /// the recovered room, and the new incident had no war room for its recovery. The alert's
    /// `ts` may not be known yet (the alert is spooled): the flush threads under the one the
    /// record holds then.
    fn queue_undecided(&mut self, s: Stored, kind: Kind) -> std::result::Result<(), Stop> {
        let link = self.link();
        let message = message::body(kind, self.event(), self.job.incident_key, link.as_deref(), self.slack.mention);
        let broadcast = matches!(kind, Kind::SeverityChange { .. });
        let call = Call::Post { channel: Some(s.channel_id), thread: Thread::Reply { ts: s.ts, broadcast }, message };
        let mut or_else = self.replacement(&call);
        if let Some(room) = or_else.as_mut() {
            room.asked = common::clock::now_unix();
        }
        let why = self.ctx.queued_behind().unwrap_or_default().to_string();
        self.deferred = Some(why.clone());
        let sent = Sent { call, live: false, closes: false, or_else, replacing: false, queued: true, follows: false, unthreaded: false };
        match self.ctx.spool_run(&sent, None, &why) {
            Outcome::Spooled(reason) => Err(Stop::Later(reason)),
            Outcome::Retry(r) => Err(Stop::Unkept(r)),
            other => Err(Stop::Failed(other.failure().unwrap_or(Outcome::Skipped(why)))),
        }
    }

    /// Spool this event's message (and a recovery's archive) behind the incident's spooled
    /// requests; what `known` lacks (the channel, the alert's ts) is filled in from the refs
    /// the earlier answers bring. In war-room mode the message and the archive go to the war
    /// room the record holds when the flush sends them ([`Sent::follows`]), `known`'s only when
    /// the record names none then: what they queue behind may recover `known`'s room and open
    /// another (a recovery and then a failure, spooled, or delivered by the invocation this
    /// one found busy), and this recovery is that room's.
    fn queue_behind(&mut self, known: Option<Stored>, kind: Kind) -> std::result::Result<(), Stop> {
        self.deferred = Some("its war room or alert is not open yet: spooled here, or being opened by another invocation".into());
        self.follows = self.war_room();
        let link = self.link();
        let message = message::body(kind, self.event(), self.job.incident_key, link.as_deref(), self.slack.mention);
        let channel = known.as_ref().map(|s| s.channel_id.clone());
        let ts = known.as_ref().and_then(|s| s.ts.clone());
        let broadcast = matches!(kind, Kind::SeverityChange { .. } | Kind::Recovered);
        let posted = self.call(Call::Post { channel: channel.clone(), thread: Thread::Reply { ts, broadcast }, message });
        // Not a channel the record knows as something other than a war room (see `follow_up`).
        let war_room = known.as_ref().is_none_or(|k| k.channel_name.is_some());
        let archive = matches!(self.slack.target, Target::WarRoom { archive_on_resolve: true, .. }) && war_room;
        if kind == Kind::Recovered && archive {
            let queued = self.call(Call::Archive { channel });
            self.unkept_archive(queued);
        }
        posted.map(|_| ())
    }

    /// Open a war room and post the alert as its first message. With `reuse`, a `name_taken`
    /// for the name this open incident's war room already has means that room (not when the
    /// stored room is the one being replaced).
    fn open_war_room(&mut self, reuse: bool) -> std::result::Result<(), Stop> {
        let Target::WarRoom { template, is_private, .. } = &self.slack.target else { return Ok(()) };
        let asked = common::clock::now_unix();
        let base = template.name(self.event(), &name::date(asked));
        let stored_before = self.job.previous.filter(|p| p.open && reuse).and_then(|p| Stored::from_refs(&p.refs));
        // The incident's previous war room (closed, or being replaced) holds `base` or `base-N`
        // already: start after it instead of asking Slack for a name it will refuse.
        let previous_name =
            self.job.previous.filter(|p| !(p.open && reuse)).and_then(|p| Stored::from_refs(&p.refs)).and_then(|s| s.channel_name);
        let first = previous_name.as_deref().and_then(|n| name::suffix_after(&base, n)).unwrap_or(1);
        let name_for = |n: u32| if n == 1 { base.clone() } else { name::with_suffix(&base, n) };
        // The numbered names, then one nobody can tell in advance: names are the monitored
        // hosts' (`web.01`, `Web-01` and `web-01` make the same one), and a host that took
        // them all first must not cost another's page.
        let mut names = (first..first + MAX_NAME_TRIES).map(name_for).chain(std::iter::once(name::with_random_suffix(&base)));
        let mut name = names.next().unwrap_or_else(|| base.clone());
        if self.job.previous.is_none_or(|p| !p.open) {
            self.note_turning_over(asked);
        }
        let channel = loop {
            match self.call(Call::Create { name: name.clone(), is_private: *is_private, asked }) {
                Ok(body) => {
                    // Never without an id here: a create answered without one is of unknown
                    // fate ([`api::classify_live`]), spooled and looked up by name at the flush.
                    let Some(id) = api::created_id(&body).map(str::to_string) else {
                        return Err(Stop::Failed(Outcome::Retry(Retry {
                            fate: common::outcome::Fate::Unknown,
                            ..Retry::not_sent(format!("conversations.create of #{name} answered ok without the channel's id"))
                        })));
                    };
                    let got = body["channel"]["name"].as_str().unwrap_or(&name).to_string();
                    self.notes.push(format!("created #{got} {id}"));
                    break Stored { channel_id: id, channel_name: Some(got), ts: None };
                }
                Err(Stop::Slack(e)) if e.code == "name_taken" => {
                    if let Some(s) = stored_before.as_ref().filter(|s| s.channel_name.as_deref() == Some(name.as_str())) {
                        self.notes.push(format!("#{name} is this incident's war room already"));
                        break s.clone();
                    }
                    if let Some(own) = self.find_own(&name, *is_private, asked) {
                        self.notes.push(format!("#{name} was created by an attempt whose answer was lost"));
                        break own;
                    }
                    let Some(next) = names.next() else {
                        return Err(Stop::Failed(Outcome::Refused(format!(
                            "conversations.create answered name_taken for #{name} and the {MAX_NAME_TRIES} names before it; \
                             archive or rename old channels, or change slack.channel_template"
                        ))));
                    };
                    self.ctx.log.info(format!("#{name} is taken; trying #{next}"));
                    name = next;
                }
                Err(Stop::Later(reason)) => {
                    // The channel comes with the create's answer at --flush; what follows is
                    // queued behind it and filled in then.
                    // An alert that could not be spooled behind it (the disk filled) is lost:
                    // reported so, not as spooled.
                    return match self.war_room_steps(None) {
                        Err(Stop::Unkept(r)) => Err(Stop::Unkept(r)),
                        _ => Err(Stop::Later(reason)),
                    };
                }
                Err(other) => return Err(other),
            }
        };
        self.refs.extend(channel.refs());
        self.war_room_steps(Some(channel))
    }

    /// Note this failure in flight, before its war room is opened, as a failure decided at the
    /// flush ([`Sent::queued`]), when the ledger holds no open incident (resolved, or none).
    /// Killed before its record (Sensu's handler timeout, kill -9), this attempt left the
    /// ledger saying "resolved", or nothing: the recovery that came next was skipped (as a
    /// repeat, or as "no war room was opened"), and the new room kept the failure for good.
    /// Now the next holder spools the note, and the flush opens the war room
    /// ([`Slack::decide_queued`]: on `name_taken` the room this attempt made, created since
    /// `asked`, Unix seconds) and posts its alert there, before the event at hand, which then
    /// finds the room. The live steps themselves are not noted ([`Provider::note_in_flight`]).
    fn note_turning_over(&self, asked: u64) {
        let stored = self.job.previous.and_then(|p| Stored::from_refs(&p.refs));
        let link = self.link();
        let message = message::body(Kind::Alert, self.event(), self.job.incident_key, link.as_deref(), self.slack.mention);
        let call = Call::Post { channel: stored.map(|s| s.channel_id), thread: Thread::Root, message };
        let Some(mut room) = self.replacement(&call) else { return };
        room.asked = asked;
        self.ctx.note_run_in_flight(&Sent {
            call,
            live: false,
            closes: false,
            or_else: Some(room),
            replacing: false,
            queued: true,
            follows: false,
            unthreaded: false,
        });
    }

    /// The channel named `name` that an earlier attempt of this war room created (since
    /// `asked`) without its answer arriving, looked up with `conversations.list` (§5.8, a few
    /// pages at most). `None` when there is none, or it cannot be looked up (logged: e.g. the
    /// `channels:read` scope is missing).
    fn find_own(&mut self, name: &str, private: bool, asked: u64) -> Option<Stored> {
        let token = self.slack.token.as_deref().unwrap_or("xoxb-…");
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let req = api::list_request(&self.slack.api_url, token, private, cursor.as_deref());
            self.calls += 1;
            let listed = match self.ctx.fetch(&req, &|r| api::classify_live(Method::List, r)) {
                Outcome::Delivered(resp) => api::read(Method::List, &resp),
                other => {
                    self.ctx.log.warn(format!("cannot look #{name} up: {}", other.reason().unwrap_or("")));
                    return None;
                }
            };
            let body = match listed {
                Ok(body) => body,
                Err(e) => {
                    self.ctx.log.warn(format!("cannot look #{name} up: {}", e.explain()));
                    return None;
                }
            };
            let incident = message::topic_incident(self.event());
            if let Some((id, name)) = api::find_own(&body, name, asked, Some(&incident)) {
                if held_for_another(self.ctx, &id, &name) {
                    return None;
                }
                return Some(Stored { channel_id: id, channel_name: Some(name), ts: None });
            }
            cursor = Some(api::next_cursor(&body)?);
        }
        None
    }

    /// Topic, invites and the alert into a new war room (`None`: its ID is not known yet).
    fn war_room_steps(&mut self, channel: Option<Stored>) -> std::result::Result<(), Stop> {
        let id = channel.map(|c| c.channel_id);
        let link = self.link();
        // Topic: part of the war room, not of the page.
        let topic = message::topic(self.event(), link.as_deref());
        match self.call(Call::SetTopic { channel: id.clone(), topic }) {
            Ok(_) => self.notes.push("topic set".into()),
            Err(stop) => self.side_step_failed("the topic was not set", stop)?,
        }
        let mut invited = None;
        for batch in self.slack.responders.clone().chunks(MAX_INVITE) {
            let failed = match self.call(Call::Invite { channel: id.clone(), users: batch.to_vec() }) {
                Ok(body) => user_failures(&body),
                Err(Stop::Slack(e)) if e.about_users() => e.user_errors.clone(),
                Err(stop) => {
                    self.side_step_failed("responders were not invited", stop)?;
                    continue;
                }
            };
            for (user, code) in &failed {
                self.ctx.log.error(format!("responder {user} was not invited: {code} (check slack.responders)"));
            }
            *invited.get_or_insert(0) += batch.len().saturating_sub(failed.len());
        }
        if let Some(n) = invited {
            self.notes.push(format!("{n} responder{} invited", if n == 1 { "" } else { "s" }));
        }
        let message = message::body(Kind::Alert, self.event(), self.job.incident_key, link.as_deref(), self.slack.mention);
        let posted = self.call(Call::Post { channel: id, thread: Thread::Root, message })?;
        let ts = api::posted_ts(&posted).map(str::to_string);
        no_thread(&mut self.refs, ts.as_deref());
        if let Some(ts) = &ts {
            self.refs.insert(TS.into(), ts.clone().into());
        }
        self.notes.push(alert_posted("", ts.as_deref()));
        Ok(())
    }

    /// An archive queued behind a spooled recovery: one that could not be spooled is said (an
    /// error, and a note), never taken for queued.
    fn unkept_archive(&mut self, queued: std::result::Result<Value, Stop>) {
        if let Err(stop @ Stop::Unkept(_)) = queued {
            let _logged = self.side_step_failed("the war room will not be archived", stop);
        }
    }

    /// A step that belongs to the war room but not to the page failed: log it and go on,
    /// unless it was spooled (then the rest is queued behind it) or the token is wrong.
    fn side_step_failed(&mut self, what: &str, stop: Stop) -> std::result::Result<(), Stop> {
        match stop {
            Stop::Later(reason) => {
                self.notes.push(format!("{what} yet (spooled)"));
                self.ctx.log.warn(format!("{what}: {reason}"));
                Ok(())
            }
            // Lost: said as an error, never as spooled; the page's own steps go on.
            Stop::Unkept(r) => {
                self.ctx.log.error(format!("{what}: {}", r.reason));
                self.notes.push(format!("{what} (not spooled)"));
                Ok(())
            }
            Stop::Slack(e) => {
                self.ctx.log.error(format!("{what}: {}", e.explain()));
                self.notes.push(format!("{what} ({})", e.code));
                Ok(())
            }
            Stop::Failed(f) => {
                self.ctx.log.error(format!("{what}: {}", f.reason().unwrap_or("")));
                self.notes.push(what.to_string());
                Ok(())
            }
        }
    }

    /// Post the alert into an existing channel (one-channel mode, or a stored war room whose
    /// alert never went out). A stored war room that is gone (`is_archived`,
    /// `channel_not_found`: archived by hand while its alert waited in the spool) is replaced
    /// by a new one, as for an update: the record keeps such a room with no expiry, and
    /// refusing every later failure of the incident for it would silence the check for good.
    fn alert_into(&mut self, channel: Stored) -> std::result::Result<(), Stop> {
        let link = self.link();
        let message = message::body(Kind::Alert, self.event(), self.job.incident_key, link.as_deref(), self.slack.mention);
        let posted = match self.call(Call::Post { channel: Some(channel.channel_id.clone()), thread: Thread::Root, message }) {
            Err(Stop::Slack(e)) if room_gone(&e.code) && matches!(self.slack.target, Target::WarRoom { .. }) => {
                self.ctx.log.warn(format!("war room {} answered {}; opening a new one for this incident", channel.shown(), e.code));
                self.refs = Map::new();
                return self.open_war_room(false);
            }
            other => other?,
        };
        let id = posted["channel"].as_str().unwrap_or(&channel.channel_id).to_string();
        let ts = api::posted_ts(&posted).map(str::to_string);
        self.refs.extend(Stored { channel_id: id.clone(), channel_name: channel.channel_name, ts: ts.clone() }.refs());
        no_thread(&mut self.refs, ts.as_deref());
        self.notes.push(alert_posted(&format!(" to {id}"), ts.as_deref()));
        Ok(())
    }

    /// A repeat or severity change: a reply in the alert's thread (broadcast for a severity
    /// change); a war room that is gone is replaced by a new one.
    fn update(&mut self, s: Stored, kind: Kind) -> std::result::Result<(), Stop> {
        self.refs.extend(s.refs());
        let broadcast = matches!(kind, Kind::SeverityChange { .. });
        match self.reply(&s, kind, broadcast) {
            Err(Stop::Slack(e)) if room_gone(&e.code) && (e.code != "not_in_channel" || self.war_room()) => match &self.slack.target {
                Target::WarRoom { .. } => {
                    self.ctx.log.warn(format!("war room {} answered {}; opening a new one for this incident", s.shown(), e.code));
                    self.refs = Map::new();
                    self.open_war_room(false)
                }
                Target::Channel(c) => Err(Stop::Failed(Outcome::Refused(format!(
                    "{}; the update cannot be posted to slack.channel {c} (unarchive it or set another channel)",
                    e.explain()
                )))),
            },
            other => other,
        }
    }

    /// An acknowledge or a recovery: a reply in the alert's thread (a recovery broadcast to the
    /// channel), or a message in the channel when no alert is known; then, for a recovery with
    /// `archive_on_resolve`, the war room is archived.
    fn follow_up(&mut self, s: Stored) -> std::result::Result<(), Stop> {
        self.refs.extend(s.refs());
        let kind = if self.job.action == Action::Resolve { Kind::Recovered } else { Kind::Acknowledged };
        let result = self.reply(&s, kind, kind == Kind::Recovered);
        if let Err(Stop::Slack(e)) = &result
            && room_gone(&e.code)
            && (e.code != "not_in_channel" || self.war_room())
        {
            self.ctx.log.warn(format!("{} not posted: {}", self.job.action.name(), e.explain()));
            self.notes.push(format!("{} is gone ({}), nothing posted", s.shown(), e.code));
            return Ok(());
        }
        let archive = matches!(self.slack.target, Target::WarRoom { archive_on_resolve: true, .. });
        // A recovery spooled (Slack did not answer in time): its archive is queued behind it, as
        // [`Session::queue_behind`] queues it, so that the flush that posts it archives the room.
        if let Err(Stop::Later(_)) = &result
            && kind == Kind::Recovered
            && archive
            && s.channel_name.is_some()
        {
            let queued = self.call(Call::Archive { channel: Some(s.channel_id.clone()) });
            self.unkept_archive(queued);
        }
        result?;
        // Only a war room is archived: a channel recorded without a name is the channel a
        // host in one-channel mode posted the alert to (`slack.channel` on a host sharing the
        // ledger), the team's channel, not this incident's.
        if kind == Kind::Recovered && archive && s.channel_name.is_none() {
            self.notes.push(format!("{} not archived: the alert went to a channel, not a war room", s.shown()));
        } else if kind == Kind::Recovered && archive {
            match self.call(Call::Archive { channel: Some(s.channel_id.clone()) }) {
                Ok(_) => self.notes.push("war room archived".into()),
                Err(stop) => self.side_step_failed("the war room was not archived", stop)?,
            }
        }
        Ok(())
    }

    /// Whether the incidents go to war rooms (not to one channel, `slack.channel`).
    fn war_room(&self) -> bool {
        matches!(self.slack.target, Target::WarRoom { .. })
    }

    /// Post `kind` in the thread of the stored alert (or, without one, into the channel).
    fn reply(&mut self, s: &Stored, kind: Kind, broadcast: bool) -> std::result::Result<(), Stop> {
        let link = self.link();
        let message = message::body(kind, self.event(), self.job.incident_key, link.as_deref(), self.slack.mention);
        let thread = match &s.ts {
            Some(ts) => Thread::Reply { ts: Some(ts.clone()), broadcast },
            None => Thread::Root,
        };
        let posted = match self.call(Call::Post { channel: Some(s.channel_id.clone()), thread, message: message.clone() }) {
            Err(Stop::Slack(e)) if s.ts.is_some() && thread_refused(&e.code) => {
                self.ctx.log.warn(format!(
                    "the alert's thread in {} takes no reply ({}); posting the {} to the channel instead",
                    s.shown(),
                    e.explain(),
                    kind_name(kind)
                ));
                self.call(Call::Post { channel: Some(s.channel_id.clone()), thread: Thread::Root, message })?;
                self.notes.push(format!("{} posted to the channel of {} (its thread takes no reply)", kind_name(kind), s.shown()));
                return Ok(());
            }
            other => other?,
        };
        if s.ts.is_none()
            && let Some(ts) = posted["ts"].as_str()
        {
            self.refs.insert(TS.into(), ts.into());
        }
        let place = if s.ts.is_some() { "in the thread" } else { "to the channel" };
        let also = if broadcast && s.ts.is_some() { " and the channel" } else { "" };
        self.notes.push(format!("{} posted {place}{also} of {}", kind_name(kind), s.shown()));
        Ok(())
    }

    /// `--test`: `auth.test` proves the token; with `channel` set, a test message is posted.
    fn test(&mut self) -> std::result::Result<(), Stop> {
        let who = self.call(Call::AuthTest)?;
        let (team, user, user_id) = api::identity(&who);
        self.notes.push(format!("token works: workspace {team}, bot @{user} {user_id}"));
        match &self.slack.target {
            Target::Channel(c) => {
                let message = message::body(Kind::Test, self.event(), self.job.incident_key, None, Mention::None);
                self.call(Call::Post { channel: Some(c.clone()), thread: Thread::Root, message })?;
                self.notes.push(format!("test message posted to {c}"));
            }
            Target::WarRoom { .. } => self.notes.push("no slack.channel is set, so no test message was posted".into()),
        }
        Ok(())
    }

    /// The provider's outcome: what is known goes into the record, the notes into the log line.
    fn finish(self, outcome: std::result::Result<(), Stop>) -> Outcome<Done> {
        let detail = if self.notes.is_empty() { String::new() } else { format!("({})", self.notes.join(", ")) };
        match outcome {
            Ok(()) => Outcome::Delivered(Done { detail, refs: self.refs }),
            Err(stop) => {
                if !self.refs.is_empty() && self.deferred.is_some() {
                    // Spooled: nothing is recorded as delivered, so what Slack gave so far (the
                    // channel of a war room opened already) is remembered here for the spooled
                    // steps that need it.
                    remember(self.ctx, &self.refs);
                }
                if !detail.is_empty() {
                    self.ctx.log.info(format!("{} {} so far: {detail}", self.job.action.name(), self.job.incident_key));
                }
                match stop {
                    Stop::Later(reason) => Outcome::Spooled(reason),
                    // The pipeline prints the event: nothing keeps this step.
                    Stop::Unkept(r) => Outcome::Retry(r),
                    Stop::Slack(e) => Outcome::Refused(e.explain()),
                    Stop::Failed(f) => f.failure().unwrap_or(Outcome::Skipped(String::new())),
                }
            }
        }
    }
}

/// Whether Slack's `code` for a reply refuses the thread, not the channel: the alert takes no
/// replies (`cannot_reply_to_message`), its thread was locked (`restricted_action_thread_locked`,
/// §5.5), or the alert is gone (`thread_not_found`, the fake's answer for a `thread_ts` that
/// is no message, §5.5). The channel itself still takes the message.
fn thread_refused(code: &str) -> bool {
    matches!(code, "cannot_reply_to_message" | "restricted_action_thread_locked" | "thread_not_found")
}

/// Whether Slack's `code` for a post into a remembered war room says nothing can be posted
/// there any more: archived (`is_archived`), deleted or hidden from the bot
/// (`channel_not_found`), or the bot removed from it (`not_in_channel`, §5.5: a member can
/// remove the app from a channel). Such a room is replaced (an update, an alert) or passed
/// over (a recovery), rather than every later event of the incident refused for it.
fn room_gone(code: &str) -> bool {
    matches!(code, "channel_not_found" | "is_archived" | "not_in_channel")
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Alert => "alert",
        Kind::Repeat => "update",
        Kind::SeverityChange { .. } => "severity change",
        Kind::Acknowledged => "acknowledgement",
        Kind::Recovered => "recovery",
        Kind::Test => "test message",
    }
}

/// A status word as `'static` (the stored record holds a `String`).
fn static_status(s: &str) -> &'static str {
    match s {
        "ok" => "ok",
        "warning" => "warning",
        "critical" => "critical",
        _ => "unknown",
    }
}

/// Per-user failures in an invite answer that was `ok` (with `force`, Slack reports the users it
/// skipped in `errors[]`, spec §5.4).
fn user_failures(body: &Value) -> Vec<(String, String)> {
    let resp = Response { status: 200, body: body.to_string(), retry_after: None, location: None };
    api::invite_failures(&resp).unwrap_or_default()
}

/// What Slack would have answered, for `--dry-run` (placeholders where its values go).
fn dry_answer(call: &Call) -> Value {
    match call {
        Call::Create { name, .. } => json!({"ok": true, "channel": {"id": DRY_CHANNEL, "name": name}}),
        Call::Post { channel, .. } => json!({"ok": true, "channel": channel.as_deref().unwrap_or(DRY_CHANNEL), "ts": DRY_TS}),
        Call::AuthTest => json!({"ok": true, "team": "{workspace}", "user": "{bot}", "user_id": "{bot user id}"}),
        _ => json!({"ok": true}),
    }
}

/// Merge `refs` into the incident's record now (used when part of the work was spooled: the
/// pipeline records nothing as delivered, so the spooled steps find the channel here).
fn remember(ctx: &Ctx<'_, Slack>, refs: &Map<String, Value>) {
    let Some(store) = ctx.store else { return };
    // The ledger's key (the record), not the job's (the provider's key for the incident).
    let key = ctx.incident_key;
    let result = store.update(key, &mut |current| {
        let mut inc = Incident::from_value(key, current);
        inc.refs.extend(refs.clone());
        Some(inc.to_value())
    });
    if let Err(e) = result {
        ctx.log.error(format!("cannot record the Slack channel for {key}: {e:#}"));
    }
}

/// Whether the war room `id` (`#name`), found by its name and a topic naming this incident's
/// host and check, is one the ledger holds open for another incident (logged when it is). A
/// topic names no incident, only its host and check, which a host chooses (a Mackerel host
/// names itself, a Sensu Go agent its entity in any namespace) and two Zabbix triggers may
/// share: such a room is that incident's, never this one's to move into, live or at
/// `--flush` ([`Reopening`]).
fn held_for_another(ctx: &Ctx<'_, Slack>, id: &str, name: &str) -> bool {
    // The ledger's key (the record), not the job's: records are kept under it.
    let key = ctx.incident_key;
    let Some(store) = ctx.store else { return false };
    let held = match common::state::open_refs_of_others(store, Some(key), CHANNEL_ID) {
        Ok(refs) => refs.iter().any(|r| r.as_str() == Some(id)),
        Err(e) => {
            ctx.log.warn(format!("cannot list {} to keep other incidents' war rooms apart: {e:#}", store.describe()));
            false
        }
    };
    if held {
        ctx.log.info(format!("{key}: #{name} is the war room of another incident the ledger holds open; not this one's"));
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(v: Value) -> Result<Slack> {
        let m = match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Slack::from_settings(&m, &config::typed("slack", &m)?)
    }

    #[test]
    fn settings_are_checked() {
        let p = provider(json!({"token": "xoxb-1"})).expect("defaults");
        assert!(matches!(p.target, Target::WarRoom { is_private: false, archive_on_resolve: false, .. }));
        assert_eq!(p.api_url, api::DEFAULT_API_URL);
        assert!(p.ready().is_ok());
        let err = provider(json!({})).expect("provider").ready().expect_err("no token");
        assert!(err.to_string().contains("SLACK_BOT_TOKEN"), "{err}");
        let p = provider(json!({"channel": "#alerts", "responders": "U01ALICE01, U02BOB0002,U01ALICE01"})).expect("channel");
        assert!(matches!(&p.target, Target::Channel(c) if c == "alerts"));
        assert_eq!(p.responders, vec!["U01ALICE01", "U02BOB0002"]);
        for (bad, setting) in [
            (json!({"responders": ["alice"]}), "slack.responders"),
            (json!({"mention": "everyone"}), "slack.mention"),
            (json!({"channel_template": "inc-{day}"}), "slack.channel_template"),
            (json!({"channel": "a b"}), "slack.channel"),
            (json!({"is_private": "yes"}), "slack.is_private"),
        ] {
            let err = provider(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(err.code, Code::Config);
            assert!(err.to_string().contains(setting), "{err}");
        }
    }

    #[test]
    fn stored_refs_round_trip() {
        let s = Stored { channel_id: "C1".into(), channel_name: Some("inc-x".into()), ts: Some("1.2".into()) };
        assert_eq!(Stored::from_refs(&s.refs()), Some(s));
        assert_eq!(Stored::from_refs(&Map::new()), None);
    }

    #[test]
    fn spooled_answers_bring_the_channel_and_the_alert_ts() {
        let p = provider(json!({"token": "xoxb-1"})).expect("provider");
        let sent = Sent::of;
        let resp = |b: Value| Response { status: 200, body: b.to_string(), retry_after: None, location: None };
        let create = sent(Call::Create { name: "inc-a".into(), is_private: false, asked: 0 });
        let refs = p.spooled_refs(&create, &resp(json!({"ok": true, "channel": {"id": "C9", "name": "inc-a"}})));
        assert_eq!((refs[CHANNEL_ID].as_str(), refs[CHANNEL_NAME].as_str()), (Some("C9"), Some("inc-a")));
        let root = sent(Call::Post { channel: None, thread: Thread::Root, message: json!({"text": "x"}) });
        // An alert answered without its ts: posted, with nothing to thread under (no stale ts
        // kept over it, no placeholder).
        let untimed = p.spooled_refs(&root, &resp(json!({"ok": true, "channel": "C9"})));
        assert_eq!((untimed[CHANNEL_ID].as_str(), &untimed[TS]), (Some("C9"), &Value::Null));
        assert_eq!(Stored::from_refs(&untimed).and_then(|s| s.ts), None);
        let refs = p.spooled_refs(&root, &resp(json!({"ok": true, "channel": "C9", "ts": "5.1"})));
        assert_eq!(refs[TS], "5.1");
        let reply = sent(Call::Post {
            channel: Some("C9".into()),
            thread: Thread::Reply { ts: None, broadcast: false },
            message: json!({"text": "x"}),
        });
        assert!(p.spooled_refs(&reply, &resp(json!({"ok": true, "channel": "C9", "ts": "5.2"}))).is_empty());
        // Nor does a reply posted to the channel in place of a thread that takes none: it is
        // no alert.
        let refused = resp(json!({"ok": false, "error": "thread_not_found"}));
        let stand_in = p.instead(&reply, &refused).expect("to the channel");
        assert!(stand_in.unthreaded && matches!(stand_in.call, Call::Post { thread: Thread::Root, .. }));
        assert!(p.spooled_refs(&stand_in, &resp(json!({"ok": true, "channel": "C9", "ts": "5.3"}))).is_empty());
        let kept = serde_json::to_value(&stand_in).expect("JSON");
        assert_eq!(kept["unthreaded"], true);
        assert_eq!(serde_json::from_value::<Sent>(kept).expect("back"), stand_in);
        // An entry of an earlier version reads as an alert, as before.
        let old: Sent = serde_json::from_value(json!({"method": "post", "channel": "C9", "thread": "root", "message": {}})).expect("read");
        assert!(!old.unthreaded);
        // What a spooled call leaves open is filled in from the references at delivery, and the
        // payload round-trips through the spool as not live.
        assert!(p.request(&root, &Map::new()).is_err());
        let stored: Sent = serde_json::from_value(serde_json::to_value(Sent { live: true, ..root.clone() }).expect("JSON")).expect("back");
        assert_eq!(stored, root);
        let common::http::Body::Json(body) = p.request(&root, &refs).expect("filled").body else { panic!("JSON") };
        assert_eq!(body["channel"], "C9");
    }

    #[test]
    fn a_spooled_war_room_whose_name_was_taken_asks_for_the_next_name() {
        let p = provider(json!({"token": "xoxb-1"})).expect("provider");
        let taken =
            Response { status: 200, body: json!({"ok": false, "error": "name_taken"}).to_string(), retry_after: None, location: None };
        let next = |name: &str| match p.instead(&Sent::of(Call::Create { name: name.into(), is_private: true, asked: 7 }), &taken) {
            Some(Sent { call: Call::Create { name, is_private: true, asked: 7 }, .. }) => Some(name),
            other => panic!("{other:?}"),
        };
        assert_eq!(next("inc-a").as_deref(), Some("inc-a-2"));
        assert_eq!(next("inc-a-2").as_deref(), Some("inc-a-3"));
        assert_eq!(next("inc-a-4").as_deref(), Some("inc-a-5"));
        let random = next("inc-a-5").expect("a random suffix after -5");
        assert!(random.starts_with("inc-a-") && random.len() == "inc-a-".len() + 8, "{random}");
        // Another refusal, or another call, has no stand-in.
        let other = Response { body: json!({"ok": false, "error": "restricted_action"}).to_string(), ..taken.clone() };
        assert!(p.instead(&Sent::of(Call::Create { name: "inc-a".into(), is_private: false, asked: 0 }), &other).is_none());
        assert!(p.instead(&Sent::of(Call::Archive { channel: None }), &taken).is_none());
    }

    /// A spooled trigger's message into a war room that is gone becomes, at the flush, the run
    /// that opens another (written into the entry before it goes, as not sent); nothing else
    /// does.
    #[test]
    fn a_message_into_a_war_room_that_is_gone_becomes_the_run_that_opens_another() {
        let p = provider(json!({"token": "xoxb-1"})).expect("provider");
        let answer =
            |code: &str| Response { status: 200, body: json!({"ok": false, "error": code}).to_string(), retry_after: None, location: None };
        let room = Replacement {
            base: "inc-a".into(),
            topic: "CRITICAL a/b".into(),
            incident: "a/b".into(),
            alert: json!({"text": "alert"}),
            asked: 0,
        };
        let update = Sent {
            or_else: Some(Box::new(room.clone())),
            ..Sent::of(Call::Post {
                channel: Some("C1".into()),
                thread: Thread::Reply { ts: Some("1.1".into()), broadcast: true },
                message: json!({"text": "x"}),
            })
        };
        for code in ["is_archived", "channel_not_found", "not_in_channel"] {
            let run = p.instead(&update, &answer(code)).expect(code);
            assert!(run.replacing && p.is_run(&run) && !p.superseded_by_a_later_stop(&run), "{code}");
            assert!(run.or_else.as_ref().is_some_and(|r| r.asked > 0), "{code}: asked when it began");
            assert_eq!(run.call, update.call);
            // As the spool keeps it.
            let kept: Sent = serde_json::from_value(serde_json::to_value(&run).expect("JSON")).expect("back");
            assert_eq!(kept, run);
            assert!(p.instead(&run, &answer(code)).is_none(), "{code}: the run is not replaced again");
        }
        assert!(!p.is_run(&update));
        assert!(p.instead(&update, &answer("restricted_action")).is_none());
        // A thread that takes no reply still goes to the channel, keeping its replacement.
        let root = p.instead(&update, &answer("cannot_reply_to_message")).expect("to the channel");
        assert!(matches!(root.call, Call::Post { thread: Thread::Root, .. }) && !root.replacing && root.or_else == update.or_else);
        assert!(root.unthreaded);
        // Without a replacement (a recovery's, an entry of an earlier version), or in one-channel
        // mode: refused, as before.
        assert!(p.instead(&Sent { or_else: None, ..update.clone() }, &answer("is_archived")).is_none());
        let one = provider(json!({"token": "xoxb-1", "channel": "C9"})).expect("provider");
        assert!(one.instead(&update, &answer("is_archived")).is_none());
        // An entry of an earlier version reads as one without.
        let old: Sent = serde_json::from_value(json!({"method": "post", "channel": "C1", "thread": "root", "message": {}})).expect("read");
        assert_eq!((old.or_else, old.replacing, old.queued), (None, false, false));
    }

    /// A failure queued to be decided at the flush is a run, kept in the spool as it was
    /// queued; an update spooled by an earlier version (no `queued`) is the request it was.
    #[test]
    fn a_failure_queued_to_be_decided_at_the_flush_is_a_run() {
        let p = provider(json!({"token": "xoxb-1"})).expect("provider");
        let room = Replacement {
            base: "inc-a".into(),
            topic: "CRITICAL a/b".into(),
            incident: "a/b".into(),
            alert: json!({"text": "alert"}),
            asked: 7,
        };
        let update = Sent {
            or_else: Some(Box::new(room)),
            ..Sent::of(Call::Post {
                channel: Some("C1".into()),
                thread: Thread::Reply { ts: Some("1.1".into()), broadcast: false },
                message: json!({"text": "still CRITICAL"}),
            })
        };
        let queued = Sent { queued: true, ..update.clone() };
        assert!(p.is_run(&queued) && !p.superseded_by_a_later_stop(&queued));
        let kept = serde_json::to_value(&queued).expect("JSON");
        assert_eq!(kept["queued"], true);
        assert_eq!(serde_json::from_value::<Sent>(kept).expect("back"), queued);
        let earlier = serde_json::to_value(&update).expect("JSON");
        assert!(earlier.get("queued").is_none(), "{earlier}");
        let earlier: Sent = serde_json::from_value(earlier).expect("back");
        assert!(!earlier.queued && !p.is_run(&earlier));
    }

    /// A call into a war room a flush replaced goes to the room the record holds, a reply under
    /// its alert; others go as they are.
    #[test]
    fn calls_into_a_replaced_war_room_follow_the_record() {
        let mut refs = Stored { channel_id: "C2".into(), channel_name: Some("inc-a-2".into()), ts: Some("2.2".into()) }.refs();
        let reply = Call::Post {
            channel: Some("C1".into()),
            thread: Thread::Reply { ts: Some("1.1".into()), broadcast: true },
            message: json!({"text": "RECOVERED"}),
        };
        let archive = Call::Archive { channel: Some("C1".into()) };
        assert_eq!(followed(&reply, &refs), None, "nothing replaced");
        refs.insert(REPLACED.into(), json!(["C0", "C1"]));
        let body = followed(&reply, &refs).expect("followed").body(&refs).expect("body");
        assert_eq!((body["channel"].as_str(), body["thread_ts"].as_str()), (Some("C2"), Some("2.2")));
        assert_eq!(followed(&archive, &refs).expect("followed").body(&refs).expect("body")["channel"], "C2");
        let elsewhere = Call::Post { channel: Some("C7".into()), thread: Thread::Root, message: json!({}) };
        assert_eq!(followed(&elsewhere, &refs), None);
        let p = provider(json!({"token": "xoxb-1"})).expect("provider");
        let common::http::Body::Json(body) = p.request(&Sent::of(reply), &refs).expect("request").body else { panic!("JSON") };
        assert_eq!(body["channel"], "C2");
    }

    /// A message queued to follow the record goes to the room the record names at the flush,
    /// channel and thread both from it; with no room named there, as it was queued.
    #[test]
    fn calls_queued_to_follow_the_record_take_its_room_and_its_thread_together() {
        let refs = Stored { channel_id: "C2".into(), channel_name: Some("inc-a-2".into()), ts: Some("2.2".into()) }.refs();
        let reply = Call::Post {
            channel: Some("C1".into()),
            thread: Thread::Reply { ts: None, broadcast: true },
            message: json!({"text": "RECOVERED"}),
        };
        let body = following(&reply, &refs).expect("followed").body(&refs).expect("body");
        assert_eq!(
            (body["channel"].as_str(), body["thread_ts"].as_str(), body["reply_broadcast"].as_bool()),
            (Some("C2"), Some("2.2"), Some(true))
        );
        let known = Call::Post {
            channel: Some("C1".into()),
            thread: Thread::Reply { ts: Some("1.1".into()), broadcast: true },
            message: json!({}),
        };
        let body = following(&known, &refs).expect("followed").body(&refs).expect("body");
        assert_eq!((body["channel"].as_str(), body["thread_ts"].as_str()), (Some("C2"), Some("2.2")));
        let root = Call::Post { channel: Some("C1".into()), thread: Thread::Root, message: json!({}) };
        let body = following(&root, &refs).expect("followed").body(&refs).expect("body");
        assert_eq!((body["channel"].as_str(), body.get("thread_ts")), (Some("C2"), None));
        let archive = Call::Archive { channel: Some("C1".into()) };
        assert_eq!(following(&archive, &refs).expect("followed").body(&refs).expect("body")["channel"], "C2");
        // The room's alert not known: into its channel, not under another room's alert.
        let no_alert = Stored { channel_id: "C2".into(), channel_name: None, ts: None }.refs();
        let body = following(&reply, &no_alert).expect("followed").body(&no_alert).expect("body");
        assert_eq!((body["channel"].as_str(), body.get("thread_ts")), (Some("C2"), None));
        // No room in the record: as queued.
        assert_eq!(following(&known, &Map::new()), None);
        // Through the provider, only when the entry says so; kept in the spool, and by a
        // stand-in for a thread that takes no reply.
        let p = provider(json!({"token": "xoxb-1"})).expect("provider");
        let sent = Sent { follows: true, closes: true, ..Sent::of(known.clone()) };
        let common::http::Body::Json(body) = p.request(&sent, &refs).expect("request").body else { panic!("JSON") };
        assert_eq!((body["channel"].as_str(), body["thread_ts"].as_str()), (Some("C2"), Some("2.2")));
        let common::http::Body::Json(body) = p.request(&Sent { follows: false, ..sent.clone() }, &refs).expect("request").body else {
            panic!("JSON")
        };
        assert_eq!((body["channel"].as_str(), body["thread_ts"].as_str()), (Some("C1"), Some("1.1")));
        let kept = serde_json::to_value(&sent).expect("JSON");
        assert_eq!(kept["follows"], true);
        assert_eq!(serde_json::from_value::<Sent>(kept).expect("back"), sent);
        let refused = Response {
            status: 200,
            body: json!({"ok": false, "error": "cannot_reply_to_message"}).to_string(),
            retry_after: None,
            location: None,
        };
        let stand_in = p.instead(&sent, &refused).expect("to the channel");
        assert!(stand_in.follows && matches!(stand_in.call, Call::Post { thread: Thread::Root, .. }));
        let common::http::Body::Json(body) = p.request(&stand_in, &refs).expect("request").body else { panic!("JSON") };
        assert_eq!((body["channel"].as_str(), body.get("thread_ts")), (Some("C2"), None));
        // An entry of an earlier version reads as one that does not follow.
        let old: Sent = serde_json::from_value(json!({"method": "post", "channel": "C1", "thread": "root", "message": {}})).expect("read");
        assert!(!old.follows);
    }

    #[test]
    fn user_ids() {
        assert!(is_user_id("U01ALICE01") && is_user_id("W123"));
        assert!(!is_user_id("u01") && !is_user_id("@alice") && !is_user_id("U") && !is_user_id("C0123"));
    }

    /// README.md's "Who may set what" says what `SETTINGS` says.
    #[test]
    fn the_readme_says_who_may_set_each_setting() {
        let found = common::trust::readme::disagreements(include_str!("../../README.md"), Slack::NAME, Slack::SETTINGS);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}
