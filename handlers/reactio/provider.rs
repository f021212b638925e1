//! Reactio incident API v1: what requests an event becomes, and what a response means.
//!
//! Contract (`../shared/specs/reactio-api-v1.md`, collected from reactio.jp/development/api and
//! the official Ruby client `gaiax/reactio-ruby-client`): base URL
//! `https://{organization}.reactio.jp`, header `X-Api-Key`, JSON in and out, ids are integers.
//!
//! - **trigger**, no open incident stored: `POST /api/v1/incidents` `{name, status,
//!   notification_text, notification_call, …}` → 201 with the incident object, whose `id` is
//!   remembered under the incident key as `refs.incident_id`.
//! - **trigger** of an incident that is still open with a stored id (a repeat after `refresh`,
//!   or a severity change): `POST /api/v1/notifications` `{incident_id, notification_text,
//!   notification_call}` broadcasts again instead of opening a second incident.
//! - **resolve**: `POST /api/v1/messages` `{incident_id, message}` adds "recovered: …" to the
//!   incident's timeline; with `close_on_resolve` also `POST /api/v1/incidents/{id}/status`
//!   `{"status":"close"}`, an endpoint Reactio does not document (seen in one third-party Zabbix
//!   integration), hence off by default and best effort.
//! - **acknowledge**: Reactio has none; skipped.
//!
//! 401 (`authentication_error`) and 400 (`validation_error`) are permanent (exit 69) and say
//! why; 5xx, 429 and network errors are retried within the deadline (then exit 75).

use std::time::Instant;

use common::config::{self, Common, de};
use common::event::Event;
use common::exit::{Code, Result};
use common::filter::Action;
use common::http::{Class, Delivery, Request, Response, classify_status_with, fmt_ms};
use common::pipeline::{Ctx, Done, Failed, Job, Provider};
use common::template::{Template, truncate_chars};
use common::trust::Trust;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Host under which each organization has its subdomain: `https://{organization}.reactio.jp`.
pub const HOST: &str = "reactio.jp";
/// Key of the Reactio incident id in the state store's `refs`.
pub const INCIDENT_ID: &str = "incident_id";
/// `status` values accepted on create (spec: `POST /api/v1/incidents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// `open`.
    Open,
    /// `pend`.
    Pend,
    /// `close`.
    Close,
}

/// `detection` values (spec; marked for deprecation upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Detection {
    /// `msp`.
    Msp,
    /// `system`.
    System,
    /// `client`.
    Client,
    /// `internal`.
    Internal,
}

/// `cause` values (spec; marked for deprecation upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// `over-capacity`.
    OverCapacity,
    /// `bug`.
    Bug,
    /// `operation-error`.
    OperationError,
    /// `external-factor`.
    ExternalFactor,
    /// `degradation`.
    Degradation,
    /// `unknown`.
    Unknown,
}

/// `point` values (spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Point {
    /// `network`.
    Network,
    /// `shared-hardware`.
    SharedHardware,
    /// `hardware`.
    Hardware,
    /// `os`.
    Os,
    /// `middleware`.
    Middleware,
    /// `application`.
    Application,
}

/// `scale` values (spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    /// `cross`.
    Cross,
    /// `whole`.
    Whole,
    /// `point`.
    Point,
}

/// The word Reactio's API uses for `value` (its serde name).
fn word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Shown in `--dry-run` output where the stored incident id would go (dry runs read no state).
/// Longest incident `name` sent, in characters (Unicode scalar values). Neither Reactio's API
/// documentation (reactio.jp/development/api: "自由形式", free form) nor the official Ruby client
/// (gaiax/reactio-ruby-client `Service#create_incident`, which sends `name` as given) states a
/// limit, and the web UI shows the name as a one-line title; 255 is the usual bound of a
/// one-line text column, so a name never depends on an unpublished server limit. Longer names
/// are cut on a character boundary, ending with `…`; the full output still reaches the timeline
/// message.
pub const MAX_NAME_CHARS: usize = 255;

