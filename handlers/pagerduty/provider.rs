//! PagerDuty Events API v2: what request an event becomes, and what a response means.
//!
//! Contract: `POST {api_url}/v2/enqueue`, JSON, no auth header — the body's `routing_key` (the
//! integration key, 32 characters) is the credential. `dedup_key` ≤ 255 characters;
//! `payload.summary` ≤ 1024; `payload.severity` one of `critical|error|warning|info`. 202 means
//! accepted; 400 means the event is invalid and must never be retried; 429 (about 120
//! events/min per routing key) and 5xx are retried. Source: PagerDuty Events API v2 OpenAPI
//! (`../shared/specs/pagerduty-events-v2.openapi.json`) and its notes in `specs/README.md`.

use std::collections::BTreeMap;

use common::config::{self, Common, de};
use common::event::Event;
use common::exit::{Code, Result};
use common::filter::Action;
use common::http::{Request, Response, classify_json_api_with, http_url};
use common::outcome::Outcome;
use common::pipeline::{Ctx, Done, Job, Provider};
use common::state::RepeatedTrigger;
use common::state::file::fnv1a;
use common::template::{Template, prefix_utf16, says_nothing, truncate_chars, utf16_len};
use common::trust::Trust;
use common::unread::Reader;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// `{api_url}/v2/enqueue`. An `api_url` that is the whole endpoint already (PagerDuty's docs
/// give `https://events.pagerduty.com/v2/enqueue`, and so do most integrations' settings) is
/// taken as it is rather than made `…/v2/enqueue/v2/enqueue`, which PagerDuty would answer 404
/// for every page.
fn enqueue_url(api_url: &str) -> String {
    let base = api_url.trim_end_matches('/');
    match base.strip_suffix("/v2/enqueue") {
        Some(_) => base.to_string(),
        None => format!("{base}/v2/enqueue"),
    }
}

/// Default Events API base URL; the handler posts to `{api_url}/v2/enqueue`.
pub const DEFAULT_API_URL: &str = "https://events.pagerduty.com";
/// Maximum `payload.summary` length: 1024 characters (PagerDuty's Events API v2 docs), counted
/// here in UTF-16 code units ([`common::template::utf16_len`]). PagerDuty does not say how it
/// counts; UTF-16 units are never fewer than characters (an emoji is two), so a summary within
/// the limit counted either way is never refused for it (a 400 would cost the page).
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// Maximum `dedup_key` length: 255 characters (PagerDuty's Events API v2 docs), counted here in
/// UTF-16 code units as [`MAX_SUMMARY_CHARS`] is: a key of 255 characters that holds emoji is up
/// to 510 units, and a key PagerDuty refuses is a trigger refused for good (400), the page lost.
/// A key within the limit counted either way (every key without characters outside the BMP)
/// is sent unchanged.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;
/// Longest check output carried in `custom_details.output`, in characters. PagerDuty refuses
/// an event over 512 KB (`specs/README.md`) while an event on stdin may be 1 MiB, so the
/// output is cut (with `…`): 32 768 characters are at most 192 KiB of JSON even when every one
/// is a `\uXXXX` escape, which leaves room for the rest of the event.
pub const MAX_DETAILS_OUTPUT_CHARS: usize = 32_768;
/// Largest request body sent, in bytes, routing key included: PagerDuty refuses an event over
/// 512 KB (`specs/README.md`), and a refusal is final. 500 000 leaves room for the routing key
/// whichever way "KB" is counted.
pub const MAX_EVENT_BYTES: usize = 500_000;
/// The default `summary_template`; also the summary of an event for which the configured one
/// renders blank ([`PagerDuty::payload`]).
pub const DEFAULT_SUMMARY_TEMPLATE: &str = "{entity}/{check}: {output}";
/// `payload.source` of an event whose entity name is blank (whitespace, invisible characters).
pub const UNNAMED_SOURCE: &str = "(unnamed entity)";
/// Length of a routing (integration) key.
pub const ROUTING_KEY_CHARS: usize = 32;

