//! Settings nothing reads: a misspelled setting in a settings file is named in one warning
//! (with the setting it probably means), never its value, and the page still goes out; a name
//! an event carries is never logged; every shipped example runs without such a warning.

use std::path::Path;

use serde_json::{Value, json};

use crate::fake::pagerduty::FakePagerDuty;
use crate::util::{ROUTING_KEY, Run, Sandbox, pagerduty_sandbox, pagerduty_sandbox_with, read_fixture};

const PAGERDUTY: &str = env!("CARGO_BIN_EXE_handler-pagerduty");
/// What every unread-setting warning says.
const NOT_A_SETTING: &str = "is not a setting of handler-";
/// What every warning about a `check_settings` or `entity_settings` entry says.
const ALLOWS_NOTHING: &str = "it allows nothing";

fn pagerduty(fake: &FakePagerDuty, section: Value) -> (Sandbox, Run) {
    let sb = pagerduty_sandbox_with(section);
    let r = sb.run(&["--api-url", &fake.url], &read_fixture("sensu/create.json"));
    (sb, r)
}

#[test]
fn a_misspelled_setting_is_named_once_with_the_likely_one_and_the_page_still_goes_out() {
    let fake = FakePagerDuty::start(&[]);
    let secret = "S3cretPastedUnderAWrongName0000";
    let (sb, r) = pagerduty(&fake, json!({"routing_key": ROUTING_KEY, "refersh": 3600, "integration_kye": secret}));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1, "the page is sent as before: {}", r.stderr);
    let file = sb.conf_dir().join("pagerduty.json");
    let line = format!(
        "pagerduty: warn: settings `pagerduty.refersh` (in {}) is not a setting of handler-pagerduty; ignored (did you mean `refresh`?)",
        file.display()
    );
    assert_eq!(r.stderr.lines().filter(|l| *l == line).count(), 1, "{}", r.stderr);
    assert_eq!(r.stderr.matches("`pagerduty.integration_kye`").count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("(did you mean `integration_key`?)"), "{}", r.stderr);
    assert_eq!(r.stderr.matches(NOT_A_SETTING).count(), 2, "one line per key: {}", r.stderr);
    assert!(!r.stderr.contains(secret) && !r.stderr.contains(&secret[secret.len() - 4..]), "no value is shown: {}", r.stderr);
    fake.assert_no_violations();
}

#[test]
fn a_secret_file_setting_of_another_handler_is_named_as_written() {
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(PAGERDUTY);
    let token = sb.dir.path().join("slack-token");
    std::fs::write(&token, "xoxb-not-shown-0000\n").unwrap();
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY, "token_file": token}}));
    let r = sb.run(&["--api-url", &fake.url], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1);
    assert_eq!(r.stderr.matches(NOT_A_SETTING).count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("settings `pagerduty.token_file` (in "), "{}", r.stderr);
    assert!(!r.stderr.contains("xoxb"), "{}", r.stderr);
}

#[test]
fn settings_that_exist_are_not_warned_about() {
    let fake = FakePagerDuty::start(&[]);
    let (_sb, r) = pagerduty(
        &fake,
        json!({"routing_key": ROUTING_KEY, "refresh": 3600, "check_settings": ["severities"], "integration_key": ROUTING_KEY,
               "severity_map": {"critical": "error"}, "ops": {"routing_key": ROUTING_KEY}}),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1);
    assert!(!r.stderr.contains(NOT_A_SETTING), "{}", r.stderr);
}

#[test]
fn a_team_holds_a_routing_key_and_a_misspelling_in_it_is_named() {
    let fake = FakePagerDuty::start(&[]);
    let (_sb, r) = pagerduty(&fake, json!({"routing_key": ROUTING_KEY, "ops": {"routing_key": ROUTING_KEY, "routng_key": "x"}}));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stderr.matches(NOT_A_SETTING).count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("`pagerduty.ops.routng_key`") && r.stderr.contains("(did you mean `routing_key`?)"), "{}", r.stderr);
}

