//! A fake Slack: the Web API methods a war room needs, and incoming webhooks.
//!
//! Implements the contract of `../shared/specs/slack-web-api.md` (docs.slack.dev method pages,
//! their machine-readable copy, and Slack's 2022 docs; section numbers below are the spec's):
//!
//! - `POST /api/METHOD` with `Authorization: Bearer xoxb-…` (§1): no token → `not_authed`, a
//!   wrong one → `invalid_auth`; errors are HTTP 200 `{"ok": false, "error": …}` (§3). A token in
//!   the query string or inside a JSON body is a violation (the handler must use the header).
//! - Bodies (§2): JSON with `charset=utf-8` (without it: warning `missing_charset`, recorded as a
//!   violation), or form-encoded without a charset; anything else `invalid_post_type` /
//!   `missing_post_type`; bad JSON `invalid_json`, not an object `json_not_object`.
//! - Methods: `auth.test` (§5.9), `conversations.create` with Slack's name rules and
//!   `name_taken` (§5.1), `conversations.setTopic` ≤ 250 characters (§5.2),
//!   `conversations.invite` ≤ 100 IDs with per-user `errors[]` and the partial success of
//!   ordinary members (§5.4), `chat.postMessage` with `thread_ts` / `reply_broadcast` and
//!   Block Kit limits (§5.5, §6), `conversations.archive` / `unarchive` (§5.6, §5.7),
//!   `conversations.info` and `conversations.list` (GET with a query string, `cursor`
//!   pagination, archived and private-without-the-bot channels filtered as Slack does, §5.8).
//!   Unknown methods: 404 `unknown_method`.
//! - Scopes (§1, each method's page): the token's scopes are configurable; a method whose scope
//!   is missing answers `missing_scope` with `needed` and `provided`.
//! - Incoming webhooks (§7): `POST /services/T…/B…/SECRET`, JSON `{"text", "blocks"}`, answered
//!   with the plain text `ok`, or Slack's plain-text error codes with their HTTP statuses.
//! - Faults are scripted per method ([`Fault`]): 429 with `Retry-After`, 500 with an HTML body,
//!   an error code, no answer at all, or the request carried out and its answer lost.
//!
//! Every request is checked: unknown or mistyped arguments, a missing required argument
//! (`invalid_arguments` with `[ERROR] missing required field: …`, §9), an invalid channel name,
//! an over-long topic, more than 100 users, a `thread_ts` naming a reply, `reply_broadcast`
//! without `thread_ts`, a message without `text`, text over 4,000 characters, broken blocks: each
//! is answered as Slack would *and* recorded as a violation, so a test fails even when the
//! handler copes with the error. Errors a test provokes on purpose (`name_taken`,
//! `user_not_found`, `invalid_auth`, `channel_not_found`, …) are not violations.
//!
//! For assertions each message keeps what Slack would make of its `text` and `mrkdwn` texts
//! (§6): every `<…>` control sequence, the mentions among them (`<!channel>`, `<@U…>`, …) and
//! the count of `&` that do not start an entity.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::{Received, Reply, Server};

/// The bot token the fake accepts (never a real one).
pub const BOT_TOKEN: &str = "xoxb-1000000001-2000000002-FakeSlackTestToken0";
/// The Web API methods of a war room's whole life, in order: opened (create, topic, invite),
/// the alert, the recovery in its thread, archived.
pub const WAR_ROOM_LIFE: [&str; 6] = [
    "conversations.create",
    "conversations.setTopic",
    "conversations.invite",
    "chat.postMessage",
    "chat.postMessage",
    "conversations.archive",
];
/// The bot's own user ID (auth.test `user_id`); inviting it is `cant_invite_self`.
pub const BOT_USER: &str = "U0BOT00001";
/// Workspace ID (auth.test `team_id`).
pub const TEAM_ID: &str = "T0FAKE0001";
/// Ordinary members of the fake workspace, invitable.
pub const USERS: [&str; 4] = ["U01ALICE01", "U02BOB0002", "U03CAROL03", "U04DAVE004"];
/// A channel every fake workspace has (`#general`, the bot a member).
pub const GENERAL: &str = "C0GENERAL1";
/// A second existing channel, the bot a member: the target of the `channel` setting in tests.
pub const ALERTS: &str = "C0ALERTS01";
/// The secret part of the webhook URL the fake serves ([`FakeSlack::webhook_url`]).
pub const WEBHOOK_SECRET: &str = "FakeWebhookSecret0000abcd";
/// Every bot scope the handlers can need; the default grant.
pub const ALL_SCOPES: [&str; 8] = [
    "channels:manage",
    "groups:write",
    "channels:write.topic",
    "channels:write.invites",
    "chat:write",
    "channels:read",
    "groups:read",
    "chat:write.public",
];

/// A scripted fault for one request to a method (`*` for any), replacing its normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 `{"ok":false,"error":"ratelimited"}` with `Retry-After: N` (seconds).
    RateLimited(u64),
    /// HTTP 500 with an HTML body (Slack's front end; §3).
    ServerError,
    /// HTTP 200 `{"ok": false, "error": CODE}`.
    Error(&'static str),
    /// Accept the request and never answer.
    Hang,
    /// Carry the request out, then never answer (the answer is lost on the way back).
    Lost,
    /// Carry the request out, then answer HTTP 200 with this body in place of Slack's answer
    /// (a proxy's or a gateway's page on the way back, `{}`): nothing in it says what was done.
    /// [`FakeSlack::calls`] keeps Slack's own answer, as for [`Fault::Lost`].
    Garbled(&'static str),
    /// Carry the request out and answer `ok: true` without this field of Slack's answer
    /// (`channel` of a create, `ts` of a post): an answer that breaks its documented shape.
    /// [`FakeSlack::calls`] keeps Slack's whole answer.
    Without(&'static str),
    /// Judge and carry the request out as usual (checks, scopes, faults queued after this
    /// one), and answer after this many milliseconds (a request in flight for a while: its
    /// sender is busy with the incident meanwhile).
    Slow(u64),
}

/// One Web API request or webhook post the fake answered.
#[derive(Debug, Clone)]
pub struct Call {
    /// Method (`chat.postMessage`), or `webhook` for an incoming-webhook post.
    pub method: String,
    /// Arguments (JSON object; form fields as strings), without the token.
    pub args: Value,
    /// HTTP status answered (`0`: hung).
    pub status: u16,
    /// The answer (`{"ok": …}`; for webhooks `{"body": "ok"}`).
    pub answer: Value,
}

impl Call {
    /// Slack's `ok`.
    pub fn ok(&self) -> bool {
        self.answer["ok"] == true
    }

    /// Slack's error code, when not ok.
    pub fn error(&self) -> Option<&str> {
        self.answer["error"].as_str()
    }
}

/// What Slack would make of a message's `text` and `mrkdwn` texts (§6).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Markup {
    /// Every `<…>` control sequence, as written.
    pub tokens: Vec<String>,
    /// The sequences that notify or name someone: `<!channel>`, `<!here>`, `<!everyone>`,
    /// `<!subteam^…>`, `<@U…>`.
    pub mentions: Vec<String>,
    /// `&` characters that do not start `&amp;`, `&lt;` or `&gt;`.
    pub bare_ampersands: usize,
}

/// A message as the fake keeps it.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its `ts`.
    pub ts: String,
    /// The parent's `ts` for a thread reply.
    pub thread_ts: Option<String>,
    /// Also shown in the channel (a broadcast reply).
    pub reply_broadcast: bool,
    /// `text`.
    pub text: String,
    /// `blocks` (`Null` when none).
    pub blocks: Value,
    /// What the markup in `text` and every mrkdwn text object means.
    pub markup: Markup,
}

