//! Trust boundaries, attacked from outside: the real binaries, fed what a hostile monitored
//! host (or a careless operator) can give them.
//!
//! - durations too large for the clock, from a flag, a settings file or the event: exit 78
//!   with one line naming the setting, never a panic;
//! - a check or entity name carrying a newline, CR or ESC cannot forge a log line of its own.

use serde_json::{Value, json};

use crate::fake::pagerduty::FakePagerDuty;
use crate::util::{ROUTING_KEY, Run, Sandbox, pagerduty_sandbox, read_fixture, twilio_sandbox};

const PD: &str = env!("CARGO_BIN_EXE_handler-pagerduty");
const TWILIO: &str = env!("CARGO_BIN_EXE_handler-twilio");
const REACTIO: &str = env!("CARGO_BIN_EXE_handler-reactio");

/// Nothing listens here (discard port).
const NOWHERE: &str = "http://127.0.0.1:9";

/// One line on stderr, exit 78, naming `setting`; no panic, nothing on stdout.
fn assert_config_error(r: &Run, setting: &str, ctx: &str) {
    let ctx = format!("{ctx}: {r:?}");
    assert!(!r.stderr.contains("panicked"), "panic: {ctx}");
    assert_eq!(r.code, Some(78), "{ctx}");
    // Besides the event, printed so that the monitoring system's log keeps it.
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.contains("undelivered event, not spooled: ")).collect();
    assert_eq!(lines.len(), 1, "one line: {ctx}");
    assert!(lines[0].contains(&format!("settings `{setting}`")), "names {setting}: {ctx}");
    assert!(r.stdout.is_empty(), "{ctx}");
}

#[test]
fn durations_too_large_for_the_clock_exit_78_naming_the_setting() {
    let create = read_fixture("sensu/create.json");
    for huge in ["18446744073709551615s", "500000000000y", "99999999999999999999999", "25h"] {
        // As a flag.
        for (bin, section) in [(PD, "pagerduty"), (TWILIO, "twilio"), (REACTIO, "reactio")] {
            let sb = Sandbox::new(bin);
            let r = sb.run(&["--api-url", NOWHERE, "--dry-run", "--timeout", huge], &create);
            assert_config_error(&r, &format!("{section}.timeout"), &format!("{bin} --timeout {huge}"));
        }
        // In a settings file, for each bounded duration.
        for setting in ["timeout", "refresh", "spool_max_age"] {
            let sb = Sandbox::new(PD);
            sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY, setting: huge}}));
            let r = sb.run(&["--api-url", NOWHERE, "--dry-run"], &create);
            if huge == "25h" && setting != "timeout" {
                assert_eq!(r.code, Some(0), "25h is a fine {setting}: {r:?}");
                continue;
            }
            assert_config_error(&r, &format!("pagerduty.{setting}"), &format!("{setting}: {huge}"));
        }
    }
    // As a JSON number of seconds too.
    let sb = Sandbox::new(PD);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY, "timeout": 1e300}}));
    assert_config_error(&sb.run(&["--api-url", NOWHERE, "--dry-run"], &create), "pagerduty.timeout", "1e300");
    // Twilio's own durations and counts.
    for (setting, value) in
        [("poll_interval", json!("500000000000y")), ("ring_timeout", json!(18446744073709551615u64)), ("rounds", json!(0))]
    {
        let sb = Sandbox::new(TWILIO);
        sb.config("twilio.json", &json!({"twilio": {setting: value}}));
        let r = sb.run(&["--api-url", NOWHERE, "--dry-run"], &create);
        assert_config_error(&r, &format!("twilio.{setting}"), setting);
    }
}

#[test]
fn a_far_future_check_time_is_delivered_not_a_panic() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).expect("fixture");
    ev["check"]["executed"] = i64::MAX.into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    // Dated at receipt, not in the year 9999: a time after receipt is the receipt.
    let ts = fake.events()[0]["payload"]["timestamp"].as_str().unwrap_or_default().to_string();
    assert!(ts.as_str() > "2026" && ts.as_str() < "2100", "{ts}");
    fake.assert_no_violations();
}

#[test]
fn a_name_with_a_newline_cannot_forge_a_log_line() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).expect("fixture");
    let forged = "pagerduty: triggered forged/host (dedup_key forged/host) in 1 ms";
    ev["entity"]["metadata"]["name"] = format!("web-01\n{forged}\r\u{1b}[2K").into();
    ev["check"]["metadata"]["name"] = "check\u{2028}pagerduty: error: forged\u{85}x".into();
    let r = sb.run(&["--api-url", &fake.url, "--verbose"], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1, "delivered");
    for line in r.stderr.lines() {
        assert!(line.starts_with("pagerduty: "), "every line is the handler's own: {line:?}");
        assert!(!line.starts_with(forged), "forged line: {}", r.stderr);
        assert!(!line.starts_with("pagerduty: error: forged"), "forged line: {}", r.stderr);
        assert!(!line.chars().any(|c| c.is_control() || c == '\u{2028}'), "raw control character: {line:?}");
    }
    assert!(r.stderr.contains("web-01\\npagerduty: triggered forged/host"), "the name is shown, escaped: {}", r.stderr);
    fake.assert_no_violations();
}