#[test]
fn dry_run_and_explain_show_it_too() {
    let sb = crate::util::twilio_sandbox(json!({"recipients": ["+14155550101"], "check_setting": ["severities"]}));
    for flag in ["--dry-run", "--explain"] {
        let r = sb.run(&[flag], &read_fixture("sensu/create.json"));
        assert_eq!(r.code, Some(0), "{flag}: {r:?}");
        assert_eq!(r.stderr.matches(NOT_A_SETTING).count(), 1, "{flag}: {}", r.stderr);
        assert!(
            r.stderr.contains("twilio: warn: settings `twilio.check_setting` (in ")
                && r.stderr.contains("is not a setting of handler-twilio; ignored (did you mean `check_settings`?)"),
            "{flag}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_name_an_event_carries_is_never_logged() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).unwrap();
    ev["check"]["metadata"]["annotations"] = json!({"pagerpipe/pagerduty.refersh": "1h", "pagerpipe/pagerduty.severities": "critical"});
    ev["entity"]["metadata"]["annotations"] = json!({"pagerpipe/pagerduty.summary_templat": "x"});
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("refersh") && !r.stderr.contains("summary_templat"), "{}", r.stderr);
    assert!(!r.stderr.contains(NOT_A_SETTING), "{}", r.stderr);
    assert!(r.stderr.contains("2 event overrides ignored: not a setting of handler-pagerduty"), "counted, not named: {}", r.stderr);
}

/// The handler a settings example is for: its first section that names one.
fn handler_of(example: &Value) -> Option<&'static str> {
    ["pagerduty", "twilio", "reactio", "slack"].into_iter().find(|h| example.get(h).is_some_and(Value::is_object))
}

/// `conf.d/*.json`, and each ```json block of README.md and docs/*.md that holds a handler's
/// section: (where, the settings).
fn shipped_examples() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(root.join("conf.d")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for p in files.iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
        out.push((p.display().to_string(), serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()));
    }
    let mut docs = vec![root.join("README.md")];
    let mut more: Vec<_> = std::fs::read_dir(root.join("docs")).unwrap().map(|e| e.unwrap().path()).collect();
    more.sort();
    docs.extend(more.into_iter().filter(|p| p.extension().is_some_and(|x| x == "md")));
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (n, block) in text.split("```json\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap();
            let v: Value = serde_json::from_str(block).unwrap_or_else(|e| panic!("{} json block {n}: {e}", doc.display()));
            if handler_of(&v).is_some() {
                out.push((format!("{} json block {n}", doc.display()), v));
            }
        }
    }
    out
}

#[test]
fn every_shipped_example_runs_without_an_unread_setting_warning() {
    let examples = shipped_examples();
    // Four conf.d files, and the README's and docs' own examples besides.
    assert!(examples.len() >= 8, "{:?}", examples.iter().map(|(w, _)| w).collect::<Vec<_>>());
    for (where_, example) in examples {
        let handler = handler_of(&example).unwrap();
        let sb = Sandbox::new(match handler {
            "pagerduty" => PAGERDUTY,
            "twilio" => env!("CARGO_BIN_EXE_handler-twilio"),
            "reactio" => env!("CARGO_BIN_EXE_handler-reactio"),
            _ => env!("CARGO_BIN_EXE_handler-slack"),
        });
        sb.config(&format!("{handler}.json"), &example);
        // The flags of the example's own handler definition (`handler-twilio --timeout 270s`).
        let command = example.pointer(&format!("/handlers/{handler}/command")).and_then(Value::as_str).unwrap_or_default();
        let flags: Vec<&str> = command.split_whitespace().skip(1).collect();
        for flag in ["--dry-run", "--explain"] {
            let args: Vec<&str> = flags.iter().copied().chain([flag]).collect();
            let r = sb.run(&args, &read_fixture("sensu/create.json"));
            assert_eq!(r.code, Some(0), "{where_} {flag}: {r:?}");
            assert!(!r.stdout.trim().is_empty(), "{where_} {flag} printed its request or its explanation: {r:?}");
            assert!(!r.stderr.contains(NOT_A_SETTING), "{where_} {flag}: {}", r.stderr);
            assert!(!r.stderr.contains(ALLOWS_NOTHING), "{where_} {flag}: {}", r.stderr);
        }
    }
}

