//! A fake Reactio incident API v1 (`https://{organization}.reactio.jp/api/v1/…`).
//!
//! Implements the contract of `../shared/specs/reactio-api-v1.md` (Reactio's developer
//! documentation and the official Ruby client `gaiax/reactio-ruby-client`):
//!
//! - every call needs `X-Api-Key`; a wrong key → 401 `{"type":"authentication_error",
//!   "message":"invalid api key"}`; every call asks for JSON (`Accept: application/json`,
//!   recorded as a violation when it does not);
//! - `POST /api/v1/incidents`: `name` required; `status`, `detection`, `cause`, `point`,
//!   `scale` checked against their enums; `notification_call` a boolean; `topics` strings →
//!   201 with an incident object shaped like the client's `created_incident.yml` fixture;
//! - `POST /api/v1/notifications` `{incident_id, notification_text, notification_call}` → 201
//!   with a notification object (`notification.yml`); `notification_text` is required (the
//!   client's recorded `missing_field` error; a blank one counts as missing);
//! - `POST /api/v1/messages` `{incident_id, message}` → 201 `{}` (as the client's test stubs it;
//!   a blank `message` counts as missing);
//! - `POST /api/v1/incidents/{id}/status` `{"status": …}` (undocumented) → 201 incident;
//! - `GET /api/v1/incidents?from=&to=&status=&page=&per_page=` → 200, a JSON array of the
//!   incidents (filtered by `status`, and by `from`/`to` on `created_at`, when given), one page of them (`per_page`, default
//!   [`DEFAULT_PER_PAGE`]; unknown query parameters are violations);
//! - a bad body → 400 `{"errors":[{"field","code"}],"type":"validation_error",
//!   "message":"validation error"}`. The codes other than `missing_field` are not published;
//!   the fake says `invalid`.
//!
//! A request that breaks the contract (anything but a wrong key) is also recorded as a
//! violation, so a test fails even if the handler would have coped with the 400. Valid,
//! authorized requests get the scripted reply (201 by default).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::{Received, Reply, Server};

/// The API key the fake accepts (never a real one).
pub const API_KEY: &str = "reactio-test-key-0000000000000000beef";

/// The incident id the fake gives its first incident (then +1 each).
pub const FIRST_ID: u64 = 1001;

/// Creation time the fake puts in its answers (the client fixtures' `created_at`).
const CREATED_AT: u64 = 1430208000;

/// A scripted answer for one valid, authorized request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// 201 with the object created.
    Accept,
    /// 400 `validation_error` (`notification_text: missing_field`, the client's recorded one).
    Invalid,
    /// 500 `internal_server_error`.
    ServerError,
    /// Never answer.
    Hang,
    /// 201 with the object created at once, answered after this many milliseconds (a request
    /// in flight for a while: its sender is busy with the incident meanwhile).
    Late(u64),
}

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct Call {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path (and query), e.g. `/api/v1/incidents`.
    pub path: String,
    /// The JSON body (`Null` when it was not JSON).
    pub body: Value,
    /// The status answered (`0` for a hang).
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Script>,
    calls: Vec<Call>,
    violations: Vec<String>,
    /// Incidents created, by id order.
    incidents: Vec<Value>,
    /// Most incidents one page of `GET /api/v1/incidents` holds, whatever `per_page` asks
    /// ([`FakeReactio::serve_at_most`]; `None`: as many as asked).
    max_per_page: Option<usize>,
    /// How many more `GET /api/v1/incidents` are answered 500 `internal_server_error`
    /// ([`FakeReactio::fail_lists`]).
    failing_lists: usize,
    /// How many more `GET /api/v1/incidents` are answered 200 with [`Inner::garbled_body`]
    /// instead of a list ([`FakeReactio::garble_lists`]).
    garbled_lists: usize,
    /// The body of a garbled list answer.
    garbled_body: &'static str,
}

/// The fake; stops when dropped.
pub struct FakeReactio {
    /// Base URL to pass as `--api-url`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    _server: Server,
}

