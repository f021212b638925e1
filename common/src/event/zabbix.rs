//! Zabbix alert scripts: `SENDTO SUBJECT MESSAGE` (`{ALERT.SENDTO} {ALERT.SUBJECT}
//! {ALERT.MESSAGE}`).
//!
//! The message uses the `key:value` lines of PagerDuty's classic Zabbix integration (pd-zabbix):
//! `name:{TRIGGER.NAME}`, `id:{TRIGGER.ID}`, `status:{TRIGGER.STATUS}`, `hostname:{HOST.NAME}`,
//! `ip:{HOST.IP}`, `value:{TRIGGER.VALUE}`, `event_id:{EVENT.ID}`,
//! `severity:{TRIGGER.SEVERITY}` (or `nseverity:{TRIGGER.NSEVERITY}`), `url:…`, optional
//! `incident_key:`, optional `item_value:{ITEM.VALUE}`. A line that does not start with one of
//! these keys continues the previous value. The subject is `trigger`/`resolve` (pd-zabbix) or
//! `{TRIGGER.STATUS}` `PROBLEM`/`OK`; without either, the `status:` line or `value:` (1 problem,
//! 0 OK) decides. A `NOTE: Escalation cancelled` (Zabbix 6.0 and later: `canceled`) body
//! (Zabbix's message when an escalation is stopped) is a resolve.
//!
//! Data is never structure (`../shared/DESIGN.md` "Trust"): an item value is written by the
//! monitored host and may hold newlines and `key:value` lines. So
//! - everything after `item_value:` is that value, up to the end of the message (the documented
//!   template puts it last);
//! - a key read once is never replaced: a later line with the same key is ignored (inside the
//!   name, below, it is text of the name);
//! - when `name:` comes after `hostname:` (the documented order: fixed lines first, then the
//!   trigger name, which may embed `{ITEM.LASTVALUE}`, then `item_value:`), every line between
//!   `name:` and `item_value:` is part of the name, and every other key is the template's own
//!   line, so `nseverity:` counts over `severity:` (an administrator may rename the severities,
//!   even to another one's default name: a High called "Critical" stays High);
//! - when `name:` comes first (PagerDuty's classic pd-zabbix template: `name:` then `id:`,
//!   `status:`, `hostname:` …), lines a name embedding an item value adds come *before* the
//!   template's own, so after `name:` the last line of a key counts (a written `id:` or
//!   `hostname:` cannot replace the template's), a `NOTE: Escalation cancelled` line counts
//!   only when no key line follows it (Zabbix prepends its note to the message; one the host
//!   wrote into the name is followed by the template's lines), and when both `severity:` and
//!   `nseverity:` are given the more severe counts (a written `nseverity:0` cannot make a High
//!   problem `info` and filter it out). A key the template lacks (`incident_key:`, `url:`,
//!   `item_value:`) can still be added by such a name: use the documented order;
//! - `update_action:` and `user:` (the Problem update template's lines, below) are keys only
//!   before `name:`: after it they are text of the name or of the value they follow.
//!
//! Severity (Zabbix names or NSEVERITY 0–5) is kept as a [`ZabbixSeverity`]; the `severities`
//! filter sees the word the `zabbix_severities` setting maps it to (default: Not classified and
//! Information → `info`, which no handler pages on by default; Warning, Average → `warning`;
//! High, Disaster → `critical`), and PagerDuty's `payload.severity` is info (0, 1), warning
//! (2, 3), error (4), critical (5). The default incident key is `{id}-{hostname}`
//! (`{TRIGGER.ID}-{HOST.NAME}`, as the classic integration used; the `{incident_key}` template
//! placeholder), so that a problem and its recovery meet. A problem update (the subject
//! `update`, an action's update operations) whose fixed `update_action:{EVENT.UPDATE.ACTION}`
//! line starts with "acknowledged" is an acknowledge; any other update pages nobody. `SENDTO`
//! is kept for the handler (a routing key, a phone number, a Reactio API key), so one media type
//! serves many teams.

use std::collections::BTreeMap;

use super::batch::Notes;
use super::{Event, Format, Invocation, SourceAction, SourceSkip};
use crate::exit::{Code, Result};

const KEYS: [&str; 14] = [
    "name",
    "id",
    "status",
    "hostname",
    "ip",
    "value",
    "event_id",
    "severity",
    "nseverity",
    "url",
    "incident_key",
    "update_action",
    "user",
    "item_value",
];

