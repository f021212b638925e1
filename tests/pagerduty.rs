//! handler-pagerduty end to end: fixtures in, requests checked by the fake PagerDuty.

use serde_json::{Value, json};

use crate::fake::pagerduty::{FakePagerDuty, Script};
use crate::util::{REFUSED_URL, ROUTING_KEY, Run, Sandbox, read_fixture};

const BIN: &str = env!("CARGO_BIN_EXE_handler-pagerduty");

fn sandbox() -> Sandbox {
    let sb = Sandbox::new(BIN);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
    sb
}

fn run(sb: &Sandbox, fake: &FakePagerDuty, fixture: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--api-url", fake.url.as_str()];
    args.extend_from_slice(extra);
    sb.run(&args, &read_fixture(fixture))
}

#[test]
fn sensu1_create_then_resolve_meet_on_one_dedup_key() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu/create.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("pagerduty: triggered web-01/check_disk (dedup_key web-01/check_disk) in "), "{}", r.stderr);
    let r = run(&sb, &fake, "sensu/resolve.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("resolved web-01/check_disk"), "{}", r.stderr);
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["event_action"], "trigger");
    assert_eq!(ev[0]["routing_key"], ROUTING_KEY);
    assert_eq!(ev[0]["payload"]["severity"], "critical");
    assert_eq!(ev[0]["payload"]["source"], "web-01");
    assert_eq!(ev[0]["payload"]["summary"], "web-01/check_disk: CheckDisk CRITICAL: / 95.2% used (45G of 47G)");
    assert_eq!(ev[0]["payload"]["custom_details"]["history"], json!([0, 0, 2]));
    assert_eq!(ev[1]["event_action"], "resolve");
    assert_eq!(ev[1]["dedup_key"], ev[0]["dedup_key"]);
    let st = sb.state("pagerduty", "web-01%2Fcheck_disk.json");
    assert_eq!(st["open"], false);
    assert_eq!(st["count"], 1);
}

#[test]
fn a_dedup_key_of_emoji_fits_255_counted_in_utf16_units_and_resolve_meets_it() {
    // Host and check names of 100 emoji each make a default key (`{entity}/{check}`) of 201
    // characters but 401 UTF-16 units: sent as it was, a PagerDuty that counts units (as it
    // may: it does not say) refuses the trigger for good, the page lost.
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let (entity, check) = ("\u{1F525}".repeat(100), "\u{1F4BE}".repeat(100));
    for (status, action) in [(2, "create"), (0, "resolve")] {
        let ev = json!({"action": action, "client": {"name": entity}, "check": {"name": check, "status": status, "output": "disk"}});
        let r = sb.run(&["--api-url", fake.url.as_str()], ev.to_string().as_bytes());
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev.len(), 2);
    let key = ev[0]["dedup_key"].as_str().unwrap_or_default();
    assert!(key.chars().map(char::len_utf16).sum::<usize>() <= 255, "{key}");
    assert!(key.starts_with(&"\u{1F525}".repeat(50)), "{key}");
    assert_eq!(ev[1]["event_action"], "resolve");
    assert_eq!(ev[1]["dedup_key"], ev[0]["dedup_key"]);
}

#[test]
fn sensu_go_failing_then_passing() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    assert_eq!(run(&sb, &fake, "sensu-go/failing.json", &[]).code, Some(0));
    let r = run(&sb, &fake, "sensu-go/passing.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["dedup_key"], "webserver01/check-http");
    assert_eq!(ev[0]["payload"]["custom_details"]["labels"]["service"], "storefront");
    assert_eq!(ev[1]["event_action"], "resolve");
}

#[test]
fn sensu1_flapping_triggers() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu/flapping.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["event_action"], "trigger");
    assert_eq!(ev[0]["payload"]["severity"], "warning");
}

#[test]
fn silenced_events_are_skipped_with_a_reason() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu-go/silenced.json", &[]);
    assert_eq!(r.code, Some(0));
    assert!(r.stderr.contains("skipped webserver01/check-http: event is silenced"), "{}", r.stderr);
    assert!(fake.events().is_empty());
}