/// The `pagerduty` settings section.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct Settings {
    /// Integration key (`api_key`, the Ruby handler's name, is folded in before parsing).
    routing_key: Option<String>,
    /// Team whose `pagerduty.<team>.routing_key` (or `api_key`) is used.
    pager_team: Option<String>,
    dedup_key_template: Option<String>,
    /// The Ruby handler's `incident_key_prefix`: its key was the prefix, then
    /// `{source or client}/{check}` (sensu-plugins-pagerduty bin/handler-pagerduty.rb). Without
    /// a `dedup_key_template` the key is the prefix, then `{incident_key}`, so that alerts the
    /// Ruby handler opened are still resolved by their recoveries.
    incident_key_prefix: Option<String>,
    summary_template: String,
    component: Option<String>,
    group: Option<String>,
    class: Option<String>,
    client: Option<String>,
    client_url: Option<String>,
    /// Status word or code → PagerDuty severity.
    severity_map: BTreeMap<String, String>,
    #[serde(deserialize_with = "de::boolean")]
    include_history: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            routing_key: None,
            pager_team: None,
            dedup_key_template: None,
            incident_key_prefix: None,
            summary_template: DEFAULT_SUMMARY_TEMPLATE.into(),
            component: Some("{check}".into()),
            group: None,
            class: None,
            client: None,
            client_url: None,
            severity_map: BTreeMap::new(),
            include_history: true,
        }
    }
}

/// The PagerDuty provider, built from settings.
#[derive(Debug)]
pub struct PagerDuty {
    routing_key: Option<String>,
    /// Where the routing key was looked for, for the "missing" message.
    key_hint: String,
    enqueue_url: String,
    dedup_key: Option<Template>,
    summary: Template,
    component: Option<Template>,
    group: Option<Template>,
    class: Option<Template>,
    client: Option<String>,
    /// An absolute http(s) URL, or none.
    client_url: Option<String>,
    /// The `client_url` setting was no such URL, so it is left out (and said so per trigger).
    client_url_left_out: bool,
    severity_map: BTreeMap<u32, String>,
    include_history: bool,
}

/// The names a routing key may go by in a settings section or a team object: `routing_key`,
/// and the Ruby handler's `api_key` and `integration_key`, which `routing_key` wins over.
const ROUTING_KEY_NAMES: [&str; 3] = ["routing_key", "api_key", "integration_key"];

const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// One Events API v2 event as the spool keeps it: the request body without its
/// `routing_key`, which is taken from the settings when the request is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Enqueue(pub Value);

impl Provider for PagerDuty {
    const NAME: &'static str = "pagerduty";
    type Payload = Enqueue;

    /// A trigger with the `dedup_key` of an open alert is merged into it ("Identifies the alert
    /// to trigger, acknowledge, or resolve", Events API v2), and a resolve for an unknown key is
    /// accepted: a trigger record lost in a machine crash costs a merged repeat.
    const REPEATED_TRIGGER: RepeatedTrigger = RepeatedTrigger::Merged;