/// What the Zabbix server writes for `{USER.FULLNAME}` when the user who updated the problem is
/// hidden from the message's recipient (`zbx_check_user_permissions`: the recipient is no Super
/// admin and shares no user group with that user), as a `pagerduty` user of its own is from
/// the people who acknowledge: no one's name.
const INACCESSIBLE_USER: &str = "Inaccessible user";

/// The keys of the Problem update template's extra lines: keys only before `name:`.
const UPDATE_KEYS: [&str; 2] = ["update_action", "user"];

/// Zabbix's six trigger severities (`{TRIGGER.SEVERITY}` names, `{TRIGGER.NSEVERITY}` 0–5),
/// spelled in settings as `not_classified`, `information`, `warning`, `average`, `high`, `disaster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZabbixSeverity {
    /// 0 "Not classified".
    NotClassified,
    /// 1 "Information".
    Information,
    /// 2 "Warning".
    Warning,
    /// 3 "Average".
    Average,
    /// 4 "High".
    High,
    /// 5 "Disaster".
    Disaster,
}

impl ZabbixSeverity {
    /// All six, lowest first.
    pub const ALL: [ZabbixSeverity; 6] = [
        ZabbixSeverity::NotClassified,
        ZabbixSeverity::Information,
        ZabbixSeverity::Warning,
        ZabbixSeverity::Average,
        ZabbixSeverity::High,
        ZabbixSeverity::Disaster,
    ];

    /// The word the `severities` filter sees unless `zabbix_severities` maps it otherwise:
    /// Not classified, Information → `info`; Warning, Average → `warning`; High, Disaster → `critical`.
    pub fn default_filter_word(self) -> &'static str {
        match self {
            ZabbixSeverity::NotClassified | ZabbixSeverity::Information => "info",
            ZabbixSeverity::Warning | ZabbixSeverity::Average => "warning",
            ZabbixSeverity::High | ZabbixSeverity::Disaster => "critical",
        }
    }

    /// PagerDuty's `payload.severity`: info (0, 1), warning (2, 3), error (4), critical (5).
    pub fn pagerduty(self) -> &'static str {
        match self {
            ZabbixSeverity::NotClassified | ZabbixSeverity::Information => "info",
            ZabbixSeverity::Warning | ZabbixSeverity::Average => "warning",
            ZabbixSeverity::High => "error",
            ZabbixSeverity::Disaster => "critical",
        }
    }

    /// Zabbix's own name (`{TRIGGER.SEVERITY}`).
    pub fn name(self) -> &'static str {
        match self {
            ZabbixSeverity::NotClassified => "Not classified",
            ZabbixSeverity::Information => "Information",
            ZabbixSeverity::Warning => "Warning",
            ZabbixSeverity::Average => "Average",
            ZabbixSeverity::High => "High",
            ZabbixSeverity::Disaster => "Disaster",
        }
    }

    fn from_code(n: &str) -> Result<ZabbixSeverity> {
        n.trim()
            .parse::<usize>()
            .ok()
            .and_then(|i| ZabbixSeverity::ALL.get(i).copied())
            .ok_or_else(|| Code::DataErr.msg(format!("nseverity {} is not 0–5 ({{TRIGGER.NSEVERITY}})", super::quoted(n))))
    }

    fn from_name(s: &str) -> Result<ZabbixSeverity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "not classified" | "not_classified" => Ok(ZabbixSeverity::NotClassified),
            "information" | "info" => Ok(ZabbixSeverity::Information),
            "warning" => Ok(ZabbixSeverity::Warning),
            "average" => Ok(ZabbixSeverity::Average),
            "high" | "error" => Ok(ZabbixSeverity::High),
            "disaster" | "critical" => Ok(ZabbixSeverity::Disaster),
            _ => Err(Code::DataErr.msg(format!(
                "severity {} is not a Zabbix severity (Not classified, Information, Warning, Average, High, Disaster)",
                super::quoted(s)
            ))),
        }
    }
}