#[test]
fn resolve_without_a_record_is_sent_so_incidents_opened_elsewhere_close() {
    // Opened by the Ruby handler before a migration, on another host, or before the state was
    // lost: PagerDuty accepts a resolve for any key, so it is sent.
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu/resolve.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let events = fake.events();
    assert_eq!(events.len(), 1, "{}", r.stderr);
    assert_eq!((events[0]["event_action"].as_str(), events[0]["dedup_key"].as_str()), (Some("resolve"), Some("web-01/check_disk")));
    // A repeat of the same resolve is suppressed: the ledger recorded it.
    let r = run(&sb, &fake, "sensu/resolve.json", &[]);
    assert!(r.stderr.contains("already resolved"), "{}", r.stderr);
    assert_eq!(fake.events().len(), 1);
    fake.assert_no_violations();
}

#[test]
fn repeated_trigger_is_suppressed_until_refresh_or_severity_change() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    assert_eq!(run(&sb, &fake, "sensu-go/failing.json", &[]).code, Some(0));
    let r = run(&sb, &fake, "sensu-go/failing.json", &[]);
    assert_eq!(r.code, Some(0));
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert_eq!(fake.events().len(), 1);
    // 31 minutes later the same trigger goes out again (refresh 30m).
    let mut cmd = sb.command(&["--api-url", &fake.url]);
    cmd.env("PAGERPIPE_NOW", (common_now() + 31 * 60).to_string());
    let r = crate::util::run_command(cmd, &read_fixture("sensu-go/failing.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 2);
    // A severity change goes out at once.
    let mut warning: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).unwrap();
    warning["check"]["status"] = 1.into();
    let mut cmd = sb.command(&["--api-url", &fake.url]);
    cmd.env("PAGERPIPE_NOW", (common_now() + 32 * 60).to_string());
    let r = crate::util::run_command(cmd, warning.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let ev = fake.events();
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[2]["payload"]["severity"], "warning");
    assert_eq!(sb.state("pagerduty", "webserver01%2Fcheck-http.json")["count"], 3);
    fake.assert_no_violations();
}

#[test]
fn a_dedup_key_template_that_says_nothing_of_the_event_falls_back_to_the_incident_key_and_says_so() {
    // A `dedup_key_template` naming a label the event lacks rendered "" (or `alert-` with a
    // literal prefix): every such event was one PagerDuty alert and one ledger record (the
    // second check's failure was skipped as "already notified"), and its resolve carried a
    // `dedup_key` of "", which identifies no alert (Events API v2: dedup_key is required for
    // acknowledge and resolve). The fallback is named in a warning, once per event.
    let disk = read_fixture("sensu/create.json");
    let mut load: Value = serde_json::from_slice(&disk).unwrap();
    load["check"]["name"] = "check_load".into();
    for template in ["{label.alert_id}", "alert-{label.alert_id}"] {
        let fake = FakePagerDuty::start(&[]);
        let sb = Sandbox::new(BIN);
        sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY, "dedup_key_template": template}}));
        let args = ["--api-url", fake.url.as_str()];
        for event in [disk.clone(), load.to_string().into_bytes(), read_fixture("sensu/resolve.json")] {
            let r = sb.run(&args, &event);
            assert_eq!(r.code, Some(0), "{r:?}");
            let needle = "`pagerduty.dedup_key_template` says nothing of this event";
            assert_eq!(r.stderr.matches(needle).count(), 1, "{template}: {}", r.stderr);
        }
        let keys: Vec<Value> = fake.events().iter().map(|e| json!([e["event_action"], e["dedup_key"]])).collect();
        assert_eq!(
            keys,
            vec![json!(["trigger", "web-01/check_disk"]), json!(["trigger", "web-01/check_load"]), json!(["resolve", "web-01/check_disk"])],
            "{template}"
        );
        fake.assert_no_violations();
    }
}

