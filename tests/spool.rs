//! The spool end to end: the service is down, the event is spooled (exit 75), the service comes
//! back on the same port, and `--flush` or the next invocation delivers — in order, once.

use serde_json::{Value, json};

use crate::fake::pagerduty::{FakePagerDuty, Script};
use crate::fake::reactio::{self, FakeReactio};
use crate::util::{ROUTING_KEY, Run, Sandbox, read_fixture, run_command};

const PD: &str = env!("CARGO_BIN_EXE_handler-pagerduty");
const REACTIO: &str = env!("CARGO_BIN_EXE_handler-reactio");

/// A loopback port with nothing listening (the OS picked it free; we let it go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn pd_sandbox() -> Sandbox {
    let sb = Sandbox::new(PD);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
    sb
}

fn event_for(entity: &str, fixture: &str) -> Vec<u8> {
    let mut ev: Value = serde_json::from_slice(&read_fixture(fixture)).unwrap();
    ev["client"]["name"] = json!(entity);
    serde_json::to_vec(&ev).unwrap()
}

/// Run with `--api-url` on `port` and `--timeout 1s` unless `extra` sets one.
fn run_at(sb: &Sandbox, port: u16, stdin: &[u8], extra: &[&str]) -> Run {
    let url = format!("http://127.0.0.1:{port}");
    let mut args = vec!["--api-url", url.as_str()];
    if !extra.contains(&"--timeout") {
        args.extend(["--timeout", "1s"]);
    }
    args.extend_from_slice(extra);
    sb.run(&args, stdin)
}

fn flush(sb: &Sandbox, extra: &[&str]) -> Run {
    let mut args = vec!["--flush", "--timeout", "5s"];
    args.extend_from_slice(extra);
    sb.run(&args, b"")
}

