//! Tell the team who answered: one Slack message when a person takes the call, or when nobody
//! does.
//!
//! Calling people one by one (`mode: sequential`) ends when someone answers, but the rest of the
//! team does not know who that was. With an announcement target set, the handler sends one
//! message naming who answered (name and masked number, [`masked`]), the incident and the time
//! to answer, e.g. `Bob (+14•••••0102) answered the call for web-01/check_disk (critical) after
//! 47s.`; and when nobody answered after every round, `Nobody answered the call for
//! web-01/check_disk (critical): 3 people called twice in 3m 5s.`
//!
//! Targets (settings of the `twilio` section), the first that applies:
//! 1. the incident's war room: with a Slack bot token (`announce_token`, environment
//!    `SLACK_BOT_TOKEN`, flag `--announce-token`), when handler-slack has a channel open for the
//!    same incident key on the same state store (`state_store` Redis, else `state_dir`; its
//!    record's `refs.channel_id`, and `ts`, the alert the message replies to, broadcast to the
//!    channel);
//! 2. `announce_channel`: a Slack channel ID, with the bot token;
//! 3. `announce_webhook`: a Slack-compatible incoming-webhook URL; `POST {"text": …}` (Slack's
//!    "Sending messages using incoming webhooks"; `../shared/specs/slack-web-api.md` §7). The
//!    whole URL is a credential: it is masked in every log line.
//!
//! Slack messages go through `chat.postMessage` (spec §5.5) at `announce_api_url` (default
//! `https://slack.com/api`, settable only by settings files, the environment and flags). With a
//! token alone, only incidents that have a war room are announced.
//!
//! In broadcast mode everyone is called at once and nobody is followed, so announcing needs
//! `announce_answered: true`: the handler then polls the calls it placed (every `poll_interval`)
//! until one is answered or all have ended, within `--timeout`; when the deadline comes first,
//! nothing is announced (a log line says so).
//!
//! Text from the event (entity, check) and the configured names are escaped for Slack's mrkdwn
//! (`&`, `<`, `>`; spec §6), so a host named `<!channel>` notifies nobody. The announcement is
//! best effort: it is sent once (retried on 429/5xx/network errors within a few seconds,
//! [`ANNOUNCE_TIMEOUT`]), never spooled, and its failure is logged as a warning without
//! changing the page's exit code. A dry run announces nothing.

use std::path::PathBuf;
use std::time::Duration;

use common::config::{self, Common, de};
use common::exit::{Code, Result};
use common::http::{Deadline, Request, Response, classify_status};
use common::mrkdwn::escape_cut;
use common::outcome::{Fate, Outcome, Retry};
use common::pipeline::{Ctx, Job};
use common::state::Store;
use common::state::file::FileStore;
use common::state::redis::RedisStore;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::provider::{Recipient, Twilio};
use crate::sequential::Verdict;

/// Default Slack Web API base URL (`{announce_api_url}/chat.postMessage`).
pub const SLACK_API_URL: &str = "https://slack.com/api";

/// Longest time spent on the announcement, retries included: 5 s. It is sent within what is
/// left of `--timeout`, but given at least [`MIN_ANNOUNCE_TIME`] even when the calls used it up.
pub const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);

/// Least time given to the announcement: 2 s.
pub const MIN_ANNOUNCE_TIME: Duration = Duration::from_secs(2);

/// How the announcement settings are read ([`common::unread`]).
pub const READER: common::unread::Reader = common::unread::Reader::of::<Settings>();

/// The announcement settings of the `twilio` section.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Settings {
    announce_webhook: Option<String>,
    announce_channel: Option<String>,
    announce_token: Option<String>,
    announce_api_url: Option<String>,
    #[serde(deserialize_with = "de::boolean")]
    announce_answered: bool,
}

/// Where one announcement goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// An incoming-webhook URL (a credential).
    Webhook(String),
    /// `chat.postMessage` as `bot` to `channel`, in the thread of `thread_ts` (then also
    /// broadcast to the channel) when given; `war_room`: the incident's own channel.
    Channel { bot: Bot, channel: String, thread_ts: Option<String>, war_room: bool },
}

