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