#[test]
fn other_handlers_sections_in_the_same_directory_are_not_warned_about() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d");
    for (handler, bin, flags) in [
        ("pagerduty", PAGERDUTY, vec![]),
        ("twilio", env!("CARGO_BIN_EXE_handler-twilio"), vec!["--timeout", "270s"]),
        ("reactio", env!("CARGO_BIN_EXE_handler-reactio"), vec![]),
        ("slack", env!("CARGO_BIN_EXE_handler-slack"), vec![]),
    ] {
        let sb = Sandbox::new(bin);
        for name in ["pagerduty.json", "twilio.json", "reactio.json", "slack.json"] {
            sb.config(name, &serde_json::from_slice(&std::fs::read(root.join(name)).unwrap()).unwrap());
        }
        let args: Vec<&str> = flags.into_iter().chain(["--dry-run"]).collect();
        let r = sb.run(&args, &read_fixture("sensu/create.json"));
        assert_eq!(r.code, Some(0), "{handler}: {r:?}");
        assert!(r.stderr.contains(&format!("{handler}: would have triggered")), "{handler}: {}", r.stderr);
        assert!(!r.stderr.contains(NOT_A_SETTING), "{handler}: {}", r.stderr);
    }
}

/// Red team: a Sensu 1.x check attribute shaped like a PagerDuty team (an object holding a
/// routing key) was taken for a setting and named, one line per name the event invented. Only
/// the operator defines teams: such overrides are counted with the unknown ones, never named,
/// and the page goes out on the operator's key.
#[test]
fn an_event_override_shaped_like_a_team_is_counted_not_named() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    let mut teams = serde_json::Map::new();
    for n in 0..50 {
        teams.insert(format!("HOSTNAME{n}-forged"), json!({"routing_key": "A".repeat(32)}));
    }
    ev["check"]["pagerduty"] = Value::Object(teams);
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let keys: Vec<Value> = fake.events().iter().map(|e| e["routing_key"].clone()).collect();
    assert_eq!(keys, [json!(ROUTING_KEY)], "{}", r.stderr);
    assert!(!r.stderr.contains("forged"), "{}", r.stderr);
    assert!(r.stderr.contains("50 event overrides ignored: not a setting of handler-pagerduty"), "{}", r.stderr);
    assert!(r.stderr.lines().count() < 5, "{}", r.stderr);
}

/// Red team: the warning was logged before the provider registered its secrets, so a key name
/// holding the routing key (pasted as the name by mistake) was printed whole.
#[test]
fn a_secret_in_a_misspelled_key_name_is_masked() {
    let fake = FakePagerDuty::start(&[]);
    let (_sb, r) = pagerduty(&fake, json!({"routing_key": ROUTING_KEY, format!("key{ROUTING_KEY}"): 1}));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stderr.matches(NOT_A_SETTING).count(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains(ROUTING_KEY), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("`pagerduty.key{}`", common::secret::mask(ROUTING_KEY))), "{}", r.stderr);
}

/// A flat key with a dot in its name is quoted, so that it does not read as a team's key.
#[test]
fn a_flat_key_with_a_dot_is_quoted() {
    let fake = FakePagerDuty::start(&[]);
    let (_sb, r) = pagerduty(&fake, json!({"routing_key": ROUTING_KEY, "ops.routing_key": ROUTING_KEY}));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("settings `pagerduty.\"ops.routing_key\"` (in "), "{}", r.stderr);
}