    /// The routing key, under each of its names: an event that sets it (a Zabbix user's
    /// `SENDTO`) pages that service, an incident of its own in the ledger.
    const DESTINATION: &'static [&'static str] = &ROUTING_KEY_NAMES;

    /// The settings struct; the routing key's other names (folded into `routing_key` before
    /// it is read); and the teams `pager_team` picks from: objects holding a routing key.
    const READERS: &'static [Reader] = &[Reader::of::<Settings>(), Reader::Names(&ROUTING_KEY_NAMES), Reader::Groups(&ROUTING_KEY_NAMES)];

    /// The routing key, the team and the dedup key come from the operator or the check; an
    /// entity (the monitored host) may word and label its own alerts only. `client_url` is the
    /// link PagerDuty shows as "View in {client}": the operator's or the check's, never a link
    /// of the monitored host's choosing.
    const SETTINGS: &'static [(&'static str, Trust)] = &[
        ("routing_key", Trust::Check),
        ("api_key", Trust::Check),
        ("integration_key", Trust::Check),
        ("pager_team", Trust::Check),
        ("dedup_key_template", Trust::Check),
        ("incident_key_prefix", Trust::Check),
        ("severity_map", Trust::Check),
        ("summary_template", Trust::Entity),
        ("component", Trust::Entity),
        ("group", Trust::Entity),
        ("class", Trust::Entity),
        ("client", Trust::Entity),
        ("client_url", Trust::Check),
        ("include_history", Trust::Entity),
    ];

    fn from_settings(section: &Map<String, Value>, common: &Common) -> Result<Self> {
        // The Ruby handler called it `api_key`; `routing_key` wins when both are set.
        let mut section = std::borrow::Cow::Borrowed(section);
        for alias in &ROUTING_KEY_NAMES[1..] {
            if section.contains_key(*alias) {
                let owned = section.to_mut();
                if let Some(v) = owned.remove(*alias) {
                    owned.entry("routing_key").or_insert(v);
                }
            }
        }
        let teams = &*section;
        let s: Settings = config::typed("pagerduty", teams)?;
        let (routing_key, key_hint) = match &s.pager_team {
            Some(team) => {
                // The team's name as the errors below quote it: whole when short, else only its
                // length (a check may name any team, as long and as odd as it likes).
                let named = config::shown(team);
                let team_at = if config::shown_whole(team) {
                    format!("`pagerduty.{team}`")
                } else {
                    "such a team (an object of the section)".to_string()
                };
                let t = teams.get(team).and_then(Value::as_object).ok_or_else(|| {
                    Code::Config
                        .msg(format!("settings `pagerduty.pager_team` is {named} but there is no {team_at}; add it with a `routing_key`"))
                })?;
                // Only an object holding a key is a team: `pager_team` naming another object of
                // the section (`severity_map`) or a team without a key is refused here, so that
                // one from an event is ignored (the operator's route is used) instead of costing
                // the page at `ready`.
                let key = ROUTING_KEY_NAMES
                    .iter()
                    .find_map(|k| t.get(*k).and_then(Value::as_str))
                    .filter(|k| !k.trim().is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Code::Config.msg(format!(
                            "settings `pagerduty.pager_team` is {named} but {team_at} holds no routing key; add a `routing_key` to it"
                        ))
                    })?;
                (Some(key), format!("`pagerduty.{team}.routing_key` (pager_team {team})"))
            }
            None => {
                (s.routing_key.clone(), "`pagerduty.routing_key` in a settings file, PAGERDUTY_ROUTING_KEY, or --routing-key".to_string())
            }
        };
        let routing_key = routing_key.filter(|k| !k.trim().is_empty()).map(|k| k.trim().to_string());

        let mut severity_map: BTreeMap<u32, String> =
            [(1, "warning"), (2, "critical"), (3, "error")].into_iter().map(|(k, v)| (k, v.to_string())).collect();
        for (k, v) in &s.severity_map {
            let status = match k.as_str() {
                "warning" => 1,
                "critical" => 2,
                "unknown" => 3,
                n => n.parse::<u32>().map_err(|_| {
                    Code::Config.msg(format!(
                        "settings `pagerduty.severity_map`: key {} must be warning, critical, unknown or a status code",
                        config::shown(n)
                    ))
                })?,
            };
            if !SEVERITIES.contains(&v.as_str()) {
                return Err(Code::Config.msg(format!(
                    "settings `pagerduty.severity_map.{k}`: {} is not one of critical, error, warning, info",
                    config::shown(v)
                )));
            }
            severity_map.insert(status, v.clone());
        }
        let opt = |name: &str, t: &Option<String>| -> Result<Option<Template>> {
            t.as_deref().filter(|s| !s.is_empty()).map(|src| Template::parse(&format!("pagerduty.{name}"), src)).transpose()
        };
        // `client_url` is `format: url` in the spec: one that is no URL could have PagerDuty
        // refuse every trigger (400, never retried). It is left out, with a warning per
        // trigger ([`Provider::act`]), never costing a page: it is only a link. One with
        // characters beyond RFC 3986 goes out percent-encoded ([`http_url`]).
        let (client_url, client_url_left_out) = match s.client_url.as_deref().map(http_url) {
            Some(None) => (None, true),
            Some(url) => (url, false),
            None => (None, false),
        };
        let api_url = common.api_url.clone().unwrap_or_else(|| DEFAULT_API_URL.to_string());
        Ok(PagerDuty {
            routing_key,
            key_hint,
            enqueue_url: enqueue_url(&api_url),
            dedup_key: match (&s.dedup_key_template, s.incident_key_prefix.as_deref().filter(|p| !p.is_empty())) {
                (None, Some(prefix)) => Some(Template::parse(
                    "pagerduty.incident_key_prefix",
                    &format!("{}{{incident_key}}", prefix.replace('{', "{{").replace('}', "}}")),
                )?),
                _ => opt("dedup_key_template", &s.dedup_key_template)?,
            },
            summary: Template::parse("pagerduty.summary_template", &s.summary_template)?,
            component: opt("component", &s.component)?,
            group: opt("group", &s.group)?,
            class: opt("class", &s.class)?,
            client: s.client,
            client_url,
            client_url_left_out,
            severity_map,
            include_history: s.include_history,
        })
    }

    fn secrets(&self) -> Vec<String> {
        self.routing_key.iter().cloned().collect()
    }

    fn ready(&self) -> Result<()> {
        match &self.routing_key {
            None => Err(Code::Config.msg(format!("no PagerDuty routing key: set {}", self.key_hint))),
            Some(k) if k.chars().count() != ROUTING_KEY_CHARS => Err(Code::Config.msg(format!(
                "the PagerDuty routing key from {} has {} characters; an Events API v2 integration key has {ROUTING_KEY_CHARS}",
                self.key_hint,
                k.chars().count()
            ))),
            Some(_) => Ok(()),
        }
    }

    fn incident_key(&self, event: &Event) -> String {
        dedup_key(&common::template::incident_key(self.dedup_key.as_ref(), event))
    }

    fn template_notes(&self, event: &Event) -> Vec<String> {
        let mut notes = Vec::new();
        if self.dedup_key.as_ref().is_some_and(|t| t.render_telling(event).is_none()) {
            notes.push(says_nothing("pagerduty.dedup_key_template", "the default key `{incident_key}`"));
        }
        if event.status != 0 && self.summary.render_telling(event).is_none() {
            notes.push(says_nothing("pagerduty.summary_template", &format!("the default `{DEFAULT_SUMMARY_TEMPLATE}`")));
        }
        notes
    }

    /// A Zabbix `SENDTO` of 32 letters and digits is a routing key (one media type, many
    /// teams); anything else leaves the settings' `routing_key`. Errors: 20 to 44 letters and
    /// digits, a routing key with characters missing or too many (a typo in a user's media
    /// would otherwise page the default service without a word).
    fn send_to(value: &str) -> std::result::Result<Option<(&'static str, Value)>, String> {
        let chars = value.chars().count();
        let alphanumeric = value.chars().all(|c| c.is_ascii_alphanumeric());
        if alphanumeric && chars == ROUTING_KEY_CHARS {
            return Ok(Some(("routing_key", Value::from(value))));
        }
        if alphanumeric && (20..=44).contains(&chars) {
            return Err(format!(
                "Zabbix SENDTO holds {chars} letters and digits, not a routing key's {ROUTING_KEY_CHARS} (a typo in the user's media \"Send to\"?): paging with the routing_key of the settings"
            ));
        }
        Ok(None)
    }

    fn classify(&self, _payload: &Enqueue, resp: &Response) -> Outcome {
        classify(resp)
    }

    /// Never: the Events API sends no credential in a header and refuses a routing key with a
    /// 400 (the spec), so a 401 comes from something in front of it (a wrong `api_url`, a
    /// proxy), this machine's configuration ([`classify`]): kept for the fix, also for an
    /// entry that carries its own routing key (a Zabbix SENDTO, a check's), which no 401 refused.
    fn credentials_refused(_resp: &Response) -> bool {
        false
    }

    /// `POST {api_url}/v2/enqueue` with the routing key in force now.
    fn request(&self, payload: &Enqueue, _refs: &Map<String, Value>) -> std::result::Result<Request, String> {
        let mut body = payload.0.clone();
        if let Some(obj) = body.as_object_mut() {
            obj.insert("routing_key".into(), self.routing_key.clone().unwrap_or_default().into());
        }
        Ok(Request::post_json(self.enqueue_url.clone(), body))
    }

    /// The resolve of the trigger's `dedup_key` ("Identifies the alert to trigger, acknowledge,
    /// or resolve", Events API v2; a resolve of an alert that is not open is accepted and
    /// ignored).
    fn recovery_of(&self, trigger: &Enqueue) -> Option<Enqueue> {
        let key = trigger.0.get("dedup_key").and_then(Value::as_str)?;
        (trigger.0.get("event_action").and_then(Value::as_str) == Some("trigger"))
            .then(|| Enqueue(json!({"event_action": "resolve", "dedup_key": key})))
    }

    fn act(&self, ctx: &Ctx<'_, Self>, job: &Job<'_>) -> Outcome<Done> {
        if self.client_url_left_out && job.action == Action::Trigger {
            ctx.log.warn("`pagerduty.client_url` (from the settings, or an override the event carried) is not an absolute http(s) URL (the Events API's client_url is a URL): left out of the trigger");
        }
        // The key sent, not the answer's: an answer never names what the line says was sent.
        ctx.send(&Enqueue(self.body(job, common::clock::now_unix())))
            .map(|_| Done { detail: format!("(dedup_key {})", job.incident_key), refs: Map::new() })
    }
}