#[test]
fn a_summary_template_that_renders_blank_gives_the_default_summary() {
    // `payload.summary` is required (Events API v2, Payload schema): a `summary_template` that
    // renders blank for an event (a label it lacks; an entity annotation may set it) sent "",
    // and PagerDuty refuses a blank summary for good (400): the page was lost.
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(BIN);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY, "summary_template": "{label.summary}"}}));
    let r = run(&sb, &fake, "sensu/create.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(fake.events()[0]["payload"]["summary"], "web-01/check_disk: CheckDisk CRITICAL: / 95.2% used (45G of 47G)");
}

fn common_now() -> u64 {
    crate::util::unix_now().unsigned_abs()
}

#[test]
fn severity_filter_and_per_check_overrides() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    // Settings say critical only: the warning flapping event is skipped.
    let r = run(&sb, &fake, "sensu/flapping.json", &["--severities", "critical"]);
    assert_eq!(r.code, Some(0));
    assert!(r.stderr.contains("severity warning is not in severities [critical]"), "{}", r.stderr);
    // A Sensu 1.x check attribute `pagerduty.severities` overrides the flag.
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/flapping.json")).unwrap();
    ev["check"]["pagerduty"] = json!({"severities": ["warning", "critical"]});
    let r = sb.run(&["--api-url", &fake.url, "--severities", "critical"], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1);
    // A Sensu Go check annotation does the same (check wins over entity).
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).unwrap();
    ev["check"]["status"] = 1.into();
    ev["entity"]["metadata"]["annotations"] = json!({"pagerpipe/pagerduty.severities": "critical"});
    ev["check"]["metadata"]["annotations"] = json!({"pagerpipe/pagerduty.severities": "warning,critical"});
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 2);
    fake.assert_no_violations();
}

#[test]
fn japanese_output_is_cut_on_a_character_boundary() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu/japanese-long.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    let summary = ev[0]["payload"]["summary"].as_str().unwrap();
    assert_eq!(summary.chars().count(), 1024);
    assert!(summary.starts_with("db-tokyo-01/check_log: ログ監視 CRITICAL: ディスク容量が不足しています。"));
    assert!(summary.ends_with('…'));
    // The full output travels intact in custom_details.
    let fixture: Value = serde_json::from_slice(&read_fixture("sensu/japanese-long.json")).unwrap();
    assert_eq!(ev[0]["payload"]["custom_details"]["output"], fixture["check"]["output"]);
}

#[test]
fn retries_after_429_then_delivers() {
    let fake = FakePagerDuty::start(&[Script::RateLimited, Script::ServerError]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu/create.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("attempt 1 failed: HTTP 429"), "{}", r.stderr);
    assert!(r.stderr.contains("attempt 2 failed: HTTP 500"), "{}", r.stderr);
    assert!(r.stderr.contains("triggered web-01/check_disk"), "{}", r.stderr);
    assert_eq!(fake.events().len(), 3);
    fake.assert_no_violations();
}

