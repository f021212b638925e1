//! A fake PagerDuty Events API v2 (`POST /v2/enqueue`).
//!
//! Validates each request body against the request schema of
//! `../shared/specs/pagerduty-events-v2.openapi.json` and the limits the spec leaves out
//! (`specs/README.md`): 32-character `routing_key`, `dedup_key` ≤ 255 characters and required
//! (not blank) for acknowledge/resolve, `payload` required for trigger, `summary` and
//! `source` not blank, `summary` ≤ 1024 characters, whole
//! event ≤ 512 KB (the stricter reading of both: characters counted in UTF-16 code units, an
//! emoji is two, as the Twilio fake counts them; 512 KB as 512 000 bytes), a timestamp that reads as ISO 8601, `client_url` and link/image URLs that
//! are absolute http(s) URLs (`format: url`, which the JSON Schema conversion drops). Invalid → 400 with PagerDuty's error
//! body, recorded as a violation. Valid requests get the scripted reply (202 by default).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{Received, Reply, Server, openapi_to_json_schema, spec_path};

/// A scripted answer for one valid request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// 202 success.
    Accept,
    /// 400 invalid event (as if PagerDuty disliked it).
    Invalid,
    /// 429 rate limited.
    RateLimited,
    /// 500.
    ServerError,
    /// Never answer.
    Hang,
    /// 202 after 150 ms (to make concurrent clients overlap).
    Slow,
    /// 202 after this many milliseconds (a slow service; a request in flight for a while).
    Late(u64),
    /// 500 after this many milliseconds (a failing request that keeps its sender busy).
    LateError(u64),
    /// 202 once the test calls [`FakePagerDuty::open_gate`] (a request in flight while the
    /// test changes the world around its sender).
    Gated,
    /// 202 once the test calls [`FakePagerDuty::open_gate`], and acted on only then: a request
    /// held up on its way (a proxy, a load balancer) that PagerDuty acts on after requests that
    /// arrived meanwhile. Recorded in [`FakePagerDuty::events`] when the gate opens.
    Held,
}