impl PagerDuty {
    /// The Events API v2 request body for `job`, without the routing key. `now` (Unix
    /// seconds) stamps events without a check time.
    fn body(&self, job: &Job<'_>, now: u64) -> Value {
        let mut body = json!({
            "event_action": job.action.name(),
            "dedup_key": job.incident_key,
        });
        if job.action == Action::Trigger {
            body["payload"] = self.payload(job.event, now);
            if let Some(c) = &self.client {
                body["client"] = c.clone().into();
            }
            if let Some(u) = &self.client_url {
                body["client_url"] = u.clone().into();
            }
            // `links[].href` is `format: url` (the spec's Links schema): a link back that is no
            // URL (a Zabbix `{TRIGGER.URL}` holding words) is left out, not sent for PagerDuty
            // to refuse the whole event; `custom_details.url` still carries it. One with
            // characters beyond RFC 3986 (`a|b`) goes out percent-encoded ([`http_url`]).
            if let Some(url) = job.event.url.as_deref().and_then(http_url) {
                body["links"] = json!([{"href": url, "text": format!("View in {}", job.event.format.name())}]);
            }
        }
        fit(&mut body, MAX_EVENT_BYTES - ROUTING_KEY_CHARS - 20);
        body
    }

    /// The trigger's `payload`. `summary` is required (Payload schema) and PagerDuty refuses a
    /// blank one for good, so a `summary_template` that says nothing of `e`
    /// ([`Template::render_telling`]: a label it lacks; an entity annotation may set the
    /// template) gives way to
    /// [`DEFAULT_SUMMARY_TEMPLATE`], never costing the page.
    fn payload(&self, e: &Event, now: u64) -> Value {
        let summary = self.summary.render_or(e, &Template::constant(DEFAULT_SUMMARY_TEMPLATE));
        let summary_line = summary.split_whitespace().collect::<Vec<_>>().join(" ");
        // When the check ran, as the source says; never after receipt (a host's clock far
        // ahead, or a forged `check.executed`, must not put the alert in the year 9999).
        let ts = e.timestamp.and_then(|t| u64::try_from(t).ok()).filter(|t| *t > 0).map_or(now, |t| common::clock::not_after(t, now));
        let mut details = Map::new();
        details.insert("output".into(), truncate_chars(&e.output, MAX_DETAILS_OUTPUT_CHARS).into());
        details.insert("status".into(), e.status.into());
        details.insert("occurrences".into(), e.occurrences.into());
        if self.include_history && !e.history.is_empty() {
            details.insert("history".into(), e.history.clone().into());
        }
        if let Some(c) = &e.command {
            details.insert("command".into(), c.clone().into());
        }
        if !e.labels.is_empty() {
            details.insert("labels".into(), json!(e.labels));
        }
        if let Some(ns) = &e.namespace {
            details.insert("namespace".into(), ns.clone().into());
        }
        if let Some(a) = &e.address {
            details.insert("address".into(), a.clone().into());
        }
        if let Some(u) = &e.url {
            details.insert("url".into(), u.clone().into());
        }
        let mut p = json!({
            "summary": common::template::truncate_utf16(&summary_line, MAX_SUMMARY_CHARS),
            // Required, and PagerDuty refuses a blank one for good: a host that named itself
            // "  " must not silence its own pages.
            "source": if common::template::is_blank(&e.entity) { UNNAMED_SOURCE } else { e.entity.as_str() },
            "severity": e.severity.as_deref().filter(|s| SEVERITIES.contains(s))
                .or_else(|| self.severity_map.get(&e.status.min(3)).map(String::as_str))
                .unwrap_or("error"),
            "timestamp": common::clock::rfc3339(ts),
            "custom_details": details,
        });
        for (name, t) in [("component", &self.component), ("group", &self.group), ("class", &self.class)] {
            if let Some(t) = t {
                let v = t.render(e);
                if !v.is_empty() {
                    p[name] = v.into();
                }
            }
        }
        p
    }
}

