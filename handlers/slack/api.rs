//! The Slack Web API as handler-slack uses it: the methods, the request shape, and what an
//! answer means.
//!
//! Contract: `../shared/specs/slack-web-api.md`. Every method is `POST {api_url}/{method}` with
//! a JSON body (`application/json; charset=utf-8`) and `Authorization: Bearer xoxb-…` (§1, §2:
//! the token never goes into the body or the URL). Slack answers HTTP 200 even for errors, with
//! `{"ok": false, "error": CODE}` (§3), so answers are classified by Slack's error code, not the
//! HTTP status ([`ErrorClass`], §5):
//!
//! - **retry**: HTTP 429 (`ratelimited`, honouring `Retry-After`), HTTP 5xx, `rate_limited`,
//!   `internal_error`, `fatal_error`, `service_unavailable`, `request_timeout`, … — retried
//!   inside the deadline, then spooled;
//! - **auth**: `invalid_auth`, `not_authed`, `missing_scope` (the `needed` scope is named),
//!   `token_revoked`, … — the token must be fixed: refused, exit 69 (spec §5: "perm"), with
//!   what to fix in the line; a spooled request answered so at `--flush` stays in the spool
//!   until the token is fixed (within `spool_max_age`);
//! - **done**: the wanted state already holds (`already_in_channel`, `cant_invite_self`,
//!   `already_archived`, `not_archived`);
//! - **permanent**: everything else, including codes not listed anywhere (exit 69, Slack's code
//!   in the line).
//!
//! A 2xx answer that is not Slack's envelope (a proxy's HTML page, `{}`: no `ok`), and a
//! `conversations.create` answered `ok` without the channel's id, are no refusal: Slack may
//! have acted on the request. They are retried as requests of unknown fate, then spooled (exit
//! 75); a create is looked up by name before it is sent again. A `chat.postMessage` answered
//! `ok` without its `ts` was posted: nothing is threaded under it ([`posted_ts`]).

use common::http::{Request, Response};
use common::outcome::{Fate, Outcome, Retry};
use common::template::truncate_chars;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Default `api_url`: methods are at `{api_url}/{method}`.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// The Web API methods handler-slack calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `auth.test` (§5.9): who the token is.
    AuthTest,
    /// `conversations.create` (§5.1).
    Create,
    /// `conversations.setTopic` (§5.2).
    SetTopic,
    /// `conversations.invite` (§5.4).
    Invite,
    /// `chat.postMessage` (§5.5).
    PostMessage,
    /// `conversations.archive` (§5.6).
    Archive,
    /// `conversations.list` (§5.8): finding a channel by name.
    List,
}

impl Method {
    /// Slack's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Method::AuthTest => "auth.test",
            Method::Create => "conversations.create",
            Method::SetTopic => "conversations.setTopic",
            Method::Invite => "conversations.invite",
            Method::PostMessage => "chat.postMessage",
            Method::Archive => "conversations.archive",
            Method::List => "conversations.list",
        }
    }
}

/// `refs` key of the channel ID (`C…`) in the incident record.
pub const CHANNEL_ID: &str = "channel_id";
/// `refs` key of the alert message's `ts` (the thread's parent).
pub const TS: &str = "ts";

/// One Web API call as handler-slack decides it: no URL and no token (they come from the
/// settings in force when it is sent, [`Call::request`]), and a channel or thread that may be
/// left to the incident's stored references, for a call queued behind one whose answer brings
/// them (the topic behind a spooled `conversations.create`, a reply behind a spooled alert).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Call {
    /// `auth.test`.
    AuthTest,
    /// `conversations.create` of `name`.
    Create {
        /// A valid channel name ([`crate::name`]).
        name: String,
        /// Private channel.
        is_private: bool,
        /// When the war room was first asked for, Unix seconds: a channel of this name created
        /// since then is this incident's, made by an attempt whose answer was lost
        /// ([`find_own`]).
        #[serde(default)]
        asked: u64,
    },
    /// `conversations.setTopic`.
    SetTopic {
        /// Channel ID; `None`: the stored `channel_id`.
        channel: Option<String>,
        /// ≤ 250 characters, escaped ([`crate::message::topic`]).
        topic: String,
    },
    /// `conversations.invite` with `force` (≤ [`MAX_INVITE`] users).
    Invite {
        /// Channel ID; `None`: the stored `channel_id`.
        channel: Option<String>,
        /// Member IDs.
        users: Vec<String>,
    },
    /// `chat.postMessage`.
    Post {
        /// Channel ID (or name); `None`: the stored `channel_id`.
        channel: Option<String>,
        /// Where in the channel.
        thread: Thread,
        /// `text`, `blocks`, `unfurl_*` ([`crate::message::body`]).
        message: Value,
    },
    /// `conversations.archive`.
    Archive {
        /// Channel ID; `None`: the stored `channel_id`.
        channel: Option<String>,
    },
}