/// A conversation as the fake keeps it.
#[derive(Debug, Clone)]
pub struct Channel {
    /// `C…` ID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Private channel.
    pub is_private: bool,
    /// Archived.
    pub is_archived: bool,
    /// Topic text.
    pub topic: String,
    /// Member user IDs (the bot included when it created the channel or was added).
    pub members: Vec<String>,
    /// When it was created, Unix seconds ([`FakeSlack::set_clock`]).
    pub created: u64,
    /// Messages, oldest first.
    pub messages: Vec<Message>,
}

impl Channel {
    fn new(id: &str, name: &str, members: Vec<String>, created: u64) -> Channel {
        Channel {
            id: id.into(),
            name: name.into(),
            is_private: false,
            is_archived: false,
            topic: String::new(),
            members,
            created,
            messages: Vec::new(),
        }
    }

    fn object(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "is_channel": !self.is_private, "is_group": false,
            "is_private": self.is_private, "is_archived": self.is_archived,
            "is_member": self.members.iter().any(|m| m == BOT_USER),
            "created": self.created, "creator": BOT_USER,
            "topic": {"value": self.topic, "creator": BOT_USER, "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        })
    }

    /// Root messages (not thread replies).
    pub fn roots(&self) -> Vec<&Message> {
        self.messages.iter().filter(|m| m.thread_ts.is_none()).collect()
    }

    /// Replies in the thread of `ts`.
    pub fn replies(&self, ts: &str) -> Vec<&Message> {
        self.messages.iter().filter(|m| m.thread_ts.as_deref() == Some(ts)).collect()
    }
}

struct Inner {
    token: String,
    scopes: Vec<String>,
    faults: VecDeque<(String, Fault)>,
    webhook_faults: VecDeque<Fault>,
    channels: Vec<Channel>,
    calls: Vec<Call>,
    violations: Vec<String>,
    next_channel: u32,
    next_ts: u64,
    /// Slack's clock, Unix seconds (`None`: the system clock).
    clock: Option<u64>,
}

/// The fake; stops when dropped.
pub struct FakeSlack {
    /// `http://127.0.0.1:PORT` (the server root).
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    _server: Server,
}

impl FakeSlack {
    /// Start the fake with `#general` and `#alerts`, every scope, accepting [`BOT_TOKEN`].
    pub fn start() -> FakeSlack {
        FakeSlack::start_on(0)
    }

    /// [`FakeSlack::start`] on a given loopback port (0: chosen by the OS), e.g. to bring Slack
    /// "back" on the port a handler found closed.
    pub fn start_on(port: u16) -> FakeSlack {
        let bot = vec![BOT_USER.to_string()];
        let month_ago = system_now().saturating_sub(30 * 86_400);
        let inner = Arc::new(Mutex::new(Inner {
            token: BOT_TOKEN.into(),
            scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
            faults: VecDeque::new(),
            webhook_faults: VecDeque::new(),
            channels: vec![Channel::new(GENERAL, "general", bot.clone(), month_ago), Channel::new(ALERTS, "alerts", bot, month_ago)],
            calls: Vec::new(),
            violations: Vec::new(),
            next_channel: 1,
            next_ts: 0,
            clock: None,
        }));
        let shared = Arc::clone(&inner);
        let server = Server::start_on(port, move |r| {
            let mut inner = shared.lock().unwrap();
            inner.answer(r)
        });
        FakeSlack { url: server.url.clone(), inner, _server: server }
    }

    /// The Web API base URL for `slack.api_url` / `--api-url`: `http://127.0.0.1:PORT/api`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url)
    }

    /// The incoming-webhook URL the fake serves.
    pub fn webhook_url(&self) -> String {
        format!("{}/services/{TEAM_ID}/B0HOOK0001/{WEBHOOK_SECRET}", self.url)
    }

    /// Set Slack's clock (Unix seconds), e.g. to the handler's `PAGERPIPE_NOW`: channels
    /// created from now on carry it as `created`.
    pub fn set_clock(&self, unix_secs: u64) {
        self.inner.lock().unwrap().clock = Some(unix_secs);
    }

    /// Grant only these scopes from now on.
    pub fn set_scopes(&self, scopes: &[&str]) {
        self.inner.lock().unwrap().scopes = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// Queue `faults` for the next requests to `method` (`*`: any method), in order.
    pub fn fail(&self, method: &str, faults: &[Fault]) {
        let mut inner = self.inner.lock().unwrap();
        inner.faults.extend(faults.iter().map(|f| (method.to_string(), f.clone())));
    }

    /// Drop the faults still queued for `method`: it answers as Slack again.
    pub fn heal(&self, method: &str) {
        self.inner.lock().unwrap().faults.retain(|(m, _)| m != method);
    }

    /// Queue `faults` for the next webhook posts.
    pub fn fail_webhook(&self, faults: &[Fault]) {
        self.inner.lock().unwrap().webhook_faults.extend(faults.iter().cloned());
    }

    /// Add an existing channel (e.g. one that holds a name the handler will want); the bot is
    /// a member when `bot_member`. Returns its ID.
    pub fn add_channel(&self, name: &str, bot_member: bool) -> String {
        let mut inner = self.inner.lock().unwrap();
        let id = inner.new_channel_id();
        let members = if bot_member { vec![BOT_USER.to_string()] } else { Vec::new() };
        let created = inner.now().saturating_sub(86_400);
        inner.channels.push(Channel::new(&id, name, members, created));
        id
    }

    /// [`FakeSlack::add_channel`] with its creation time (Unix seconds), e.g. a war room an
    /// attempt whose answer was lost has just made.
    pub fn add_channel_created(&self, name: &str, bot_member: bool, created: u64) -> String {
        let id = self.add_channel(name, bot_member);
        let mut inner = self.inner.lock().unwrap();
        if let Some(c) = inner.channels.iter_mut().find(|c| c.id == id) {
            c.created = created;
        }
        id
    }

    /// Archive a channel behind the handler's back (as a person would).
    pub fn archive(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(c) = inner.channels.iter_mut().find(|c| c.id == id) {
            c.is_archived = true;
        }
    }

    /// Remove the bot from a channel behind the handler's back (as a member would, "Remove
    /// app from channel"): its posts there answer `not_in_channel`.
    pub fn remove_bot(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(c) = inner.channels.iter_mut().find(|c| c.id == id) {
            c.members.retain(|m| m != BOT_USER);
        }
    }

    /// Delete a channel behind the handler's back (its ID becomes `channel_not_found`).
    pub fn delete(&self, id: &str) {
        self.inner.lock().unwrap().channels.retain(|c| c.id != id);
    }

    /// Every request answered, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// The requests to `method`, in arrival order.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// The channels as the fake holds them now (the two preset ones first).
    pub fn channels(&self) -> Vec<Channel> {
        self.inner.lock().unwrap().channels.clone()
    }

    /// The channels created through `conversations.create`.
    pub fn created(&self) -> Vec<Channel> {
        let created: Vec<String> = self
            .calls_to("conversations.create")
            .iter()
            .filter(|c| c.ok())
            .filter_map(|c| c.answer["channel"]["id"].as_str().map(str::to_string))
            .collect();
        self.channels().into_iter().filter(|c| created.contains(&c.id)).collect()
    }

    /// The channel with this ID.
    pub fn channel(&self, id: &str) -> Channel {
        self.channels().into_iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no channel {id}"))
    }

    /// The webhook posts accepted, in order (their JSON bodies), with their markup.
    pub fn webhook_posts(&self) -> Vec<(Value, Markup)> {
        self.calls_to("webhook").into_iter().filter(|c| c.status == 200).map(|c| (c.args.clone(), markup_of(&c.args))).collect()
    }

    /// Contract violations seen.
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().unwrap().violations.clone()
    }