/// The Slack Web API as the bot: base URL and token.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bot {
    api_url: String,
    token: String,
}

/// Who gets told, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcer {
    webhook: Option<String>,
    channel: Option<String>,
    bot: Option<Bot>,
    /// The state store shared with handler-slack: Redis (`state_store`, with `ca_file` for
    /// `rediss://`), else the file store in `state_dir`.
    state_store: Option<String>,
    state_dir: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    /// Broadcast mode: follow the calls to learn who answered (`announce_answered`).
    pub broadcast: bool,
}

/// What happened, to announce.
#[derive(Debug, Clone, Copy)]
pub enum News<'a> {
    /// `who` answered; `after` since paging began.
    Answered { who: &'a Recipient, after: Duration },
    /// Nobody answered: `people` were called, `calls` calls in all, over `after`.
    Nobody { people: usize, calls: usize, after: Duration },
}

impl Announcer {
    /// From the `twilio` settings section: `None` when no target is set (no webhook, channel or
    /// bot token). Errors (exit 78): a webhook or API URL that is not http(s), a channel without
    /// a bot token.
    pub fn from_section(section: &Map<String, Value>, common: &Common) -> Result<Option<Announcer>> {
        let s: Settings = config::typed("twilio", section)?;
        let trimmed = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let http = |name: &str, url: &str| {
            if url.starts_with("https://") || url.starts_with("http://") {
                Ok(())
            } else {
                Err(Code::Config.msg(format!("settings `twilio.{name}` is not an http(s) URL")))
            }
        };
        let webhook = trimmed(s.announce_webhook);
        if let Some(url) = &webhook {
            http("announce_webhook", url)?;
        }
        let channel = trimmed(s.announce_channel);
        let bot = match trimmed(s.announce_token) {
            Some(token) => {
                let api_url = trimmed(s.announce_api_url).unwrap_or_else(|| SLACK_API_URL.to_string());
                http("announce_api_url", &api_url)?;
                Some(Bot { api_url: api_url.trim_end_matches('/').to_string(), token })
            }
            None if channel.is_some() => {
                return Err(Code::Config.msg(
                    "settings `twilio.announce_channel` needs a Slack bot token: set `twilio.announce_token`, SLACK_BOT_TOKEN or --announce-token",
                ));
            }
            None => None,
        };
        if webhook.is_none() && channel.is_none() && bot.is_none() {
            return Ok(None);
        }
        Ok(Some(Announcer {
            webhook,
            channel,
            bot,
            state_store: common.state_store.clone(),
            state_dir: common.state_dir.clone(),
            ca_file: common.ca_file.clone(),
            broadcast: s.announce_answered,
        }))
    }