/// Parse the three alert-script parameters, adding to `notes` what the operator should know
/// about the message (a severity it could not read: a problem is then read as critical).
/// Errors (exit 65) name what is missing.
pub fn parse(inv: &Invocation, notes: &mut Notes) -> Result<Event> {
    let [send_to, subject, message] = inv.args.as_slice() else {
        return Err(Code::DataErr.msg(format!(
            "expected 3 arguments SENDTO SUBJECT MESSAGE ({{ALERT.SENDTO}} {{ALERT.SUBJECT}} {{ALERT.MESSAGE}}), got {}",
            inv.args.len()
        )));
    };
    let Message { fields, escalation_cancelled: cancelled, fixed_lines_first } = read_message(message);
    let get = |k: &str| fields.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let name = get("name")
        .ok_or_else(|| Code::DataErr.msg("message has no `name:` line; add `name:{TRIGGER.NAME}` to the media type's message template"))?;
    let host = get("hostname").ok_or_else(|| {
        Code::DataErr.msg("message has no `hostname:` line; add `hostname:{HOST.NAME}` to the media type's message template")
    })?;

    // A problem update: only an acknowledgement pages (as an acknowledge); the escalation's
    // cancellation still resolves.
    let update = if cancelled { None } else { read_update(subject, &fields, fixed_lines_first) };
    let resolve = if cancelled || update.is_some() {
        cancelled
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

    let named = |s: &str| match s.parse::<u8>() {
        Ok(_) => ZabbixSeverity::from_code(s),
        Err(_) => ZabbixSeverity::from_name(s),
    };
    // The documented order: `nseverity:` is the template's own line, and the number is what no
    // renaming changes (an administrator's "Critical" for High must not read as Disaster).
    // Otherwise (the classic order, where a name that embeds an item value may add the line the
    // template lacks, and a page is never filtered out, nor refused, for a line the host wrote)
    // both given: the more severe; a number beside a name that cannot be read (renamed by the
    // administrator) may be the host's, so it is not taken alone. Nothing readable: paged as a
    // problem of no known severity (critical), never refused.
    let nseverity = get("nseverity").map(ZabbixSeverity::from_code);
    let zabbix_severity = match (nseverity, get("severity").map(named)) {
        (Some(Ok(n)), _) if fixed_lines_first => Some(n),
        (Some(Ok(n)), Some(Ok(s))) => Some(n.max(s)),
        (Some(Ok(z)), None) | (_, Some(Ok(z))) => Some(z),
        (Some(Ok(_)), Some(Err(e))) | (Some(Err(e)), _) | (None, Some(Err(e))) => {
            // A recovery is sent whatever its severity: only a problem is read as critical.
            let read_as = if resolve { "" } else { "read as critical; " };
            let fix = if fixed_lines_first {
                "add the line `nseverity:{TRIGGER.NSEVERITY}` to the media type's message template (severities renamed in Zabbix keep their number)"
            } else {
                "put the fixed lines, `nseverity:{TRIGGER.NSEVERITY}` among them, before `name:` in the media type's message template, as conf.d/zabbix-pagerduty.md shows (a trigger name can add lines after it; severities renamed in Zabbix keep their number)"
            };
            notes.push(format!("{e}; {read_as}{fix}"));
            None
        }
        (None, None) => None,
    };
    let status = if resolve {
        0
    } else {
        match zabbix_severity.map(ZabbixSeverity::default_filter_word) {
            Some("info" | "warning") => 1,
            _ => 2,
        }
    };
    let incident_key = match (get("incident_key"), get("id")) {
        (Some(k), _) => Some(k.to_string()),
        (None, Some(id)) => Some(format!("{id}-{host}")),
        (None, None) => None,
    };
    // The check is the trigger name; the output says what the name does not: the item value,
    // else the trigger status and severity (never the name again: summaries are
    // `{entity}/{check}: {output}`).
    let output = match get("item_value") {
        Some(v) => v.to_string(),
        None => {
            let state = if resolve { "resolved" } else { "problem" };
            match zabbix_severity {
                Some(z) => format!("{state} (severity {})", z.name()),
                None => state.to_string(),
            }
        }
    };
    let (action, skip, output) = match update {
        None => (Some(if resolve { SourceAction::Resolve } else { SourceAction::Create }), None, output),
        Some(Update::Acknowledged) => {
            let by = match get("user") {
                Some(INACCESSIBLE_USER) => {
                    notes.push(format!(
                        "Zabbix did not say who acknowledged (`{{USER.FULLNAME}}` was {}: the media's user may not see that user); put the media's user in a user group of those who acknowledge (conf.d/zabbix-pagerduty.md, Acknowledgements)",
                        super::quoted(INACCESSIBLE_USER)
                    ));
                    None
                }
                other => other,
            };
            let by = by.map(|u| format!("acknowledged by {u}")).unwrap_or_else(|| "acknowledged in Zabbix".into());
            (Some(SourceAction::Acknowledge), None, by)
        }
        Some(Update::NotPaged(reason)) => (None, Some(SourceSkip { reason, quiet: false }), output),
    };
    Ok(Event {
        format: Format::Zabbix,
        entity: host.to_string(),
        check: name.to_string(),
        status,
        output,
        action,
        skip,
        occurrences: 1,
        labels: fields.iter().map(|(k, v)| (format!("zabbix_{k}"), v.clone())).collect(),
        severity: zabbix_severity.map(|z| z.pagerduty().to_string()),
        zabbix_severity,
        incident_key,
        send_to: Some(send_to.trim().to_string()).filter(|s| !s.is_empty()),
        url: get("url").map(str::to_string),
        address: get("ip").map(str::to_string),
        ..Event::default()
    })
}

/// What a problem update message (an action's "Update operations", subject `update`) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Update {
    /// `{EVENT.UPDATE.ACTION}` names an acknowledgement: an acknowledge.
    Acknowledged,
    /// Anything else (a comment, an unacknowledgement, a change of severity, a manual close,
    /// whose recovery message resolves): nothing to page, and why.
    NotPaged(String),
}