/// Observed: `Retry-After: 99999999999999999999` (too large for a number) was taken for no
/// hint, and the 429 retried until the deadline; it is a very long wait: given up at once
/// (spooled, 75) after one attempt.
#[test]
fn a_retry_after_too_large_for_a_number_is_a_long_wait() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&hits);
    let server = crate::fake::Server::start(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        crate::fake::Reply::Raw(
            429,
            "application/json",
            vec![("Retry-After", "99999999999999999999".into())],
            r#"{"status":"throttle exceeded","message":"Requests for this service are arriving too quickly."}"#.into(),
        )
    });
    let sb = sandbox();
    let r = sb.run(&["--api-url", &server.url, "--timeout", "5s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "not retried within the deadline: {}", r.stderr);
    assert_eq!(sb.spooled("pagerduty").len(), 1, "{}", r.stderr);
}

#[test]
fn invalid_event_400_exits_69_with_pagerduty_errors() {
    let fake = FakePagerDuty::start(&[Script::Invalid]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu/create.json", &[]);
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("HTTP 400: Event object is invalid ('payload.severity' is invalid)"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    assert_eq!(fake.events().len(), 1, "a 400 is never retried");
    // The failed trigger released its claim: the next event tries again.
    let r = run(&sb, &fake, "sensu/create.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
}

#[test]
fn hanging_service_exits_75_within_timeout() {
    let fake = FakePagerDuty::start(&[Script::Hang, Script::Hang, Script::Hang, Script::Hang]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu/create.json", &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("not delivered ("), "{}", r.stderr);
    // Not answered in time → spooled as a request of unknown fate; nothing is recorded as
    // delivered (the ledger records only what the service accepted).
    let spooled = sb.spooled("pagerduty");
    assert_eq!(spooled.len(), 1, "{}", r.stderr);
    let entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.spool_dir().join("pagerduty").join(&spooled[0])).unwrap()).unwrap();
    assert_eq!(entry["fate"], "unknown");
    // The ledger notes the request of unknown fate, for whoever holds the incident next on any
    // host (it settles it first), and records no action.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.state_dir().join("pagerduty/web-01%2Fcheck_disk.json")).unwrap()).unwrap();
    assert!(record["last_action"].is_null(), "{record}");
    assert_eq!(record["inflight"].as_array().map(|a| a.len()), Some(1), "{record}");
    assert_eq!(record["inflight"][0]["token"], entry["token"], "{record}");
    // One attempt per half of the deadline at most: a hanging service is not hammered.
    assert!(fake.events().len() <= 2, "{}", fake.events().len());
}

#[test]
fn server_errors_until_deadline_exit_75() {
    let fake = FakePagerDuty::start(&[Script::ServerError; 100]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu/create.json", &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(fake.events().len() >= 2, "retried: {}", fake.events().len());
}

#[test]
fn a_host_name_is_resolved_like_an_address() {
    // An address in the URL skips the resolver (common::http::resolve); a name still goes
    // through getaddrinfo: `localhost` is in every /etc/hosts.
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let url = fake.url.replacen("127.0.0.1", "localhost", 1);
    assert_ne!(url, fake.url, "the fake listens on 127.0.0.1");
    let r = sb.run(&["--api-url", &url], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(fake.events().len(), 1);
}

#[test]
fn connection_refused_exits_75() {
    let sb = sandbox();
    let r = sb.run(&["--api-url", REFUSED_URL, "--timeout", "1s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
}

#[test]
fn bad_input_exits_65_with_one_line() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let oversize = {
        let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
        ev["check"]["output"] = "x".repeat(17 * 1024 * 1024).into();
        ev.to_string().into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed", b"{\"client\": {\"name\": ".to_vec(), "invalid JSON"),
        ("empty", Vec::new(), "stdin is empty"),
        ("oversize", oversize, "larger than 16777216 bytes"),
        ("missing check", br#"{"client":{"name":"web-01"}}"#.to_vec(), "missing field `check`"),
        ("wrong type", br#"{"client":{"name":"a"},"check":{"name":"c","status":"2"}}"#.to_vec(), "`check.status` must be"),
    ];
    for (name, input, want) in cases {
        let r = sb.run(&["--api-url", &fake.url], &input);
        assert_eq!(r.code, Some(65), "{name}: {r:?}");
        assert!(r.stderr.contains(want), "{name}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{name}: {}", r.stderr);
    }
    assert!(fake.events().is_empty());
}

/// A Sensu 1.x check definition's `refresh` written as `"30m"` (the definition is the
/// operator's or, for a standalone check, the client's) only tunes repeats: before, exit 65 and
/// every event of the check lost its page; now it is left out with a warning naming it.
#[test]
fn a_tuning_attribute_nothing_reads_costs_a_warning_not_the_page() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["check"]["refresh"] = "30m".into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("warn: field `check.refresh` must be a non-negative integer, found a string; ignored"), "{}", r.stderr);
    assert_eq!(fake.events().len(), 1, "{}", r.stderr);
    fake.assert_no_violations();
}

#[test]
fn missing_routing_key_exits_78_saying_where_to_put_it() {
    let sb = Sandbox::new(BIN);
    let r = sb.run(&[], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("PAGERDUTY_ROUTING_KEY"), "{}", r.stderr);
}

#[test]
fn a_client_url_that_is_no_url_is_left_out_and_the_page_goes_out() {
    // `client_url` is `format: url` in the Events API v2 spec; one that is not could have
    // every trigger refused for good. It is left out with a warning naming the setting (never
    // its value), and triggers and resolves go out; a valid one goes out as given.
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(BIN);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY, "client": "Sensu", "client_url": "sensu dashboard"}}));
    let r = run(&sb, &fake, "sensu/create.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        r.stderr
            .matches("`pagerduty.client_url` (from the settings, or an override the event carried) is not an absolute http(s) URL")
            .count(),
        1,
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("sensu dashboard"), "{}", r.stderr);
    let r = run(&sb, &fake, "sensu/resolve.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let events = fake.events();
    assert_eq!(events.iter().map(|e| e["event_action"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["trigger", "resolve"]);
    assert!(events[0].get("client_url").is_none() && events[0]["client"] == "Sensu", "{}", events[0]);
    fake.assert_no_violations();
    sb.config(
        "pagerduty.json",
        &json!({"pagerduty": {"routing_key": ROUTING_KEY, "client": "Sensu", "client_url": "https://sensu.example.com/#/events"}}),
    );
    let r = run(&sb, &fake, "sensu/create.json", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(fake.events()[2]["client_url"], "https://sensu.example.com/#/events");
}

#[test]
fn a_link_back_with_characters_beyond_rfc_3986_goes_out_percent_encoded() {
    // `links[].href` and `client_url` are `format: url` (RFC 3986). A Mackerel or Zabbix link
    // holding `|` or a backtick (a Grafana `var-host=a|b`) went out as it was, and PagerDuty
    // refusing the event (400) is final: the page was lost. It goes out percent-encoded,
    // which names the same page.
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(BIN);
    sb.config(
        "pagerduty.json",
        &json!({"pagerduty": {"routing_key": ROUTING_KEY, "client": "Grafana", "client_url": "https://grafana.example.com/d/x?var-host=a|b"}}),
    );
    let mut alert: Value = serde_json::from_slice(&read_fixture("mackerel/check-alert.json")).unwrap();
    alert["alert"]["url"] = "https://grafana.example.com/d/disk?var-host=web-01|web-02&x=`a`".into();
    let r = sb.run(&["--api-url", &fake.url], alert.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let sent = &fake.events()[0];
    assert_eq!(sent["links"][0]["href"], "https://grafana.example.com/d/disk?var-host=web-01%7Cweb-02&x=%60a%60", "{sent}");
    assert_eq!(sent["client_url"], "https://grafana.example.com/d/x?var-host=a%7Cb", "{sent}");
}

#[test]
fn routing_key_from_environment_ruby_api_key_and_pager_team() {
    let fake = FakePagerDuty::start(&[]);
    // Environment.
    let sb = Sandbox::new(BIN);
    let mut cmd = sb.command(&["--api-url", &fake.url]);
    cmd.env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY);
    let r = crate::util::run_command(cmd, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    // The Ruby handler's settings: api_key, and pager_team on the check.
    let team_key = "TeamOpsKey000000000000000000beef";
    let sb = Sandbox::new(BIN);
    sb.config("pagerduty.json", &json!({"pagerduty": {"api_key": ROUTING_KEY, "ops": {"api_key": team_key}}}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["check"]["pager_team"] = "ops".into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let ev = fake.events();
    assert_eq!(ev[0]["routing_key"], ROUTING_KEY);
    assert_eq!(ev[1]["routing_key"], team_key);
    // A check naming an object of the section that is no team (no key in it) is ignored, and
    // the page goes out on the operator's key instead of failing.
    sb.config(
        "pagerduty.json",
        &json!({"pagerduty": {"api_key": ROUTING_KEY, "ops": {"api_key": team_key}, "severity_map": {"warning": "info"}}}),
    );
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["check"]["pager_team"] = "severity_map".into();
    ev["client"]["name"] = "web-02".into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events()[2]["routing_key"], ROUTING_KEY);
    assert!(
        r.stderr.contains("event override `pagerduty.pager_team` ignored: the value from a check attribute is invalid"),
        "{}",
        r.stderr
    );
    fake.assert_no_violations();
}

/// The Ruby `handler-pagerduty.rb` also took `pager_team` from the Sensu 1.x *client*
/// definition (check > client > default). A client attribute is written on the monitored host,
/// so it counts as the entity's (README "Who may set what"): ignored with a line saying so
/// (never silently paged elsewhere), used once `entity_settings` names `pager_team`, and the
/// check's own `pager_team` still wins.
#[test]
fn a_sensu_client_pager_team_is_the_entitys_as_in_the_ruby_handler() {
    let fake = FakePagerDuty::start(&[]);
    let team_key = "TeamOpsKey000000000000000000beef";
    let db_key = "TeamDbKey0000000000000000000beef";
    let sb = Sandbox::new(BIN);
    sb.config("pagerduty.json", &json!({"pagerduty": {"api_key": ROUTING_KEY, "ops": {"api_key": team_key}, "db": {"api_key": db_key}}}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["client"]["pager_team"] = "ops".into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events()[0]["routing_key"], ROUTING_KEY);
    assert!(
        r.stderr.contains(
            "event override `pagerduty.pager_team` ignored: set by a client attribute; a client attribute is written on the monitored host"
        ),
        "{}",
        r.stderr
    );

    // Allowed by the operator: the client's team, as the Ruby handler did.
    sb.config(
        "pagerduty.json",
        &json!({"pagerduty": {"api_key": ROUTING_KEY, "entity_settings": ["pager_team"], "ops": {"api_key": team_key}, "db": {"api_key": db_key}}}),
    );
    ev["client"]["name"] = "web-02".into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events()[1]["routing_key"], team_key);
    assert!(!r.stderr.contains("ignored"), "{}", r.stderr);

    // The check's team wins over the client's.
    ev["client"]["name"] = "web-03".into();
    ev["check"]["pager_team"] = "db".into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events()[2]["routing_key"], db_key);
    fake.assert_no_violations();
}

/// A settings file carried over from the Ruby `handler-pagerduty.rb` (README "Migrating from
/// the Ruby handlers"): `api_key` and `incident_key_prefix` are read as there; its proxy, summary
/// prefix and key rewriting are not, and each warning says what to use instead (a proxy
/// setting dropped without a hint sends every page straight at a firewall).
#[test]
fn ruby_handler_settings_pagerpipe_replaces_are_named_with_what_to_use_instead() {
    let sb = Sandbox::new(BIN);
    sb.config(
        "pagerduty.json",
        &json!({"pagerduty": {"api_key": ROUTING_KEY, "incident_key_prefix": "sensu-", "description_prefix": "[prod]",
                "dynamic_description_prefix_key": "environment", "proxy_host": "proxy.example", "proxy_port": 3128,
                "proxy_username": "pd", "proxy_password": "proxy-s3cret-pw", "dedup_rules": {"-\\d+/": "/"}}}),
    );
    let r = sb.run(&["--dry-run"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    let body: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(body["dedup_key"], "sensu-web-01/check_disk", "the Ruby handler's key");
    for (setting, instead) in [
        ("proxy_host", "set `https_proxy=http://[user:password@]host:port` in the handler's environment instead"),
        ("proxy_port", "set `https_proxy="),
        ("proxy_username", "set `https_proxy="),
        ("proxy_password", "set `https_proxy="),
        ("description_prefix", "write it into `summary_template` instead"),
        ("dynamic_description_prefix_key", "write it into `summary_template` instead"),
        ("dedup_rules", "write the key as `dedup_key_template`"),
    ] {
        let line =
            r.stderr.lines().find(|l| l.contains(&format!("`pagerduty.{setting}`"))).unwrap_or_else(|| panic!("{setting}: {}", r.stderr));
        assert!(line.contains("is not a setting of handler-pagerduty; ignored: the Ruby handler's") && line.contains(instead), "{line}");
    }
    assert!(!r.stderr.contains("proxy-s3cret-pw"), "{}", r.stderr);
}

#[test]
fn dry_run_prints_masked_body_sends_nothing_touches_no_state() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu/create.json", &["--dry-run"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let body: Value = serde_json::from_str(&r.stdout).expect("stdout is the JSON body");
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(body["routing_key"], format!("{}abcd", "*".repeat(28)));
    assert!(!r.stdout.contains(ROUTING_KEY) && !r.stderr.contains(ROUTING_KEY));
    assert!(fake.events().is_empty());
    assert_eq!(std::fs::read_dir(sb.state_dir()).unwrap().count(), 0, "no state written");
}

#[test]
fn secrets_never_reach_stderr_on_errors() {
    let fake = FakePagerDuty::start(&[Script::Invalid]);
    let sb = sandbox();
    let r = run(&sb, &fake, "sensu/create.json", &["--log-format", "json", "-v"]);
    assert_eq!(r.code, Some(69));
    assert!(!r.stderr.contains(ROUTING_KEY), "{}", r.stderr);
    for line in r.stderr.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        assert_eq!(v["handler"], "pagerduty");
    }
}

#[test]
fn a_storm_of_200_parallel_invocations_pages_each_incident_once() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let base: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    // 200 processes at once: 20 incidents, 10 identical events each, interleaved.
    let mut children: Vec<_> = (0..200)
        .map(|i| {
            let mut cmd = sb.command(&["--api-url", &fake.url]);
            cmd.stdin(std::process::Stdio::piped());
            let child = cmd.spawn().expect("spawn");
            let mut ev = base.clone();
            ev["client"]["name"] = format!("web-{:02}", i % 20).into();
            (child, ev.to_string())
        })
        .collect();
    for (child, input) in &mut children {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    for (child, _) in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    fake.assert_no_violations();
    let mut keys: Vec<String> = fake.events().iter().map(|e| e["dedup_key"].as_str().unwrap().to_string()).collect();
    assert_eq!(keys.len(), 20, "one page per incident, not per event: {keys:?}");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 20, "{keys:?}");
    let dir = sb.state_dir().join("pagerduty");
    let mut records = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).expect("valid state JSON");
            assert_eq!(v["count"], 1, "{}", p.display());
            assert_eq!(v["open"], true);
            assert_eq!(v["claim"], Value::Null, "claims are released");
            records += 1;
        } else {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(name, format!(".locks-{}", crate::util::euid()), "no stray file (temp, corrupt, a lock per key)");
        }
    }
    assert_eq!(records, 20);
    assert!(sb.spooled("pagerduty").is_empty(), "nothing had to be spooled");
}

/// `--explain` says which time the ledger orders an event by, and why when it is not the
/// event's own: a Sensu Go `check.executed` an hour back is the host's clock, bounded.
#[test]
fn explain_says_when_a_host_time_is_bounded_by_the_receipt() {
    let sb = sandbox();
    let t = crate::util::unix_now();
    let r = sb.run(&["--explain"], &crate::util::fixture_at("sensu-go/failing.json", t - 3600));
    assert_eq!(r.code, Some(0), "{r:?}");
    let line = r.stdout.lines().find(|l| l.starts_with("event time: ")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(line.contains("is from the monitored host's clock, more than 60 s before the receipt; ordered as"), "{line}");
    let r = sb.run(&["--explain"], &crate::util::fixture_at("sensu-go/failing.json", t));
    let line = r.stdout.lines().find(|l| l.starts_with("event time: ")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(!line.contains("ordered as"), "a time within seconds of receipt is taken as given: {line}");
}

/// A check that printed megabytes (Sensu Go keeps the whole output unless `max_output_size` is
/// set) still pages: the output is cut, a warning says so, and the incident is the check's.
#[test]
fn a_check_that_printed_megabytes_still_pages() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).unwrap();
    ev["check"]["output"] = format!("CRITICAL: disk full\n{}", "log line\n".repeat(400_000)).into();
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("is larger than 1 MiB: 1 long value(s) (the check output) cut to 16384 characters"), "{}", r.stderr);
    let sent = fake.events();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["event_action"], "trigger");
    assert!(sent[0]["payload"]["summary"].as_str().unwrap_or_default().contains("CRITICAL: disk full"), "{}", sent[0]);
    fake.assert_no_violations();
}

/// A recovery whose answer is lost (PagerDuty acts on it, and answers after the deadline) keeps
/// its incident busy while the failure's next event arrives: that failure queues behind it
/// (exit 75), and the recovery is spooled after it, at its deadline. Flushed in file order, the
/// failure went first, skipped as an identical repeat of the record's open incident, and the
/// recovery after it was superseded by that failure's time: PagerDuty was left resolved, the
/// check failing. The recovery is spooled where its delivery began, ahead of the failure: the
/// flush sends it again, then the failure, and PagerDuty ends open. Found by the chaos soak.
#[test]
fn a_failure_queued_behind_a_recovery_of_unknown_fate_is_flushed_after_it() {
    let fake = FakePagerDuty::start(&[Script::Accept, Script::Late(5000)]);
    let sb = sandbox();
    let now = crate::util::unix_now();
    let api = ["--api-url", fake.url.as_str()];
    let r = sb.run(&api, &crate::util::fixture_at("sensu/create.json", now - 30));
    assert_eq!(r.code, Some(0), "{r:?}");
    let recovery = crate::util::spawn_command(
        sb.command(&["--api-url", &fake.url, "--timeout", "2s"]),
        &crate::util::fixture_at("sensu/resolve.json", now - 20),
    );
    crate::util::wait_until(
        "the recovery to reach PagerDuty",
        std::time::Duration::from_secs(10),
        || (fake.events().len() == 2).then_some(()),
        String::new,
    );
    let failure = sb.run(&["--api-url", &fake.url, "--timeout", "1s"], &crate::util::fixture_at("sensu/create.json", now - 10));
    assert_eq!(failure.code, Some(75), "queued behind the recovery: {failure:?}");
    let recovery = crate::util::finish(recovery);
    assert_eq!(recovery.code, Some(75), "{recovery:?}");
    assert_eq!(sb.spooled("pagerduty").len(), 2);
    let r = sb.run(&["--api-url", &fake.url, "--flush"], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    let actions: Vec<Value> = fake.accepted().iter().map(|e| e["event_action"].clone()).collect();
    assert_eq!(actions, [json!("trigger"), json!("resolve"), json!("resolve"), json!("trigger")], "{}", r.stderr);
    assert_eq!(sb.state("pagerduty", "web-01%2Fcheck_disk.json")["open"], true);
    assert!(sb.spooled("pagerduty").is_empty());
    fake.assert_no_violations();
}

/// A Nagios acknowledgement handled before its problem's notification (the PROBLEM delayed:
/// busy, spooled, or handed over late by another host), with no record of the incident: it is
/// sent (PagerDuty gets an acknowledge even without a record), and its time is noted, so the
/// PROBLEM from before it, arriving next, is superseded instead of opening an incident at
/// PagerDuty that pages the operator who already took the problem. A PROBLEM after the
/// acknowledgement is a new one and triggers. Before, the acknowledgement left no record and
/// the old PROBLEM triggered. Found by the chaos soak (repro_ack_race_any).
#[test]
fn a_problem_arriving_after_its_acknowledgement_is_superseded() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let now = crate::util::unix_now();
    let nagios = |kind: &str, at: i64| crate::util::nagios_at(&sb, &["--api-url", &fake.url], kind, at);
    let r = nagios("ACKNOWLEDGEMENT", now - 10);
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = nagios("PROBLEM", now - 20);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("superseded"), "{}", r.stderr);
    let sent =
        |fake: &FakePagerDuty| fake.events().iter().map(|e| e["event_action"].as_str().unwrap_or("?").to_string()).collect::<Vec<_>>();
    assert_eq!(sent(&fake), ["acknowledge"], "{}", r.stderr);
    let r = nagios("PROBLEM", now);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(sent(&fake), ["acknowledge", "trigger"], "{}", r.stderr);
    fake.assert_no_violations();
}