    /// Credentials to mask in every log line: the webhook URL (and its secret last part), or
    /// the bot token.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(url) = &self.webhook {
            out.push(url.clone());
            out.extend(url.trim_end_matches('/').rsplit('/').next().filter(|s| s.len() >= 8).map(str::to_string));
        }
        out.extend(self.bot.iter().map(|b| b.token.clone()));
        out
    }

    /// Where the announcement about incident `key` goes now: the war room handler-slack holds
    /// open for it, else `announce_channel`, else the webhook; `None` when there is none (a bot
    /// token alone, and no war room).
    fn target(&self, ctx: &Ctx<'_, Twilio>, key: &str) -> Option<Target> {
        if let Some(bot) = &self.bot {
            if let Some((channel, thread_ts)) = self.war_room(ctx, key) {
                return Some(Target::Channel { bot: bot.clone(), channel, thread_ts, war_room: true });
            }
            if let Some(channel) = &self.channel {
                return Some(Target::Channel { bot: bot.clone(), channel: channel.clone(), thread_ts: None, war_room: false });
            }
        }
        self.webhook.clone().map(Target::Webhook)
    }

    /// The open war room of incident `key` in handler-slack's record: its channel ID and the
    /// alert's `ts` (`refs.channel_id`, `refs.ts`), read from the same state store (the Redis
    /// of `state_store`, else the directory of `state_dir`). Any trouble reading it: `None`
    /// (logged at debug), so the other targets still apply.
    fn war_room(&self, ctx: &Ctx<'_, Twilio>, key: &str) -> Option<(String, Option<String>)> {
        let opened: anyhow::Result<Box<dyn Store>> = match &self.state_store {
            Some(url) => {
                let budget = common::state::redis::budget(ctx.deadline.remaining().max(MIN_ANNOUNCE_TIME));
                RedisStore::connect(url, "slack", self.ca_file.as_deref(), budget).map(|s| Box::new(s) as Box<dyn Store>)
            }
            None => FileStore::open("slack", self.state_dir.as_deref()).map(|o| Box::new(o.store) as Box<dyn Store>),
        };
        let store = match opened {
            Ok(s) => s,
            Err(e) => {
                ctx.log.debug(format!("no handler-slack state to look for a war room: {e:#}"));
                return None;
            }
        };
        let record = common::state::get(store.as_ref(), key);
        let incident = match record {
            Ok(Some(i)) if i.open => i,
            Ok(_) => return None,
            Err(e) => {
                ctx.log.debug(format!("cannot read handler-slack's record of {key}: {e:#}"));
                return None;
            }
        };
        let text = |k: &str| incident.refs.get(k).and_then(Value::as_str).map(str::to_string).filter(|s| !s.is_empty());
        Some((text("channel_id")?, text("ts")))
    }

    /// Send `text` about incident `key` once, best effort: the outcome is logged, never returned.
    fn send(&self, ctx: &Ctx<'_, Twilio>, key: &str, text: &str) {
        let Some(target) = self.target(ctx, key) else {
            ctx.log.debug(format!("{key} has no war room and no other announcement target is set; nothing announced"));
            return;
        };
        let budget = ANNOUNCE_TIMEOUT.min(ctx.deadline.remaining().max(MIN_ANNOUNCE_TIME));
        let deadline = Deadline::after(budget);
        let req = target.request(text);
        let webhook = matches!(target, Target::Webhook(_));
        let classify = |resp: &Response| if webhook { classify_webhook(resp) } else { classify_slack(resp) };
        let log = ctx.log;
        let mut line = |l: String| log.debug(format!("announcement: {l}"));
        let where_to = match &target {
            Target::Webhook(_) => "the announce webhook".to_string(),
            Target::Channel { channel, war_room: true, .. } => format!("its war room {channel}"),
            Target::Channel { channel, .. } => format!("Slack channel {channel}"),
        };
        match ctx.client.deliver(&req, &deadline, Fate::NotSent, &classify, &mut line) {
            Outcome::Delivered(_) => ctx.log.info(format!("announced {key} to {where_to}")),
            failed => ctx
                .log
                .warn(format!("cannot announce {key} to {where_to} ({}); the page itself is not affected", failed.reason().unwrap_or(""))),
        }
    }
}

impl Target {
    /// The request that carries `text` here. Links are not unfurled (as handler-slack's
    /// messages): a host or check name that is an image's URL must not show that image in the
    /// channel (Slack unfurls media by default, spec §5.5).
    fn request(&self, text: &str) -> Request {
        match self {
            Target::Webhook(url) => Request::post_json(url.clone(), json!({ "text": text, "unfurl_links": false, "unfurl_media": false })),
            Target::Channel { bot, channel, thread_ts, .. } => {
                let mut body = json!({ "channel": channel, "text": text, "unfurl_links": false, "unfurl_media": false });
                if let Some(ts) = thread_ts {
                    body["thread_ts"] = json!(ts);
                    body["reply_broadcast"] = json!(true);
                }
                let mut req = Request::post_json(format!("{}/chat.postMessage", bot.api_url), body);
                req.headers.push(("Authorization".into(), format!("Bearer {}", bot.token)));
                req
            }
        }
    }
}

/// An incoming webhook answers 200 `ok`, or an HTTP error status with a short plain-text code
/// (spec §7): 429 and 5xx are retried, other statuses are permanent.
fn classify_webhook(resp: &Response) -> Outcome {
    match classify_status(resp) {
        Outcome::Retry(r) => Outcome::Retry(Retry { reason: format!("{} {}", r.reason, code_text(&resp.body)), ..r }),
        Outcome::Refused(r) => Outcome::Refused(format!("{r} {}", code_text(&resp.body))),
        other => other,
    }
}

