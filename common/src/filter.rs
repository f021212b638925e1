//! Filters: what should be done with an event, before any state is consulted.
//!
//! This is the stateless half of the decision: the event's own status and action, whether it is
//! silenced, whether its severity is one the operator pages for, and sensu-plugin's
//! `filter_repeated` occurrence rules — each only for the input formats it belongs to
//! ([`applies`]). The stateful half (is the incident open? was it notified
//! within `refresh`?) is [`crate::state::decide`]. Every skip carries a reason that the handler
//! logs, and a skip exits 0.

use std::time::Duration;

use crate::config::{Common, NotificationAction};
use crate::event::{Event, Format, SourceAction};

/// What to do with the incident at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Raise (or re-raise) the incident.
    Trigger,
    /// Acknowledge it (from a Nagios ACKNOWLEDGEMENT).
    Acknowledge,
    /// Close it.
    Resolve,
}

impl Action {
    /// Lower-case name, as PagerDuty's `event_action` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Action::Trigger => "trigger",
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
        }
    }

    /// Past tense for log lines: `triggered`, `acknowledged`, `resolved`.
    pub fn past(self) -> &'static str {
        match self {
            Action::Trigger => "triggered",
            Action::Acknowledge => "acknowledged",
            Action::Resolve => "resolved",
        }
    }
}

/// The filters' verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Do nothing; the reason is logged.
    Skip(String),
    /// Do nothing; the reason is logged at debug level only (Mackerel's every-run action).
    QuietSkip(String),
    /// Act on the incident (still subject to dedup against the state store).
    Act(Action),
}

/// The `notification_types` entry for the event's Nagios/Icinga notification type, when the
/// operator mapped it: the type as the setting names it, and its action.
pub fn mapped(event: &Event, settings: &Common) -> Option<(String, NotificationAction)> {
    event
        .source_type
        .as_ref()
        .filter(|_| applies(Filter::NotificationTypes, event.format))
        .and_then(|t| settings.notification_types.iter().find(|(k, _)| k.eq_ignore_ascii_case(t)))
        .map(|(k, a)| (k.clone(), *a))
}

/// Whether `event` is a Nagios/Icinga 2 CUSTOM notification that the operator's
/// `notification_types` maps to an action ([`crate::state::Proposal::custom`]): someone asked
/// for it by hand (Nagios "Send custom notification", `SEND_CUSTOM_SVC_NOTIFICATION`; Icinga 2
/// `send-custom-notification`), so a trigger is not held back as a repeat inside `refresh`.
/// Unmapped, a CUSTOM notification is not paged at all.
pub fn is_custom(event: &Event, settings: &Common) -> bool {
    mapped(event, settings).is_some_and(|(kind, _)| kind.eq_ignore_ascii_case("CUSTOM"))
}

/// sensu-plugin's default check interval (seconds) when the event does not carry one.
pub const DEFAULT_INTERVAL_SECS: u64 = 30;

/// One of the handler's own filters. Which of them apply depends on the input format
/// ([`applies`]): a monitoring system that already decides when to notify is not second-guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// The `notification_types` setting maps a Nagios/Icinga `NOTIFICATIONTYPE` to an action.
    NotificationTypes,
    /// A silenced event (Sensu 1.x `silenced`, Sensu Go `check.is_silenced`) is skipped.
    Silenced,
    /// A trigger whose status word is not in `severities` is skipped.
    Severities,
    /// A trigger with fewer than `occurrences` (check attribute, else setting) is skipped
    /// (sensu-plugin's `filter_repeated`, first half).
    Occurrences,
    /// Past `occurrences`, a `create` is handled only every `refresh / interval` occurrences
    /// (sensu-plugin's `filter_repeated`, second half).
    RepeatThinning,
}

impl Filter {
    /// Every filter, in the order [`decide`] applies them.
    pub const ALL: [Filter; 5] =
        [Filter::NotificationTypes, Filter::Silenced, Filter::Severities, Filter::Occurrences, Filter::RepeatThinning];
}