/// Why a request is refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// 401: no or wrong `X-Api-Key`; `true` when the header was missing (a contract break).
    Unauthorized(bool),
    /// 400 validation errors: `(field, code)`.
    Invalid(Vec<(String, String)>),
    /// Anything else that breaks the contract (wrong path, not JSON, unknown incident).
    Broken(String),
}

/// The 400 body Reactio sends for `errors`.
pub fn validation_error(errors: &[(String, String)]) -> Value {
    let errors: Vec<Value> = errors.iter().map(|(f, c)| json!({"field": f, "code": c})).collect();
    json!({"errors": errors, "type": "validation_error", "message": "validation error"})
}

/// Check one request against the contract; `known` tells whether an incident id exists.
/// `Ok` holds the parsed body.
pub fn check(r: &Received, key: &str, known: &dyn Fn(u64) -> bool) -> Result<Map<String, Value>, Refusal> {
    match r.header("x-api-key") {
        None => return Err(Refusal::Unauthorized(true)),
        Some(k) if k != key => return Err(Refusal::Unauthorized(false)),
        Some(_) => {}
    }
    if r.method != "POST" {
        return Err(Refusal::Broken(format!("unexpected {} {}", r.method, r.url)));
    }
    if !r.header("content-type").is_some_and(|c| c.starts_with("application/json")) {
        return Err(Refusal::Broken(format!("content-type is {:?}", r.header("content-type"))));
    }
    let body = match serde_json::from_slice::<Value>(&r.body) {
        Ok(Value::Object(b)) => b,
        Ok(other) => return Err(Refusal::Broken(format!("body is not a JSON object: {other}"))),
        Err(e) => return Err(Refusal::Broken(format!("body is not JSON: {e}"))),
    };
    let mut errors = Vec::new();
    let mut bad = |field: &str, code: &str| errors.push((field.to_string(), code.to_string()));
    let string = |k: &str| body.get(k).map(|v| v.as_str().is_some());
    let one_of = |k: &str, allowed: &[&str]| body.get(k).map(|v| v.as_str().is_some_and(|s| allowed.contains(&s)));
    let allowed_fields: &[&str];
    match r.url.as_str() {
        "/api/v1/incidents" => {
            allowed_fields = &[
                "name",
                "status",
                "detection",
                "cause",
                "cause_supplement",
                "point",
                "scale",
                "pend_text",
                "close_text",
                "topics",
                "notification_text",
                "notification_call",
                "message",
            ];
            match body.get("name").and_then(Value::as_str) {
                Some(n) if !n.trim().is_empty() => {}
                Some(_) => bad("name", "invalid"),
                None => bad("name", "missing_field"),
            }
            let enums: [(&str, &[&str]); 5] = [
                ("status", &["open", "pend", "close"]),
                ("detection", &["msp", "system", "client", "internal"]),
                ("cause", &["over-capacity", "bug", "operation-error", "external-factor", "degradation", "unknown"]),
                ("point", &["network", "shared-hardware", "hardware", "os", "middleware", "application"]),
                ("scale", &["cross", "whole", "point"]),
            ];
            for (k, allowed) in enums {
                if one_of(k, allowed) == Some(false) {
                    bad(k, "invalid");
                }
            }
            for k in ["cause_supplement", "pend_text", "close_text", "notification_text", "message"] {
                if string(k) == Some(false) {
                    bad(k, "invalid");
                }
            }
            if body.get("topics").is_some_and(|t| !t.as_array().is_some_and(|a| a.iter().all(Value::is_string))) {
                bad("topics", "invalid");
            }
        }
        "/api/v1/notifications" => {
            allowed_fields = &["incident_id", "notification_text", "notification_call"];
            // Required; a blank one is taken for missing (the fake's choice: a broadcast that
            // says nothing is no notification).
            let blank = body.get("notification_text").and_then(Value::as_str).is_some_and(|t| t.trim().is_empty());
            match string("notification_text") {
                None => bad("notification_text", "missing_field"),
                Some(true) if blank => bad("notification_text", "missing_field"),
                Some(false) => bad("notification_text", "invalid"),
                Some(true) => {}
            }
        }
        "/api/v1/messages" => {
            allowed_fields = &["incident_id", "message"];
            // Required; a blank one is taken for missing, as for a notification.
            let blank = body.get("message").and_then(Value::as_str).is_some_and(|t| t.trim().is_empty());
            match string("message") {
                None => bad("message", "missing_field"),
                Some(true) if blank => bad("message", "missing_field"),
                Some(false) => bad("message", "invalid"),
                Some(true) => {}
            }
        }
        path => {
            let id = path.strip_prefix("/api/v1/incidents/").and_then(|p| p.strip_suffix("/status"));
            let Some(id) = id.and_then(|i| i.parse::<u64>().ok()) else {
                return Err(Refusal::Broken(format!("unexpected POST {path}")));
            };
            if !known(id) {
                return Err(Refusal::Broken(format!("no incident {id} (POST {path})")));
            }
            allowed_fields = &["status"];
            match one_of("status", &["open", "pend", "close"]) {
                None => bad("status", "missing_field"),
                Some(false) => bad("status", "invalid"),
                Some(true) => {}
            }
        }
    }
    if body.get("notification_call").is_some_and(|c| !c.is_boolean()) {
        bad("notification_call", "invalid");
    }
    if allowed_fields.contains(&"incident_id") {
        match body.get("incident_id") {
            None => bad("incident_id", "missing_field"),
            Some(v) if !v.as_u64().is_some_and(known) => bad("incident_id", "invalid"),
            Some(_) => {}
        }
    }
    for k in body.keys() {
        if !allowed_fields.contains(&k.as_str()) {
            bad(k, "unknown_field");
        }
    }
    if errors.is_empty() { Ok(body) } else { Err(Refusal::Invalid(errors)) }
}