/// A Sensu Go event whose *entity* carries `annotations` (`pagerpipe/<section>.<setting>`).
fn with_entity_annotations(section: &str, annotations: &Value) -> Vec<u8> {
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).expect("fixture");
    let map: serde_json::Map<String, Value> =
        annotations.as_object().expect("object").iter().map(|(k, v)| (format!("pagerpipe/{section}.{k}"), v.clone())).collect();
    ev["entity"]["metadata"]["annotations"] = Value::Object(map);
    ev.to_string().into_bytes()
}

/// Each of `settings` is named in exactly one "ignored" warning, which says it came from an
/// entity annotation; no value of `values` is echoed.
fn assert_refused_once(r: &Run, section: &str, settings: &[&str], values: &[&str]) {
    for s in settings {
        let needle = format!("event override `{section}.{s}` ignored: set by an entity annotation");
        assert_eq!(r.stderr.matches(&needle).count(), 1, "{needle}: {}", r.stderr);
    }
    for v in values {
        assert!(!r.stderr.contains(v), "{v} echoed: {}", r.stderr);
    }
}

#[test]
fn entity_annotations_cannot_redirect_rekey_or_delay_a_pagerduty_page() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let elsewhere = sb.dir.path().join("elsewhere");
    let evil_key = "EV1LEV1LEV1LEV1LEV1LEV1LEV1LEV1L";
    let hostile = json!({
        "routing_key": evil_key, "api_key": evil_key, "dedup_key_template": "db-01/check_mysql",
        "spool_max_age": "1s", "timeout": "1ms", "refresh": "0s", "severities": "", "occurrences": "1000",
        "api_url": "http://127.0.0.1:9", "state_dir": elsewhere.join("state"), "spool_dir": elsewhere.join("spool"),
        "pager_team": "ops", "routing_key_file": "/etc/shadow", "notification_types": "{}",
        // Presentation, allowed: but broken, so the operator's value is used.
        "summary_template": "{entitty}",
    });
    let r = sb.run(&["--api-url", &fake.url], &with_entity_annotations("pagerduty", &hostile));
    assert_eq!(r.code, Some(0), "{r:?}");
    let events = fake.events();
    assert_eq!(events.len(), 1, "delivered");
    assert_eq!(events[0]["routing_key"], ROUTING_KEY, "to the configured service");
    assert_eq!(events[0]["dedup_key"], "webserver01/check-http", "under its own key");
    assert!(events[0]["payload"]["summary"].as_str().is_some_and(|s| s.starts_with("webserver01/check-http: ")), "{events:?}");
    assert!(!elsewhere.exists(), "nothing written where the entity said");
    let refused = [
        "routing_key",
        "api_key",
        "dedup_key_template",
        "spool_max_age",
        "timeout",
        "refresh",
        "severities",
        "occurrences",
        "api_url",
        "state_dir",
        "spool_dir",
        "pager_team",
        "routing_key_file",
        "notification_types",
    ];
    assert_refused_once(&r, "pagerduty", &refused, &[evil_key, "/etc/shadow"]);
    assert!(
        r.stderr.contains("event override `pagerduty.summary_template` ignored: the value from an entity annotation is invalid"),
        "{}",
        r.stderr
    );
    fake.assert_no_violations();

    // The operator may let entities choose among the operator's teams.
    let sb = Sandbox::new(PD);
    sb.config(
        "pagerduty.json",
        &json!({"pagerduty": {"routing_key": ROUTING_KEY, "entity_settings": ["pager_team"],
                "db": {"routing_key": "D8D8D8D8D8D8D8D8D8D8D8D8D8D8D8D8"}}}),
    );
    let r = sb.run(&["--api-url", &fake.url], &with_entity_annotations("pagerduty", &json!({"pager_team": "db"})));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events()[1]["routing_key"], "D8D8D8D8D8D8D8D8D8D8D8D8D8D8D8D8");
    assert!(!r.stderr.contains("ignored"), "{}", r.stderr);
}