impl Script {
    /// The status this step answers with (`None`: never answers).
    pub fn status(self) -> Option<u16> {
        match self {
            Script::Accept | Script::Slow | Script::Late(_) | Script::Gated | Script::Held => Some(202),
            Script::Invalid => Some(400),
            Script::RateLimited => Some(429),
            Script::ServerError | Script::LateError(_) => Some(500),
            Script::Hang => None,
        }
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Script>,
    /// Answers once the script has run out, taken in turn (empty: always 202).
    cycle: Vec<Script>,
    /// Requests answered from `cycle` so far.
    cycled: usize,
    /// Valid events received, with the status each was answered with (`None`: never).
    events: Vec<(Value, Option<u16>)>,
    violations: Vec<String>,
    /// Whether [`Script::Gated`] answers.
    gate_open: bool,
    /// Routing keys answered 429 whatever the script says (PagerDuty's rate limit is per
    /// routing key: a service flooded by its own events).
    throttled: Vec<String>,
}

impl Inner {
    /// The answer for the next valid request, sent with `routing_key`.
    fn next_step(&mut self, routing_key: &str) -> Script {
        if self.throttled.iter().any(|k| k == routing_key) {
            return Script::RateLimited;
        }
        if let Some(step) = self.script.pop_front() {
            return step;
        }
        if self.cycle.is_empty() {
            return Script::Accept;
        }
        let step = self.cycle[self.cycled % self.cycle.len()];
        self.cycled += 1;
        step
    }
}

/// The fake; stops when dropped.
pub struct FakePagerDuty {
    /// Base URL to pass as `--api-url`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    _server: Server,
}

fn validator() -> jsonschema::Validator {
    let doc: Value = serde_json::from_slice(&std::fs::read(spec_path("pagerduty-events-v2.openapi.json")).unwrap()).unwrap();
    let schema =
        doc.pointer("/paths/~1enqueue/post/requestBody/content/application~1json/schema").expect("enqueue request schema in the spec");
    jsonschema::validator_for(&openapi_to_json_schema(schema, &doc)).expect("valid JSON Schema")
}

/// Largest event accepted, in bytes: "512 KB" (`specs/README.md`) read as 512 000, the
/// stricter of its two readings.
pub const MAX_EVENT_BYTES: usize = 512_000;

/// Every contract problem with one request (empty when valid).
pub fn check(r: &Received, validator: &jsonschema::Validator) -> Vec<String> {
    let mut v = Vec::new();
    if r.method != "POST" || r.url != "/v2/enqueue" {
        v.push(format!("unexpected {} {}", r.method, r.url));
        return v;
    }
    if !r.header("content-type").is_some_and(|c| c.starts_with("application/json")) {
        v.push(format!("content-type is {:?}", r.header("content-type")));
    }
    if r.body.len() > MAX_EVENT_BYTES {
        v.push(format!("event is {} bytes, over 512 KB", r.body.len()));
    }
    let body: Value = match serde_json::from_slice(&r.body) {
        Ok(b) => b,
        Err(e) => {
            v.push(format!("body is not JSON: {e}"));
            return v;
        }
    };
    for e in validator.iter_errors(&body) {
        v.push(format!("schema: {} at {}", e, e.instance_path()));
    }
    // `format: url` (dropped from the JSON Schema with the other OpenAPI formats): client_url,
    // links[].href, images[].src and images[].href.
    // A URL is an RFC 3986 URI: URI characters only, one `#`, `%` only in an escape, a port of
    // digits within 65535.
    let rfc3986 = |s: &str| {
        let b = s.as_bytes();
        let chars = b.iter().all(|c| c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(c));
        let escapes =
            b.iter().enumerate().all(|(i, c)| *c != b'%' || b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
        chars && escapes && b.iter().filter(|c| **c == b'#').count() <= 1
    };
    let url = |s: &str| {
        rfc3986(s)
            && s.parse::<ureq::http::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str().map(str::to_ascii_lowercase).as_deref(), Some("http" | "https"))
                    && u.authority().is_some_and(|a| {
                        let after_host = a.as_str().rsplit('@').next().unwrap_or_default();
                        let port = after_host.rsplit_once(']').map_or(after_host, |(_, p)| p).split_once(':').map(|(_, p)| p);
                        !a.host().is_empty() && port.is_none_or(|p| p.is_empty() || p.parse::<u16>().is_ok())
                    })
            })
    };
    let mut urls: Vec<(String, &Value)> = Vec::new();
    if let Some(u) = body.get("client_url") {
        urls.push(("client_url".into(), u));
    }
    for (list, fields) in [("links", &["href"][..]), ("images", &["src", "href"][..])] {
        for (i, item) in body.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            for f in fields {
                if let Some(u) = item.get(*f) {
                    urls.push((format!("{list}[{i}].{f}"), u));
                }
            }
        }
    }
    for (name, u) in urls {
        if !u.as_str().is_some_and(url) {
            v.push(format!("{name} {u} is not a URL (format: url)"));
        }
    }
    // Images schema, `src`: "This image must be served via HTTPS."
    for (i, item) in body.get("images").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if item.get("src").and_then(Value::as_str).is_some_and(|s| !s.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://"))) {
            v.push(format!("images[{i}].src {} is not served via HTTPS", item["src"]));
        }
    }
    // PagerDuty does not say how it counts characters: UTF-16 units, the stricter reading.
    let chars = |p: &str| body.pointer(p).and_then(Value::as_str).map(common::template::utf16_len);
    if chars("/routing_key") != Some(32) {
        v.push(format!("routing_key must be 32 characters, has {:?}", chars("/routing_key")));
    }
    let action = body["event_action"].as_str().unwrap_or("");
    match chars("/dedup_key") {
        Some(n) if n > 255 => v.push(format!("dedup_key has {n} characters, over 255")),
        None if action != "trigger" => v.push(format!("dedup_key is required for {action}")),
        // Required for acknowledge and resolve ("Identifies the alert to trigger, acknowledge,
        // or resolve"): a blank one identifies no alert.
        Some(_) if action != "trigger" && body["dedup_key"].as_str().is_some_and(|k| k.trim().is_empty()) => {
            v.push(format!("dedup_key is blank: it identifies no alert to {action}"))
        }
        _ => {}
    }
    if action == "trigger" {
        if body.get("payload").is_none() {
            v.push("payload is required for trigger".into());
        }
        if let Some(n) = chars("/payload/summary")
            && n > 1024
        {
            v.push(format!("payload.summary has {n} characters, over 1024"));
        }
        // Required (the Payload schema): a blank one is missing, as PagerDuty words it.
        for field in ["summary", "source"] {
            if body["payload"][field].as_str().is_some_and(|s| s.trim().is_empty()) {
                v.push(format!("'payload.{field}' is missing or blank"));
            }
        }
        if let Some(ts) = body.pointer("/payload/timestamp").and_then(Value::as_str) {
            let b = ts.as_bytes();
            let iso = b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':';
            if !iso {
                v.push(format!("payload.timestamp {ts:?} is not ISO 8601"));
            }
        }
    }
    v
}

