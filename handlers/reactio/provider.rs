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
//!   integration), hence off by default and best effort. With no stored incident id (opened
//!   before a migration, on another host, or before the state was lost), the incidents not
//!   closed are looked up (`GET /api/v1/incidents?status=open`, then `status=pend`) and the one
//!   with the name this event's incident would have is resolved; when there is none, the log
//!   says so; when the lists cannot be read in time, the recovery is spooled and the flush
//!   looks again ([`Call::Recover`]). A recovery that queues behind another delivery of its
//!   incident (its create spooled here, or in flight on another host; or, with a stored id,
//!   its recovery in flight and the next failure queued behind that) is spooled as the same
//!   run: the flush posts it to the incident the record holds open by then, else to the one
//!   its name finds.
//!   A failure for an incident stored open that queues behind another delivery of it (the
//!   incident busy, or older requests spooled: maybe its recovery) is spooled as a
//!   [`Call::Page`], decided at the flush from the ledger then: a broadcast on the incident
//!   it holds open (a new one, when a failure queued ahead opened one after the recovery), a
//!   new incident when it recovered meanwhile.
//! - **acknowledge**: Reactio has none; skipped.
//!
//! 401 (`authentication_error`) and 400 (`validation_error`) are permanent (exit 69) and say
//! why (a spooled request a flush sends that is answered 401 is kept for the flush after the key
//! is fixed: [`common::http::spooled_outcome`]); 5xx, 429 and network errors are retried within
//! the deadline (then exit 75).

use std::collections::HashSet;
use std::time::Instant;

use common::config::{self, Common, de};
use common::event::Event;
use common::exit::{Code, Result};
use common::filter::Action;
use common::http::{Method, Request, Response, classify_json_api_with, fmt_ms};
use common::outcome::{Outcome, Retry};
use common::pipeline::{Ctx, Done, Found, Job, Provider, Resumed};
use common::state::Incident;
use common::template::{Template, says_nothing, truncate_chars};
use common::trust::Trust;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The default `name_template`: `{entity}/{check} {output}`.
pub const DEFAULT_NAME_TEMPLATE: &str = "{entity}/{check} {output}";
/// The default `name_template` for a Sensu Go event outside the `default` namespace.
pub const NAMESPACED_NAME_TEMPLATE: &str = "{namespace}/{entity}/{check} {output}";
/// Host under which each organization has its subdomain: `https://{organization}.reactio.jp`.
pub const HOST: &str = "reactio.jp";
/// Key of the Reactio incident id in the state store's `refs`.
pub const INCIDENT_ID: &str = "incident_id";

/// [`Provider::known`] key of the incident ids the ledger holds open for any incident key.
const HELD_INCIDENTS: &str = "held_incident_ids";
/// The default `notification_text` ("please respond"); also the broadcast of an event for
/// which the configured template renders blank ([`broadcast_text`]).
pub const DEFAULT_NOTIFICATION_TEXT: &str = "対応をお願いします";
/// The default `recovery_message`; also the recovery of an event for which the configured one
/// renders blank ([`Reactio::recovery_text`]).
pub const DEFAULT_RECOVERY_MESSAGE: &str = "recovered: {output}";
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

/// Longest `notification_text` sent, in characters: 4000. Reactio documents no limit, but its
/// answer to a create echoes the text (`notifications.notification_text`, spec) and the handler
/// reads a bounded part of an answer ([`common::http::MAX_RESPONSE_BYTES`]): a template with
/// `{output}` and a long check output made an answer cut short, whose incident `id` could not
/// be read, so every repeat opened a new incident. 4000 characters are at most 48 000 bytes of
/// JSON even with every character escaped; the whole output still reaches the timeline
/// `message` when the template puts it there.
pub const MAX_NOTIFICATION_CHARS: usize = 4000;