/// `check_settings` narrows every event override of a check-level setting: an entity
/// annotation that `entity_settings` lifts to check level, and Sensu 1.x's own filter
/// attributes on the check (`check.occurrences`, `check.refresh`), which reach the filters as
/// event fields (red-team findings on check_settings).
#[test]
fn check_settings_also_narrows_lifted_entity_annotations_and_sensu_filter_attributes() {
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(PD);
    sb.config(
        "pagerduty.json",
        &json!({"pagerduty": {"routing_key": ROUTING_KEY, "entity_settings": ["pager_team"], "check_settings": ["severities"],
                "db": {"routing_key": "D8D8D8D8D8D8D8D8D8D8D8D8D8D8D8D8"}}}),
    );
    let r = sb.run(&["--api-url", &fake.url], &with_entity_annotations("pagerduty", &json!({"pager_team": "db"})));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events()[0]["routing_key"], ROUTING_KEY, "the operator's route: {}", r.stderr);
    assert!(
        r.stderr.contains(
            "event override `pagerduty.pager_team` ignored: set by an entity annotation; `pagerduty.check_settings` does not name it"
        ),
        "{}",
        r.stderr
    );
    // A Sensu 1.x check asking for 1000 occurrences and a year's refresh before it pages.
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).expect("fixture");
    ev["check"]["occurrences"] = 1000.into();
    ev["check"]["refresh"] = 31_536_000.into();
    ev["client"]["name"] = "web-02".into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 2, "paged with the operator's occurrences: {}", r.stderr);
    for setting in ["occurrences", "refresh"] {
        let line = format!("event override `pagerduty.{setting}` ignored: set by a check attribute (`check.{setting}`)");
        assert!(r.stderr.contains(&line), "{line} missing: {}", r.stderr);
    }
    fake.assert_no_violations();
}

/// One rule for `check_settings` entries wherever they are read (the event overrides' trust,
/// and Sensu 1.x's own `check.occurrences` / `check.refresh`): each entry trimmed. A stray
/// space once refused `check.occurrences` while the same entry let a check's `pager_team` through.
#[test]
fn a_stray_space_in_a_check_settings_entry_refuses_nothing() {
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(PD);
    let db_key = "D8D8D8D8D8D8D8D8D8D8D8D8D8D8D8D8";
    sb.config(
        "pagerduty.json",
        &json!({"pagerduty": {"routing_key": ROUTING_KEY, "check_settings": [" occurrences ", "pager_team "], "db": {"routing_key": db_key}}}),
    );
    // A Sensu 1.x check asking for 1000 occurrences: its first occurrence is held back.
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).expect("fixture");
    ev["check"]["occurrences"] = 1000.into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(fake.events().is_empty(), "the check's occurrences apply: {}", r.stderr);
    assert!(!r.stderr.contains("does not name it"), "{}", r.stderr);
    // The same list lets the check choose the team.
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).expect("fixture");
    ev["check"]["pagerduty"] = json!({"pager_team": "db"});
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1, "{}", r.stderr);
    assert_eq!(fake.events()[0]["routing_key"], db_key, "{}", r.stderr);
    assert!(!r.stderr.contains("does not name it"), "{}", r.stderr);
    fake.assert_no_violations();
}

#[test]
fn entity_annotations_cannot_choose_twilio_numbers_account_or_test_mode() {
    use crate::fake::twilio::FakeTwilio;
    let fake = FakeTwilio::start(&[]);
    let sb = twilio_sandbox(json!({"recipients": ["+14155550101"]}));
    let hostile = json!({
        "account_sid": "AC99999999999999999999999999999999", "auth_token": "stolen-token-stolen-token",
        "recipients": "+19005550100", "from": "+19005550101", "test": "true", "call_caps": "{}",
        "channels": "sms", "mode": "sequential", "message": "{entity} says hello",
        // A minute of silence before the message: whoever answers hangs up before it.
        "pause": "60",
    });
    let r = sb.run(&["--api-url", &fake.url], &with_entity_annotations("twilio", &hostile));
    assert_eq!(r.code, Some(0), "{r:?}");
    let calls = fake.to("Calls.json");
    assert_eq!(calls.len(), 1, "one call, as configured: {:?}", fake.accepted());
    assert_eq!(calls[0].param("To"), Some("+14155550101"));
    assert_eq!(calls[0].param("From"), Some("+14155550199"));
    assert!(fake.to("Messages.json").is_empty(), "no SMS: channels stay the operator's");
    let said = &calls[0].twiml.as_ref().expect("twiml").say[0];
    assert!(said.starts_with("webserver01 says hello"), "an entity may word its own message: {said}");
    assert_eq!(calls[0].twiml.as_ref().expect("twiml").pause, None, "no silence the operator did not set");
    assert_refused_once(
        &r,
        "twilio",
        &["account_sid", "auth_token", "recipients", "from", "test", "call_caps", "channels", "mode", "pause"],
        &["stolen-token", "+19005550100"],
    );
    fake.assert_no_violations();
}

