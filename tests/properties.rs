//! Property tests (proptest) for the code that meets untrusted input: events built from
//! arbitrary strings parse back to the same fields; template truncation and escaping;
//! state-store file names; secret masking; and the parsers of every format never panic and
//! fail only with exit 65 and one line.

use std::collections::BTreeMap;

use common::event::{Format, Invocation, Source, SourceAction, parse_json, zabbix};
use common::exit::Code;
use common::state::file::file_name_for;
use common::template::{Template, truncate_chars};
use proptest::prelude::*;
use serde_json::{Value, json};

/// A non-empty string of any characters (NUL, control, astral, RTL … included).
fn name() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("non-empty", |s| !s.is_empty())
}

/// Text without characters the formats strip or split on, for line-based formats.
fn line() -> impl Strategy<Value = String> {
    "[^\r\n:]{1,40}".prop_map(|s| s.trim().to_string()).prop_filter("non-empty after trim", |s| !s.is_empty())
}

fn action() -> impl Strategy<Value = Option<(&'static str, SourceAction)>> {
    prop_oneof![
        Just(None),
        Just(Some(("create", SourceAction::Create))),
        Just(Some(("resolve", SourceAction::Resolve))),
        Just(Some(("flapping", SourceAction::Flapping))),
    ]
}

/// The one-line, exit-65 contract for a parse failure.
fn assert_clean_failure(f: &common::exit::Failure) {
    assert_eq!(f.code, Code::DataErr, "{f}");
    let line = f.to_string();
    assert!(!line.contains('\n'), "{line:?}");
    assert!(line.chars().count() <= 600, "{} characters: {line}", line.chars().count());
}