/// A dedup key within PagerDuty's 255 characters, counted in UTF-16 units
/// ([`MAX_DEDUP_KEY_CHARS`]): longer keys keep a prefix and end in `~` plus a 16-hex-digit hash
/// of the whole key, so distinct long keys stay distinct.
pub fn dedup_key(rendered: &str) -> String {
    if utf16_len(rendered) <= MAX_DEDUP_KEY_CHARS {
        return rendered.to_string();
    }
    let prefix = prefix_utf16(rendered, MAX_DEDUP_KEY_CHARS - 17);
    format!("{prefix}~{:016x}", fnv1a(rendered.as_bytes()))
}

/// Shrink `body` until its JSON is at most `max` bytes: every string, object key, array and
/// object in it except `event_action` and `dedup_key` is cut to `n` characters or items, `n`
/// halving from 32 768 until it fits (arrays keep their last items: the newest history).
///
/// Most of an event is written on the monitored host (the entity name in `source`, Sensu Go
/// entity labels, a Sensu 1.x check's `command`, the check name in `component`, the history a
/// result carries), and one such value over PagerDuty's 512 KB made the event refused for good
/// (HTTP 400): the page was lost. A body that fits is left as it is.
fn fit(body: &mut Value, max: usize) {
    fn size(v: &Value) -> usize {
        serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
    }
    fn cut(v: &mut Value, n: usize) {
        match v {
            Value::String(s) if s.chars().count() > n => *s = truncate_chars(s, n),
            Value::Array(items) => {
                let extra = items.len().saturating_sub(n);
                items.drain(..extra);
                items.iter_mut().for_each(|i| cut(i, n));
            }
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (k, mut item) in entries.into_iter().take(n) {
                    cut(&mut item, n);
                    map.insert(if k.chars().count() > n { truncate_chars(&k, n) } else { k }, item);
                }
            }
            _ => {}
        }
    }
    // 64 characters or items at each of the body's few levels is far below `max`, and keeps
    // the short fixed values (`severity`, `timestamp`) whole.
    let mut n = 32_768;
    while n >= 64 && size(body) > max {
        if let Value::Object(top) = body {
            for (_, v) in top.iter_mut().filter(|(k, _)| !matches!(k.as_str(), "event_action" | "dedup_key")) {
                cut(v, n);
            }
        }
        n /= 2;
    }
}