/// An entity may set `loop` (wording: how often its message is said), and its host writes the
/// output: 10 loops of a ~4000-character message kept whoever answered listening for over half
/// an hour before the conference bridge. Every loop now counts against Twilio's 4000.
#[test]
fn an_entity_loop_around_a_long_output_cannot_keep_a_responder_from_the_bridge() {
    use crate::fake::twilio::FakeTwilio;
    let fake = FakeTwilio::start(&[]);
    let sb = twilio_sandbox(json!({"recipients": ["+14155550101"], "conference": true}));
    let mut ev: Value = serde_json::from_slice(&with_entity_annotations("twilio", &json!({"loop": "10"}))).expect("event");
    ev["check"]["output"] = "All services are degraded, retrying connection pool. ".repeat(80).into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let calls = fake.to("Calls.json");
    let twiml = calls[0].twiml.as_ref().expect("twiml");
    assert!(twiml.say_attrs.contains(&("loop".to_string(), "10".to_string())), "the entity's wording is kept: {twiml:?}");
    let said = common::template::utf16_len(&twiml.say[0]);
    assert!(said * 10 < 4000, "said 10 times: {said} characters each");
    assert!(said > 250 && twiml.say[0].ends_with('…'), "the output cut to fit, not dropped: {said}");
    fake.assert_no_violations();
}

#[test]
fn an_entity_annotation_cannot_blank_out_the_reactio_broadcast() {
    // `notification_text` is wording, which an entity may set; but "" opens the incident
    // without a broadcast: the monitored host stopped its own page reaching anyone's devices.
    use crate::fake::reactio::{API_KEY, FakeReactio};
    let fake = FakeReactio::start(&[]);
    let sb = Sandbox::new(REACTIO);
    sb.config("reactio.json", &json!({"reactio": {"api_key": API_KEY, "organization": "example"}}));
    let r = sb.run(&["--api-url", &fake.url], &with_entity_annotations("reactio", &json!({"notification_text": " "})));
    assert_eq!(r.code, Some(0), "{r:?}");
    let posted = fake.accepted("/api/v1/incidents");
    assert_eq!(posted[0]["notification_text"], "対応をお願いします", "{posted:?}");
    let needle = "event override `reactio.notification_text` ignored: set blank by an entity annotation";
    assert_eq!(r.stderr.matches(needle).count(), 1, "{}", r.stderr);
    fake.assert_no_violations();
}

#[test]
fn a_zero_width_value_or_a_checks_blank_value_cannot_blank_out_the_reactio_broadcast_either() {
    // `str::trim` keeps U+200B: a zero-width "text" passed the blank rule. And where check
    // results may come from the monitored host (the operator set `check_settings`), a check
    // annotation of "" silenced the broadcast with no warning at all.
    use crate::fake::reactio::{API_KEY, FakeReactio};
    let fake = FakeReactio::start(&[]);
    let sb = Sandbox::new(REACTIO);
    sb.config("reactio.json", &json!({"reactio": {"api_key": API_KEY, "organization": "example", "check_settings": ["severities"]}}));
    let zero_width = with_entity_annotations("reactio", &json!({"notification_text": "\u{200B}\u{2060}"}));
    let mut by_check: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).unwrap();
    by_check["check"]["metadata"]["name"] = "check_load".into();
    by_check["check"]["metadata"]["annotations"] = json!({"pagerpipe/reactio.notification_text": ""});
    for (event, by) in [(zero_width, "an entity annotation"), (by_check.to_string().into_bytes(), "a check annotation")] {
        let r = sb.run(&["--api-url", &fake.url], &event);
        assert_eq!(r.code, Some(0), "{r:?}");
        let needle = format!("event override `reactio.notification_text` ignored: set blank by {by}");
        assert_eq!(r.stderr.matches(&needle).count(), 1, "{}", r.stderr);
    }
    let posted = fake.accepted("/api/v1/incidents");
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert!(posted.iter().all(|p| p["notification_text"] == "対応をお願いします"), "{posted:?}");
    fake.assert_no_violations();
}