const STORED_ID_PLACEHOLDER: &str = "{stored incident_id}";

/// The `reactio` settings section (the shared settings live in [`Common`]).
#[derive(Debug, Deserialize)]
#[serde(default)]
struct Settings {
    api_key: Option<String>,
    organization: Option<String>,
    name_template: String,
    /// Empty: no broadcast notification.
    notification_text: String,
    #[serde(deserialize_with = "de::boolean")]
    notification_call: bool,
    status: Status,
    #[serde(deserialize_with = "de::optional_of")]
    detection: Option<Detection>,
    #[serde(deserialize_with = "de::optional_of")]
    cause: Option<Cause>,
    #[serde(deserialize_with = "de::optional_of")]
    point: Option<Point>,
    #[serde(deserialize_with = "de::optional_of")]
    scale: Option<Scale>,
    #[serde(deserialize_with = "de::list")]
    topics: Vec<String>,
    message: Option<String>,
    recovery_message: String,
    #[serde(deserialize_with = "de::boolean")]
    close_on_resolve: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            api_key: None,
            organization: None,
            name_template: "{entity}/{check} {output}".into(),
            notification_text: "対応をお願いします".into(),
            notification_call: false,
            status: Status::Open,
            detection: None,
            cause: None,
            point: None,
            scale: None,
            topics: Vec::new(),
            message: None,
            recovery_message: "recovered: {output}".into(),
            close_on_resolve: false,
        }
    }
}

/// The Reactio provider, built from settings.
#[derive(Debug)]
pub struct Reactio {
    api_key: Option<String>,
    /// `https://{organization}.reactio.jp` or `api_url`, without a trailing `/`; `None` when
    /// neither is set ([`Provider::ready`] fails then).
    base: Option<String>,
    name: Template,
    notification_text: Option<Template>,
    notification_call: bool,
    status: Status,
    /// `detection`, `cause`, `point`, `scale`, when set (validated).
    classification: Vec<(&'static str, String)>,
    topics: Vec<String>,
    message: Option<Template>,
    recovery_message: Template,
    close_on_resolve: bool,
}

impl Provider for Reactio {
    const NAME: &'static str = "reactio";