/// The incident object Reactio answers with, for a valid create body.
/// An incident object (`created_incident.yml`), created now (`created_at`, Unix seconds: what a
/// client looking for the incident its lost create opened goes by).
fn incident(id: u64, body: &Map<String, Value>, notification_id: u64) -> Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let field = |k: &str| body.get(k).cloned().unwrap_or(Value::Null);
    let topics: Vec<Value> = body
        .get("topics")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .enumerate()
                .map(|(i, name)| {
                    json!({"id": i + 1, "name": name, "status": "open", "color": "#5661aa", "closed_by": null, "closed_at": null,
                           "created_by": 0, "created_at": CREATED_AT, "updated_by": 0, "updated_at": CREATED_AT})
                })
                .collect()
        })
        .unwrap_or_default();
    let notifications = match body.get("notification_text") {
        Some(text) => notification(notification_id, text, body.get("notification_call") == Some(&Value::Bool(true))),
        None => Value::Null,
    };
    json!({
        "id": id, "name": field("name"), "manager": null,
        "status": body.get("status").cloned().unwrap_or_else(|| "open".into()),
        "detection": field("detection"), "cause": field("cause"), "cause_supplement": field("cause_supplement"),
        "point": field("point"), "scale": field("scale"), "pend_text": field("pend_text"), "close_text": field("close_text"),
        "closed_by": null, "closed_at": null, "pended_by": null, "pended_at": null,
        "created_by": 0, "created_at": now, "updated_by": 0, "updated_at": now,
        "topics": topics, "notifications": notifications,
    })
}

/// A notification object (`notification.yml`): phone only when `call` is true.
fn notification(id: u64, text: &Value, call: bool) -> Value {
    let mut to = json!({"email1": ["1", "2", "3"], "email2": ["1", "2"], "imkayac": ["1"]});
    if call {
        to["phone"] = json!(["1", "3"]);
    }
    json!({"id": id, "notification_text": text, "notification_call": call, "notificated_for": to, "created_at": CREATED_AT})
}

impl FakeReactio {
    /// Start the fake, accepting [`API_KEY`]. `script` answers valid requests in order; after
    /// it runs out, 201.
    pub fn start(script: &[Script]) -> FakeReactio {
        FakeReactio::start_on(0, script)
    }

