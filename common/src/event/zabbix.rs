//! Zabbix alert scripts: `SENDTO SUBJECT MESSAGE` (`{ALERT.SENDTO} {ALERT.SUBJECT}
//! {ALERT.MESSAGE}`).
//!
//! The message uses the `key:value` lines of PagerDuty's classic Zabbix integration (pd-zabbix):
//! `name:{TRIGGER.NAME}`, `id:{TRIGGER.ID}`, `status:{TRIGGER.STATUS}`, `hostname:{HOST.NAME}`,
//! `ip:{HOST.IP}`, `value:{TRIGGER.VALUE}`, `event_id:{EVENT.ID}`,
//! `severity:{TRIGGER.SEVERITY}` (or `nseverity:{TRIGGER.NSEVERITY}`), `url:…`, optional
//! `incident_key:`. A line that does not start with one of these keys continues the previous
//! value. The subject is `trigger`/`resolve` (pd-zabbix) or `{TRIGGER.STATUS}` `PROBLEM`/`OK`;
//! without either, the `status:` line or `value:` (1 problem, 0 OK) decides. A `NOTE:
//! Escalation cancelled` body (Zabbix's message when an escalation is stopped) is a resolve.
//!
//! Severity (Zabbix names or NSEVERITY 0–5): Not classified/Information (0, 1) → info,
//! Warning/Average (2, 3) → warning, High (4) → error, Disaster (5) → critical; info and warning
//! count as status 1, error and critical as status 2 for the `severities` filter.
//! The default incident key is `{id}-{hostname}`, as the classic integration used, so that a
//! problem and its recovery meet. `SENDTO` is kept for the handler (a routing key, a phone
//! number, a Reactio API key), so one media type serves many teams.

use std::collections::BTreeMap;

use super::{Event, Format, Invocation, SourceAction};
use crate::exit::{Code, Result};

const KEYS: [&str; 12] =
    ["name", "id", "status", "hostname", "ip", "value", "event_id", "severity", "nseverity", "url", "incident_key", "item_value"];

/// Parse the three alert-script parameters. Errors (exit 65) name what is missing.
pub fn parse(inv: &Invocation) -> Result<Event> {
    let [send_to, subject, message] = inv.args.as_slice() else {
        return Err(Code::DataErr.msg(format!(
            "expected 3 arguments SENDTO SUBJECT MESSAGE ({{ALERT.SENDTO}} {{ALERT.SUBJECT}} {{ALERT.MESSAGE}}), got {}",
            inv.args.len()
        )));
    };
    let fields = parse_message(message);
    let get = |k: &str| fields.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let name = get("name").ok_or_else(|| {
        Code::DataErr.msg("message has no `name:` line; add `name:{TRIGGER.NAME}` to the media type's message template")
    })?;
    let host = get("hostname").ok_or_else(|| {
        Code::DataErr.msg("message has no `hostname:` line; add `hostname:{HOST.NAME}` to the media type's message template")
    })?;

    let cancelled = message.lines().any(|l| l.trim_start().starts_with("NOTE: Escalation cancelled"));
    let resolve = if cancelled {
        true
    } else {
        match subject.trim().to_ascii_lowercase().as_str() {
            "trigger" | "problem" => false,
            "resolve" | "ok" | "resolved" | "recovery" => true,
            _ => match get("status").map(str::to_ascii_uppercase).as_deref() {
                Some("PROBLEM") => false,
                Some("OK" | "RESOLVED") => true,
                _ => match get("value") {
                    Some("1") => false,
                    Some("0") => true,
                    _ => {
                        return Err(Code::DataErr.msg(format!(
                            "cannot tell problem from recovery: subject {} is not trigger/resolve/PROBLEM/OK and the message has no `status:{{TRIGGER.STATUS}}` or `value:{{TRIGGER.VALUE}}` line; add one to the media type's message template",
                            super::quoted(subject)
                        )));
                    }
                },
            },
        }
    };

    let severity = match (get("nseverity"), get("severity")) {
        (Some(n), _) => Some(severity_from_code(n)?),
        (None, Some(s)) => Some(match s.parse::<u8>() {
            Ok(_) => severity_from_code(s)?,
            Err(_) => severity_from_name(s)?,
        }),
        (None, None) => None,
    };
    let status = if resolve {
        0
    } else {
        match severity {
            Some("info" | "warning") => 1,
            _ => 2,
        }
    };
    let incident_key = match (get("incident_key"), get("id")) {
        (Some(k), _) => Some(k.to_string()),
        (None, Some(id)) => Some(format!("{id}-{host}")),
        (None, None) => None,
    };
    let output = match get("item_value") {
        Some(v) => format!("{name}: {v}"),
        None => name.to_string(),
    };
    Ok(Event {
        format: Format::Zabbix,
        entity: host.to_string(),
        check: name.to_string(),
        status,
        output,
        action: Some(if resolve { SourceAction::Resolve } else { SourceAction::Create }),
        occurrences: 1,
        labels: fields.iter().map(|(k, v)| (format!("zabbix_{k}"), v.clone())).collect(),
        severity: severity.map(str::to_string),
        incident_key,
        send_to: Some(send_to.trim().to_string()).filter(|s| !s.is_empty()),
        url: get("url").map(str::to_string),
        address: get("ip").map(str::to_string),
        ..Event::default()
    })
}

