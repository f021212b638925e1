//! Nagios 4 and Icinga 2 notifications: macros in the environment or as `--field` arguments.
//!
//! Nagios hands a notification command its macros as `NAGIOS_<MACRO>` environment variables,
//! but only with `enable_environment_macros=1`, and Debian ships it with `0`. So the same names
//! are also accepted as repeatable `--field NAME=VALUE` arguments (`--field
//! NOTIFICATIONTYPE=$NOTIFICATIONTYPE$ …`, the pd-nagios convention); a field wins over the
//! environment. Icinga 2 values may use Icinga's names (`notification.type`, `host.name`,
//! `service.name`, …), given as fields or as the plain environment names an Icinga 2
//! `NotificationCommand` `env` block sets (`NOTIFICATIONTYPE`, `SERVICENAME`, …).
//!
//! Known quirks (Nagios 4 documentation, "Understanding Macros"): in arguments Nagios strips
//! `` `~$&|'"<> `` (`illegal_macro_output_chars`) — those characters cannot be restored, the
//! environment keeps them; `LONGSERVICEOUTPUT` carries `\n` as two literal characters; custom
//! variables arrive as `NAGIOS__SERVICE<NAME>` / `NAGIOS__HOST<NAME>` (upper-cased), and are
//! read as labels, and as settings overrides when named `_PAGERDUTY_<SETTING>` (likewise
//! `_TWILIO_…`, `_REACTIO_…`). Nagios runs notification commands in parallel, so `$TIMET$`
//! (one-second resolution) and `$SERVICEEVENTID$` / `$HOSTEVENTID$` (the number of the state
//! change) are read to order them ([`Event::sequence`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Event, Format, Invocation, SourceAction, SourceSkip};
use crate::exit::{Code, Result};

/// Icinga 2 runtime macro names and the Nagios macro each stands for.
const ICINGA_NAMES: [(&str, &str); 16] = [
    ("notification.type", "NOTIFICATIONTYPE"),
    ("notification.author", "NOTIFICATIONAUTHOR"),
    ("notification.comment", "NOTIFICATIONCOMMENT"),
    ("host.name", "HOSTNAME"),
    ("host.display_name", "HOSTDISPLAYNAME"),
    ("host.address", "HOSTADDRESS"),
    ("host.state", "HOSTSTATE"),
    ("host.output", "HOSTOUTPUT"),
    ("service.name", "SERVICEDESC"),
    ("service.display_name", "SERVICEDISPLAYNAME"),
    ("service.state", "SERVICESTATE"),
    ("service.output", "SERVICEOUTPUT"),
    ("service.check_attempt", "SERVICEATTEMPT"),
    ("SERVICENAME", "SERVICEDESC"),
    ("LONGDATETIME", "LONGDATETIME"),
    ("HOSTDISPLAYNAME", "HOSTDISPLAYNAME"),
];

/// The notification types Nagios 4 (`$NOTIFICATIONTYPE$`, "Standard Macros in Nagios") and
/// Icinga 2 (`notification.type`, "Notifications": `Problem`, `DowntimeStart` … , compared
/// without case) send: the keys a `notification_types` setting can usefully map. One naming
/// anything else never applies.
pub const NOTIFICATION_TYPES: [&str; 12] = [
    "PROBLEM",
    "RECOVERY",
    "ACKNOWLEDGEMENT",
    "FLAPPINGSTART",
    "FLAPPINGSTOP",
    "FLAPPINGEND",
    "FLAPPINGDISABLED",
    "DOWNTIMESTART",
    "DOWNTIMEEND",
    "DOWNTIMECANCELLED",
    "DOWNTIMEREMOVED",
    "CUSTOM",
];

/// Settings sections that custom variables may override: one per handler
/// (`_SERVICESLACK_CHANNEL` is `slack.channel`); any other custom variable is a label.
const SECTIONS: [&str; 4] = ["pagerduty", "twilio", "reactio", "slack"];

struct Macros {
    values: BTreeMap<String, String>,
    format: Format,
}