    /// The organization, the API key and whether to phone people come from the operator or
    /// the check; an entity may word, classify and tag its own incidents.
    const SETTINGS: &'static [(&'static str, Trust)] = &[
        ("api_key", Trust::Check),
        ("organization", Trust::Check),
        ("notification_call", Trust::Check),
        ("status", Trust::Check),
        ("close_on_resolve", Trust::Check),
        ("name_template", Trust::Entity),
        ("notification_text", Trust::Entity),
        ("message", Trust::Entity),
        ("recovery_message", Trust::Entity),
        ("detection", Trust::Entity),
        ("cause", Trust::Entity),
        ("point", Trust::Entity),
        ("scale", Trust::Entity),
        ("topics", Trust::Entity),
    ];

    /// The Ruby `reactio_handler.rb` opened incidents for CRITICAL only.
    fn defaults() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("severities".into(), json!(["critical"]));
        m
    }

    fn from_settings(section: Map<String, Value>, common: &Common) -> Result<Self> {
        let s: Settings = config::typed("reactio", section)?;
        let classification: Vec<(&'static str, String)> = [
            ("detection", s.detection.map(|v| word(&v))),
            ("cause", s.cause.map(|v| word(&v))),
            ("point", s.point.map(|v| word(&v))),
            ("scale", s.scale.map(|v| word(&v))),
        ]
        .into_iter()
        .filter_map(|(name, v)| Some((name, v?)))
        .collect();
        let organization = s.organization.as_deref().map(str::trim).filter(|o| !o.is_empty());
        if let Some(o) = organization
            && !is_subdomain(o)
        {
            return Err(Code::Config.msg(format!(
                "settings `reactio.organization`: {} is not an organization ID; give the subdomain only \
                 (`example` for https://example.{HOST}), or the whole base URL as `reactio.api_url`",
                config::shown(o)
            )));
        }
        let base = match (&common.api_url, organization) {
            (Some(url), _) => Some(url.trim_end_matches('/').to_string()),
            (None, Some(o)) => Some(format!("https://{o}.{HOST}")),
            (None, None) => None,
        };
        let optional = |name: &str, src: &str| -> Result<Option<Template>> {
            if src.trim().is_empty() { Ok(None) } else { Template::parse(&format!("reactio.{name}"), src).map(Some) }
        };
        Ok(Reactio {
            api_key: s.api_key.map(|k| k.trim().to_string()).filter(|k| !k.is_empty()),
            base,
            name: Template::parse("reactio.name_template", &s.name_template)?,
            notification_text: optional("notification_text", &s.notification_text)?,
            notification_call: s.notification_call,
            status: s.status,
            classification,
            topics: s.topics.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            message: optional("message", s.message.as_deref().unwrap_or(""))?,
            recovery_message: Template::parse("reactio.recovery_message", &s.recovery_message)?,
            close_on_resolve: s.close_on_resolve,
        })
    }

    fn secrets(&self) -> Vec<String> {
        self.api_key.iter().cloned().collect()
    }

    fn ready(&self) -> Result<()> {
        if self.api_key.is_none() {
            return Err(Code::Config.msg(
                "no Reactio API key: set `reactio.api_key` in a settings file, REACTIO_API_KEY, or --api-key \
                 (Reactio issues API keys per project)",
            ));
        }
        if self.base.is_none() {
            return Err(Code::Config.msg(format!(
                "no Reactio organization: set `reactio.organization` (the subdomain of https://{{organization}}.{HOST}) \
                 or --organization, or a base URL with `reactio.api_url` / --api-url"
            )));
        }
        Ok(())
    }

    fn unsupported(&self, action: Action) -> Option<String> {
        (action == Action::Acknowledge).then(|| "Reactio has no acknowledge".to_string())
    }

    fn act(&self, ctx: &Ctx<'_>, job: &Job<'_>) -> std::result::Result<Done, Failed> {
        match (job.action, stored_incident(job)) {
            (Action::Trigger, None) => self.create(ctx, job),
            (Action::Trigger, Some(id)) => self.notify(ctx, job, id),
            (Action::Resolve, Some(id)) => self.resolve(ctx, job, json!(id)),
            (Action::Resolve, None) if ctx.dry_run => self.resolve(ctx, job, json!(STORED_ID_PLACEHOLDER)),
            (Action::Resolve, None) if ctx.spool.as_ref().is_some_and(|q| q.behind > 0) => self.resolve_later(ctx, job),
            (Action::Resolve, None) => Ok(Done {
                detail: "(no Reactio incident id is stored for it, so there is no incident to post the recovery to)".into(),
                refs: Map::new(),
            }),
            (Action::Acknowledge, _) => Ok(Done { detail: "(Reactio has no acknowledge; nothing sent)".into(), refs: Map::new() }),
        }
    }

    fn classify(_req: &Request, resp: &Response) -> Class {
        classify(resp)
    }

    /// A create delivered from the spool brings the incident id that later requests need.
    fn spooled_refs(req: &Request, resp: &Response) -> Map<String, Value> {
        let created = req.url.ends_with("/api/v1/incidents");
        let id = serde_json::from_str::<Value>(&resp.body).ok().and_then(|v| v.get("id").and_then(incident_id));
        match (created, id) {
            (true, Some(id)) => id_refs(id),
            _ => Map::new(),
        }
    }
}

/// One delivered request: the response and a `POST /path 201 in 12 ms` note for the log line.
struct Posted {
    response: Response,
    timing: String,
}