impl FakePagerDuty {
    /// Start the fake. `script` answers valid requests in order; after it runs out, 202.
    pub fn start(script: &[Script]) -> FakePagerDuty {
        FakePagerDuty::start_on(0, script)
    }

    /// [`FakePagerDuty::start`] on a given loopback port (0: chosen by the OS).
    pub fn start_on(port: u16, script: &[Script]) -> FakePagerDuty {
        let inner = Arc::new(Mutex::new(Inner { script: script.iter().copied().collect(), ..Inner::default() }));
        let validator = validator();
        let shared = Arc::clone(&inner);
        let server = Server::start_on(port, move |r| {
            let problems = check(r, &validator);
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let mut inner = shared.lock().unwrap();
            if !problems.is_empty() {
                inner.violations.extend(problems.iter().cloned());
                // No such endpoint: PagerDuty's front answers 404 with a page of its own.
                if r.method != "POST" || r.url != "/v2/enqueue" {
                    return Reply::Raw(404, "text/html", Vec::new(), "<html><body>Not Found</body></html>".into());
                }
                return Reply::Json(400, json!({"status": "invalid event", "message": "Event object is invalid", "errors": problems}));
            }
            let step = inner.next_step(body["routing_key"].as_str().unwrap_or(""));
            if step != Script::Held {
                inner.events.push((body.clone(), step.status()));
            }
            drop(inner);
            let dedup = body["dedup_key"].as_str().map(str::to_string).unwrap_or_else(|| "generated-0001".into());
            match step {
                Script::Accept => Reply::Json(202, json!({"status": "success", "message": "Event processed", "dedup_key": dedup})),
                Script::Invalid => Reply::Json(
                    400,
                    json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["'payload.severity' is invalid"]}),
                ),
                Script::RateLimited => Reply::Json(
                    429,
                    json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."}),
                ),
                Script::ServerError => Reply::Json(500, json!({"status": "error", "message": "Internal server error"})),
                Script::Hang => Reply::Hang,
                Script::Slow | Script::Late(_) => {
                    let ms = if let Script::Late(ms) = step { ms } else { 150 };
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    Reply::Json(202, json!({"status": "success", "message": "Event processed", "dedup_key": dedup}))
                }
                Script::Gated | Script::Held => {
                    while !shared.lock().unwrap().gate_open {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    if step == Script::Held {
                        shared.lock().unwrap().events.push((body.clone(), step.status()));
                    }
                    Reply::Json(202, json!({"status": "success", "message": "Event processed", "dedup_key": dedup}))
                }
                Script::LateError(ms) => {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    Reply::Json(500, json!({"status": "error", "message": "Internal server error"}))
                }
            }
        });
        FakePagerDuty { url: server.url.clone(), inner, _server: server }
    }

    /// [`FakePagerDuty::start`] whose answers, once `script` has run out, take `cycle` in
    /// turn, again and again (e.g. `[ServerError, Accept]`: a service flipping between 500 and
    /// 202, shared by every client).
    pub fn start_cycling(script: &[Script], cycle: &[Script]) -> FakePagerDuty {
        let fake = FakePagerDuty::start(script);
        fake.inner.lock().expect("the fake's lock").cycle = cycle.to_vec();
        fake
    }

    /// Answer every request for `routing_key` with 429 from now on (its service is over
    /// PagerDuty's rate limit), without taking a step of the script.
    pub fn throttle(&self, routing_key: &str) -> &Self {
        self.inner.lock().expect("the fake's lock").throttled.push(routing_key.to_string());
        self
    }

    /// Answer the next valid requests with `steps` (appended to what is left of the script).
    pub fn then(&self, steps: &[Script]) -> &Self {
        self.inner.lock().expect("the fake's lock").script.extend(steps.iter().copied());
        self
    }

    /// Let every [`Script::Gated`] and [`Script::Held`] answer, now and from now on.
    pub fn open_gate(&self) {
        self.inner.lock().expect("the fake's lock").gate_open = true;
    }

    /// Valid events received, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.inner.lock().expect("the fake's lock").events.iter().map(|(e, _)| e.clone()).collect()
    }

    /// Valid events the fake accepted (answered, or is answering, 202), in arrival order: what
    /// PagerDuty acted on.
    pub fn accepted(&self) -> Vec<Value> {
        self.inner.lock().expect("the fake's lock").events.iter().filter(|(_, s)| *s == Some(202)).map(|(e, _)| e.clone()).collect()
    }

    /// Each valid event received with the status it was answered with (`None`: never).
    pub fn answered(&self) -> Vec<(Value, Option<u16>)> {
        self.inner.lock().expect("the fake's lock").events.clone()
    }

    /// Contract violations seen.
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().unwrap().violations.clone()
    }

    /// Panic if any request broke the contract.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "requests broke the PagerDuty contract: {v:#?}");
    }
}