/// Where a message goes in its channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Thread {
    /// A new message in the channel (an alert: its `ts` becomes the incident's thread).
    Root,
    /// A reply in the thread of this `ts`; `broadcast` also shows it in the channel.
    Reply {
        /// The parent's `ts`; `None`: the stored alert `ts`.
        ts: Option<String>,
        /// `reply_broadcast`.
        broadcast: bool,
    },
}

/// Largest `users` list in one `conversations.invite` (spec §5.4).
pub const MAX_INVITE: usize = 100;

impl Call {
    /// The method called.
    pub fn method(&self) -> Method {
        match self {
            Call::AuthTest => Method::AuthTest,
            Call::Create { .. } => Method::Create,
            Call::SetTopic { .. } => Method::SetTopic,
            Call::Invite { .. } => Method::Invite,
            Call::Post { .. } => Method::PostMessage,
            Call::Archive { .. } => Method::Archive,
        }
    }

    /// The JSON body, taking what the call leaves open from `refs` (`Err` says what is not
    /// known yet).
    pub fn body(&self, refs: &Map<String, Value>) -> Result<Value, String> {
        let stored = |k: &str, what: &str| {
            refs.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("the war room's {what} is not known yet (the request that brings it was not delivered)"))
        };
        let channel = |c: &Option<String>| match c {
            Some(c) => Ok(c.clone()),
            None => stored(CHANNEL_ID, "channel"),
        };
        Ok(match self {
            Call::AuthTest => json!({}),
            Call::Create { name, is_private, .. } => json!({"name": name, "is_private": is_private}),
            Call::SetTopic { channel: c, topic } => json!({"channel": channel(c)?, "topic": topic}),
            Call::Invite { channel: c, users } => json!({"channel": channel(c)?, "users": users.join(","), "force": true}),
            Call::Archive { channel: c } => json!({"channel": channel(c)?}),
            Call::Post { channel: c, thread, message } => {
                let mut body = message.clone();
                body["channel"] = channel(c)?.into();
                // A reply whose alert's ts is not known (the alert is spooled on another host
                // sharing the ledger, or was refused) goes into the war room itself: refused
                // for want of a thread, a recovery left its room without its RECOVERED.
                let ts = match thread {
                    Thread::Reply { ts: Some(ts), .. } => Some(ts.clone()),
                    Thread::Reply { ts: None, .. } => refs.get(TS).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string),
                    Thread::Root => None,
                };
                if let (Some(ts), Thread::Reply { broadcast, .. }) = (ts, thread) {
                    body["thread_ts"] = ts.into();
                    if *broadcast {
                        body["reply_broadcast"] = true.into();
                    }
                }
                body
            }
        })
    }

    /// The HTTP request under `api_url` and `token` (the settings in force), with what the call
    /// leaves open taken from `refs`.
    pub fn request(&self, api_url: &str, token: &str, refs: &Map<String, Value>) -> Result<Request, String> {
        Ok(request(api_url, token, self.method(), self.body(refs)?))
    }
}

/// Margin for the clocks of this host and Slack when telling whether a channel was created
/// since a war room was asked for, in seconds.
pub const CLOCK_MARGIN: u64 = 300;

/// Largest page of `conversations.list` asked for (the documented maximum is under 1000;
/// §5.8).
pub const LIST_LIMIT: u32 = 999;

/// `GET {api_url}/conversations.list` for the public channels, or with `private` the private
/// channels the bot is in, archived ones left out (§5.8: GET with a query string; JSON bodies
/// are not read by this method). One type only: each needs its own scope (`channels:read`,
/// `groups:read`), and the docs ask for `groups:read` only for private war rooms. `cursor`:
/// the previous page's `next_cursor`.
pub fn list_request(api_url: &str, token: &str, private: bool, cursor: Option<&str>) -> Request {
    let types = if private { "private_channel" } else { "public_channel" };
    let mut url = format!("{}/conversations.list?types={types}&exclude_archived=true&limit={LIST_LIMIT}", api_url.trim_end_matches('/'));
    if let Some(c) = cursor.filter(|c| !c.is_empty()) {
        url.push_str("&cursor=");
        url.push_str(&form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>());
    }
    let mut req = Request { method: common::http::Method::Get, url, headers: Vec::new(), body: common::http::Body::Empty };
    req.headers.push(("Authorization".into(), format!("Bearer {token}")));
    req
}