impl Reactio {
    /// `POST /api/v1/incidents`; remembers the returned `id`.
    fn create(&self, ctx: &Ctx<'_>, job: &Job<'_>) -> std::result::Result<Done, Failed> {
        let posted = self.post(ctx, "/api/v1/incidents", self.incident_body(job.event, job.incident_key))?;
        let id = serde_json::from_str::<Value>(&posted.response.body).ok().and_then(|v| v.get("id").and_then(incident_id));
        let mut refs = Map::new();
        let detail = match id {
            Some(id) => {
                refs.insert(INCIDENT_ID.into(), id.into());
                format!("(incident {id}; {})", posted.timing)
            }
            None if ctx.dry_run => format!("({})", posted.timing),
            None => {
                ctx.log.warn(format!(
                    "Reactio accepted the incident for {} but its answer holds no incident id; a repeat will open a new incident",
                    job.incident_key
                ));
                format!("(incident id unknown; {})", posted.timing)
            }
        };
        Ok(Done { detail, refs })
    }

    /// `POST /api/v1/notifications` to the stored incident: broadcast again.
    fn notify(&self, ctx: &Ctx<'_>, job: &Job<'_>, id: u64) -> std::result::Result<Done, Failed> {
        let refs = id_refs(id);
        let Some(text) = &self.notification_text else {
            return Ok(Done { detail: format!("(incident {id} still open; notification_text is empty, so nothing is broadcast)"), refs });
        };
        let body = json!({
            "incident_id": id,
            "notification_text": text.render(job.event),
            "notification_call": self.notification_call,
        });
        let posted = self.post(ctx, "/api/v1/notifications", body)?;
        Ok(Done { detail: format!("(incident {id} notified again; {})", posted.timing), refs })
    }

    /// `POST /api/v1/messages` "recovered: …", then with `close_on_resolve` the status call.
    /// `id` is the incident id (a placeholder string in dry-run). A failed close is logged as
    /// a warning and does not fail the resolve: the recovery is on the timeline already, and
    /// the close endpoint is undocumented.
    fn resolve(&self, ctx: &Ctx<'_>, job: &Job<'_>, id: Value) -> std::result::Result<Done, Failed> {
        let shown = id.as_str().map_or_else(|| id.to_string(), str::to_string);
        let message = self.recovery_message.render(&html_event(job.event));
        let posted = self.post(ctx, "/api/v1/messages", json!({"incident_id": id, "message": message}))?;
        let refs = id.as_u64().map(id_refs).unwrap_or_default();
        if !self.close_on_resolve {
            return Ok(Done { detail: format!("(incident {shown}: recovery posted; {})", posted.timing), refs });
        }
        let path = format!("/api/v1/incidents/{shown}/status");
        let detail = match self.post(ctx, &path, json!({"status": "close"})) {
            Ok(closed) => format!("(incident {shown}: recovery posted and closed; {}, {})", posted.timing, closed.timing),
            Err(failed) => {
                ctx.log.warn(format!(
                    "incident {shown}: the recovery message was posted but closing the incident failed: {} \
                     (close_on_resolve uses an endpoint Reactio does not document)",
                    failed.reason()
                ));
                format!("(incident {shown}: recovery posted, not closed; {})", posted.timing)
            }
        };
        Ok(Done { detail, refs })
    }

    /// The incident's create request is still spooled, so its id is not known: spool the
    /// recovery message behind it, its `incident_id` filled in from the create's answer when
    /// the spool delivers them (exit 75 now, like any spooled request).
    fn resolve_later(&self, ctx: &Ctx<'_>, job: &Job<'_>) -> std::result::Result<Done, Failed> {
        let message = self.recovery_message.render(&html_event(job.event));
        let req = self.request("/api/v1/messages", json!({"incident_id": null, "message": message}));
        let why = "the incident's create request is still spooled, so the recovery waits for its id";
        Failed::from_delivery(ctx.send_later(&req, &[("/incident_id", INCIDENT_ID)], why))?;
        Ok(Done::default())
    }

