//! Who may set which setting: the operator, the check, or the entity (DESIGN.md "Trust").
//!
//! Settings reach a handler from places that are not equally trusted:
//!
//! - **operator** ([`Origin::Operator`]): settings files, the environment, flags — everything;
//! - **check** ([`Origin::Check`]): Sensu 1.x check attributes, Sensu Go check annotations,
//!   Nagios/Icinga custom variables, Zabbix `{ALERT.SENDTO}` — written in the monitoring
//!   server's configuration: what to say, whom to page and how, never where requests go or
//!   files are written;
//! - **entity** ([`Origin::Entity`]): Sensu Go entity annotations, written by the agent *on the
//!   monitored host*, and Sensu 1.x's `client.pager_team` (the client definition, written there
//!   too) — the words of its own events only (summary text, labels,
//!   classification), never a link or markup, nor a call's voice or language, so that a
//!   compromised host cannot send its pages (or the credentials) elsewhere, resolve another
//!   host's incident, stop paging, delay the spool, or put a link of its choosing behind the
//!   handlers' labels.
//!
//! Each setting declares the least trusted origin that may set it ([`Trust`]): the shared ones
//! in [`COMMON`], each handler's in its `Provider::SETTINGS`. A setting no table names is
//! operator-only, so that a setting added later is safe until someone decides otherwise. An
//! operator can let entities set named check-level settings with `entity_settings` (e.g.
//! `["pager_team"]`), and can narrow what checks may set with `check_settings` (e.g.
//! `["pager_team", "severities"]`: where check results can come from the monitored host
//! itself, such as a Sensu client socket); operator-level settings never come from an event.
//! README.md's "Who may set what" tells operators the same; [`readme`] holds it to the tables.
//!
//! [`apply`] lays the event's overrides over the operator's settings one at a time: a refused
//! override is logged once, naming the setting and where it came from, and the page goes out
//! as configured; an allowed override whose value is invalid (a template that does not parse,
//! a duration out of range), also once the others are laid over, is logged and the
//! operator's value stays — an event never costs the page by carrying a bad value.

use serde_json::{Map, Value};

use crate::config::Common;
use crate::event::{Event, Format};
use crate::exit::Result;

pub mod readme;

/// Where a value came from, most trusted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// Settings files, environment, flags.
    Operator,
    /// The check's definition on the monitoring server (and Zabbix SENDTO).
    Check,
    /// The monitored host's own entity (Sensu Go entity annotations, Sensu 1.x `client.pager_team`).
    Entity,
}

/// The least trusted origin that may set a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Only settings files, the environment and flags: where requests go and whom they trust,
    /// where files are written, timing, the spool, secrets read from files.
    Operator,
    /// Also the check: whom to page and how (credentials, routing, recipients), keys, filters.
    Check,
    /// Also the entity: the words of its own events (summary text, labels, classification);
    /// never a link or markup (Slack `link_template`, PagerDuty `client_url`, Reactio's HTML
    /// `message`), nor the voice or language of a call.
    Entity,
}

impl Trust {
    /// Whether a value from `origin` may set a setting of this trust.
    pub fn allows(self, origin: Origin) -> bool {
        match self {
            Trust::Operator => origin == Origin::Operator,
            Trust::Check => origin <= Origin::Check,
            Trust::Entity => true,
        }
    }

    /// `operator`, `check`, `entity`: the README table's words.
    pub fn name(self) -> &'static str {
        match self {
            Trust::Operator => "operator",
            Trust::Check => "check",
            Trust::Entity => "entity",
        }
    }
}

/// The trust of the settings every handler shares ([`crate::config::Common`]).
pub const COMMON: &[(&str, Trust)] = &[
    ("timeout", Trust::Operator),
    ("api_url", Trust::Operator),
    ("ca_file", Trust::Operator),
    ("state_dir", Trust::Operator),
    ("state_store", Trust::Operator),
    ("spool_dir", Trust::Operator),
    ("spool_max_age", Trust::Operator),
    ("notification_types", Trust::Operator),
    ("entity_settings", Trust::Operator),
    ("check_settings", Trust::Operator),
    ("zabbix_severities", Trust::Operator),
    ("severities", Trust::Check),
    ("refresh", Trust::Check),
    ("occurrences", Trust::Check),
];