    /// Panic if any request broke the contract.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "requests broke the Slack contract: {v:#?}");
    }
}

/// Arguments each method takes, the required ones, and the scope it needs (any of `scopes`).
struct MethodSpec {
    args: &'static [&'static str],
    required: &'static [&'static str],
    scopes: &'static [&'static str],
    get: bool,
}

fn method_spec(method: &str) -> Option<MethodSpec> {
    let m = |args, required, scopes| Some(MethodSpec { args, required, scopes, get: false });
    match method {
        "auth.test" => m(&[], &[], &[]),
        "conversations.create" => m(&["name", "is_private", "team_id"], &["name"], &["channels:manage", "groups:write"]),
        "conversations.setTopic" => {
            m(&["channel", "topic"], &["channel", "topic"], &["channels:write.topic", "channels:manage", "groups:write"])
        }
        "conversations.invite" => {
            m(&["channel", "users", "force"], &["channel", "users"], &["channels:write.invites", "channels:manage", "groups:write"])
        }
        "conversations.archive" | "conversations.unarchive" => m(&["channel"], &["channel"], &["channels:manage", "groups:write"]),
        "chat.postMessage" => m(
            &["channel", "text", "blocks", "attachments", "thread_ts", "reply_broadcast", "unfurl_links", "unfurl_media", "mrkdwn"],
            &["channel"],
            &["chat:write"],
        ),
        "conversations.list" => Some(MethodSpec {
            args: &["types", "exclude_archived", "limit", "cursor", "team_id"],
            required: &[],
            scopes: &["channels:read", "groups:read"],
            get: true,
        }),
        "conversations.info" => Some(MethodSpec {
            args: &["channel", "include_num_members", "include_locale"],
            required: &["channel"],
            scopes: &["channels:read", "groups:read"],
            get: true,
        }),
        _ => None,
    }
}

/// The scope Slack names as `needed` for a method (the first of its list).
fn needed(spec: &MethodSpec) -> &'static str {
    spec.scopes.first().copied().unwrap_or("")
}

/// `answer` as JSON text with every character outside ASCII written as `\uXXXX` (UTF-16
/// units), as the Web API's answers may come: a message of non-Latin text or emoji echoed back
/// in `chat.postMessage`'s answer takes six to twelve bytes a character.
fn ascii_json(answer: &Value) -> String {
    let mut out = String::new();
    for c in answer.to_string().chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn ok(mut fields: Value) -> Value {
    fields["ok"] = Value::Bool(true);
    fields
}

fn error(code: &str) -> Value {
    json!({"ok": false, "error": code})
}

fn error_with(code: &str, messages: &[String]) -> Value {
    json!({"ok": false, "error": code, "response_metadata": {"messages": messages}})
}

/// Slack's channel-name rules (§5.1): `None` when valid, else the error code.
pub fn name_error(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("invalid_name_required")
    } else if name.chars().count() > 80 {
        Some("invalid_name_maxlength")
    } else if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
        Some("invalid_name_specials")
    } else if name.bytes().all(|b| b == b'-' || b == b'_') {
        Some("invalid_name_punctuation")
    } else {
        None
    }
}

/// What Slack would make of one text with mrkdwn parsing (§6).
pub fn analyse(text: &str, into: &mut Markup) {
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else { break };
        let token = format!("<{}>", &after[..end]);
        let inner = &after[..end];
        let target = inner.split('|').next().unwrap_or("");
        let special = ["!channel", "!here", "!everyone"].contains(&target)
            || target.starts_with("!subteam^")
            || (target.starts_with('@') && target.len() > 1);
        if special {
            into.mentions.push(token.clone());
        }
        into.tokens.push(token);
        rest = &after[end + 1..];
    }
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        let tail = &rest[i..];
        if !(tail.starts_with("&amp;") || tail.starts_with("&lt;") || tail.starts_with("&gt;")) {
            into.bare_ampersands += 1;
        }
        rest = &rest[i + 1..];
    }
}

/// The markup of a message body: its `text` (unless `mrkdwn` is false) and every mrkdwn text
/// object in its blocks.
pub fn markup_of(args: &Value) -> Markup {
    let mut m = Markup::default();
    if args["mrkdwn"] != false
        && let Some(t) = args["text"].as_str()
    {
        analyse(t, &mut m);
    }
    fn walk(v: &Value, m: &mut Markup) {
        match v {
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("mrkdwn")
                    && let Some(t) = o.get("text").and_then(Value::as_str)
                {
                    analyse(t, m);
                }
                o.values().for_each(|v| walk(v, m));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, m)),
            _ => {}
        }
    }
    walk(&args["blocks"], &mut m);
    m
}