#[test]
fn entity_annotations_cannot_choose_the_reactio_organization_or_key() {
    use crate::fake::reactio::{API_KEY, FakeReactio};
    let fake = FakeReactio::start(&[]);
    let sb = Sandbox::new(REACTIO);
    sb.config("reactio.json", &json!({"reactio": {"api_key": API_KEY, "organization": "example"}}));
    let hostile = json!({"api_key": "stolen-reactio-key-0000", "organization": "evil", "notification_call": "true",
                         "name_template": "{entity} is on fire"});
    let r = sb.run(&["--api-url", &fake.url], &with_entity_annotations("reactio", &hostile));
    assert_eq!(r.code, Some(0), "{r:?}");
    let incidents = fake.incidents();
    assert_eq!(incidents.len(), 1, "{:?}", fake.calls());
    // The name is the incident's identity (a recovery without a stored id finds it by name):
    // not the entity's choice either (tests/redteam.rs shows why).
    assert!(incidents[0]["name"].as_str().is_some_and(|n| n.starts_with("webserver01/check-http ")), "{incidents:?}");
    let posted = fake.accepted("/api/v1/incidents");
    assert_eq!(posted[0]["notification_call"], false, "whether to phone people is not the entity's choice: {posted:?}");
    assert_refused_once(&r, "reactio", &["api_key", "organization", "notification_call", "name_template"], &["stolen-reactio-key"]);
    fake.assert_no_violations();
}

#[test]
fn check_annotations_may_route_but_an_invalid_one_never_costs_the_page() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).expect("fixture");
    ev["check"]["metadata"]["annotations"] = json!({
        "pagerpipe/pagerduty.dedup_key_template": "{check}@{entity}",
        "pagerpipe/pagerduty.refresh": "500000000000y",
        "pagerpipe/pagerduty.summary_template": "{nope}",
        "pagerpipe/pagerduty.api_url": "http://127.0.0.1:9",
    });
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events()[0]["dedup_key"], "check-http@webserver01", "a check may set the key");
    for s in ["refresh", "summary_template"] {
        let needle = format!("event override `pagerduty.{s}` ignored: the value from a check annotation is invalid");
        assert!(r.stderr.contains(&needle), "{needle}: {}", r.stderr);
    }
    assert!(r.stderr.contains("event override `pagerduty.api_url` ignored: set by a check annotation"), "{}", r.stderr);
    fake.assert_no_violations();
}

/// The Ruby handler's `check.pager_team` (a Sensu 1.x check attribute: free-form, unchecked by
/// Sensu, written by a result on the client socket too) that was no string (`42`, `["ops"]`)
/// refused the whole event (exit 65): every page of the check lost. It is a check's override
/// like `check.pagerduty.pager_team`: an invalid one is logged and the operator's route used.
#[test]
fn a_pager_team_attribute_that_is_no_string_never_costs_the_page() {
    // The client's (the Ruby handler read it too; the monitored host writes it) as well.
    for (place, team) in
        ["check", "client"].into_iter().flat_map(|p| [json!(42), json!(["ops"]), json!({"routing_key": "x"}), json!(null)].map(|t| (p, t)))
    {
        let fake = FakePagerDuty::start(&[]);
        let sb = pagerduty_sandbox();
        let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).expect("fixture");
        ev[place]["pager_team"] = team.clone();
        let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
        assert_eq!(r.code, Some(0), "{place} {team}: {r:?}");
        let sent = fake.events();
        assert_eq!(sent.len(), 1, "{place} {team}: {}", r.stderr);
        assert_eq!(sent[0]["routing_key"], ROUTING_KEY, "{place} {team}: the operator's route");
        if !team.is_null() && place == "check" {
            let needle = "event override `pagerduty.pager_team` ignored: the value from a check attribute is invalid";
            assert!(r.stderr.contains(needle), "{team}: {}", r.stderr);
        }
        fake.assert_no_violations();
    }
}

#[cfg(unix)]
#[test]
fn secrets_from_files_and_help_warns_about_ps() {
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(PD);
    let key = sb.dir.path().join("routing_key");
    std::fs::write(&key, format!("{ROUTING_KEY}\n")).expect("write key");
    let create = read_fixture("sensu/create.json");
    // As a flag, as its environment variable, and as a setting.
    let r = sb.run(&["--api-url", &fake.url, "--routing-key-file", key.to_str().expect("utf-8")], &create);
    assert_eq!(r.code, Some(0), "{r:?}");
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key_file": key, "refresh": 0}}));
    let r = sb.run(&["--api-url", &fake.url], &create);
    assert_eq!(r.code, Some(0), "{r:?}");
    let events = fake.events();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["routing_key"] == ROUTING_KEY), "{events:?}");
    // A key file others can read is warned about, by name, without the key.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
    let r = sb.run(&["--api-url", &fake.url, "--dry-run"], &create);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("settings `pagerduty.routing_key_file`) is readable by all users"), "{}", r.stderr);
    assert!(!r.stderr.contains(ROUTING_KEY), "{}", r.stderr);
    // A missing file names the setting and the file, exit 78.
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key_file": sb.dir.path().join("nope")}}));
    let r = sb.run(&["--api-url", &fake.url], &create);
    assert_config_error(&r, "pagerduty.routing_key_file", "missing key file");

    for bin in [PD, TWILIO, REACTIO, env!("CARGO_BIN_EXE_handler-slack")] {
        let out = std::process::Command::new(bin).arg("--help").output().expect("help");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Visible to every user in `ps`"), "{bin}: {help}");
        assert!(help.contains("-file"), "{bin}: {help}");
    }
}

