//! Mackerel: the mackerel-agent check `action` environment, and the webhook JSON.
//!
//! mackerel-agent runs a check plugin's `action` command after *every* check run with
//! `MACKEREL_STATUS`, `MACKEREL_PREVIOUS_STATUS` (empty on the first run) and
//! `MACKEREL_CHECK_MESSAGE` in the environment (mackerel-agent docs, "check plugin action"). So
//! the state change is detected here: the same status as before → skip (logged at debug); a
//! change to non-OK → trigger; back to OK → resolve. A first run (no previous status: the agent
//! starts every check at an undefined status, also after a restart) that is OK resolves only an
//! incident the ledger knows open, one paged before the restart. The check
//! name comes from `--check` (or `CHECK_NAME` / `PAGERPIPE_CHECK` set in `action.env`), the
//! entity from `--entity` (or `PAGERPIPE_ENTITY`), else this host's name.
//!
//! The webhook (`"event": "alert"`, Mackerel's "Webhook notifications" page) carries
//! `alert.status` (`ok`/`warning`/`critical`/`unknown`), `alert.isOpen`, `alert.monitorName`,
//! `alert.url`, the alert's `message` at the top level, and `host.name` for a host's alert or
//! `service.name` for a service metric's; `ok`, or an alert no longer open, resolves. Its time
//! is the latest of `alert.createdAt`, `alert.statusChangedAt` and `alert.closedAt`. Its
//! incident key is the alert's `alert.id` (Mackerel's identity of the alert; a host name is
//! neither unique nor the operator's), else `{entity}/{check}`.

use serde_json::{Map, Value};

use super::{Event, Format, Invocation, SourceAction, SourceSkip, field};
use crate::exit::{Code, Result};

fn status_code(s: &str, what: &str) -> Result<u32> {
    match s.trim().to_ascii_uppercase().as_str() {
        "OK" => Ok(0),
        "WARNING" => Ok(1),
        "CRITICAL" => Ok(2),
        "UNKNOWN" => Ok(3),
        _ => Err(Code::DataErr.msg(format!("{what} {} is not OK, WARNING, CRITICAL or UNKNOWN", super::quoted(s)))),
    }
}

pub(crate) fn local_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Parse a mackerel-agent action invocation. Errors (exit 65) name what is missing.
pub fn parse(inv: &Invocation) -> Result<Event> {
    // An empty flag (an unset variable in the action command) would key every such check's
    // incident alike (`/`), one check's recovery resolving another's failure: refused, as
    // with --from cli. Checked first: a mistake in the command line is a usage error (exit 2)
    // whatever the environment holds, also when the action is tried by hand.
    let given = |flag: &Option<String>, name: &str| match flag.as_deref().map(str::trim) {
        Some("") => Err(Code::Usage.msg(format!("--{name} is empty; give a name"))),
        other => Ok(other.map(str::to_string)),
    };
    let (check_flag, entity_flag) = (given(&inv.check, "check")?, given(&inv.entity, "entity")?);
    let env = |k: &str| inv.env.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let status = status_code(
        env("MACKEREL_STATUS")
            .ok_or_else(|| Code::DataErr.msg("MACKEREL_STATUS is not set (run this as a mackerel-agent check action)"))?,
        "MACKEREL_STATUS",
    )?;
    let previous = env("MACKEREL_PREVIOUS_STATUS").map(|p| status_code(p, "MACKEREL_PREVIOUS_STATUS")).transpose()?;
    let check = check_flag
        .or_else(|| env("CHECK_NAME").or(env("PAGERPIPE_CHECK")).map(str::to_string))
        .ok_or_else(|| Code::DataErr.msg("no check name: pass --check NAME in the action command or set CHECK_NAME in action.env"))?;
    let entity = entity_flag
        .or_else(|| env("PAGERPIPE_ENTITY").map(str::to_string))
        .or_else(local_hostname)
        .ok_or_else(|| Code::DataErr.msg("no entity name: pass --entity NAME"))?;

    let (action, skip) = match (previous, status) {
        (Some(p), s) if p == s => (None, Some(format!("status unchanged ({})", super::status_name(s)))),
        // The first run after the agent (re)started: the agent forgot the status it had, so a
        // problem paged before the restart may have recovered meanwhile, and no later run tells
        // of the change. Resolve what the ledger knows open, nothing else.
        (None, 0) => (Some(SourceAction::ResolveIfOpen), None),
        (_, 0) => (Some(SourceAction::Resolve), None),
        (_, _) => (Some(SourceAction::Create), None),
    };
    Ok(Event {
        format: Format::Mackerel,
        entity,
        check,
        status,
        output: env("MACKEREL_CHECK_MESSAGE").unwrap_or("").to_string(),
        action,
        occurrences: 1,
        history: previous.into_iter().chain([status]).collect(),
        skip: skip.map(|reason| SourceSkip { reason, quiet: true }),
        ..Event::default()
    })
}

