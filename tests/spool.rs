//! The spool end to end: the service is down, the event is spooled (exit 75), the service is up
//! again, and `--flush` or the next invocation delivers — in order, once, to the URL the
//! settings name at that time, with the credentials in force then (an entry holds neither).

use serde_json::{Value, json};

use crate::fake::pagerduty::{FakePagerDuty, Script};
use crate::fake::reactio::{self, FakeReactio};
use crate::util::{REFUSED_URL, ROUTING_KEY, Run, Sandbox, fixture_at, pagerduty_sandbox, read_fixture, run_command, unix_now};

const PD: &str = env!("CARGO_BIN_EXE_handler-pagerduty");
const REACTIO: &str = env!("CARGO_BIN_EXE_handler-reactio");

fn event_for(entity: &str, fixture: &str) -> Vec<u8> {
    let mut ev: Value = serde_json::from_slice(&read_fixture(fixture)).unwrap();
    ev["client"]["name"] = json!(entity);
    serde_json::to_vec(&ev).unwrap()
}

/// Run with `--api-url url` and `--timeout 1s` unless `extra` sets one.
fn run_at(sb: &Sandbox, url: &str, stdin: &[u8], extra: &[&str]) -> Run {
    let mut args = vec!["--api-url", url];
    if !extra.contains(&"--timeout") {
        args.extend(["--timeout", "1s"]);
    }
    args.extend_from_slice(extra);
    sb.run(&args, stdin)
}

/// `--flush` against the service at `url`.
fn flush(sb: &Sandbox, url: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--flush", "--timeout", "5s", "--api-url", url];
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
    let sb = pagerduty_sandbox();
    let r = run_at(&sb, REFUSED_URL, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("spooled as"), "{}", r.stderr);
    let queued = sb.spooled("pagerduty");
    assert_eq!(queued.len(), 1);
    assert!(!queued[0].contains("web-01") && !queued[0].contains(ROUTING_KEY), "entry name leaks: {}", queued[0]);
    let e = entry(&sb, "pagerduty", &queued[0], false);
    assert_eq!((e["incident_key"].as_str(), e["action"].as_str()), (Some("web-01/check_disk"), Some("trigger")));
    assert_eq!(e["payload"]["dedup_key"], "web-01/check_disk");
    let text = std::fs::read_to_string(sb.spool_dir().join("pagerduty").join(&queued[0])).unwrap();
    assert!(!text.contains(ROUTING_KEY) && !text.contains("127.0.0.1"), "no credential and no URL at rest: {text}");

    // Still down: the resolve must queue behind its trigger, not overtake it.
    let r = run_at(&sb, REFUSED_URL, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("pagerduty").len(), 2, "{}", r.stderr);

    // Up again, at another address (api_url fixed): the flush sends where the settings say now.
    let fake = FakePagerDuty::start(&[]);
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("2 delivered, 0 moved to failed/, 0 still queued"), "{}", r.stderr);
    assert!(!r.stderr.contains(ROUTING_KEY), "{}", r.stderr);
    let actions: Vec<_> = fake.events().iter().map(|e| (e["event_action"].clone(), e["dedup_key"].clone())).collect();
    assert_eq!(actions, [(json!("trigger"), json!("web-01/check_disk")), (json!("resolve"), json!("web-01/check_disk"))]);
    assert!(sb.spooled("pagerduty").is_empty());
    fake.assert_no_violations();

    assert!(fake.events().iter().all(|e| e["routing_key"] == ROUTING_KEY), "the key in force at flush time");
    // The ledger knows the incident is closed now.
    assert_eq!(sb.state("pagerduty", "web-01%2Fcheck_disk.json")["open"], false);

    // Nothing left: a second flush sends nothing.
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 2);
}