/// Whether `filter` applies to events of `format`. The README's "Filters per input format"
/// table is this function; keep them together.
///
/// - Sensu Go filters events in the backend before any handler runs (`fatigue_check`,
///   `not_silenced`, `is_incident`; Sensu Go "Filters reference"): an occurrence the pipeline
///   lets through is paged, so neither occurrence filter applies (`fatigue_check/occurrences:
///   "3"` passes occurrence 3, which sensu-plugin's thinning would drop). Repeats are suppressed
///   by the ledger's `refresh` only. A silenced event is still skipped, so a pipeline without
///   `not_silenced` does not page through a silence.
/// - Sensu 1.x handlers filter themselves (sensu-plugin `filter_silenced`,
///   `filter_repeated`): all filters apply, as the Ruby handler applied them.
/// - Nagios, Icinga 2, Zabbix and Mackerel schedule their own (re-)notifications
///   (`first_notification_delay`, `notification_interval`, escalations, `max_check_attempts`):
///   no occurrence filter applies (`NOTIFICATIONNUMBER` is 0 for a CUSTOM notification).
///   Not so mackerel-agent's check `action`, run with each run's status whatever
///   `max_check_attempts` (mackerel-agent `command/command.go`): it carries no count to filter
///   on, and the README says to page such checks from the webhook.
///   `notification_types` applies to Nagios and Icinga 2, which name the notification type.
/// - `severities` applies to every format.
pub fn applies(filter: Filter, format: Format) -> bool {
    use Format::*;
    match filter {
        Filter::NotificationTypes => matches!(format, Nagios | Icinga),
        Filter::Silenced => matches!(format, Sensu | SensuGo),
        Filter::Severities => true,
        Filter::Occurrences | Filter::RepeatThinning => matches!(format, Sensu),
    }
}