/// Whether the alert is a problem update, and what it asks for: the subject is `update` (the
/// media type's "Problem update" template; the subject is the administrator's, never the monitored
/// host's), and the `update_action:{EVENT.UPDATE.ACTION}` line says what was done
/// ([`first_update_action`]). That line is taken only in the documented order (fixed lines
/// first): there a trigger name or item value cannot add it, and a written "acknowledged" would
/// stop the calls of a problem nobody took. `None`: not an update.
fn read_update(subject: &str, fields: &BTreeMap<String, String>, fixed_lines_first: bool) -> Option<Update> {
    if !subject.trim().eq_ignore_ascii_case("update") {
        return None;
    }
    let action = fields.get("update_action").map(|a| a.trim()).filter(|a| !a.is_empty());
    Some(match action {
        Some(a) if fixed_lines_first && first_update_action(a) == "acknowledged" => Update::Acknowledged,
        Some(a) if fixed_lines_first => {
            Update::NotPaged(format!("a Zabbix problem update ({}) is not paged: only an acknowledgement is", super::quoted(a)))
        }
        _ => Update::NotPaged(
            "a Zabbix problem update is paged only as an acknowledgement, told by an `update_action:{EVENT.UPDATE.ACTION}` line among the fixed lines before `name:` (conf.d/zabbix-pagerduty.md, Problem update)"
                .into(),
        ),
    })
}

/// The first action `{EVENT.UPDATE.ACTION}` names. The Zabbix server (`get_problem_update_actions`
/// in 6.0's `expression.c`, `zbx_problem_get_actions` in 7.0's `event.c`) writes them in a fixed
/// order, in English whatever the frontend's language, joined by ", " and a last " and ":
/// "acknowledged", "unacknowledged", "commented", "changed severity from <name> to <name>",
/// "closed", then (6.4 and later) "suppressed …", "unsuppressed", "ranked as symptom", "ranked as
/// cause". So an acknowledgement is the first one, and only the first is read: a severity the
/// administrator named "acknowledged" changes nothing.
fn first_update_action(actions: &str) -> &str {
    let first = actions.split(", ").next().unwrap_or_default();
    first.split(" and ").next().unwrap_or_default().trim()
}

/// A Zabbix message read into its `key:value` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Each key's value, continuation lines appended with `\n`, trailing whitespace removed.
    pub fields: BTreeMap<String, String>,
    /// A `NOTE: Escalation cancelled` line stood outside every value (Zabbix puts it before or
    /// after the template's lines), so the escalation was cancelled: a resolve. The same text
    /// inside the trigger name or the item value is data, and cancels nothing.
    pub escalation_cancelled: bool,
    /// `name:` came after `hostname:` (the documented order): every field but `name` and
    /// `item_value` was read from a line before the name, the template's own fixed lines, which
    /// no value from the monitored host can add to.
    pub fixed_lines_first: bool,
}

