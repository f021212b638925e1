//! Events as real monitoring servers send them, read against those servers' own sources and
//! docs: each test names where its event's shape comes from.

use serde_json::json;

use crate::util::{ROUTING_KEY, Sandbox};

const BIN: &str = env!("CARGO_BIN_EXE_handler-pagerduty");

fn sandbox() -> Sandbox {
    let sb = Sandbox::new(BIN);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
    sb
}

/// Sensu 1.x does not validate a check's `occurrences` and `refresh` (sensu-settings checks
/// `interval` only for scheduled checks), and sensu-plugin's `filter_repeated` reads all three
/// with Ruby's `to_i` (sensu-plugins/sensu-plugin lib/sensu-handler.rb), so a check definition
/// written by a template (`"occurrences": "{{ n }}"`) with strings worked with the Ruby
/// handler. Its events must page (and be thinned by those numbers), not exit 65.
#[test]
fn sensu1_check_attributes_given_as_strings_are_read_as_the_ruby_handler_read_them() {
    let sb = sandbox();
    let event = |occurrences: u64| {
        json!({
            "id": "3b5f0d6e-1d2a-4b7c-9a55-0c6d8f1e2a10", "action": "create", "timestamp": 1460172826,
            "occurrences": occurrences, "silenced": false,
            "client": {"name": "web-01", "address": "10.0.0.1", "subscriptions": ["production"]},
            "check": {"name": "check_disk", "command": "check-disk-usage.rb", "interval": "60",
                "occurrences": "2", "refresh": "1800", "executed": 1460172826, "status": 2,
                "output": "DISK CRITICAL\n", "history": ["0", "2"]}
        })
        .to_string()
    };
    let r = sb.run(&["--dry-run"], event(1).as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("not enough occurrences (1 of 2)"), "{}", r.stderr);
    let r = sb.run(&["--dry-run"], event(2).as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("would have triggered web-01/check_disk"), "{}", r.stderr);
    // refresh 1800 / interval 60: every 30th occurrence past the second.
    let r = sb.run(&["--dry-run"], event(3).as_bytes());
    assert!(r.stderr.contains("only handling every 30 occurrences"), "{}", r.stderr);
}

/// Mackerel posts a webhook for each status change of one alert, every one with the alert's
/// `createdAt` (when it opened) and `statusChangedAt` (the status change it reports;
/// `closedAt` once closed: Mackerel "Webhook notifications", mackerel.io/docs/entry/howto/alerts/webhook).
/// Ordered by `createdAt`, every webhook of the alert had the same time, so a `critical`
/// handed over after the alert's `ok` (two POSTs run by the receiver in parallel, one retried)
/// reopened the incident of a closed alert, which nothing then resolved. By the time of the
/// change it reports, it is superseded.
#[test]
fn mackerel_webhooks_of_one_alert_are_ordered_by_their_status_change() {
    let fake = crate::fake::pagerduty::FakePagerDuty::start(&[]);
    let sb = sandbox();
    let now = crate::util::unix_now();
    let base: serde_json::Value = serde_json::from_slice(&crate::util::read_fixture("mackerel/check-alert.json")).unwrap();
    let webhook = |status: &str, changed: i64, open: bool| {
        let mut w = base.clone();
        w["alert"]["openedAt"] = json!(now - 300);
        w["alert"]["createdAt"] = json!((now - 300) * 1000 + 123);
        w["alert"]["status"] = json!(status);
        w["alert"]["statusChangedAt"] = json!(changed);
        w["alert"]["isOpen"] = json!(open);
        w["alert"]["closedAt"] = if open { json!(null) } else { json!(changed) };
        w.to_string()
    };
    let run = |body: String| {
        let r = sb.run(&["--api-url", fake.url.as_str()], body.as_bytes());
        assert_eq!(r.code, Some(0), "{r:?}");
        r
    };
    run(webhook("warning", now - 300, true));
    run(webhook("ok", now - 100, false));
    let late = run(webhook("critical", now - 200, true));
    assert!(late.stderr.contains("superseded"), "{}", late.stderr);
    fake.assert_no_violations();
    let actions: Vec<String> = fake.events().iter().map(|e| e["event_action"].as_str().unwrap().to_string()).collect();
    assert_eq!(actions, ["trigger", "resolve"]);
}