/// The `key:value` lines, continuation lines appended to the previous value.
pub fn parse_message(message: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in message.lines() {
        let line = line.trim_end_matches('\r');
        let known = line.split_once(':').filter(|(k, _)| KEYS.contains(&k.trim()));
        match known {
            Some((k, v)) => {
                let k = k.trim().to_string();
                out.insert(k.clone(), v.trim().to_string());
                last = Some(k);
            }
            None => {
                if let Some(k) = &last
                    && let Some(v) = out.get_mut(k)
                {
                    v.push('\n');
                    v.push_str(line);
                }
            }
        }
    }
    for v in out.values_mut() {
        let t = v.trim_end().to_string();
        *v = t;
    }
    out
}

fn severity_from_code(n: &str) -> Result<&'static str> {
    match n.trim() {
        "0" | "1" => Ok("info"),
        "2" | "3" => Ok("warning"),
        "4" => Ok("error"),
        "5" => Ok("critical"),
        _ => Err(Code::DataErr.msg(format!("nseverity {} is not 0–5 ({{TRIGGER.NSEVERITY}})", super::quoted(n)))),
    }
}

fn severity_from_name(s: &str) -> Result<&'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "not classified" | "information" | "info" => Ok("info"),
        "warning" | "average" => Ok("warning"),
        "high" | "error" => Ok("error"),
        "disaster" | "critical" => Ok("critical"),
        _ => Err(Code::DataErr.msg(format!(
            "severity {} is not a Zabbix severity (Not classified, Information, Warning, Average, High, Disaster)",
            super::quoted(s)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(subject: &str, message: &str) -> Invocation {
        Invocation { args: vec!["0123456789abcdef0123456789abcdef".into(), subject.into(), message.into()], ..Invocation::default() }
    }

    const PROBLEM: &str = "name:Zabbix agent on web-01 is unreachable for 5 minutes\nid:13502\nstatus:PROBLEM\nhostname:web-01\nip:10.0.0.5\nvalue:1\nevent_id:8123\nseverity:High\nurl:https://zabbix.example.com/tr_events.php?triggerid=13502&eventid=8123\n";

    #[test]
    fn problem_and_recovery_meet_on_one_key() {
        let p = inv("trigger", PROBLEM).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(p.action, Some(SourceAction::Create));
        assert_eq!((p.entity.as_str(), p.status), ("web-01", 2));
        assert_eq!(p.severity.as_deref(), Some("error"));
        assert_eq!(p.incident_key.as_deref(), Some("13502-web-01"));
        assert_eq!(p.send_to.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(p.url.as_deref(), Some("https://zabbix.example.com/tr_events.php?triggerid=13502&eventid=8123"));
        let r = inv("OK", &PROBLEM.replace("status:PROBLEM", "status:OK")).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(r.action, Some(SourceAction::Resolve));
        assert_eq!(r.status, 0);
        assert_eq!(r.incident_key, p.incident_key);
    }

    #[test]
    fn subject_status_value_and_escalation_cancelled() {
        let msg = PROBLEM.replace("status:PROBLEM\n", "");
        assert_eq!(inv("PROBLEM", &msg).parse(super::super::Source::Zabbix).unwrap().action, Some(SourceAction::Create));
        assert_eq!(inv("resolve", &msg).parse(super::super::Source::Zabbix).unwrap().action, Some(SourceAction::Resolve));
        assert_eq!(inv("anything", &msg.replace("value:1", "value:0")).parse(super::super::Source::Zabbix).unwrap().action, Some(SourceAction::Resolve));
        let cancelled = format!("{PROBLEM}\nNOTE: Escalation cancelled: host is in maintenance");
        assert_eq!(inv("trigger", &cancelled).parse(super::super::Source::Zabbix).unwrap().action, Some(SourceAction::Resolve));
    }

    #[test]
    fn severities_map_from_names_and_codes() {
        for (line, want, status) in [
            ("severity:Not classified", "info", 1),
            ("severity:Information", "info", 1),
            ("severity:Warning", "warning", 1),
            ("severity:Average", "warning", 1),
            ("severity:High", "error", 2),
            ("severity:Disaster", "critical", 2),
            ("nseverity:0", "info", 1),
            ("nseverity:3", "warning", 1),
            ("nseverity:4", "error", 2),
            ("nseverity:5", "critical", 2),
        ] {
            let e = inv("trigger", &PROBLEM.replace("severity:High", line)).parse(super::super::Source::Zabbix).unwrap();
            assert_eq!((e.severity.as_deref(), e.status), (Some(want), status), "{line}");
        }
    }

    #[test]
    fn continuation_lines_and_explicit_incident_key() {
        let msg = "name:Disk full\nhostname:db-01\nincident_key:db-01-disk\nitem_value:99%\nfree space is low\nsecond line\nstatus:PROBLEM";
        let e = inv("trigger", msg).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(e.incident_key.as_deref(), Some("db-01-disk"));
        assert_eq!(e.output, "Disk full: 99%\nfree space is low\nsecond line");
    }

    #[test]
    fn malformed_input_names_the_problem() {
        let err = Invocation { args: vec!["a".into()], ..Invocation::default() }.parse(super::super::Source::Zabbix).unwrap_err();
        assert_eq!(err.code, Code::DataErr);
        assert!(err.to_string().contains("expected 3 arguments"), "{err}");
        let err = inv("trigger", "id:1\nhostname:h").parse(super::super::Source::Zabbix).unwrap_err();
        assert!(err.to_string().contains("name:"), "{err}");
        let err = inv("maybe", "name:x\nhostname:h").parse(super::super::Source::Zabbix).unwrap_err();
        assert!(err.to_string().contains("cannot tell problem from recovery"), "{err}");
    }
}