    /// The `POST /api/v1/incidents` body for `event`.
    fn incident_body(&self, event: &Event, key: &str) -> Value {
        let name = self.name.render(event).split_whitespace().collect::<Vec<_>>().join(" ");
        let name = if name.is_empty() { key } else { &name };
        let mut b = Map::new();
        b.insert("name".into(), truncate_chars(name, MAX_NAME_CHARS).into());
        b.insert("status".into(), word(&self.status).into());
        for (k, v) in &self.classification {
            b.insert((*k).into(), v.clone().into());
        }
        if !self.topics.is_empty() {
            b.insert("topics".into(), self.topics.clone().into());
        }
        if let Some(t) = &self.notification_text {
            b.insert("notification_text".into(), t.render(event).into());
            b.insert("notification_call".into(), self.notification_call.into());
        }
        if let Some(m) = &self.message {
            let m = m.render(&html_event(event));
            if !m.is_empty() {
                b.insert("message".into(), m.into());
            }
        }
        Value::Object(b)
    }

    /// A JSON POST to `{base}{path}` with the API key.
    fn request(&self, path: &str, body: Value) -> Request {
        let base = self.base.as_deref().unwrap_or("https://{organization}.reactio.jp");
        let mut req = Request::post_json(format!("{base}{path}"), body);
        req.headers.push(("X-Api-Key".into(), self.api_key.clone().unwrap_or_default()));
        req.headers.push(("Accept".into(), "application/json".into()));
        req
    }

    /// Send one JSON POST to `{base}{path}`, timed; request and response go to the debug log
    /// (credentials masked).
    fn post(&self, ctx: &Ctx<'_>, path: &str, body: Value) -> std::result::Result<Posted, Failed> {
        let req = self.request(path, body);
        let shown = req.redacted(&ctx.log.secrets());
        let headers: Vec<String> = shown.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        ctx.log.debug(format!("POST {} ({})", shown.url, headers.join(", ")));

        let started = Instant::now();
        let delivery = ctx.send(&req, &classify);
        let took = fmt_ms(started.elapsed());
        let attempts = match &delivery {
            Delivery::Delivered { attempts, .. } => *attempts,
            _ => 0,
        };
        let response = Failed::from_delivery(delivery).inspect_err(|_| ctx.log.debug(format!("POST {path} failed after {took}")))?;
        if ctx.dry_run {
            return Ok(Posted { response, timing: format!("POST {path}") });
        }
        ctx.log.debug(format!("POST {path} answered HTTP {} in {took}: {}", response.status, truncate_chars(&response.body, 500)));
        let retries = if attempts > 1 { format!(" after {attempts} attempts") } else { String::new() };
        let timing = format!("POST {path} {} in {took}{retries}", response.status);
        Ok(Posted { response, timing })
    }
}

/// The stored Reactio incident id, when the incident is open and one was remembered.
fn stored_incident(job: &Job<'_>) -> Option<u64> {
    job.previous.filter(|p| p.open).and_then(|p| p.refs.get(INCIDENT_ID)).and_then(incident_id)
}

/// An incident id: a positive integer, or a string holding one.
fn incident_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|id| *id > 0)
}

fn id_refs(id: u64) -> Map<String, Value> {
    let mut refs = Map::new();
    refs.insert(INCIDENT_ID.into(), id.into());
    refs
}

/// `value` must be one of `allowed` (exit 78 naming `reactio.<setting>`).

/// A DNS label: letters, digits and inner hyphens, at most 63 characters.
fn is_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Text for a Reactio timeline message, which is limited HTML (the official client's example
/// posts `<p>…</p><br />`): `&`, `<`, `>`, `"` escaped so that check output shows as written,
/// line breaks as `<br />`.
pub fn html_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let s = s.replace("\r\n", "\n");
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br />"),
            c => out.push(c),
        }
    }
    out
}

/// `event` with every text a template can insert made safe for a timeline message, so that
/// the operator's template may hold HTML while the event's values are shown as text.
fn html_event(event: &Event) -> Event {
    let mut e = event.clone();
    e.output = html_text(e.output.trim_end());
    e.entity = html_text(&e.entity);
    e.check = html_text(&e.check);
    e.namespace = e.namespace.as_deref().map(html_text);
    e.command = e.command.as_deref().map(html_text);
    for v in e.labels.values_mut() {
        *v = html_text(v);
    }
    e
}