/// Block Kit limits (§6): every problem as `[ERROR] … [json-pointer:…]`.
pub fn block_errors(blocks: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let mut err = |what: String, at: String| errors.push(format!("[ERROR] {what} [json-pointer:{at}]"));
    let Some(list) = blocks.as_array() else {
        err("must be an array".into(), "/blocks".into());
        return errors;
    };
    if list.len() > 50 {
        err(format!("no more than 50 items allowed, got {}", list.len()), "/blocks".into());
    }
    let mut ids = Vec::new();
    let text_object = |t: &Value, at: String, max: usize, only_plain: bool, err: &mut dyn FnMut(String, String)| {
        let kind = t["type"].as_str().unwrap_or("");
        if !["plain_text", "mrkdwn"].contains(&kind) || (only_plain && kind != "plain_text") {
            err(format!("must be a {} text object", if only_plain { "plain_text" } else { "plain_text or mrkdwn" }), format!("{at}/type"));
        }
        match t["text"].as_str() {
            None => err("missing required field: text".into(), format!("{at}/text")),
            Some("") => err("must be more than 0 characters".into(), format!("{at}/text")),
            Some(s) if s.chars().count() > max => err(format!("must be less than {} characters", max + 1), format!("{at}/text")),
            _ => {}
        }
        if t.get("emoji").is_some() && kind != "plain_text" {
            err("emoji is only allowed on plain_text".into(), format!("{at}/emoji"));
        }
        if t.get("verbatim").is_some() && kind != "mrkdwn" {
            err("verbatim is only allowed on mrkdwn".into(), format!("{at}/verbatim"));
        }
    };
    for (i, b) in list.iter().enumerate() {
        let at = format!("/blocks/{i}");
        if let Some(id) = b.get("block_id") {
            match id.as_str() {
                Some(s) if s.chars().count() <= 255 && !ids.contains(&s.to_string()) => ids.push(s.to_string()),
                _ => err("block_id must be unique and at most 255 characters".into(), format!("{at}/block_id")),
            }
        }
        match b["type"].as_str().unwrap_or("") {
            "header" => text_object(&b["text"], format!("{at}/text"), 150, true, &mut err),
            "section" => {
                let has_text = b.get("text").is_some();
                if has_text {
                    text_object(&b["text"], format!("{at}/text"), 3000, false, &mut err);
                }
                match b.get("fields").map(|f| f.as_array()) {
                    Some(Some(fields)) => {
                        if fields.len() > 10 {
                            err(format!("no more than 10 items allowed, got {}", fields.len()), format!("{at}/fields"));
                        }
                        for (j, f) in fields.iter().enumerate() {
                            text_object(f, format!("{at}/fields/{j}"), 2000, false, &mut err);
                        }
                    }
                    Some(None) => err("must be an array".into(), format!("{at}/fields")),
                    None if !has_text => err("must provide either text or fields".into(), at.clone()),
                    None => {}
                }
            }
            "context" => match b["elements"].as_array() {
                Some(elements) if !elements.is_empty() && elements.len() <= 10 => {
                    for (j, e) in elements.iter().enumerate() {
                        if e["type"] != "image" {
                            text_object(e, format!("{at}/elements/{j}"), 3000, false, &mut err);
                        }
                    }
                }
                _ => err("must hold 1 to 10 elements".into(), format!("{at}/elements")),
            },
            "divider" => {}
            "actions" => match b["elements"].as_array() {
                Some(elements) if !elements.is_empty() && elements.len() <= 25 => {
                    for (j, e) in elements.iter().enumerate() {
                        if e["type"] == "button" {
                            text_object(&e["text"], format!("{at}/elements/{j}/text"), 75, true, &mut err);
                            if e["url"].as_str().is_some_and(|u| u.chars().count() > 3000) {
                                err("must be less than 3001 characters".into(), format!("{at}/elements/{j}/url"));
                            }
                        }
                    }
                }
                _ => err("must hold 1 to 25 elements".into(), format!("{at}/elements")),
            },
            other => err(format!("unknown block type {other:?}"), format!("{at}/type")),
        }
    }
    errors
}

/// Total characters of text in a message's blocks (for `msg_blocks_too_long`).
fn block_text_chars(v: &Value) -> usize {
    match v {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| if k == "text" && v.is_string() { v.as_str().map_or(0, |s| s.chars().count()) } else { block_text_chars(v) })
            .sum(),
        Value::Array(a) => a.iter().map(block_text_chars).sum(),
        _ => 0,
    }
}