/// The Web API answers HTTP 200 with `{"ok": false, "error": CODE}` for errors (spec §3):
/// classified by the code; `missing_scope` names the scope needed.
fn classify_slack(resp: &Response) -> Outcome {
    if resp.status == 429 {
        let after = Some(resp.retry_after.unwrap_or(common::slack::RATE_LIMIT_BACKOFF));
        return Outcome::Retry(Retry { after, ..Retry::not_sent(format!("HTTP 429 {}", code_text(&resp.body))) });
    }
    if resp.status != 200 {
        return classify_status(resp);
    }
    let v: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    if v["ok"] == true {
        return Outcome::Delivered(());
    }
    let code = v["error"].as_str().unwrap_or("an answer without ok");
    let mut why = format!("Slack error {}", code_text(code));
    if code == "missing_scope" {
        why.push_str(&format!(" (the bot token needs the scope {})", code_text(v["needed"].as_str().unwrap_or("chat:write"))));
    }
    // A rate limit answered without Retry-After waits before the next try (Slack spec §4).
    let after = common::slack::is_rate_limit(code).then_some(common::slack::RATE_LIMIT_BACKOFF);
    // The spec's retry class (§5), as handler-slack reads it: `common::slack::is_retry`.
    if common::slack::is_retry(code) { Outcome::Retry(Retry { after, ..Retry::not_sent(why) }) } else { Outcome::Refused(why) }
}

/// A service's short error code for a log line: at most 60 characters, control characters
/// escaped.
fn code_text(s: &str) -> String {
    let cut: String = s.trim().chars().take(60).collect();
    cut.escape_debug().to_string()
}

/// An E.164 number with its middle hidden: `+` and the first two digits, then `•` for each
/// hidden digit, then the last four digits (`+14155550102` → `+14•••••0102`). Numbers of six
/// digits or fewer show only their last two.
pub fn masked(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    let (head, tail) = if n > 6 { (2, 4) } else { (0, 2.min(n)) };
    let mut out = String::from("+");
    out.extend(&digits[..head]);
    out.extend(std::iter::repeat_n('•', n - head - tail));
    out.extend(&digits[n - tail..]);
    out
}