/// Whether `resp`, an answer to `conversations.list` that [`read`] turned into `e`, is Slack
/// refusing the lookup for good: Slack's own `{"ok": false, "error": CODE}` (not a page that
/// stands in for it, a proxy's `{}` or HTML) with a code that is not retryable (§5: the auth
/// codes, `missing_scope` naming the scope, and the perm ones such as `invalid_arguments`,
/// which asking again gets again). Not `invalid_cursor` (§5.8): a cursor Slack gave is refused
/// only when it went stale, and a lookup asked again starts without one.
pub fn refuses_lookup(resp: &Response, e: &SlackError) -> bool {
    let body: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    body["ok"] == false && body["error"].is_string() && e.class() != ErrorClass::Retry && e.code != "invalid_cursor"
}

/// In a `conversations.list` answer, the channel named `name` that the bot is a member of,
/// that was created since `asked` (less [`CLOCK_MARGIN`]) and whose topic is still empty:
/// `(id, name)`. Such a channel is the war room an earlier attempt created without its answer
/// arriving (without the channel's id it could not set the topic), not an older channel of the
/// same name (an earlier incident's war room of the same day), nor another incident's war
/// room in use: names fold case and punctuation (`web.01` and `web-01` share one), and a
/// monitored host chooses its own name, so a second host failing the same check minutes later
/// would otherwise move into the first one's room, post there and archive it on its recovery.
///
/// `incident`: the topic's words for the incident at hand (`entity/check`, escaped as the
/// topic writes it: [`crate::message::topic_names`]), when it is known (a live invocation): a
/// channel whose topic names it is also its own. An attempt killed after it had set the topic
/// (kill -9, the monitoring system's handler timeout) left such a room, and its alert not
/// posted or not recorded; taken for another's, the next event opened a second war room.
pub fn find_own(list: &Value, name: &str, asked: u64, incident: Option<&str>) -> Option<(String, String)> {
    list["channels"].as_array()?.iter().find_map(|c| {
        let created = c["created"].as_u64().unwrap_or(0);
        let topic = c["topic"]["value"].as_str().unwrap_or_default();
        let topic_ours = topic.is_empty() || incident.is_some_and(|i| crate::message::topic_names(topic, i));
        let ours = c["name"] == name && c["is_member"] == true && c["is_archived"] != true && created + CLOCK_MARGIN >= asked && topic_ours;
        ours.then(|| (c["id"].as_str().unwrap_or_default().to_string(), name.to_string())).filter(|(id, _)| !id.is_empty())
    })
}

/// The `next_cursor` of a paginated answer (`None` at the end).
pub fn next_cursor(list: &Value) -> Option<String> {
    list["response_metadata"]["next_cursor"].as_str().filter(|c| !c.is_empty()).map(str::to_string)
}

/// `POST {api_url}/{method}` with `body` as JSON and the bot token in the header.
pub fn request(api_url: &str, token: &str, method: Method, body: Value) -> Request {
    let mut req = Request::post_json(format!("{}/{}", api_url.trim_end_matches('/'), method.name()), body);
    req.headers.push(("Authorization".into(), format!("Bearer {token}")));
    req
}

/// How handler-slack treats one of Slack's error codes (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: retry inside the deadline, then spool.
    Retry,
    /// The token or its scopes must be fixed: refused live (exit 69), kept in the spool by a flush.
    Auth,
    /// The wanted state already holds.
    Done,
    /// Refused for good (exit 69).
    Permanent,
}

/// Slack's error code → [`ErrorClass`] (§5 "Common to every method", §5.1–§5.7). Unknown codes
/// are permanent (§3).
pub fn error_class(code: &str) -> ErrorClass {
    match code {
        c if common::slack::is_retry(c) => ErrorClass::Retry,
        "not_authed"
        | "invalid_auth"
        | "account_inactive"
        | "token_revoked"
        | "token_expired"
        | "missing_scope"
        | "not_allowed_token_type"
        | "no_permission"
        | "access_denied"
        | "ekm_access_denied"
        | "team_access_not_granted"
        | "two_factor_setup_required"
        | "enterprise_is_restricted" => ErrorClass::Auth,
        "already_in_channel" | "cant_invite_self" | "already_archived" | "not_archived" => ErrorClass::Done,
        _ => ErrorClass::Permanent,
    }
}