impl Macros {
    fn collect(inv: &Invocation, format: Format) -> Macros {
        let mut values = BTreeMap::new();
        let canonical = |name: &str| -> String {
            let n = name.strip_prefix("NAGIOS_").unwrap_or(name);
            ICINGA_NAMES.iter().find(|(i, _)| *i == n).map(|(_, m)| m.to_string()).unwrap_or_else(|| n.to_string())
        };
        for (k, v) in &inv.env {
            if let Some(m) = k.strip_prefix("NAGIOS_") {
                values.insert(m.to_string(), v.clone());
            } else if format == Format::Icinga {
                let m = k.strip_prefix("ICINGA_").unwrap_or(k);
                let c = canonical(m);
                if c != m || is_macro_name(m) {
                    values.entry(c).or_insert_with(|| v.clone());
                }
            }
        }
        let (fields, recovered) = repaired_fields(inv);
        for (k, v) in fields {
            values.insert(canonical(&k), v);
        }
        // A field recovered from a positional argument only fills a macro nothing else gave.
        for (k, v) in recovered {
            values.entry(canonical(&k)).or_insert(v);
        }
        Macros { values, format }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn req(&self, name: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| {
            // Icinga 2 has its own macro names: say how its NotificationCommand sets this one.
            let icinga = ICINGA_NAMES.iter().find(|(i, m)| *m == name && i.contains('.')).map(|(i, _)| *i);
            Code::DataErr.msg(match (self.format, icinga) {
                (Format::Icinga, Some(i)) => {
                    format!("missing macro {name} (set {name} = \"${i}$\" in the NotificationCommand's env, or pass --field {i}=${i}$)")
                }
                _ => format!("missing macro {name} (set NAGIOS_{name} or pass --field {name}=${name}$)"),
            })
        })
    }
}

/// Macro names and values, in order.
type Fields = Vec<(String, String)>;