/// A Zabbix trigger in "PROBLEM event generation mode: Multiple" (a log item: one problem per
/// matching line; trigger object `type` 1) has several problems open at once, each with its
/// own `{EVENT.ID}`, escalation and recovery ("OK event closes: All problems if tag values
/// match" closes one of them). By `{TRIGGER.ID}-{HOST.NAME}` they are one incident: the second
/// problem is a repeat, and the first one's recovery resolves the incident while the second is
/// still open. Keyed by the problem's `{EVENT.ID}` — which a recovery and an update message
/// carry too ("Original problem ID: {EVENT.ID}" in Zabbix's own PagerDuty media type,
/// templates/media/pagerduty, whose `dedup_key` it is) — through the `incident_key:` line
/// conf.d/zabbix-pagerduty.md gives for such triggers, each problem is its own incident.
#[test]
fn zabbix_problems_of_one_trigger_keyed_by_their_event_id_stay_apart() {
    let fake = crate::fake::pagerduty::FakePagerDuty::start(&[]);
    let sb = sandbox();
    let message = |event: &str, recovery: bool| {
        format!(
            "id:23502\nstatus:{}\nhostname:web-01\nip:10.0.0.5\nvalue:{}\nevent_id:{event}\nincident_key:{event}-web-01\n\
             severity:High\nnseverity:4\nurl:https://zabbix.example.com/tr_events.php?triggerid=23502&eventid={event}\n\
             name:Login failure on web-01\nitem_value:sshd: failed password for {}\n",
            if recovery { "OK" } else { "PROBLEM" },
            if recovery { "0" } else { "1" },
            if event == "81232" { "alice" } else { "bob" },
        )
    };
    let run = |subject: &str, message: String| {
        let r = sb.run(&["--api-url", fake.url.as_str(), "--from", "zabbix", "pagerduty", subject, &message], b"");
        assert_eq!(r.code, Some(0), "{r:?}");
    };
    run("trigger", message("81232", false));
    run("trigger", message("81240", false));
    run("resolve", message("81232", true));
    fake.assert_no_violations();
    let got: Vec<(String, String)> = fake
        .events()
        .iter()
        .map(|e| (e["event_action"].as_str().unwrap().to_string(), e["dedup_key"].as_str().unwrap().to_string()))
        .collect();
    let want = [("trigger", "81232-web-01"), ("trigger", "81240-web-01"), ("resolve", "81232-web-01")];
    assert_eq!(got, want.map(|(a, k)| (a.to_string(), k.to_string())));
}

/// A Sensu 1.x site moving from the Ruby `handler-pagerduty.rb` keeps its `/etc/sensu/conf.d`,
/// which pagerpipe reads. The Ruby handler keyed an incident `incident_key_prefix` +
/// `{source or client}/{check}` (sensu-plugins-pagerduty bin/handler-pagerduty.rb): with a
/// prefix set, pagerpipe's `{entity}/{check}` named other incidents, so the recoveries of those
/// the Ruby handler had opened never resolved them, and their next failures opened duplicates.
#[test]
fn the_ruby_handlers_incident_key_prefix_keys_as_it_did() {
    let sb = Sandbox::new(BIN);
    sb.config("pagerduty.json", &json!({"pagerduty": {"api_key": ROUTING_KEY, "incident_key_prefix": "sensu-{dc1}-"}}));
    let r = sb.run(&["--dry-run"], &crate::util::read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("(dedup_key sensu-{dc1}-web-01/check_disk)"), "{}", r.stderr);
    assert!(!r.stderr.contains("incident_key_prefix` (in"), "no longer ignored: {}", r.stderr);
    // An explicit dedup_key_template is the operator's word over it.
    sb.config("zz.json", &json!({"pagerduty": {"dedup_key_template": "{check}@{entity}"}}));
    let r = sb.run(&["--dry-run"], &crate::util::read_fixture("sensu/create.json"));
    assert!(r.stderr.contains("(dedup_key check_disk@web-01)"), "{}", r.stderr);
}