    /// [`FakeReactio::start`] on a given loopback port (0: chosen by the OS).
    pub fn start_on(port: u16, script: &[Script]) -> FakeReactio {
        let inner = Arc::new(Mutex::new(Inner { script: script.iter().copied().collect(), ..Inner::default() }));
        let shared = Arc::clone(&inner);
        let server = Server::start_on(port, move |r| {
            let mut inner = shared.lock().unwrap();
            let (reply, status) = answer(&mut inner, r);
            let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            inner.calls.push(Call { method: r.method.clone(), path: r.url.clone(), body, status });
            reply
        });
        FakeReactio { url: server.url.clone(), inner, _server: server }
    }

    /// Answer the next `n` incident lists (`GET /api/v1/incidents`) with Reactio's documented
    /// 500 `internal_server_error`, as a Reactio that is down does (0: answer them again).
    pub fn fail_lists(&self, n: usize) {
        self.inner.lock().unwrap().failing_lists = n;
    }

    /// Answer the next `n` incident lists (`GET /api/v1/incidents`) with HTTP 200 and `body`
    /// instead of the list (a proxy's or a maintenance page, `{}`), as something between the
    /// handler and Reactio may (0: answer them again).
    pub fn garble_lists(&self, n: usize, body: &'static str) {
        let mut inner = self.inner.lock().unwrap();
        inner.garbled_lists = n;
        inner.garbled_body = body;
    }

    /// Add `n` open incidents named `name` as another client of the organization opened them
    /// (no request was received for them); their ids follow the incidents created so far.
    pub fn opened_elsewhere(&self, name: &str, n: usize) {
        let mut inner = self.inner.lock().unwrap();
        for _ in 0..n {
            let id = FIRST_ID + inner.incidents.len() as u64;
            let mut body = Map::new();
            body.insert("name".into(), name.into());
            inner.incidents.push(incident(id, &body, 0));
        }
    }

    /// Set the status of incident `id` (`pend`: put on hold) as a person does in Reactio's web
    /// interface (no request is received for it). Panics for an unknown id.
    pub fn set_status(&self, id: u64, status: &str) {
        let mut inner = self.inner.lock().unwrap();
        let incident = inner.incidents.get_mut(id.saturating_sub(FIRST_ID) as usize).unwrap_or_else(|| panic!("no incident {id}"));
        incident["status"] = status.into();
    }

    /// Serve at most `n` incidents per page of `GET /api/v1/incidents`, however many
    /// `per_page` asks for. The spec names `per_page` but neither a default nor a maximum, so a
    /// Reactio that caps it is within the contract: a client cannot take a page shorter than it
    /// asked for for the last one.
    pub fn serve_at_most(&self, n: usize) {
        self.inner.lock().unwrap().max_per_page = Some(n);
    }

    /// The queries of the `GET /api/v1/incidents` requests answered, in arrival order (`""`
    /// for none).
    pub fn lists(&self) -> Vec<String> {
        let query = |c: &Call| match c.path.strip_prefix("/api/v1/incidents") {
            Some("") => Some(String::new()),
            Some(q) => q.strip_prefix('?').map(str::to_string),
            None => None,
        };
        self.calls().iter().filter(|c| c.method == "GET").filter_map(query).collect()
    }

    /// Every request answered, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Bodies of the requests to `path` that were accepted (201), in arrival order.
    pub fn accepted(&self, path: &str) -> Vec<Value> {
        self.calls().into_iter().filter(|c| c.path == path && c.status == 201).map(|c| c.body).collect()
    }

    /// The incidents as the fake holds them now (status updated by the status call).
    pub fn incidents(&self) -> Vec<Value> {
        self.inner.lock().unwrap().incidents.clone()
    }

    /// Contract violations seen.
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().unwrap().violations.clone()
    }

    /// Panic if any request broke the contract.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "requests broke the Reactio contract: {v:#?}");
    }
}