#[test]
fn a_redirect_is_kept_in_the_spool_with_its_location_named() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::fake::{Received, Reply, Server};
    let moved = Arc::new(AtomicBool::new(true));
    let seen = Arc::clone(&moved);
    let service = Server::start(move |_r: &Received| {
        if seen.load(Ordering::SeqCst) {
            Reply::Raw(301, "text/html", vec![("Location", "https://elsewhere.example/v2/enqueue".into())], "<html>moved</html>".into())
        } else {
            Reply::Json(202, json!({"status": "success", "message": "Event processed", "dedup_key": "web-01/check_disk"}))
        }
    });
    let sb = pagerduty_sandbox();
    let r = sb.run(&["--api-url", &service.url, "--timeout", "1s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("HTTP 301 redirect to https://elsewhere.example/v2/enqueue, not followed"), "{}", r.stderr);
    assert_eq!(sb.spooled("pagerduty").len(), 1, "kept for --flush");

    // Once the service answers again, --flush delivers it.
    moved.store(false, Ordering::SeqCst);
    let r = sb.run(&["--api-url", &service.url, "--flush"], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(sb.spooled("pagerduty").is_empty());
}

#[cfg(unix)]
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Every file and directory under `root`, without following symlinks.
#[cfg(unix)]
fn walk(root: &std::path::Path) -> Vec<(std::path::PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = std::fs::symlink_metadata(e.path()).expect("lstat");
            if meta.is_dir() {
                todo.push(e.path());
            }
            out.push((e.path(), meta));
        }
    }
    out
}

#[cfg(unix)]
#[test]
fn planted_fifos_symlinks_and_directories_never_hang_redirect_or_stop_a_page() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let outside = sb.dir.path().join("outside");
    std::fs::create_dir(&outside).expect("outside");
    std::fs::write(outside.join("decoy.json"), b"{}").expect("decoy");
    let state = sb.state_dir().join("pagerduty");
    let spool = sb.spool_dir().join("pagerduty");
    std::fs::create_dir_all(&state).expect("state");
    std::fs::create_dir_all(&spool).expect("spool");

    // The state record for the event's incident key, and the user's lock file.
    let record = common::state::file::file_name_for("web-01/check_disk");
    mkfifo(&state.join(format!("{record}.json")));
    symlink(outside.join("created-through-lock"), state.join(format!(".locks-{}", crate::util::euid()))).expect("symlink");
    // Spool entries that are not regular files, the flush lock, and failed/ pointing away.
    mkfifo(&spool.join("00000000000000000001-1-000-0000000000000001.json"));
    std::fs::create_dir(spool.join("00000000000000000002-1-000-0000000000000002.json")).expect("dir");
    symlink(outside.join("decoy.json"), spool.join("00000000000000000003-1-000-0000000000000003.json")).expect("symlink");
    mkfifo(&spool.join(".flush.lock"));
    symlink(&outside, spool.join("failed")).expect("symlink");

    let create = read_fixture("sensu/create.json");
    let r = sb.run(&["--api-url", &fake.url, "--timeout", "2s"], &create);
    assert_eq!(r.code, Some(0), "{r:?}");
    let events = fake.events();
    assert_eq!(events.len(), 1, "delivered: {r:?}");
    assert_eq!(events[0]["routing_key"], ROUTING_KEY);
    let mut outside_now: Vec<String> =
        std::fs::read_dir(&outside).expect("outside").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    outside_now.sort();
    assert_eq!(outside_now, ["decoy.json"], "nothing written outside: {r:?}");
    assert_eq!(std::fs::read(outside.join("decoy.json")).expect("decoy"), b"{}");
    assert!(r.stderr.contains("failed is a symlink"), "the failed/ symlink is refused, by name: {}", r.stderr);

    // With failed/ a real directory again, the planted entries are moved there (not read),
    // and a resolve goes out too.
    std::fs::remove_file(spool.join("failed")).expect("rm symlink");
    let mut resolve: Value = serde_json::from_slice(&create).expect("json");
    resolve["action"] = "resolve".into();
    resolve["check"]["status"] = 0.into();
    let r = sb.run(&["--api-url", &fake.url, "--timeout", "2s"], resolve.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 2, "{r:?}");
    assert!(sb.spooled("pagerduty").is_empty(), "{:?}", sb.spooled("pagerduty"));
    assert_eq!(std::fs::read_dir(spool.join("failed")).expect("failed/").count(), 3, "{r:?}");

    // Nothing pagerpipe wrote is readable by other users.
    for (path, meta) in walk(sb.dir.path()) {
        if path.starts_with(sb.conf_dir()) || path.starts_with(&outside) || meta.file_type().is_symlink() || meta.file_type().is_fifo_like()
        {
            continue;
        }
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() {
            assert_eq!(mode & 0o007, 0, "{} is mode {mode:o}", path.display());
        }
    }
    fake.assert_no_violations();
}