/// The trust of `setting`: from the handler's table `own`, else [`COMMON`], else
/// [`Trust::Operator`] (a setting nobody classified is not settable from events).
/// `*_file` settings (a secret read from a file) are always operator-only: an event naming a
/// file would make the handler read, and send, a file of its choosing.
pub fn of(own: &[(&str, Trust)], setting: &str) -> Trust {
    if setting.ends_with("_file") {
        return Trust::Operator;
    }
    own.iter().chain(COMMON).find(|(name, _)| *name == setting).map_or(Trust::Operator, |(_, t)| *t)
}

/// The settings an event may set at all: the check- and entity-level ones of [`COMMON`] and
/// the handler's table `own`, in table order (the handler's first). These are what the
/// operator's `check_settings` and `entity_settings` entries can usefully name.
pub fn event_settings(own: &[(&'static str, Trust)]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for (name, _) in own.iter().chain(COMMON) {
        if of(own, name) != Trust::Operator && !out.contains(name) {
            out.push(name);
        }
    }
    out
}

/// One setting an event carries, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Who wrote it.
    pub origin: Origin,
    /// Where exactly, for the log: `entity annotation`, `client attribute` (Sensu 1.x),
    /// `check annotation`, `check attribute`,
    /// `custom variable`, `Zabbix SENDTO`.
    pub place: &'static str,
    /// The setting name within the section (`routing_key`).
    pub setting: String,
    /// The value as the event gave it.
    pub value: Value,
}

/// The overrides `event` carries for `section`, least trusted first (entity, then check), so
/// that laying them over in order lets the check win over the entity.
pub fn overrides_of(event: &Event, section: &str) -> Vec<Override> {
    let check_place = match event.format {
        Format::SensuGo => "check annotation",
        Format::Sensu => "check attribute",
        Format::Nagios | Format::Icinga => "custom variable",
        Format::Zabbix => "Zabbix SENDTO",
        _ => "check setting",
    };
    let entity = event.entity_overrides.get(section).into_iter().flatten().map(|(k, v)| Override {
        origin: Origin::Entity,
        place: if event.format == Format::Sensu { "client attribute" } else { "entity annotation" },
        setting: k.clone(),
        value: v.clone(),
    });
    let check = event.overrides.get(section).into_iter().flatten().map(|(k, v)| Override {
        origin: Origin::Check,
        place: check_place,
        setting: k.clone(),
        value: v.clone(),
    });
    entity.chain(check).collect()
}

/// What the operator lets events set beyond the trust tables: its `entity_settings` and
/// `check_settings`, as [`Common`] read them (the one parse of both: entries trimmed,
/// compared exactly).
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowed<'a> {
    /// The check-level settings entity annotations may set too (`entity_settings`).
    pub entity_settings: &'a [String],
    /// The check-level settings events may set (`check_settings`): `None` (absent) every one,
    /// else only those named (an empty list: none). It narrows entity annotations that
    /// `entity_settings` lifts to check level too.
    pub check_settings: Option<&'a [String]>,
}

impl<'a> Allowed<'a> {
    /// The operator's, from its settings `common`.
    pub fn of(common: &'a Common) -> Self {
        Allowed { entity_settings: &common.entity_settings, check_settings: common.check_settings.as_deref() }
    }
}