/// An `api_url` that names no Events API endpoint (a typo, a relay's wrong path) is answered
/// 404 by PagerDuty's front, which is no answer of the Events API (202, 400, 429, 5xx): the
/// page is kept for the flush after the fix (exit 78), not dropped as refused (exit 69).
#[test]
fn a_404_from_a_wrong_api_url_keeps_the_page_for_the_fix() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let wrong = format!("{}/relay", fake.url);
    let r = run_at(&sb, &wrong, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("HTTP 404") && r.stderr.contains("check api_url"), "{}", r.stderr);
    assert_eq!(sb.spooled("pagerduty").len(), 1, "{}", r.stderr);
    // Still wrong: kept, once more 78 (waiting does not bring it out), naming what to fix.
    let r = flush(&sb, &wrong, &[]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("check api_url") && r.stderr.contains("the entry is kept"), "{}", r.stderr);
    assert_eq!(sb.spooled("pagerduty").len(), 1, "{}", r.stderr);
    assert!(failed(&sb, "pagerduty").is_empty());
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let actions: Vec<_> = fake.events().iter().map(|e| e["event_action"].clone()).collect();
    assert_eq!(actions, [json!("trigger")]);
    assert!(sb.spooled("pagerduty").is_empty());
    assert_eq!(fake.violations(), ["unexpected POST /relay/v2/enqueue"; 2]);
}