proptest! {
    #[test]
    fn sensu1_event_fields_round_trip(
        entity in name(), check in name(), status in any::<u32>(), output in any::<String>(),
        occurrences in any::<u64>(), history in prop::collection::vec(any::<u32>(), 0..30),
        silenced in any::<bool>(), action in action(), interval in any::<Option<u64>>(),
        executed in any::<Option<i64>>(), command in any::<Option<String>>(),
    ) {
        let mut ev = json!({
            "client": {"name": entity},
            "check": {"name": check, "status": status, "output": output,
                      "history": history.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
                      "interval": interval, "executed": executed, "command": command},
            "occurrences": occurrences, "silenced": silenced,
        });
        if let Some((word, _)) = action {
            ev["action"] = word.into();
        }
        let e = parse_json(ev.to_string().as_bytes(), None).expect("a valid Sensu 1.x event parses");
        prop_assert_eq!(e.format, Format::Sensu);
        prop_assert_eq!(&e.entity, &entity);
        prop_assert_eq!(&e.check, &check);
        prop_assert_eq!(e.status, status);
        prop_assert_eq!(&e.output, &output);
        prop_assert_eq!(e.occurrences, occurrences);
        prop_assert_eq!(&e.history, &history);
        prop_assert_eq!(e.silenced, silenced);
        prop_assert_eq!(e.action, action.map(|(_, a)| a));
        prop_assert_eq!(e.interval, interval);
        prop_assert_eq!(e.timestamp, executed);
        prop_assert_eq!(&e.command, &command);
    }

    #[test]
    fn sensu_go_event_fields_round_trip(
        entity in name(), check in name(), namespace in any::<Option<String>>(), status in any::<u32>(),
        output in any::<String>(), occurrences in any::<u64>(),
        history in prop::collection::vec(any::<u32>(), 0..30), silenced in any::<bool>(),
        entity_labels in prop::collection::btree_map(any::<String>(), any::<String>(), 0..5),
        check_labels in prop::collection::btree_map(any::<String>(), any::<String>(), 0..5),
        setting in "[a-z_]{1,20}", value in any::<String>(),
    ) {
        let ev = json!({
            "entity": {"metadata": {"name": entity, "namespace": namespace, "labels": entity_labels}},
            "check": {"metadata": {"name": check, "labels": check_labels,
                                   "annotations": {format!("pagerpipe/pagerduty.{setting}"): value}},
                      "status": status, "output": output, "occurrences": occurrences, "is_silenced": silenced,
                      "history": history.iter().map(|s| json!({"status": s, "executed": 1})).collect::<Vec<_>>()},
        });
        let e = parse_json(ev.to_string().as_bytes(), None).expect("a valid Sensu Go event parses");
        prop_assert_eq!(e.format, Format::SensuGo);
        prop_assert_eq!(&e.entity, &entity);
        prop_assert_eq!(&e.check, &check);
        prop_assert_eq!(&e.namespace, &namespace);
        prop_assert_eq!(e.status, status);
        prop_assert_eq!(&e.output, &output);
        prop_assert_eq!(e.occurrences, occurrences);
        prop_assert_eq!(&e.history, &history);
        prop_assert_eq!(e.silenced, silenced);
        let mut labels: BTreeMap<String, String> = entity_labels.clone();
        labels.extend(check_labels.clone());
        prop_assert_eq!(&e.labels, &labels, "check labels win over entity labels");
        let pd = e.overrides_for("pagerduty");
        prop_assert_eq!(pd.get(&setting), Some(&Value::String(value.clone())));
    }

    #[test]
    fn mackerel_webhook_fields_round_trip(
        host in name(), monitor in name(), message in name(),
        status in prop::sample::select(vec![("ok", 0u32), ("warning", 1), ("critical", 2), ("unknown", 3), ("CRITICAL", 2)]),
        url in any::<String>(), created_ms in 0i64..4_000_000_000_000,
    ) {
        let ev = json!({"orgName": "Example", "event": "alert", "host": {"name": host},
                        "alert": {"status": status.0, "monitorName": monitor, "message": message, "url": url, "createdAt": created_ms}});
        let e = parse_json(ev.to_string().as_bytes(), None).expect("a valid Mackerel webhook parses");
        prop_assert_eq!(e.format, Format::MackerelWebhook);
        prop_assert_eq!(&e.entity, &host);
        prop_assert_eq!(&e.check, &monitor);
        prop_assert_eq!(&e.output, &message);
        prop_assert_eq!(e.status, status.1);
        prop_assert_eq!(e.action, Some(if status.1 == 0 { SourceAction::Resolve } else { SourceAction::Create }));
        prop_assert_eq!(e.url.as_deref(), Some(url.as_str()));
        prop_assert_eq!(e.timestamp, Some(if created_ms > 10_000_000_000 { created_ms / 1000 } else { created_ms }));
    }

    #[test]
    fn zabbix_message_lines_round_trip(
        name in line(), host in line(), id in "[0-9]{1,9}", item_value in line(),
        severity in prop::sample::select(vec!["Not classified", "Information", "Warning", "Average", "High", "Disaster"]),
    ) {
        let message = format!("name:{name}\nid:{id}\nhostname:{host}\nseverity:{severity}\nitem_value:{item_value}\n");
        let fields = zabbix::parse_message(&message);
        prop_assert_eq!(fields.get("name"), Some(&name));
        prop_assert_eq!(fields.get("hostname"), Some(&host));
        prop_assert_eq!(fields.get("item_value"), Some(&item_value));
        let inv = Invocation { args: vec!["to".into(), "trigger".into(), message.clone()], ..Invocation::default() };
        let e = inv.parse(Source::Zabbix).expect("a complete Zabbix message parses");
        prop_assert_eq!(&e.entity, &host);
        prop_assert_eq!(&e.check, &name);
        let want_key = format!("{id}-{host}");
        prop_assert_eq!(e.incident_key.as_deref(), Some(want_key.as_str()));
        prop_assert_eq!(e.action, Some(SourceAction::Create));
    }

    #[test]
    fn truncation_respects_the_limit_and_never_splits_a_character(s in any::<String>(), max in 0usize..300) {
        let cut = truncate_chars(&s, max);
        prop_assert!(cut.chars().count() <= max);
        if s.chars().count() <= max {
            prop_assert_eq!(&cut, &s);
        } else if max > 0 {
            prop_assert!(cut.ends_with('…'));
            let kept = &cut[..cut.len() - '…'.len_utf8()];
            prop_assert!(s.starts_with(kept), "the kept part is a prefix of the input, cut on a char boundary");
            prop_assert_eq!(kept.chars().count(), max - 1);
        }
    }

    #[test]
    fn templates_escape_any_text_and_substitute_any_value(text in any::<String>(), entity in name()) {
        let escaped = text.replace('{', "{{").replace('}', "}}");
        let t = Template::parse("t", &format!("{escaped}{{entity}}{escaped}")).expect("escaped text parses");
        let event = common::event::Event { entity: entity.clone(), ..Default::default() };
        prop_assert_eq!(t.render(&event), format!("{text}{entity}{text}"));
    }

    #[test]
    fn state_file_names_are_safe_bounded_and_reversible(key in any::<String>()) {
        let name = file_name_for(&key);
        prop_assert!(!name.is_empty() && name.len() <= 180, "{} bytes", name.len());
        prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.%~".contains(&b)), "{name}");
        prop_assert!(!name.starts_with('.'));
        if !name.contains('~') && !key.is_empty() {
            // Not shortened: percent-decoding gives the key back, so two keys never share a file.
            let mut bytes = Vec::new();
            let raw = name.as_bytes();
            let mut i = 0;
            while i < raw.len() {
                if raw[i] == b'%' {
                    bytes.push(u8::from_str_radix(&name[i + 1..i + 3], 16).expect("hex"));
                    i += 3;
                } else {
                    bytes.push(raw[i]);
                    i += 1;
                }
            }
            prop_assert_eq!(bytes, key.as_bytes().to_vec());
        }
    }

    #[test]
    fn long_keys_get_distinct_shortened_names(prefix in "[a-z]{200}", a in any::<String>(), b in any::<String>()) {
        prop_assume!(a != b);
        let (ka, kb) = (format!("{prefix}{a}"), format!("{prefix}{b}"));
        prop_assert_ne!(file_name_for(&ka), file_name_for(&kb));
    }

    #[test]
    fn masked_text_never_contains_the_secret(secret in "[A-Za-z0-9]{4,40}", before in any::<String>(), after in any::<String>()) {
        let text = format!("{before}{secret}{after}{secret}");
        let masked = common::secret::mask_all(&text, &[&secret]);
        prop_assert!(!masked.contains(&secret), "{masked}");
        let json = common::secret::mask_json(&json!({"k": text, secret.clone(): [text]}), &[&secret]);
        prop_assert!(!json.to_string().contains(&secret));
    }

    #[test]
    fn stdin_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), forced in 0usize..4) {
        let format = [None, Some(Format::Sensu), Some(Format::SensuGo), Some(Format::MackerelWebhook)][forced];
        if let Err(f) = parse_json(&bytes, format) {
            assert_clean_failure(&f);
        }
    }

    #[test]
    fn nagios_and_icinga_never_panic(
        env in prop::collection::vec(("(NAGIOS_)?(NOTIFICATIONTYPE|HOSTNAME|SERVICEDESC|SERVICESTATE|SERVICESTATEID|HOSTSTATE|_HOST[A-Z_]{0,12}|_SERVICE[A-Z_]{0,12}|[A-Z.]{1,12})", any::<String>()), 0..12),
        fields in prop::collection::vec((any::<String>(), any::<String>()), 0..6),
        icinga in any::<bool>(),
    ) {
        let inv = Invocation { env: env.into_iter().collect(), fields, ..Invocation::default() };
        if let Err(f) = inv.parse(if icinga { Source::Icinga } else { Source::Nagios }) {
            assert_clean_failure(&f);
        }
    }

    /// Messages made of the documented template's own lines, in any order and repeated, with
    /// values that hold line ends, key lines and multi-byte characters (as a trigger name that
    /// embeds an item value makes them): parsed without a panic, or refused cleanly.
    #[test]
    fn zabbix_messages_of_template_lines_never_panic(
        lines in prop::collection::vec(
            (prop::sample::select(vec!["name:", "item_value:", "incident_key:", "id:", "status:", "hostname:", "severity:",
                                       "nseverity:", "update_action:", "user:", "event_id:", "NOTE: Escalation canceled: ", ""]),
             "[a-zé障\\r\\n:_ ]{0,12}"),
            0..24),
        subject in prop::sample::select(vec!["trigger", "resolve", "update"]),
    ) {
        let message: String = lines.iter().map(|(k, v)| format!("{k}{v}\n")).collect();
        let _ = zabbix::parse_message(&message);
        let inv = Invocation { args: vec!["0123456789abcdef0123456789abcdef".into(), subject.into(), message], ..Invocation::default() };
        if let Err(f) = inv.parse(Source::Zabbix) {
            assert_clean_failure(&f);
        }
    }

    #[test]
    fn zabbix_never_panics(args in prop::collection::vec(any::<String>(), 0..5), message in any::<String>()) {
        let _ = zabbix::parse_message(&message);
        for args in [args.clone(), vec!["to".into(), "trigger".into(), message.clone()]] {
            let inv = Invocation { args, ..Invocation::default() };
            if let Err(f) = inv.parse(Source::Zabbix) {
                assert_clean_failure(&f);
            }
        }
    }
}