/// Lay `overrides` over the operator's settings `operator` for `section` (handler table
/// `own`; what the operator's `entity_settings` and `check_settings` allow: `allowed`), and
/// return the settings to use.
///
/// `valid` says whether a whole settings section can be used (deserializes, validates, builds
/// the provider). When the operator's own settings pass it, each override is kept only if the
/// settings still pass with it, in order; one refused is tried again after the others (it may
/// need another the event sets: a channel and the token to post there), never over a later
/// override of the same setting that was kept. Otherwise (the operator's configuration itself
/// is wrong, which the caller reports with exit 78) the allowed overrides are laid over
/// unchecked.
///
/// `log` gets one warning per override not used: refused by trust (naming the setting, where
/// it came from and who may set it) or invalid (with the reason). Never fails itself.
pub fn apply(
    section: &str,
    operator: Map<String, Value>,
    allowed: Allowed<'_>,
    overrides: Vec<Override>,
    own: &[(&str, Trust)],
    valid: &dyn Fn(&Map<String, Value>) -> Result<()>,
    log: &mut dyn FnMut(String),
) -> Map<String, Value> {
    if overrides.is_empty() {
        return operator;
    }
    let checked = valid(&operator).is_ok();
    let mut current = operator;
    let mut admitted: Vec<Override> = Vec::new();
    for o in overrides {
        let name = format!("{section}.{}", o.setting);
        let trust = of(own, &o.setting);
        let by_operator = o.origin == Origin::Entity && trust == Trust::Check && allowed.entity_settings.contains(&o.setting);
        if !trust.allows(o.origin) && !by_operator {
            let why = match trust {
                Trust::Operator => "only settings files, the environment and flags may set it".to_string(),
                _ => format!(
                    "{} {} is written on the monitored host, which may set presentation only \
                     (allow it with `{section}.entity_settings: [\"{}\"]`)",
                    article(o.place),
                    o.place,
                    o.setting
                ),
            };
            log(format!("event override `{name}` ignored: set by {} {}; {why}", article(o.place), o.place));
            continue;
        }
        // Narrowed for every event: a check's override, and an entity's that `entity_settings`
        // lifted to check level (the monitored host must not get what its checks may not).
        if trust == Trust::Check && !check_may_set(allowed.check_settings, &o.setting) {
            log(not_named(section, &o.setting, &format!("{} {}", article(o.place), o.place)));
            continue;
        }
        // An entity rewords its own events; it never silences them. A blank value from the
        // monitored host would switch off what the operator configured (Reactio's
        // `notification_text` of "" opens incidents without a broadcast to anyone's devices).
        // Blank as it shows: zero-width and control characters count (`template::is_blank`). A check's
        // value too where check results may come from the host (the operator set
        // `check_settings`: a Sensu 1.x client socket, a Sensu Go agent's API).
        let from_host = o.origin == Origin::Entity || (o.origin == Origin::Check && allowed.check_settings.is_some());
        if from_host && o.value.as_str().is_some_and(crate::template::is_blank) {
            log(format!(
                "event override `{name}` ignored: set blank by {} {}, which may reword a page but not silence it; \
                 the operator's setting is used",
                article(o.place),
                o.place
            ));
            continue;
        }
        admitted.push(o);
    }
    if !checked {
        return crate::config::overlay(current, admitted.into_iter().map(|o| Map::from_iter([(o.setting, o.value)])));
    }
    // Each admitted override is kept if the settings still pass with it. One that does not may
    // need another set by the same event (Twilio's `announce_channel` with the check's own
    // `announce_token`, which comes after it): so those refused are tried again after the
    // others, as long as a round keeps one more. An override is never tried again once a later
    // one for the same setting was kept (a check's value beats the entity's).
    let mut kept = vec![false; admitted.len()];
    let mut refused: Vec<Option<String>> = vec![None; admitted.len()];
    loop {
        let mut progress = false;
        for (i, o) in admitted.iter().enumerate() {
            let later_kept = admitted.iter().zip(&kept).skip(i + 1).any(|(l, k)| *k && l.setting == o.setting);
            if kept[i] || later_kept {
                continue;
            }
            let candidate = crate::config::overlay(current.clone(), [Map::from_iter([(o.setting.clone(), o.value.clone())])]);
            match valid(&candidate) {
                Ok(()) => {
                    (current, kept[i], refused[i], progress) = (candidate, true, None, true);
                }
                Err(e) => refused[i] = Some(e.to_string()),
            }
        }
        if !progress || kept.iter().all(|k| *k) {
            break;
        }
    }
    for (o, why) in admitted.iter().zip(refused) {
        if let Some(e) = why {
            // What is used instead: another override of the setting that was kept, else the
            // operator's.
            let instead = match admitted.iter().zip(&kept).find(|(other, k)| **k && other.setting == o.setting) {
                Some((other, _)) => format!("the value from {} {} is used", article(other.place), other.place),
                None => "the operator's setting is used".to_string(),
            };
            log(format!(
                "event override `{section}.{}` ignored: the value from {} {} is invalid ({e}); {instead}",
                o.setting,
                article(o.place),
                o.place
            ));
        }
    }
    current
}