/// The reason a failed delivery carries.
/// 2xx delivered; 401/400/other 4xx permanent, 429 and 5xx retryable, each explained with
/// Reactio's `type`, `message` and, for `validation_error`, the `errors[].field` and `code`s:
/// `HTTP 400 validation_error: validation error (notification_text: missing_field)`.
fn classify(resp: &Response) -> Class {
    let explain = || {
        let v: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
        let text = |v: &Value, k: &str| truncate_chars(v.get(k).and_then(Value::as_str).unwrap_or("").trim(), 200);
        let kind = text(&v, "type");
        let message = text(&v, "message");
        let fields: Vec<String> = v
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| errors.iter().take(20).map(|e| format!("{}: {}", text(e, "field"), text(e, "code"))).collect())
            .unwrap_or_default();
        let mut out = format!("HTTP {}", resp.status);
        if !kind.is_empty() {
            out.push(' ');
            out.push_str(&kind);
        }
        if !message.is_empty() {
            out.push_str(": ");
            out.push_str(&message);
        }
        if !fields.is_empty() {
            out.push_str(&format!(" ({})", fields.join(", ")));
        }
        out
    };
    classify_status_with(resp.status, explain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::event::parse_json;
    use common::state::Incident;

    fn section(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn provider(v: Value) -> Result<Reactio> {
        let m = section(v);
        Reactio::from_settings(m.clone(), &config::typed("reactio", m)?)
    }

    fn event(output: &str) -> Event {
        let e = json!({"client": {"name": "web-01"}, "check": {"name": "check_disk", "status": 2, "output": output}});
        parse_json(e.to_string().as_bytes(), None).expect("event")
    }

    #[test]
    fn organization_becomes_the_base_url_and_api_url_overrides_it() {
        let p = provider(json!({"api_key": "k", "organization": "example"})).expect("provider");
        assert_eq!(p.base.as_deref(), Some("https://example.reactio.jp"));
        assert!(p.ready().is_ok());
        let p = provider(json!({"api_key": "k", "organization": "example", "api_url": "http://127.0.0.1:9/"})).expect("provider");
        assert_eq!(p.base.as_deref(), Some("http://127.0.0.1:9"));
        let err = provider(json!({"organization": "https://example.reactio.jp"})).expect_err("full URL");
        assert_eq!(err.code, Code::Config);
        assert!(err.to_string().contains("reactio.organization"), "{err}");
        let err = provider(json!({"api_key": "k"})).expect("provider").ready().expect_err("no organization");
        assert!(err.to_string().contains("reactio.organization"), "{err}");
        let err = provider(json!({"organization": "example"})).expect("provider").ready().expect_err("no key");
        assert!(err.to_string().contains("REACTIO_API_KEY"), "{err}");
    }

    #[test]
    fn enums_are_checked_against_the_spec() {
        for (k, bad) in [("status", "closed"), ("detection", "human"), ("cause", "cosmic-rays"), ("point", "disk"), ("scale", "huge")] {
            let err = provider(json!({ k: bad })).expect_err(k);
            assert_eq!(err.code, Code::Config);
            assert!(err.to_string().contains(&format!("reactio.{k}")), "{err}");
        }
        let p = provider(json!({"status": "pend", "detection": "system", "cause": "bug", "point": "os", "scale": "whole"})).expect("valid");
        let b = p.incident_body(&event("x"), "k");
        assert_eq!((b["status"].as_str(), b["point"].as_str(), b["scale"].as_str()), (Some("pend"), Some("os"), Some("whole")));
        assert!(provider(json!({"notification_call": "yes"})).is_err());
        assert!(provider(json!({"name_template": "{host}"})).is_err());
    }

    #[test]
    fn incident_name_is_cut_on_a_character_boundary() {
        let p = provider(json!({})).expect("provider");
        let b = p.incident_body(&event(&"ディスク".repeat(1200)), "web-01/check_disk");
        let name = b["name"].as_str().unwrap();
        assert_eq!(name.chars().count(), MAX_NAME_CHARS);
        assert!(name.starts_with("web-01/check_disk ディスク") && name.ends_with('…'), "{name}");
        let b = p.incident_body(&event("short"), "k");
        assert_eq!(b["name"], "web-01/check_disk short");
    }

    #[test]
    fn incident_body_defaults() {
        let p = provider(json!({})).expect("provider");
        let b = p.incident_body(&event("DISK CRITICAL\n/ 95%\n"), "web-01/check_disk");
        assert_eq!(
            b,
            json!({"name": "web-01/check_disk DISK CRITICAL / 95%", "status": "open",
                   "notification_text": "対応をお願いします", "notification_call": false})
        );
        let p = provider(json!({"notification_text": "", "topics": "原因調査,復旧作業", "message": "<p>{output}</p>"})).expect("provider");
        let b = p.incident_body(&event("a < b\nc & d"), "k");
        assert_eq!(b.get("notification_text"), None);
        assert_eq!(b.get("notification_call"), None);
        assert_eq!(b["topics"], json!(["原因調査", "復旧作業"]));
        assert_eq!(b["message"], "<p>a &lt; b<br />c &amp; d</p>");
    }

    #[test]
    fn stored_id_only_counts_while_open() {
        let e = event("x");
        let id_of = |inc: &Incident| stored_incident(&Job { action: Action::Trigger, event: &e, incident_key: "k", previous: Some(inc) });
        let mut inc = Incident { open: true, ..Incident::default() };
        inc.refs.insert(INCIDENT_ID.into(), json!(123));
        assert_eq!(id_of(&inc), Some(123));
        inc.refs.insert(INCIDENT_ID.into(), json!("456"));
        assert_eq!(id_of(&inc), Some(456));
        inc.open = false;
        assert_eq!(id_of(&inc), None);
        assert_eq!(incident_id(&json!(0)), None);
        assert_eq!(incident_id(&json!(null)), None);
    }

    #[test]
    fn acknowledge_is_unsupported_and_severities_default_to_critical() {
        let p = provider(json!({})).expect("provider");
        assert_eq!(p.unsupported(Action::Acknowledge).as_deref(), Some("Reactio has no acknowledge"));
        assert_eq!(p.unsupported(Action::Trigger), None);
        let c: Common = config::typed("reactio", Reactio::defaults()).expect("common");
        assert_eq!(c.severities, vec![common::config::Severity::Critical]);
    }

    #[test]
    fn classification_explains_reactio_errors() {
        let r = |status, body: &str| Response { status, body: body.into(), retry_after: None };
        assert_eq!(
            classify(&r(400, r#"{"errors":[{"field":"notification_text","code":"missing_field"}],"type":"validation_error","message":"validation error"}"#)),
            Class::Permanent("HTTP 400 validation_error: validation error (notification_text: missing_field)".into())
        );
        assert_eq!(
            classify(&r(401, r#"{"type":"authentication_error","message":"invalid api key"}"#)),
            Class::Permanent("HTTP 401 authentication_error: invalid api key".into())
        );
        assert_eq!(
            classify(&r(500, r#"{"type":"internal_server_error","message":"Internal Server Error"}"#)),
            Class::Retryable("HTTP 500 internal_server_error: Internal Server Error".into())
        );
        assert_eq!(classify(&r(502, "<html>bad gateway</html>")), Class::Retryable("HTTP 502".into()));
        assert_eq!(classify(&r(201, "{}")), Class::Delivered);
    }

    #[test]
    fn html_text_escapes_and_breaks_lines() {
        assert_eq!(html_text("ディスク <95%> \"x\" & y\r\nz"), "ディスク &lt;95%&gt; &quot;x&quot; &amp; y<br />z");
    }
}