/// One failed answer, as Slack explained it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackError {
    /// The method called.
    pub method: &'static str,
    /// Slack's `error` code (or `HTTP 404` when the answer had none).
    pub code: String,
    /// `missing_scope`: the scope needed.
    pub needed: Option<String>,
    /// `missing_scope`: the scopes the token has.
    pub provided: Option<String>,
    /// `response_metadata.messages` (for the log; never parsed, §3).
    pub messages: Vec<String>,
    /// `conversations.invite`: the users not invited and why (`errors[]`, §5.4), without the
    /// "done" ones (`already_in_channel`, `cant_invite_self`).
    pub user_errors: Vec<(String, String)>,
}

impl SlackError {
    /// The class of the code.
    pub fn class(&self) -> ErrorClass {
        error_class(&self.code)
    }

    /// Whether the failure is the invited users', not the call's: per-user failures are listed
    /// (`errors[]`), and the call's code is not an auth one, or is one of theirs. "A failure
    /// names the first problem and lists each one" (§5.4): a responder the bot may not invite
    /// (`no_permission`, "perm for those users") makes the call answer `no_permission`, which
    /// is not the token refused; Slack invited the others.
    pub fn about_users(&self) -> bool {
        !self.user_errors.is_empty() && (self.class() != ErrorClass::Auth || self.user_errors.iter().any(|(_, code)| *code == self.code))
    }

    /// One line for the log and the exit message: the method, Slack's code, and what to do.
    pub fn explain(&self) -> String {
        let mut out = format!("{} answered {}", self.method, self.code);
        match self.code.as_str() {
            "missing_scope" => {
                let needed = self.needed.as_deref().unwrap_or("?");
                out.push_str(&format!(
                    ": the bot token needs the scope {needed} (it has: {}); add it under OAuth & Permissions and reinstall the app",
                    self.provided.as_deref().unwrap_or("?")
                ));
            }
            "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
                out.push_str(": set a valid bot token (xoxb-…) in slack.token or SLACK_BOT_TOKEN");
            }
            "not_in_channel" => out.push_str(": invite the bot to the channel (/invite @your-app)"),
            "channel_not_found" => out.push_str(": no such channel for this token (a private channel needs the bot in it)"),
            _ => {}
        }
        if !self.messages.is_empty() {
            out.push_str(&format!(" ({})", truncate_chars(&self.messages.join("; "), 300)));
        }
        out
    }
}

/// Read an answer: `Ok(body)` for `ok: true` (and for a "done" code, with the body as it is),
/// `Err` with Slack's explanation otherwise.
pub fn read(method: Method, resp: &Response) -> Result<Value, Box<SlackError>> {
    let body: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    if body["ok"] == true && (200..300).contains(&resp.status) {
        return Ok(body);
    }
    let code = match body["error"].as_str() {
        Some(c) => truncate_chars(c, 80),
        None if body.is_null() => format!("HTTP {} with an unreadable answer", resp.status),
        None => format!("HTTP {}", resp.status),
    };
    let err = SlackError {
        method: method.name(),
        needed: body["needed"].as_str().map(|s| truncate_chars(s, 200)),
        provided: body["provided"].as_str().map(|s| truncate_chars(s, 300)),
        messages: body["response_metadata"]["messages"]
            .as_array()
            .map(|m| m.iter().filter_map(Value::as_str).take(5).map(|s| truncate_chars(s, 200)).collect())
            .unwrap_or_default(),
        user_errors: invite_failures(resp).unwrap_or_default(),
        code,
    };
    if err.class() == ErrorClass::Done { Ok(body) } else { Err(Box::new(err)) }
}

/// Classification while the handler itself is delivering: HTTP 429 and 5xx, and the retry
/// codes, are retryable; so, with its fate unknown, is a 2xx answer that is not Slack's, and a
/// create answered without its channel's id; every other readable answer counts as delivered
/// here and is judged by [`read`] (so that auth errors and Slack's codes are reported, not
/// retried); other HTTP statuses are permanent.
pub fn classify_live(method: Method, resp: &Response) -> Outcome {
    match classify_status(method, resp) {
        Some(class) => class,
        None => Outcome::Delivered(()),
    }
}