/// Whether `check_settings` (`None`: absent) lets an event set the check-level `setting`.
fn check_may_set(check_settings: Option<&[String]>, setting: &str) -> bool {
    check_settings.is_none_or(|list| list.iter().any(|s| s == setting))
}

/// The log line for an event's check-level `setting`, set by `by` (`a check attribute`),
/// that `check_settings` does not name.
fn not_named(section: &str, setting: &str, by: &str) -> String {
    format!("event override `{section}.{setting}` ignored: set by {by}; `{section}.check_settings` does not name it")
}

/// Sensu 1.x's own filter attributes on the check (`check.occurrences`, `check.refresh`, as
/// sensu-plugin reads them) are check-level settings that reach the filters as event fields,
/// not as overrides: when the operator's `check_settings` (`None`: absent) does not name them,
/// the event's values are dropped with one line each to `log`, as [`apply`] does for
/// overrides, and the operator's `occurrences` / `refresh` decide.
pub fn narrow_filter_attributes(event: &mut Event, section: &str, check_settings: Option<&[String]>, log: &mut dyn FnMut(String)) {
    for (setting, value) in [("occurrences", &mut event.min_occurrences), ("refresh", &mut event.refresh)] {
        if value.is_some() && !check_may_set(check_settings, setting) {
            *value = None;
            log(not_named(section, setting, &format!("a check attribute (`check.{setting}`)")));
        }
    }
}

