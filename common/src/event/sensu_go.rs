//! Sensu Go event JSON (`core/v2` Event), as a pipe handler receives it on stdin.
//!
//! Shape (Sensu Go "Events reference"): `entity.metadata.{name, namespace, labels,
//! annotations}`, `check.metadata.{name, labels, annotations}`, `check.{status, output, state,
//! occurrences, history[{status, executed}], is_silenced, interval, command, executed}`,
//! top-level `timestamp`. Per-check settings come from annotations named
//! `pagerpipe/<section>.<setting>` (e.g. `pagerpipe/pagerduty.severities: "critical"`); check
//! annotations win over entity annotations, as in Sensu Go's own handler plugins.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::field;
use super::{Event, Format, TimeSource};
use crate::exit::{Code, Result};

/// Annotation prefix for per-check settings overrides.
pub const ANNOTATION_PREFIX: &str = "pagerpipe/";

/// Parse a Sensu Go event object. Errors (exit 65) name the field.
pub fn parse(root: &Map<String, Value>) -> Result<Event> {
    let entity = field::req_object(root, "entity", "entity")?;
    let entity_meta = field::req_object(entity, "metadata", "entity.metadata")?;
    // An event may carry metrics and no check (Sensu Go "Events reference": StatsD, a
    // metrics-only result): a pipeline that hands one to a pager has nothing to page.
    if root.get("check").is_none_or(Value::is_null) && root.get("metrics").is_some_and(Value::is_object) {
        return Ok(Event::skipped(
            Format::SensuGo,
            field::req_string(entity_meta, "name", "entity.metadata.name")?.to_string(),
            "metrics",
            "a metrics event without a check pages nobody (leave this handler out of the metrics pipeline)".into(),
        ));
    }
    let check = field::req_object(root, "check", "check")?;
    let check_meta = field::req_object(check, "metadata", "check.metadata")?;

    let mut labels = field::string_map(entity_meta, "labels", "entity.metadata.labels")?;
    labels.extend(field::string_map(check_meta, "labels", "check.metadata.labels")?);
    // Entity annotations are written on the monitored host, check annotations on the backend:
    // kept apart, for `crate::trust` to weigh.
    let entity_overrides = settings(&field::string_map(entity_meta, "annotations", "entity.metadata.annotations")?);
    let overrides = settings(&field::string_map(check_meta, "annotations", "check.metadata.annotations")?);

    let history = match check.get("history") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("check.history[{i}]");
                let Value::Object(o) = item else {
                    return Err(Code::DataErr.msg(format!("field `{path}` must be an object")));
                };
                field::status(o, "status", &format!("{path}.status"))
            })
            .collect::<Result<Vec<u32>>>()?,
        Some(_) => return Err(Code::DataErr.msg("field `check.history` must be an array")),
    };

    Ok(Event {
        format: Format::SensuGo,
        entity: field::req_string(entity_meta, "name", "entity.metadata.name")?.to_string(),
        check: field::req_string(check_meta, "name", "check.metadata.name")?.to_string(),
        namespace: match field::string(check_meta, "namespace", "check.metadata.namespace")? {
            Some(ns) => Some(ns.to_string()),
            None => field::string(entity_meta, "namespace", "entity.metadata.namespace")?.map(str::to_string),
        },
        status: field::status(check, "status", "check.status")?,
        output: field::string(check, "output", "check.output")?.unwrap_or_default().to_string(),
        action: None,
        occurrences: field::uint(check, "occurrences", "check.occurrences")?.unwrap_or(1),
        history,
        silenced: field::boolean(check, "is_silenced", "check.is_silenced")?.unwrap_or(false),
        interval: field::uint(check, "interval", "check.interval")?,
        refresh: None,
        min_occurrences: None,
        timestamp: match field::time(check, "executed", "check.executed")? {
            Some(t) if t > 0 => Some(t),
            _ => field::time(root, "timestamp", "timestamp")?,
        },
        time_source: TimeSource::Host,
        command: field::string(check, "command", "check.command")?.map(str::to_string),
        labels,
        overrides,
        entity_overrides,
        ..Event::default()
    })
}