/// Read the `key:value` lines (see the module documentation for why a key is never read
/// twice and what `item_value:` and `name:` take).
pub fn read_message(message: &str) -> Message {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut cancelled = false;
    let mut last: Option<String> = None;
    // Set once `name:` is read after `hostname:`: the rest up to `item_value:` is the name.
    let mut in_name = false;
    // Set once `name:` is read before `hostname:` (the classic order): the keys first read
    // after it may be lines the name added, replaced by the template's own that follow.
    let mut classic = false;
    let mut replaceable: Vec<String> = Vec::new();
    // A `NOTE: Escalation cancelled` line after the name in the classic order, that counts
    // unless a key line follows it.
    let mut note_pending = false;
    let mut offset = 0;
    for raw in message.split_inclusive('\n') {
        offset += raw.len();
        let line = raw.trim_end_matches('\n').trim_end_matches('\r');
        // The Problem update template's lines are fixed lines, before `name:`; after it (the
        // classic order, where the name comes first) such a line is the name's or a value's text.
        let key = line
            .split_once(':')
            .map(|(k, v)| (k.trim(), v))
            .filter(|(k, _)| KEYS.contains(k) && !(UPDATE_KEYS.contains(k) && out.contains_key("name")));
        if key.is_some() {
            note_pending = false;
        }
        match key {
            Some(("item_value", _)) if !out.contains_key("item_value") => {
                // In the documented order, the template's own line may come after one that a
                // name embedding the item value holds (see [`template_value_line`]): the lines
                // before it are the name's.
                let start = offset - raw.len();
                let at = match out.get_mut("name") {
                    Some(name) if in_name => {
                        let at = start + template_value_line(name, &message[start..]);
                        for line in message[start..at].lines() {
                            name.push('\n');
                            name.push_str(line.trim_end_matches('\r'));
                        }
                        at
                    }
                    _ => start,
                };
                out.insert("item_value".into(), value_from(&message[at..]));
                break;
            }
            Some((k, v)) if !in_name && !out.contains_key(k) => {
                if k == "name" {
                    in_name = out.contains_key("hostname");
                    classic = !in_name;
                } else if classic {
                    replaceable.push(k.to_string());
                }
                out.insert(k.to_string(), v.trim().to_string());
                last = Some(k.to_string());
            }
            // The classic order: the template's line after one the name added replaces it.
            Some((k, v)) if classic && replaceable.iter().any(|r| r == k) => {
                out.insert(k.to_string(), v.trim().to_string());
                last = Some(k.to_string());
            }
            // A key read before, outside the name: never replaces it, never joins another value.
            Some(_) if !in_name => {}
            _ => {
                if !in_name && last.as_deref() != Some("name") && is_escalation_note(line) {
                    if classic {
                        note_pending = true;
                    } else {
                        cancelled = true;
                    }
                    continue;
                }
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
    Message { fields: out, escalation_cancelled: cancelled || note_pending, fixed_lines_first: in_name }
}

/// The item value of `tail`, a message's rest from its `item_value:` line on: everything after
/// the key, line ends as `\n`, without the whitespace around it.
fn value_from(tail: &str) -> String {
    let value = tail.split_once(':').map_or("", |(_, v)| v);
    value.replace("\r\n", "\n").trim().to_string()
}

/// Where in `tail` (the rest of a message in the documented order, from the first `item_value:`
/// line after `name:` on) the template's own `item_value:` line is. The first such line, unless
/// the trigger name embeds the item value (`{ITEM.LASTVALUE}`) and that value holds an
/// `item_value:` line of its own (as a real Zabbix server sends it: the name, with the host's
/// lines in it, then the template's line, then the value again): then the template's line is
/// the first after which the rest, the value, is text of the name. Only the split between the
/// name and the value depends on it: neither is ever read for keys. At most the first 64 such
/// lines are tried (a value of thousands would cost quadratic time for nothing).
fn template_value_line(name: &str, tail: &str) -> usize {
    let mut name = name.to_string();
    let mut at = 0;
    let mut tried = 0;
    for line in tail.split_inclusive('\n') {
        if line.split_once(':').is_some_and(|(k, _)| k.trim() == "item_value") {
            tried += 1;
            if tried > 64 {
                return 0;
            }
            let value = value_from(&tail[at..]);
            if !value.is_empty() && name.contains(&value) {
                return at;
            }
        }
        name.push('\n');
        name.push_str(line.trim_end_matches('\n').trim_end_matches('\r'));
        at += line.len();
    }
    0
}

/// Whether `line` is the note a Zabbix server puts before the last message it sent when it
/// cancels an escalation (`escalator.c`): `NOTE: Escalation cancelled: <why>` (Zabbix 5.4 and
/// earlier), `NOTE: Escalation canceled: <why>` (Zabbix 6.0 and later), then (in recent versions
/// after a `Last message sent:` line) that message.
fn is_escalation_note(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("NOTE: Escalation cancelled") || line.starts_with("NOTE: Escalation canceled")
}

/// The `key:value` fields of `message` ([`read_message`]).
pub fn parse_message(message: &str) -> BTreeMap<String, String> {
    read_message(message).fields
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
        assert_eq!(
            inv("anything", &msg.replace("value:1", "value:0")).parse(super::super::Source::Zabbix).unwrap().action,
            Some(SourceAction::Resolve)
        );
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
            assert!(e.zabbix_severity.is_some(), "{line}");
        }
    }

    /// The documented order with the Problem update template's extra lines.
    const UPDATE: &str = "id:13502\nstatus:PROBLEM\nhostname:web-01\nvalue:1\nnseverity:4\nupdate_action:acknowledged and commented\nuser:Ann Admin (ann)\nname:Zabbix agent on web-01 is unreachable\nitem_value:0\n";

    #[test]
    fn a_problem_update_that_acknowledges_is_an_acknowledge_and_any_other_is_not_paged() {
        let zabbix = |subject: &str, message: &str| inv(subject, message).parse(super::super::Source::Zabbix).unwrap();
        let ack = zabbix("update", UPDATE);
        assert_eq!((ack.action, ack.skip), (Some(SourceAction::Acknowledge), None));
        assert_eq!(ack.output, "acknowledged by Ann Admin (ann)");
        assert_eq!(ack.incident_key.as_deref(), Some("13502-web-01"), "it meets the problem's incident");
        assert_eq!(zabbix("Update", &UPDATE.replace("user:Ann Admin (ann)\n", "")).output, "acknowledged in Zabbix");
        for action in ["acknowledged", "acknowledged, commented and changed severity from Warning to High"] {
            assert_eq!(
                zabbix("update", &UPDATE.replace("acknowledged and commented", action)).action,
                Some(SourceAction::Acknowledge),
                "{action}"
            );
        }
        for action in [
            "commented",
            "unacknowledged and commented",
            "changed severity from Average to High",
            "closed",
            "",
            "acknowledgedx",
            "changed severity from acknowledged to High",
            "commented and acknowledged",
        ] {
            let e = zabbix("update", &UPDATE.replace("acknowledged and commented", action));
            assert_eq!(e.action, None, "{action}");
            assert!(
                e.skip.is_some_and(|s| !s.quiet && (s.reason.contains("not paged") || s.reason.contains("only as an acknowledgement"))),
                "{action}"
            );
        }
        // Without the subject it is the problem it always was (the line alone says nothing: a
        // Problem template that carried it would otherwise lose its page).
        assert_eq!(zabbix("trigger", UPDATE).action, Some(SourceAction::Create));
        // An escalation cancelled still resolves.
        let cancelled = format!("NOTE: Escalation canceled: host disabled\n{UPDATE}");
        assert_eq!(zabbix("update", &cancelled).action, Some(SourceAction::Resolve));
    }

    #[test]
    fn the_monitored_host_cannot_write_an_acknowledgement() {
        let zabbix = |subject: &str, message: &str| inv(subject, message).parse(super::super::Source::Zabbix).unwrap();
        // Documented order, the template without the line: the name and the item value are
        // text, whatever they hold.
        let without = UPDATE.replace("update_action:acknowledged and commented\n", "");
        let forged = without
            .replace("unreachable\n", "unreachable\nupdate_action:acknowledged\n")
            .replace("item_value:0", "item_value:0\nupdate_action:acknowledged");
        let e = zabbix("update", &forged);
        assert_eq!(e.action, None);
        assert!(e.skip.is_some_and(|s| s.reason.contains("before `name:`")));
        // The classic order (name first): a name may add lines, so the line is never taken.
        let classic = "name:disk full\nupdate_action:acknowledged\nid:13502\nstatus:PROBLEM\nhostname:web-01\nnseverity:4\nupdate_action:acknowledged\n";
        assert_eq!(zabbix("update", classic).action, None);
        // The usual problem subject with a forged line: still a problem.
        assert_eq!(zabbix("trigger", &forged).action, Some(SourceAction::Create));
    }

    #[test]
    fn in_the_documented_order_the_number_counts_whatever_the_name() {
        // Fixed lines first: both severity lines are the template's; an administrator's names
        // ("Critical" for High, "High" for Average) do not move the number, nor does a name that
        // a trigger name or an item value repeats.
        let documented = |severity: &str, n: u8| {
            format!(
                "id:1\nstatus:PROBLEM\nhostname:web-01\nseverity:{severity}\nnseverity:{n}\nname:Disk full\nnseverity:5\nitem_value:severity:Disaster\nnseverity:5"
            )
        };
        for (severity, n, want) in
            [("Critical", 4, ZabbixSeverity::High), ("High", 3, ZabbixSeverity::Average), ("Low", 2, ZabbixSeverity::Warning)]
        {
            let e = inv("trigger", &documented(severity, n)).parse(super::super::Source::Zabbix).unwrap();
            assert_eq!(e.zabbix_severity, Some(want), "{severity} {n}");
        }
        assert!(read_message(&documented("High", 4)).fixed_lines_first);
        assert!(!read_message(PROBLEM).fixed_lines_first, "the classic order: name first");
    }

    #[test]
    fn a_severity_that_cannot_be_read_pages_as_critical_with_a_note() {
        // An administrator renamed the severities: `{TRIGGER.SEVERITY}` is the configured name.
        let mut notes = Notes::new();
        let e = parse(&inv("trigger", &PROBLEM.replace("severity:High", "severity:P1")), &mut notes).unwrap();
        assert_eq!((e.zabbix_severity, e.severity.as_deref(), e.status), (None, None, 2));
        assert!(notes.len() == 1 && notes[0].contains("nseverity:{TRIGGER.NSEVERITY}"), "{notes:?}");
        // The number beside it, in the documented order (fixed lines first): the number counts,
        // and nothing is noted.
        let documented = "id:1\nstatus:PROBLEM\nhostname:web-01\nseverity:P1\nnseverity:4\nname:Disk full\nitem_value:97";
        let mut notes = Notes::new();
        let e = parse(&inv("trigger", documented), &mut notes).unwrap();
        assert_eq!((e.zabbix_severity, notes.len()), (Some(ZabbixSeverity::High), 0));
        // In the classic order (name first) the number may be a line the name added: not taken
        // alone; the note says to put the fixed lines first.
        let mut notes = Notes::new();
        let e = parse(&inv("trigger", &PROBLEM.replace("severity:High", "severity:P1\nnseverity:4")), &mut notes).unwrap();
        assert_eq!((e.zabbix_severity, e.status), (None, 2));
        assert!(notes.len() == 1 && notes[0].contains("before `name:`"), "{notes:?}");
    }

    #[test]
    fn continuation_lines_and_explicit_incident_key() {
        let msg = "name:Disk full\nhostname:db-01\nincident_key:db-01-disk\nitem_value:99%\nfree space is low\nsecond line\nstatus:PROBLEM";
        let e = inv("trigger", msg).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(e.incident_key.as_deref(), Some("db-01-disk"));
        assert_eq!(e.output, "99%\nfree space is low\nsecond line\nstatus:PROBLEM", "everything after item_value: is the value");
        assert_eq!(e.check, "Disk full");
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

    /// The documented template (conf.d/zabbix-pagerduty.md): fixed lines, then the name, then
    /// the item value last.
    fn documented(name: &str, item_value: &str) -> String {
        format!(
            "id:13502\nstatus:PROBLEM\nhostname:web-01\nip:10.0.0.5\nvalue:1\nevent_id:8123\nseverity:High\nurl:https://zabbix.example.com/tr_events.php?triggerid=13502\nname:{name}\nitem_value:{item_value}"
        )
    }

    #[test]
    fn item_values_and_names_are_data_not_structure() {
        let evil = "fine\nincident_key:999-db-01\nurl:https://evil.example.net/\nnseverity:0\nhostname:db-01\nNOTE: Escalation cancelled: x\nstatus:OK\nvalue:0";
        let harmless = inv("trigger", &documented("Disk full", "95%")).parse(super::super::Source::Zabbix).unwrap();
        for msg in [documented("Disk full", evil), documented(&format!("Disk {evil}"), "95%")] {
            let e = inv("trigger", &msg).parse(super::super::Source::Zabbix).unwrap();
            assert_eq!(e.incident_key, harmless.incident_key, "{msg}");
            assert_eq!(e.url, harmless.url);
            assert_eq!(e.entity, harmless.entity);
            assert_eq!(e.action, harmless.action);
            assert_eq!(e.zabbix_severity, harmless.zabbix_severity);
            assert_eq!(e.status, harmless.status);
        }
        let e = inv("whatever", &documented("Disk full", evil)).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(e.action, Some(SourceAction::Create), "status:PROBLEM came first");
        assert_eq!(e.output, evil, "the whole item value is kept as the output");
    }

    #[test]
    fn a_name_that_embeds_a_value_holding_an_item_value_line_keeps_it() {
        // As a real Zabbix server expands `name:App status is {ITEM.LASTVALUE}` and
        // `item_value:{ITEM.VALUE}`: the name holds the host's `item_value:` line before the
        // template's own.
        let value = "fine\nitem_value:x\nincident_key:999-db-01\r\nend";
        let e = inv("trigger", &documented(&format!("App status is {value}"), value)).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(e.check, "App status is fine\nitem_value:x\nincident_key:999-db-01\nend");
        assert_eq!(e.output, "fine\nitem_value:x\nincident_key:999-db-01\nend");
        assert_eq!(e.incident_key.as_deref(), Some("13502-web-01"));
        // A value with such a line, in a name that does not embed it: the first `item_value:`
        // line is the template's.
        let e = inv("trigger", &documented("Disk full", value)).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!((e.check.as_str(), e.output.as_str()), ("Disk full", "fine\nitem_value:x\nincident_key:999-db-01\nend"));
        // Thousands of such lines: the first is taken, in linear time.
        let many = "item_value:y\n".repeat(5000);
        let e = inv("trigger", &documented(&format!("x {many}"), &many)).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(e.check, "x item_value:y");
    }

    #[test]
    fn a_key_is_read_once_in_the_classic_order_too() {
        let msg = format!("{PROBLEM}item_value:ok\nincident_key:999-db-01");
        let e = inv("trigger", &msg).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(e.incident_key.as_deref(), Some("13502-web-01"));
        let msg = documented("Disk full", "95%").replace("ip:10.0.0.5\n", "ip:10.0.0.5\nurl:https://first.example/\n");
        let e = inv("trigger", &msg).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(e.url.as_deref(), Some("https://first.example/"), "a later url: line does not replace the first");
        // After a `name:` that comes first, the template's own lines follow what the name may
        // have added: there the last line of a key counts.
        let msg = PROBLEM.replace("ip:10.0.0.5\n", "ip:10.0.0.5\nurl:https://first.example/\n");
        let e = inv("trigger", &msg).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(e.url.as_deref(), Some("https://zabbix.example.com/tr_events.php?triggerid=13502&eventid=8123"));
    }

    #[test]
    fn in_the_classic_order_the_templates_own_lines_win_over_lines_in_the_name() {
        let harmless = inv("trigger", PROBLEM).parse(super::super::Source::Zabbix).unwrap();
        for evil in ["x\nid:999\nhostname:db-01", "x\nnseverity:0", "x\nip:1\nNOTE: Escalation cancelled: y", "x\nstatus:OK\nvalue:0"] {
            let msg = PROBLEM.replacen('\n', &format!(" {evil}\n"), 1);
            for subject in ["trigger", "other"] {
                let e = inv(subject, &msg).parse(super::super::Source::Zabbix).unwrap();
                assert_eq!(
                    (&e.incident_key, &e.entity, e.action, e.zabbix_severity, e.status, &e.address),
                    (
                        &harmless.incident_key,
                        &harmless.entity,
                        harmless.action,
                        harmless.zabbix_severity,
                        harmless.status,
                        &harmless.address
                    ),
                    "{subject} {msg:?}"
                );
            }
        }
        // Zabbix prepends its note: that one still resolves, and so does one after every line.
        let note = format!("NOTE: Escalation cancelled: host disabled.\n{PROBLEM}");
        assert_eq!(inv("trigger", &note).parse(super::super::Source::Zabbix).unwrap().action, Some(SourceAction::Resolve));
        // Zabbix 6.0 and later spell it `canceled`, and say which message follows.
        let note = format!("NOTE: Escalation canceled: host \"web-01\" disabled.\nLast message sent:\n{PROBLEM}");
        assert_eq!(inv("trigger", &note).parse(super::super::Source::Zabbix).unwrap().action, Some(SourceAction::Resolve));
        // Both severity lines, whichever order: the more severe.
        for msg in [
            format!("{PROBLEM}nseverity:0"),
            format!("nseverity:0\n{PROBLEM}"),
            PROBLEM.replace("severity:High", "severity:Average\nnseverity:5"),
            PROBLEM.replacen('\n', " x\nnseverity:99\n", 1),
        ] {
            let want = if msg.contains("nseverity:5") { ZabbixSeverity::Disaster } else { ZabbixSeverity::High };
            assert_eq!(inv("trigger", &msg).parse(super::super::Source::Zabbix).unwrap().zabbix_severity, Some(want), "{msg:?}");
        }
    }

    #[test]
    fn zabbix_summaries_do_not_repeat_the_trigger_name() {
        let e = inv("trigger", PROBLEM).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(e.check, "Zabbix agent on web-01 is unreachable for 5 minutes");
        assert_eq!(e.output, "problem (severity High)");
        let e = inv("trigger", &documented("Disk full", "95%")).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!((e.check.as_str(), e.output.as_str()), ("Disk full", "95%"));
        let r = inv("resolve", &PROBLEM.replace("status:PROBLEM", "status:OK")).parse(super::super::Source::Zabbix).unwrap();
        assert_eq!(r.output, "resolved (severity High)");
    }
}