/// A 401 is no answer of PagerDuty's Events API (its routing key is refused with a 400): it is
/// something in front of it (an authenticating relay at a wrong `api_url`, a proxy), which the
/// live event keeps for the fix (78). The flush keeps it too, also when the page carries its
/// own routing key (a Zabbix `{ALERT.SENDTO}`): no key of the page's was refused, so it is not
/// moved to `failed/` as if it had been (69, the page lost).
#[test]
fn a_401_in_front_of_pagerduty_keeps_a_page_with_its_own_routing_key_at_the_flush_too() {
    use crate::fake::{Received, Reply, Server};
    let sb = pagerduty_sandbox();
    let gate = Server::start(|_r: &Received| Reply::Raw(401, "text/html", Vec::new(), "<html>401 Authorization Required</html>".into()));
    let zabbix = "name:Disk full on db-02\nid:4711\nstatus:PROBLEM\nhostname:db-02\nvalue:1\nevent_id:99\nseverity:High\n";
    let r = run_at(&sb, &gate.url, b"", &["--from", "zabbix", "Z4bb1xOwnR0ut1ngKey00000000000ab", "PROBLEM", zabbix]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert_eq!(sb.spooled("pagerduty").len(), 1, "{}", r.stderr);
    // Still in front of it: kept, as the live event's line said.
    let r = flush(&sb, &gate.url, &[]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert_eq!((sb.spooled("pagerduty").len(), failed(&sb, "pagerduty").len()), (1, 0), "{}", r.stderr);
    // Fixed: delivered.
    let fake = FakePagerDuty::start(&[]);
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let sent: Vec<_> = fake.accepted().iter().map(|e| (e["routing_key"].clone(), e["dedup_key"].clone())).collect();
    assert_eq!(sent, [(json!("Z4bb1xOwnR0ut1ngKey00000000000ab"), json!("4711-db-02"))], "{}", r.stderr);
    fake.assert_no_violations();
}

/// A content filter in front of PagerDuty that blocks one request for what a monitored host
/// wrote in it (its own 403 page, no Events API answer) holds back that incident's page alone:
/// the flush goes on with the others. (Before, it stopped the flush: one host's check output
/// held back every page queued after it, flush after flush.)
#[test]
fn a_filter_blocking_one_spooled_page_holds_back_only_its_incident() {
    use crate::fake::{Received, Reply, Server};
    use std::sync::{Arc, Mutex};
    let sb = pagerduty_sandbox();
    let mut evil: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    evil["check"]["output"] = json!("DISK CRITICAL <script>BLOCKME</script>");
    let r = run_at(&sb, REFUSED_URL, evil.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    let r = run_at(&sb, REFUSED_URL, &event_for("db-01", "sensu/create.json"), &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&accepted);
    let filter = Server::start(move |r: &Received| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        if String::from_utf8_lossy(&r.body).contains("BLOCKME") {
            return Reply::Raw(403, "text/html", Vec::new(), "<html><body>Blocked by policy</body></html>".into());
        }
        seen.lock().unwrap().push(body["dedup_key"].clone());
        Reply::Json(202, json!({"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]}))
    });
    let r = flush(&sb, &filter.url, &[]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("1 delivered, 0 moved to failed/, 1 still queued"), "{}", r.stderr);
    assert_eq!(*accepted.lock().unwrap(), [json!("db-01/check_disk")]);
    assert_eq!(sb.spooled("pagerduty").len(), 1);
}

#[test]
fn a_repeat_of_a_spooled_trigger_is_not_queued_twice() {
    let sb = pagerduty_sandbox();
    // One check result handed over twice.
    let event = fixture_at("sensu/create.json", unix_now());
    assert_eq!(run_at(&sb, REFUSED_URL, &event, &[]).code, Some(75));
    let r = run_at(&sb, REFUSED_URL, &event, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert_eq!(sb.spooled("pagerduty").len(), 1);
}

#[test]
fn the_next_invocation_delivers_older_entries_first() {
    let sb = pagerduty_sandbox();
    assert_eq!(run_at(&sb, REFUSED_URL, &event_for("db-01", "sensu/create.json"), &[]).code, Some(75));
    let fake = FakePagerDuty::start(&[]);
    let r = run_at(&sb, &fake.url, &event_for("web-07", "sensu/create.json"), &["--timeout", "5s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let keys: Vec<_> = fake.events().iter().map(|e| e["dedup_key"].as_str().unwrap().to_string()).collect();
    assert_eq!(keys, ["db-01/check_disk", "web-07/check_disk"]);
    assert!(sb.spooled("pagerduty").is_empty());
    fake.assert_no_violations();
}

#[test]
fn refused_during_flush_moves_to_failed_with_the_reason() {
    let sb = pagerduty_sandbox();
    assert_eq!(run_at(&sb, REFUSED_URL, &read_fixture("sensu/create.json"), &[]).code, Some(75));
    let fake = FakePagerDuty::start(&[Script::Invalid]);
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("1 moved to failed/"), "{}", r.stderr);
    assert!(sb.spooled("pagerduty").is_empty());
    let failed = failed(&sb, "pagerduty");
    assert_eq!(failed.len(), 1);
    let e = entry(&sb, "pagerduty", &failed[0], true);
    assert!(e["failure"].as_str().unwrap().contains("HTTP 400"), "{e}");
    assert_eq!(fake.events().len(), 1, "a 400 is not retried");
}

/// A flush on a full disk (`ulimit -f 0`: no byte can be written) of an entry the service
/// refuses for good: the entry still leaves the queue for `failed/` (a rename needs no room),
/// the log line says why it was refused, and the next flush does not send it again. Before,
/// the copy with the reason could not be written, the entry stayed queued while the summary
/// said "1 moved to failed/" of an empty `failed/`, the refusal's reason was logged nowhere,
/// and every flush (the packaged timer: every minute) sent the refused request again.
#[test]
fn a_refused_entry_flushed_on_a_full_disk_still_leaves_the_queue_with_its_reason_logged() {
    let sb = pagerduty_sandbox();
    assert_eq!(run_at(&sb, REFUSED_URL, &read_fixture("sensu/create.json"), &[]).code, Some(75));
    let fake = FakePagerDuty::start(&[Script::Invalid]);
    let r = run_command(crate::util::on_a_full_disk(&sb.command(&["--flush", "--timeout", "5s", "--api-url", &fake.url])), b"");
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("HTTP 400"), "the reason is in the log:\n{}", r.stderr);
    assert!(r.stderr.contains("1 moved to failed/"), "{}", r.stderr);
    assert!(sb.spooled("pagerduty").is_empty(), "{}", r.stderr);
    assert_eq!(failed(&sb, "pagerduty").len(), 1, "{}", r.stderr);
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1, "a 400 is not sent again");
}

/// A refused entry that cannot reach `failed/` at all (a file stands where the directory
/// should be): the summary counts it as still queued, not as moved, and the error line says why
/// it was refused.
#[test]
fn a_refused_entry_that_cannot_reach_failed_is_counted_as_still_queued() {
    let sb = pagerduty_sandbox();
    assert_eq!(run_at(&sb, REFUSED_URL, &read_fixture("sensu/create.json"), &[]).code, Some(75));
    std::fs::write(sb.spool_dir().join("pagerduty").join("failed"), b"not a directory").unwrap();
    let fake = FakePagerDuty::start(&[Script::Invalid]);
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("0 moved to failed/, 1 still queued"), "{}", r.stderr);
    assert!(r.stderr.contains("HTTP 400") && r.stderr.contains("cannot be moved to failed/"), "{}", r.stderr);
    assert_eq!(sb.spooled("pagerduty").len(), 1);
}

/// A refused trigger that cannot reach `failed/` stays the head of its incident's log: the
/// resolve queued behind it waits too. Before, it was delivered past the trigger (per-incident
/// order broken: PagerDuty got a resolve of an incident it never opened, and the trigger kept
/// going out after it at every flush).
#[test]
fn a_refused_entry_that_cannot_reach_failed_holds_back_its_incidents_later_entries() {
    let sb = pagerduty_sandbox();
    assert_eq!(run_at(&sb, REFUSED_URL, &read_fixture("sensu/create.json"), &[]).code, Some(75));
    assert_eq!(run_at(&sb, REFUSED_URL, &read_fixture("sensu/resolve.json"), &[]).code, Some(75));
    assert_eq!(sb.spooled("pagerduty").len(), 2);
    std::fs::write(sb.spool_dir().join("pagerduty").join("failed"), b"not a directory").unwrap();
    let fake = FakePagerDuty::start(&[Script::Invalid]);
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("0 delivered, 0 moved to failed/, 2 still queued"), "{}", r.stderr);
    let actions: Vec<_> = fake.events().iter().map(|e| e["event_action"].clone()).collect();
    assert_eq!(actions, [json!("trigger")], "the resolve waits behind its refused trigger: {}", r.stderr);
    assert_eq!(sb.spooled("pagerduty").len(), 2);
}

#[test]
fn entries_older_than_spool_max_age_are_given_up_loudly() {
    let sb = pagerduty_sandbox();
    let mut cmd = sb.command(&["--api-url", REFUSED_URL, "--timeout", "1s"]);
    cmd.env("PAGERPIPE_NOW", "1700000000");
    assert_eq!(run_command(cmd, &read_fixture("sensu/create.json")).code, Some(75));
    let fake = FakePagerDuty::start(&[]);
    let mut cmd = sb.command(&["--flush", "--api-url", &fake.url]);
    cmd.env("PAGERPIPE_NOW", (1_700_000_000 + 25 * 3600).to_string());
    let r = run_command(cmd, b"");
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("spool_max_age (1day)"), "{}", r.stderr);
    // One error line, naming where the entry went.
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("spool_max_age")).collect();
    assert!(lines.len() == 1 && lines[0].contains("error:") && lines[0].contains("moved to "), "{}", r.stderr);
    assert!(fake.events().is_empty(), "an expired entry is not sent");
    assert_eq!(failed(&sb, "pagerduty").len(), 1);
}

#[test]
fn two_flushes_at_once_deliver_each_entry_once() {
    let sb = pagerduty_sandbox();
    for i in 0..6 {
        assert_eq!(run_at(&sb, REFUSED_URL, &event_for(&format!("host-{i}"), "sensu/create.json"), &[]).code, Some(75));
    }
    assert_eq!(sb.spooled("pagerduty").len(), 6);
    let fake = FakePagerDuty::start(&[Script::Slow; 6]);
    let a = sb.command(&["--flush", "--timeout", "10s", "--api-url", &fake.url]).spawn().unwrap();
    let b = sb.command(&["--flush", "--timeout", "10s", "--api-url", &fake.url]).spawn().unwrap();
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
    let sb = pagerduty_sandbox();
    let not_a_dir = sb.dir.path().join("spool-is-a-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let mut cmd = std::process::Command::new(PD);
    cmd.env_clear()
        .args(["--config", sb.conf_dir().to_str().unwrap(), "--state-dir", sb.state_dir().to_str().unwrap()])
        .args(["--spool-dir", not_a_dir.to_str().unwrap()])
        .args(["--api-url", REFUSED_URL, "--timeout", "1s"])
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

/// A Zabbix problem (read from the alert script's arguments, not from JSON on stdin) while the
/// service is down and the disk is full: the line that keeps the event names what the page
/// needs, not only the host, the trigger and the value. Before, it printed
/// `{"check":…,"entity":"web-01","output":"0","status":2}`: no incident key (the trigger id),
/// severity or link back to Zabbix.
#[test]
fn a_zabbix_problem_that_cannot_be_spooled_is_printed_with_its_key_severity_and_url() {
    let sb = pagerduty_sandbox();
    let message = String::from_utf8(read_fixture("zabbix/problem-high.txt")).unwrap();
    let cmd = sb.command(&["--api-url", REFUSED_URL, "--timeout", "1s", "--from", "zabbix", "", "PROBLEM", &message]);
    let r = run_command(crate::util::on_a_full_disk(&cmd), b"");
    assert_eq!(r.code, Some(75), "{r:?}");
    let line = r.stderr.lines().find(|l| l.contains("undelivered event, not spooled")).unwrap_or_else(|| panic!("{}", r.stderr));
    let printed: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    assert_eq!(printed["format"], json!("Zabbix"), "{line}");
    assert_eq!(printed["entity"], json!("web-01"), "{line}");
    assert_eq!(printed["incident_key"], json!("23504-web-01"), "{line}");
    assert_eq!(printed["zabbix_severity"], json!("high"), "{line}");
    assert_eq!(printed["url"], json!("https://zabbix.example.com/tr_events.php?triggerid=23504&eventid=81234"), "{line}");
    assert!(sb.spooled("pagerduty").is_empty());
}

/// The service is down; a failure is spooled; then /var fills up and the recovery can be
/// neither delivered nor spooled (it is printed, exit 75). The spooled failure must not reach
/// the service later on its own: before, the next flush delivered it once the service was
/// back, and PagerDuty had an incident open for a problem long gone that nothing would ever
/// resolve. It moves to `failed/` as superseded (a rename, which needs no room), logged.
#[test]
fn a_recovery_that_cannot_be_spooled_keeps_its_spooled_failure_from_opening_the_incident_later() {
    let sb = pagerduty_sandbox();
    let now = unix_now();
    let r = run_at(&sb, REFUSED_URL, &fixture_at("sensu/create.json", now - 30), &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("pagerduty").len(), 1);
    let cmd = sb.command(&["--api-url", REFUSED_URL, "--timeout", "1s"]);
    let r = run_command(crate::util::on_a_full_disk(&cmd), &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("undelivered event, not spooled"), "{}", r.stderr);
    assert!(r.stderr.contains("superseded by this recovery"), "{}", r.stderr);
    assert!(sb.spooled("pagerduty").is_empty(), "{}", r.stderr);
    assert_eq!(failed(&sb, "pagerduty").len(), 1, "{}", r.stderr);
    let fake = FakePagerDuty::start(&[]);
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(fake.events().is_empty(), "the failure went out after its recovery: {:?}", fake.events());
}

/// The same, but the spooled request is a later failure than the recovery on the full disk
/// (the events reached the handler out of order): it stays queued and goes out.
#[test]
fn a_recovery_that_cannot_be_spooled_leaves_a_later_spooled_failure_queued() {
    let sb = pagerduty_sandbox();
    let now = unix_now();
    assert_eq!(run_at(&sb, REFUSED_URL, &fixture_at("sensu/create.json", now - 10), &[]).code, Some(75));
    let cmd = sb.command(&["--api-url", REFUSED_URL, "--timeout", "1s"]);
    let r = run_command(crate::util::on_a_full_disk(&cmd), &fixture_at("sensu/resolve.json", now - 30));
    assert_eq!(sb.spooled("pagerduty").len(), 1, "{}", r.stderr);
    let fake = FakePagerDuty::start(&[]);
    assert_eq!(flush(&sb, &fake.url, &[]).code, Some(0));
    assert_eq!(fake.events().len(), 1);
}

#[test]
fn reactio_recovery_waits_for_the_id_of_a_spooled_create() {
    let sb = Sandbox::new(REACTIO);
    sb.config("reactio.json", &json!({"reactio": {"api_key": reactio::API_KEY, "organization": "example"}}));
    let run = |fixture: &str| sb.run(&["--api-url", REFUSED_URL, "--timeout", "1s"], &read_fixture(fixture));
    let r = run("sensu/create.json");
    assert_eq!(r.code, Some(75), "{r:?}");
    let r = run("sensu/resolve.json");
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("the recovery is decided when it is flushed"), "{}", r.stderr);
    assert_eq!(sb.spooled("reactio").len(), 2);

    let fake = FakeReactio::start(&[]);
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let calls = fake.calls();
    assert_eq!(calls.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["/api/v1/incidents", "/api/v1/messages"]);
    let id = fake.incidents()[0]["id"].clone();
    assert!(id.as_u64().is_some(), "{id}");
    assert_eq!(calls[1].body["incident_id"], id, "the recovery went to the incident the create opened");
    fake.assert_no_violations();
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["refs"]["incident_id"], id);
}

/// The same on a full disk at flush time: neither the ledger nor the queued recovery can take
/// the incident id the create brought back; the recovery still goes to that incident.
#[test]
fn a_reactio_recovery_flushed_on_a_full_disk_goes_to_the_incident_its_create_opened() {
    let sb = Sandbox::new(REACTIO);
    sb.config("reactio.json", &json!({"reactio": {"api_key": reactio::API_KEY, "organization": "example"}}));
    let run = |fixture: &str| sb.run(&["--api-url", REFUSED_URL, "--timeout", "1s"], &read_fixture(fixture));
    assert_eq!(run("sensu/create.json").code, Some(75));
    assert_eq!(run("sensu/resolve.json").code, Some(75));
    let fake = FakeReactio::start(&[]);
    let cmd = sb.command(&["--flush", "--timeout", "5s", "--api-url", &fake.url]);
    let r = run_command(crate::util::on_a_full_disk(&cmd), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("cannot record"), "the disk was full: {}", r.stderr);
    let calls = fake.calls();
    assert_eq!(calls.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["/api/v1/incidents", "/api/v1/messages"], "{}", r.stderr);
    assert_eq!(calls[1].body["incident_id"], fake.incidents()[0]["id"], "{}", r.stderr);
    assert!(sb.spooled("reactio").is_empty());
    fake.assert_no_violations();
}

#[test]
fn a_spooled_trigger_made_stale_by_a_resolve_on_another_host_is_dropped_as_superseded() {
    // Two hosts sharing the ledger (here: one state directory), each with its own spool.
    let sb = pagerduty_sandbox();
    // Times near now: a Sensu `check.executed` is believed only up to 60 s before receipt.
    let t = unix_now();
    assert_eq!(run_at(&sb, REFUSED_URL, &fixture_at("sensu/create.json", t - 3), &[]).code, Some(75));
    let fake = FakePagerDuty::start(&[]);
    // Host B handles the recovery, later, with the service up: it is sent (PagerDuty accepts a
    // resolve for a key it may not know) and recorded in the shared ledger.
    let r = run_command(sb.command_on_host("b", &["--api-url", &fake.url]), &fixture_at("sensu/resolve.json", t - 1));
    assert_eq!(r.code, Some(0), "{r:?}");
    // Host A's flush must not re-open the incident with its stale trigger.
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("superseded"), "{}", r.stderr);
    let actions: Vec<_> = fake.events().iter().map(|e| e["event_action"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(actions, ["resolve"]);
    let failed = failed(&sb, "pagerduty");
    assert_eq!(failed.len(), 1);
    assert!(entry(&sb, "pagerduty", &failed[0], true)["failure"].as_str().unwrap_or("").contains("superseded"));
}

#[test]
fn a_slow_service_gets_each_spooled_request_once() {
    // The service answers only after 150 ms; five invocations in a row each first deliver what
    // is spooled. Nothing may be sent twice, whatever share of its deadline each one gives the
    // older requests.
    let sb = pagerduty_sandbox();
    for i in 0..3 {
        assert_eq!(run_at(&sb, REFUSED_URL, &event_for(&format!("db-{i}"), "sensu/create.json"), &[]).code, Some(75));
    }
    let fake = FakePagerDuty::start(&[Script::Slow; 8]);
    for i in 0..5 {
        let r = run_at(&sb, &fake.url, &event_for(&format!("web-{i}"), "sensu/create.json"), &["--timeout", "10s"]);
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    let mut keys: Vec<String> = fake.events().iter().map(|e| e["dedup_key"].as_str().unwrap_or("").to_string()).collect();
    let sent = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!((sent, keys.len()), (8, 8), "each request exactly once: {keys:?}");
    assert!(sb.spooled("pagerduty").is_empty());
}

/// Durations in log lines read as settings are written (`31days`), not in humantime's
/// 30.44-day months (`1month 13h 26m 24s`).
#[test]
fn spool_log_lines_show_long_durations_in_days() {
    let sb = crate::util::pagerduty_sandbox_with(json!({"routing_key": ROUTING_KEY, "spool_max_age": "365days"}));
    let at = |cmd: &mut std::process::Command, secs: i64| {
        cmd.env("PAGERPIPE_NOW", (1_700_000_000 + secs).to_string());
    };
    let mut cmd = sb.command(&["--api-url", REFUSED_URL, "--timeout", "1s"]);
    at(&mut cmd, 0);
    assert_eq!(run_command(cmd, &read_fixture("sensu/create.json")).code, Some(75));
    let fake = FakePagerDuty::start(&[]);
    let mut cmd = sb.command(&["--flush", "--api-url", &fake.url]);
    at(&mut cmd, 40 * 86_400 + 3600);
    let r = run_command(cmd, b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("delivered after 40days 1h in the spool"), "{}", r.stderr);

    let sb = crate::util::pagerduty_sandbox_with(json!({"routing_key": ROUTING_KEY, "spool_max_age": "31days"}));
    let mut cmd = sb.command(&["--api-url", REFUSED_URL, "--timeout", "1s"]);
    at(&mut cmd, 0);
    assert_eq!(run_command(cmd, &read_fixture("sensu/create.json")).code, Some(75));
    let mut cmd = sb.command(&["--flush", "--api-url", &fake.url]);
    at(&mut cmd, 40 * 86_400);
    let r = run_command(cmd, b"");
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("not delivered within spool_max_age (31days)"), "{}", r.stderr);
    assert_eq!(fake.events().len(), 1, "the expired entry is not sent");
}

/// A flush run without the handler's credentials (a flush timer that does not read the
/// settings file the handler was given with `--config`) keeps the entries, says what to fix and
/// exits 78 (requests remain for a fix of the settings); it never sends a page with an empty routing key, which
/// PagerDuty refuses for good (the page then lost in `failed/`, exit 69).
#[test]
fn a_flush_without_the_routing_key_keeps_the_entries_until_it_has_one() {
    let sb = pagerduty_sandbox();
    let r = run_at(&sb, REFUSED_URL, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    sb.config("pagerduty.json", &json!({"pagerduty": {}}));
    let fake = FakePagerDuty::start(&[]);
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("no PagerDuty routing key") && r.stderr.contains("its entries are kept"), "{}", r.stderr);
    assert!(fake.answered().is_empty() && fake.violations().is_empty(), "nothing sent: {:?} {:?}", fake.answered(), fake.violations());
    assert_eq!((sb.spooled("pagerduty").len(), failed(&sb, "pagerduty").len()), (1, 0), "{}", r.stderr);

    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.accepted().len(), 1);
    fake.assert_no_violations();
}

/// Entries that carry their own routing key (a Zabbix action's `{ALERT.SENDTO}`) go out from a
/// flush that lacks the operator's: only the entries that need it wait.
#[test]
fn a_flush_without_the_routing_key_still_sends_the_entries_that_carry_their_own() {
    let sb = pagerduty_sandbox();
    for entity in ["web-01", "web-02", "web-03"] {
        let event = String::from_utf8_lossy(&read_fixture("sensu/create.json")).replace("\"web-01\"", &format!("\"{entity}\""));
        let r = run_at(&sb, REFUSED_URL, event.as_bytes(), &[]);
        assert_eq!(r.code, Some(75), "{r:?}");
    }
    let zabbix = "name:Disk full on db-02\nid:4711\nstatus:PROBLEM\nhostname:db-02\nvalue:1\nevent_id:99\nseverity:High\n";
    let r = run_at(&sb, REFUSED_URL, b"", &["--from", "zabbix", "Z4bb1xOwnR0ut1ngKey00000000000ab", "PROBLEM", zabbix]);
    assert_eq!(r.code, Some(75), "{r:?}");
    sb.config("pagerduty.json", &json!({"pagerduty": {}}));
    let fake = FakePagerDuty::start(&[]);
    let r = flush(&sb, &fake.url, &[]);
    assert_eq!(r.code, Some(78), "the Sensu entry waits: {r:?}");
    let sent: Vec<_> = fake.accepted().iter().map(|e| (e["routing_key"].clone(), e["dedup_key"].clone())).collect();
    assert_eq!(sent, [(json!("Z4bb1xOwnR0ut1ngKey00000000000ab"), json!("4711-db-02"))], "{}", r.stderr);
    assert_eq!(sb.spooled("pagerduty").len(), 3, "{}", r.stderr);
    // Said once, not for every entry (a flush timer would repeat it every minute).
    assert_eq!(r.stderr.matches("no PagerDuty routing key").count(), 2, "the warning and the summary: {}", r.stderr);
    fake.assert_no_violations();
}