/// Whether `resp` is Slack refusing the token the request was sent with: an error code of
/// [`ErrorClass::Auth`] (`invalid_auth`, `not_authed`, `token_revoked`, `missing_scope` …; Slack
/// answers them with HTTP 200: §3, §5), or an HTTP 401. Not an invite's per-user failure
/// named as the call's code ([`SlackError::about_users`]).
pub fn auth_refused(resp: &Response) -> bool {
    // The method only names the call in the error, which is not shown here; per-user failures
    // (`errors[]`) come only with an invite's answer.
    resp.status == 401 || read(Method::Invite, resp).is_err_and(|e| e.class() == ErrorClass::Auth && !e.about_users())
}

/// Classification of a spooled request delivered later (`--flush`): as [`classify_live`], but
/// decided here: ok and "done" answers are delivered (an invite whose only failures are per
/// user counts as delivered: Slack invited the others, §5.4); auth errors stay queued (the
/// entry waits for the token to be fixed, until `spool_max_age`); other codes are permanent.
pub fn classify_spooled(method: Method, resp: &Response) -> Outcome {
    if let Some(class) = classify_status(method, resp) {
        return class;
    }
    match read(method, resp) {
        Ok(_) => Outcome::Delivered(()),
        Err(e) if method == Method::Invite && e.about_users() => Outcome::Delivered(()),
        Err(e) => match e.class() {
            // The flush says the entry is kept, and why.
            ErrorClass::Auth => Outcome::Broken(e.explain()),
            ErrorClass::Retry => Outcome::Retry(Retry::not_sent(e.explain())),
            ErrorClass::Done | ErrorClass::Permanent => Outcome::Refused(e.explain()),
        },
    }
}

pub use common::slack::{RATE_LIMIT_BACKOFF, is_rate_limit};

/// The part of the classification decided by the HTTP status and the retry codes; `None` for a
/// readable answer to judge by its code. A rate limit waits `Retry-After`, or
/// [`RATE_LIMIT_BACKOFF`] without one (§4).
fn classify_status(method: Method, resp: &Response) -> Option<Outcome> {
    let body: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    let code = body["error"].as_str();
    let limited = resp.status == 429 || code.is_some_and(is_rate_limit);
    let after = if limited { Some(resp.retry_after.unwrap_or(RATE_LIMIT_BACKOFF)) } else { resp.retry_after };
    let retry = |reason: String| Some(Outcome::Retry(Retry { after, ..Retry::not_sent(reason) }));
    match resp.status {
        429 => retry(format!("{} answered HTTP 429 {}", method.name(), code.unwrap_or("ratelimited"))),
        500..=599 => retry(format!("{} answered HTTP {}", method.name(), resp.status)),
        200..=299 => match code {
            Some(c) if error_class(c) == ErrorClass::Retry => retry(format!("{} answered {c}", method.name())),
            // Not Slack's envelope (a proxy's or a gateway's page, `{}`): no refusal, and
            // nothing says whether Slack acted on the request. Its fate is unknown: a create
            // is looked up before it is sent again ([`find_own`]).
            _ if !body["ok"].is_boolean() && code.is_none() => Some(unknown(format!(
                "{} answered HTTP {} without Slack's answer ({})",
                method.name(),
                resp.status,
                if body.is_object() { "no \"ok\"" } else { "not JSON" }
            ))),
            // A channel made (maybe) whose id Slack did not give: nothing can go into it, and
            // it may exist. Looked up by name before it is created again.
            _ if method == Method::Create && body["ok"] == true && created_id(&body).is_none() => {
                Some(unknown("conversations.create answered ok without the channel's id".into()))
            }
            _ => None,
        },
        status => Some(Outcome::Refused(format!("{} answered HTTP {status} {}", method.name(), code.unwrap_or("")).trim_end().to_string())),
    }
}

/// A retry of a request Slack may have acted on: a 2xx answer that says nothing of what became
/// of it.
fn unknown(reason: String) -> Outcome {
    Outcome::Retry(Retry { reason, fate: Fate::Unknown, after: None })
}

/// The id of the channel a `conversations.create` answer gives (§5.1: `channel.id`), `None`
/// when it gives none.
pub fn created_id(body: &Value) -> Option<&str> {
    body["channel"]["id"].as_str().filter(|id| !id.is_empty())
}

/// The `ts` of the message a `chat.postMessage` answer gives (§5.5), `None` when it gives none:
/// the message was posted, but nothing can be threaded under it.
pub fn posted_ts(body: &Value) -> Option<&str> {
    body["ts"].as_str().filter(|ts| !ts.is_empty())
}