/// What a recovery's lookup of its incident by name found ([`Reactio::find_open`]).
enum Lookup {
    /// The newest incident of the name, open or pending (the higher id of both lists): its id.
    Found(u64),
    /// None of the name; `cut_at_cap` names the lists (`"open"`, `"pending"`) read only as far
    /// as [`MAX_LIST_PAGES`] with more pages to come, where the incident may still be.
    NotFound { cut_at_cap: Vec<&'static str> },
}

const STORED_ID_PLACEHOLDER: &str = "{stored incident_id}";

/// Incidents asked for per page of `GET /api/v1/incidents` (`per_page`).
pub const LIST_PER_PAGE: usize = 100;
/// Pages of `GET /api/v1/incidents` read at most when a recovery looks for its open incident
/// by name: 10 (1000 open incidents).
pub const MAX_LIST_PAGES: usize = 10;

/// Margin for the clocks of this host and Reactio when telling whether an incident was created
/// since its create was sent, in seconds: 60 (an incident named alike that is older is an
/// earlier one, which a new failure must not be taken for).
pub const CLOCK_MARGIN: u64 = 60;

/// One Reactio request as the spool keeps it: which call, and its body without the API key
/// and base URL (taken from the settings when the request is built).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// `POST /api/v1/incidents` with this body.
    Create {
        /// The incident object to create.
        body: Value,
    },
    /// `POST /api/v1/notifications` with this body (`incident_id` included).
    Notify {
        /// `{incident_id, notification_text, notification_call}`.
        body: Value,
    },
    /// `POST /api/v1/messages` `{incident_id, message}`; `incident_id: None` takes the id the
    /// incident's references hold at the flush (a recovery queued behind its spooled create, as
    /// earlier versions spooled it; none is spooled so now: [`Call::Recover`]).
    Message {
        /// The incident, when known.
        incident_id: Option<u64>,
        /// The timeline message (limited HTML).
        message: String,
    },
    /// `POST /api/v1/incidents/{incident_id}/status` `{"status":"close"}` (undocumented), with
    /// `close_on_resolve`; spooled behind its recovery message when that is.
    Close {
        /// The incident.
        incident_id: u64,
    },
    /// A failure for the incident the ledger holds open as `incident_id`, queued behind another
    /// delivery of it (the incident busy, or older requests spooled), which may be its
    /// recovery: a run ([`Provider::resume`]) that the flush carries out as a broadcast on the
    /// incident the ledger holds open then (`incident_id`, or one a failure queued ahead of it
    /// opened after its recovery), or as a new incident when none is open (a failure after a
    /// recovery is a new incident, as live).
    Page {
        /// The incident open when the failure was queued (broadcast on when the flush cannot
        /// read the record).
        incident_id: u64,
        /// The create body, for a new incident.
        create: Value,
        /// The notification body for `incident_id` (`None`: `notification_text` is empty, so
        /// nothing is broadcast); its `incident_id` is the one broadcast on at the flush.
        notify: Option<Value>,
    },
    /// A recovery whose incident id is not known, spooled because the incident list could not
    /// be read ([`Reactio::find_open`]: Reactio answering 5xx, or unreachable), or because it
    /// queues behind another delivery of its incident (its create spooled, or in flight on
    /// another host; or, with an id stored open, whatever it queues behind, which may recover
    /// that incident and open another: [`Reactio::resolve_later`]): a run ([`Provider::resume`]) that posts `message`, as a live recovery
    /// does, to the incident the record holds open by the flush for events up to its own, else
    /// to the one it looks up then ([`Reactio::recover`]).
    Recover {
        /// The incident's name up to where the check output goes ([`Reactio::name_before_output`]).
        name: String,
        /// The whole name the recovery's incident would have, for the log.
        shown: String,
        /// The timeline message.
        message: String,
        /// The incident the record held open when the recovery queued ([`Reactio::resolve_later`]),
        /// where a `Call::Message` went before: the recovery goes there when the flush has no
        /// record to read (no store at hand), and it is superseded, as that message was, by a
        /// later event applied before it (that event's incident is the one open now). `None`: no
        /// id was stored (an entry of an earlier version reads so).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_id: Option<u64>,
    },
}

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
            name_template: DEFAULT_NAME_TEMPLATE.into(),
            notification_text: DEFAULT_NOTIFICATION_TEXT.into(),
            notification_call: false,
            status: Status::Open,
            detection: None,
            cause: None,
            point: None,
            scale: None,
            topics: Vec::new(),
            message: None,
            recovery_message: DEFAULT_RECOVERY_MESSAGE.into(),
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
    /// With the default `name_template`: the name of an event whose namespace is part of its
    /// identity ([`Event::qualifying_namespace`]), [`NAMESPACED_NAME_TEMPLATE`].
    namespaced_name: Option<Template>,
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
    const READERS: &'static [common::unread::Reader] = &[common::unread::Reader::of::<Settings>()];
    type Payload = Call;

    /// The organization, the API key and whether to phone people come from the operator or
    /// the check; an entity may word, classify and tag its own incidents.
    const SETTINGS: &'static [(&'static str, Trust)] = &[
        ("api_key", Trust::Check),
        ("organization", Trust::Check),
        ("notification_call", Trust::Check),
        ("status", Trust::Check),
        ("close_on_resolve", Trust::Check),
        // The name is the incident's identity too: a recovery with no stored id finds its
        // incident by it (`find_open`), so an entity naming its own would resolve another's.
        ("name_template", Trust::Check),
        ("notification_text", Trust::Entity),
        // HTML templates: their own text is markup (`<a href>`), so an entity's would put links
        // of the monitored host's choosing in the timeline. The values filled in are escaped.
        ("message", Trust::Check),
        ("recovery_message", Trust::Check),
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

    fn from_settings(section: &Map<String, Value>, common: &Common) -> Result<Self> {
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
            namespaced_name: (s.name_template == DEFAULT_NAME_TEMPLATE)
                .then(|| Template::parse("reactio.name_template", NAMESPACED_NAME_TEMPLATE))
                .transpose()?,
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

    /// The broadcast and the timeline message on a trigger, the recovery's message on a resolve.
    fn template_notes(&self, event: &Event) -> Vec<String> {
        let e = html_event(event);
        let says = |t: &Option<Template>| t.as_ref().is_some_and(|t| t.render_telling(&e).is_none());
        let mut notes = Vec::new();
        if event.status == 0 {
            // The default itself (`recovered: {output}`) says nothing more for a silent check.
            if self.recovery_message.source() != DEFAULT_RECOVERY_MESSAGE && self.recovery_message.render_telling(&e).is_none() {
                notes.push(says_nothing("reactio.recovery_message", &format!("the default `{DEFAULT_RECOVERY_MESSAGE}`")));
            }
        } else {
            if says(&self.notification_text) {
                notes.push(says_nothing("reactio.notification_text", &format!("the default `{DEFAULT_NOTIFICATION_TEXT}`")));
            }
            if says(&self.message) {
                notes.push(says_nothing("reactio.message", "no timeline message"));
            }
        }
        notes
    }

    fn secrets(&self) -> Vec<String> {
        self.api_key.iter().cloned().collect()
    }

    fn ready(&self) -> Result<()> {
        match &self.api_key {
            None => {
                return Err(Code::Config.msg(
                    "no Reactio API key: set `reactio.api_key` in a settings file, REACTIO_API_KEY, or --api-key \
                     (Reactio issues API keys per project)",
                ));
            }
            Some(k) if !common::http::is_header_credential(k) => {
                return Err(Code::Config.msg(
                    "the Reactio API key holds a space, a line break or another character an HTTP header cannot carry \
                     (visible ASCII only); give the key alone",
                ));
            }
            Some(_) => {}
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

    fn act(&self, ctx: &Ctx<'_, Self>, job: &Job<'_>) -> Outcome<Done> {
        match (job.action, stored_incident(job)) {
            (Action::Trigger, None) => self.create(ctx, job),
            // Queued: whether the incident is still open when the flush sends it is not known
            // now (the delivery ahead of it may be its recovery).
            (Action::Trigger, Some(id)) if ctx.behind_spooled() && !ctx.dry_run => {
                let why = ctx.queued_behind().unwrap_or_default().to_string();
                let page = Call::Page {
                    incident_id: id,
                    create: self.incident_body(job.event, job.incident_key),
                    notify: self.notify_body(job.event, id),
                };
                ctx.spool_run(&page, None, &why).map(|_| Done::default())
            }
            (Action::Trigger, Some(id)) => self.notify(ctx, job, id),
            // Queued: the incident stored open now may not be the one open when the flush posts
            // it (the delivery ahead of it may be its recovery and the next failure's create).
            (Action::Resolve, Some(_)) if ctx.behind_spooled() && !ctx.dry_run => self.resolve_later(ctx, job),
            (Action::Resolve, Some(id)) => self.resolve(ctx, self.recovery_text(job.event), id),
            (Action::Resolve, None) if ctx.dry_run => {
                // Dry runs read no state: show where the stored (or looked-up) id would go.
                let message = self.recovery_text(job.event);
                ctx.print(&self.request("/api/v1/messages", json!({"incident_id": STORED_ID_PLACEHOLDER, "message": message})));
                Outcome::Delivered(Done { detail: "(recovery message)".into(), refs: Map::new() })
            }
            (Action::Resolve, None) if ctx.behind_spooled() => self.resolve_later(ctx, job),
            (Action::Resolve, None) => {
                let name = self.name_before_output(job.event, job.incident_key);
                let shown = self.incident_name(job.event, job.incident_key);
                let message = self.recovery_text(job.event);
                match self.recover(ctx, &name, &shown, message.clone(), None) {
                    // The list could not be read in time (Reactio answering 5xx, unreachable):
                    // the recovery waits in the spool, and the flush looks the incident up again.
                    Outcome::Retry(r) => ctx
                        .spool_run(
                            &Call::Recover { name, shown, message, incident_id: None },
                            None,
                            &format!("the incident list could not be read: {}", r.reason),
                        )
                        .map(|_| Done::default()),
                    other => other,
                }
            }
            (Action::Acknowledge, _) => {
                Outcome::Delivered(Done { detail: "(Reactio has no acknowledge; nothing sent)".into(), refs: Map::new() })
            }
        }
    }

    fn classify(&self, _payload: &Call, resp: &Response) -> Outcome {
        classify(resp)
    }

    /// The request for `call` at the base URL and with the API key in force now; a message
    /// waiting for its incident's id (spooled by an earlier version) takes it from the stored
    /// `refs`.
    fn request(&self, call: &Call, refs: &Map<String, Value>) -> std::result::Result<Request, String> {
        Ok(match call {
            Call::Create { body } => self.request("/api/v1/incidents", body.clone()),
            Call::Notify { body } => self.request("/api/v1/notifications", body.clone()),
            Call::Message { incident_id, message } => {
                let id = incident_id.or_else(|| refs.get(INCIDENT_ID).and_then(incident_id_of)).ok_or_else(|| {
                    "the incident's id is not known (its create was not delivered), so there is no incident to post the recovery to"
                        .to_string()
                })?;
                self.request("/api/v1/messages", json!({"incident_id": id, "message": message}))
            }
            Call::Close { incident_id } => self.request(&format!("/api/v1/incidents/{incident_id}/status"), json!({"status": "close"})),
            Call::Recover { .. } => return Err("a recovery that looks its incident up is not one request".to_string()),
            Call::Page { .. } => return Err("a failure decided at the flush is not one request".to_string()),
        })
    }

    /// A recovery waiting for its incident to be looked up ([`Call::Recover`]) is carried on by
    /// the flush ([`Provider::resume`]), not sent as one request.
    fn is_run(&self, call: &Call) -> bool {
        matches!(call, Call::Recover { .. } | Call::Page { .. })
    }

    /// Post the spooled recovery to the incident the record holds open for events up to its
    /// own (its create delivered since it was queued, here or on another host), else look the
    /// incident up and post it there ([`Reactio::recover`]).
    /// One the ledger already records as this very resolve's (its token: a flush killed after
    /// the record, before the entry left the spool) was posted: not again (Reactio still lists
    /// the incident open, so a lookup would find it and post the recovery a second time).
    ///
    /// The incident the record holds for events after this recovery's (a failure delivered
    /// meanwhile on another host sharing the store, maybe recovered since) is theirs: passed
    /// over, as the incidents of other keys are, and the record is left to them (no `refs`).
    /// A recovery queued while the record held an id open ([`Call::Recover`]'s `incident_id`)
    /// goes to that id when the record has no open incident to give (none to read), and is
    /// superseded by such later events, as the message to that id it was spooled as before.
    ///
    /// A queued failure ([`Call::Page`]) broadcasts on the incident the record holds open (on
    /// the one it was queued for when the record cannot be read: as decided then), and opens a
    /// new incident when the record shows none open (it recovered meanwhile), or one whose id is
    /// not known. The record may hold another incident open than the one it was queued for:
    /// what it queued behind recovered that one and opened this one (a failure queued ahead
    /// of it), and a failure after that is this one's; taken for a recovery, it opened a third
    /// incident, and the second never got its recovery.
    fn resume(&self, ctx: &Ctx<'_, Self>, call: &Call, previous: Option<&Incident>, event_time: u64) -> Resumed {
        if let Call::Page { incident_id, create, notify } = call {
            // The incident open now: what the failure queued behind may have recovered the one
            // it was queued for and opened another, whose severity change or repeat this is (the
            // record holds no later event: the flush dropped it as superseded then).
            let open_id = |p: &Incident| p.refs.get(INCIDENT_ID).and_then(incident_id_of).filter(|_| p.open);
            let id = match previous {
                None => Some(*incident_id),
                Some(p) => open_id(p),
            };
            let outcome = match id {
                Some(id) => {
                    let body = notify.clone().map(|mut body| {
                        body["incident_id"] = id.into();
                        body
                    });
                    self.notify_with(ctx, id, body)
                }
                None => self.create_with(ctx, create.clone(), ctx.incident_key),
            };
            return resumed(outcome);
        }
        let Call::Recover { name, shown, message, incident_id: queued_for } = call else {
            return Resumed::Failed(Outcome::Refused("only a recovery that looks its incident up is carried on".into()));
        };
        if let Some(p) = previous
            && p.last_action == Some(Action::Resolve)
            && ctx.token().is_some()
            && p.token.as_deref() == ctx.token()
        {
            return Resumed::Delivered(Done {
                detail: "(its recovery was posted and recorded already, by a flush that ended before it could remove the entry)".into(),
                refs: Map::new(),
            });
        }
        let later_event = common::state::applied_later_event(previous, event_time);
        // The incident the record holds open for events up to this recovery's (its create
        // delivered since the recovery was queued, here or on another host): resolved as live.
        if let Some(id) = previous.filter(|p| p.open && !later_event).and_then(|p| p.refs.get(INCIDENT_ID)).and_then(incident_id_of) {
            return resumed(self.resolve(ctx, message.clone(), id));
        }
        // Queued while the record held `id` open: what it would have been spooled as before (a
        // message to `id`) is what it comes to when the record says nothing better.
        if let Some(id) = *queued_for {
            if later_event {
                return Resumed::Superseded(format!(
                    "superseded after all: it was queued for incident {id}, open then, and a later event of the check was applied \
                     before it (its incident is the one open now)"
                ));
            }
            return resumed(self.resolve(ctx, message.clone(), id));
        }
        let later = previous.filter(|_| later_event).and_then(|p| p.refs.get(INCIDENT_ID)).and_then(incident_id_of);
        match self.recover(ctx, name, shown, message.clone(), later) {
            Outcome::Delivered(done) if later.is_some() => Resumed::Delivered(Done { refs: Map::new(), ..done }),
            outcome => resumed(outcome),
        }
    }

    /// The answer to a lookup, explained as any answer is (Reactio's `type` and `message`): a
    /// 401 `authentication_error` (a key that lost its rights since the create went out)
    /// refuses the lookup for good ([`Found::Broken`]: the create stays spooled, exit 78).
    fn classify_lookup(&self, _call: &Call, resp: &Response) -> Outcome {
        classify(resp)
    }

    /// A create of unknown fate (sent, no answer in time: Reactio may have opened the incident
    /// and broadcast) is looked for before it is sent again, so that a slow Reactio does not
    /// get two incidents, and everyone two broadcasts: the incidents in the status it was
    /// created with (`open`, or the `status` setting's `pend`) created since it was sent,
    /// `GET /api/v1/incidents?status=…&from=…&per_page=100` (spec "Other calls").
    fn lookup(&self, call: &Call, since: u64) -> Option<Request> {
        let Call::Create { body } = call else { return None };
        Some(self.created_since(lookup_statuses(body)[0], since, 1))
    }

    /// The next page of the incidents created since, list after list ([`lookup_statuses`]):
    /// each read until a page ends it ([`last_page`]: an empty page, or one shorter than page
    /// 1). The answer is a bare array and `per_page` has no documented maximum, so a page 1
    /// shorter than the 100 asked for may be all a Reactio serves per page, with the lost
    /// create's incident on page 2: judged on page 1 alone, it was taken for not there and the
    /// create sent again (a second incident, a second broadcast).
    fn lookup_next(&self, call: &Call, since: u64, pages: &[Response]) -> Option<Request> {
        let Call::Create { body } = call else { return None };
        let statuses = lookup_statuses(body);
        let (list, page) = next_list_page(pages)?;
        Some(self.created_since(statuses.get(list)?, since, page))
    }

    /// The incident the lost create opened: one of exactly its name, created since it was sent
    /// (less [`CLOCK_MARGIN`]), that is not the incident the record already knows, in the
    /// status its list asked for, in any of the lists ([`lookup_statuses`]: someone may have
    /// put it on hold or closed it before the flush looked). An answer that is not a list is
    /// no answer ([`Found::Unanswered`]: kept spooled for a later lookup, never created again
    /// blind); lists that go on past the pages read ([`common::pipeline::MAX_LOOKUP_PAGES`])
    /// cannot tell.
    ///
    /// Nor an incident the ledger holds open for any key ([`Provider::known`]): a name is no
    /// identity (a host names itself and writes its check's output), and an impostor's lost
    /// create took the real one's incident, opened meanwhile under the same name, for its own;
    /// its recovery then closed it.
    fn found(&self, call: &Call, pages: &[Response], since: u64, known: &Map<String, Value>, _attempt: &str) -> Found {
        let Call::Create { body } = call else { return Found::No };
        let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
        let statuses = lookup_statuses(body);
        let known_id = known.get(INCIDENT_ID).and_then(incident_id_of);
        let held: HashSet<u64> =
            known.get(HELD_INCIDENTS).and_then(Value::as_array).into_iter().flatten().filter_map(incident_id_of).collect();
        let mut found = None;
        let mut cursor = ListCursor::default();
        for page in pages {
            let Some(items) = serde_json::from_str::<Value>(&page.body).ok().and_then(|v| v.as_array().cloned()) else {
                return Found::Unanswered(format!("GET /api/v1/incidents answered HTTP {} without a list", page.status));
            };
            let status = statuses.get(cursor.list).copied().unwrap_or_default();
            let ours = items
                .iter()
                .filter(|i| i.get("name").and_then(Value::as_str) == Some(name))
                .filter(|i| i.get("status").and_then(Value::as_str).is_none_or(|s| s == status))
                .filter(|i| i.get("created_at").and_then(Value::as_u64).is_some_and(|t| t + CLOCK_MARGIN >= since))
                .filter_map(|i| i.get("id").and_then(incident_id_of))
                .filter(|id| Some(*id) != known_id && !held.contains(id))
                .max();
            found = found.max(ours);
            cursor.read(items.len());
        }
        match found {
            Some(id) => Found::Yes(id_refs(id)),
            None if cursor.list < statuses.len() => {
                Found::CannotTell(format!("more than {} pages of incidents created since then", pages.len()))
            }
            None => Found::No,
        }
    }

    /// The incidents the ledger holds open, whatever the key ([`HELD_INCIDENTS`]): none of them
    /// is what a lost create opened ([`Provider::found`]; the incident's own record's is passed
    /// over as the one it already knows).
    fn known(&self, store: &dyn common::state::Store) -> Map<String, Value> {
        common::state::open_refs_known(store, INCIDENT_ID, HELD_INCIDENTS)
    }

    /// A create delivered from the spool brings the incident id that later requests need.
    fn spooled_refs(&self, call: &Call, resp: &Response) -> Map<String, Value> {
        let id = serde_json::from_str::<Value>(&resp.body).ok().and_then(|v| v.get("id").and_then(incident_id_of));
        match (call, id) {
            (Call::Create { .. }, Some(id)) => id_refs(id),
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
    /// The timeline message of a recovery: `recovery_message` rendered, or
    /// [`DEFAULT_RECOVERY_MESSAGE`] when it renders blank (`{output}` alone, and the check
    /// printed nothing): `POST /api/v1/messages` requires `message`, and a blank one posted
    /// nothing to the timeline (the fake takes it for missing, as the client's recorded
    /// `missing_field` answer is for a required field).
    fn recovery_text(&self, event: &Event) -> String {
        self.recovery_message.render_or(&html_event(event), &Template::constant(DEFAULT_RECOVERY_MESSAGE))
    }

    /// `POST /api/v1/incidents`; remembers the returned `id`.
    fn create(&self, ctx: &Ctx<'_, Self>, job: &Job<'_>) -> Outcome<Done> {
        self.create_with(ctx, self.incident_body(job.event, job.incident_key), job.incident_key)
    }

    /// `POST /api/v1/incidents` with `body` for the incident `key`; its id is remembered.
    fn create_with(&self, ctx: &Ctx<'_, Self>, body: Value, key: &str) -> Outcome<Done> {
        let posted = match self.post(ctx, Call::Create { body }).into_result() {
            Ok(p) => p,
            Err(failed) => return failed.failure().unwrap_or(Outcome::Skipped(String::new())),
        };
        let id = serde_json::from_str::<Value>(&posted.response.body).ok().and_then(|v| v.get("id").and_then(incident_id_of));
        let mut refs = Map::new();
        let detail = match id {
            Some(id) => {
                refs.insert(INCIDENT_ID.into(), id.into());
                format!("(incident {id}; {})", posted.timing)
            }
            None if ctx.dry_run => format!("({})", posted.timing),
            None => {
                ctx.log.warn(format!(
                    "Reactio accepted the incident for {key} but its answer holds no incident id; a repeat will open a new incident"
                ));
                format!("(incident id unknown; {})", posted.timing)
            }
        };
        Outcome::Delivered(Done { detail, refs })
    }

    /// `POST /api/v1/notifications` to the stored incident: broadcast again.
    fn notify(&self, ctx: &Ctx<'_, Self>, job: &Job<'_>, id: u64) -> Outcome<Done> {
        self.notify_with(ctx, id, self.notify_body(job.event, id))
    }

    /// The `POST /api/v1/notifications` body for incident `id` and `event` (`None`:
    /// `notification_text` is empty).
    fn notify_body(&self, event: &Event, id: u64) -> Option<Value> {
        let text = self.notification_text.as_ref()?;
        Some(json!({
            "incident_id": id,
            "notification_text": broadcast_text(text, event),
            "notification_call": self.notification_call,
        }))
    }

    /// Broadcast `body` on incident `id` (`None`: nothing to broadcast, still delivered).
    fn notify_with(&self, ctx: &Ctx<'_, Self>, id: u64, body: Option<Value>) -> Outcome<Done> {
        let refs = id_refs(id);
        let Some(body) = body else {
            return Outcome::Delivered(Done {
                detail: format!("(incident {id} still open; notification_text is empty, so nothing is broadcast)"),
                refs,
            });
        };
        self.post(ctx, Call::Notify { body })
            .map(|posted| Done { detail: format!("(incident {id} notified again; {})", posted.timing), refs })
    }

    /// `POST /api/v1/messages` "recovered: …", then with `close_on_resolve` the status call.
    /// A failed close is logged as a warning and does not fail the resolve: the recovery is on
    /// the timeline already, and the close endpoint is undocumented.
    ///
    /// With `close_on_resolve`, a recovery noted in flight (it turns the incident over:
    /// [`Provider::note_in_flight`]) notes the close with its message, before the message goes
    /// out ([`Ctx::send_before`]), as the spool keeps a close behind its spooled message
    /// ([`Reactio::close_later`]). Killed after Reactio took the message, before the close
    /// was sent (the monitoring system's handler timeout, kill -9), the handler left the
    /// message noted alone: the next holder posted it again and the incident stayed open for
    /// good. Now the close is sent again too (and the message only when its answer had not
    /// come: once it is accepted its note is removed).
    fn resolve(&self, ctx: &Ctx<'_, Self>, message: String, id: u64) -> Outcome<Done> {
        let kept = ctx.kept();
        let close = self.close_on_resolve.then_some(Call::Close { incident_id: id });
        let posted = match self.post_before(ctx, Call::Message { incident_id: Some(id), message }, close.as_ref()).into_result() {
            Ok(p) => p,
            Err(failed) => {
                let failed = failed.failure().unwrap_or(Outcome::Skipped(String::new()));
                if ctx.kept() > kept {
                    self.close_later(ctx, id);
                }
                return failed;
            }
        };
        let refs = id_refs(id);
        if !self.close_on_resolve {
            return Outcome::Delivered(Done { detail: format!("(incident {id}: recovery posted; {})", posted.timing), refs });
        }
        let detail = match self.post(ctx, Call::Close { incident_id: id }) {
            Outcome::Delivered(closed) => format!("(incident {id}: recovery posted and closed; {}, {})", posted.timing, closed.timing),
            failed => {
                ctx.log.warn(format!(
                    "incident {id}: the recovery message was posted but closing the incident failed: {} \
                     (close_on_resolve uses an endpoint Reactio does not document)",
                    failed.reason().unwrap_or("")
                ));
                format!("(incident {id}: recovery posted, not closed; {})", posted.timing)
            }
        };
        Outcome::Delivered(Done { detail, refs })
    }

    /// A recovery that queues (its incident's requests are still spooled here, or another
    /// invocation, maybe on another host, is delivering for it): spooled as a [`Call::Recover`]
    /// run, decided at the flush from the ledger then ([`Provider::resume`]): posted to the
    /// incident the record holds open by then (the create delivered meanwhile, here or
    /// elsewhere), else to the one its name finds. Exit 75 now, like any spooled request. (A
    /// `Call::Message` waiting for the id, as spooled before, was refused at the flush, exit 69,
    /// when the create was another host's still spooled there: that create then opened the
    /// incident after its recovery.)
    ///
    /// So also with an incident id stored open: one that queues because the incident is busy
    /// sees the stored record, not the record as what it queues behind leaves it (a recovery in
    /// flight, then the next failure queued behind it, which opens a new incident at a flush).
    /// Queued as a message to the stored id, it was posted a second time to the recovered
    /// incident, and the new one stayed open while the ledger said resolved.
    fn resolve_later(&self, ctx: &Ctx<'_, Self>, job: &Job<'_>) -> Outcome<Done> {
        let recover = Call::Recover {
            name: self.name_before_output(job.event, job.incident_key),
            shown: self.incident_name(job.event, job.incident_key),
            message: self.recovery_text(job.event),
            incident_id: stored_incident(job),
        };
        let why = ctx.queued_behind().unwrap_or("the incident's create request is still spooled").to_string();
        ctx.spool_run(&recover, None, &format!("{why}; the recovery is decided when it is flushed")).map(|_| Done::default())
    }

    /// With `close_on_resolve`, the close of incident `incident_id`, spooled behind its recovery
    /// message, which was kept in the spool (queued, no answer in time, or refused by this
    /// machine's configuration: exit 78, kept for the flush after the fix), so that the flush
    /// closes the incident as a live recovery does. A close that cannot be spooled is a
    /// warning (the recovery message still goes out).
    fn close_later(&self, ctx: &Ctx<'_, Self>, incident_id: u64) {
        if !self.close_on_resolve {
            return;
        }
        let why = "the recovery message is spooled, so closing the incident waits behind it";
        if let Some(failed) =
            ctx.send_later(&Call::Close { incident_id }, why).failure::<()>().filter(|f| !matches!(f, Outcome::Spooled(_)))
        {
            ctx.log.warn(format!("the close of the incident could not be spooled behind its recovery: {}", failed.reason().unwrap_or("")));
        }
    }

    /// A recovery with no stored incident id: the open or pending incident named `name` up to
    /// the output ([`Reactio::find_open`]), but `later` (the one the ledger holds for later
    /// events of this key), gets `message` ([`Reactio::resolve`]); none found is delivered with
    /// nothing posted (said in the detail, naming the incident `shown`). A list that cannot be
    /// read comes back as the failure ([`Outcome::Retry`] while Reactio cannot answer).
    fn recover(&self, ctx: &Ctx<'_, Self>, name: &str, shown: &str, message: String, later: Option<u64>) -> Outcome<Done> {
        match self.find_open(ctx, name, later) {
            Ok(Lookup::Found(id)) => self.resolve(ctx, message, id),
            Ok(Lookup::NotFound { cut_at_cap }) => {
                let detail = match cut_at_cap.as_slice() {
                    [] => format!(
                        "(no Reactio incident id is stored for it, and no open or pending incident is named {shown:?}: nothing to post the recovery to)"
                    ),
                    cut => format!(
                        "(no Reactio incident id is stored for it, and none named {shown:?} among the {} incidents of the first {MAX_LIST_PAGES} pages, \
                         the most a recovery reads, and the list goes on: close it in Reactio if it is open)",
                        cut.join(" and ")
                    ),
                };
                Outcome::Delivered(Done { detail, refs: Map::new() })
            }
            Err(failed) => failed,
        }
    }

    /// The incident this event's incident would be, when the ledger has no id for it: the
    /// incidents that are not closed, `GET /api/v1/incidents?status=open&page=N&per_page=100`
    /// page after page (the list is paginated, spec "Other calls"), then likewise
    /// `status=pend` (an incident opened with `status: pend`, or put on hold in Reactio, is
    /// not closed either and still waits for its recovery); the newest one whose name is the
    /// name this event's incident would have up to where the check output goes (the output of
    /// a recovery is not the failure's). `Err` carries the failure to report.
    ///
    /// The answer is a bare JSON array (no total, no page count, no next link) and `per_page`
    /// has no documented maximum, so where each list ends is read off its pages ([`last_page`]):
    /// at an empty page, or at a page shorter than page 1 (page 1 shows how many Reactio serves
    /// a page). Page 1 shorter than asked for is not taken for the end: it may be all a Reactio
    /// serves per page; the empty page 2 settles it. At most [`MAX_LIST_PAGES`] are read per
    /// status.
    fn find_open(&self, ctx: &Ctx<'_, Self>, name: &str, later: Option<u64>) -> std::result::Result<Lookup, Outcome<Done>> {
        // The ledger's key (its record's; `key@hash` for an event that chose its own destination).
        let key = ctx.incident_key;
        // A name that fills [`MAX_NAME_CHARS`] before the output (long host and check names) was
        // cut when the incident was opened ([`Reactio::incident_name`]): that cut name is its.
        // Spaces inside the names before the output are no-break spaces ([`in_names`]): the
        // first plain space is where the output starts.
        let cut = (name.chars().count() + 1 >= MAX_NAME_CHARS).then(|| truncate_chars(&format!("{name} …"), MAX_NAME_CHARS));
        let matches = |n: &str| {
            cut.as_deref() == Some(n)
                || match n.strip_prefix(name) {
                    Some(rest) => rest.is_empty() || rest.starts_with(' '),
                    None => false,
                }
        };
        let mut found: Vec<(u64, Status)> = Vec::new();
        let mut cut_at_cap = Vec::new();
        for status in [Status::Open, Status::Pend] {
            let word = word(&status);
            let mut cursor = ListCursor::default();
            for page in 1..=MAX_LIST_PAGES {
                let resp = match ctx.fetch(&self.incidents(&format!("status={word}&page={page}")), &classify_list) {
                    Outcome::Delivered(resp) => resp,
                    failed => return Err(failed.failure().unwrap_or(Outcome::Skipped(String::new()))),
                };
                // Always an array once delivered ([`classify_list`]); a dry run's empty answer
                // lists nothing.
                let list: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
                let items = list.as_array().map(|a| a.as_slice()).unwrap_or_default();
                found.extend(
                    items
                        .iter()
                        .filter(|i| i.get("name").and_then(Value::as_str).is_some_and(matches))
                        .filter(|i| i.get("status").and_then(Value::as_str).is_none_or(|s| s == word))
                        .filter_map(|i| i.get("id").and_then(incident_id_of))
                        .map(|id| (id, status)),
                );
                if let Some(why) = cursor.read(items.len()) {
                    ctx.log.debug(format!("GET /api/v1/incidents: page {page} is the last of the {word} incidents ({why})"));
                    break;
                }
                if page == MAX_LIST_PAGES {
                    cut_at_cap.push(adjective(status));
                    ctx.log.debug(format!(
                        "GET /api/v1/incidents: stopped after page {page} of the {word} incidents, the most a recovery reads"
                    ));
                }
            }
        }
        // A name is no identity (a Mackerel host names itself, and its check monitors): an
        // incident the ledger holds open for another incident key is that one's, never this
        // recovery's, whatever its name.
        if let Some(id) = later
            && found.iter().any(|(f, _)| *f == id)
        {
            ctx.log.info(format!("{key}: incident {id} named {name:?} is the ledger's for a later event; not this recovery's"));
            found.retain(|(f, _)| *f != id);
        }
        let claimed = if found.is_empty() { HashSet::new() } else { claimed_incidents(ctx, key) };
        let (others, found): (Vec<_>, Vec<_>) = found.into_iter().partition(|(id, _)| claimed.contains(id));
        if !others.is_empty() {
            let ids: Vec<String> = others.iter().map(|(id, _)| id.to_string()).collect();
            ctx.log.info(format!(
                "{key}: incident {} named {name:?} is held open for another incident key; not this recovery's",
                ids.join(", ")
            ));
        }
        let found = found.into_iter().max_by_key(|(id, _)| *id);
        if let Some((id, status)) = found {
            let which = adjective(status);
            ctx.log.info(format!("{key}: no stored incident id; found the {which} incident {id} named {name:?}"));
        }
        Ok(match found {
            Some((id, _)) => Lookup::Found(id),
            None => Lookup::NotFound { cut_at_cap },
        })
    }

    /// The `name_template` for `event`: with the default one, a Sensu Go event outside the
    /// `default` namespace is named `{namespace}/{entity}/{check} {output}`, as its incident
    /// key is, so that a recovery with no stored incident id, which finds its incident by name,
    /// never finds the incident of a same-named entity in another namespace.
    fn name_for(&self, event: &Event) -> &Template {
        match &self.namespaced_name {
            Some(t) if event.qualifying_namespace().is_some() => t,
            _ => &self.name,
        }
    }

    /// The part of the incident name of `event` that does not depend on the check output:
    /// `name_template` rendered up to `{output}` (the whole name when it has none).
    fn name_before_output(&self, event: &Event, key: &str) -> String {
        const MARK: char = '\u{1}';
        let mut e = in_names(event);
        e.output = MARK.to_string();
        let name = one_line(&self.name_for(&e).render(&e));
        match name.split_once(MARK) {
            // Only the plain space before the output goes: a name's own trailing space is a
            // no-break space in the incident's name ([`in_names`]), and is part of it.
            Some((before, _)) if !before.trim().is_empty() => {
                before.trim_end_matches(|c: char| c.is_whitespace() && c != NAME_SPACE).to_string()
            }
            Some(_) => key.to_string(),
            None if name.is_empty() => key.to_string(),
            None => name,
        }
    }

    /// The name the incident of `event` gets: `name_template` on one line, else the key, cut
    /// to [`MAX_NAME_CHARS`] on a character boundary.
    fn incident_name(&self, event: &Event, key: &str) -> String {
        let name = one_line(&self.name_for(event).render(&in_names(event)));
        truncate_chars(if name.is_empty() { key } else { &name }, MAX_NAME_CHARS)
    }

    /// The `POST /api/v1/incidents` body for `event`.
    fn incident_body(&self, event: &Event, key: &str) -> Value {
        let mut b = Map::new();
        b.insert("name".into(), self.incident_name(event, key).into());
        b.insert("status".into(), word(&self.status).into());
        for (k, v) in &self.classification {
            b.insert((*k).into(), v.clone().into());
        }
        if !self.topics.is_empty() {
            b.insert("topics".into(), self.topics.clone().into());
        }
        if let Some(t) = &self.notification_text {
            b.insert("notification_text".into(), broadcast_text(t, event).into());
            b.insert("notification_call".into(), self.notification_call.into());
        }
        // A message that says nothing of the event (`<p>{output}</p>` for a check that printed
        // nothing) is left out, as an operator's "" is: an invisible timeline entry tells nobody.
        if let Some(m) = self.message.as_ref().and_then(|m| m.render_telling(&html_event(event))) {
            b.insert("message".into(), m.into());
        }
        Value::Object(b)
    }

    /// `GET /api/v1/incidents?status={status}&from=…&page={page}&per_page=100`: the incidents in
    /// `status` created since `since` (less [`CLOCK_MARGIN`]), for a create of unknown fate.
    fn created_since(&self, status: &str, since: u64, page: usize) -> Request {
        let from = since.saturating_sub(CLOCK_MARGIN);
        self.incidents(&format!("status={status}&from={from}&page={page}"))
    }

    /// `GET /api/v1/incidents?{query}&per_page=100`: a page of the incident list (spec "Other
    /// calls").
    fn incidents(&self, query: &str) -> Request {
        let mut req = self.request(&format!("/api/v1/incidents?{query}&per_page={LIST_PER_PAGE}"), Value::Null);
        req.method = Method::Get;
        req.body = common::http::Body::Empty;
        req
    }

    /// A JSON POST to `{base}{path}` with the API key.
    fn request(&self, path: &str, body: Value) -> Request {
        let base = self.base.as_deref().unwrap_or("https://{organization}.reactio.jp");
        let mut req = Request::post_json(format!("{base}{path}"), body);
        req.headers.push(("X-Api-Key".into(), self.api_key.clone().unwrap_or_default()));
        req.headers.push(("Accept".into(), "application/json".into()));
        req
    }

    /// Send `call`, timed; request and response go to the debug log (credentials masked).
    fn post(&self, ctx: &Ctx<'_, Self>, call: Call) -> Outcome<Posted> {
        self.post_before(ctx, call, None)
    }

    /// [`Reactio::post`] for a `call` that `next` must follow ([`Ctx::send_before`]: noted in
    /// flight with it).
    fn post_before(&self, ctx: &Ctx<'_, Self>, call: Call, next: Option<&Call>) -> Outcome<Posted> {
        if let Ok(req) = Provider::request(self, &call, &Map::new()) {
            let shown = req.redacted(&ctx.log.secrets());
            let headers: Vec<String> = shown.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            ctx.log.debug(format!("POST {} ({})", shown.url, headers.join(", ")));
        }
        let path = match &call {
            Call::Create { .. } => "/api/v1/incidents".to_string(),
            Call::Notify { .. } => "/api/v1/notifications".to_string(),
            Call::Message { .. } => "/api/v1/messages".to_string(),
            Call::Close { incident_id } => format!("/api/v1/incidents/{incident_id}/status"),
            Call::Recover { .. } | Call::Page { .. } => "/api/v1/incidents".to_string(),
        };
        let started = Instant::now();
        let outcome = match next {
            Some(next) => ctx.send_before(&call, next),
            None => ctx.send(&call),
        };
        let took = fmt_ms(started.elapsed());
        match outcome {
            Outcome::Delivered(response) if ctx.dry_run => Outcome::Delivered(Posted { response, timing: format!("POST {path}") }),
            Outcome::Delivered(response) => {
                ctx.log.debug(format!("POST {path} answered HTTP {} in {took}: {}", response.status, truncate_chars(&response.body, 500)));
                let timing = format!("POST {path} {} in {took}", response.status);
                Outcome::Delivered(Posted { response, timing })
            }
            failed => {
                ctx.log.debug(format!("POST {path} failed after {took}"));
                failed.failure().unwrap_or(Outcome::Skipped(String::new()))
            }
        }
    }
}

/// `event` as incident names are rendered from: every run of whitespace in a value other than
/// the check output (host, check, namespace, labels, command, the source's key) as one
/// no-break space (U+00A0), which reads the same. A recovery with no stored incident id finds
/// its incident by the name up to where the output goes, then a space ([`Reactio::find_open`]);
/// with plain spaces, `db-01/HTTP` was also the start of the name of `db-01/HTTP Cert`'s
/// incident, and the recovery of `HTTP` was posted to it (and closed it); and `db-01/HTTP Cert`
/// the start of that of `HTTP` failing with an output (which the host writes) starting `Cert`.
fn in_names(event: &Event) -> Event {
    fn tied(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            if !c.is_whitespace() {
                out.push(c);
            } else if !out.ends_with(NAME_SPACE) {
                out.push(NAME_SPACE);
            }
        }
        out
    }
    let mut e = event.clone();
    e.entity = tied(&e.entity);
    e.check = tied(&e.check);
    e.namespace = e.namespace.as_deref().map(tied);
    e.command = e.command.as_deref().map(tied);
    e.incident_key = e.incident_key.as_deref().map(tied);
    e.labels.values_mut().for_each(|v| *v = tied(v));
    e
}

/// The space inside a value of an incident name ([`in_names`]).
const NAME_SPACE: char = '\u{a0}';

/// `s` on one line: every run of whitespace but [`NAME_SPACE`] as one space, none at the ends.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() && c != NAME_SPACE).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Why page `page` of `GET /api/v1/incidents`, holding `len` incidents, is the last one of the
/// list, page 1 having held `first`; `None` when more may follow. The spec's answer is a bare
/// array, so the pages are all there is to go by: an empty page ends the list; so does a page
/// after the first that is shorter than page 1, which showed how many Reactio serves a page
/// (the `per_page` asked for, or fewer: the spec sets no maximum). A short page 1 alone does not
/// end it, for the same reason.
fn last_page(page: usize, len: usize, first: usize) -> Option<&'static str> {
    if len == 0 {
        Some("an empty page")
    } else if page > 1 && len < first {
        Some("a page shorter than page 1")
    } else {
        None
    }
}

/// The broadcast text of `event`: `template` rendered, or [`DEFAULT_NOTIFICATION_TEXT`] when it
/// renders blank (a `{label.…}` the event lacks, an empty `{output}`). A broadcast that says
/// nothing notifies nobody of anything, and `POST /api/v1/notifications` requires the text
/// (spec: the official client's recorded 400 is `notification_text: missing_field`), so the
/// repeat of such an incident was refused for good. Cut to [`MAX_NOTIFICATION_CHARS`].
fn broadcast_text(template: &Template, event: &Event) -> String {
    let text = template.render_telling(event).unwrap_or_else(|| DEFAULT_NOTIFICATION_TEXT.to_string());
    truncate_chars(&text, MAX_NOTIFICATION_CHARS)
}

/// The statuses a lost create's incident may have by now, each a list the lookup reads: the
/// one the create body opens it with (`open`, the spec's default, when it says none) first,
/// then the others (someone may have put it on hold, `pend`, or closed it before the flush
/// looked; read only for incidents created since the create was sent, the lists are short).
fn lookup_statuses(body: &Value) -> [&'static str; 3] {
    match body.get("status").and_then(Value::as_str) {
        Some("pend") => ["pend", "open", "close"],
        Some("close") => ["close", "open", "pend"],
        _ => ["open", "pend", "close"],
    }
}

/// Where a lookup reading several paginated lists one after the other stands, page by page.
#[derive(Debug, Default)]
struct ListCursor {
    /// The list being read (0 the first).
    list: usize,
    /// Pages read of it.
    pages: usize,
    /// Length of its page 1.
    first: usize,
}

impl ListCursor {
    /// One more page of `len` items read: the list ends there (why, [`last_page`]: the cursor
    /// moves to the next list) or goes on (`None`).
    fn read(&mut self, len: usize) -> Option<&'static str> {
        self.pages += 1;
        if self.pages == 1 {
            self.first = len;
        }
        let ended = last_page(self.pages, len, self.first);
        if ended.is_some() {
            *self = ListCursor { list: self.list + 1, ..ListCursor::default() };
        }
        ended
    }
}

/// How a log line names an incident in `status` that is not closed: `open`, `pending`.
fn adjective(status: Status) -> &'static str {
    if status == Status::Pend { "pending" } else { "open" }
}

/// The list and page (1 the first) to read after `pages`; `None` when a page is no list.
fn next_list_page(pages: &[Response]) -> Option<(usize, usize)> {
    let mut cursor = ListCursor::default();
    for page in pages {
        cursor.read(serde_json::from_str::<Value>(&page.body).ok()?.as_array()?.len());
    }
    Some((cursor.list, cursor.pages + 1))
}

/// The stored Reactio incident id, when the incident is open and one was remembered.
fn stored_incident(job: &Job<'_>) -> Option<u64> {
    job.previous.filter(|p| p.open).and_then(|p| p.refs.get(INCIDENT_ID)).and_then(incident_id_of)
}

/// The Reactio incidents the ledger holds open for incident keys other than `key` (none without
/// a store, or when it cannot be listed: logged, and the lookup goes on by name alone).
fn claimed_incidents(ctx: &Ctx<'_, Reactio>, key: &str) -> HashSet<u64> {
    let Some(store) = ctx.store else { return HashSet::new() };
    match common::state::open_refs_of_others(store, Some(key), INCIDENT_ID) {
        Ok(refs) => refs.iter().filter_map(incident_id_of).collect(),
        Err(e) => {
            ctx.log.warn(format!("cannot list {} to keep other incidents' Reactio incidents apart: {e:#}", store.describe()));
            HashSet::new()
        }
    }
}

/// What a run's delivery (`outcome`, as a request's) comes to for the flush carrying it on.
fn resumed(outcome: Outcome<Done>) -> Resumed {
    match outcome {
        Outcome::Delivered(done) => Resumed::Delivered(done),
        failed => Resumed::Failed(failed.failure().unwrap_or(Outcome::Skipped(String::new()))),
    }
}

/// An incident id: a positive integer, or a string holding one.
fn incident_id_of(v: &Value) -> Option<u64> {
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

/// A DNS label: letters, digits and inner hyphens, at most 63 characters.
fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && !s.starts_with('-') && !s.ends_with('-') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Text for a Reactio timeline message, which is limited HTML (the official client's example
/// posts `<p>…</p><br />`): `&`, `<`, `>`, `"`, `'` escaped so that check output shows as
/// written, also inside an attribute the operator's template quotes either way
/// (`<a href='…/{entity}'>`), line breaks as `<br />`.
pub fn html_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let s = s.replace("\r\n", "\n");
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
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
    // `{incident_key}`: a Zabbix `incident_key:` line's text (else it is made of the escaped
    // entity and check).
    e.incident_key = e.incident_key.as_deref().map(html_text);
    for v in e.labels.values_mut() {
        *v = html_text(v);
    }
    e
}

/// The reason a failed delivery carries.
/// 2xx delivered; 401/400/other 4xx permanent, 429 and 5xx retryable, each explained with
/// Reactio's `type`, `message` and, for `validation_error`, the `errors[].field` and `code`s:
/// `HTTP 400 validation_error: validation error (notification_text: missing_field)`.
/// [`classify`] for `GET /api/v1/incidents`, whose answer is a JSON array (spec "Other
/// calls"): a 2xx answer that is not one (a proxy's or a maintenance page, `{}`) lists nothing
/// and cannot say that no incident is open. Retried, then the failure: a recovery waits in the
/// spool ([`Reactio::recover`]), as for a 5xx, instead of being recorded resolved with its
/// incident left open in Reactio.
fn classify_list(resp: &Response) -> Outcome {
    match classify(resp) {
        Outcome::Delivered(()) if !serde_json::from_str::<Value>(&resp.body).is_ok_and(|v| v.is_array()) => {
            Outcome::Retry(Retry::not_sent(format!("GET /api/v1/incidents answered HTTP {} without a list", resp.status)))
        }
        other => other,
    }
}

fn classify(resp: &Response) -> Outcome {
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
    classify_json_api_with(resp, explain)
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
        Reactio::from_settings(&m, &config::typed("reactio", &m)?)
    }

    fn event(output: &str) -> Event {
        let e = json!({"client": {"name": "web-01"}, "check": {"name": "check_disk", "status": 2, "output": output}});
        parse_json(e.to_string().as_bytes(), None).expect("event")
    }

    #[test]
    fn the_list_ends_at_an_empty_page_or_a_page_shorter_than_page_1() {
        // Page 1 short of `per_page` may be all Reactio serves a page: not the end.
        assert_eq!(last_page(1, 3, 3), None);
        assert_eq!(last_page(1, LIST_PER_PAGE, LIST_PER_PAGE), None);
        assert_eq!(last_page(1, 0, 0), Some("an empty page"));
        assert_eq!(last_page(2, 0, 3), Some("an empty page"));
        assert_eq!(last_page(2, 51, LIST_PER_PAGE), Some("a page shorter than page 1"));
        assert_eq!(last_page(2, 11, 20), Some("a page shorter than page 1"));
        assert_eq!(last_page(2, 20, 20), None);
        assert_eq!(last_page(3, LIST_PER_PAGE, LIST_PER_PAGE), None);
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
        let id_of = |inc: &Incident| {
            stored_incident(&Job { action: Action::Trigger, event: &e, incident_key: "k", previous: Some(inc), event_time: 1 })
        };
        let mut inc = Incident { open: true, ..Incident::default() };
        inc.refs.insert(INCIDENT_ID.into(), json!(123));
        assert_eq!(id_of(&inc), Some(123));
        inc.refs.insert(INCIDENT_ID.into(), json!("456"));
        assert_eq!(id_of(&inc), Some(456));
        inc.open = false;
        assert_eq!(id_of(&inc), None);
        assert_eq!(incident_id_of(&json!(0)), None);
        assert_eq!(incident_id_of(&json!(null)), None);
    }

    /// A recovery queued with the id stored open keeps it in the spool; one of an earlier
    /// version (or with no id stored) reads as without.
    #[test]
    fn a_queued_recovery_keeps_the_incident_stored_open_when_it_queued() {
        let queued = Call::Recover {
            name: "web-01/check_disk".into(),
            shown: "web-01/check_disk x".into(),
            message: "m".into(),
            incident_id: Some(7),
        };
        let kept = serde_json::to_value(&queued).expect("JSON");
        assert_eq!(kept["incident_id"], 7);
        assert_eq!(serde_json::from_value::<Call>(kept).expect("back"), queued);
        let old: Call = serde_json::from_value(json!({"call": "recover", "name": "n", "shown": "s", "message": "m"})).expect("read");
        assert!(matches!(old, Call::Recover { incident_id: None, .. }));
        let none = serde_json::to_value(Call::Recover { name: "n".into(), shown: "s".into(), message: "m".into(), incident_id: None })
            .expect("JSON");
        assert!(none.get("incident_id").is_none(), "{none}");
    }

    #[test]
    fn acknowledge_is_unsupported_and_severities_default_to_critical() {
        let p = provider(json!({})).expect("provider");
        assert_eq!(p.unsupported(Action::Acknowledge).as_deref(), Some("Reactio has no acknowledge"));
        assert_eq!(p.unsupported(Action::Trigger), None);
        let c: Common = config::typed("reactio", &Reactio::defaults()).expect("common");
        assert_eq!(c.severities, vec![common::config::Severity::Critical]);
    }

    #[test]
    fn classification_explains_reactio_errors() {
        let r = |status, body: &str| Response { status, body: body.into(), retry_after: None, location: None };
        let retry = |reason: &str| Outcome::Retry(common::outcome::Retry::not_sent(reason));
        assert_eq!(
            classify(&r(
                400,
                r#"{"errors":[{"field":"notification_text","code":"missing_field"}],"type":"validation_error","message":"validation error"}"#
            )),
            Outcome::Refused("HTTP 400 validation_error: validation error (notification_text: missing_field)".into())
        );
        assert_eq!(
            classify(&r(401, r#"{"type":"authentication_error","message":"invalid api key"}"#)),
            Outcome::Refused("HTTP 401 authentication_error: invalid api key".into())
        );
        assert_eq!(
            classify(&r(500, r#"{"type":"internal_server_error","message":"Internal Server Error"}"#)),
            retry("HTTP 500 internal_server_error: Internal Server Error")
        );
        assert_eq!(classify(&r(502, "<html>bad gateway</html>")), retry("HTTP 502"));
        assert_eq!(classify(&r(201, "{}")), Outcome::Delivered(()));
    }

    #[test]
    fn every_placeholder_of_a_timeline_message_is_text() {
        let mut e = event("<b>out</b>");
        e.incident_key = Some("<img src=x onerror=alert(1)>".into());
        let t = Template::parse("t", "<p>{incident_key} {entity} {output}</p>").expect("template");
        assert_eq!(t.render(&html_event(&e)), "<p>&lt;img src=x onerror=alert(1)&gt; web-01 &lt;b&gt;out&lt;/b&gt;</p>");
    }

    #[test]
    fn html_text_escapes_and_breaks_lines() {
        assert_eq!(html_text("ディスク <95%> \"x\" & y\r\nz"), "ディスク &lt;95%&gt; &quot;x&quot; &amp; y<br />z");
        assert_eq!(html_text("web' onmouseover='x"), "web&#39; onmouseover=&#39;x");
    }

    /// README.md's "Who may set what" says what `SETTINGS` says.
    /// A recovery finds its incident by the name up to the output followed by a plain space
    /// ([`Reactio::find_open`]). A name that ends in whitespace (a check `HTTP `, a label
    /// `sre ` before `{output}`) ends in a no-break space in the incident's name; cut off the
    /// name looked for, the recovery missed its own incident and took that of `HTTP`.
    #[test]
    fn a_name_ending_in_a_space_finds_its_own_incident_and_no_other() {
        let p = provider(json!({"api_key": "k", "organization": "o"})).expect("provider");
        let named = |check: &str| {
            let mut e = event("HTTP CRITICAL");
            e.check = check.into();
            e
        };
        let finds = |looked: &Event, opened: &Event| {
            let name = p.name_before_output(looked, "key");
            p.incident_name(opened, "key").strip_prefix(name.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
        };
        for check in ["HTTP ", "HTTP\t", "HTTP Cert "] {
            assert!(finds(&named(check), &named(check)), "{check:?}: its own incident");
            assert!(!finds(&named(check), &named(check.trim_end())), "{check:?}: {:?}'s incident", check.trim_end());
            assert!(!finds(&named(check.trim_end()), &named(check)), "{:?}: {check:?}'s incident", check.trim_end());
        }
    }

    #[test]
    fn the_readme_says_who_may_set_each_setting() {
        let found = common::trust::readme::disagreements(include_str!("../../README.md"), Reactio::NAME, Reactio::SETTINGS);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}