/// Incidents per page of `GET /api/v1/incidents` when `per_page` is not given. The spec names
/// `page` and `per_page` but no default: the fake's choice, small, so that a client that does
/// not page through the list is caught.
pub const DEFAULT_PER_PAGE: usize = 20;

/// `GET /api/v1/incidents?…`: the incidents, filtered by `status` and by `from`/`to` (Unix
/// seconds, on `created_at`: the spec names them, not what they filter; the fake's reading), in creation order, page
/// `page` (from 1, default 1) of `per_page` (default [`DEFAULT_PER_PAGE`], at most the cap of
/// [`FakeReactio::serve_at_most`] when one is set); a page past the end is an empty array.
/// `Err` names a query the spec does not have.
fn list(inner: &Inner, query: &str) -> Result<Value, String> {
    let mut status = None;
    let (mut from, mut to) = (0u64, u64::MAX);
    let (mut page, mut per_page) = (1usize, DEFAULT_PER_PAGE);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let number = v.parse::<usize>().ok().filter(|_| v.chars().all(|c| c.is_ascii_digit()));
        match (k.as_ref(), number) {
            ("status", _) if ["open", "pend", "close"].contains(&v.as_ref()) => status = Some(v.into_owned()),
            ("from", Some(n)) => from = n as u64,
            ("to", Some(n)) => to = n as u64,
            ("page", Some(n)) if n >= 1 => page = n,
            ("per_page", Some(n)) if n >= 1 => per_page = n,
            _ => return Err(format!("GET /api/v1/incidents: query {k}={v} is not in the spec")),
        }
    }
    let created = |i: &Value| i["created_at"].as_u64().unwrap_or(0);
    let all: Vec<Value> = inner
        .incidents
        .iter()
        .filter(|i| status.as_deref().is_none_or(|s| i["status"] == s))
        .filter(|i| (from..=to).contains(&created(i)))
        .cloned()
        .collect();
    let per_page = inner.max_per_page.map_or(per_page, |most| per_page.min(most));
    let page = all.into_iter().skip((page - 1).saturating_mul(per_page)).take(per_page).collect();
    Ok(Value::Array(page))
}