/// `once`, `twice`, `3 times`.
fn times(n: usize) -> String {
    match n {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

/// Whole seconds as humantime writes them (`47s`, `3m 5s`).
fn took(d: Duration) -> String {
    config::show_duration(Duration::from_secs(d.as_secs()))
}

/// Longest incident name (`entity/check (status)`, escaped) and recipient name in an
/// announcement, in characters: 1000 and 200. Host and check names can be of any length, and
/// Slack asks for a message `text` of at most 4,000 characters (spec §5.5); an announcement of
/// a 50 000-character entity was one of over 50 000.
pub const MAX_SUBJECT_CHARS: usize = 1000;
/// See [`MAX_SUBJECT_CHARS`].
pub const MAX_NAME_CHARS: usize = 200;

/// How an announcement names `event`'s incident: `entity/check (status)`, not escaped yet.
pub fn subject(event: &common::event::Event) -> String {
    format!("{}/{} ({})", event.entity, event.check, event.status_name())
}

/// The message for `news` about the incident named `subject` ([`subject`]), escaped for mrkdwn
/// and cut to [`MAX_SUBJECT_CHARS`] (the person's name to [`MAX_NAME_CHARS`]).
pub fn text(news: &News<'_>, subject: &str) -> String {
    let incident = escape_cut(subject, MAX_SUBJECT_CHARS);
    match *news {
        News::Answered { who, after } => {
            let who = match &who.name {
                Some(name) => format!("{} ({})", escape_cut(name, MAX_NAME_CHARS), masked(&who.phone)),
                None => masked(&who.phone),
            };
            format!("{who} answered the call for {incident} after {}.", took(after))
        }
        News::Nobody { people, calls, after } => {
            let called = match people {
                1 => format!("1 person called {}", times(calls)),
                p if calls % p == 0 => format!("{p} people called {}", times(calls / p)),
                p => format!("{p} people called, {calls} calls in all"),
            };
            format!("Nobody answered the call for {incident}: {called} in {}.", took(after))
        }
    }
}

impl Twilio {
    /// Announce `news` about incident `key`, named `subject` ([`subject`]), when an
    /// announcement target is set (not in a dry run).
    pub(crate) fn announce(&self, ctx: &Ctx<'_, Twilio>, key: &str, subject: &str, news: News<'_>) {
        if let Some(a) = &self.announcer
            && !ctx.dry_run
        {
            a.send(ctx, key, &text(&news, subject));
        }
    }

    /// Broadcast mode with `announce_answered`: follow the `placed` calls (recipient, call
    /// SID) until one is answered (announce who) or all have ended (announce nobody), within
    /// the run's deadline (then announce nothing).
    pub(crate) fn announce_broadcast(&self, ctx: &Ctx<'_, Twilio>, job: &Job<'_>, placed: &[(Recipient, String)]) {
        if placed.is_empty() || ctx.dry_run || !self.announcer.as_ref().is_some_and(|a| a.broadcast) {
            return;
        }
        let amd = self.machine_detection.is_some();
        let mut pending: Vec<&(Recipient, String)> = placed.iter().collect();
        loop {
            if ctx.deadline.remaining() <= self.poll_interval + MIN_ANNOUNCE_TIME {
                ctx.log.info(format!(
                    "{} of {} calls for {} still undecided when --timeout ran out; who answered is not announced",
                    pending.len(),
                    placed.len(),
                    job.incident_key
                ));
                return;
            }
            common::lease::sleep(self.poll_interval);
            let mut still = Vec::new();
            for call in pending {
                let (r, sid) = call;
                match self.fetch(ctx, sid, r) {
                    Ok(st) => match st.verdict(amd) {
                        Verdict::Answered => {
                            ctx.log.info(format!("call {sid} to {}: {}", r.label(), st.describe()));
                            return self.announce(
                                ctx,
                                job.incident_key,
                                &subject(job.event),
                                News::Answered { who: r, after: ctx.deadline.elapsed() },
                            );
                        }
                        Verdict::NotAnswered => ctx.log.info(format!("call {sid} to {}: {}", r.label(), st.describe())),
                        Verdict::Pending => still.push(call),
                    },
                    // A call whose status cannot be learned is not waited for.
                    Err((reason, true)) => ctx.log.warn(format!("status of call {sid} to {}: {reason}", r.label())),
                    Err((_, false)) => still.push(call),
                }
            }
            if still.is_empty() {
                let news = News::Nobody { people: placed.len(), calls: placed.len(), after: ctx.deadline.elapsed() };
                return self.announce(ctx, job.incident_key, &subject(job.event), news);
            }
            pending = still;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn from(v: Value) -> Result<Option<Announcer>> {
        Announcer::from_section(&section(v), &Common::default())
    }

    #[test]
    fn numbers_are_masked_but_recognizable() {
        assert_eq!(masked("+14155550102"), "+14•••••0102");
        assert_eq!(masked("+819012345678"), "+81••••••5678");
        assert_eq!(masked("+12345"), "+•••45");
        assert_eq!(masked(""), "+");
    }

    #[test]
    fn settings_choose_the_target() {
        assert_eq!(from(json!({})).ok(), Some(None));
        let a = from(json!({"announce_webhook": "https://hooks.slack.com/services/T1/B1/abcdefgh1234"}));
        let a = a.ok().flatten().map(|a| (a.broadcast, a.secrets()));
        assert_eq!(a, Some((false, vec!["https://hooks.slack.com/services/T1/B1/abcdefgh1234".to_string(), "abcdefgh1234".to_string()])));
        let err = from(json!({"announce_channel": "C1"})).err().map(|e| (e.code, e.to_string()));
        assert!(err.as_ref().is_some_and(|(c, m)| *c == Code::Config && m.contains("SLACK_BOT_TOKEN")), "{err:?}");
        let a = from(json!({"announce_channel": "C1", "announce_token": "xoxb-1", "announce_answered": "true"}));
        let a = a.ok().flatten();
        assert_eq!(a.as_ref().map(|a| (a.broadcast, a.secrets())), Some((true, vec!["xoxb-1".to_string()])));
        let bot = a.and_then(|a| a.bot);
        assert_eq!(bot.as_ref().map(|b| b.api_url.as_str()), Some("https://slack.com/api"));
        let room =
            bot.map(|bot| Target::Channel { bot, channel: "C9".into(), thread_ts: Some("1.2".into()), war_room: true }.request("hi"));
        assert_eq!(room.as_ref().map(|r| r.url.as_str()), Some("https://slack.com/api/chat.postMessage"));
        assert_eq!(
            room.map(|r| r.body),
            Some(common::http::Body::Json(
                json!({"channel": "C9", "text": "hi", "thread_ts": "1.2", "reply_broadcast": true, "unfurl_links": false, "unfurl_media": false})
            ))
        );
        // A token alone: announce in war rooms only.
        assert!(from(json!({"announce_token": "xoxb-1"})).ok().flatten().is_some());
        let bad = from(json!({"announce_webhook": "hooks.slack.com/x"}));
        assert_eq!(bad.err().map(|e| e.code), Some(Code::Config));
    }

    #[test]
    fn messages_say_who_or_how_many_were_called() {
        let event = common::event::Event { entity: "db<1>".into(), check: "backup&".into(), status: 2, ..Default::default() };
        let job = subject(&event);
        let bob = Recipient { name: Some("Bob <b>".into()), phone: "+14155550102".into() };
        let anon = Recipient { name: None, phone: "+14155550103".into() };
        let secs = Duration::from_millis;
        assert_eq!(
            text(&News::Answered { who: &bob, after: secs(47_900) }, &job),
            "Bob &lt;b&gt; (+14•••••0102) answered the call for db&lt;1&gt;/backup&amp; (critical) after 47s."
        );
        assert_eq!(
            text(&News::Answered { who: &anon, after: secs(185_000) }, &job),
            "+14•••••0103 answered the call for db&lt;1&gt;/backup&amp; (critical) after 3m 5s."
        );
        let nobody = |people, calls| text(&News::Nobody { people, calls, after: secs(10_000) }, &job);
        assert!(nobody(3, 6).ends_with(": 3 people called twice in 10s."), "{}", nobody(3, 6));
        assert!(nobody(1, 1).ends_with(": 1 person called once in 10s."), "{}", nobody(1, 1));
        assert!(nobody(2, 6).ends_with(": 2 people called 3 times in 10s."), "{}", nobody(2, 6));
        assert!(nobody(3, 5).ends_with(": 3 people called, 5 calls in all in 10s."), "{}", nobody(3, 5));
    }

    #[test]
    fn slack_answers_are_classified_by_their_error_code() {
        let resp = |status, body: &str| Response { status, body: body.into(), retry_after: None, location: None };
        assert_eq!(classify_slack(&resp(200, r#"{"ok":true,"ts":"1.2"}"#)), Outcome::Delivered(()));
        assert!(matches!(classify_slack(&resp(200, r#"{"ok":false,"error":"ratelimited"}"#)), Outcome::Retry(_)));
        let scope = classify_slack(&resp(200, r#"{"ok":false,"error":"missing_scope","needed":"chat:write"}"#));
        assert!(matches!(&scope, Outcome::Refused(r) if r.contains("needs the scope chat:write")), "{scope:?}");
        assert!(matches!(classify_slack(&resp(429, "")), Outcome::Retry(_)));
        // Every code of the spec's retry class (§5 "Common to every method", §5.5), as
        // handler-slack classifies them.
        for code in ["message_limit_exceeded", "team_added_to_org", "org_login_required", "fatal_error", "request_timeout"] {
            let body = format!(r#"{{"ok":false,"error":"{code}"}}"#);
            assert!(matches!(classify_slack(&resp(200, &body)), Outcome::Retry(_)), "{code}");
        }
        assert!(matches!(classify_webhook(&resp(404, "no_service")), Outcome::Refused(r) if r == "HTTP 404 no_service"));
        assert!(matches!(classify_webhook(&resp(500, "rollup_error")), Outcome::Retry(_)));
        assert_eq!(classify_webhook(&resp(200, "ok")), Outcome::Delivered(()));
    }
}
