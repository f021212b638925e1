//! Trust boundaries, attacked from outside: the real binaries, fed what a hostile monitored
//! host (or a careless operator) can give them.
//!
//! - durations too large for the clock, from a flag, a settings file or the event: exit 78
//!   with one line naming the setting, never a panic;
//! - a check or entity name carrying a newline, CR or ESC cannot forge a log line of its own.

use serde_json::{Value, json};

use crate::fake::pagerduty::FakePagerDuty;
use crate::util::{ROUTING_KEY, Run, Sandbox, read_fixture};

const PD: &str = env!("CARGO_BIN_EXE_handler-pagerduty");
const TWILIO: &str = env!("CARGO_BIN_EXE_handler-twilio");
const REACTIO: &str = env!("CARGO_BIN_EXE_handler-reactio");

/// Nothing listens here (discard port).
const NOWHERE: &str = "http://127.0.0.1:9";

fn pd_sandbox() -> Sandbox {
    let sb = Sandbox::new(PD);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
    sb
}

/// One line on stderr, exit 78, naming `setting`; no panic, nothing on stdout.
fn assert_config_error(r: &Run, setting: &str, ctx: &str) {
    let ctx = format!("{ctx}: {r:?}");
    assert!(!r.stderr.contains("panicked"), "panic: {ctx}");
    assert_eq!(r.code, Some(78), "{ctx}");
    let lines: Vec<&str> = r.stderr.lines().collect();
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
    for (setting, value) in [("poll_interval", json!("500000000000y")), ("ring_timeout", json!(18446744073709551615u64)), ("rounds", json!(0))] {
        let sb = Sandbox::new(TWILIO);
        sb.config("twilio.json", &json!({"twilio": {setting: value}}));
        let r = sb.run(&["--api-url", NOWHERE, "--dry-run"], &create);
        assert_config_error(&r, &format!("twilio.{setting}"), setting);
    }
}

#[test]
fn a_far_future_check_time_is_delivered_not_a_panic() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pd_sandbox();
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).expect("fixture");
    ev["check"]["executed"] = i64::MAX.into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events()[0]["payload"]["timestamp"], "9999-12-31T23:59:59Z");
    fake.assert_no_violations();
}

#[test]
fn a_name_with_a_newline_cannot_forge_a_log_line() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pd_sandbox();
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
