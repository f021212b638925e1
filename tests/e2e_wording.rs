//! What people read and hear, end to end (binary → loopback fake): Reactio incident names cut to
//! a bounded length on a character boundary, Twilio's default spoken message in the configured
//! language, and command lines that a wrapper extends (a repeated single-value flag: last wins).

use serde_json::json;

use crate::fake::pagerduty::FakePagerDuty;
use crate::fake::reactio::{API_KEY, FakeReactio};
use crate::fake::twilio::FakeTwilio;
use crate::util::{ROUTING_KEY, Sandbox, read_fixture, twilio_sandbox};

/// A Sensu 1.x critical event whose output is `output`.
fn event_with_output(output: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    v["check"]["output"] = json!(output);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn reactio_incident_name_is_cut_on_a_character_boundary() {
    let fake = FakeReactio::start(&[]);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
    sb.config("reactio.json", &json!({"reactio": {"api_key": API_KEY, "organization": "example"}}));
    // 4,800 characters, multi-byte: a cut inside a character would be invalid UTF-8.
    let output = "ディスク使用率が閾値を超えています。".repeat(267);
    let r = sb.run(&["--api-url", fake.url.as_str()], &event_with_output(&output));
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let created = fake.accepted("/api/v1/incidents");
    assert_eq!(created.len(), 1);
    let name = created[0]["name"].as_str().unwrap();
    assert_eq!(name.chars().count(), 255, "{name}");
    assert!(name.ends_with('…'), "{name}");
    assert!(name.starts_with("web-01/check_disk ディスク使用率"), "{name}");
}

#[test]
fn twilio_default_message_speaks_the_configured_language() {
    let fake = FakeTwilio::start(&[]);
    let sb = twilio_sandbox(json!({"recipients": ["+819012345678"], "language": "ja-JP"}));
    let r = sb.run(&["--api-url", fake.url.as_str()], &event_with_output("ディスクがいっぱいです"));
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let calls = fake.to("Calls.json");
    assert_eq!(calls.len(), 1);
    let twiml = calls[0].twiml.as_ref().expect("Twiml");
    assert_eq!(twiml.say, ["web-01 の check_disk で障害です。状態は critical です。ディスクがいっぱいです"]);
    assert!(twiml.say_attrs.contains(&("language".to_string(), "ja-JP".to_string())), "{:?}", twiml.say_attrs);
}

/// Wrappers append flags to a command line that already has them: the last one wins, for every
/// handler, instead of a usage error (exit 2) that loses the page.
#[test]
fn a_repeated_single_value_flag_takes_the_last_value() {
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-pagerduty"));
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
    let elsewhere = sb.dir.path().join("elsewhere");
    // Sandbox::command already passes --state-dir and --spool-dir; these come last and win.
    let r = sb.run(
        &[
            "--api-url",
            "http://127.0.0.1:9/unused",
            "--timeout",
            "1s",
            "--api-url",
            fake.url.as_str(),
            "--timeout",
            "10s",
            "--state-dir",
            elsewhere.to_str().unwrap(),
        ],
        &read_fixture("sensu/create.json"),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1);
    assert!(std::fs::read_dir(elsewhere.join("pagerduty")).is_ok_and(|mut d| d.next().is_some()), "the last --state-dir holds the record");
    for bin in [env!("CARGO_BIN_EXE_handler-twilio"), env!("CARGO_BIN_EXE_handler-reactio")] {
        let sb = Sandbox::new(bin);
        let r = sb.run(&["--dry-run", "--timeout", "1s", "--timeout", "5s"], &read_fixture("sensu/create.json"));
        assert_ne!(r.code, Some(2), "{bin}: {r:?}");
    }
}

/// The flush timer (`handler-* --flush` every minute) says nothing when the spool is empty.
#[test]
fn flushing_an_empty_spool_logs_nothing() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-pagerduty"));
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
    let r = sb.run(&["--flush"], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stderr, "", "an empty spool is not news");
    let r = sb.run(&["--flush", "-v"], b"");
    assert!(r.stderr.contains("0 delivered"), "still there at debug level: {}", r.stderr);
}

/// Zabbix Information and Not classified problems place no phone call with handler-twilio's
/// default `severities`; a Warning does, and its spoken text names the trigger once.
#[test]
fn twilio_does_not_call_for_informational_zabbix_problems() {
    let fake = FakeTwilio::start(&[]);
    let sb = twilio_sandbox(json!({"recipients": ["+14155550101"]}));
    for slug in ["information", "not-classified", "warning"] {
        let message = String::from_utf8(read_fixture(&format!("zabbix/problem-{slug}.txt"))).unwrap();
        let r = sb.run(&["--api-url", fake.url.as_str(), "--from", "zabbix", "", "trigger", &message], b"");
        assert_eq!(r.code, Some(0), "{slug}: {r:?}");
    }
    fake.assert_no_violations();
    let calls = fake.to("Calls.json");
    assert_eq!(calls.len(), 1, "only the Warning calls");
    assert_eq!(calls[0].twiml.as_ref().unwrap().say, ["web-01 Free disk space is less than 20% on volume / is warning. 18.2 %"]);
}