fn entry(sb: &Sandbox, handler: &str, name: &str, failed: bool) -> Value {
    let dir = sb.spool_dir().join(handler);
    let p = if failed { dir.join("failed").join(name) } else { dir.join(name) };
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn failed(sb: &Sandbox, handler: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(sb.spool_dir().join(handler).join("failed"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn api_down_spools_then_flush_delivers_trigger_before_resolve() {
    let port = closed_port();
    let sb = pd_sandbox();
    let r = run_at(&sb, port, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("spooled as"), "{}", r.stderr);
    let queued = sb.spooled("pagerduty");
    assert_eq!(queued.len(), 1);
    assert!(!queued[0].contains("web-01") && !queued[0].contains(ROUTING_KEY), "entry name leaks: {}", queued[0]);
    let e = entry(&sb, "pagerduty", &queued[0], false);
    assert_eq!((e["incident_key"].as_str(), e["action"].as_str()), (Some("web-01/check_disk"), Some("trigger")));
    assert_eq!(e["request"]["body"]["json"]["routing_key"], ROUTING_KEY, "the fully built request is kept");

    // Still down: the resolve must queue behind its trigger, not overtake it.
    let r = run_at(&sb, port, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("pagerduty").len(), 2, "{}", r.stderr);

    // Back up on the same address.
    let fake = FakePagerDuty::start_on(port, &[]);
    let r = flush(&sb, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("2 delivered, 0 moved to failed/, 0 still queued"), "{}", r.stderr);
    assert!(!r.stderr.contains(ROUTING_KEY), "{}", r.stderr);
    let actions: Vec<_> = fake.events().iter().map(|e| (e["event_action"].clone(), e["dedup_key"].clone())).collect();
    assert_eq!(actions, [(json!("trigger"), json!("web-01/check_disk")), (json!("resolve"), json!("web-01/check_disk"))]);
    assert!(sb.spooled("pagerduty").is_empty());
    fake.assert_no_violations();

    // Nothing left: a second flush sends nothing.
    let r = flush(&sb, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 2);
}

#[test]
fn a_repeat_of_a_spooled_trigger_is_not_queued_twice() {
    let port = closed_port();
    let sb = pd_sandbox();
    assert_eq!(run_at(&sb, port, &read_fixture("sensu/create.json"), &[]).code, Some(75));
    let r = run_at(&sb, port, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert_eq!(sb.spooled("pagerduty").len(), 1);
}

#[test]
fn the_next_invocation_delivers_older_entries_first() {
    let port = closed_port();
    let sb = pd_sandbox();
    assert_eq!(run_at(&sb, port, &event_for("db-01", "sensu/create.json"), &[]).code, Some(75));
    let fake = FakePagerDuty::start_on(port, &[]);
    let r = run_at(&sb, port, &event_for("web-07", "sensu/create.json"), &["--timeout", "5s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let keys: Vec<_> = fake.events().iter().map(|e| e["dedup_key"].as_str().unwrap().to_string()).collect();
    assert_eq!(keys, ["db-01/check_disk", "web-07/check_disk"]);
    assert!(sb.spooled("pagerduty").is_empty());
    fake.assert_no_violations();
}

#[test]
fn refused_during_flush_moves_to_failed_with_the_reason() {
    let port = closed_port();
    let sb = pd_sandbox();
    assert_eq!(run_at(&sb, port, &read_fixture("sensu/create.json"), &[]).code, Some(75));
    let fake = FakePagerDuty::start_on(port, &[Script::Invalid]);
    let r = flush(&sb, &[]);
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("1 moved to failed/"), "{}", r.stderr);
    assert!(sb.spooled("pagerduty").is_empty());
    let failed = failed(&sb, "pagerduty");
    assert_eq!(failed.len(), 1);
    let e = entry(&sb, "pagerduty", &failed[0], true);
    assert!(e["failure"].as_str().unwrap().contains("HTTP 400"), "{e}");
    assert_eq!(fake.events().len(), 1, "a 400 is not retried");
}

#[test]
fn entries_older_than_spool_max_age_are_given_up_loudly() {
    let port = closed_port();
    let sb = pd_sandbox();
    let mut cmd = sb.command(&["--api-url", &format!("http://127.0.0.1:{port}"), "--timeout", "1s"]);
    cmd.env("PAGERPIPE_NOW", "1700000000");
    assert_eq!(run_command(cmd, &read_fixture("sensu/create.json")).code, Some(75));
    let fake = FakePagerDuty::start_on(port, &[]);
    let mut cmd = sb.command(&["--flush"]);
    cmd.env("PAGERPIPE_NOW", (1_700_000_000 + 25 * 3600).to_string());
    let r = run_command(cmd, b"");
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("spool_max_age (1day)"), "{}", r.stderr);
    assert!(fake.events().is_empty(), "an expired entry is not sent");
    assert_eq!(failed(&sb, "pagerduty").len(), 1);
}

#[test]
fn two_flushes_at_once_deliver_each_entry_once() {
    let port = closed_port();
    let sb = pd_sandbox();
    for i in 0..6 {
        assert_eq!(run_at(&sb, port, &event_for(&format!("host-{i}"), "sensu/create.json"), &[]).code, Some(75));
    }
    assert_eq!(sb.spooled("pagerduty").len(), 6);
    let fake = FakePagerDuty::start_on(port, &[Script::Slow; 6]);
    let a = sb.command(&["--flush", "--timeout", "10s"]).spawn().unwrap();
    let b = sb.command(&["--flush", "--timeout", "10s"]).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!((a.status.code(), b.status.code()), (Some(0), Some(0)), "{a:?} {b:?}");
    let mut keys: Vec<_> = fake.events().iter().map(|e| e["dedup_key"].as_str().unwrap().to_string()).collect();
    assert_eq!(keys.len(), 6, "each entry delivered exactly once: {keys:?}");
    keys.dedup();
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert!(sb.spooled("pagerduty").is_empty());
}

#[test]
fn unwritable_spool_prints_the_whole_event_to_stderr() {
    let port = closed_port();
    let sb = pd_sandbox();
    let not_a_dir = sb.dir.path().join("spool-is-a-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let mut cmd = std::process::Command::new(PD);
    cmd.env_clear()
        .args(["--config", sb.conf_dir().to_str().unwrap(), "--state-dir", sb.state_dir().to_str().unwrap()])
        .args(["--spool-dir", not_a_dir.to_str().unwrap()])
        .args(["--api-url", &format!("http://127.0.0.1:{port}"), "--timeout", "1s"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let r = run_command(cmd, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    let fixture: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    let line = r.stderr.lines().find(|l| l.contains("undelivered event, not spooled")).unwrap_or_else(|| panic!("{}", r.stderr));
    let printed: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    assert_eq!(printed, fixture, "the event, in full");
}

#[test]
fn reactio_recovery_waits_for_the_id_of_a_spooled_create() {
    let port = closed_port();
    let sb = Sandbox::new(REACTIO);
    sb.config("reactio.json", &json!({"reactio": {"api_key": reactio::API_KEY, "organization": "example"}}));
    let url = format!("http://127.0.0.1:{port}");
    let run = |fixture: &str| sb.run(&["--api-url", &url, "--timeout", "1s"], &read_fixture(fixture));
    let r = run("sensu/create.json");
    assert_eq!(r.code, Some(75), "{r:?}");
    let r = run("sensu/resolve.json");
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("waits for its id"), "{}", r.stderr);
    assert_eq!(sb.spooled("reactio").len(), 2);

    let fake = FakeReactio::start_on(port, &[]);
    let r = flush(&sb, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let calls = fake.calls();
    assert_eq!(calls.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["/api/v1/incidents", "/api/v1/messages"]);
    let id = fake.incidents()[0]["id"].clone();
    assert!(id.as_u64().is_some(), "{id}");
    assert_eq!(calls[1].body["incident_id"], id, "the recovery went to the incident the create opened");
    fake.assert_no_violations();
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["refs"]["incident_id"], id);
}