/// 202 delivered; 400 permanent with PagerDuty's `errors`; 429 and 5xx retryable; other 4xx
/// permanent.
fn classify(resp: &Response) -> Outcome {
    let explain = || {
        let v: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
        let msg = v.get("message").and_then(Value::as_str).unwrap_or("");
        let errors: Vec<&str> =
            v.get("errors").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        match (msg.is_empty(), errors.is_empty()) {
            (true, true) => format!("HTTP {}", resp.status),
            (false, true) => format!("HTTP {}: {msg}", resp.status),
            (_, false) => format!("HTTP {}: {msg} ({})", resp.status, errors.join("; ")),
        }
    };
    match resp.status {
        // Not one of the Events API's answers (202, 400, 429, 5xx; the spec): the request did
        // not reach it. A wrong `api_url` (404, 405) or a proxy or firewall in between (401,
        // 403, 407) is this machine's configuration: kept for the flush after the fix (exit
        // 78), never dropped as if PagerDuty had refused the event (as a 400 is).
        401 | 403..=405 | 407 | 410 => Outcome::Broken(format!(
            "{}, which is no answer of PagerDuty's Events API (202, 400, 429 or 5xx): check api_url and any proxy",
            explain()
        )),
        _ => classify_json_api_with(resp, explain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::event::parse_json;
    use common::http::Body;

    fn provider(section: Value) -> PagerDuty {
        let Value::Object(m) = section else { panic!() };
        PagerDuty::from_settings(&m, &config::typed("pagerduty", &m).unwrap()).unwrap()
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn api_url_is_a_base_or_the_whole_endpoint() {
        for (api_url, url) in [
            ("https://events.pagerduty.com", "https://events.pagerduty.com/v2/enqueue"),
            ("https://events.pagerduty.com/", "https://events.pagerduty.com/v2/enqueue"),
            ("https://events.pagerduty.com/v2/enqueue", "https://events.pagerduty.com/v2/enqueue"),
            ("https://events.pagerduty.com/v2/enqueue/", "https://events.pagerduty.com/v2/enqueue"),
            ("http://relay:8080/pd", "http://relay:8080/pd/v2/enqueue"),
        ] {
            assert_eq!(enqueue_url(api_url), url, "{api_url}");
        }
    }

    #[test]
    fn trigger_body_has_payload() {
        let p = provider(json!({"routing_key": KEY}));
        let e = parse_json(
            br#"{"client":{"name":"web-01"},"check":{"name":"check_disk","status":2,"output":"DISK CRITICAL\n/ 95%","executed":1460172827,"history":["0","2"],"command":"check-disk"}}"#,
            None,
        )
        .unwrap();
        let key = p.incident_key(&e);
        let job = Job { action: Action::Trigger, event: &e, incident_key: &key, previous: None, event_time: 1 };
        let b = p.body(&job, 1_460_200_000);
        assert_eq!(b.get("routing_key"), None, "the spool keeps no credential");
        let Body::Json(sent) = p.request(&Enqueue(b.clone()), &Map::new()).unwrap().body else { panic!("JSON body") };
        assert_eq!(sent["routing_key"], KEY);
        assert_eq!(b["event_action"], "trigger");
        assert_eq!(b["dedup_key"], "web-01/check_disk");
        assert_eq!(b["payload"]["summary"], "web-01/check_disk: DISK CRITICAL / 95%");
        assert_eq!(b["payload"]["source"], "web-01");
        let mut unnamed = e.clone();
        unnamed.entity = " \u{200B}".into();
        let job = Job { event: &unnamed, ..job };
        assert_eq!(p.body(&job, 1)["payload"]["source"], UNNAMED_SOURCE, "PagerDuty refuses a blank source");
        assert_eq!(b["payload"]["severity"], "critical");
        assert_eq!(b["payload"]["timestamp"], "2016-04-09T03:33:47Z");
        assert_eq!(b["payload"]["component"], "check_disk");
        assert_eq!(b["payload"]["custom_details"]["output"], "DISK CRITICAL\n/ 95%");
        assert_eq!(b["payload"]["custom_details"]["history"], json!([0, 2]));
        let job = Job { action: Action::Resolve, ..job };
        let b = p.body(&job, 1_460_200_000);
        assert_eq!(b.get("payload"), None);
        assert_eq!(b["event_action"], "resolve");
    }

    #[test]
    fn a_summary_of_emoji_fits_1024_counted_in_utf16_units_too() {
        let p = provider(json!({"routing_key": KEY}));
        let mut e = parse_json(br#"{"client":{"name":"web-01"},"check":{"name":"check_disk","status":2,"output":"x"}}"#, None).unwrap();
        e.output = "\u{1F525}".repeat(900);
        let key = p.incident_key(&e);
        let job = Job { action: Action::Trigger, event: &e, incident_key: &key, previous: None, event_time: 1 };
        let summary = p.body(&job, 1)["payload"]["summary"].as_str().unwrap().to_string();
        assert!(common::template::utf16_len(&summary) <= MAX_SUMMARY_CHARS, "{}", common::template::utf16_len(&summary));
        assert!(summary.chars().count() > 500 && summary.starts_with("web-01/check_disk: \u{1F525}"), "{summary}");
    }

    #[test]
    fn severity_map_is_configurable_and_checked() {
        let p = provider(json!({"routing_key": KEY, "severity_map": {"warning": "info", "3": "critical"}}));
        assert_eq!(p.severity_map[&1], "info");
        assert_eq!(p.severity_map[&3], "critical");
        let Value::Object(m) = json!({"severity_map": {"warning": "fatal"}}) else { panic!() };
        let err = PagerDuty::from_settings(&m, &Common::default()).unwrap_err();
        assert_eq!(err.code, Code::Config);
    }

    #[test]
    fn pager_team_selects_the_team_key() {
        let p = provider(json!({"routing_key": "x", "pager_team": "ops", "ops": {"api_key": KEY}}));
        assert_eq!(p.routing_key.as_deref(), Some(KEY));
        let p = provider(json!({"api_key": KEY}));
        assert_eq!(p.routing_key.as_deref(), Some(KEY), "the Ruby handler's api_key is accepted");
        let p = provider(json!({"api_key": "x", "routing_key": KEY}));
        assert_eq!(p.routing_key.as_deref(), Some(KEY));
        let Value::Object(m) = json!({"pager_team": "nope"}) else { panic!() };
        let err = PagerDuty::from_settings(&m, &Common::default()).unwrap_err();
        assert!(err.to_string().contains("pagerduty.nope"), "{err}");
        // Another object of the section, or a team without a key, is no team.
        for section in [
            json!({"routing_key": KEY, "pager_team": "severity_map", "severity_map": {"warning": "info"}}),
            json!({"routing_key": KEY, "pager_team": "ops", "ops": {"routing_key": " "}}),
        ] {
            let Value::Object(m) = section else { panic!() };
            let err = PagerDuty::from_settings(&m, &Common::default()).unwrap_err();
            assert_eq!(err.code, Code::Config);
            assert!(err.to_string().contains("holds no routing key"), "{err}");
        }
        let p = provider(json!({"pager_team": "ops", "ops": {"integration_key": KEY}}));
        assert_eq!(p.routing_key.as_deref(), Some(KEY));
    }

    #[test]
    fn missing_or_malformed_key_is_a_config_error_without_the_key() {
        let err = provider(json!({})).ready().unwrap_err();
        assert_eq!(err.code, Code::Config);
        assert!(err.to_string().contains("PAGERDUTY_ROUTING_KEY"));
        let err = provider(json!({"routing_key": "tooshort-secret"})).ready().unwrap_err();
        assert!(!err.to_string().contains("tooshort-secret"));
    }

    #[test]
    fn long_dedup_keys_are_shortened_distinctly() {
        let a = dedup_key(&"x".repeat(300));
        let b = dedup_key(&format!("{}y", "x".repeat(299)));
        assert_eq!(a.chars().count(), MAX_DEDUP_KEY_CHARS);
        assert_ne!(a, b);
        assert_eq!(dedup_key("web-01/check_disk"), "web-01/check_disk");
    }

    #[test]
    fn dedup_keys_with_emoji_fit_255_counted_in_utf16_units_too() {
        let long = format!("{}/{}", "\u{1F525}".repeat(100), "\u{1F4BE}".repeat(100));
        let k = dedup_key(&long);
        assert!(utf16_len(&k) <= MAX_DEDUP_KEY_CHARS, "{} units", utf16_len(&k));
        assert!(k.starts_with("\u{1F525}") && k.contains('~'), "{k}");
        assert_ne!(k, dedup_key(&format!("{long}x")));
        // 255 BMP characters (Japanese) are 255 units: unchanged.
        let jp = "\u{30C7}".repeat(255);
        assert_eq!(dedup_key(&jp), jp);
    }

    #[test]
    fn classification_explains_pagerduty_errors() {
        let r = Response {
            status: 400,
            body: r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}"#
                .into(),
            retry_after: None,
            location: None,
        };
        assert_eq!(classify(&r), Outcome::Refused("HTTP 400: Event object is invalid (Length of 'routing_key' is incorrect)".into()));
        let r = Response { status: 429, body: String::new(), retry_after: None, location: None };
        assert!(matches!(classify(&r), Outcome::Retry(r) if r.reason == "HTTP 429"));
        let r = Response { status: 202, body: String::new(), retry_after: None, location: None };
        assert_eq!(classify(&r), Outcome::Delivered(()));
    }

    /// README.md's "Who may set what" says what `SETTINGS` says.
    #[test]
    fn the_readme_says_who_may_set_each_setting() {
        let found = common::trust::readme::disagreements(include_str!("../../README.md"), PagerDuty::NAME, PagerDuty::SETTINGS);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }

    /// An event's `api_key` or `integration_key` is folded into `routing_key`: whoever may set
    /// one name may set them all, or the trust of `routing_key` would be a name away.
    #[test]
    fn the_routing_keys_names_share_one_trust() {
        let trust = |name| common::trust::of(PagerDuty::SETTINGS, name);
        for name in ROUTING_KEY_NAMES {
            assert_eq!(trust(name), trust("routing_key"), "{name}");
        }
    }
}
