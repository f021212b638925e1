//! handler-reactio end to end: fixtures in, requests checked by the fake Reactio.

use serde_json::{Value, json};

use crate::fake::reactio::{API_KEY, FIRST_ID, FakeReactio, Script};
use crate::util::{Run, Sandbox, fixture_at, laid_over, read_fixture, run_command};

const BIN: &str = env!("CARGO_BIN_EXE_handler-reactio");
const INCIDENTS: &str = "/api/v1/incidents";
const NOTIFICATIONS: &str = "/api/v1/notifications";
const MESSAGES: &str = "/api/v1/messages";

fn sandbox(extra: Value) -> Sandbox {
    let sb = Sandbox::new(BIN);
    let section = json!({"api_key": API_KEY, "organization": "example"});
    let section = laid_over(section, extra);
    sb.config("reactio.json", &json!({ "reactio": section }));
    sb
}

fn run(sb: &Sandbox, fake: &FakeReactio, input: &[u8], extra: &[&str]) -> Run {
    let mut args = vec!["--api-url", fake.url.as_str()];
    args.extend_from_slice(extra);
    sb.run(&args, input)
}

/// Run `fixture` with the clock `minutes` ahead of now.
fn run_later(sb: &Sandbox, fake: &FakeReactio, fixture: &str, minutes: u64) -> Run {
    let mut cmd = sb.command(&["--api-url", &fake.url]);
    cmd.env("PAGERPIPE_NOW", (crate::util::unix_now().unsigned_abs() + minutes * 60).to_string());
    run_command(cmd, &read_fixture(fixture))
}

#[test]
fn trigger_opens_one_incident_and_remembers_its_id() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr.contains(&format!("reactio: triggered web-01/check_disk (incident {FIRST_ID}; POST /api/v1/incidents 201 in ")),
        "{}",
        r.stderr
    );
    fake.assert_no_violations();
    let created = fake.accepted(INCIDENTS);
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0],
        json!({"name": "web-01/check_disk CheckDisk CRITICAL: / 95.2% used (45G of 47G)", "status": "open",
               "notification_text": "対応をお願いします", "notification_call": false})
    );
    let st = sb.state("reactio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["open"], true);
    assert_eq!(st["refs"]["incident_id"], FIRST_ID);
    // Within refresh the same event opens nothing more.
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert_eq!(fake.calls().len(), 1);
}

#[test]
fn a_notification_text_that_renders_blank_broadcasts_the_default_text() {
    // `notification_text` naming a label the event lacks rendered "": the incident's broadcast
    // said nothing, and the repeat's `POST /api/v1/notifications` carried a blank
    // `notification_text`, a field the API requires (spec: the client's recorded 400 is
    // `notification_text: missing_field`).
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({"notification_text": "{label.pager_text}"}));
    assert_eq!(run(&sb, &fake, &read_fixture("sensu-go/failing.json"), &[]).code, Some(0));
    let r = run_later(&sb, &fake, "sensu-go/failing.json", 31);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(fake.accepted(INCIDENTS)[0]["notification_text"], "対応をお願いします");
    assert_eq!(fake.accepted(NOTIFICATIONS)[0]["notification_text"], "対応をお願いします");
}

#[test]
fn a_recovery_message_that_renders_blank_posts_the_default_one() {
    // `recovery_message` of `{output}` alone and a recovery that printed nothing posted a blank
    // timeline message (`POST /api/v1/messages` requires `message`).
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({"recovery_message": "{output}"}));
    assert_eq!(run(&sb, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    let mut recovery: Value = serde_json::from_slice(&read_fixture("sensu/resolve.json")).unwrap();
    recovery["check"]["output"] = "".into();
    let r = run(&sb, &fake, recovery.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(fake.accepted(MESSAGES), vec![json!({"incident_id": FIRST_ID, "message": "recovered: "})]);
}

#[test]
fn a_long_output_in_the_notification_text_keeps_the_incident_id_readable() {
    // The create's answer echoes `notification_text`, and the handler reads a bounded part of
    // an answer (64 KiB then, 1 MiB now; a check output may be far longer): with `{output}` in
    // the text and 25 000 Japanese characters of output the answer was cut short, its `id`
    // unreadable ("holds no incident id"), and a repeat opened a second incident. The
    // broadcast text is cut to 4000 characters.
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({"notification_text": "{entity}/{check}: {output}"}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["check"]["output"] = "ディスク容量不足".repeat(3125).into();
    let r = run(&sb, &fake, ev.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("(incident {FIRST_ID};")), "{}", r.stderr);
    fake.assert_no_violations();
    let text = fake.accepted(INCIDENTS)[0]["notification_text"].as_str().unwrap().to_string();
    assert_eq!(text.chars().count(), 4000);
    assert!(text.starts_with("web-01/check_disk: ディスク容量不足") && text.ends_with('…'), "{text}");
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["refs"]["incident_id"], FIRST_ID);
}

#[test]
fn repeat_after_refresh_notifies_the_stored_incident_again() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({"notification_call": true}));
    assert_eq!(run(&sb, &fake, &read_fixture("sensu-go/failing.json"), &[]).code, Some(0));
    let r = run_later(&sb, &fake, "sensu-go/failing.json", 31);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("(incident {FIRST_ID} notified again; POST /api/v1/notifications 201 in ")), "{}", r.stderr);
    fake.assert_no_violations();
    assert_eq!(fake.accepted(INCIDENTS).len(), 1, "no second incident");
    assert_eq!(
        fake.accepted(NOTIFICATIONS),
        vec![json!({"incident_id": FIRST_ID, "notification_text": "対応をお願いします", "notification_call": true})]
    );
    let st = sb.state("reactio", "webserver01%2Fcheck-http.json");
    assert_eq!((st["count"].as_u64(), &st["refs"]["incident_id"]), (Some(2), &json!(FIRST_ID)));
}

#[test]
fn resolve_posts_one_recovery_message_and_a_new_failure_opens_a_new_incident() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({}));
    assert_eq!(run(&sb, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr.contains(&format!("resolved web-01/check_disk (incident {FIRST_ID}: recovery posted; POST /api/v1/messages 201 in ")),
        "{}",
        r.stderr
    );
    assert_eq!(fake.accepted(MESSAGES), vec![json!({"incident_id": FIRST_ID, "message": "recovered: CheckDisk OK: / 61.0% used"})]);
    assert_eq!(fake.calls().len(), 2, "no status call unless close_on_resolve");
    assert_eq!(fake.incidents()[0]["status"], "open");
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["open"], false);
    // A second resolve finds nothing open.
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &[]);
    assert!(r.stderr.contains("already resolved"), "{}", r.stderr);
    // The next failure (a later check run) is a new incident, not a notification to the
    // recovered one.
    assert_eq!(run(&sb, &fake, &fixture_at("sensu/create.json", 1_460_300_000), &[]).code, Some(0));
    assert_eq!(fake.accepted(INCIDENTS).len(), 2);
    assert!(fake.accepted(NOTIFICATIONS).is_empty());
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["refs"]["incident_id"], FIRST_ID + 1);
    fake.assert_no_violations();
}