fn article(place: &str) -> &'static str {
    if place.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;
    use crate::exit::Code;
    use serde_json::json;

    const OWN: &[(&str, Trust)] = &[("routing_key", Trust::Check), ("pager_team", Trust::Check), ("summary_template", Trust::Entity)];

    fn o(origin: Origin, setting: &str, value: Value) -> Override {
        let place = if origin == Origin::Entity { "entity annotation" } else { "check annotation" };
        Override { origin, place, setting: setting.into(), value }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// Valid unless `summary_template` holds `{entitty}` or `timeout` is `"1ms"`.
    fn valid(m: &Map<String, Value>) -> Result<()> {
        if m.get("summary_template") == Some(&json!("{entitty}")) || m.get("timeout") == Some(&json!("1ms")) {
            return Err(Code::Config.msg("settings `x`: bad"));
        }
        Ok(())
    }

    /// [`apply`] for `pagerduty` (table [`OWN`], [`valid`]) with what `operator`'s own
    /// `entity_settings` and `check_settings` allow, as the pipeline reads them.
    fn apply_as(operator: Map<String, Value>, overrides: Vec<Override>, log: &mut dyn FnMut(String)) -> Map<String, Value> {
        let common: Common = crate::config::typed("pagerduty", &operator).unwrap();
        apply("pagerduty", operator, Allowed::of(&common), overrides, OWN, &valid, log)
    }

    #[test]
    fn trust_levels() {
        assert_eq!(of(OWN, "routing_key"), Trust::Check);
        assert_eq!(of(OWN, "timeout"), Trust::Operator);
        assert_eq!(of(OWN, "severities"), Trust::Check);
        assert_eq!(of(OWN, "summary_template"), Trust::Entity);
        assert_eq!(of(OWN, "something_new"), Trust::Operator, "unclassified: operator only");
        assert_eq!(of(&[("routing_key_file", Trust::Entity)], "routing_key_file"), Trust::Operator);
        assert!(Trust::Check.allows(Origin::Check) && !Trust::Check.allows(Origin::Entity));
        assert!(!Trust::Operator.allows(Origin::Check));
    }

    #[test]
    fn an_override_invalid_alone_is_kept_with_the_one_it_needs_and_never_over_a_later_one() {
        // `summary_template` "needs-team" is valid only with a `pager_team`.
        let valid = |m: &Map<String, Value>| -> Result<()> {
            match m.get("summary_template") == Some(&json!("needs-team")) && !m.contains_key("pager_team") {
                true => Err(Code::Config.msg("settings `x`: needs a team")),
                false => Ok(()),
            }
        };
        let run = |overrides: Vec<Override>| {
            let mut lines = Vec::new();
            let m = apply("pagerduty", Map::new(), Allowed::default(), overrides, OWN, &valid, &mut |l| lines.push(l));
            (m, lines)
        };
        // The team comes after it: kept in a second round.
        let (m, lines) =
            run(vec![o(Origin::Entity, "summary_template", json!("needs-team")), o(Origin::Check, "pager_team", json!("ops"))]);
        assert_eq!(m, obj(json!({"summary_template": "needs-team", "pager_team": "ops"})), "{lines:?}");
        assert!(lines.is_empty(), "{lines:?}");
        // The check's own template was kept: the entity's is not tried again over it.
        let (m, lines) = run(vec![
            o(Origin::Entity, "summary_template", json!("needs-team")),
            o(Origin::Check, "summary_template", json!("{entity}")),
            o(Origin::Check, "pager_team", json!("ops")),
        ]);
        assert_eq!(m["summary_template"], "{entity}", "{lines:?}");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("`pagerduty.summary_template` ignored: the value from an entity annotation is invalid"), "{lines:?}");
        assert!(lines[0].ends_with("; the value from a check annotation is used"), "{lines:?}");
    }

    #[test]
    fn what_events_may_set() {
        let names = event_settings(OWN);
        assert_eq!(names, ["routing_key", "pager_team", "summary_template", "severities", "refresh", "occurrences"]);
        assert_eq!(event_settings(&[("refresh", Trust::Operator), ("x_file", Trust::Check)]), ["severities", "occurrences"]);
    }

    #[test]
    fn entity_may_set_presentation_only_and_check_wins() {
        let operator = obj(json!({"routing_key": "OPERATOR", "timeout": "10s", "summary_template": "{entity}: {output}"}));
        let overrides = vec![
            o(Origin::Entity, "routing_key", json!("EVIL")),
            o(Origin::Entity, "timeout", json!("1ms")),
            o(Origin::Entity, "spool_max_age", json!("1s")),
            o(Origin::Entity, "summary_template", json!("host says {output}")),
            o(Origin::Check, "api_url", json!("http://evil.example")),
            o(Origin::Check, "pager_team", json!("ops")),
        ];
        let mut lines = Vec::new();
        let m = apply_as(operator, overrides, &mut |l| lines.push(l));
        assert_eq!(m["routing_key"], "OPERATOR");
        assert_eq!(m["timeout"], "10s");
        assert_eq!(m.get("spool_max_age"), None);
        assert_eq!(m["summary_template"], "host says {output}");
        assert_eq!(m["pager_team"], "ops", "a check may choose the route");
        assert_eq!(m.get("api_url"), None);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with("event override `pagerduty.routing_key` ignored: set by an entity annotation"), "{}", lines[0]);
        assert!(lines[0].contains("entity_settings"), "{}", lines[0]);
        assert!(lines[1].contains("`pagerduty.timeout`") && lines[1].contains("only settings files"), "{}", lines[1]);
        assert!(lines[3].starts_with("event override `pagerduty.api_url` ignored: set by a check annotation"), "{}", lines[3]);
        assert!(lines.iter().all(|l| !l.contains("EVIL") && !l.contains("evil.example")), "values are not echoed: {lines:#?}");
    }

    #[test]
    fn an_invalid_value_from_an_event_keeps_the_operators() {
        let operator = obj(json!({"summary_template": "{entity}: {output}"}));
        let mut lines = Vec::new();
        let m = apply_as(operator, vec![o(Origin::Entity, "summary_template", json!("{entitty}"))], &mut |l| lines.push(l));
        assert_eq!(m["summary_template"], "{entity}: {output}");
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("is invalid") && lines[0].contains("operator's setting is used"), "{}", lines[0]);
    }

    #[test]
    fn the_operator_can_narrow_what_checks_set() {
        let overrides = || {
            vec![
                o(Origin::Check, "routing_key", json!("FROM-CHECK")),
                o(Origin::Check, "pager_team", json!("db")),
                o(Origin::Check, "summary_template", json!("check says {output}")),
            ]
        };
        let run = |narrow: Value| {
            let mut operator = obj(json!({"routing_key": "OPERATOR"}));
            if narrow != json!("absent") {
                operator.insert("check_settings".into(), narrow);
            }
            let mut lines = Vec::new();
            let m = apply_as(operator, overrides(), &mut |l| lines.push(l));
            (m, lines)
        };
        // Absent or null: every check-level setting, as before.
        for narrow in [json!("absent"), Value::Null] {
            let (m, lines) = run(narrow);
            assert_eq!((m["routing_key"].as_str(), m["pager_team"].as_str()), (Some("FROM-CHECK"), Some("db")));
            assert!(lines.is_empty(), "{lines:?}");
        }
        // A list (or a comma-separated string): only those; presentation is not narrowed.
        for narrow in [json!(["pager_team"]), json!("pager_team")] {
            let (m, lines) = run(narrow);
            assert_eq!((m["routing_key"].as_str(), m["pager_team"].as_str()), (Some("OPERATOR"), Some("db")));
            assert_eq!(m["summary_template"], "check says {output}");
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert!(
                lines[0].contains("`pagerduty.routing_key` ignored") && lines[0].contains("`pagerduty.check_settings` does not name it"),
                "{}",
                lines[0]
            );
        }
        // Empty: no check-level setting at all.
        let (m, lines) = run(json!([]));
        assert_eq!((m["routing_key"].as_str(), m.get("pager_team")), (Some("OPERATOR"), None));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(of(OWN, "check_settings"), Trust::Operator, "never from an event");
        // An entity annotation that `entity_settings` lifts to check level is narrowed too.
        let operator = obj(json!({"routing_key": "OPERATOR", "entity_settings": ["pager_team", "routing_key"],
                                  "check_settings": ["severities"]}));
        let entity = vec![o(Origin::Entity, "pager_team", json!("ops")), o(Origin::Entity, "routing_key", json!("EVIL"))];
        let mut lines = Vec::new();
        let m = apply_as(operator, entity, &mut |l| lines.push(l));
        assert_eq!((m["routing_key"].as_str(), m.get("pager_team")), (Some("OPERATOR"), None));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().all(|l| l.contains("set by an entity annotation; `pagerduty.check_settings` does not name it")), "{lines:?}");
    }

    #[test]
    fn the_operator_can_allow_named_settings_from_entities() {
        let operator = obj(json!({"entity_settings": ["pager_team"], "routing_key": "K"}));
        let overrides = vec![o(Origin::Entity, "pager_team", json!("db")), o(Origin::Entity, "routing_key", json!("EVIL"))];
        let mut lines = Vec::new();
        let m = apply_as(operator.clone(), overrides, &mut |l| lines.push(l));
        assert_eq!(m["pager_team"], "db");
        assert_eq!(m["routing_key"], "K");
        assert_eq!(lines.len(), 1);
        // Never an operator-level one.
        let operator = obj(json!({"entity_settings": "timeout, pager_team"}));
        let m = apply_as(operator, vec![o(Origin::Entity, "timeout", json!("1h"))], &mut |_| {});
        assert_eq!(m.get("timeout"), None);
    }
}