/// The `--field`s, with what Nagios 4's own command parser did to a value ending in a
/// backslash undone: `(fields, recovered)`.
///
/// In the argument form (`--field "SERVICEOUTPUT=$SERVICEOUTPUT$" --field
/// "LONGSERVICEOUTPUT=…"`), Nagios runs the command without a shell, parsing it itself
/// (libnagios `runcmd_cmd2strv`), and takes the `\"` that a plugin output ending in a backslash
/// leaves (`… free space on D:\`) for the closing quote: the backslash is dropped, the next
/// `--field` is glued onto the value (`… on D:--field`) and the next `NAME=VALUE` arrives as a
/// positional argument, which was ignored (a Windows path at the end of the output lost the
/// long output, or the host notification's number). Here, when there are as many positional
/// `NAME=VALUE`s with a macro's name as values ending in the glued `--field`, those are the
/// fields again (`recovered`) and each glued value gets its backslash back.
///
/// A positional argument is not always the command definition's, though: a command that
/// leaves a macro unquoted (`--field SERVICEOUTPUT=$SERVICEOUTPUT$`), or a Nagios whose
/// `illegal_macro_output_chars` lets `"` through, splits a check output such as
/// `x--field NOTIFICATIONTYPE=RECOVERY _SERVICEPAGERDUTY_ROUTING_KEY=…` into arguments of the
/// monitored host's choosing. So a recovered field only fills a macro that no `--field` and no
/// environment variable gave ([`Macros::collect`]), and never one that decides where the page
/// goes or how it is ordered: a custom variable (`_…`: settings overrides), a state id
/// (`SERVICESTATEID`, read before `SERVICESTATE`), `TIMET` or an event id (the ledger's order).
/// The output, the long output, the notification number, acknowledgement author and comment,
/// and a displaced state or name are what a real glued command loses, and are recovered.
fn repaired_fields(inv: &Invocation) -> (Fields, Fields) {
    const GLUED: &str = "--field";
    let mut fields = inv.fields.clone();
    let recovered: Fields = inv
        .args
        .iter()
        .filter_map(|a| a.split_once('='))
        .filter(|(k, _)| is_macro_name(k) || k.starts_with("LONG") || *k == "TIMET" || ICINGA_NAMES.iter().any(|(i, _)| i == k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let glued = fields.iter().filter(|(_, v)| v.ends_with(GLUED)).count();
    if recovered.is_empty() || glued != recovered.len() {
        return (fields, Vec::new());
    }
    for (_, v) in fields.iter_mut().filter(|(_, v)| v.ends_with(GLUED)) {
        v.truncate(v.len() - GLUED.len());
        v.push('\\');
    }
    let recoverable = |k: &str| !(k.starts_with('_') || k.ends_with("STATEID") || k.ends_with("EVENTID") || k == "TIMET");
    (fields, recovered.into_iter().filter(|(k, _)| recoverable(k)).collect())
}

fn is_macro_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && (s.starts_with("HOST") || s.starts_with("SERVICE") || s.starts_with("NOTIFICATION") || s.starts_with('_'))
}

/// Parse a Nagios or Icinga 2 notification. Errors (exit 65) name the missing macro.
pub fn parse(inv: &Invocation, format: Format) -> Result<Event> {
    let m = Macros::collect(inv, format);
    let kind = m.req("NOTIFICATIONTYPE")?.to_ascii_uppercase();
    let entity = m.req("HOSTNAME")?.to_string();
    let service = m.get("SERVICEDESC");

    let (check, status, mut output) = match service {
        Some(svc) => {
            let status = match m.get("SERVICESTATEID").and_then(|s| s.trim().parse::<u32>().ok()) {
                Some(id) => id,
                None => state_code(m.req("SERVICESTATE")?)?,
            };
            let mut out = m.get("SERVICEOUTPUT").unwrap_or("").to_string();
            if let Some(long) = m.get("LONGSERVICEOUTPUT") {
                out.push('\n');
                out.push_str(&long.replace("\\n", "\n"));
            }
            (svc.to_string(), status, out)
        }
        None => {
            let status = state_code(m.req("HOSTSTATE")?)?;
            let mut out = m.get("HOSTOUTPUT").unwrap_or("").to_string();
            if let Some(long) = m.get("LONGHOSTOUTPUT") {
                out.push('\n');
                out.push_str(&long.replace("\\n", "\n"));
            }
            ("host".to_string(), status, out)
        }
    };

    let mut skip = None;
    let action = match kind.as_str() {
        "PROBLEM" => Some(SourceAction::Create),
        "RECOVERY" => Some(SourceAction::Resolve),
        "ACKNOWLEDGEMENT" => {
            let who = if service.is_some() { "SERVICE" } else { "HOST" };
            let author = m.get(&format!("{who}ACKAUTHOR")).or(m.get("NOTIFICATIONAUTHOR")).unwrap_or("someone");
            let comment = m.get(&format!("{who}ACKCOMMENT")).or(m.get("NOTIFICATIONCOMMENT")).unwrap_or("");
            output = format!("acknowledged by {author}: {comment}");
            Some(SourceAction::Acknowledge)
        }
        "FLAPPINGSTART" => Some(SourceAction::Flapping),
        // Flapping stopped (or detection was disabled) in whatever state the check is in now:
        // only OK/UP resolves. Still failing, Nagios sends no new PROBLEM until
        // `notification_interval`, so it is a (re-)trigger, or the page would be lost.
        "FLAPPINGSTOP" | "FLAPPINGEND" | "FLAPPINGDISABLED" if status == 0 => Some(SourceAction::Resolve),
        "FLAPPINGSTOP" | "FLAPPINGEND" | "FLAPPINGDISABLED" => Some(SourceAction::Create),
        // Nagios sends no notification during a downtime, a RECOVERY included, and none for
        // it afterwards: a downtime ending (or cancelled) in OK/UP is the only word that the
        // problem paged before it is over. Every object of the downtime gets one, paged or not:
        // it resolves only an incident the ledger knows open (not a flood of resolves for
        // services that never failed, which PagerDuty rate-limits per routing key). One ending
        // in a problem state is skipped: Nagios sends the PROBLEM itself at the next check.
        "DOWNTIMEEND" | "DOWNTIMECANCELLED" | "DOWNTIMEREMOVED" if status == 0 => Some(SourceAction::ResolveIfOpen),
        // Not "map them with notification_types": mapped to resolve, these would close
        // incidents that are still failing.
        "DOWNTIMEEND" | "DOWNTIMECANCELLED" | "DOWNTIMEREMOVED" => {
            skip = Some(SourceSkip {
                reason: format!(
                    "{kind} in a problem state pages nobody (a problem not paged before the downtime is paged by the PROBLEM that follows it)"
                ),
                quiet: false,
            });
            None
        }
        k if k.starts_with("DOWNTIME") || k == "CUSTOM" => {
            skip = Some(SourceSkip {
                reason: format!("{kind} notifications are not paged (map them with the notification_types setting)"),
                quiet: false,
            });
            None
        }
        _ => {
            return Err(Code::DataErr.msg(format!(
                "NOTIFICATIONTYPE {} is not a Nagios notification type (PROBLEM, RECOVERY, ACKNOWLEDGEMENT, FLAPPING*, DOWNTIME*, CUSTOM)",
                super::quoted(&kind)
            )));
        }
    };

    let mut labels = BTreeMap::new();
    let mut overrides: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    // Host variables first, service variables win. One passed for an object without it is
    // not set (see `unset_custom_variable`): a command that passes a variable passes it so
    // for every object without it (an empty `severities` would page nothing, a `$`
    // `dedup_key_template` would make every such service one incident; an empty service
    // variable would hide the host's).
    for prefix in ["_HOST", "_SERVICE"] {
        for (k, v) in &m.values {
            let Some(name) = k.strip_prefix(prefix) else { continue };
            if name.is_empty() || unset_custom_variable(k, v) {
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if let Some((section, setting)) = lower.split_once('_')
                && SECTIONS.contains(&section)
                && !setting.is_empty()
            {
                overrides.entry(section.to_string()).or_default().insert(setting.to_string(), Value::String(v.clone()));
                continue;
            }
            if name_holds_credential(&lower) || value_holds_credential(v) {
                continue;
            }
            labels.insert(lower, v.clone());
        }
    }

    Ok(Event {
        format,
        entity,
        check,
        status,
        output,
        action,
        occurrences: m.get("NOTIFICATIONNUMBER").and_then(|n| n.trim().parse().ok()).unwrap_or(1),
        timestamp: m.get("TIMET").and_then(|t| t.trim().parse().ok()),
        // The state change's number: a service's own, or the host's for a host notification.
        sequence: m
            .get(if service.is_some() { "SERVICEEVENTID" } else { "HOSTEVENTID" })
            .and_then(|n| n.trim().parse().ok())
            .filter(|n| *n > 0),
        labels,
        overrides,
        address: m.get("HOSTADDRESS").map(str::to_string),
        skip,
        source_type: Some(kind),
        ..Event::default()
    })
}

/// Whether the value `value` of the custom variable macro `name` (`_SERVICEPAGERDUTY_SEVERITIES`)
/// is what a command passing it gets for an object that does not define it, which counts as
/// not set: empty (Icinga 2 makes an unresolvable `$service.vars.…$` in an `env` block empty,
/// and so do Nagios builds with nagioscore#984), the macro itself left unexpanded
/// (`$_SERVICEPAGERDUTY_SEVERITIES$`: Nagios 4.4 leaves an undefined custom variable macro as
/// it is, NagiosEnterprises/nagioscore#983), or `$`, what a shell makes of that inside the
/// double quotes of a `--field "…=$…$"` argument (`$_SERVICEPAGERDUTY_SEVERITIES` read as an
/// unset shell variable, then the closing `$`): Nagios 4.4.6 runs a command line holding quotes
/// or `$` through `/bin/sh -c`, and passes `$` for such a field (seen with Debian's nagios4).
fn unset_custom_variable(name: &str, value: &str) -> bool {
    let value = value.trim();
    value.is_empty() || value == "$" || value.strip_prefix('$').and_then(|v| v.strip_suffix('$')) == Some(name)
}

/// Parts of a custom variable's name that say it holds a credential: Icinga Web 2's default
/// `protected_customvars` (`*pw*`, `*pass*`, `community`), and the other words such variables
/// are named with (`_SNMPV3_AUTHKEY`, `_SNMPV3_PRIVPASS`, `_API_TOKEN`, `_DB_SECRET`, `_HOSTCREDS`,
/// `_CREDENTIALS` …).
const CREDENTIAL_WORDS: [&str; 9] = ["pw", "pass", "community", "secret", "token", "key", "auth", "priv", "cred"];

/// Whether a custom variable named `name` (lower case, without `_HOST`/`_SERVICE`) looks like
/// a credential. With `enable_environment_macros=1` Nagios hands the handler every custom
/// variable of the host and the service, and labels go to the service (PagerDuty's
/// `custom_details`): a site's SNMP community or database password must not.
fn name_holds_credential(name: &str) -> bool {
    CREDENTIAL_WORDS.iter().any(|w| name.contains(w))
}

/// Whether a custom variable's `value` carries a credential whatever its name (`_DB_URL`,
/// `_DSN` are named for what they connect to): a URL with user information
/// (`mysql://app:s3cret@db/x`, `redis://s3cret@h:6379`), a DSN with a password before an `@`
/// (`app:s3cret@tcp(db:3306)/shop`, `jdbc:oracle:thin:app/s3cret@db:1521/X`), or a keyword
/// DSN (`password=`, `passwd=`, `pwd=`). Any word of the value counts. It errs on the side of
/// dropping: a harmless `ssh://deploy@web-01` or `mailto:dba@example.com` is dropped too.
fn value_holds_credential(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if ["password=", "passwd=", "pwd="].iter().any(|k| lower.contains(k)) {
        return true;
    }
    value.split_whitespace().any(|word| match word.split_once("://") {
        Some((_, rest)) => rest.contains('@'),
        None => word.find('@').is_some_and(|at| word[..at].contains(':')),
    })
}

/// Nagios/Icinga state word → status: OK/UP 0, WARNING 1, CRITICAL/DOWN/UNREACHABLE 2, UNKNOWN 3.
pub fn state_code(state: &str) -> Result<u32> {
    match state.trim().to_ascii_uppercase().as_str() {
        "OK" | "UP" => Ok(0),
        "WARNING" => Ok(1),
        "CRITICAL" | "DOWN" | "UNREACHABLE" => Ok(2),
        "UNKNOWN" => Ok(3),
        _ => {
            Err(Code::DataErr.msg(format!("state {} is not OK, WARNING, CRITICAL, UNKNOWN, UP, DOWN or UNREACHABLE", super::quoted(state))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_holding_a_credential_is_told_apart_from_one_without() {
        for v in [
            "mysql://app:s3cret@db-01:3306/shop",
            "https://user:pw@host/x?y=z",
            "postgres://u:p@h",
            "mysql://app:pa/ss@db/x",
            "postgres://u:p?x@h/db",
            "redis://s3cret@h:6379",
            "app:s3cret@tcp(db:3306)/shop",
            "jdbc:oracle:thin:app/s3cret@db:1521/X",
            "host=db user=app password=s3cret",
            "Server=db;User Id=app;Password=s3cret;",
            "see http://x and mysql://u:p@h",
        ] {
            assert!(value_holds_credential(v), "{v}");
        }
        for v in ["https://grafana.example.com/d/x", "dba", "a@b:c", "db-01:3306", "team@example.com"] {
            assert!(!value_holds_credential(v), "{v}");
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Invocation {
        Invocation { env: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Invocation::default() }
    }

    #[test]
    fn service_problem_from_environment() {
        let inv = env(&[
            ("NAGIOS_NOTIFICATIONTYPE", "PROBLEM"),
            ("NAGIOS_HOSTNAME", "web-01"),
            ("NAGIOS_HOSTADDRESS", "10.0.0.1"),
            ("NAGIOS_SERVICEDESC", "HTTP"),
            ("NAGIOS_SERVICESTATE", "CRITICAL"),
            ("NAGIOS_SERVICESTATEID", "2"),
            ("NAGIOS_SERVICEOUTPUT", "HTTP CRITICAL - <title> & 'quotes'"),
            ("NAGIOS_LONGSERVICEOUTPUT", "line one\\nline two"),
            ("NAGIOS_NOTIFICATIONNUMBER", "3"),
            ("NAGIOS__SERVICEPAGERDUTY_SEVERITIES", "critical"),
            ("NAGIOS__SERVICESLACK_CHANNEL", "C0999"),
            ("NAGIOS__HOSTTEAM", "web"),
            ("PATH", "/usr/bin"),
        ]);
        let e = inv.parse(super::super::Source::Nagios).unwrap();
        assert_eq!((e.entity.as_str(), e.check.as_str(), e.status), ("web-01", "HTTP", 2));
        assert_eq!(e.output, "HTTP CRITICAL - <title> & 'quotes'\nline one\nline two");
        assert_eq!(e.action, Some(SourceAction::Create));
        assert_eq!(e.occurrences, 3);
        assert_eq!(e.address.as_deref(), Some("10.0.0.1"));
        assert_eq!(e.overrides_for("pagerduty")["severities"], "critical");
        assert_eq!(e.overrides_for("slack")["channel"], "C0999");
        assert_eq!(e.labels["team"], "web");
        let mut inv = inv.clone();
        for name in ["SNMP_COMMUNITY", "DB_PASSWORD", "WINRM_PW", "SNMPV3_AUTHKEY", "API_TOKEN", "SNMPV3_PRIV", "CREDS", "ILO_CREDENTIALS"]
        {
            inv.env.insert(format!("NAGIOS__HOST{name}"), "s3cret".into());
        }
        let e = inv.parse(super::super::Source::Nagios).unwrap();
        assert_eq!(e.labels.keys().collect::<Vec<_>>(), ["team"], "credentials are no labels");
        assert!(!e.labels.contains_key("slack_channel"), "a handler's setting is not a label: {:?}", e.labels);
    }

    #[test]
    fn fields_win_and_host_notifications_use_check_host() {
        let mut inv = env(&[("NAGIOS_NOTIFICATIONTYPE", "PROBLEM"), ("NAGIOS_HOSTNAME", "from-env")]);
        inv.fields = vec![
            ("HOSTNAME".into(), "db-01".into()),
            ("NOTIFICATIONTYPE".into(), "RECOVERY".into()),
            ("HOSTSTATE".into(), "UP".into()),
            ("HOSTOUTPUT".into(), "PING OK - Packet loss = 0%".into()),
        ];
        let e = inv.parse(super::super::Source::Nagios).unwrap();
        assert_eq!((e.entity.as_str(), e.check.as_str(), e.status), ("db-01", "host", 0));
        assert_eq!(e.action, Some(SourceAction::Resolve));
    }

    #[test]
    fn notification_types_map() {
        let mk = |t: &str| {
            let mut inv = env(&[]);
            inv.fields = vec![
                ("NOTIFICATIONTYPE".into(), t.into()),
                ("HOSTNAME".into(), "h".into()),
                ("HOSTSTATE".into(), "DOWN".into()),
                ("HOSTACKAUTHOR".into(), "alice".into()),
                ("HOSTACKCOMMENT".into(), "on it".into()),
            ];
            inv.parse(super::super::Source::Nagios).unwrap()
        };
        assert_eq!(mk("ACKNOWLEDGEMENT").action, Some(SourceAction::Acknowledge));
        assert_eq!(mk("ACKNOWLEDGEMENT").output, "acknowledged by alice: on it");
        assert_eq!(mk("FLAPPINGSTART").action, Some(SourceAction::Flapping));
        assert_eq!(mk("FLAPPINGSTOP").action, Some(SourceAction::Create), "host still DOWN");
        assert_eq!(mk("FLAPPINGDISABLED").action, Some(SourceAction::Create), "host still DOWN");
        assert!(mk("DOWNTIMESTART").skip.is_some());
        assert!(mk("DOWNTIMEEND").skip.is_some(), "host still DOWN: Nagios sends the PROBLEM itself");
        for kind in ["DOWNTIMEEND", "DOWNTIMECANCELLED", "DowntimeRemoved"] {
            let mut inv = env(&[]);
            inv.fields = vec![("NOTIFICATIONTYPE".into(), kind.into()), ("HOSTNAME".into(), "h".into()), ("HOSTSTATE".into(), "UP".into())];
            assert_eq!(
                inv.parse(super::super::Source::Nagios).unwrap().action,
                Some(SourceAction::ResolveIfOpen),
                "{kind}: recovered during it"
            );
        }
        assert!(mk("CUSTOM").skip.is_some());
        assert_eq!(mk("PROBLEM").status, 2);
    }

    #[test]
    fn a_value_nagios_cut_at_its_trailing_backslash_is_repaired() {
        // As Nagios 4.4 hands the shipped argument form over when the output ends in `\`
        // (checked with a real Nagios: argv as logged by a wrapper).
        let mut inv = env(&[]);
        inv.fields = vec![
            ("NOTIFICATIONTYPE".into(), "PROBLEM".into()),
            ("HOSTNAME".into(), "win-01".into()),
            ("SERVICEDESC".into(), "disk".into()),
            ("SERVICESTATE".into(), "CRITICAL".into()),
            ("SERVICEOUTPUT".into(), "DISK CRITICAL - free space on D:--field".into()),
            ("NOTIFICATIONNUMBER".into(), "1".into()),
        ];
        inv.args = vec!["LONGSERVICEOUTPUT=D:\\ 2% free".into()];
        let e = inv.parse(super::super::Source::Nagios).unwrap();
        assert_eq!(e.output, "DISK CRITICAL - free space on D:\\\nD:\\ 2% free");
        // Without a positional field nothing is changed.
        inv.args.clear();
        assert!(inv.parse(super::super::Source::Nagios).unwrap().output.ends_with("D:--field"));
    }

    #[test]
    fn positional_fields_a_check_output_split_into_cannot_redirect_or_resolve() {
        // A command with the output unquoted, or a Nagios letting `"` through: the monitored
        // host's words become arguments, one value ending in `--field` to look glued.
        let mut inv = env(&[]);
        inv.fields = vec![
            ("NOTIFICATIONTYPE".into(), "PROBLEM".into()),
            ("HOSTNAME".into(), "web-01".into()),
            ("SERVICEDESC".into(), "disk".into()),
            ("SERVICESTATE".into(), "CRITICAL".into()),
            ("SERVICEOUTPUT".into(), "x--field".into()),
        ];
        for forged in [
            "NOTIFICATIONTYPE=RECOVERY",
            "SERVICESTATEID=0",
            "_SERVICEPAGERDUTY_ROUTING_KEY=EvilKeyEvilKeyEvilKeyEvilKey0001",
            "TIMET=4102444800",
            "SERVICEEVENTID=999999",
        ] {
            inv.args = vec![forged.into()];
            let e = inv.parse(super::super::Source::Nagios).unwrap();
            assert_eq!((e.action, e.status), (Some(SourceAction::Create), 2), "{forged}");
            assert!(e.overrides.is_empty() && e.timestamp.is_none() && e.sequence.is_none(), "{forged}: {e:?}");
        }
        // More positional fields than glued values: none is the command's, not even one for a
        // macro no `--field` gave (which a recovered field could fill).
        inv.fields[4].1 = "x".into();
        inv.args = vec!["SERVICESTATE=OK".into(), "NOTIFICATIONNUMBER=7".into()];
        let e = inv.parse(super::super::Source::Nagios).unwrap();
        assert_eq!((e.status, e.occurrences), (2, 1));
        // As many as glued values: the lost field is read again (the backslash case).
        inv.fields[4].1 = "x--field".into();
        inv.args = vec!["NOTIFICATIONNUMBER=7".into()];
        let e = inv.parse(super::super::Source::Nagios).unwrap();
        assert_eq!((e.status, e.occurrences, e.output.as_str()), (2, 7, "x\\"));
    }

    #[test]
    fn icinga_names() {
        let mut inv = env(&[("NOTIFICATIONTYPE", "Problem"), ("SERVICENAME", "disk"), ("HOME", "/root")]);
        inv.fields = vec![
            ("host.name".into(), "app-01".into()),
            ("service.state".into(), "WARNING".into()),
            ("service.output".into(), "DISK WARNING".into()),
        ];
        let e = inv.parse(super::super::Source::Icinga).unwrap();
        assert_eq!((e.entity.as_str(), e.check.as_str(), e.status, e.format), ("app-01", "disk", 1, Format::Icinga));
        assert_eq!(e.action, Some(SourceAction::Create));
    }

    #[test]
    fn missing_or_bad_macros_are_named() {
        let err = env(&[("NAGIOS_HOSTNAME", "h")]).parse(super::super::Source::Nagios).unwrap_err();
        assert_eq!(err.code, Code::DataErr);
        assert!(err.to_string().contains("NOTIFICATIONTYPE"), "{err}");
        let err = env(&[
            ("NAGIOS_NOTIFICATIONTYPE", "PROBLEM"),
            ("NAGIOS_HOSTNAME", "h"),
            ("NAGIOS_SERVICEDESC", "s"),
            ("NAGIOS_SERVICESTATE", "BROKEN"),
        ])
        .parse(super::super::Source::Nagios)
        .unwrap_err();
        assert!(err.to_string().contains("BROKEN"), "{err}");
        // Icinga 2's own names, as its NotificationCommand sets them.
        let err = env(&[("NOTIFICATIONTYPE", "PROBLEM"), ("HOSTSTATE", "DOWN")]).parse(super::super::Source::Icinga).unwrap_err();
        assert!(err.to_string().contains("set HOSTNAME = \"$host.name$\" in the NotificationCommand's env"), "{err}");
    }
}