/// Parse a Mackerel webhook (`"event": "alert"`). Errors (exit 65) name the field.
///
/// A webhook of another event (`sample`, the channel's test notification; `alertGroup`,
/// `hostStatus`, `hostRegister`, `hostRetire`, `monitorCreate` …, which a channel may be set
/// to send too) pages nobody: it is read as a skip naming the event, keyed
/// `{orgName}/{event}`, rather than refused as an event that cannot be read.
pub fn parse_webhook(root: &Map<String, Value>) -> Result<Event> {
    let kind = field::string(root, "event", "event")?.unwrap_or("alert");
    if kind != "alert" {
        return Ok(Event::skipped(
            Format::MackerelWebhook,
            field::string(root, "orgName", "orgName")?.unwrap_or("mackerel").to_string(),
            kind,
            format!("Mackerel webhook event {} is not an alert: only \"event\": \"alert\" pages", super::quoted(kind)),
        ));
    }
    let alert = field::req_object(root, "alert", "alert")?;
    let host = field::object(root, "host", "host")?;
    let status = status_code(field::req_string(alert, "status", "alert.status")?, "alert.status")?;
    let check = field::req_string(alert, "monitorName", "alert.monitorName")?.to_string();
    // A host's alert names its host; a service metric's its service (a top-level object);
    // others (expression, external monitors without a host) the organization.
    let service = match field::object(root, "service", "service")? {
        Some(s) => field::string(s, "name", "service.name")?,
        None => field::string(alert, "service", "alert.service")?,
    };
    let entity = match (host, service) {
        (Some(h), _) => field::req_string(h, "name", "host.name")?.to_string(),
        (None, Some(s)) if !s.is_empty() => s.to_string(),
        (None, _) => field::req_string(root, "orgName", "orgName")?.to_string(),
    };
    // The alert message is top-level, beside `alert` (a check monitor's: the plugin's output).
    let message = match field::string(root, "message", "message")? {
        Some(m) if !m.is_empty() => Some(m),
        _ => field::string(alert, "message", "alert.message")?,
    };
    // An alert closed while its status was still failing (closed by hand) is over too.
    let closed = field::boolean(alert, "isOpen", "alert.isOpen")? == Some(false);
    let output = match message {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => {
            let label = field::string(alert, "metricLabel", "alert.metricLabel")?.unwrap_or("");
            let value = alert.get("metricValue").filter(|v| !v.is_null()).map(|v| v.to_string()).unwrap_or_default();
            format!("{check} {} {label} {value}", super::status_name(status).to_ascii_uppercase()).trim().to_string()
        }
    };
    // Every webhook of one alert carries the alert's `createdAt` (milliseconds, when it
    // opened); `statusChangedAt` (seconds, the change this webhook reports) and `closedAt`
    // (seconds, once closed) tell its status changes apart, so that one handed over late (a
    // `critical` after the alert's `ok`) is superseded instead of reopening the incident
    // (Mackerel "Webhook notifications"). The latest of those given is the event's time.
    let seconds = |t: i64| if t > 10_000_000_000 { t / 1000 } else { t };
    let times = [
        field::int(alert, "createdAt", "alert.createdAt")?,
        field::time(alert, "statusChangedAt", "alert.statusChangedAt")?,
        field::time(alert, "closedAt", "alert.closedAt")?,
    ];
    Ok(Event {
        format: Format::MackerelWebhook,
        entity,
        check,
        status,
        output,
        action: Some(if status == 0 || closed { SourceAction::Resolve } else { SourceAction::Create }),
        occurrences: 1,
        timestamp: times.into_iter().flatten().map(seconds).max(),
        url: field::string(alert, "url", "alert.url")?.map(str::to_string),
        // The alert is the incident: its id is on every webhook of the alert, from open to
        // close. Host names are not unique in Mackerel and the monitored host writes its own
        // (as it names its check monitors), so `{host.name}/{monitorName}` let a host that
        // registered under another's name resolve that host's incident. Without an id (not
        // a string, or empty) the key is `{entity}/{check}`, as before.
        incident_key: alert.get("id").and_then(Value::as_str).map(str::trim).filter(|id| !id.is_empty()).map(str::to_string),
        ..Event::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Source, parse_json};
    use super::*;

    fn action(status: &str, previous: &str) -> Result<Event> {
        let mut inv = Invocation { check: Some("check-nginx".into()), entity: Some("web-01".into()), ..Invocation::default() };
        inv.env.insert("MACKEREL_STATUS".into(), status.into());
        inv.env.insert("MACKEREL_PREVIOUS_STATUS".into(), previous.into());
        inv.env.insert("MACKEREL_CHECK_MESSAGE".into(), "nginx is down".into());
        inv.parse(Source::Mackerel)
    }

    #[test]
    fn state_changes_only() {
        let e = action("CRITICAL", "OK").unwrap();
        assert_eq!((e.action, e.status, e.skip.is_none()), (Some(SourceAction::Create), 2, true));
        assert_eq!(e.output, "nginx is down");
        assert_eq!(action("OK", "CRITICAL").unwrap().action, Some(SourceAction::Resolve));
        let same = action("CRITICAL", "CRITICAL").unwrap();
        assert!(same.skip.as_ref().is_some_and(|s| s.quiet && s.reason.contains("unchanged")));
        let first = action("OK", "").unwrap();
        assert_eq!((first.action, first.skip), (Some(SourceAction::ResolveIfOpen), None), "first run OK: resolves only what is open");
        assert_eq!(action("WARNING", "").unwrap().action, Some(SourceAction::Create), "first run failing");
        assert_eq!(action("CRITICAL", "WARNING").unwrap().action, Some(SourceAction::Create));
        assert_eq!(action("BAD", "OK").unwrap_err().code, Code::DataErr);
        let mut inv = Invocation { check: Some(" ".into()), ..Invocation::default() };
        inv.env.insert("MACKEREL_STATUS".into(), "CRITICAL".into());
        assert_eq!(inv.parse(Source::Mackerel).unwrap_err().code, Code::Usage, "an empty --check keys nothing");
    }

    #[test]
    fn webhook() {
        let e = parse_json(
            br#"{"orgName":"Example","event":"alert","host":{"id":"3JMx","name":"app-01","url":"https://mackerel.io/orgs/Example/hosts/3JMx"},
                "alert":{"id":"2bj","status":"critical","isOpen":true,"trigger":"monitor","url":"https://mackerel.io/orgs/Example/alerts/2bj",
                "createdAt":1473129912693,"monitorName":"loadavg5","metricLabel":"loadavg5","metricValue":12.5,"criticalThreshold":10}}"#,
            None,
        )
        .unwrap();
        assert_eq!((e.format, e.entity.as_str(), e.check.as_str(), e.status), (Format::MackerelWebhook, "app-01", "loadavg5", 2));
        assert_eq!(e.action, Some(SourceAction::Create));
        assert_eq!(e.timestamp, Some(1473129912));
        assert_eq!(e.url.as_deref(), Some("https://mackerel.io/orgs/Example/alerts/2bj"));
        assert_eq!(e.source_key(), "2bj", "keyed by the alert, not by the host's name");
        let err = parse_json(br#"{"event":"alert","alert":{"status":"critical"}}"#, None).unwrap_err();
        assert!(err.to_string().contains("alert.monitorName"), "{err}");
        // Another event of the channel (its test notification, a host's status) pages nobody.
        for other in [
            r#"{"orgName":"Example","event":"sample","message":"Sample Notification from Mackerel","imageUrl":null}"#,
            r#"{"orgName":"Example","event":"hostStatus","host":{"id":"22D4","name":"app-01","status":"poweroff"},"fromStatus":"working"}"#,
        ] {
            let e = parse_json(other.as_bytes(), None).unwrap();
            assert_eq!((e.format, e.entity.as_str()), (Format::MackerelWebhook, "Example"));
            assert!(e.skip.as_ref().is_some_and(|s| s.reason.contains("is not an alert")), "{other}: {:?}", e.skip);
        }
    }
}