/// A sandbox whose record of `web-01/check_disk` is a symlink planted to a decoy file outside
/// the state directory: the sandbox, the handler's state directory, the decoy and the record's
/// path.
#[cfg(unix)]
fn record_planted_as_a_symlink() -> (Sandbox, std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let sb = pagerduty_sandbox();
    let state = sb.state_dir().join("pagerduty");
    std::fs::create_dir_all(&state).expect("state");
    let outside = sb.dir.path().join("elsewhere.json");
    std::fs::write(&outside, b"{}").expect("decoy");
    let record = state.join(format!("{}.json", common::state::file::file_name_for("web-01/check_disk")));
    std::os::unix::fs::symlink(&outside, &record).expect("symlink");
    (sb, state, outside, record)
}

/// README "Shared state and spool directories": a symlink planted under a record's name is
/// renamed aside, and the log says so. The delivery's record write renames it; the line saying
/// where it went was gathered by the store and never printed.
#[cfg(unix)]
#[test]
fn a_symlink_under_a_record_name_is_moved_aside_and_the_log_says_where() {
    let fake = FakePagerDuty::start(&[]);
    let (sb, state, outside, record) = record_planted_as_a_symlink();

    let r = sb.run(&["--api-url", &fake.url], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1, "{r:?}");
    let moved: Vec<_> = std::fs::read_dir(&state)
        .expect("state")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".refused-"))
        .map(|e| e.path())
        .collect();
    assert_eq!(moved.len(), 1, "the symlink is renamed aside: {r:?}");
    assert!(std::fs::symlink_metadata(&record).expect("record").is_file(), "the record is written in its place");
    let aside = moved[0].display().to_string();
    assert!(r.stderr.lines().any(|l| l.contains("moved to") && l.contains(&aside)), "the log names {aside}:\n{}", r.stderr);
    assert_eq!(std::fs::read(&outside).expect("decoy"), b"{}", "never written through");
    fake.assert_no_violations();
}

/// README "The incident ledger": `--list` moves a record it cannot read aside "and said in a
/// warning"; for a symlink the warning says what the spool's and the lock file's say (`is a
/// symlink, …`, never followed), not the open's `ELOOP` ("state file … Too many levels of
/// symbolic links (os error 40)"), which read as a broken link and named no refusal; so does
/// `--explain`'s `ledger:` line.
#[cfg(unix)]
#[test]
fn a_symlink_under_a_record_name_is_said_to_be_a_symlink_refused() {
    let (sb, _, _, record) = record_planted_as_a_symlink();
    // --explain first: it moves nothing; --list then moves the symlink aside.
    let explained = sb.run(&["--explain"], &read_fixture("sensu/create.json"));
    assert_eq!(explained.code, Some(0), "{explained:?}");
    let r = sb.run(&["--list"], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(std::fs::symlink_metadata(&record).is_err(), "--list moved it aside: {r:?}");
    // --explain says it on its `ledger:` line (stdout); --list in a warning.
    for (what, out) in [("--list", &r.stderr), ("--explain", &explained.stdout)] {
        let line = out.lines().find(|l| l.contains("state file")).unwrap_or_else(|| panic!("{what} says so:\n{out}"));
        assert!(line.contains("is a symlink, not a regular file; refused (never read or followed)"), "{what}: {line}");
        assert!(!line.contains("os error"), "{what}: {line}");
    }
}

#[cfg(unix)]
trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}

#[cfg(unix)]
impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