/// The `pagerpipe/<section>.<setting>` annotations as settings, per section.
fn settings(annotations: &BTreeMap<String, String>) -> BTreeMap<String, Map<String, Value>> {
    let mut out: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (k, v) in annotations {
        if let Some((section, setting)) = k.strip_prefix(ANNOTATION_PREFIX).and_then(|r| r.split_once('.'))
            && !section.is_empty()
            && !setting.is_empty()
        {
            out.entry(section.to_string()).or_default().insert(setting.to_string(), Value::String(v.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::parse_json;
    use super::*;

    const FAILING: &str = r#"{
      "timestamp": 1552506033,
      "entity": {"entity_class": "agent",
        "metadata": {"name": "webserver01", "namespace": "default",
          "labels": {"region": "eu", "role": "web"},
          "annotations": {"pagerpipe/pagerduty.severities": "warning,critical", "pagerpipe/pagerduty.pager_team": "web"}}},
      "check": {
        "metadata": {"name": "check-http", "namespace": "default", "labels": {"role": "http"},
          "annotations": {"pagerpipe/pagerduty.pager_team": "frontend", "unrelated": "x"}},
        "command": "check-http.rb -u http://localhost", "interval": 10,
        "status": 2, "output": "CheckHttp CRITICAL: 500\n", "state": "failing",
        "occurrences": 3, "occurrences_watermark": 3, "is_silenced": false, "executed": 1552506030,
        "history": [{"status": 0, "executed": 1552506000}, {"status": 2, "executed": 1552506010}]
      }
    }"#;

    #[test]
    fn parses_a_failing_event() {
        let e = parse_json(FAILING.as_bytes(), None).unwrap();
        assert_eq!(e.format, Format::SensuGo);
        assert_eq!(e.entity, "webserver01");
        assert_eq!(e.check, "check-http");
        assert_eq!(e.namespace.as_deref(), Some("default"));
        assert_eq!(e.status, 2);
        assert_eq!(e.occurrences, 3);
        assert_eq!(e.history, vec![0, 2]);
        assert_eq!(e.interval, Some(10));
        assert_eq!(e.timestamp, Some(1552506030));
        assert_eq!(e.labels["role"], "http", "check labels win over entity labels");
        assert_eq!(e.labels["region"], "eu");
        let pd = e.overrides_for("pagerduty");
        assert_eq!(Value::Object(pd), serde_json::json!({"pager_team": "frontend"}), "the check's annotations");
        let entity = &e.entity_overrides["pagerduty"];
        assert_eq!(Value::Object(entity.clone()), serde_json::json!({"severities": "warning,critical", "pager_team": "web"}));
        assert!(e.overrides_for("twilio").is_empty());
    }

    #[test]
    fn a_metrics_event_without_a_check_is_a_skip() {
        let e = parse_json(
            br#"{"entity":{"metadata":{"name":"web-01"}},"metrics":{"points":[{"name":"statsd.counter","value":1,"timestamp":1552506033,"tags":[]}]}}"#,
            None,
        )
        .unwrap();
        assert_eq!((e.format, e.entity.as_str()), (Format::SensuGo, "web-01"));
        assert!(e.skip.is_some_and(|s| s.reason.contains("metrics event without a check")));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"entity":{"metadata":{"name":"a"}},"check":{"metadata":{},"status":2}}"#, "missing field `check.metadata.name`"),
            (r#"{"entity":{"metadata":{"name":"a"}},"check":{"metadata":{"name":"c"}}}"#, "missing field `check.status`"),
            (r#"{"entity":{},"check":{"metadata":{"name":"c"},"status":2}}"#, "missing field `entity.metadata`"),
            (
                r#"{"entity":{"metadata":{"name":"a"}},"check":{"metadata":{"name":"c"},"status":2,"history":[{"status":"x"}]}}"#,
                "check.history[0].status",
            ),
            (
                r#"{"entity":{"metadata":{"name":"a","labels":{"x":1}}},"check":{"metadata":{"name":"c"},"status":2}}"#,
                "entity.metadata.labels.x",
            ),
            (
                r#"{"entity":{"metadata":{"name":"a"}},"check":{"metadata":{"name":"c"},"status":2,"is_silenced":"no"}}"#,
                "check.is_silenced",
            ),
        ];
        for (input, want) in cases {
            let err = parse_json(input.as_bytes(), None).unwrap_err();
            assert_eq!(err.code, Code::DataErr);
            assert!(err.to_string().contains(want), "{input}: {err}");
        }
    }
}