impl Drop for FakePagerDuty {
    /// A request still waiting at the gate is answered, so that the server's thread ends.
    fn drop(&mut self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.gate_open = true;
        }
    }
}

#[cfg(test)]
mod self_test {
    use super::*;

    fn received(body: Value) -> Received {
        Received {
            method: "POST".into(),
            url: "/v2/enqueue".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn the_fake_rejects_what_pagerduty_rejects() {
        let v = validator();
        let key = "k".repeat(32);
        let ok = json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": "critical", "timestamp": "2015-07-17T08:42:58.315+0000"},
                        "client": "Sensu", "client_url": "https://sensu.example.com/", "links": [{"href": "https://zabbix.example.com/tr_events.php?triggerid=1&eventid=2", "text": "View"}],
                        "images": [{"src": "https://g.example/chart.png", "alt": "chart"}]});
        assert_eq!(check(&received(ok), &v), Vec::<String>::new());
        let cases = [
            json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": "fatal"}}),
            json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "s", "severity": "critical"}}),
            json!({"routing_key": key, "event_action": "explode"}),
            json!({"routing_key": key, "event_action": "resolve"}),
            json!({"routing_key": key, "event_action": "resolve", "dedup_key": ""}),
            json!({"routing_key": key, "event_action": "acknowledge", "dedup_key": "  "}),
            json!({"routing_key": "short", "event_action": "resolve", "dedup_key": "k"}),
            json!({"routing_key": key, "event_action": "resolve", "dedup_key": "k".repeat(256)}),
            json!({"routing_key": key, "event_action": "trigger"}),
            json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "s".repeat(1025), "source": "h", "severity": "info"}}),
            json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": " ", "source": "h", "severity": "info"}}),
            json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "s", "source": "", "severity": "info"}}),
            json!({"routing_key": key, "event_action": "trigger", "client_url": "monitoring box",
                   "payload": {"summary": "s", "source": "h", "severity": "info"}}),
            json!({"routing_key": key, "event_action": "trigger", "links": [{"href": "see the runbook"}],
                   "payload": {"summary": "s", "source": "h", "severity": "info"}}),
            // Not RFC 3986 URIs, though an HTTP parser takes them.
            json!({"routing_key": key, "event_action": "trigger", "links": [{"href": "https://g.example/d?var-host=a|b"}],
                   "payload": {"summary": "s", "source": "h", "severity": "info"}}),
            json!({"routing_key": key, "event_action": "trigger", "client_url": "https://g.example:port/",
                   "payload": {"summary": "s", "source": "h", "severity": "info"}}),
            json!({"routing_key": key, "event_action": "trigger", "images": [{"src": "http://g.example/chart.png"}],
                   "payload": {"summary": "s", "source": "h", "severity": "info"}}),
            // Limits counted in UTF-16 units (the stricter reading): 128 emoji are 256.
            json!({"routing_key": key, "event_action": "resolve", "dedup_key": "\u{1F525}".repeat(128)}),
            json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "\u{1F525}".repeat(513), "source": "h", "severity": "info"}}),
            // Over 512 000 bytes, under 512 KiB.
            json!({"routing_key": key, "event_action": "trigger",
                   "payload": {"summary": "s", "source": "h", "severity": "info", "custom_details": {"output": "x".repeat(512_000)}}}),
        ];
        for c in cases {
            assert!(!check(&received(c.clone()), &v).is_empty(), "accepted {c}");
        }
    }
}
