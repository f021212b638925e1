//! Sensu Core 1.x event JSON, as a pipe handler receives it on stdin.
//!
//! Shape (Sensu Core 1.8 "Events" reference): `client.name`, `check.{name, status, output,
//! command, interval, refresh, occurrences, history, executed, source}`, top-level `action`
//! (`create`/`resolve`/`flapping`), `occurrences`, `silenced`, `timestamp`. `check.history` holds
//! statuses as strings (`["0","2","2"]`). A proxy check names its entity in `check.source`,
//! which wins over `client.name`. Check attributes that are objects (`"pagerduty": {...}`) are
//! per-check settings overrides, as the sensu-plugin handlers read them; `check.pager_team`
//! selects a PagerDuty team, as the Ruby `handler-pagerduty.rb` did; so does `client.pager_team`,
//! there the client's (entity's) setting, admitted only as `entity_settings` allows.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::field;
use super::{Event, Format, SourceAction, TimeSource};
use crate::exit::{Code, Result};

/// Parse a Sensu 1.x event object. Errors (exit 65) name the field.
pub fn parse(root: &Map<String, Value>) -> Result<Event> {
    let check = field::req_object(root, "check", "check")?;
    let client = field::object(root, "client", "client")?;
    let entity = match field::string(check, "source", "check.source")? {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => match client {
            Some(c) => field::req_string(c, "name", "client.name")?.to_string(),
            None => return Err(Code::DataErr.msg("missing field `client` (or `check.source`)")),
        },
    };
    let action = match field::string(root, "action", "action")? {
        None => None,
        Some("create") => Some(SourceAction::Create),
        Some("resolve") => Some(SourceAction::Resolve),
        Some("flapping") => Some(SourceAction::Flapping),
        Some(other) => {
            return Err(Code::DataErr.msg(format!("field `action` must be create, resolve or flapping, found {}", super::quoted(other))));
        }
    };
    let history = match check.get("history") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().enumerate().map(|(i, v)| history_status(v, i)).collect::<Result<Vec<u32>>>()?,
        Some(_) => return Err(Code::DataErr.msg("field `check.history` must be an array")),
    };

    let mut overrides: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (k, v) in check {
        if let Value::Object(o) = v {
            overrides.insert(k.clone(), o.clone());
        }
    }
    // Free-form like the objects above (Sensu does not check it, and a result on the client
    // socket writes it): taken as it is, so that one that is no string is an invalid override,
    // logged and ignored (`crate::trust::apply`), never an event refused and its page lost.
    if let Some(team) = check.get("pager_team").filter(|v| !v.is_null()) {
        overrides.entry("pagerduty".to_string()).or_default().insert("pager_team".into(), team.clone());
    }

    // The Ruby handler also took `pager_team` from the client definition (check > client >
    // default). The client definition is written on the monitored host: the entity's, which
    // `crate::trust` admits only where `entity_settings` names `pager_team`. Taken as it is,
    // as the check's: one that is no string is an invalid override, never a page lost.
    let mut entity_overrides: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    if let Some(team) = client.and_then(|c| c.get("pager_team")).filter(|v| !v.is_null()) {
        entity_overrides.entry("pagerduty".to_string()).or_default().insert("pager_team".into(), team.clone());
    }

    let mut ignored = Vec::new();
    let interval = attribute(check, "interval", "check.interval", &mut ignored);
    let refresh = attribute(check, "refresh", "check.refresh", &mut ignored);
    let min_occurrences = attribute(check, "occurrences", "check.occurrences", &mut ignored);
    let executed = field::time(check, "executed", "check.executed").unwrap_or_else(|e| {
        ignored.push(format!("{e}; ignored, the event's `timestamp` used instead"));
        None
    });
    Ok(Event {
        format: Format::Sensu,
        entity,
        check: field::req_string(check, "name", "check.name")?.to_string(),
        namespace: None,
        status: field::status(check, "status", "check.status")?,
        output: field::string(check, "output", "check.output")?.unwrap_or_default().to_string(),
        action,
        occurrences: field::uint(root, "occurrences", "occurrences")?.unwrap_or(1),
        history,
        silenced: field::boolean(root, "silenced", "silenced")?.unwrap_or(false),
        interval,
        refresh,
        min_occurrences,
        timestamp: match executed {
            Some(t) => Some(t),
            None => field::time(root, "timestamp", "timestamp")?,
        },
        time_source: TimeSource::Host,
        command: field::string(check, "command", "check.command")?.map(str::to_string),
        labels: BTreeMap::new(),
        overrides,
        entity_overrides,
        ignored,
        ..Event::default()
    })
}

/// A check definition's number for `filter_repeated` (`interval`, `refresh`, `occurrences`):
/// an integer, or a string of digits (`"3"`). Sensu 1.x does not check `refresh` and
/// `occurrences` (sensu-settings validates `interval`, and only for a scheduled check), and
/// sensu-plugin's `filter_repeated` reads all three with Ruby's `to_i` (sensu-plugin
/// lib/sensu-handler.rb), so a definition a template wrote with strings worked with the Ruby
/// handler. Anything else (`"30m"`, `-1`, an object) is left out, as if not given, with a line
/// in `ignored` naming the field: these only tune when a page repeats, and refused, every event
/// of the check would cost its page.
fn attribute(check: &Map<String, Value>, key: &str, path: &str, ignored: &mut Vec<String>) -> Option<u64> {
    if let Some(Value::String(s)) = check.get(key)
        && let Ok(n) = s.trim().parse::<u64>()
    {
        return Some(n);
    }
    field::uint(check, key, path).unwrap_or_else(|e| {
        ignored.push(format!("{e}; ignored, as if not given"));
        None
    })
}