/// Decide what `event` calls for under `settings`, applying the filters that
/// [`applies`] names for the event's format:
///
/// - a Nagios/Icinga notification type named in `notification_types` gets the action mapped
///   there (a mapped `trigger` still passes the severity filter);
/// - a skip the source format decided (Mackerel: no state change; Nagios: DOWNTIME) → skip;
/// - silenced → skip, except a resolve (silences hold back failures, never recoveries);
/// - Nagios ACKNOWLEDGEMENT → acknowledge;
/// - Sensu 1.x `action`: `resolve` → resolve, `flapping` → trigger, `create` → trigger
///   (a `create` with status 0 is treated as a resolve);
/// - otherwise status 0 → resolve (the state store decides whether anything is open),
///   non-zero → trigger;
/// - a trigger whose status word (`warning`/`critical`/`unknown`; for Zabbix the word
///   [`severity_word`] maps its severity to, e.g. `info`) is not in `severities` → skip;
/// - sensu-plugin `filter_repeated` for triggers (Sensu 1.x only): fewer than `occurrences`
///   (check attribute, else setting) → skip; past that, a `create` is only handled every
///   `refresh / interval` occurrences (flapping events are exempt, as in sensu-plugin).
pub fn decide(event: &Event, settings: &Common) -> Decision {
    let on = |f: Filter| applies(f, event.format);
    match mapped(event, settings) {
        Some((kind, NotificationAction::Skip)) => return Decision::Skip(format!("{kind} notifications are mapped to skip")),
        Some((_, NotificationAction::Acknowledge)) => return Decision::Act(Action::Acknowledge),
        Some((_, NotificationAction::Resolve)) => return Decision::Act(Action::Resolve),
        Some((_, NotificationAction::Trigger)) if event.status == 0 => {
            return Decision::Skip("mapped to trigger, but the status is OK".into());
        }
        Some((_, NotificationAction::Trigger)) => {
            let mut as_problem = event.clone();
            as_problem.skip = None;
            as_problem.source_type = None;
            as_problem.action = Some(SourceAction::Create);
            return decide(&as_problem, settings);
        }
        _ => {}
    }
    if let Some(skip) = &event.skip {
        return if skip.quiet { Decision::QuietSkip(skip.reason.clone()) } else { Decision::Skip(skip.reason.clone()) };
    }
    let action = match event.action {
        Some(SourceAction::Acknowledge) => Action::Acknowledge,
        Some(SourceAction::Resolve | SourceAction::ResolveIfOpen) => Action::Resolve,
        Some(SourceAction::Flapping) => Action::Trigger,
        Some(SourceAction::Create) | None if event.status == 0 => Action::Resolve,
        Some(SourceAction::Create) | None => Action::Trigger,
    };
    // Silences hold back failures and re-notifications, never recoveries: an incident opened
    // before the silence must still close.
    if action == Action::Resolve {
        return Decision::Act(action);
    }
    if event.silenced && on(Filter::Silenced) {
        return Decision::Skip("event is silenced".into());
    }
    if action != Action::Trigger {
        return Decision::Act(action);
    }
    // Only a flapping notice reaches here in state OK (Nagios and Icinga 2 send FLAPPINGSTART in
    // whatever state the check is in; Sensu 1.x `action: flapping` likewise). An OK never
    // triggers, also where `severities` holds `ok` (accepted as the Sensu handler's word).
    if event.status == 0 {
        return Decision::Skip("flapping in state OK pages nobody (an OK never triggers)".into());
    }
    let severity = severity_word(event, settings);
    if on(Filter::Severities) && !settings.severities.iter().any(|s| s.name() == severity) {
        let zabbix = event.zabbix_severity.map(|z| format!(" (Zabbix {})", z.name())).unwrap_or_default();
        return Decision::Skip(format!(
            "severity {severity}{zabbix} is not in severities [{}]",
            settings.severities.iter().map(|s| s.name()).collect::<Vec<_>>().join(",")
        ));
    }
    let min = event.min_occurrences.unwrap_or(settings.occurrences).max(1);
    if on(Filter::Occurrences) && event.occurrences < min {
        return Decision::Skip(format!("not enough occurrences ({} of {min})", event.occurrences));
    }
    if on(Filter::RepeatThinning) && event.occurrences > min && event.action != Some(SourceAction::Flapping) {
        let refresh = refresh_for(event, settings).as_secs();
        let interval = event.interval.filter(|i| *i > 0).unwrap_or(DEFAULT_INTERVAL_SECS);
        let every = refresh / interval;
        if every != 0 && !(event.occurrences - min).is_multiple_of(every) {
            return Decision::Skip(format!("only handling every {every} occurrences (this is {})", event.occurrences));
        }
    }
    Decision::Act(Action::Trigger)
}

/// The word the `severities` filter compares: a Zabbix severity mapped by `zabbix_severities`
/// (default: Not classified, Information → `info`; Warning, Average → `warning`; High,
/// Disaster → `critical`), else the status word (`warning`/`critical`/`unknown`).
pub fn severity_word<'a>(event: &Event, settings: &'a Common) -> &'a str {
    match event.zabbix_severity {
        Some(z) => settings.zabbix_severities.get(&z).map(String::as_str).unwrap_or(z.default_filter_word()),
        None => event.status_name(),
    }
}

/// The refresh period for this event: the check's own `refresh` attribute (Sensu 1.x), else
/// the setting.
pub fn refresh_for(event: &Event, settings: &Common) -> Duration {
    refresh_or(event.refresh, settings.refresh)
}