fn system_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Inner {
    fn now(&self) -> u64 {
        self.clock.unwrap_or_else(system_now)
    }

    fn new_channel_id(&mut self) -> String {
        let id = format!("C1{:08}", self.next_channel);
        self.next_channel += 1;
        id
    }

    fn new_ts(&mut self) -> String {
        self.next_ts += 1;
        format!("1764590400.{:06}", self.next_ts)
    }

    fn violation(&mut self, method: &str, why: impl Into<String>) {
        self.violations.push(format!("{method}: {}", why.into()));
    }

    fn record(&mut self, method: &str, args: Value, status: u16, answer: &Value) {
        self.calls.push(Call { method: method.into(), args, status, answer: answer.clone() });
    }

    /// Find a channel by ID (or by name, as chat.postMessage also allows).
    fn find(&mut self, id_or_name: &str) -> Option<&mut Channel> {
        let name = id_or_name.trim_start_matches('#');
        self.channels.iter_mut().find(|c| c.id == id_or_name || c.name == name)
    }

    fn next_fault(&mut self, method: &str) -> Option<Fault> {
        let i = self.faults.iter().position(|(m, _)| m == method || m == "*")?;
        self.faults.remove(i).map(|(_, f)| f)
    }

    fn answer(&mut self, r: &Received) -> Reply {
        let path = r.url.split('?').next().unwrap_or("");
        if path.starts_with("/services/") {
            return self.webhook(r, path);
        }
        let Some(method) = path.strip_prefix("/api/") else {
            self.violation(path, format!("unexpected {} {}", r.method, r.url));
            return Reply::Json(404, error("unknown_method"));
        };
        let method = method.to_string();
        let slow = match self.faults.iter().position(|(m, _)| m == &method || m == "*") {
            Some(i) if matches!(self.faults[i].1, Fault::Slow(_)) => self.faults.remove(i).map(|(_, f)| f),
            _ => None,
        };
        let reply = match self.web_api(&method, r, slow.is_some()) {
            Ok(answer) => Reply::Raw(200, "application/json; charset=utf-8", Vec::new(), ascii_json(&answer)),
            Err(reply) => reply,
        };
        match slow {
            Some(Fault::Slow(ms)) => Reply::Late(std::time::Duration::from_millis(ms), Box::new(reply)),
            _ => reply,
        }
    }

    /// A Web API call: `Ok(answer)` for HTTP 200 (ok or not), `Err(reply)` for other statuses.
    /// `fault_taken`: this request's scripted fault was taken already (a slow answer), so it
    /// takes no other.
    fn web_api(&mut self, method: &str, r: &Received, fault_taken: bool) -> Result<Value, Reply> {
        let Some(spec) = method_spec(method) else {
            self.violation(method, "unknown method");
            let answer = error("unknown_method");
            self.record(method, Value::Null, 404, &answer);
            return Err(Reply::Json(404, answer));
        };
        // Arguments: from the query string (GET) or the body.
        let query = r.url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut args = Map::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if k == "token" {
                self.violation(method, "token in the query string (Slack refuses it for new apps; use the header)");
            }
            args.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        let mut json_body = false;
        if r.method == "POST" {
            if spec.get {
                self.violation(method, "POST to a method documented as GET");
            }
            let ctype = r.header("content-type").unwrap_or("");
            let (mime, params) = ctype.split_once(';').map_or((ctype, ""), |(m, p)| (m.trim(), p.trim()));
            match mime {
                "" if !r.body.is_empty() => {
                    self.violation(method, "POST body without Content-Type");
                    return Ok(self.done(method, Value::Null, error("missing_post_type")));
                }
                "application/json" => {
                    json_body = true;
                    if !params.eq_ignore_ascii_case("charset=utf-8") {
                        self.violation(method, format!("JSON without charset=utf-8 ({ctype:?}): warning missing_charset"));
                    }
                    match serde_json::from_slice::<Value>(&r.body) {
                        Ok(Value::Object(o)) => {
                            if o.contains_key("token") {
                                self.violation(method, "token inside a JSON body (Slack does not read it there)");
                            }
                            args.extend(o);
                        }
                        Ok(_) => return Ok(self.done(method, Value::Null, error("json_not_object"))),
                        Err(_) => {
                            self.violation(method, "unparseable JSON");
                            return Ok(self.done(method, Value::Null, error("invalid_json")));
                        }
                    }
                }
                "application/x-www-form-urlencoded" => {
                    if !params.is_empty() {
                        self.violation(method, format!("form body with {params:?}: warning superfluous_charset"));
                    }
                    for (k, v) in form_urlencoded::parse(&r.body) {
                        args.insert(k.into_owned(), Value::String(v.into_owned()));
                    }
                }
                "" => {}
                other => {
                    self.violation(method, format!("Content-Type {other:?}"));
                    return Ok(self.done(method, Value::Null, error("invalid_post_type")));
                }
            }
        } else if !spec.get && r.method != "GET" {
            self.violation(method, format!("HTTP {}", r.method));
        }
        // Authentication: the header only.
        let form_token = args.remove("token").and_then(|t| t.as_str().map(str::to_string));
        let token = match r.header("authorization") {
            Some(h) => h.strip_prefix("Bearer ").map(str::to_string),
            None => {
                self.violation(method, "no Authorization header");
                form_token.filter(|_| !json_body)
            }
        };
        let args = Value::Object(args);
        match token {
            None => return Ok(self.done(method, args, error("not_authed"))),
            Some(t) if t != self.token => return Ok(self.done(method, args, error("invalid_auth"))),
            Some(_) => {}
        }
        // Scripted faults come after authentication (Slack's front end rate-limits known apps).
        if let Some(fault) = if fault_taken { None } else { self.next_fault(method) } {
            return match fault {
                Fault::RateLimited(secs) => {
                    let answer = error("ratelimited");
                    self.record(method, args, 429, &answer);
                    Err(Reply::Raw(429, "application/json", vec![("Retry-After", secs.to_string())], answer.to_string()))
                }
                Fault::ServerError => {
                    self.record(method, args, 500, &Value::Null);
                    Err(Reply::Raw(500, "text/html", Vec::new(), "<html><body>Internal Server Error</body></html>".into()))
                }
                Fault::Error(code) => Ok(self.done(method, args, error(code))),
                Fault::Hang => {
                    self.record(method, args, 0, &Value::Null);
                    Err(Reply::Hang)
                }
                Fault::Lost => {
                    let answer = self.perform(method, &args);
                    self.record(method, args, 0, &answer);
                    Err(Reply::Hang)
                }
                // Recorded with Slack's own answer (what was done), as a lost one is.
                Fault::Garbled(body) => {
                    let answer = self.perform(method, &args);
                    self.record(method, args, 200, &answer);
                    Err(Reply::Raw(200, "text/html", Vec::new(), body.into()))
                }
                Fault::Without(field) => {
                    let answer = self.perform(method, &args);
                    self.record(method, args, 200, &answer);
                    let mut sent = answer;
                    if let Some(o) = sent.as_object_mut() {
                        o.remove(field);
                    }
                    Ok(sent)
                }
                // Taken in `answer` before the request is judged.
                Fault::Slow(_) => unreachable!("a slow answer is not a fault of its own"),
            };
        }
        if !spec.scopes.is_empty() && !spec.scopes.iter().any(|s| self.scopes.iter().any(|g| g == s)) {
            let answer = json!({"ok": false, "error": "missing_scope", "needed": needed(&spec), "provided": self.scopes.join(",")});
            return Ok(self.done(method, args, answer));
        }
        // conversations.create (§5.1): `channels:manage` makes public channels, `groups:write`
        // private ones; neither stands in for the other.
        if method == "conversations.create" {
            let private = args["is_private"] == true || args["is_private"] == "true" || args["is_private"] == "1";
            let scope = if private { "groups:write" } else { "channels:manage" };
            if !self.scopes.iter().any(|g| g == scope) {
                let answer = json!({"ok": false, "error": "missing_scope", "needed": scope, "provided": self.scopes.join(",")});
                return Ok(self.done(method, args, answer));
            }
        }
        // conversations.list: each type asked for needs its own scope (§5.8: `channels:read`,
        // plus `groups:read` for private channels).
        if method == "conversations.list" {
            let types = args["types"].as_str().unwrap_or("public_channel");
            for (kind, scope) in [("public_channel", "channels:read"), ("private_channel", "groups:read")] {
                if types.split(',').any(|t| t == kind) && !self.scopes.iter().any(|g| g == scope) {
                    let answer = json!({"ok": false, "error": "missing_scope", "needed": scope, "provided": self.scopes.join(",")});
                    return Ok(self.done(method, args, answer));
                }
            }
        }
        // Argument checks.
        let mut problems = Vec::new();
        for k in args.as_object().into_iter().flat_map(|o| o.keys()) {
            if !spec.args.contains(&k.as_str()) {
                problems.push(format!("unexpected argument {k:?}"));
            }
        }
        let missing: Vec<&str> = spec.required.iter().copied().filter(|k| args.get(*k).is_none_or(Value::is_null)).collect();
        if !missing.is_empty() {
            let messages: Vec<String> = missing.iter().map(|k| format!("[ERROR] missing required field: {k}")).collect();
            self.violation(method, messages.join("; "));
            return Ok(self.done(method, args, error_with("invalid_arguments", &messages)));
        }
        for k in ["is_private", "reply_broadcast", "force", "unfurl_links", "unfurl_media", "mrkdwn", "exclude_archived"] {
            if let Some(v) = args.get(k)
                && !(v.is_boolean() || (!json_body && (v == "true" || v == "false" || v == "1" || v == "0")))
            {
                problems.push(format!("{k} must be a boolean, got {v}"));
            }
        }
        for k in ["name", "channel", "topic", "users", "text", "thread_ts"] {
            if let Some(v) = args.get(k)
                && !v.is_string()
            {
                problems.push(format!("{k} must be a string, got {v}"));
            }
        }
        if !problems.is_empty() {
            let messages: Vec<String> = problems.iter().map(|p| format!("[ERROR] {p}")).collect();
            self.violation(method, problems.join("; "));
            return Ok(self.done(method, args, error_with("invalid_arguments", &messages)));
        }
        let answer = self.perform(method, &args);
        Ok(self.done(method, args, answer))
    }

    fn done(&mut self, method: &str, args: Value, answer: Value) -> Value {
        self.record(method, args, 200, &answer);
        answer
    }

    /// The method itself, on valid, authorized arguments.
    fn perform(&mut self, method: &str, args: &Value) -> Value {
        let s = |k: &str| args[k].as_str().unwrap_or("").to_string();
        let truthy = |k: &str| args[k] == true || args[k] == "true" || args[k] == "1";
        match method {
            "auth.test" => ok(json!({
                "url": "https://fake-workspace.slack.com/", "team": "Fake Workspace", "user": "pagerpipe",
                "team_id": TEAM_ID, "user_id": BOT_USER, "bot_id": "B0BOT00001", "is_enterprise_install": false,
            })),
            "conversations.create" => {
                let name = s("name");
                if let Some(code) = name_error(&name) {
                    self.violation(method, format!("name {name:?} breaks Slack's rules: {code}"));
                    return error(code);
                }
                if self.channels.iter().any(|c| c.name == name) {
                    return error("name_taken");
                }
                let id = self.new_channel_id();
                let mut c = Channel::new(&id, &name, vec![BOT_USER.to_string()], self.now());
                c.is_private = truthy("is_private");
                let object = c.object();
                self.channels.push(c);
                ok(json!({"channel": object}))
            }
            "conversations.setTopic" => {
                let topic = s("topic");
                let n = topic.chars().count();
                if n > 250 {
                    self.violation(method, format!("topic has {n} characters, over 250"));
                    return error("too_long");
                }
                match self.member_channel(&s("channel")) {
                    Err(code) => error(code),
                    Ok(c) => {
                        c.topic = topic;
                        let object = c.object();
                        ok(json!({"channel": object}))
                    }
                }
            }
            "conversations.invite" => {
                let users_arg = s("users");
                if users_arg.contains(' ') {
                    self.violation(method, format!("users {users_arg:?} holds spaces"));
                }
                let users: Vec<String> = users_arg.split(',').map(str::to_string).filter(|u| !u.is_empty()).collect();
                if users.is_empty() {
                    return error("no_user");
                }
                if users.len() > 100 {
                    self.violation(method, format!("{} users in one call, over 100", users.len()));
                    return error("too_many_users");
                }
                let force = truthy("force");
                let c = match self.member_channel(&s("channel")) {
                    Err(code) => return error(code),
                    Ok(c) => c,
                };
                let mut errors = Vec::new();
                for u in &users {
                    let code = if u == BOT_USER {
                        Some("cant_invite_self")
                    } else if !USERS.contains(&u.as_str()) {
                        Some("user_not_found")
                    } else if c.members.contains(u) {
                        Some("already_in_channel")
                    } else {
                        c.members.push(u.clone());
                        None
                    };
                    if let Some(code) = code {
                        errors.push(json!({"user": u, "ok": false, "error": code}));
                    }
                }
                let object = c.object();
                match errors.first() {
                    None => ok(json!({"channel": object})),
                    Some(_) if force => ok(json!({"channel": object, "errors": errors})),
                    Some(first) => json!({"ok": false, "error": first["error"], "errors": errors}),
                }
            }
            "conversations.archive" => {
                let channel = s("channel");
                if channel == GENERAL {
                    return error("cant_archive_general");
                }
                match self.find(&channel) {
                    None => error("channel_not_found"),
                    Some(c) if c.is_archived => error("already_archived"),
                    Some(c) if !c.members.iter().any(|m| m == BOT_USER) => error("not_in_channel"),
                    Some(c) => {
                        c.is_archived = true;
                        ok(json!({}))
                    }
                }
            }
            "conversations.unarchive" => match self.find(&s("channel")) {
                None => error("channel_not_found"),
                Some(c) if !c.is_archived => error("not_archived"),
                Some(c) => {
                    c.is_archived = false;
                    ok(json!({}))
                }
            },
            "conversations.list" => self.list(args),
            "conversations.info" => match self.find(&s("channel")) {
                None => error("channel_not_found"),
                Some(c) => ok(json!({"channel": c.object()})),
            },
            "chat.postMessage" => self.post_message(args),
            _ => error("unknown_method"),
        }
    }

    /// `conversations.list` (§5.8): pages cut first, filters applied after (so a page may be
    /// short or empty while more follow); private channels only with the bot in them.
    fn list(&mut self, args: &Value) -> Value {
        let method = "conversations.list";
        let limit = match args["limit"].as_str().map(str::parse::<usize>).or(args["limit"].as_u64().map(|n| Ok(n as usize))) {
            None => 100,
            Some(Ok(n)) if (1..1000).contains(&n) => n,
            Some(_) => {
                self.violation(method, format!("limit {} is not an integer under 1000", args["limit"]));
                return error("invalid_limit");
            }
        };
        let types = args["types"].as_str().unwrap_or("public_channel");
        if !types.split(',').all(|t| ["public_channel", "private_channel", "mpim", "im"].contains(&t)) {
            self.violation(method, format!("types {types:?}"));
            return error("invalid_types");
        }
        let start = match args["cursor"].as_str() {
            None | Some("") => 0,
            Some(c) => match c.strip_prefix("next:").and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => n,
                None => return error("invalid_cursor"),
            },
        };
        let exclude_archived = args["exclude_archived"] == true || args["exclude_archived"] == "true";
        let end = (start + limit).min(self.channels.len());
        let page: Vec<Value> = self.channels[start.min(end)..end]
            .iter()
            .filter(|c| !(exclude_archived && c.is_archived))
            .filter(|c| {
                if c.is_private {
                    types.contains("private_channel") && c.members.iter().any(|m| m == BOT_USER)
                } else {
                    types.contains("public_channel")
                }
            })
            .map(Channel::object)
            .collect();
        let next = if end < self.channels.len() { format!("next:{end}") } else { String::new() };
        ok(json!({"channels": page, "response_metadata": {"next_cursor": next}}))
    }

    /// A channel the bot may act in: exists, not archived, the bot a member.
    fn member_channel(&mut self, id: &str) -> Result<&mut Channel, &'static str> {
        match self.find(id) {
            None => Err("channel_not_found"),
            Some(c) if c.is_archived => Err("is_archived"),
            Some(c) if !c.members.iter().any(|m| m == BOT_USER) => Err("not_in_channel"),
            Some(c) => Ok(c),
        }
    }

    fn post_message(&mut self, args: &Value) -> Value {
        let method = "chat.postMessage";
        let text = args["text"].as_str().map(str::to_string);
        let blocks = args.get("blocks").cloned().unwrap_or(Value::Null);
        let blocks = match blocks {
            // Form bodies carry blocks as a JSON string.
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            b => b,
        };
        if text.is_none() && blocks.is_null() && args.get("attachments").is_none() {
            self.violation(method, "neither text nor blocks");
            return error("no_text");
        }
        match &text {
            None => self.violation(method, "no `text` (always send it: notifications and screen readers show it)"),
            Some(t) if t.chars().count() > 4000 => {
                self.violation(method, format!("text has {} characters, over the 4,000 Slack recommends", t.chars().count()))
            }
            _ => {}
        }
        if !blocks.is_null() {
            let errors = block_errors(&blocks);
            if !errors.is_empty() {
                self.violation(method, errors.join("; "));
                return error_with("invalid_blocks", &errors);
            }
            let n = block_text_chars(&blocks);
            if n > 12_000 {
                self.violation(method, format!("{n} characters of block text"));
                return error("msg_blocks_too_long");
            }
        }
        let thread_ts = args["thread_ts"].as_str().map(str::to_string);
        let broadcast = args["reply_broadcast"] == true || args["reply_broadcast"] == "true";
        if broadcast && thread_ts.is_none() {
            self.violation(method, "reply_broadcast without thread_ts");
        }
        let markup = markup_of(args);
        let ts = self.new_ts();
        let channel = args["channel"].as_str().unwrap_or("").to_string();
        let c = match self.member_channel(&channel) {
            Err(code) => return error(code),
            Ok(c) => c,
        };
        let mut reply_to_reply = false;
        if let Some(parent) = &thread_ts {
            match c.messages.iter().find(|m| &m.ts == parent) {
                None => return error("thread_not_found"),
                Some(m) if m.thread_ts.is_some() => reply_to_reply = true,
                Some(_) => {}
            }
        }
        if reply_to_reply {
            self.violation(method, "thread_ts names a reply, not the thread's parent");
            return error("thread_not_found");
        }
        let Ok(c) = self.member_channel(&channel) else { return error("channel_not_found") };
        let id = c.id.clone();
        c.messages.push(Message {
            ts: ts.clone(),
            thread_ts: thread_ts.clone(),
            reply_broadcast: broadcast,
            text: text.clone().unwrap_or_default(),
            blocks: blocks.clone(),
            markup,
        });
        // Slack's answer echoes the message as posted, blocks included.
        let mut message = json!({"type": "message", "text": text, "user": BOT_USER, "bot_id": "B0BOT00001", "ts": ts});
        if !blocks.is_null() {
            message["blocks"] = blocks;
        }
        if let Some(t) = thread_ts {
            message["thread_ts"] = t.into();
        }
        ok(json!({"channel": id, "ts": ts, "message": message}))
    }

    /// An incoming-webhook post (§7).
    fn webhook(&mut self, r: &Received, path: &str) -> Reply {
        let method = "webhook";
        let text_reply = |status: u16, body: &str| Reply::Raw(status, "text/html", Vec::new(), body.to_string());
        let parts: Vec<&str> = path.trim_start_matches("/services/").split('/').collect();
        let args = serde_json::from_slice::<Value>(&r.body).unwrap_or(Value::Null);
        let answer = |inner: &mut Inner, status: u16, body: &str| {
            inner.record(method, args.clone(), status, &json!({"body": body}));
            text_reply(status, body)
        };
        if r.method != "POST" {
            self.violation(method, format!("HTTP {}", r.method));
            return answer(self, 400, "invalid_payload");
        }
        if parts.len() != 3 || parts[2] != WEBHOOK_SECRET {
            return answer(self, 404, "no_service");
        }
        if r.header("authorization").is_some() {
            self.violation(method, "an Authorization header on a webhook (the URL is the credential)");
        }
        if let Some(fault) = self.webhook_faults.pop_front() {
            return match fault {
                Fault::RateLimited(secs) => {
                    self.record(method, args, 429, &json!({"body": "rate_limited"}));
                    Reply::Raw(429, "text/html", vec![("Retry-After", secs.to_string())], "rate_limited".into())
                }
                Fault::ServerError => answer(self, 500, "rollup_error"),
                Fault::Error(code) => answer(self, 400, code),
                Fault::Hang => {
                    self.record(method, args, 0, &Value::Null);
                    Reply::Hang
                }
                // Posted, and the answer lost: counted as a post (status 200 recorded).
                Fault::Lost => {
                    self.record(method, args, 200, &json!({"body": "ok", "lost": true}));
                    Reply::Hang
                }
                Fault::Slow(ms) => Reply::Late(std::time::Duration::from_millis(ms), Box::new(answer(self, 200, "ok"))),
                // Posted, and answered with another body.
                Fault::Garbled(body) => {
                    self.record(method, args, 200, &json!({"body": body}));
                    text_reply(200, body)
                }
                // A webhook's answer has no fields to leave out.
                Fault::Without(_) => answer(self, 200, "ok"),
            };
        }
        if !r.header("content-type").is_some_and(|c| c.starts_with("application/json")) {
            self.violation(method, format!("Content-Type {:?}", r.header("content-type")));
            return answer(self, 400, "invalid_payload");
        }
        let Some(body) = args.as_object() else {
            self.violation(method, "body is not a JSON object");
            return answer(self, 400, "invalid_payload");
        };
        for k in body.keys() {
            if !["text", "blocks", "unfurl_links", "unfurl_media", "mrkdwn"].contains(&k.as_str()) {
                self.violation(method, format!("unexpected field {k:?} (not honoured by app webhooks)"));
            }
        }
        let text = body.get("text").and_then(Value::as_str).unwrap_or("");
        if text.is_empty() && body.get("blocks").is_none() {
            self.violation(method, "neither text nor blocks");
            return answer(self, 400, "no_text");
        }
        if text.chars().count() > 4000 {
            self.violation(method, format!("text has {} characters, over 4,000", text.chars().count()));
        }
        if let Some(blocks) = body.get("blocks") {
            let errors = block_errors(blocks);
            if !errors.is_empty() {
                self.violation(method, errors.join("; "));
                return answer(self, 400, "invalid_blocks");
            }
        }
        answer(self, 200, "ok")
    }
}