/// Sensu 1.x stores history entries as strings ("2"); accept integers too.
fn history_status(v: &Value, i: usize) -> Result<u32> {
    let parsed = match v {
        Value::String(s) => s.trim().parse::<u32>().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    };
    parsed.ok_or_else(|| {
        Code::DataErr.msg(format!("field `check.history[{i}]` must be a status such as \"2\", found {}", super::shown_json(v)))
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse_json;
    use super::*;

    const CREATE: &str = r#"{
      "id": "ef6b87d2-1f89-439f-8bea-33881436ab90",
      "action": "create",
      "timestamp": 1460172826,
      "occurrences": 2,
      "silenced": false,
      "client": {"name": "i-424242", "address": "8.8.8.8", "subscriptions": ["production"]},
      "check": {
        "name": "check_disk", "command": "check-disk-usage.rb -w 80 -c 90", "interval": 60,
        "refresh": 1800, "occurrences": 2, "issued": 1460172826, "executed": 1460172827,
        "status": 2, "output": "DISK CRITICAL - / 95%\n", "history": ["0", "2", "2"],
        "pagerduty": {"severities": ["critical"]}, "pager_team": "ops"
      }
    }"#;

    #[test]
    fn parses_a_create_event() {
        let e = parse_json(CREATE.as_bytes(), None).unwrap();
        assert_eq!(e.format, Format::Sensu);
        assert_eq!(e.entity, "i-424242");
        assert_eq!(e.check, "check_disk");
        assert_eq!(e.status, 2);
        assert_eq!(e.action, Some(SourceAction::Create));
        assert_eq!(e.occurrences, 2);
        assert_eq!(e.history, vec![0, 2, 2]);
        assert_eq!(e.previous_status(), Some(2));
        assert_eq!(e.interval, Some(60));
        assert_eq!(e.refresh, Some(1800));
        assert_eq!(e.min_occurrences, Some(2));
        assert_eq!(e.timestamp, Some(1460172827));
        let pd = e.overrides_for("pagerduty");
        assert_eq!(pd["severities"], serde_json::json!(["critical"]));
        assert_eq!(pd["pager_team"], "ops");
    }

    #[test]
    fn proxy_check_source_names_the_entity() {
        let e = parse_json(br#"{"client":{"name":"sensu-server"},"check":{"name":"ping","source":"router-1","status":2}}"#, None).unwrap();
        assert_eq!(e.entity, "router-1");
        assert_eq!(e.output, "");
        assert_eq!(e.occurrences, 1);
    }

    #[test]
    fn a_tuning_attribute_nothing_reads_is_left_out_not_the_page() {
        let e = parse_json(
            br#"{"client":{"name":"a"},"timestamp":1460172830,"check":{"name":"c","status":2,
                 "refresh":"30m","interval":"60s","occurrences":-1,"executed":"1460172827"}}"#,
            None,
        )
        .unwrap();
        assert_eq!((e.refresh, e.interval, e.min_occurrences), (None, None, None));
        assert_eq!(e.timestamp, Some(1460172830), "the event's timestamp instead");
        assert_eq!(e.ignored.len(), 4, "{:?}", e.ignored);
        for (line, field) in e.ignored.iter().zip(["check.interval", "check.refresh", "check.occurrences", "check.executed"]) {
            assert!(line.contains(field) && line.contains("ignored") && !line.contains("30m"), "{line}");
        }
        let e = parse_json(br#"{"client":{"name":"a"},"check":{"name":"c","status":2,"refresh":"1800"}}"#, None).unwrap();
        assert_eq!((e.refresh, e.ignored.len()), (Some(1800), 0));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"client":{"name":"a"},"check":{"name":"c"}}"#, "missing field `check.status`"),
            (r#"{"client":{"name":"a"},"check":{"name":"c","status":"2"}}"#, "`check.status` must be a non-negative integer"),
            (r#"{"client":{},"check":{"name":"c","status":2}}"#, "missing field `client.name`"),
            (r#"{"client":{"name":"a"},"check":{"name":"c","status":2,"history":["x"]}}"#, "check.history[0]"),
            (r#"{"client":{"name":"a"},"check":{"name":"c","status":2},"action":"delete"}"#, "`action`"),
            (r#"{"client":{"name":"a"},"check":{"name":"c","status":-1}}"#, "check.status"),
            (r#"{"client":{"name":"a"},"check":{"name":"c","status":2},"occurrences":"3"}"#, "`occurrences`"),
        ];
        for (input, want) in cases {
            let err = parse_json(input.as_bytes(), None).unwrap_err();
            assert_eq!(err.code, Code::DataErr);
            assert!(err.to_string().contains(want), "{input}: {err}");
            assert!(!err.to_string().contains('\n'));
        }
    }
}