#[cfg(unix)]
#[test]
fn a_lock_held_on_purpose_delays_a_page_by_a_bounded_wait_only() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let state = sb.state_dir().join("pagerduty");
    std::fs::create_dir_all(&state).expect("state");
    // The record's lock, held by this user (another process of its: this test's).
    use common::state::locks::{Locks, Slot};
    let lock = Locks::in_dir(&state).take("web-01/check_disk", Slot::Record, std::time::Instant::now(), &mut |_| {}).expect("lock");
    assert!(lock.is_some(), "free");
    let r = sb.run(&["--api-url", &fake.url, "--timeout", "2s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1, "delivered without dedup: {r:?}");
    assert!(r.stderr.contains("locked by another process"), "{}", r.stderr);
    drop(lock);
}

#[test]
fn a_secret_pasted_into_the_wrong_setting_is_not_echoed() {
    let secret = "s3cr3t+T0k3n_PastedInTheWrongPl";
    let create = read_fixture("sensu/create.json");
    let cases: [(&str, &str, Value); 7] = [
        (PD, "pagerduty.api_url", json!({"pagerduty": {"routing_key": ROUTING_KEY, "api_url": secret}})),
        (PD, "pagerduty.severities", json!({"pagerduty": {"routing_key": ROUTING_KEY, "severities": secret}})),
        (PD, "pagerduty.summary_template", json!({"pagerduty": {"routing_key": ROUTING_KEY, "summary_template": format!("{{{secret}}}")}})),
        (PD, "pagerduty.severity_map.warning", json!({"pagerduty": {"routing_key": ROUTING_KEY, "severity_map": {"warning": secret}}})),
        (TWILIO, "twilio.from", json!({"twilio": {"from": secret}})),
        (TWILIO, "twilio.account_sid", json!({"twilio": {"account_sid": secret}})),
        (REACTIO, "reactio.organization", json!({"reactio": {"organization": secret}})),
    ];
    for (bin, setting, settings) in cases {
        let sb = Sandbox::new(bin);
        sb.config("settings.json", &settings);
        let r = sb.run(&["--api-url", NOWHERE, "--dry-run"], &create);
        let r = if setting.ends_with("api_url") { sb.run(&["--dry-run"], &create) } else { r };
        assert_config_error(&r, setting, setting);
        assert!(!r.stderr.contains(secret), "{setting}: {}", r.stderr);
    }
}

/// Every setting name the handlers and the trust table know, plus some they do not.
const NAMES: &[&str] = &[
    "routing_key",
    "api_key",
    "integration_key",
    "pager_team",
    "dedup_key_template",
    "summary_template",
    "timeout",
    "refresh",
    "severities",
    "occurrences",
    "api_url",
    "ca_file",
    "state_dir",
    "spool_dir",
    "spool_max_age",
    "entity_settings",
    "check_settings",
    "notification_types",
    "routing_key_file",
    "auth_token",
    "recipients",
    "from",
    "test",
    "call_caps",
    "organization",
    "token",
    "channel",
    "state_store",
    "made_up",
    "ops",
];

proptest::proptest! {
    /// Whatever an entity annotates, a setting it may not set keeps the operator's value, and
    /// one the operator did not set stays unset.
    #[test]
    fn entity_overrides_never_change_what_they_may_not_set(
        annotations in proptest::collection::vec((proptest::sample::select(NAMES), ".{0,40}"), 0..12),
        allowed in proptest::collection::vec(proptest::sample::select(NAMES), 0..3),
    ) {
        use common::trust::{self, Origin, Override, Trust};
        const OWN: &[(&str, Trust)] = &[
            ("routing_key", Trust::Check), ("api_key", Trust::Check), ("pager_team", Trust::Check),
            ("dedup_key_template", Trust::Check), ("summary_template", Trust::Entity),
        ];
        let operator = json!({"routing_key": ROUTING_KEY, "timeout": "10s", "api_url": "https://events.pagerduty.com",
                              "dedup_key_template": "{entity}/{check}", "entity_settings": allowed});
        let operator = operator.as_object().cloned().unwrap_or_default();
        let overrides: Vec<Override> = annotations
            .iter()
            .map(|(k, v)| Override { origin: Origin::Entity, place: "entity annotation", setting: (*k).to_string(), value: Value::from(v.as_str()) })
            .collect();
        let mut lines = Vec::new();
        let common: common::config::Common = common::config::typed("pagerduty", &operator).unwrap();
        let allowed_by = trust::Allowed::of(&common);
        let merged = trust::apply("pagerduty", operator.clone(), allowed_by, overrides, OWN, &|_| Ok(()), &mut |l| lines.push(l));
        for name in NAMES {
            let t = trust::of(OWN, name);
            let lifted = t == Trust::Check && allowed.contains(name);
            if t != Trust::Entity && !lifted {
                proptest::prop_assert_eq!(merged.get(*name), operator.get(*name), "{} changed: {:?}", name, lines);
            }
        }
    }
}

/// The outcome line names the dedup key the handler sent, not one the answer gives back: an
/// answer (a proxy's, a look-alike service's) never chooses what the log says was paged.
#[test]
fn the_outcome_line_names_the_dedup_key_sent_not_the_answers() {
    let answering = crate::fake::Server::start(|_r: &crate::fake::Received| {
        crate::fake::Reply::Json(202, json!({"status": "success", "message": "Event processed", "dedup_key": "other-host/other-check"}))
    });
    let sb = pagerduty_sandbox();
    let r = sb.run(&["--api-url", &answering.url], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("triggered web-01/check_disk (dedup_key web-01/check_disk)"), "{}", r.stderr);
    assert!(!r.stderr.contains("other-host"), "{}", r.stderr);
}