/// Group calls by method, for readable assertion messages.
pub fn summary(calls: &[Call]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in calls {
        *m.entry(c.method.clone()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod self_test {
    use super::*;

    fn post(fake: &FakeSlack, method: &str, token: Option<&str>, body: Value) -> Value {
        let mut req = ureq::post(&format!("{}/{method}", fake.api_url())).config().http_status_as_error(false).build();
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.send_json(&body).expect("fake answers");
        resp.body_mut().read_json().unwrap_or(Value::Null)
    }

    #[test]
    fn names_follow_slacks_rules() {
        assert_eq!(name_error("inc-20261201-web-01-check_disk"), None);
        assert_eq!(name_error(""), Some("invalid_name_required"));
        assert_eq!(name_error(&"a".repeat(81)), Some("invalid_name_maxlength"));
        assert_eq!(name_error(&"a".repeat(80)), None);
        assert_eq!(name_error("Web-01"), Some("invalid_name_specials"));
        assert_eq!(name_error("ディスク"), Some("invalid_name_specials"));
        assert_eq!(name_error("a b"), Some("invalid_name_specials"));
        assert_eq!(name_error("--_"), Some("invalid_name_punctuation"));
    }

    #[test]
    fn markup_analysis_finds_mentions_and_bare_ampersands() {
        let mut m = Markup::default();
        analyse("hi <!channel> and <@U123|bob> see <https://x|y> &amp; a & b &lt;!here&gt;", &mut m);
        assert_eq!(m.tokens, vec!["<!channel>", "<@U123|bob>", "<https://x|y>"]);
        assert_eq!(m.mentions, vec!["<!channel>", "<@U123|bob>"]);
        assert_eq!(m.bare_ampersands, 1);
    }

    #[test]
    fn block_limits() {
        assert!(block_errors(&json!([{"type": "header", "text": {"type": "plain_text", "text": "x"}}])).is_empty());
        assert!(!block_errors(&json!([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}])).is_empty());
        assert!(!block_errors(&json!([{"type": "header", "text": {"type": "plain_text", "text": "x".repeat(151)}}])).is_empty());
        assert!(!block_errors(&json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(3001)}}])).is_empty());
        assert!(block_errors(&json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(3000)}}])).is_empty());
        let fields: Vec<Value> = (0..11).map(|_| json!({"type": "mrkdwn", "text": "f"})).collect();
        assert!(!block_errors(&json!([{"type": "section", "fields": fields}])).is_empty());
        assert!(!block_errors(&json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x", "emoji": true}}])).is_empty());
        assert!(!block_errors(&json!([{"type": "fancy"}])).is_empty());
        let many: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
        assert!(!block_errors(&Value::Array(many)).is_empty());
    }

    #[test]
    fn a_war_room_as_the_spec_describes_it() {
        let fake = FakeSlack::start();
        assert_eq!(post(&fake, "auth.test", None, json!({}))["error"], "not_authed");
        assert_eq!(post(&fake, "auth.test", Some("xoxb-wrong"), json!({}))["error"], "invalid_auth");
        assert_eq!(post(&fake, "auth.test", Some(BOT_TOKEN), json!({}))["user_id"], BOT_USER);
        let created = post(&fake, "conversations.create", Some(BOT_TOKEN), json!({"name": "inc-web-01", "is_private": false}));
        let id = created["channel"]["id"].as_str().expect("id").to_string();
        assert_eq!(post(&fake, "conversations.create", Some(BOT_TOKEN), json!({"name": "inc-web-01"}))["error"], "name_taken");
        assert_eq!(post(&fake, "conversations.setTopic", Some(BOT_TOKEN), json!({"channel": id, "topic": "disk full"}))["ok"], true);
        let invited = post(
            &fake,
            "conversations.invite",
            Some(BOT_TOKEN),
            json!({"channel": id, "users": format!("{},U9NOBODY,{BOT_USER}", USERS[0])}),
        );
        assert_eq!(invited["error"], "user_not_found");
        assert_eq!(invited["errors"].as_array().map(Vec::len), Some(2));
        assert!(fake.channel(&id).members.contains(&USERS[0].to_string()), "ordinary members are invited despite ok:false");
        let root = post(&fake, "chat.postMessage", Some(BOT_TOKEN), json!({"channel": id, "text": "disk &lt;full&gt;"}));
        let ts = root["ts"].as_str().expect("ts").to_string();
        let reply = post(
            &fake,
            "chat.postMessage",
            Some(BOT_TOKEN),
            json!({"channel": id, "text": "still", "thread_ts": ts, "reply_broadcast": true}),
        );
        assert_eq!(reply["ok"], true);
        let nested = post(&fake, "chat.postMessage", Some(BOT_TOKEN), json!({"channel": id, "text": "x", "thread_ts": reply["ts"]}));
        assert_eq!(nested["error"], "thread_not_found");
        assert_eq!(post(&fake, "conversations.archive", Some(BOT_TOKEN), json!({"channel": id}))["ok"], true);
        assert_eq!(post(&fake, "conversations.archive", Some(BOT_TOKEN), json!({"channel": id}))["error"], "already_archived");
        assert_eq!(post(&fake, "chat.postMessage", Some(BOT_TOKEN), json!({"channel": id, "text": "x"}))["error"], "is_archived");
        let c = fake.channel(&id);
        assert_eq!((c.topic.as_str(), c.is_archived, c.roots().len(), c.replies(&ts).len()), ("disk full", true, 1, 1));
        // The unauthenticated call and the nested reply were the contract breaks.
        assert_eq!(fake.violations().len(), 2, "{:?}", fake.violations());
    }

    #[test]
    fn faults_scopes_and_contract_breaks() {
        let fake = FakeSlack::start();
        fake.fail("chat.postMessage", &[Fault::Error("internal_error")]);
        assert_eq!(post(&fake, "chat.postMessage", Some(BOT_TOKEN), json!({"channel": ALERTS, "text": "x"}))["error"], "internal_error");
        assert_eq!(post(&fake, "chat.postMessage", Some(BOT_TOKEN), json!({"channel": ALERTS, "text": "x"}))["ok"], true);
        fake.fail("*", &[Fault::RateLimited(1)]);
        let resp = ureq::post(&format!("{}/auth.test", fake.api_url()))
            .header("Authorization", &format!("Bearer {BOT_TOKEN}"))
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(json!({}))
            .expect("answer");
        assert_eq!((resp.status().as_u16(), resp.headers().get("retry-after").and_then(|v| v.to_str().ok())), (429, Some("1")));
        fake.set_scopes(&["chat:write"]);
        let denied = post(&fake, "conversations.create", Some(BOT_TOKEN), json!({"name": "x"}));
        assert_eq!((denied["error"].as_str(), denied["needed"].as_str()), (Some("missing_scope"), Some("channels:manage")));
        assert!(fake.violations().is_empty(), "{:?}", fake.violations());
        fake.set_scopes(&["channels:manage", "chat:write"]);
        let private = post(&fake, "conversations.create", Some(BOT_TOKEN), json!({"name": "inc-private", "is_private": true}));
        assert_eq!((private["error"].as_str(), private["needed"].as_str()), (Some("missing_scope"), Some("groups:write")));
        fake.set_scopes(&["groups:write", "chat:write"]);
        let public = post(&fake, "conversations.create", Some(BOT_TOKEN), json!({"name": "inc-public"}));
        assert_eq!((public["error"].as_str(), public["needed"].as_str()), (Some("missing_scope"), Some("channels:manage")));
        fake.set_scopes(&ALL_SCOPES);
        assert_eq!(post(&fake, "conversations.create", Some(BOT_TOKEN), json!({"name": "Bad Name"}))["error"], "invalid_name_specials");
        assert_eq!(post(&fake, "conversations.setTopic", Some(BOT_TOKEN), json!({"channel": ALERTS}))["error"], "invalid_arguments");
        assert_eq!(post(&fake, "chat.postMessage", Some(BOT_TOKEN), json!({"channel": ALERTS, "blocks": []}))["ok"], true);
        assert_eq!(
            post(&fake, "chat.postMessage", Some(BOT_TOKEN), json!({"channel": ALERTS, "text": "x", "colour": 1}))["error"],
            "invalid_arguments"
        );
        assert_eq!(fake.violations().len(), 4, "{:#?}", fake.violations());
    }

    #[test]
    fn list_pages_and_filters_as_slack_does() {
        let fake = FakeSlack::start();
        for i in 0..5 {
            fake.add_channel(&format!("c{i}"), i % 2 == 0);
        }
        fake.archive(GENERAL);
        let get = |query: &str| {
            let url = format!("{}/conversations.list?{query}", fake.api_url());
            let mut r = ureq::get(&url).header("Authorization", &format!("Bearer {BOT_TOKEN}")).call().expect("answer");
            r.body_mut().read_json::<Value>().expect("JSON")
        };
        let first = get("limit=3&exclude_archived=true&types=public_channel,private_channel");
        // Cut first, filtered after: 3 channels, #general archived and left out.
        assert_eq!(first["channels"].as_array().map(Vec::len), Some(2));
        let cursor = first["response_metadata"]["next_cursor"].as_str().expect("cursor").to_string();
        let second = get(&format!("limit=3&exclude_archived=true&cursor={cursor}"));
        assert_eq!(second["channels"].as_array().map(Vec::len), Some(3));
        let cursor = second["response_metadata"]["next_cursor"].as_str().expect("cursor").to_string();
        let last = get(&format!("limit=3&exclude_archived=true&cursor={cursor}"));
        assert_eq!(last["channels"][0]["name"], "c4");
        assert_eq!(last["response_metadata"]["next_cursor"], "");
        assert_eq!(get("limit=1000")["error"], "invalid_limit");
        assert_eq!(fake.violations().len(), 1, "{:?}", fake.violations());
    }

    #[test]
    fn webhooks_answer_in_plain_text() {
        let fake = FakeSlack::start();
        let send = |url: &str, body: Value| {
            let mut r = ureq::post(url).config().http_status_as_error(false).build().send_json(body).expect("answer");
            (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
        };
        assert_eq!(send(&fake.webhook_url(), json!({"text": "Bob answered &lt;web-01&gt;"})), (200, "ok".to_string()));
        assert_eq!(send(&fake.webhook_url().replace(WEBHOOK_SECRET, "nope"), json!({"text": "x"})), (404, "no_service".to_string()));
        fake.fail_webhook(&[Fault::ServerError]);
        assert_eq!(send(&fake.webhook_url(), json!({"text": "x"})).0, 500);
        assert_eq!(send(&fake.webhook_url(), json!({})), (400, "no_text".to_string()));
        let posts = fake.webhook_posts();
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].1, Markup::default());
        assert_eq!(fake.violations().len(), 1);
    }
}