/// A `notification_types` key no monitoring system sends (`DOWNTIMESTRT`) never applies: it
/// is named with the type it probably means; real types pass in any case.
#[test]
fn a_misspelled_notification_type_is_named() {
    let fake = FakePagerDuty::start(&[]);
    let (sb, r) = pagerduty(
        &fake,
        json!({"routing_key": ROUTING_KEY,
               "notification_types": {"DOWNTIMESTRT": "acknowledge", "CUSTOM": "trigger", "DowntimeRemoved": "skip", "problem": "trigger"}}),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1, "{}", r.stderr);
    let line = format!(
        "pagerduty: warn: settings `pagerduty.notification_types.DOWNTIMESTRT` (in {}) names no Nagios or Icinga notification type; \
         it never applies (did you mean `DOWNTIMESTART`?)",
        sb.conf_dir().join("pagerduty.json").display()
    );
    assert!(r.stderr.lines().any(|l| l == line), "{}", r.stderr);
    assert_eq!(r.stderr.matches("notification type").count(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains(NOT_A_SETTING), "{}", r.stderr);
}

/// A `check_settings` or `entity_settings` entry naming no setting an event may set (a
/// misspelling, or an operator-only setting) allows nothing: the setting the operator meant
/// stays refused. Each such entry is named in one warning with the setting it probably means;
/// entries that are check- or entity-level settings are not.
#[test]
fn a_check_settings_entry_naming_no_event_setting_is_named() {
    let sb = crate::util::twilio_sandbox(json!({"recipients": ["+14155550101"],
        "check_settings": ["severites", "rotation", " timeout", "message"], "entity_settings": "voice, rotaton"}));
    let r = sb.run(&["--dry-run"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    let file = sb.conf_dir().join("twilio.json");
    let line = format!(
        "twilio: warn: settings `twilio.check_settings` (in {}) names `severites`, which is not a check- or entity-level setting of \
         handler-twilio; it allows nothing (did you mean `severities`?)",
        file.display()
    );
    assert_eq!(r.stderr.lines().filter(|l| *l == line).count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("`twilio.check_settings` (in ") && r.stderr.contains("names `timeout`, which"), "{}", r.stderr);
    assert!(
        r.stderr.contains("settings `twilio.entity_settings` (in ")
            && r.stderr.contains("names `rotaton`, which is not a check- or entity-level setting of handler-twilio; it allows nothing (did you mean `rotation`?)"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches(ALLOWS_NOTHING).count(), 3, "one line per entry: {}", r.stderr);
    assert!(!r.stderr.contains("`rotation`,") && !r.stderr.contains("`voice`") && !r.stderr.contains("`message`"), "{}", r.stderr);
    assert!(!r.stderr.contains(NOT_A_SETTING), "{}", r.stderr);
}

/// A key of a Twilio recipient object other than `name` and `phone` is never read: named in
/// one warning with the key it probably means, never with its value.
#[test]
fn an_unknown_key_in_a_twilio_recipient_is_named() {
    let sb = crate::util::twilio_sandbox(json!({"recipients": ["+14155550101",
        {"name": "Bob", "phone": "+14155550102", "phnoe": "+14155550177"}, {"nmae": "Carol", "phone": "+14155550103", "sms": true}]}));
    let r = sb.run(&["--dry-run"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    let line = format!(
        "twilio: warn: settings `twilio.recipients[1].phnoe` (in {}) is not a setting of handler-twilio; ignored (did you mean `phone`?)",
        sb.conf_dir().join("twilio.json").display()
    );
    assert_eq!(r.stderr.lines().filter(|l| *l == line).count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("settings `twilio.recipients[2].nmae` (in ") && r.stderr.contains("(did you mean `name`?)"), "{}", r.stderr);
    assert!(r.stderr.contains("settings `twilio.recipients[2].sms` (in "), "{}", r.stderr);
    assert_eq!(r.stderr.matches(NOT_A_SETTING).count(), 3, "one line per key: {}", r.stderr);
    assert!(!r.stderr.contains("+14155550177"), "no value is shown: {}", r.stderr);
}

/// What is inside an event's setting is not the unread check's to judge: a check's
/// `recipients` whose object holds a key the handler does not read is still a setting of the
/// handler, used (the key ignored), and no name it carries is logged.
#[test]
fn an_event_recipient_with_an_unknown_key_is_still_used_and_not_named() {
    let sb = crate::util::twilio_sandbox(json!({"recipients": ["+14155550101"]}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["check"]["twilio"] = json!({"recipients": [{"name": "Bob", "phone": "+14155550102", "pager_note": "x"}]});
    let r = sb.run(&["--dry-run"], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("+14155550102") && !r.stdout.contains("+14155550101"), "the check's recipients: {r:?}");
    assert!(!r.stderr.contains("ignored") && !r.stderr.contains("pager_note"), "{}", r.stderr);
}

#[test]
fn test_mode_in_a_settings_file_is_ignored_and_named_and_the_real_page_goes_out() {
    use crate::fake::twilio::FakeTwilio;
    let fake = FakeTwilio::start(&[]);
    let sb = crate::util::twilio_sandbox(json!({"recipients": ["+14155550101"], "test": true, "test_message": "only a rehearsal"}));
    let r = sb.run(&["--api-url", &fake.url], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    let calls = fake.to("Calls.json");
    assert_eq!(calls.len(), 1, "{}", r.stderr);
    let said = &calls[0].twiml.as_ref().expect("Twiml").say;
    assert!(said.iter().all(|s| s.starts_with("web-01 check_disk is critical.")), "the real page, not the test message: {said:?}");
    let line = format!(
        "twilio: warn: settings `twilio.test` (in {}) is set by the --test flag only, never by a settings file; ignored",
        sb.conf_dir().join("twilio.json").display()
    );
    assert_eq!(r.stderr.lines().filter(|l| *l == line).count(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains(NOT_A_SETTING), "{}", r.stderr);
    fake.assert_no_violations();

    // A handler with no test mode names it as any setting it does not have.
    let pd = FakePagerDuty::start(&[]);
    let (_sb, r) = pagerduty(&pd, json!({"routing_key": ROUTING_KEY, "test": true}));
    assert_eq!((r.code, pd.events().len()), (Some(0), 1), "{r:?}");
    assert_eq!(r.stderr.matches("`pagerduty.test`").count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("is not a setting of handler-pagerduty; ignored"), "{}", r.stderr);
}

/// The storm path leaves the check out: the delivery a dedup skip repeats named the misspelling
/// already, and a storm would repeat it with every event. A recovery (no skip) names it again.
#[test]
fn a_dedup_skip_does_not_repeat_the_warning_its_delivery_gave() {
    let fake = FakePagerDuty::start(&[]);
    let (sb, first) = pagerduty(&fake, json!({"routing_key": ROUTING_KEY, "refersh": 3600}));
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(first.stderr.matches(NOT_A_SETTING).count(), 1, "{}", first.stderr);
    let repeat = sb.run(&["--api-url", &fake.url], &read_fixture("sensu/create.json"));
    assert_eq!(repeat.code, Some(0), "{repeat:?}");
    assert!(repeat.stderr.contains("skipped web-01/check_disk: already notified"), "{}", repeat.stderr);
    assert!(!repeat.stderr.contains(NOT_A_SETTING), "{}", repeat.stderr);
    let resolve = sb.run(&["--api-url", &fake.url], &read_fixture("sensu/resolve.json"));
    assert_eq!(resolve.code, Some(0), "{resolve:?}");
    assert_eq!(resolve.stderr.matches(NOT_A_SETTING).count(), 1, "{}", resolve.stderr);
    assert_eq!(fake.events().len(), 2, "trigger and resolve");
}

/// A misspelled setting that leaves the handler without what it needs is named before it
/// exits 78: the hint matters most there.
#[test]
fn a_misspelling_that_leaves_the_handler_unconfigured_is_named_with_the_exit() {
    let sb = Sandbox::new(PAGERDUTY);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_kye": ROUTING_KEY}}));
    let r = sb.run(&[], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("`pagerduty.routing_kye`") && r.stderr.contains("(did you mean `routing_key`?)"), "{}", r.stderr);
    assert!(!r.stderr.contains(&ROUTING_KEY[4..]), "no value is shown: {}", r.stderr);
}