#[test]
fn close_on_resolve_also_closes_the_incident() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({"close_on_resolve": true}));
    assert_eq!(run(&sb, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("recovery posted and closed; POST /api/v1/messages 201 in "), "{}", r.stderr);
    fake.assert_no_violations();
    assert_eq!(fake.accepted(MESSAGES).len(), 1);
    assert_eq!(fake.accepted(&format!("/api/v1/incidents/{FIRST_ID}/status")), vec![json!({"status": "close"})]);
    assert_eq!(fake.incidents()[0]["status"], "close");
}

#[test]
fn a_failed_close_is_a_warning_after_the_recovery_is_posted() {
    // Trigger, message accepted, then the (undocumented) status call fails for good.
    let fake = FakeReactio::start(&[Script::Accept, Script::Accept, Script::Invalid]);
    let sb = sandbox(json!({"close_on_resolve": true}));
    assert_eq!(run(&sb, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr.contains("reactio: warn: incident 1001: the recovery message was posted but closing the incident failed: HTTP 400"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("recovery posted, not closed"), "{}", r.stderr);
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["open"], false);
}

/// A recovery with `close_on_resolve` whose message is spooled (Reactio did not answer in
/// time) has the close spooled behind it: the flush posted the message alone, and the incident
/// stayed open in Reactio.
#[test]
fn a_spooled_recovery_with_close_on_resolve_is_posted_and_closed_by_the_flush() {
    let fake = FakeReactio::start(&[Script::Accept, Script::Hang]);
    let sb = sandbox(json!({"close_on_resolve": true}));
    assert_eq!(run(&sb, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("reactio").len(), 2, "the message and the close: {}", r.stderr);
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.accepted(MESSAGES).len(), 1, "{}", r.stderr);
    assert_eq!(fake.accepted(&format!("/api/v1/incidents/{FIRST_ID}/status")), vec![json!({"status": "close"})], "{}", r.stderr);
    assert_eq!(fake.incidents()[0]["status"], "close");
    assert!(sb.spooled("reactio").is_empty());
    assert!(sb.failed("reactio").is_empty(), "{:?}", sb.failed("reactio"));
    fake.assert_no_violations();
}

/// The same for a recovery message kept for this machine's configuration (an untrusted
/// certificate: exit 78, kept for the flush after the fix): the close is kept behind it.
/// Before, only a message spooled for the service (exit 75) had its close spooled, and the
/// flush after the fix posted the message alone: the incident stayed open in Reactio.
#[test]
fn a_recovery_kept_for_an_untrusted_certificate_with_close_on_resolve_is_closed_by_the_flush_after_the_fix() {
    let fake = FakeReactio::start(&[]);
    let pki = crate::fake::tls::Pki::new(&["127.0.0.1"]);
    let front = crate::fake::tls::TlsFront::start(&fake.url, &pki);
    let sb = sandbox(json!({"close_on_resolve": true}));
    let ca = pki.write_ca(sb.dir.path(), "ca.pem");
    let fixed = ["--api-url", front.url.as_str(), "--ca-file", ca.to_str().unwrap()];
    assert_eq!(sb.run(&fixed, &read_fixture("sensu/create.json")).code, Some(0));
    // The CA file is left out: the certificate is not trusted.
    let r = sb.run(&["--api-url", &front.url], &read_fixture("sensu/resolve.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("not signed by a trusted CA") && r.stderr.contains("spooled as"), "{}", r.stderr);
    assert_eq!(sb.spooled("reactio").len(), 2, "the message and the close: {}", r.stderr);
    let r = sb.run(&[&["--flush"][..], &fixed].concat(), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.accepted(MESSAGES).len(), 1, "{}", r.stderr);
    assert_eq!(fake.accepted(&format!("/api/v1/incidents/{FIRST_ID}/status")), vec![json!({"status": "close"})], "{}", r.stderr);
    assert_eq!(fake.incidents()[0]["status"], "close");
    assert!(sb.spooled("reactio").is_empty());
    fake.assert_no_violations();
}

/// The same when the incident's create is itself still spooled: the recovery waits behind it
/// and goes, with the close, to the incident the create opens.
#[test]
fn a_recovery_behind_a_spooled_create_with_close_on_resolve_closes_the_incident_the_flush_opens() {
    // The create hangs, and so does what the recovery's own flush of it sends first.
    let fake = FakeReactio::start(&[Script::Hang, Script::Hang]);
    let sb = sandbox(json!({"close_on_resolve": true}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("reactio").len(), 2, "the create and the recovery: {}", r.stderr);
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let id = fake.incidents()[0]["id"].as_u64().unwrap();
    assert_eq!(fake.accepted(MESSAGES).len(), 1, "{}", r.stderr);
    assert_eq!(fake.accepted(&format!("/api/v1/incidents/{id}/status")), vec![json!({"status": "close"})], "{}", r.stderr);
    assert_eq!(fake.incidents()[0]["status"], "close");
    assert!(sb.spooled("reactio").is_empty());
    fake.assert_no_violations();
}

#[test]
fn resolve_without_a_stored_incident_id_and_no_open_incident_posts_nothing() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({}));
    // An open incident recorded without a Reactio id (e.g. by an older version).
    std::fs::create_dir_all(sb.state_dir().join("reactio")).unwrap();
    let record = json!({"key": "web-01/check_disk", "open": true, "severity": "critical", "count": 1, "last_notified": 1, "refs": {}});
    std::fs::write(sb.state_dir().join("reactio/web-01%2Fcheck_disk.json"), record.to_string()).unwrap();
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr.contains("resolved web-01/check_disk (no Reactio incident id is stored for it, and no open or pending incident is named"),
        "{}",
        r.stderr
    );
    assert!(fake.accepted(MESSAGES).is_empty());
    fake.assert_no_violations();
}

#[test]
fn resolve_with_an_empty_state_dir_looks_the_open_incident_up_and_resolves_it() {
    // The incident was opened on another host (or before the state dir was lost): the
    // recovery finds it by the name its create gave it.
    let fake = FakeReactio::start(&[]);
    let elsewhere = sandbox(json!({}));
    assert_eq!(run(&elsewhere, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("found the open incident {FIRST_ID}")), "{}", r.stderr);
    assert_eq!(fake.accepted(MESSAGES), vec![json!({"incident_id": FIRST_ID, "message": "recovered: CheckDisk OK: / 61.0% used"})]);
    fake.assert_no_violations();
}

#[test]
fn a_recovery_whose_incident_list_cannot_be_read_is_spooled_and_posted_by_the_flush() {
    // The recovery has no stored incident id (the incident was opened on another host) and
    // Reactio answers its incident list 500 until the deadline (documented, retryable). The
    // recovery was not spooled ("undelivered event, not spooled"), exit 75 saying it would be
    // retried: nothing retried it, and the incident never got its recovery.
    let fake = FakeReactio::start(&[]);
    let elsewhere = sandbox(json!({}));
    assert_eq!(run(&elsewhere, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    let sb = sandbox(json!({}));
    fake.fail_lists(1000);
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(!r.stderr.contains("not spooled"), "{}", r.stderr);
    assert_eq!(sb.spooled("reactio").len(), 1, "{}", r.stderr);
    assert!(fake.accepted(MESSAGES).is_empty());
    // Still down at the first flush: kept.
    let r = run(&sb, &fake, b"", &["--flush", "--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("reactio").len(), 1, "{}", r.stderr);
    fake.fail_lists(0);
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        fake.accepted(MESSAGES),
        vec![json!({"incident_id": FIRST_ID, "message": "recovered: CheckDisk OK: / 61.0% used"})],
        "{}",
        r.stderr
    );
    assert!(sb.spooled("reactio").is_empty());
    assert!(sb.failed("reactio").is_empty(), "{:?}", sb.failed("reactio"));
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["open"], false);
    fake.assert_no_violations();
}

#[test]
fn a_spooled_recovery_lookup_closes_the_old_incident_before_a_new_failure_opens_another() {
    // Recovery (spooled: the list answered 500), failure again (queued behind it), recovery
    // again. The second recovery superseded the first ("a resolve of a later event is being
    // handled"), the failure opened a new incident and the second recovery resolved that one:
    // the incident opened before never got its recovery and stayed open for good.
    let fake = FakeReactio::start(&[]);
    let t = crate::util::unix_now();
    let elsewhere = sandbox(json!({}));
    assert_eq!(run(&elsewhere, &fake, &fixture_at("sensu/create.json", t - 600), &[]).code, Some(0));
    let sb = sandbox(json!({}));
    fake.fail_lists(1000);
    for (fixture, executed) in [("sensu/resolve.json", t - 300), ("sensu/create.json", t - 200), ("sensu/resolve.json", t - 100)] {
        let r = run(&sb, &fake, &fixture_at(fixture, executed), &["--timeout", "1s"]);
        assert_eq!(r.code, Some(75), "{r:?}");
    }
    assert_eq!(sb.spooled("reactio").len(), 3);
    fake.fail_lists(0);
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let recovered: Vec<Value> = fake.accepted(MESSAGES).iter().map(|m| m["incident_id"].clone()).collect();
    assert_eq!(recovered, vec![json!(FIRST_ID), json!(FIRST_ID + 1)], "both incidents get their recovery\n{}", r.stderr);
    assert!(sb.spooled("reactio").is_empty(), "{}", r.stderr);
    fake.assert_no_violations();
}

/// Mackerel webhook alerts are keyed by their `alert.id` because a monitored host names itself
/// (and its check monitors). A recovery with no stored incident id looks its incident up by
/// name, and found there the incident of the host whose name it took: a host registered as
/// app-01 with a check named nginx, whose warning was filtered out (severities: critical), had
/// its `ok` post the recovery to app-01's open nginx incident while app-01's nginx was down.
#[test]
fn a_recovery_lookup_passes_over_an_incident_the_ledger_holds_for_another_key() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({}));
    let t = crate::util::unix_now();
    let webhook = |host_id: &str, alert_id: &str, status: &str, changed: i64| {
        crate::util::mackerel_alert(host_id, alert_id, status, changed).to_string().into_bytes()
    };
    assert_eq!(run(&sb, &fake, &webhook("3JMx1AbCdEf", "4Xq7pRsTuVw", "critical", t - 300), &[]).code, Some(0));
    assert_eq!(run(&sb, &fake, &webhook("9EviLHoSt00", "5Ev1LaLeRt0", "warning", t - 200), &[]).code, Some(0));
    let r = run(&sb, &fake, &webhook("9EviLHoSt00", "5Ev1LaLeRt0", "ok", t - 100), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(fake.accepted(MESSAGES).is_empty(), "app-01's incident is not the other host's: {:?}\n{}", fake.accepted(MESSAGES), r.stderr);
    // app-01's own recovery still goes to it.
    let r = run(&sb, &fake, &webhook("3JMx1AbCdEf", "4Xq7pRsTuVw", "ok", t - 50), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.accepted(MESSAGES).len(), 1, "{}", r.stderr);
    assert_eq!(fake.accepted(MESSAGES)[0]["incident_id"], FIRST_ID);
    fake.assert_no_violations();
}

/// The same for a create of unknown fate: the flush looks for an incident of its name created
/// since, and took the real app-01's, opened meanwhile under the same name (a host names
/// itself, and writes its check's output), for its own: the other host's record then held
/// incident 1001, no incident of its own was opened, and its recovery was posted to 1001 and
/// closed it while app-01's nginx was down.
#[test]
fn a_lost_create_lookup_passes_over_an_incident_the_ledger_holds_for_another_key() {
    let fake = FakeReactio::start(&[Script::Hang]);
    let sb = sandbox(json!({"close_on_resolve": true}));
    let t = crate::util::unix_now();
    let webhook = |host_id: &str, alert_id: &str, status: &str, changed: i64| {
        crate::util::mackerel_alert(host_id, alert_id, status, changed).to_string().into_bytes()
    };
    let r = run(&sb, &fake, &webhook("9EviLHoSt00", "5Ev1LaLeRt0", "critical", t - 300), &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    // app-01's page goes out from another host sharing the ledger (a spool of its own, so it
    // does not deliver the lost create first).
    let elsewhere = sb.dir.path().join("spool-elsewhere");
    let elsewhere = ["--spool-dir", elsewhere.to_str().unwrap()];
    assert_eq!(run(&sb, &fake, &webhook("3JMx1AbCdEf", "4Xq7pRsTuVw", "critical", t - 200), &elsewhere).code, Some(0));
    assert_eq!(fake.incidents().len(), 1);
    let f = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(f.code, Some(0), "{f:?}");
    assert!(!f.stderr.contains("acted on it after all"), "app-01's incident taken for the lost create's: {}", f.stderr);
    assert_eq!(fake.incidents().len(), 2, "an incident of its own: {}", f.stderr);
    let r = run(&sb, &fake, &webhook("9EviLHoSt00", "5Ev1LaLeRt0", "ok", t - 100), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let posted: Vec<Value> = fake.accepted(MESSAGES).iter().map(|m| m["incident_id"].clone()).collect();
    assert_eq!(posted, [json!(FIRST_ID + 1)], "the recovery goes to its own incident only: {}", r.stderr);
    assert_eq!(fake.incidents()[0]["status"], "open", "app-01's incident is left open");
    fake.assert_no_violations();
}

#[test]
fn resolve_with_an_empty_state_dir_finds_an_incident_whose_long_name_was_cut() {
    // A name is cut to MAX_NAME_CHARS (255) characters when it is opened. A host and check
    // whose names alone fill that (Kubernetes node and pod names, a namespaced Sensu Go
    // check) left a recovery with no stored id looking for the uncut name: it found nothing,
    // posted nothing, and the incident stayed open.
    // 254 characters before the output: cut to it and `…`; 266: cut inside the check name.
    for entity in [format!("node-{}", "a".repeat(228)), format!("node-{}", "a".repeat(240))] {
        cut_name_is_found(&entity);
    }
}

fn cut_name_is_found(entity: &str) {
    let fake = FakeReactio::start(&[]);
    let event = |status: u32, output: &str| {
        let action = if status == 0 { "resolve" } else { "create" };
        json!({"action": action, "occurrences": 1, "client": {"name": entity},
               "check": {"name": "check_kubelet_health", "status": status, "output": output}})
        .to_string()
        .into_bytes()
    };
    let elsewhere = sandbox(json!({}));
    assert_eq!(run(&elsewhere, &fake, &event(2, "kubelet down"), &[]).code, Some(0));
    let opened = fake.accepted(INCIDENTS)[0]["name"].as_str().unwrap().to_string();
    assert_eq!(opened.chars().count(), 255, "{opened}");
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &event(0, "kubelet ok"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.accepted(MESSAGES), vec![json!({"incident_id": FIRST_ID, "message": "recovered: kubelet ok"})], "{}", r.stderr);
    fake.assert_no_violations();
}

#[test]
fn resolve_finds_its_open_incident_beyond_the_first_page_of_the_list() {
    // `GET /api/v1/incidents` is paginated (`page`, `per_page`): with 150 other open incidents
    // opened before it, this incident is on the second page of 100. Reading the first page
    // only, the recovery found nothing and posted nothing.
    let fake = FakeReactio::start(&[]);
    fake.opened_elsewhere("db-01/check_load load high", 150);
    let elsewhere = sandbox(json!({}));
    assert_eq!(run(&elsewhere, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    let ours = FIRST_ID + 150;
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("found the open incident {ours}")), "{}", r.stderr);
    assert_eq!(fake.accepted(MESSAGES), vec![json!({"incident_id": ours, "message": "recovered: CheckDisk OK: / 61.0% used"})]);
    fake.assert_no_violations();
}

/// The name the incident of `sensu/create.json` was opened with.
const OURS: &str = "web-01/check_disk CheckDisk CRITICAL: / 95.2% used (45G of 47G)";
/// Another host's incident, which the recovery of `sensu/resolve.json` must not take for its own.
const OTHERS: &str = "db-01/check_load load high";

/// The query of page `n` of the open incidents as handler-reactio asks for it.
fn open_page(n: usize) -> String {
    format!("status=open&page={n}&per_page=100")
}

/// The query of page `n` of the pending incidents (`pend`: opened so, or put on hold), which a
/// recovery reads after the open ones.
fn pend_page(n: usize) -> String {
    format!("status=pend&page={n}&per_page=100")
}

/// `sensu/resolve.json` with no record of the incident (an empty state dir): the recovery has
/// to look its incident up in `GET /api/v1/incidents`.
fn recover_without_an_incident_id(fake: &FakeReactio) -> Run {
    let r = run(&sandbox(json!({})), fake, &read_fixture("sensu/resolve.json"), &["--verbose"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    r
}

#[test]
fn a_recovery_with_no_incident_id_reads_a_short_list_and_the_empty_page_that_ends_it() {
    // The spec's list answer is a bare JSON array: no total, no page count, no next link, and
    // `per_page` has no documented maximum, so a page shorter than asked for may be all a
    // Reactio serves per page. Only an empty page ends the list for sure: 2 GETs here, never
    // the 10 of MAX_LIST_PAGES.
    let fake = FakeReactio::start(&[]);
    fake.opened_elsewhere(OTHERS, 2);
    fake.opened_elsewhere(OURS, 1);
    let ours = FIRST_ID + 2;
    let r = recover_without_an_incident_id(&fake);
    assert!(r.stderr.contains(&format!("found the open incident {ours}")), "{}", r.stderr);
    assert_eq!(fake.lists(), vec![open_page(1), open_page(2), pend_page(1)]);
    assert_eq!(fake.accepted(MESSAGES), vec![json!({"incident_id": ours, "message": "recovered: CheckDisk OK: / 61.0% used"})]);
}

#[test]
fn a_recovery_with_no_incident_id_and_no_match_in_a_short_list_stops_at_the_empty_page_and_says_so() {
    let fake = FakeReactio::start(&[]);
    fake.opened_elsewhere(OTHERS, 3);
    let r = recover_without_an_incident_id(&fake);
    assert_eq!(fake.lists(), vec![open_page(1), open_page(2), pend_page(1)]);
    assert!(r.stderr.contains("page 2 is the last of the open incidents (an empty page)"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "resolved web-01/check_disk (no Reactio incident id is stored for it, and no open or pending incident is named \"web-01/check_disk CheckDisk OK: / 61.0% used\": nothing to post the recovery to)"
        ),
        "{}",
        r.stderr
    );
    assert!(fake.accepted(MESSAGES).is_empty());
}

#[test]
fn a_recovery_finds_its_incident_on_page_2_and_stops_at_that_short_page() {
    // Page 1 came back full (100, as asked): Reactio serves 100 a page, so page 2 holding 51
    // is the last one. Asking for page 3 as well cost a request for a page that cannot exist.
    let fake = FakeReactio::start(&[]);
    fake.opened_elsewhere(OTHERS, 150);
    fake.opened_elsewhere(OURS, 1);
    let ours = FIRST_ID + 150;
    let r = recover_without_an_incident_id(&fake);
    assert!(r.stderr.contains(&format!("found the open incident {ours}")), "{}", r.stderr);
    assert_eq!(fake.lists(), vec![open_page(1), open_page(2), pend_page(1)]);
    assert!(r.stderr.contains("page 2 is the last of the open incidents (a page shorter than page 1)"), "{}", r.stderr);
    assert_eq!(fake.accepted(MESSAGES), vec![json!({"incident_id": ours, "message": "recovered: CheckDisk OK: / 61.0% used"})]);
}

#[test]
fn a_reactio_serving_fewer_than_asked_per_page_is_read_on_until_a_shorter_page() {
    // A Reactio that caps `per_page` (the spec sets no maximum) answers page 1 with 20 of the
    // 100 asked for: that is not the end of the list, and taking it for the end would leave
    // this recovery with nowhere to go. Page 2 is shorter than page 1, so it is the last.
    let fake = FakeReactio::start(&[]);
    fake.serve_at_most(20);
    fake.opened_elsewhere(OTHERS, 30);
    fake.opened_elsewhere(OURS, 1);
    let ours = FIRST_ID + 30;
    let r = recover_without_an_incident_id(&fake);
    assert!(r.stderr.contains(&format!("found the open incident {ours}")), "{}", r.stderr);
    assert_eq!(fake.lists(), vec![open_page(1), open_page(2), pend_page(1)]);
    assert_eq!(fake.accepted(MESSAGES), vec![json!({"incident_id": ours, "message": "recovered: CheckDisk OK: / 61.0% used"})]);
}

#[test]
fn a_recovery_reads_at_most_ten_pages_of_open_incidents() {
    // MAX_LIST_PAGES stays the upper bound: with a Reactio serving 5 a page and 60 other open
    // incidents before this one, it is on page 13, past the tenth, and is not found.
    let fake = FakeReactio::start(&[]);
    fake.serve_at_most(5);
    fake.opened_elsewhere(OTHERS, 60);
    fake.opened_elsewhere(OURS, 1);
    let r = recover_without_an_incident_id(&fake);
    assert_eq!(fake.lists(), (1..=10).map(open_page).chain([pend_page(1)]).collect::<Vec<_>>());
    assert!(r.stderr.contains("stopped after page 10 of the open incidents, the most a recovery reads"), "{}", r.stderr);
    assert!(r.stderr.contains("among the open incidents of the first 10 pages, the most a recovery reads, and the list goes on: close it in Reactio if it is open"), "{}", r.stderr);
    assert!(fake.accepted(MESSAGES).is_empty());
}

#[test]
fn a_recovery_with_no_incident_id_finds_its_incident_put_on_hold() {
    // Someone put the incident on hold in Reactio (`pend`): it is not closed, and its recovery
    // is still due. Looking up `status=open` only, the recovery found nothing and posted nothing.
    let fake = FakeReactio::start(&[]);
    let elsewhere = sandbox(json!({}));
    assert_eq!(run(&elsewhere, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    fake.set_status(FIRST_ID, "pend");
    let r = recover_without_an_incident_id(&fake);
    assert!(r.stderr.contains(&format!("found the pending incident {FIRST_ID}")), "{}", r.stderr);
    assert_eq!(fake.lists(), vec![open_page(1), pend_page(1), pend_page(2)]);
    assert_eq!(fake.accepted(MESSAGES), vec![json!({"incident_id": FIRST_ID, "message": "recovered: CheckDisk OK: / 61.0% used"})]);
}

#[test]
fn a_recovery_with_no_incident_id_finds_an_incident_opened_with_status_pend() {
    // `status: pend` opens every incident pending: a lookup of the open ones never sees them.
    let fake = FakeReactio::start(&[]);
    let elsewhere = sandbox(json!({"status": "pend"}));
    assert_eq!(run(&elsewhere, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    assert_eq!(fake.incidents()[0]["status"], "pend");
    let r = run(&sandbox(json!({"status": "pend"})), &fake, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("found the pending incident {FIRST_ID}")), "{}", r.stderr);
    assert_eq!(fake.accepted(MESSAGES), vec![json!({"incident_id": FIRST_ID, "message": "recovered: CheckDisk OK: / 61.0% used"})]);
    fake.assert_no_violations();
}

#[test]
fn a_pending_create_whose_answer_was_lost_is_found_by_the_flush_not_opened_twice() {
    // Reactio opens the incident (status pend, as configured) at once and answers after 4 s,
    // past the deadline. The flush's lookup asked for `status=open`, found nothing, and sent
    // the create again: a second incident, and everyone notified twice.
    let fake = FakeReactio::start(&[Script::Late(4000)]);
    let sb = sandbox(json!({"status": "pend"}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(fake.incidents().len(), 1);
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("acted on it after all"), "{}", r.stderr);
    assert_eq!(fake.incidents().len(), 1, "not opened twice: {}", r.stderr);
    assert!(fake.lists()[0].starts_with("status=pend&"), "the status it was created with first: {:?}", fake.lists());
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["refs"]["incident_id"], FIRST_ID);
    fake.assert_no_violations();
}

/// A lost create whose lookup Reactio refuses for good (401: the key in force now is not the
/// one the create went out with, or lost its rights): before, each flush exited 75 until
/// spool_max_age gave the incident up; now 78, naming Reactio's answer, the create kept and
/// not sent again (a second incident, everyone notified twice). With the key fixed, the flush
/// finds the incident the lost create opened.
#[test]
fn a_lost_create_whose_lookup_reactio_refuses_exits_78_and_is_found_once_it_can_be_looked_up() {
    let fake = FakeReactio::start(&[Script::Late(4000)]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(fake.incidents().len(), 1);
    let spooled = sb.spooled("reactio");
    let wrong = "reactio-test-key-1111111111111111dead";
    let r = run(&sb, &fake, b"", &["--flush", "--api-key", wrong]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(
        r.stderr.contains("the service refused its lookup (GET /api/v1/incidents answered HTTP 401 authentication_error: invalid api key)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(wrong), "{}", r.stderr);
    assert_eq!(fake.incidents().len(), 1, "not opened twice: {}", r.stderr);
    assert_eq!(sb.spooled("reactio"), spooled, "kept");
    assert!(sb.failed("reactio").is_empty());
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("acted on it after all"), "{}", r.stderr);
    assert_eq!(fake.incidents().len(), 1, "not opened twice: {}", r.stderr);
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["refs"]["incident_id"], FIRST_ID);
    fake.assert_no_violations();
}

#[test]
fn a_lost_create_put_on_hold_or_closed_before_the_flush_is_found_not_opened_twice() {
    // Reactio opens the incident and answers past the deadline; before the flush, someone puts
    // it on hold (or closes it) in Reactio. The lookup asked for the status it was created
    // with alone, found nothing, and sent the create again: a second incident and broadcast.
    for status in ["pend", "close"] {
        let fake = FakeReactio::start(&[Script::Late(4000)]);
        let sb = sandbox(json!({}));
        let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "2s"]);
        assert_eq!(r.code, Some(75), "{r:?}");
        assert_eq!(fake.incidents().len(), 1);
        fake.set_status(FIRST_ID, status);
        let r = run(&sb, &fake, b"", &["--flush"]);
        assert_eq!(r.code, Some(0), "{status}: {r:?}");
        assert!(r.stderr.contains("acted on it after all"), "{status}: {}", r.stderr);
        assert_eq!(fake.incidents().len(), 1, "{status}: not opened twice: {}", r.stderr);
        fake.assert_no_violations();
    }
}

#[test]
fn a_lost_create_is_found_on_page_2_of_a_reactio_serving_fewer_than_asked() {
    // Reactio serves 5 incidents a page (the spec sets no maximum for `per_page`), and 5 others
    // were opened since: the lost create's incident is on page 2. Judged on page 1 alone (5,
    // fewer than the 100 asked for) it was taken for not there, and the create went again.
    let fake = FakeReactio::start(&[Script::Late(4000)]);
    fake.serve_at_most(5);
    fake.opened_elsewhere(OTHERS, 5);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(fake.incidents().len(), 6);
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("acted on it after all"), "{}", r.stderr);
    assert_eq!(fake.incidents().len(), 6, "not opened twice: {}", r.stderr);
    let pages: Vec<String> =
        fake.lists().iter().map(|q| q.split('&').filter(|p| !p.starts_with("from=")).collect::<Vec<_>>().join("&")).collect();
    // Page 2 is shorter than page 1: the last of the open incidents; then the other lists.
    assert_eq!(pages, vec![open_page(1), open_page(2), pend_page(1), "status=close&page=1&per_page=100".to_string()]);
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["refs"]["incident_id"], FIRST_ID + 5);
    fake.assert_no_violations();
}

#[test]
fn only_critical_opens_incidents_by_default() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/flapping.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("severity warning is not in severities [critical]"), "{}", r.stderr);
    // Settings can widen it.
    let sb = sandbox(json!({"severities": ["warning", "critical"]}));
    assert_eq!(run(&sb, &fake, &read_fixture("sensu/flapping.json"), &[]).code, Some(0));
    assert_eq!(fake.accepted(INCIDENTS).len(), 1);
}

#[test]
fn japanese_output_round_trips_intact() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({"message": "{output}", "notification_text": "{entity} で障害: {output}", "topics": ["原因調査", "復旧作業"]}));
    let r = run(&sb, &fake, &read_fixture("sensu/japanese-long.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let fixture: Value = serde_json::from_slice(&read_fixture("sensu/japanese-long.json")).unwrap();
    let output = fixture["check"]["output"].as_str().unwrap().trim_end();
    let sent = &fake.accepted(INCIDENTS)[0];
    let name = format!("db-tokyo-01/check_log {output}");
    assert_eq!(sent["name"], common::template::truncate_chars(&name, 255), "cut to 255 characters on a character boundary, no mojibake");
    assert_eq!(sent["message"], output);
    assert_eq!(sent["notification_text"], format!("db-tokyo-01 で障害: {output}"));
    assert_eq!(sent["topics"], json!(["原因調査", "復旧作業"]));
    assert_eq!(fake.incidents()[0]["topics"][0]["name"], "原因調査");
    // The dry run prints the same text verbatim.
    let r = run(&sb, &fake, &read_fixture("sensu/japanese-long.json"), &["--dry-run"]);
    let printed: Value = serde_json::from_str(&r.stdout).expect("stdout is the JSON body");
    assert_eq!(printed["message"], output);
}

#[test]
fn check_output_is_text_in_timeline_messages() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({"message": "<p>{output}</p>"}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["check"]["output"] = "HTTP CRITICAL: <title>502</title> & more\nline 2\n".into();
    assert_eq!(run(&sb, &fake, ev.to_string().as_bytes(), &[]).code, Some(0));
    let sent = &fake.accepted(INCIDENTS)[0];
    assert_eq!(sent["message"], "<p>HTTP CRITICAL: &lt;title&gt;502&lt;/title&gt; &amp; more<br />line 2</p>");
    assert_eq!(sent["name"], "web-01/check_disk HTTP CRITICAL: <title>502</title> & more line 2");
}

/// A key rotated at Reactio and not yet in the settings: the flush's spooled create is answered
/// 401. It stays in the spool (not moved to `failed/`): the flush builds it with the key in
/// force, so the flush after the fix opens the incident. (A live event's 401 stays a refusal,
/// exit 69: `unauthorized_401_exits_69_with_reactios_message`.)
#[test]
fn a_create_a_flush_cannot_authenticate_stays_spooled_until_the_key_is_fixed() {
    let sb = sandbox(json!({}));
    let r = sb.run(&["--api-url", crate::util::REFUSED_URL, "--timeout", "1s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("reactio").len(), 1, "{}", r.stderr);
    let fake = FakeReactio::start(&[]);
    let wrong = "not-the-right-key-000000000000000dead";
    let r = run(&sb, &fake, b"", &["--flush", "--api-key", wrong]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(
        r.stderr.contains("HTTP 401 authentication_error: invalid api key")
            && r.stderr.contains("fix the configuration; the entry is kept"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(wrong), "{}", r.stderr);
    assert!(fake.accepted(INCIDENTS).is_empty());
    assert_eq!(sb.spooled("reactio").len(), 1, "kept: {}", r.stderr);
    assert!(sb.failed("reactio").is_empty(), "{:?}", sb.failed("reactio"));
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.accepted(INCIDENTS).len(), 1, "{}", r.stderr);
    assert!(sb.spooled("reactio").is_empty());
    fake.assert_no_violations();
}

/// One check carries an API key of its own (a check attribute, a check-level setting) that
/// Reactio no longer accepts, and its create was spooled while Reactio was unreachable, before
/// another check's. At the flush its 401 keeps it in the spool; the other check's create,
/// sent with the operator's key, still goes out: one destination's refused key does not hold
/// back every other incident's page until `spool_max_age` gives them up. And since the refused
/// key is the entry's own (kept with it), no fix of the settings can deliver it: it is refused
/// for good (moved to `failed/`, exit 69), as before the flush kept 401s.
#[test]
fn a_check_keys_401_at_the_flush_holds_back_no_other_incidents_page() {
    let sb = sandbox(json!({}));
    let wrong = "not-the-right-key-000000000000000dead";
    let mut own: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    own["check"]["name"] = json!("check_db");
    own["check"]["reactio"] = json!({"api_key": wrong});
    let r = sb.run(&["--api-url", crate::util::REFUSED_URL, "--timeout", "1s"], own.to_string().as_bytes());
    assert_eq!(r.code, Some(75), "{r:?}");
    let r = sb.run(&["--api-url", crate::util::REFUSED_URL, "--timeout", "1s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("reactio").len(), 2);
    let fake = FakeReactio::start(&[]);
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert!(r.stderr.contains("HTTP 401 authentication_error: invalid api key"), "{}", r.stderr);
    assert!(!r.stderr.contains(wrong), "{}", r.stderr);
    let opened: Vec<String> = fake.accepted(INCIDENTS).iter().map(|b| b["name"].as_str().unwrap_or("").to_string()).collect();
    assert!(opened.len() == 1 && opened[0].starts_with("web-01/check_disk"), "the other check's page went out: {opened:?} {}", r.stderr);
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(sb.spooled("reactio").is_empty(), "{:?}", sb.spooled("reactio"));
    assert_eq!(sb.failed("reactio").len(), 1, "{}", r.stderr);
    fake.assert_no_violations();
}

/// The other way round: the operator's key is the one refused at the flush (rotated at
/// Reactio, not yet in the settings), so the create sent with it is kept for the flush after
/// the fix; a check that pages with a key of its own is not held back by it.
#[test]
fn the_operators_key_refused_at_the_flush_holds_back_no_page_sent_with_another_key() {
    let wrong = "not-the-right-key-000000000000000dead";
    let sb = sandbox(json!({"api_key": wrong}));
    let r = sb.run(&["--api-url", crate::util::REFUSED_URL, "--timeout", "1s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    let mut own: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    own["check"]["name"] = json!("check_db");
    own["check"]["reactio"] = json!({"api_key": API_KEY});
    let r = sb.run(&["--api-url", crate::util::REFUSED_URL, "--timeout", "1s"], own.to_string().as_bytes());
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("reactio").len(), 2);
    let fake = FakeReactio::start(&[]);
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("fix the configuration; the entry is kept"), "{}", r.stderr);
    let opened: Vec<String> = fake.accepted(INCIDENTS).iter().map(|b| b["name"].as_str().unwrap_or("").to_string()).collect();
    assert!(opened.len() == 1 && opened[0].starts_with("web-01/check_db"), "{opened:?} {}", r.stderr);
    assert_eq!(sb.spooled("reactio").len(), 1, "{}", r.stderr);
    assert!(sb.failed("reactio").is_empty(), "{:?}", sb.failed("reactio"));
    let r = run(&sb, &fake, b"", &["--flush", "--api-key", API_KEY]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.accepted(INCIDENTS).len(), 2, "{}", r.stderr);
    fake.assert_no_violations();
}

#[test]
fn unauthorized_401_exits_69_with_reactios_message() {
    let fake = FakeReactio::start(&[]);
    let wrong = "not-the-right-key-000000000000000dead";
    let sb = sandbox(json!({"api_key": wrong}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("trigger web-01/check_disk refused: HTTP 401 authentication_error: invalid api key"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains(wrong), "{}", r.stderr);
    assert_eq!(fake.calls().len(), 1, "a 401 is never retried");
    fake.assert_no_violations();
    // The failed trigger left nothing behind (not even the record its in-flight note made).
    assert!(!sb.state_dir().join("reactio/web-01%2Fcheck_disk.json").exists());
}

#[test]
fn validation_error_400_exits_69_listing_the_fields() {
    let fake = FakeReactio::start(&[Script::Invalid]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("HTTP 400 validation_error: validation error (notification_text: missing_field)"), "{}", r.stderr);
    assert_eq!(fake.calls().len(), 1);
}

#[test]
fn server_error_then_201_is_delivered() {
    let fake = FakeReactio::start(&[Script::ServerError]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("attempt 1 failed: HTTP 500 internal_server_error: Internal Server Error"), "{}", r.stderr);
    assert!(r.stderr.contains("POST /api/v1/incidents 201 in "), "{}", r.stderr);
    assert_eq!(fake.accepted(INCIDENTS).len(), 1);
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["refs"]["incident_id"], FIRST_ID);
    fake.assert_no_violations();
}

#[test]
fn server_errors_until_the_deadline_exit_75() {
    let fake = FakeReactio::start(&[Script::ServerError; 100]);
    let sb = sandbox(json!({}));
    // The same check result handed over twice (a repeat of one execution): a later execution
    // queues behind the spooled one instead, to be decided at its turn.
    let event = fixture_at("sensu/create.json", crate::util::unix_now());
    let r = run(&sb, &fake, &event, &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("not delivered ("), "{}", r.stderr);
    assert!(fake.calls().len() >= 2, "retried: {}", fake.calls().len());
    // Spooled for later; a repeat is not queued a second time (it would open a second
    // incident), though nothing is recorded as delivered.
    assert_eq!(sb.spooled("reactio").len(), 1, "{}", r.stderr);
    let r = run(&sb, &fake, &event, &["--timeout", "1s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert_eq!(sb.spooled("reactio").len(), 1);
}

#[test]
fn hanging_service_exits_75_within_the_timeout() {
    let fake = FakeReactio::start(&[Script::Hang; 4]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    // A request that may have reached the service is not repeated within a deadline that
    // cannot give it a whole attempt: at most one attempt per half of the 2 s.
    assert!(fake.calls().len() <= 2, "{}", fake.calls().len());
}

#[test]
fn dry_run_prints_the_request_with_the_key_masked() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--dry-run", "-v"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let body: Value = serde_json::from_str(&r.stdout).expect("stdout is the JSON body");
    assert_eq!(body["name"], "web-01/check_disk CheckDisk CRITICAL: / 95.2% used (45G of 47G)");
    assert!(r.stderr.contains(&format!("dry run: would POST {}/api/v1/incidents", fake.url)), "{}", r.stderr);
    let tail = &API_KEY[API_KEY.len() - 4..];
    assert!(r.stderr.contains(&format!("X-Api-Key: {}{tail}", "*".repeat(API_KEY.len() - 4))), "{}", r.stderr);
    assert!(!r.stdout.contains(API_KEY) && !r.stderr.contains(API_KEY));
    assert!(fake.calls().is_empty());
    assert_eq!(std::fs::read_dir(sb.state_dir()).unwrap().count(), 0, "no state written");
    // A resolve cannot know the stored id in a dry run; it shows where it would go.
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &["--dry-run"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let body: Value = serde_json::from_str(&r.stdout).expect("stdout is the JSON body");
    assert_eq!(body, json!({"incident_id": "{stored incident_id}", "message": "recovered: CheckDisk OK: / 61.0% used"}));
}

#[test]
fn missing_api_key_or_organization_exits_78_saying_where_to_put_them() {
    let sb = Sandbox::new(BIN);
    sb.config("reactio.json", &json!({"reactio": {"organization": "example"}}));
    let r = sb.run(&[], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("REACTIO_API_KEY") && r.stderr.contains("reactio.api_key"), "{}", r.stderr);
    // A dry run only warns.
    let r = sb.run(&["--dry-run"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("warn: no Reactio API key"), "{}", r.stderr);
    assert!(r.stderr.contains("would POST https://example.reactio.jp/api/v1/incidents"), "{}", r.stderr);
    // The key from the environment, but no organization and no api_url.
    let sb = Sandbox::new(BIN);
    let mut cmd = sb.command(&[]);
    cmd.env("REACTIO_API_KEY", API_KEY);
    let r = run_command(cmd, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("reactio.organization"), "{}", r.stderr);
}

#[test]
fn api_key_from_the_environment_and_organization_from_a_flag() {
    let fake = FakeReactio::start(&[]);
    let sb = Sandbox::new(BIN);
    let mut cmd = sb.command(&["--organization", "example", "--api-url", &fake.url]);
    cmd.env("REACTIO_API_KEY", API_KEY);
    let r = run_command(cmd, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.accepted(INCIDENTS).len(), 1);
    // `--help` never shows the key's value.
    let mut cmd = sb.command(&["--help"]);
    cmd.env("REACTIO_API_KEY", API_KEY);
    let r = run_command(cmd, b"");
    assert!(r.stdout.contains("REACTIO_API_KEY") && !r.stdout.contains(API_KEY), "{}", r.stdout);
}

/// `--help` states the `severities` default Reactio applies (`critical`), not the shared one.
#[test]
fn help_states_the_severities_default_it_applies() {
    let sb = Sandbox::new(BIN);
    let r = sb.run(&["--help"], b"");
    let para = r.stdout.split("--severities").nth(1).and_then(|s| s.split("\n\n").next()).unwrap_or_default().to_string();
    assert!(para.contains("[default: critical]"), "{para}");
    let mut warning: serde_json::Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    warning["check"]["status"] = json!(1);
    let r = sb.run(&["--explain", "--api-key", API_KEY, "--organization", "example"], &serde_json::to_vec(&warning).unwrap());
    assert!(r.stdout.contains("settings: severities critical,"), "{}", r.stdout);
}

#[test]
fn invalid_enum_settings_exit_78() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({"point": "disk"}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(
        r.stderr.contains("settings `reactio.point`: unknown variant `disk`, expected one of `network`, `shared-hardware`"),
        "{}",
        r.stderr
    );
    assert!(fake.calls().is_empty());
}

#[test]
fn classification_settings_reach_the_incident() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({"status": "pend", "detection": "system", "cause": "unknown", "point": "middleware", "scale": "point"}));
    assert_eq!(run(&sb, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    fake.assert_no_violations();
    let sent = &fake.accepted(INCIDENTS)[0];
    for (k, v) in [("status", "pend"), ("detection", "system"), ("cause", "unknown"), ("point", "middleware"), ("scale", "point")] {
        assert_eq!(sent[k], v, "{k}");
    }
}

#[test]
fn the_example_configuration_is_valid() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d/reactio.json");
    let sb = Sandbox::new(BIN);
    let mut cmd = sb.command(&["--dry-run"]);
    cmd.arg("--config").arg(&example);
    let r = run_command(cmd, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("would POST https://"), "{}", r.stderr);
    let body: Value = serde_json::from_str(&r.stdout).expect("stdout is the JSON body");
    assert_eq!(body["notification_text"], "対応をお願いします");
}

#[test]
fn zabbix_problem_and_recovery_meet_on_one_incident() {
    let fake = FakeReactio::start(&[]);
    let sb = sandbox(json!({}));
    let problem =
        "name:Zabbix agent on web-01 is unreachable for 5 minutes\nid:13502\nstatus:PROBLEM\nhostname:web-01\nvalue:1\nseverity:High\n";
    let r = run(&sb, &fake, b"", &["--from", "zabbix", "ops", "PROBLEM", problem]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let recovery = problem.replace("status:PROBLEM", "status:OK").replace("value:1", "value:0");
    let r = run(&sb, &fake, b"", &["--from", "zabbix", "ops", "OK", &recovery]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(fake.accepted(INCIDENTS).len(), 1);
    assert_eq!(fake.accepted(MESSAGES)[0]["incident_id"], FIRST_ID);
    assert_eq!(sb.state("reactio", "13502-web-01.json")["open"], false);
}

/// An incident opened on another host at `t - 600`, and a recovery at `t - 300` here whose
/// incident list answers 500: spooled as a run that looks its incident up. The lists answer
/// again afterwards.
fn recovery_run_spooled(fake: &FakeReactio, t: i64) -> Sandbox {
    let elsewhere = sandbox(json!({}));
    assert_eq!(run(&elsewhere, fake, &fixture_at("sensu/create.json", t - 600), &[]).code, Some(0));
    let sb = sandbox(json!({}));
    fake.fail_lists(1000);
    let r = run(&sb, fake, &fixture_at("sensu/resolve.json", t - 300), &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("reactio").len(), 1, "{}", r.stderr);
    fake.fail_lists(0);
    sb
}

fn recovered_ids(fake: &FakeReactio) -> Vec<Value> {
    fake.accepted(MESSAGES).iter().map(|m| m["incident_id"].clone()).collect()
}

#[test]
fn two_flushes_at_once_post_a_spooled_recovery_run_once() {
    // The create, then the recovery message answered 1.5 s late: the other flush meets it mid-way.
    let fake = FakeReactio::start(&[Script::Accept, Script::Late(1500)]);
    let t = crate::util::unix_now();
    let sb = recovery_run_spooled(&fake, t);
    let flush = || sb.command(&["--api-url", &fake.url, "--flush", "--timeout", "10s"]);
    let runs = crate::util::run_together(vec![flush(), flush()], b"");
    for r in &runs {
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    assert_eq!(recovered_ids(&fake), vec![json!(FIRST_ID)], "{runs:?}");
    assert!(sb.spooled("reactio").is_empty());
    fake.assert_no_violations();
}

/// A flush killed (kill -9, the timer's timeout) after the ledger recorded the recovery the run
/// posted, before the entry left the spool: the next flush took the record of its own resolve
/// (its token) for a run to carry on, looked the incident up again (Reactio still lists it
/// open: the recovery is a timeline message) and posted the recovery a second time.
#[test]
fn a_recovery_run_recorded_before_a_kill_is_not_posted_again_by_the_next_flush() {
    let fake = FakeReactio::start(&[]);
    let t = crate::util::unix_now();
    let sb = recovery_run_spooled(&fake, t);
    let (path, entry) = sb.spooled_entry("reactio", "");
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(recovered_ids(&fake), vec![json!(FIRST_ID)]);
    // The spool as a kill between the record of the delivery and the removal leaves it.
    std::fs::write(&path, entry.to_string()).unwrap();
    let r = run(&sb, &fake, b"", &["--flush"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(recovered_ids(&fake), vec![json!(FIRST_ID)], "posted once\n{}", r.stderr);
    assert!(sb.spooled("reactio").is_empty(), "{}", r.stderr);
    assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["open"], false);
    fake.assert_no_violations();
}

/// A second recovery of the check while the first one's run is spooled, with the list readable
/// again (its invocation carries the run on first) or not yet: one recovery posted to the open
/// incident, the second one skipped as already resolved.
#[test]
fn a_second_recovery_while_the_recovery_run_is_spooled_posts_one_recovery() {
    for lists_down in [false, true] {
        let fake = FakeReactio::start(&[]);
        let t = crate::util::unix_now();
        let sb = recovery_run_spooled(&fake, t);
        if lists_down {
            fake.fail_lists(1000);
        }
        let r = run(&sb, &fake, &fixture_at("sensu/resolve.json", t - 100), &["--timeout", "1s"]);
        // With the list still unreadable it is queued behind the run (75), or skipped as a
        // repeat of the resolve the spool holds (0).
        assert!(r.code == Some(0) || (lists_down && r.code == Some(75)), "{r:?}");
        fake.fail_lists(0);
        let r = run(&sb, &fake, b"", &["--flush"]);
        assert_eq!(r.code, Some(0), "{r:?}");
        assert_eq!(recovered_ids(&fake), vec![json!(FIRST_ID)], "lists down: {lists_down}\n{}", r.stderr);
        assert!(sb.spooled("reactio").is_empty(), "{}", r.stderr);
        fake.assert_no_violations();
    }
}

/// A recovery with no stored incident id whose incident list is answered 200 with something
/// that is not the documented JSON array (a maintenance page, `{}`): it cannot say that no
/// incident is open. Before, it was read as an empty list: "nothing to post the recovery to",
/// exit 0, the ledger said resolved, and the Reactio incident stayed open for good. Now it is
/// retried, then spooled (exit 75) as when the list answers 500, and the flush posts it.
#[test]
fn a_recovery_whose_incident_list_is_not_a_list_is_spooled_not_taken_for_no_incident() {
    for body in ["<html><body>Maintenance</body></html>", "{}"] {
        let fake = FakeReactio::start(&[]);
        let elsewhere = sandbox(json!({}));
        assert_eq!(run(&elsewhere, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
        let sb = sandbox(json!({}));
        fake.garble_lists(1000, body);
        let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &["--timeout", "1s"]);
        assert_eq!(r.code, Some(75), "{body}: {r:?}");
        assert!(r.stderr.contains("GET /api/v1/incidents answered HTTP 200 without a list"), "{}", r.stderr);
        assert!(!r.stderr.contains("nothing to post the recovery to"), "{}", r.stderr);
        assert_eq!(sb.spooled("reactio").len(), 1, "{}", r.stderr);
        assert!(fake.accepted(MESSAGES).is_empty());
        fake.garble_lists(0, body);
        let r = run(&sb, &fake, b"", &["--flush"]);
        assert_eq!(r.code, Some(0), "{r:?}");
        assert_eq!(
            fake.accepted(MESSAGES),
            vec![json!({"incident_id": FIRST_ID, "message": "recovered: CheckDisk OK: / 61.0% used"})],
            "{body}: {}",
            r.stderr
        );
        assert_eq!(sb.state("reactio", "web-01%2Fcheck_disk.json")["open"], false);
        fake.assert_no_violations();
    }
}