/// The per-user failures of an invite answer (`errors[]`, §5.4) that matter: `(user, code)`
/// for each user not invited for a reason other than being in the channel already or being
/// the bot itself. `None` when the answer has no per-user list.
pub fn invite_failures(resp: &Response) -> Option<Vec<(String, String)>> {
    let body: Value = serde_json::from_str(&resp.body).ok()?;
    let errors = body["errors"].as_array()?;
    Some(
        errors
            .iter()
            .filter_map(|e| {
                let code = e["error"].as_str()?;
                (error_class(code) != ErrorClass::Done)
                    .then(|| (truncate_chars(e["user"].as_str().unwrap_or("?"), 40), truncate_chars(code, 80)))
            })
            .collect(),
    )
}

/// The `auth.test` answer's useful part: `(team, user, user_id)`.
pub fn identity(body: &Value) -> (String, String, String) {
    let s = |k: &str| truncate_chars(body[k].as_str().unwrap_or("?"), 80);
    (s("team"), s("user"), s("user_id"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn r(status: u16, body: &str) -> Response {
        Response { status, body: body.into(), retry_after: None, location: None }
    }

    #[test]
    fn a_refused_token_is_told_by_its_code_not_its_status() {
        for code in ["invalid_auth", "token_revoked", "missing_scope", "not_authed"] {
            assert!(auth_refused(&r(200, &format!(r#"{{"ok":false,"error":"{code}"}}"#))), "{code}");
        }
        assert!(auth_refused(&r(401, "")));
        for (status, body) in [(200, r#"{"ok":true}"#), (200, r#"{"ok":false,"error":"not_in_channel"}"#), (429, ""), (500, "")] {
            assert!(!auth_refused(&r(status, body)), "{status} {body}");
        }
    }

    #[test]
    fn a_lookup_is_refused_for_good_only_by_slacks_own_lasting_answer() {
        let refused = |status, body: &str| {
            let resp = r(status, body);
            read(Method::List, &resp).is_err_and(|e| refuses_lookup(&resp, &e))
        };
        for code in ["missing_scope", "invalid_auth", "not_allowed_token_type", "invalid_arguments", "invalid_types"] {
            assert!(refused(200, &format!(r#"{{"ok":false,"error":"{code}"}}"#)), "{code}");
        }
        // Asked again, these may be answered: Slack busy, a stale cursor, a page that is not
        // Slack's (a proxy's), an answer that says nothing.
        for body in [
            r#"{"ok":false,"error":"internal_error"}"#,
            r#"{"ok":false,"error":"ratelimited"}"#,
            r#"{"ok":false,"error":"invalid_cursor"}"#,
            "<html>proxy</html>",
            "{}",
            r#"{"ok":false}"#,
        ] {
            assert!(!refused(200, body), "{body}");
        }
    }

    #[test]
    fn classes_follow_the_spec() {
        for code in ["ratelimited", "internal_error", "fatal_error", "service_unavailable"] {
            assert_eq!(error_class(code), ErrorClass::Retry, "{code}");
        }
        for code in ["invalid_auth", "not_authed", "missing_scope", "token_revoked"] {
            assert_eq!(error_class(code), ErrorClass::Auth, "{code}");
        }
        for code in ["already_in_channel", "cant_invite_self", "already_archived"] {
            assert_eq!(error_class(code), ErrorClass::Done, "{code}");
        }
        for code in ["channel_not_found", "is_archived", "name_taken", "invalid_blocks", "something_new"] {
            assert_eq!(error_class(code), ErrorClass::Permanent, "{code}");
        }
    }

    #[test]
    fn live_classification_retries_only_what_can_pass() {
        let m = Method::PostMessage;
        assert!(matches!(classify_live(m, &r(429, r#"{"ok":false,"error":"ratelimited"}"#)), Outcome::Retry(_)));
        assert!(matches!(classify_live(m, &r(503, "<html>down</html>")), Outcome::Retry(_)));
        assert!(matches!(classify_live(m, &r(200, r#"{"ok":false,"error":"internal_error"}"#)), Outcome::Retry(_)));
        assert_eq!(classify_live(m, &r(200, r#"{"ok":false,"error":"invalid_auth"}"#)), Outcome::Delivered(()));
        assert_eq!(classify_live(m, &r(200, r#"{"ok":true}"#)), Outcome::Delivered(()));
        assert!(
            matches!(classify_live(m, &r(404, r#"{"ok":false,"error":"unknown_method"}"#)), Outcome::Refused(s) if s.contains("unknown_method"))
        );
        // A 2xx answer that is not Slack's (a proxy's page, `{}`): Slack may have acted on it.
        for body in ["ok", "<html>proxy</html>", "{}", "[]", ""] {
            assert!(matches!(classify_live(m, &r(200, body)), Outcome::Retry(x) if x.fate == Fate::Unknown), "{body}");
            assert!(matches!(classify_spooled(m, &r(200, body)), Outcome::Retry(x) if x.fate == Fate::Unknown), "{body}");
        }
        // A create answered ok without the channel's id: the channel may exist.
        for body in [r#"{"ok":true}"#, r#"{"ok":true,"channel":{"name":"inc-a"}}"#, r#"{"ok":true,"channel":{"id":""}}"#] {
            assert!(matches!(classify_live(Method::Create, &r(200, body)), Outcome::Retry(x) if x.fate == Fate::Unknown), "{body}");
        }
        assert_eq!(classify_live(Method::Create, &r(200, r#"{"ok":true,"channel":{"id":"C1"}}"#)), Outcome::Delivered(()));
        // A post without its ts was posted all the same.
        assert_eq!(classify_live(m, &r(200, r#"{"ok":true,"channel":"C1"}"#)), Outcome::Delivered(()));
        // A rate limit without Retry-After waits at least a second (§4); with one, as asked.
        for body in [r#"{"ok":false,"error":"rate_limited"}"#, r#"{"ok":false,"error":"ratelimited"}"#] {
            assert!(matches!(classify_live(m, &r(200, body)), Outcome::Retry(x) if x.after == Some(RATE_LIMIT_BACKOFF)), "{body}");
        }
        assert!(matches!(classify_live(m, &r(429, "")), Outcome::Retry(x) if x.after == Some(RATE_LIMIT_BACKOFF)));
        let asked = Response { retry_after: Some(Duration::from_secs(3)), ..r(429, "") };
        assert!(matches!(classify_live(m, &asked), Outcome::Retry(x) if x.after == Some(Duration::from_secs(3))));
        assert!(matches!(classify_live(m, &r(200, r#"{"ok":false,"error":"internal_error"}"#)), Outcome::Retry(x) if x.after.is_none()));
    }

    #[test]
    fn read_explains_missing_scope_and_accepts_done_codes() {
        let e = read(
            Method::Invite,
            &r(200, r#"{"ok":false,"error":"missing_scope","needed":"channels:write.invites","provided":"chat:write"}"#),
        )
        .expect_err("an error");
        assert_eq!(e.class(), ErrorClass::Auth);
        assert!(e.explain().contains("needs the scope channels:write.invites (it has: chat:write)"), "{}", e.explain());
        assert!(read(Method::Archive, &r(200, r#"{"ok":false,"error":"already_archived"}"#)).is_ok());
        let e = read(
            Method::SetTopic,
            &r(
                200,
                r#"{"ok":false,"error":"invalid_arguments","response_metadata":{"messages":["[ERROR] missing required field: topic"]}}"#,
            ),
        )
        .expect_err("an error");
        assert_eq!(e.explain(), "conversations.setTopic answered invalid_arguments ([ERROR] missing required field: topic)");
    }

    #[test]
    fn spooled_classification_keeps_auth_failures_and_partial_invites() {
        assert!(matches!(classify_spooled(Method::Create, &r(200, r#"{"ok":false,"error":"invalid_auth"}"#)), Outcome::Broken(_)));
        assert!(matches!(classify_spooled(Method::Create, &r(200, r#"{"ok":false,"error":"name_taken"}"#)), Outcome::Refused(_)));
        let partial = r#"{"ok":false,"error":"user_not_found","errors":[{"user":"U9","ok":false,"error":"user_not_found"}]}"#;
        assert_eq!(classify_spooled(Method::Invite, &r(200, partial)), Outcome::Delivered(()));
        assert_eq!(invite_failures(&r(200, partial)), Some(vec![("U9".into(), "user_not_found".into())]));
        let fine = r#"{"ok":false,"error":"already_in_channel","errors":[{"user":"U1","ok":false,"error":"already_in_channel"}]}"#;
        assert_eq!(invite_failures(&r(200, fine)), Some(vec![]));
    }

    #[test]
    fn a_responder_the_bot_may_not_invite_is_not_the_token_refused() {
        // §5.4: `no_permission` is "perm for those users", and the call names its first problem.
        let partial = r(
            200,
            r#"{"ok":false,"error":"no_permission","errors":[{"user":"W1","ok":false,"error":"no_permission"},{"user":"U2","ok":false,"error":"already_in_channel"}]}"#,
        );
        assert_eq!(classify_spooled(Method::Invite, &partial), Outcome::Delivered(()), "the others were invited");
        assert!(!auth_refused(&partial), "the token is fine");
        let e = read(Method::Invite, &partial).expect_err("an error");
        assert!(e.about_users(), "{e:?}");
        // The token itself refused: kept at the flush, whatever else the answer lists.
        for body in [
            r#"{"ok":false,"error":"no_permission"}"#,
            r#"{"ok":false,"error":"invalid_auth","errors":[{"user":"U9","ok":false,"error":"user_not_found"}]}"#,
        ] {
            assert!(matches!(classify_spooled(Method::Invite, &r(200, body)), Outcome::Broken(_)), "{body}");
            assert!(auth_refused(&r(200, body)), "{body}");
        }
    }

    #[test]
    fn an_own_channel_is_one_created_since_it_was_asked_for() {
        let list = json!({"ok": true, "channels": [
            {"id": "C1", "name": "inc-a", "is_member": true, "created": 1000},
            {"id": "C2", "name": "inc-b", "is_member": false, "created": 5000},
            {"id": "C3", "name": "inc-c", "is_member": true, "created": 5000, "is_archived": true},
            {"id": "C4", "name": "inc-d", "is_member": true, "created": 4900},
            {"id": "C5", "name": "inc-e", "is_member": true, "created": 5000, "topic": {"value": "CRITICAL web-01/check_disk"}},
        ], "response_metadata": {"next_cursor": "dGVhbTpDMDYx"}});
        assert_eq!(find_own(&list, "inc-a", 5000, None), None, "an older channel of the same name");
        assert_eq!(find_own(&list, "inc-a", 1200, None), Some(("C1".into(), "inc-a".into())));
        assert_eq!(find_own(&list, "inc-b", 5000, None), None, "the bot is not in it");
        assert_eq!(find_own(&list, "inc-c", 5000, None), None, "archived");
        assert_eq!(find_own(&list, "inc-d", 5000, None), Some(("C4".into(), "inc-d".into())), "within the clock margin");
        assert_eq!(find_own(&list, "inc-e", 5000, None), None, "its topic is set: another incident's war room in use");
        assert_eq!(find_own(&list, "inc-e", 5000, Some("web.01/check_disk")), None, "another incident's topic");
        assert_eq!(
            find_own(&list, "inc-e", 5000, Some("web-01/check_disk")),
            Some(("C5".into(), "inc-e".into())),
            "its topic names this incident: a killed attempt set it"
        );
        assert_eq!(next_cursor(&list).as_deref(), Some("dGVhbTpDMDYx"));
        let req = list_request("http://x/api/", "xoxb-t", false, Some("a=b"));
        assert_eq!(req.url, "http://x/api/conversations.list?types=public_channel&exclude_archived=true&limit=999&cursor=a%3Db");
        let req = list_request("http://x/api/", "xoxb-t", true, None);
        assert_eq!(req.url, "http://x/api/conversations.list?types=private_channel&exclude_archived=true&limit=999");
        assert_eq!(req.method, common::http::Method::Get);
    }

    #[test]
    fn calls_take_what_they_leave_open_from_the_refs() {
        let mut refs = Map::new();
        let post = Call::Post { channel: None, thread: Thread::Reply { ts: None, broadcast: true }, message: json!({"text": "x"}) };
        assert!(post.body(&refs).expect_err("an error").contains("channel is not known yet"));
        refs.insert(CHANNEL_ID.into(), "C1".into());
        // The alert's ts not known: into the war room itself.
        assert_eq!(post.body(&refs).expect("ok"), json!({"text": "x", "channel": "C1"}));
        refs.insert(TS.into(), "5.1".into());
        assert_eq!(post.body(&refs).expect("ok"), json!({"text": "x", "channel": "C1", "thread_ts": "5.1", "reply_broadcast": true}));
        let invite = Call::Invite { channel: Some("C2".into()), users: vec!["U1".into(), "U2".into()] };
        assert_eq!(invite.body(&Map::new()).expect("ok"), json!({"channel": "C2", "users": "U1,U2", "force": true}));
        let req = invite.request("http://x/api/", "xoxb-t", &Map::new()).expect("ok");
        assert_eq!(req.url, "http://x/api/conversations.invite");
        assert_eq!(req.headers, vec![("Authorization".to_string(), "Bearer xoxb-t".to_string())]);
        let back: Call = serde_json::from_value(serde_json::to_value(&post).expect("ok")).expect("ok");
        assert_eq!(back, post);
    }
}