/// A check's own `refresh` attribute in seconds (Sensu 1.x; `None` without one), bounded like
/// the setting (`config::REFRESH_BOUNDS`), else `default`.
pub fn refresh_or(check_refresh: Option<u64>, default: Duration) -> Duration {
    check_refresh.map(Duration::from_secs).map_or(default, |r| r.min(crate::config::REFRESH_BOUNDS.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_json;

    fn sensu1(action: &str, status: u32, occurrences: u64, extra_check: &str) -> Event {
        let json = format!(
            r#"{{"action":"{action}","occurrences":{occurrences},"client":{{"name":"web-01"}},
                "check":{{"name":"check_disk","status":{status},"output":"x","interval":60{extra_check}}}}}"#
        );
        parse_json(json.as_bytes(), None).unwrap()
    }

    fn go(status: u32, silenced: bool) -> Event {
        let json = format!(
            r#"{{"entity":{{"metadata":{{"name":"web-01"}}}},"check":{{"metadata":{{"name":"c"}},"status":{status},"is_silenced":{silenced}}}}}"#
        );
        parse_json(json.as_bytes(), None).unwrap()
    }

    #[test]
    fn status_and_action_map_to_decisions() {
        let s = Common::default();
        assert_eq!(decide(&sensu1("create", 2, 1, ""), &s), Decision::Act(Action::Trigger));
        assert_eq!(decide(&sensu1("resolve", 0, 1, ""), &s), Decision::Act(Action::Resolve));
        assert_eq!(decide(&sensu1("flapping", 1, 1, ""), &s), Decision::Act(Action::Trigger));
        assert_eq!(decide(&go(2, false), &s), Decision::Act(Action::Trigger));
        assert_eq!(decide(&go(0, false), &s), Decision::Act(Action::Resolve));
        assert_eq!(decide(&go(3, false), &s), Decision::Act(Action::Trigger));
    }

    #[test]
    fn notification_types_can_be_mapped() {
        use crate::event::{Invocation, Source};
        let mk = |t: &str| {
            let inv = Invocation {
                fields: vec![("NOTIFICATIONTYPE".into(), t.into()), ("HOSTNAME".into(), "h".into()), ("HOSTSTATE".into(), "DOWN".into())],
                ..Invocation::default()
            };
            inv.parse(Source::Nagios).unwrap()
        };
        let s = Common::default();
        assert!(matches!(decide(&mk("CUSTOM"), &s), Decision::Skip(r) if r.contains("not paged")));
        let mut s = Common::default();
        s.notification_types.insert("custom".into(), NotificationAction::Trigger);
        s.notification_types.insert("DOWNTIMESTART".into(), NotificationAction::Acknowledge);
        s.notification_types.insert("PROBLEM".into(), NotificationAction::Skip);
        assert_eq!(decide(&mk("CUSTOM"), &s), Decision::Act(Action::Trigger));
        assert_eq!(decide(&mk("DOWNTIMESTART"), &s), Decision::Act(Action::Acknowledge));
        assert!(matches!(decide(&mk("PROBLEM"), &s), Decision::Skip(_)));
        assert!(matches!(decide(&mk("DOWNTIMEEND"), &s), Decision::Skip(_)));
        let page = serde_json::json!({"notification_types": {"X": "page"}});
        let err = crate::config::typed::<Common>("pagerduty", &page.as_object().cloned().unwrap_or_default()).unwrap_err();
        assert!(err.to_string().contains("settings `pagerduty.notification_types.X`"), "{err}");
    }

    #[test]
    fn flapping_in_state_ok_never_triggers_whatever_the_severities() {
        use crate::config::Severity;
        let s = Common { severities: vec![Severity::Warning, Severity::Critical, Severity::Unknown, Severity::Ok], ..Common::default() };
        assert!(matches!(decide(&sensu1("flapping", 0, 1, ""), &s), Decision::Skip(r) if r.contains("flapping in state OK")));
        assert_eq!(decide(&sensu1("flapping", 2, 1, ""), &s), Decision::Act(Action::Trigger));
        assert_eq!(decide(&sensu1("resolve", 0, 1, ""), &s), Decision::Act(Action::Resolve));
    }

    #[test]
    fn silenced_events_are_skipped() {
        let d = decide(&go(2, true), &Common::default());
        assert_eq!(d, Decision::Skip("event is silenced".into()));
    }

    #[test]
    fn severity_filter_applies_to_triggers_only() {
        let s = Common { severities: vec![crate::config::Severity::Critical], ..Common::default() };
        match decide(&go(1, false), &s) {
            Decision::Skip(r) => assert!(r.contains("severity warning"), "{r}"),
            d => panic!("{d:?}"),
        }
        assert_eq!(decide(&go(0, false), &s), Decision::Act(Action::Resolve));
    }

    #[test]
    fn occurrences_follow_sensu_plugin() {
        let s = Common::default();
        // check.occurrences = 3: events 1 and 2 are skipped, 3 handled.
        let extra = r#","occurrences":3"#;
        assert!(matches!(decide(&sensu1("create", 2, 2, extra), &s), Decision::Skip(r) if r.contains("2 of 3")));
        assert_eq!(decide(&sensu1("create", 2, 3, extra), &s), Decision::Act(Action::Trigger));
        // refresh 1800 / interval 60 = every 30 occurrences after the first handled one.
        assert!(matches!(decide(&sensu1("create", 2, 4, extra), &s), Decision::Skip(r) if r.contains("every 30")));
        assert_eq!(decide(&sensu1("create", 2, 33, extra), &s), Decision::Act(Action::Trigger));
        // A check-level refresh of 120 s with interval 60: every 2.
        let extra = r#","refresh":120"#;
        assert_eq!(decide(&sensu1("create", 2, 3, extra), &s), Decision::Act(Action::Trigger));
        assert!(matches!(decide(&sensu1("create", 2, 4, extra), &s), Decision::Skip(_)));
        // Flapping is not thinned out.
        assert_eq!(decide(&sensu1("flapping", 2, 4, ""), &s), Decision::Act(Action::Trigger));
        // Refresh shorter than the interval: every occurrence.
        let s = Common { refresh: Duration::from_secs(10), ..Common::default() };
        assert_eq!(decide(&sensu1("create", 2, 7, ""), &s), Decision::Act(Action::Trigger));
    }

    #[test]
    fn sensu_go_occurrences_are_the_pipelines_business() {
        // Occurrences a fatigue_check filter lets through; sensu-plugin's thinning would drop
        // 3, 4 and 30 ("only handling every 30 occurrences").
        let s = Common { occurrences: 5, ..Common::default() };
        for n in [1, 2, 3, 4, 30, 31] {
            let json = format!(
                r#"{{"entity":{{"metadata":{{"name":"web-01"}}}},"check":{{"metadata":{{"name":"c"}},"status":2,"interval":60,"occurrences":{n}}}}}"#
            );
            assert_eq!(decide(&parse_json(json.as_bytes(), None).unwrap(), &s), Decision::Act(Action::Trigger), "occurrence {n}");
        }
        // Sensu 1.x keeps sensu-plugin's rules.
        assert!(matches!(decide(&sensu1("create", 2, 4, ""), &Common::default()), Decision::Skip(r) if r.contains("every 30")));
    }

    #[test]
    fn filters_per_format() {
        use crate::event::Format::*;
        let row = |f: Format| Filter::ALL.map(|x| applies(x, f));
        // NotificationTypes, Silenced, Severities, Occurrences, RepeatThinning
        assert_eq!(row(Sensu), [false, true, true, true, true]);
        assert_eq!(row(SensuGo), [false, true, true, false, false]);
        assert_eq!(row(Nagios), [true, false, true, false, false]);
        assert_eq!(row(Icinga), [true, false, true, false, false]);
        assert_eq!(row(Zabbix), [false, false, true, false, false]);
        assert_eq!(row(Mackerel), [false, false, true, false, false]);
        assert_eq!(row(MackerelWebhook), [false, false, true, false, false]);
    }

    #[test]
    fn custom_notification_number_zero_mapped_to_trigger_pages() {
        use crate::event::{Invocation, Source};
        let inv = Invocation {
            fields: vec![
                ("NOTIFICATIONTYPE".into(), "CUSTOM".into()),
                ("NOTIFICATIONNUMBER".into(), "0".into()),
                ("HOSTNAME".into(), "h".into()),
                ("SERVICEDESC".into(), "disk".into()),
                ("SERVICESTATE".into(), "CRITICAL".into()),
            ],
            ..Invocation::default()
        };
        let e = inv.parse(Source::Nagios).unwrap();
        assert_eq!(e.occurrences, 0);
        let mut s = Common::default();
        s.notification_types.insert("CUSTOM".into(), NotificationAction::Trigger);
        assert_eq!(decide(&e, &s), Decision::Act(Action::Trigger));
    }
}