/// What is wrong with the `Accept` of `r` (`None`: it asks for JSON). The spec: "Requests and
/// responses are JSON (`Content-Type: application/json`, `Accept: application/json`)", for
/// every call. What Reactio answers without it is not published, so the fake answers as usual
/// and records the violation.
pub fn accept_problem(r: &Received) -> Option<String> {
    let json = r
        .header("accept")
        .is_some_and(|a| a.split(',').any(|t| t.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json")));
    (!json).then(|| format!("{} {} with Accept {:?}, not application/json", r.method, r.url, r.header("accept")))
}

/// Answer one request and update the fake's incidents; returns the reply and its status.
fn answer(inner: &mut Inner, r: &Received) -> (Reply, u16) {
    if let Some(why) = accept_problem(r) {
        inner.violations.push(why);
    }
    if r.method == "GET"
        && let Some(query) = r.url.strip_prefix("/api/v1/incidents?").or(if r.url == "/api/v1/incidents" { Some("") } else { None })
    {
        if r.header("x-api-key") != Some(API_KEY) {
            // Every call needs the key (spec: "Auth: header `X-Api-Key`"), a list as a create.
            if r.header("x-api-key").is_none() {
                inner.violations.push(format!("{} {} without X-Api-Key", r.method, r.url));
            }
            return (Reply::Json(401, json!({"type": "authentication_error", "message": "invalid api key"})), 401);
        }
        if inner.failing_lists > 0 {
            inner.failing_lists -= 1;
            return (Reply::Json(500, json!({"type": "internal_server_error", "message": "Internal Server Error"})), 500);
        }
        if inner.garbled_lists > 0 {
            inner.garbled_lists -= 1;
            return (Reply::Raw(200, "text/html", Vec::new(), inner.garbled_body.to_string()), 200);
        }
        return match list(inner, query) {
            Ok(v) => (Reply::Json(200, v), 200),
            Err(why) => {
                inner.violations.push(why.clone());
                (Reply::Json(400, json!({"type": "validation_error", "message": why})), 400)
            }
        };
    }
    let known = |id: u64| id >= FIRST_ID && id < FIRST_ID + inner.incidents.len() as u64;
    let body = match check(r, API_KEY, &known) {
        Ok(b) => b,
        Err(Refusal::Unauthorized(missing)) => {
            if missing {
                inner.violations.push(format!("{} {} without X-Api-Key", r.method, r.url));
            }
            return (Reply::Json(401, json!({"type": "authentication_error", "message": "invalid api key"})), 401);
        }
        Err(Refusal::Invalid(errors)) => {
            inner.violations.push(format!("{} {}: {errors:?}", r.method, r.url));
            return (Reply::Json(400, validation_error(&errors)), 400);
        }
        Err(Refusal::Broken(why)) => {
            inner.violations.push(why.clone());
            return (Reply::Json(404, json!({"type": "not_found", "message": why})), 404);
        }
    };
    let mut late = None;
    match inner.script.pop_front().unwrap_or(Script::Accept) {
        Script::Accept => {}
        Script::Late(ms) => late = Some(std::time::Duration::from_millis(ms)),
        Script::Invalid => {
            let errors = [("notification_text".to_string(), "missing_field".to_string())];
            return (Reply::Json(400, validation_error(&errors)), 400);
        }
        Script::ServerError => {
            return (Reply::Json(500, json!({"type": "internal_server_error", "message": "Internal Server Error"})), 500);
        }
        Script::Hang => return (Reply::Hang, 0),
    }
    let serial = inner.calls.len() as u64 + 1;
    let created = match r.url.as_str() {
        "/api/v1/incidents" => {
            let inc = incident(FIRST_ID + inner.incidents.len() as u64, &body, serial);
            inner.incidents.push(inc.clone());
            inc
        }
        "/api/v1/notifications" => {
            notification(serial, &body["notification_text"], body.get("notification_call") == Some(&Value::Bool(true)))
        }
        "/api/v1/messages" => json!({}),
        path => {
            // `/api/v1/incidents/{id}/status`, checked above.
            let id = path.trim_start_matches("/api/v1/incidents/").trim_end_matches("/status").parse::<u64>().unwrap_or(0);
            match inner.incidents.get_mut(id.saturating_sub(FIRST_ID) as usize) {
                Some(inc) => {
                    inc["status"] = body["status"].clone();
                    inc.clone()
                }
                None => Value::Null,
            }
        }
    };
    match late {
        Some(wait) => (Reply::Late(wait, Box::new(Reply::Json(201, created))), 201),
        None => (Reply::Json(201, created), 201),
    }
}

#[cfg(test)]
mod self_test {
    use super::*;

    fn post(path: &str, key: Option<&str>, body: Value) -> Received {
        let mut headers =
            vec![("content-type".to_string(), "application/json".to_string()), ("accept".to_string(), "application/json".to_string())];
        if let Some(k) = key {
            headers.push(("x-api-key".into(), k.into()));
        }
        Received { method: "POST".into(), url: path.into(), headers, body: body.to_string().into_bytes() }
    }

    fn known(id: u64) -> bool {
        id == FIRST_ID
    }

    #[test]
    fn the_fake_accepts_what_the_official_client_sends() {
        let ok = [
            ("/api/v1/incidents", json!({"name": "サイト閲覧不可"})),
            (
                "/api/v1/incidents",
                json!({"name": "サイト閲覧不可", "status": "open", "detection": "msp", "cause": "over-capacity",
                       "cause_supplement": "Webサーバがアクセス過多でダウン", "point": "middleware", "scale": "whole",
                       "pend_text": "再起動", "close_text": "スケールアウト", "topics": ["原因調査", "復旧作業"],
                       "notification_text": "至急対応をお願い致します。", "notification_call": true, "message": "<p>x</p>"}),
            ),
            ("/api/v1/notifications", json!({"incident_id": FIRST_ID, "notification_text": "至急", "notification_call": false})),
            ("/api/v1/messages", json!({"incident_id": FIRST_ID, "message": "<p>至急原因調査を実施！</p>"})),
            ("/api/v1/incidents/1001/status", json!({"status": "close"})),
        ];
        for (path, body) in ok {
            assert!(check(&post(path, Some(API_KEY), body.clone()), API_KEY, &known).is_ok(), "{path} {body}");
        }
    }

    #[test]
    fn the_fake_rejects_what_reactio_rejects() {
        let name = json!({"name": "n"});
        assert_eq!(check(&post("/api/v1/incidents", None, name.clone()), API_KEY, &known), Err(Refusal::Unauthorized(true)));
        assert_eq!(check(&post("/api/v1/incidents", Some("wrong"), name.clone()), API_KEY, &known), Err(Refusal::Unauthorized(false)));
        let invalid = [
            ("/api/v1/incidents", json!({}), "name"),
            ("/api/v1/incidents", json!({"name": ""}), "name"),
            ("/api/v1/incidents", json!({"name": "n", "status": "closed"}), "status"),
            ("/api/v1/incidents", json!({"name": "n", "detection": "human"}), "detection"),
            ("/api/v1/incidents", json!({"name": "n", "cause": "cosmic"}), "cause"),
            ("/api/v1/incidents", json!({"name": "n", "point": "disk"}), "point"),
            ("/api/v1/incidents", json!({"name": "n", "scale": "huge"}), "scale"),
            ("/api/v1/incidents", json!({"name": "n", "notification_call": "true"}), "notification_call"),
            ("/api/v1/incidents", json!({"name": "n", "topics": "a,b"}), "topics"),
            ("/api/v1/incidents", json!({"name": "n", "severity": "critical"}), "severity"),
            ("/api/v1/notifications", json!({"incident_id": FIRST_ID}), "notification_text"),
            ("/api/v1/notifications", json!({"incident_id": FIRST_ID, "notification_text": " "}), "notification_text"),
            ("/api/v1/notifications", json!({"notification_text": "x"}), "incident_id"),
            ("/api/v1/notifications", json!({"incident_id": 7, "notification_text": "x"}), "incident_id"),
            ("/api/v1/messages", json!({"incident_id": FIRST_ID}), "message"),
            ("/api/v1/messages", json!({"incident_id": FIRST_ID, "message": ""}), "message"),
            ("/api/v1/incidents/1001/status", json!({"status": "done"}), "status"),
        ];
        for (path, body, field) in invalid {
            match check(&post(path, Some(API_KEY), body.clone()), API_KEY, &known) {
                Err(Refusal::Invalid(errors)) => assert!(errors.iter().any(|(f, _)| f == field), "{path} {body}: {errors:?}"),
                other => panic!("{path} {body}: {other:?}"),
            }
        }
        for path in ["/api/v1/incidents/7/status", "/api/v1/incident", "/api/v2/incidents"] {
            assert!(matches!(check(&post(path, Some(API_KEY), name.clone()), API_KEY, &known), Err(Refusal::Broken(_))), "{path}");
        }
        let mut form = post("/api/v1/incidents", Some(API_KEY), name.clone());
        form.headers[0].1 = "application/x-www-form-urlencoded".into();
        assert!(matches!(check(&form, API_KEY, &known), Err(Refusal::Broken(_))));
        // Every call asks for JSON: ureq's default `*/*`, or none, breaks the contract.
        let mut r = post("/api/v1/incidents", Some(API_KEY), name);
        assert_eq!(accept_problem(&r), None);
        r.headers[1].1 = "text/html, application/json;q=0.9".into();
        assert_eq!(accept_problem(&r), None);
        r.headers[1].1 = "*/*".into();
        assert!(accept_problem(&r).is_some());
        r.headers.remove(1);
        assert!(accept_problem(&r).is_some());
    }

    #[test]
    fn error_bodies_match_the_client_fixtures() {
        assert_eq!(
            validation_error(&[("notification_text".into(), "missing_field".into())]),
            json!({"errors": [{"field": "notification_text", "code": "missing_field"}], "type": "validation_error", "message": "validation error"})
        );
    }
}
