//! Red-team findings: attacks by a monitored host (event fields) or by one member of the shared
//! `pagerpipe` group (files planted in the 2775 state and spool directories) that still
//! redirected, delayed or swallowed a page, each run black-box against the real binary and a
//! loopback fake. One test per finding; the commit that adds it says what was wrong.

use serde_json::{Value, json};

use crate::fake::pagerduty::FakePagerDuty;
use crate::util::{REFUSED_URL, ROUTING_KEY, Run, Sandbox, fixture_at, pagerduty_sandbox, read_fixture, twilio_sandbox};

const PD: &str = env!("CARGO_BIN_EXE_handler-pagerduty");

/// 2100-01-01T00:00:00Z: a `check.executed` from a host whose clock is far ahead (or forged).
const YEAR_2100: i64 = 4_102_444_800;

fn now() -> i64 {
    crate::util::unix_now()
}

/// Run `sb`'s handler against `fake` with the `fixture` whose check ran at `executed`, as if
/// received at `received` (Unix seconds: `PAGERPIPE_NOW`).
fn run_at(sb: &Sandbox, fake: &FakePagerDuty, fixture: &str, executed: i64, received: i64) -> Run {
    let mut cmd = sb.command(&["--api-url", &fake.url]);
    cmd.env("PAGERPIPE_NOW", received.to_string());
    crate::util::run_command(cmd, &fixture_at(fixture, executed))
}

/// `sb`'s handler on "host" `host` (its own spool) with `args`, its clock reading `received`.
fn on_host_at(sb: &Sandbox, host: &str, args: &[&str], received: i64) -> std::process::Command {
    let mut cmd = sb.command_on_host(host, args);
    cmd.env("PAGERPIPE_NOW", received.to_string());
    cmd
}

fn actions(fake: &FakePagerDuty) -> Vec<String> {
    fake.events().iter().map(|e| e["event_action"].as_str().unwrap_or_default().to_string()).collect()
}

/// `r`, the recovery after a failure, was sent (PagerDuty saw trigger then resolve) and the
/// ledger holds nothing open.
fn recovered_and_closed(sb: &Sandbox, fake: &FakePagerDuty, r: &Run) {
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("superseded"), "{}", r.stderr);
    assert_eq!(actions(fake), ["trigger", "resolve"], "{}", r.stderr);
    let list = sb.run(&["--list", "--log-format", "json"], b"");
    assert_eq!((list.code, list.stdout.as_str()), (Some(0), ""), "nothing left open: {list:?}");
    fake.assert_no_violations();
}

/// A Sensu 1.x client writes `check.executed` itself. One event stamped in the year 2100 made
/// the record's event time 2100, so every later event of the incident — the recovery, every
/// new failure — was "superseded" and never sent: the incident stayed open at PagerDuty forever.
#[test]
fn an_event_time_in_the_future_does_not_supersede_every_later_event() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/create.json", YEAR_2100));
    assert_eq!(r.code, Some(0), "{r:?}");
    // Nor does it date the alert in 2100: the payload's time is never after receipt.
    let ts = fake.events()[0]["payload"]["timestamp"].as_str().unwrap_or_default().to_string();
    assert!(ts.as_str() < "2100", "{ts}");
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/resolve.json", now()));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("superseded"), "{}", r.stderr);
    assert_eq!(actions(&fake), ["trigger", "resolve"], "{}", r.stderr);
    fake.assert_no_violations();
}

/// The other way round: a Sensu Go agent writes `check.executed` with its host's clock, and
/// that clock steps back an hour (a VM restored from a snapshot, a dead RTC battery, or on
/// purpose). Every failure in that hour read as older than the recovery already applied, so
/// it was "superseded" and never sent: the host's clock dropped its own pages. A host's time
/// is now believed only up to 60 s before its receipt.
#[test]
fn a_host_clock_stepped_back_does_not_supersede_the_next_failure() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let t = now();
    let run_at = |fixture: &str, executed: i64, received: i64| run_at(&sb, &fake, fixture, executed, received);
    let r = run_at("sensu-go/failing.json", t - 300, t - 300);
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = run_at("sensu-go/passing.json", t - 180, t - 180);
    assert_eq!(r.code, Some(0), "{r:?}");
    // Three minutes later the host's clock reads an hour earlier.
    let r = run_at("sensu-go/failing.json", t - 3600, t);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("superseded"), "{}", r.stderr);
    assert_eq!(actions(&fake), ["trigger", "resolve", "trigger"], "{}", r.stderr);
    fake.assert_no_violations();
}

/// The bound's other side: a storm of one event handed over again and again long after its
/// check ran (a backlog in the monitoring pipeline, or a host clock minutes behind). Each
/// repeat's time was the bound, which moves with its receipt, so every skip rewrote the
/// incident's record to note a time that says when the event arrived, not when the check ran.
/// A repeat now writes nothing, and a recovery received after it still resolves.
#[test]
fn a_late_repeat_writes_nothing_and_the_recovery_after_it_still_resolves() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let t = now();
    let run_at = |fixture: &str, executed: i64, received: i64| run_at(&sb, &fake, fixture, executed, received);
    let record = || std::fs::read(sb.state_dir().join("pagerduty").join("web-01%2Fcheck_disk.json")).expect("the incident's record");
    let r = run_at("sensu/create.json", t - 900, t - 600);
    assert_eq!(r.code, Some(0), "{r:?}");
    let triggered = record();
    for received in [t - 500, t - 400] {
        let r = run_at("sensu/create.json", t - 900, received);
        assert_eq!(r.code, Some(0), "{r:?}");
        assert!(r.stderr.contains("skipped web-01/check_disk: already notified"), "{}", r.stderr);
        assert_eq!(String::from_utf8_lossy(&record()), String::from_utf8_lossy(&triggered), "a repeat rewrote the record");
    }
    // The recovery, as late: received after the repeats, it is ordered after them.
    let r = run_at("sensu/resolve.json", t - 890, t - 300);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("superseded"), "{}", r.stderr);
    assert_eq!(actions(&fake), ["trigger", "resolve"], "{}", r.stderr);
    fake.assert_no_violations();
}

/// Two hosts sharing the ledger whose clocks disagree by a few seconds, in a storm whose events
/// arrive minutes after their checks ran: each event's time is its receipt (the lateness bound),
/// read on the clock of the host that took it. The recovery, taken a moment after the failure
/// by a host whose clock is behind, read as older than the failure: "superseded", never sent,
/// and the incident stayed open after the problem was gone. Two receipts are now in the order
/// they were handled; a time the event gave still orders as before (the test above).
#[test]
fn a_recovery_received_on_a_host_whose_clock_is_behind_still_resolves() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let t = now();
    // Host A, its clock 3 s ahead, takes the failure; host B, 3 s behind, the recovery after it.
    let r = run_at(&sb, &fake, "sensu/create.json", t - 600, t + 3);
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = run_at(&sb, &fake, "sensu/resolve.json", t - 590, t - 3);
    recovered_and_closed(&sb, &fake, &r);
}

/// The same two hosts, and the recovery waits in the spool: host A is still delivering the
/// failure (PagerDuty slow to answer), so host B's recovery queues behind it (exit 75). At B's
/// flush it was compared with A's failure by the two clocks and dropped as "superseded": the
/// incident stayed open. A spooled recovery is now superseded by a receipt only when that is
/// more than `RECEIPT_SKEW_SECS` (10 s) later than its own.
#[test]
fn a_recovery_queued_behind_another_hosts_delivery_still_resolves_at_the_flush() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[crate::fake::pagerduty::Script::Gated]);
    let t = now();
    let on = |host: &str, args: &[&str], received: i64| on_host_at(&sb, host, args, received);
    let a = crate::util::spawn_command(
        on("a", &["--api-url", &fake.url, "--timeout", "20s"], t + 3),
        &fixture_at("sensu/create.json", t - 600),
    );
    crate::util::wait_until(
        "A's trigger at PagerDuty",
        std::time::Duration::from_secs(20),
        || (!fake.events().is_empty()).then_some(()),
        String::new,
    );
    let r =
        crate::util::run_command(on("b", &["--api-url", &fake.url, "--timeout", "2s"], t - 3), &fixture_at("sensu/resolve.json", t - 590));
    assert_eq!(r.code, Some(75), "queued behind A's delivery: {r:?}");
    fake.open_gate();
    let ra = crate::util::finish(a);
    assert_eq!(ra.code, Some(0), "{ra:?}");
    let r = crate::util::run_command(on("b", &["--api-url", &fake.url, "--flush"], t - 2), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(actions(&fake), ["trigger", "resolve"], "{}", r.stderr);
    let r = sb.run(&["--list", "--log-format", "json"], b"");
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), ""), "nothing left open: {r:?}");
}

/// One host whose clock steps back 6 s while PagerDuty is unreachable: the failure and then
/// its recovery are both spooled, by their receipts. The flush sent the failure and dropped the
/// recovery as older; now both go, in the order they came.
#[test]
fn a_spooled_recovery_received_after_a_clock_step_back_still_resolves() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let t = now();
    let spool = |fixture: &str, executed: i64, received: i64| {
        let mut cmd = sb.command(&["--api-url", REFUSED_URL, "--timeout", "2s"]);
        cmd.env("PAGERPIPE_NOW", received.to_string());
        crate::util::run_command(cmd, &fixture_at(fixture, executed))
    };
    assert_eq!(spool("sensu/create.json", t - 600, t + 3).code, Some(75));
    assert_eq!(spool("sensu/resolve.json", t - 590, t - 3).code, Some(75));
    let r = sb.run(&["--api-url", &fake.url, "--flush"], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(actions(&fake), ["trigger", "resolve"], "{}", r.stderr);
}

/// A failure that gives no time (ordered by its receipt: a Sensu 1.x result without
/// `check.executed`, a keepalive or TTL event) and then its recovery, whose check ran 20 s
/// before the failure arrived on the host's own clock: which happened first cannot be told
/// (the failure happened at some time before it arrived). The recovery was "superseded" and
/// the incident stayed open for good; it is now sent (one more than the lateness bound older
/// is still superseded: `state::applied_after`'s unit test).
#[test]
fn a_recovery_timed_by_its_host_after_a_failure_timed_by_its_receipt_resolves() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let t = now();
    let mut untimed: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    untimed["check"].as_object_mut().unwrap().remove("executed");
    untimed.as_object_mut().unwrap().remove("timestamp");
    let mut cmd = sb.command(&["--api-url", &fake.url]);
    cmd.env("PAGERPIPE_NOW", t.to_string());
    let r = crate::util::run_command(cmd, untimed.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = run_at(&sb, &fake, "sensu/resolve.json", t - 20, t + 10);
    recovered_and_closed(&sb, &fake, &r);
}

/// A Sensu 1.x failure without `check.executed` (ordered by its receipt), as `untimed` makes it.
fn untimed(status: u64) -> Vec<u8> {
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["check"].as_object_mut().unwrap().remove("executed");
    ev["check"]["status"] = status.into();
    ev.as_object_mut().unwrap().remove("timestamp");
    serde_json::to_vec(&ev).unwrap()
}

/// What the bound above must not cost. Host A's recovery (its check ran at t-5, received at
/// t-4) is spooled: PagerDuty cannot be reached from A. 24 s after A received it, host B
/// receives the check's next failure, a WARNING without a time, and pages it. At A's flush the
/// recovery was sent, as its time is within the lateness bound before B's receipt, and closed
/// B's incident while the check still failed; but B received its failure after A had received
/// the recovery (more than the 10 s the hosts' clocks may differ): the recovery is the older
/// event and is superseded, as before the bound.
#[test]
fn a_spooled_recovery_does_not_close_a_failure_another_host_received_after_it() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let t = now();
    let on = |host: &str, args: &[&str], received: i64| on_host_at(&sb, host, args, received);
    let r = crate::util::run_command(on("a", &["--api-url", &fake.url], t - 100), &fixture_at("sensu/create.json", t - 100));
    assert_eq!(r.code, Some(0), "{r:?}");
    let r =
        crate::util::run_command(on("a", &["--api-url", REFUSED_URL, "--timeout", "1s"], t - 4), &fixture_at("sensu/resolve.json", t - 5));
    assert_eq!(r.code, Some(75), "spooled on A: {r:?}");
    let r = crate::util::run_command(on("b", &["--api-url", &fake.url], t + 20), &untimed(1));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(actions(&fake), ["trigger", "trigger"], "{}", r.stderr);
    let r = crate::util::run_command(on("a", &["--api-url", &fake.url, "--flush"], t + 30), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("superseded"), "{}", r.stderr);
    assert_eq!(actions(&fake), ["trigger", "trigger"], "B's incident left open: {}", r.stderr);
    let list = sb.run(&["--list", "--log-format", "json"], b"");
    assert!(list.stdout.contains("web-01/check_disk"), "{list:?}");
    fake.assert_no_violations();
}

/// The red team's case with the recovery spooled on another host: an untimed failure B
/// received at t, the recovery A received at t+10 (its check ran at t-20) and could not send.
/// A received it after B's failure, so which came first cannot be told: the flush sends it.
#[test]
fn a_spooled_recovery_received_after_an_untimed_failure_still_resolves_at_the_flush() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let t = now();
    let on = |host: &str, args: &[&str], received: i64| on_host_at(&sb, host, args, received);
    let r = crate::util::run_command(on("b", &["--api-url", &fake.url], t), &untimed(2));
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = crate::util::run_command(
        on("a", &["--api-url", REFUSED_URL, "--timeout", "1s"], t + 10),
        &fixture_at("sensu/resolve.json", t - 20),
    );
    assert_eq!(r.code, Some(75), "spooled on A: {r:?}");
    let r = crate::util::run_command(on("a", &["--api-url", &fake.url, "--flush"], t + 15), b"");
    recovered_and_closed(&sb, &fake, &r);
}

/// What the bound keeps: a failure really from before the recovery, handed over a moment after
/// it (Sensu Go runs the two handlers concurrently), is still superseded.
#[test]
fn a_host_time_within_seconds_of_receipt_still_orders_the_events() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let t = now();
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu-go/passing.json", t));
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu-go/failing.json", t - 5));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("superseded"), "{}", r.stderr);
    assert_eq!(actions(&fake), ["resolve"], "{}", r.stderr);
}

/// The same through the shared state directory: a member of the group plants a record whose
/// last event is from the year 2100. The recovery still goes out.
#[test]
fn a_planted_record_from_the_future_does_not_swallow_the_recovery() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let record = sb.state_file("pagerduty", "web-01%2Fcheck_disk.json");
    let planted = json!({
        "key": "web-01/check_disk", "open": true, "severity": "critical", "count": 1,
        "first_notified": now(), "last_notified": now(), "event_time": YEAR_2100,
        "last_action": "trigger", "token": "planted"
    });
    std::fs::write(&record, planted.to_string()).unwrap();
    // Stamped a little ahead, so that it reads as its receipt however the seconds fall (the
    // planted time counts as that receipt too); `now()` itself read as a second before the
    // receipt when a second boundary passed in between, and was superseded.
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/resolve.json", now() + 5));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(actions(&fake), ["resolve"], "{}", r.stderr);
}

/// A spool entry is a file any member of the group can rewrite, and a flush laid its stored
/// overrides over the settings unchecked: an `api_url` there sent this user's routing key (or
/// Twilio auth token) and its pages to a server of the planter's choosing. Stored overrides
/// are admitted as a check's at most: operator-only settings are refused, logged by name.
#[test]
fn a_rewritten_spool_entry_cannot_redirect_the_flush_or_its_credential() {
    let sb = pagerduty_sandbox();
    let r = sb.run(&["--api-url", REFUSED_URL, "--timeout", "1s"], &fixture_at("sensu/create.json", now()));
    assert_eq!(r.code, Some(75), "{r:?}");
    let (path, mut entry) = sb.spooled_entry("pagerduty", &r.stderr);
    let evil = FakePagerDuty::start(&[]);
    entry["overrides"] = json!({"api_url": evil.url, "timeout": "100ms", "spool_max_age": "1min"});
    std::fs::write(&path, entry.to_string()).unwrap();

    let fake = FakePagerDuty::start(&[]);
    let r = sb.run(&["--flush", "--timeout", "5s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(evil.events().is_empty(), "the planted api_url received {:?}", evil.events());
    assert_eq!(actions(&fake), ["trigger"], "{}", r.stderr);
    assert_eq!(fake.events()[0]["routing_key"], ROUTING_KEY);
    assert!(r.stderr.contains("`pagerduty.api_url` ignored: set by a spool entry"), "{}", r.stderr);
    assert!(!r.stderr.contains(&evil.url), "the planted value is not echoed: {}", r.stderr);
}

/// Make `path` owned by another user (uid 65534, `nobody`), as a file another member of the
/// group wrote. `false` when this is not root: the caller says SKIPPED and passes, except under
/// `CI=true`, where that fails.
fn owned_by_another_user(path: &std::path::Path) -> bool {
    if std::os::unix::fs::chown(path, Some(65534), Some(65534)).is_ok() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: this test needs root (chown)");
    eprintln!("\n*** SKIPPED: not root, cannot make a file owned by another user ***\n");
    false
}

/// A spool entry says whom to call and what to say (a Twilio call's `To` and `Twiml`, a
/// PagerDuty event), and a flush sent every entry in the shared directory with the flushing
/// user's credentials: another member of the group could plant one and have this user's
/// account page (or call) whatever it liked. Each user's flush delivers only entries it owns.
#[test]
fn a_spool_entry_another_user_owns_is_not_sent_with_this_users_credentials() {
    let sb = pagerduty_sandbox();
    let r = sb.run(&["--api-url", REFUSED_URL, "--timeout", "1s"], &fixture_at("sensu/create.json", now()));
    assert_eq!(r.code, Some(75), "{r:?}");
    let (path, mut entry) = sb.spooled_entry("pagerduty", &r.stderr);
    let names = sb.spooled("pagerduty");
    entry["payload"]["payload"]["summary"] = json!("forged by another member of the group");
    std::fs::write(&path, entry.to_string()).unwrap();
    if !owned_by_another_user(&path) {
        return;
    }
    let fake = FakePagerDuty::start(&[]);
    let r = sb.run(&["--flush", "--timeout", "5s", "--api-url", &fake.url, "-v"], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(fake.events().is_empty(), "sent: {:?}", fake.events());
    assert!(r.stderr.contains("belongs to another user (uid 65534); left for that user's flush"), "{}", r.stderr);
    assert_eq!(sb.spooled("pagerduty"), names, "left where it is, for its owner");
    // Nor does it hold this user's own page of the same incident back.
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/create.json", now()));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(actions(&fake), ["trigger"], "{}", r.stderr);
    assert_eq!(fake.events()[0]["payload"]["summary"].as_str().map(|s| s.contains("forged")), Some(false));
}

/// A member of the group plants records in the shared state directory: "resolved just now"
/// swallowed the recovery (the incident stayed open at PagerDuty), "notified just now" kept
/// the next failure quiet for a whole `refresh`, an event time of now superseded the event
/// being handled. A record another user owns is read as no record (logged): at worst a page
/// goes out twice, never not at all.
#[test]
fn a_record_another_user_planted_cannot_swallow_a_page() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let record = sb.state_file("pagerduty", "web-01%2Fcheck_disk.json");
    let t = now();
    let resolved = json!({"key": "web-01/check_disk", "open": false, "resolved_at": t, "event_time": t,
        "last_action": "resolve", "token": "planted"});
    std::fs::write(&record, resolved.to_string()).unwrap();
    if !owned_by_another_user(&record) {
        return;
    }
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/resolve.json", t - 5));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("belongs to another user (uid 65534); not trusted"), "{}", r.stderr);
    assert_eq!(actions(&fake), ["resolve"], "{}", r.stderr);

    let notified = json!({"key": "web-01/check_disk", "open": true, "severity": "critical", "count": 1,
        "first_notified": t, "last_notified": t, "event_time": t, "last_action": "trigger", "token": "planted"});
    std::fs::write(&record, notified.to_string()).unwrap();
    assert!(owned_by_another_user(&record));
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/create.json", t - 1));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(actions(&fake), ["resolve", "trigger"], "{}", r.stderr);
    // The record is this user's again, and dedups as usual.
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/create.json", t));
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert_eq!(fake.events().len(), 2);
}

/// A member of the group plants this user's lock file (`.locks-<euid>`) before the handler
/// ever made it, and keeps every byte of it locked: had the handler used it, every page would
/// have queued behind the planted lock (exit 75) and no outcome could be recorded, so every
/// repeat paged again. A lock file another user owns is moved aside at once (logged) and made
/// afresh: the page goes out, and its repeat is suppressed.
///
/// Needs root, to make a file owned by another user; elsewhere it says so and passes, except
/// under `CI=true`, where it fails.
#[test]
fn a_lock_file_another_user_planted_and_holds_is_not_used() {
    let sb = pagerduty_sandbox();
    let planted = sb.state_file("pagerduty", &format!(".locks-{}", crate::util::euid()));
    std::fs::write(&planted, [0u8; 16]).unwrap();
    if !owned_by_another_user(&planted) {
        return;
    }
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&planted).unwrap();
    // Every byte, as a process-associated `fcntl(F_SETLK)` lock (rustix's `fcntl_lock` takes
    // no other kind): it conflicts with the handler's open-file-description locks all the same.
    rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();

    let fake = FakePagerDuty::start(&[]);
    let t = now();
    let r = sb.run(&["--api-url", &fake.url, "--timeout", "3s"], &fixture_at("sensu/create.json", t - 1));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("belongs to another user (uid 65534)") && r.stderr.contains(".refused-"), "{}", r.stderr);
    assert!(!r.stderr.contains("cannot record"), "{}", r.stderr);
    let r2 = sb.run(&["--api-url", &fake.url, "--timeout", "3s"], &fixture_at("sensu/create.json", t));
    assert_eq!(r2.code, Some(0), "{r2:?}");
    assert!(r2.stderr.contains("already notified"), "{}", r2.stderr);
    assert!(!r2.stderr.contains("lock file"), "moved aside once: {}", r2.stderr);
    assert_eq!(actions(&fake), ["trigger"], "{}{}", r.stderr, r2.stderr);
    assert!(sb.spooled("pagerduty").is_empty(), "{}", r.stderr);
    drop(file);
}

/// A lock file that is not a lock file (too short: a member of the group planted it in the
/// 2775 directory, or a crash cut it) meets a storm of events of one incident. Each invocation
/// that judged it planted moved aside whatever was under its name by the time it renamed it:
/// often the fresh lock file another invocation had just made, and locked. Those invocations no
/// longer excluded each other (one run of 40 paged five times for one incident, and left 17
/// good lock files as `.refused-`), and one that found the name already gone failed ("cannot be
/// moved aside: No such file or directory"), delivering without the hold. Only the file that
/// was judged is moved aside, once; the others look again.
#[test]
fn a_storm_meeting_a_planted_lock_file_moves_only_that_file_aside_and_pages_once() {
    for round in 0..8 {
        let sb = pagerduty_sandbox();
        let dir = sb.state_dir().join("pagerduty");
        let planted = sb.state_file("pagerduty", &format!(".locks-{}", crate::util::euid()));
        std::fs::write(&planted, b"short").unwrap();
        let fake = FakePagerDuty::start(&[]);
        let cmds = (0..24).map(|_| sb.command(&["--api-url", &fake.url])).collect();
        let runs = crate::util::run_together(cmds, &fixture_at("sensu/create.json", now()));
        let stderr: String = runs.iter().map(|r| r.stderr.as_str()).collect();
        for r in &runs {
            assert_eq!(r.code, Some(0), "round {round}: {r:?}");
        }
        assert!(!stderr.contains("error"), "round {round}: {stderr}");
        assert_eq!(actions(&fake), ["trigger"], "round {round}: one page for one incident: {stderr}");
        let refused: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".refused-"))
            .map(|e| std::fs::read(e.path()).unwrap())
            .collect();
        assert_eq!(refused, [b"short".to_vec()], "round {round}: only the planted file is moved aside: {stderr}");
        assert_eq!(stderr.matches("moved to").count(), 1, "round {round}: {stderr}");
    }
}

/// Check output is the monitored host's: a NUL or the ESC of coloured output (`\e[31m`) went
/// into the `Twiml` as it was, and XML 1.0 allows neither, so Twilio could not parse the
/// document (the fake checks XML 1.0 characters as Twilio's parser does): nobody was called.
/// Characters XML cannot carry are left out of the spoken text. The SMS leaves out every
/// control character but line breaks and tabs too (a NUL may cut a text short on its way).
#[test]
fn a_control_character_in_the_output_does_not_cost_the_call() {
    use crate::fake::twilio::FakeTwilio;
    let sb = twilio_sandbox(json!({"recipients": ["+14155550101"], "channels": ["voice", "sms"]}));
    let fake = FakeTwilio::start(&[]);
    let mut event: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now())).unwrap();
    event["check"]["output"] = json!("\u{1b}[31mCRITICAL\u{1b}[0m disk\u{0} full\u{7}");
    let r = sb.run(&["--api-url", &fake.url], event.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let calls = fake.to("Calls.json");
    assert_eq!(calls.len(), 1, "{}", r.stderr);
    let said = &calls[0].twiml.as_ref().expect("Twiml").say[0];
    assert_eq!(said, "web-01 check_disk is critical. [31mCRITICAL[0m disk full");
    let texts = fake.to("Messages.json");
    assert_eq!(texts.len(), 1, "{}", r.stderr);
    assert_eq!(texts[0].param("Body"), Some("web-01 check_disk is critical. [31mCRITICAL[0m disk full"));
}

/// A record file larger than any record (or one this user cannot read) planted under an
/// incident's name failed every update of the key: no outcome was ever recorded, so every
/// repeat of the failure paged again. It is moved aside like a corrupt record.
#[test]
fn an_oversized_planted_record_does_not_make_every_repeat_page() {
    let sb = pagerduty_sandbox();
    std::fs::write(sb.state_file("pagerduty", "web-01%2Fcheck_disk.json"), vec![b' '; 1_100_000]).unwrap();
    let fake = FakePagerDuty::start(&[]);
    let t = now();
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/create.json", t - 1));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("cannot record"), "{}", r.stderr);
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/create.json", t));
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert_eq!(actions(&fake), ["trigger"], "{}", r.stderr);
    assert_eq!(sb.state("pagerduty", "web-01%2Fcheck_disk.json")["open"], true);
}

/// `--from exec` removed the handlers' credential variables from the job's environment, but
/// not `PAGERPIPE_STATE_STORE`, whose URL carries the shared Redis ledger's password: the batch
/// job could read it and rewrite every host's incident records. The job no longer sees it.
#[test]
fn an_exec_job_does_not_see_the_state_store_password() {
    let sb = pagerduty_sandbox();
    let mut cmd = sb.command(&[
        "--from",
        "exec",
        "--check",
        "nightly",
        "--dry-run",
        "--",
        "/bin/sh",
        "-c",
        "echo \"[store ${PAGERPIPE_STATE_STORE-unset}]\"; exit 1",
    ]);
    cmd.env("PAGERPIPE_STATE_STORE", "redis://:S3cretLedgerPassw0rd@127.0.0.1:1/0");
    let r = crate::util::run_command(cmd, b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("[store unset]"), "{}", r.stdout);
    assert!(!r.stdout.contains("S3cretLedgerPassw0rd") && !r.stderr.contains("S3cretLedgerPassw0rd"), "{r:?}");
}

/// `--from exec` takes the credential variables out of the job's environment (README: "a
/// credential kept in the environment … is not passed on to the job"), but the job runs as the
/// handler's user, and a process may read the environment of any process of its own user:
/// `cat /proc/$PPID/environ` in the job printed the routing key the handler was started with
/// (and a ptrace of the handler read any credential from its memory). The handler makes itself
/// non-dumpable before it starts the job, which leaves its `/proc` files to root.
///
/// Runs the handler as uid 65534 (`setpriv`, needs root: root reads any process's
/// environment); elsewhere it says SKIPPED and passes, except under `CI=true`.
#[test]
fn an_exec_job_cannot_read_the_credentials_from_the_handlers_process() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new(PD);
    if !owned_by_another_user(&sb.state_dir()) {
        return;
    }
    for d in [sb.dir.path().to_path_buf(), sb.conf_dir()] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::create_dir_all(sb.spool_dir()).unwrap();
    std::os::unix::fs::chown(sb.spool_dir(), Some(65534), Some(65534)).unwrap();
    let fake = FakePagerDuty::start(&[]);
    let mut cmd = command_as(&sb, 65534, 65534, &fake.url);
    cmd.args(["--from", "exec", "--check", "nightly", "--entity", "db-01", "--", "/bin/sh", "-c"]).arg(
        "tr '\\0' '\\n' < /proc/$PPID/environ && echo '[environ read]'; tr '\\0' '\\n' < /proc/$PPID/cmdline | grep -q exec && echo '[cmdline read]'; exit 1",
    );
    let r = crate::util::run_command(cmd, b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("[cmdline read]"), "the job did look at its parent: {}", r.stdout);
    assert!(!r.stdout.contains("[environ read]"), "{}", r.stdout);
    assert!(!r.stdout.contains(ROUTING_KEY), "{}", r.stdout);
    assert_eq!(actions(&fake), ["trigger"], "{}", r.stderr);
    let sent = fake.events();
    assert!(!sent[0]["payload"]["custom_details"]["output"].as_str().unwrap_or_default().contains(ROUTING_KEY));
    fake.assert_no_violations();
}

/// A directory the handler creates takes its parent's mode (so that under the packages' 2775
/// directories its own are group-writable too), but under a permissive umask (`umask 000`: a
/// cron or container set up carelessly) it was world-writable with no sticky bit: a relative
/// `--state-dir` / `--spool-dir` (or `XDG_STATE_HOME`) had no parent to copy and kept 0777,
/// and one made in a world-writable parent (`/tmp`) copied its mode. Any local user could then
/// delete the spooled pages and the records. The handler's directories are never writable by
/// others now, whatever the umask and the parent.
#[test]
fn directories_made_under_umask_000_are_not_writable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let sb = pagerduty_sandbox();
    let open_parent = sb.dir.path().join("tmp");
    std::fs::create_dir(&open_parent).unwrap();
    std::fs::set_permissions(&open_parent, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let fake = FakePagerDuty::start(&[]);
    for (state, spool) in [("rel/state", "rel/spool"), ("tmp/pp/state", "tmp/pp/spool")] {
        for api in [fake.url.as_str(), REFUSED_URL] {
            let mut cmd = std::process::Command::new("/bin/sh");
            cmd.current_dir(sb.dir.path())
                .env_clear()
                .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
                .env("PAGERPIPE_RETRY_BASE_MS", "20")
                .args(["-c", "umask 000 && exec \"$0\" \"$@\"", PD, "--config"])
                .arg(sb.conf_dir())
                .args(["--state-dir", state, "--spool-dir", spool, "--api-url", api, "--timeout", "1s"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let r = crate::util::run_command(cmd, &fixture_at("sensu/create.json", now()));
            assert!(matches!(r.code, Some(0 | 75)), "{state}: {r:?}");
        }
        let top = sb.dir.path().join(state.split('/').next().unwrap_or_default());
        let made = [state, spool, &format!("{state}/pagerduty"), &format!("{spool}/pagerduty")].map(|d| sb.dir.path().join(d));
        assert!(made.iter().all(|d| d.is_dir()), "{made:?}");
        for d in made.iter().chain(if top == open_parent { None } else { Some(&top) }) {
            let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode & 0o002, 0, "{} is {mode:o}", d.display());
        }
    }
    assert_eq!(actions(&fake), ["trigger", "trigger"], "both pages went out");
}

/// The same in a world-writable parent (`/tmp`) under an ordinary umask: the directories copied
/// its group write bit (`/tmp` is 1777, so they were 1775), which says nothing about the group
/// they get, the creating user's own: on a system whose users share a primary group (`users`),
/// each of them could remove the spooled pages and the records. Under such a parent they are
/// writable by their owner only.
#[test]
fn directories_made_in_a_world_writable_parent_are_not_writable_by_its_group() {
    use std::os::unix::fs::PermissionsExt;
    let sb = pagerduty_sandbox();
    let open_parent = sb.dir.path().join("tmp");
    std::fs::create_dir(&open_parent).unwrap();
    std::fs::set_permissions(&open_parent, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let fake = FakePagerDuty::start(&[]);
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.current_dir(sb.dir.path())
        .env_clear()
        .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        .args(["-c", "umask 022 && exec \"$0\" \"$@\"", PD, "--config"])
        .arg(sb.conf_dir())
        .args(["--state-dir", "tmp/pp/state", "--spool-dir", "tmp/pp/spool", "--api-url", &fake.url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let r = crate::util::run_command(cmd, &fixture_at("sensu/create.json", now()));
    assert_eq!(r.code, Some(0), "{r:?}");
    for d in ["tmp/pp", "tmp/pp/state", "tmp/pp/state/pagerduty", "tmp/pp/spool", "tmp/pp/spool/pagerduty"] {
        let mode = std::fs::metadata(sb.dir.path().join(d)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode & 0o022, 0, "{d} is {mode:o}");
    }
    assert_eq!(actions(&fake), ["trigger"]);
}

/// A check may give its own Reactio API key or Slack bot token (check level: whom to page and
/// how), and an invalid override is ignored for the operator's. But a key holding a character
/// no HTTP header can carry (a line break, a NUL: `pagerpipe/reactio.api_key` written by a
/// template, or by a result on a Sensu client socket) passed as valid, and the request could
/// not even be built: exit 78, and the entry stayed in the spool for good, carrying the key
/// ("fix the configuration; the entry is kept"). Nobody was paged, though the operator's key
/// works. Such a key is invalid now: the operator's is used. From the operator it is a clear
/// configuration error (exit 78) before anything is spooled.
#[test]
fn a_check_credential_no_http_header_can_carry_does_not_cost_the_page() {
    use crate::fake::reactio::{API_KEY, FakeReactio};
    use crate::fake::slack::{BOT_TOKEN, FakeSlack};
    let bad = ["reactio-own-key\r\nX-Evil: 1", "reactio-own-key\u{0}", "reactio-own-kéy"];
    for key in bad {
        let fake = FakeReactio::start(&[]);
        let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
        sb.config("reactio.json", &json!({"reactio": {"api_key": API_KEY, "organization": "example"}}));
        let mut ev: Value = serde_json::from_slice(&fixture_at("sensu-go/failing.json", now())).unwrap();
        ev["check"]["metadata"]["annotations"] = json!({"pagerpipe/reactio.api_key": key});
        let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
        assert_eq!(r.code, Some(0), "{key:?}: {r:?}");
        assert_eq!(fake.accepted("/api/v1/incidents").len(), 1, "{key:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("event override `reactio.api_key` ignored: the value from a check annotation is invalid"),
            "{}",
            r.stderr
        );
        assert!(sb.spooled("reactio").is_empty(), "{key:?}");
        fake.assert_no_violations();
        // The operator's own key so written: refused at once, nothing spooled.
        let mut cmd = sb.command(&["--api-url", &fake.url]);
        cmd.env("REACTIO_API_KEY", key.replace('\u{0}', "\u{1}"));
        let r = crate::util::run_command(cmd, &fixture_at("sensu-go/failing.json", now()));
        assert_eq!(r.code, Some(78), "{key:?}: {r:?}");
        assert!(r.stderr.contains("Reactio API key"), "{}", r.stderr);
        assert!(sb.spooled("reactio").is_empty(), "{key:?}");
    }
    let fake = FakeSlack::start();
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-slack"));
    sb.config("slack.json", &json!({"slack": {"token": BOT_TOKEN}}));
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu-go/failing.json", now())).unwrap();
    ev["check"]["metadata"]["annotations"] = json!({"pagerpipe/slack.token": "xoxb-1-2-own\u{0}"});
    let r = sb.run(&["--api-url", &fake.api_url()], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.created().len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("event override `slack.token` ignored: the value from a check annotation is invalid"), "{}", r.stderr);
    fake.assert_no_violations();
}

/// handler-reactio resolves an incident it has no record of by looking the open incidents up
/// by the name this event's incident would have: `name_template` rendered. An entity could set
/// `name_template` (presentation, it seemed), so a monitored host's recovery of a check that
/// never failed, with `name_template: "web-01/check_disk {output}"` in its annotations, found
/// and resolved web-01's incident. The name is the incident's identity: check-level now.
#[test]
fn an_entity_cannot_name_its_recovery_after_another_hosts_reactio_incident() {
    use crate::fake::reactio::{API_KEY, FIRST_ID, FakeReactio};
    let fake = FakeReactio::start(&[]);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
    sb.config("reactio.json", &json!({"reactio": {"api_key": API_KEY, "organization": "example"}}));
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/create.json", now() - 10));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.incidents().len(), 1, "web-01's incident is open");

    let mut ev: Value = serde_json::from_slice(&crate::util::read_fixture("sensu-go/passing.json")).unwrap();
    ev["entity"]["metadata"]["name"] = json!("evil-01");
    ev["entity"]["metadata"]["annotations"] = json!({"pagerpipe/reactio.name_template": "web-01/check_disk {output}"});
    ev["check"]["executed"] = json!(now());
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let posted: Vec<Value> = fake.accepted("/api/v1/messages");
    assert!(
        posted.iter().all(|m| m["incident_id"] != json!(FIRST_ID)),
        "web-01's incident was resolved by evil-01: {posted:?}\n{}",
        r.stderr
    );
    assert!(r.stderr.contains("`reactio.name_template` ignored: set by an entity annotation"), "{}", r.stderr);
}

/// handler-slack names war rooms from the entity and check, lowercased and with punctuation
/// made `-`, so `web.01` and `web-01` (a host names itself) get the same name. On `name_taken`
/// the handler adopted any channel of that name the bot was in and that was created in the
/// last five minutes — meant for its own create whose answer was lost — so a second host
/// failing the same check within five minutes moved into the first host's war room: its
/// alert posted there, its recovery too, and with `archive_on_resolve` the first host's open
/// war room archived. A channel whose topic is already set is a war room in use (a lost
/// create never got to set it), never adopted.
#[test]
fn a_host_with_a_colliding_name_cannot_take_over_another_hosts_war_room() {
    use crate::fake::slack::{BOT_TOKEN, FakeSlack};
    const T: u64 = 1_796_086_800; // 2026-12-01T01:00:00Z
    let fake = FakeSlack::start();
    fake.set_clock(T);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-slack"));
    sb.config("slack.json", &json!({"slack": {"token": BOT_TOKEN, "archive_on_resolve": true}}));
    let run = |entity: &str, status: u32, secs: u64| {
        let action = if status == 0 { "resolve" } else { "create" };
        let ev = json!({"action": action, "occurrences": 1, "client": {"name": entity},
            "check": {"name": "check_disk", "status": status, "output": "disk", "interval": 60, "executed": T + secs}});
        let mut cmd = sb.command(&["--api-url", &fake.api_url()]);
        cmd.env("PAGERPIPE_NOW", (T + secs).to_string());
        crate::util::run_command(cmd, ev.to_string().as_bytes())
    };
    let r = run("web-01", 2, 0);
    assert_eq!(r.code, Some(0), "{r:?}");
    let victim = fake.created();
    assert_eq!(victim.len(), 1, "{}", r.stderr);
    let r = run("web.01", 2, 60);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("was created by an attempt whose answer was lost"), "{}", r.stderr);
    assert_eq!(fake.created().len(), 2, "a war room of its own: {}", r.stderr);
    let r = run("web.01", 0, 120);
    assert_eq!(r.code, Some(0), "{r:?}");
    let room = fake.channel(&victim[0].id);
    assert!(!room.is_archived, "web-01's open war room was archived by web.01's recovery: {}", r.stderr);
    assert_eq!(room.roots().len(), 1, "only web-01's alert in its room: {:?}", room.messages);
    fake.assert_no_violations();
}

/// Run `sb`'s PagerDuty handler against `api_url` as user `uid` with the one group `gid`
/// (`setpriv`: the test runs as root), `stdin` on its standard input.
fn run_as(sb: &Sandbox, uid: u32, gid: u32, api_url: &str, stdin: &[u8]) -> Run {
    crate::util::run_command(command_as(sb, uid, gid, api_url), stdin)
}

/// The command [`run_as`] runs.
fn command_as(sb: &Sandbox, uid: u32, gid: u32, api_url: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.env_clear()
        .env("PAGERPIPE_RETRY_BASE_MS", "20")
        .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        .args([format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".into(), PD.into(), "--config".into()])
        .arg(sb.conf_dir())
        .arg("--state-dir")
        .arg(sb.state_dir())
        .arg("--spool-dir")
        .arg(sb.spool_dir())
        .args(["--api-url", api_url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Two monitoring users of the group share one handler's state directory (README: `sensu`
/// and `nagios` on one host). Each user's invocations lock in a file of their own
/// (`.locks-<euid>`, mode 0600): user A's, with every byte locked by a live A, does not hold
/// up user B, nor do the per-incident `.hold` and `.lock` files an older version of A left
/// behind (killed while it held them; mode 0640, the group's). Nothing of A's is refused,
/// moved aside or failed on — in the packages' 2775 directories, and in directories an
/// operator made sticky as well (3775: `dpkg-statoverride`), where B could not move them.
///
/// Runs the handler as uids 65533 and 65534 (`setpriv`, needs root); elsewhere it says SKIPPED
/// and passes, except under `CI=true`.
#[test]
fn lock_files_of_another_member_of_the_group_do_not_hold_up_this_one() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // Users A and B, both with the group's id as their one group.
    const A: u32 = 65534;
    const B: u32 = 65533;
    const GROUP: u32 = 65533;
    for dir_mode in [0o2775, 0o3775] {
        let sb = Sandbox::new(PD);
        let state = sb.state_dir().join("pagerduty");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::create_dir_all(sb.spool_dir()).unwrap();
        if !owned_by_another_user(&state) {
            return;
        }
        for d in [sb.dir.path().to_path_buf(), sb.conf_dir()] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for d in [sb.state_dir(), state.clone(), sb.spool_dir()] {
            std::os::unix::fs::chown(&d, Some(0), Some(GROUP)).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(dir_mode)).unwrap();
        }
        let a_locks = state.join(format!(".locks-{A}"));
        let mut left: Vec<_> = ["hold", "lock"].iter().map(|ext| state.join(format!("web-01%2Fcheck_disk.{ext}"))).collect();
        left.push(a_locks.clone());
        for path in &left {
            std::fs::write(path, if *path == a_locks { &[1u8; 16][..] } else { b"" }).unwrap();
            std::os::unix::fs::chown(path, Some(A), Some(GROUP)).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(if *path == a_locks { 0o600 } else { 0o640 })).unwrap();
        }
        let a_live = std::fs::OpenOptions::new().read(true).write(true).open(&a_locks).unwrap();
        rustix::fs::fcntl_lock(&a_live, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();

        let fake = FakePagerDuty::start(&[]);
        let t = now();
        let r = run_as(&sb, B, GROUP, &fake.url, &fixture_at("sensu/create.json", t - 1));
        assert_eq!(r.code, Some(0), "mode {dir_mode:o}: {r:?}");
        let r2 = run_as(&sb, B, GROUP, &fake.url, &fixture_at("sensu/create.json", t));
        assert!(r2.stderr.contains("already notified"), "mode {dir_mode:o}: {}", r2.stderr);
        assert_eq!(actions(&fake), ["trigger"], "mode {dir_mode:o}: {}{}", r.stderr, r2.stderr);
        for stderr in [&r.stderr, &r2.stderr] {
            assert!(!stderr.contains("lock file"), "mode {dir_mode:o}: no lock file refused or moved: {stderr}");
        }
        let names: Vec<String> =
            std::fs::read_dir(&state).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        assert!(!names.iter().any(|n| n.contains(".refused-")), "mode {dir_mode:o}: {names:?}");
        assert!(left.iter().all(|p| p.exists()), "mode {dir_mode:o}: A's files are left as they were: {names:?}");
        let record = state.join("web-01%2Fcheck_disk.json");
        assert_eq!(std::fs::metadata(&record).map(|m| m.uid()).ok(), Some(B), "mode {dir_mode:o}: the record is B's: {names:?}");
        let b_locks = std::fs::metadata(state.join(format!(".locks-{B}"))).unwrap();
        assert_eq!((b_locks.uid(), b_locks.mode() & 0o777), (B, 0o600), "mode {dir_mode:o}: B's own lock file");
        drop(a_live);
    }
}

/// In a state directory an operator made sticky (3775: `dpkg-statoverride`), another member
/// of the group creates this user's lock file (`.locks-<uid>`) before the user's handler ever
/// ran: a file only its owner may rename or remove there. It could not be moved aside, so
/// every hold and every update of every record failed: each page went out without its hold,
/// no outcome was recorded, and every repeat of every incident paged again (for
/// handler-twilio, everyone rung at each check interval), until root removed the file. The
/// user's invocations now lock in a file of their own beside it (`.locks-<uid>.alt-<random>`,
/// found by its owner, which no other member can forge), with a warning naming the planted
/// file and its owner: a storm of one incident's events pages once, and its repeat is
/// suppressed.
///
/// Runs the handler as uids 65533 and 65534 (`setpriv`, needs root); elsewhere it says SKIPPED
/// and passes, except under `CI=true`.
#[test]
fn a_lock_file_planted_in_a_sticky_directory_does_not_make_every_repeat_page() {
    use std::os::unix::fs::PermissionsExt;
    const VICTIM: u32 = 65533;
    const PLANTER: u32 = 65534;
    const GROUP: u32 = 65533;
    let sb = Sandbox::new(PD);
    let state = sb.state_dir().join("pagerduty");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(sb.spool_dir()).unwrap();
    let planted = state.join(format!(".locks-{VICTIM}"));
    std::fs::write(&planted, [0u8; 16]).unwrap();
    if !owned_by_another_user(&planted) {
        return;
    }
    std::os::unix::fs::chown(&planted, Some(PLANTER), Some(GROUP)).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o600)).unwrap();
    for d in [sb.dir.path().to_path_buf(), sb.conf_dir()] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for d in [sb.state_dir(), state.clone(), sb.spool_dir()] {
        std::os::unix::fs::chown(&d, Some(0), Some(GROUP)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o3775)).unwrap();
    }

    let fake = FakePagerDuty::start(&[]);
    let t = now();
    let cmds = (0..16).map(|_| command_as(&sb, VICTIM, GROUP, &fake.url)).collect();
    let runs = crate::util::run_together(cmds, &fixture_at("sensu/create.json", t - 1));
    let stderr: String = runs.iter().map(|r| r.stderr.as_str()).collect();
    for r in &runs {
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(stderr.contains(&format!("lock file {} belongs to another user (uid {PLANTER})", planted.display())), "{stderr}");
    assert!(stderr.contains(&format!("this user's invocations lock in {}.alt-", planted.display())), "names the stand-in: {stderr}");
    assert_eq!(actions(&fake), ["trigger"], "one page for one incident: {stderr}");
    let r = run_as(&sb, VICTIM, GROUP, &fake.url, &fixture_at("sensu/create.json", t));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert!(!r.stderr.contains("error"), "{}", r.stderr);
    assert_eq!(actions(&fake), ["trigger"], "{}", r.stderr);
    assert_eq!(std::fs::metadata(&planted).map(|m| std::os::unix::fs::MetadataExt::uid(&m)).ok(), Some(PLANTER), "left where it is");
}

/// A lock file under this user's name that it cannot open (mode 0000): planted by another
/// member of the group before the handler made it, or this user's own, chmodded (by hand, a
/// restore that lost its modes). A handler that does not run as root could not open it, so
/// every update of the record failed, no outcome was ever recorded and every repeat of the
/// failure paged again. Such a lock file is moved aside whoever owns it (the two are told
/// apart by different paths: another user's by its owner, the user's own by its mode).
///
/// Runs the handler as uid 65534 (`setpriv`, needs root); elsewhere it says SKIPPED and
/// passes, except under `CI=true`.
#[test]
fn an_unreadable_planted_lock_file_does_not_make_every_repeat_page() {
    use std::os::unix::fs::PermissionsExt;
    for (owner, why) in [(0, "belongs to another user (uid 0)"), (65534, "cannot be opened by this user (mode 0000)")] {
        let sb = Sandbox::new(PD);
        let dir = sb.state_dir().join("pagerduty");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(sb.spool_dir()).unwrap();
        let lock = dir.join(".locks-65534");
        std::fs::write(&lock, [0u8; 16]).unwrap();
        if !owned_by_another_user(&lock) {
            return;
        }
        std::os::unix::fs::chown(&lock, Some(owner), Some(owner)).unwrap();
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o000)).unwrap();
        for d in [sb.dir.path().to_path_buf(), sb.conf_dir(), sb.state_dir(), dir.clone(), sb.spool_dir()] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let fake = FakePagerDuty::start(&[]);
        let run = |executed: i64| run_as(&sb, 65534, 65534, &fake.url, &fixture_at("sensu/create.json", executed));
        let t = now();
        let r = run(t - 1);
        assert_eq!(r.code, Some(0), "owner {owner}: {r:?}");
        assert!(!r.stderr.contains("cannot record"), "owner {owner}: {}", r.stderr);
        assert!(r.stderr.contains(&format!("{} {why}: not this handler's; moved to", lock.display())), "owner {owner}: {}", r.stderr);
        let r = run(t);
        assert!(r.stderr.contains("already notified"), "owner {owner}: {}", r.stderr);
        assert_eq!(actions(&fake), ["trigger"], "owner {owner}: {}", r.stderr);
    }
}

/// Sensu Go names an entity and a check within a namespace, and an agent chooses both its name
/// and its namespace. The default key `{entity}/{check}` left the namespace out, so
/// `webserver01` in `dev` and `webserver01` in `prod` were one incident: dev's recovery resolved
/// prod's open PagerDuty alert (same dedup key) and closed prod's record, and while prod's
/// incident was open dev's failures were suppressed as "already notified". Outside the
/// `default` namespace the key is `{namespace}/{entity}/{check}`.
#[test]
fn an_entity_in_another_namespace_cannot_resolve_a_same_named_entitys_incident() {
    // On the file store, then on a shared Redis (skipped, loudly, when redis-server is missing).
    let redis = crate::util::RedisServer::start();
    for url in std::iter::once(None).chain(redis.as_ref().map(|r| Some(r.url.clone()))) {
        let sb = match &url {
            None => pagerduty_sandbox(),
            Some(url) => pagerduty_sandbox().with_state_store(url),
        };
        let store = if url.is_some() { "redis" } else { "file" };
        let fake = FakePagerDuty::start(&[]);
        let t = now();
        let r = sb.run(&["--api-url", &fake.url], &in_namespace("sensu-go/failing.json", "prod", t - 30));
        assert_eq!(r.code, Some(0), "{store}: {r:?}");
        let r = sb.run(&["--api-url", &fake.url], &in_namespace("sensu-go/passing.json", "dev", t - 20));
        assert_eq!(r.code, Some(0), "{store}: {r:?}");
        let r = sb.run(&["--api-url", &fake.url], &in_namespace("sensu-go/failing.json", "prod", t - 10));
        assert_eq!(r.code, Some(0), "{store}: {r:?}");
        assert!(r.stderr.contains("already notified"), "{store}: prod's incident is still open: {}", r.stderr);
        let sent: Vec<(String, String)> = fake
            .events()
            .iter()
            .map(|e| (e["event_action"].as_str().unwrap_or("").to_string(), e["dedup_key"].as_str().unwrap_or("").to_string()))
            .collect();
        let pairs: Vec<(&str, &str)> = sent.iter().map(|(a, k)| (a.as_str(), k.as_str())).collect();
        assert_eq!(pairs, [("trigger", "prod/webserver01/check-http"), ("resolve", "dev/webserver01/check-http")], "{store}: {}", r.stderr);
        fake.assert_no_violations();
    }
}

/// `fixture` (Sensu Go) run at `executed`, its entity and check in `namespace`.
fn in_namespace(fixture: &str, namespace: &str, executed: i64) -> Vec<u8> {
    let mut ev: Value = serde_json::from_slice(&fixture_at(fixture, executed)).unwrap();
    ev["entity"]["metadata"]["namespace"] = json!(namespace);
    ev["check"]["metadata"]["namespace"] = json!(namespace);
    ev.to_string().into_bytes()
}

/// The same for handler-reactio, whose recovery with no stored incident id looks the open
/// incident up by name: named `{entity}/{check} …` whatever the namespace, dev's recovery of a
/// check that never failed there found and resolved prod's incident. With the default
/// `name_template` a Sensu Go incident outside `default` is named `{namespace}/{entity}/{check} …`.
#[test]
fn an_entity_in_another_namespace_cannot_resolve_a_same_named_entitys_reactio_incident() {
    use crate::fake::reactio::{API_KEY, FIRST_ID, FakeReactio};
    let fake = FakeReactio::start(&[]);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
    sb.config("reactio.json", &json!({"reactio": {"api_key": API_KEY, "organization": "example"}}));
    let t = now();
    let r = sb.run(&["--api-url", &fake.url], &in_namespace("sensu-go/failing.json", "prod", t - 20));
    assert_eq!(r.code, Some(0), "{r:?}");
    let incidents = fake.incidents();
    assert_eq!(incidents.len(), 1, "prod's incident is open");
    assert!(incidents[0]["name"].as_str().is_some_and(|n| n.starts_with("prod/webserver01/check-http ")), "{incidents:?}");
    let r = sb.run(&["--api-url", &fake.url], &in_namespace("sensu-go/passing.json", "dev", t - 10));
    assert_eq!(r.code, Some(0), "{r:?}");
    let posted: Vec<Value> = fake.accepted("/api/v1/messages");
    assert!(posted.iter().all(|m| m["incident_id"] != json!(FIRST_ID)), "prod's incident was resolved by dev: {posted:?}\n{}", r.stderr);
    fake.assert_no_violations();
}

/// Most of a PagerDuty event is written on the monitored host: the entity name (`source`), a
/// Sensu Go agent's entity labels, a Sensu 1.x check's `command`, the check name
/// (`component`). One of them large enough made the event bigger than the 512 KB PagerDuty
/// accepts: refused for good (400, exit 69), and the page was lost. The event is cut to fit.
#[test]
fn host_written_fields_too_large_for_pagerduty_do_not_cost_the_page() {
    let big = "x".repeat(600_000);
    let cases: [(&str, Box<dyn Fn(&mut Value)>); 3] = [
        (
            "labels",
            Box::new(|ev: &mut Value| {
                let labels: serde_json::Map<String, Value> = (0..600).map(|i| (format!("k{i}"), json!("v".repeat(1000)))).collect();
                ev["entity"]["metadata"]["labels"] = Value::Object(labels);
            }),
        ),
        ("command", Box::new(|ev: &mut Value| ev["check"]["command"] = json!(big))),
        ("entity name", Box::new(|ev: &mut Value| ev["entity"]["metadata"]["name"] = json!(big))),
    ];
    for (what, patch) in cases {
        let sb = pagerduty_sandbox();
        let fake = FakePagerDuty::start(&[]);
        let mut ev: Value = serde_json::from_slice(&fixture_at("sensu-go/failing.json", now())).unwrap();
        patch(&mut ev);
        let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
        assert_eq!(r.code, Some(0), "{what}: {}", r.stderr);
        assert_eq!(actions(&fake), ["trigger"], "{what}: {}", r.stderr);
        fake.assert_no_violations();
        let sent = &fake.events()[0];
        assert_eq!(sent["payload"]["severity"], "critical", "{what}");
        assert!(sent["payload"]["custom_details"]["output"].as_str().is_some_and(|o| o.contains("503")), "{what}: the output is kept");
    }
}

/// A Sensu 1.x client's socket (or a Sensu Go agent's `/events` API) takes check results from
/// anything on the monitored host, with whatever check attributes it writes, and
/// `twilio.announce_webhook` was a check-level setting: a result naming its own URL had the
/// handler POST who answered the call (name, masked number, incident, time) to any address the
/// host liked, from the monitoring server's network. A URL is where requests go: the
/// operator's only, like `api_url`.
#[test]
fn a_check_result_cannot_choose_the_url_the_announcement_goes_to() {
    use crate::fake::slack::FakeSlack;
    use crate::fake::twilio::{FakeTwilio, Outcome};
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::Answered]);
    let evil = FakeSlack::start();
    let sb = twilio_sandbox(json!({"recipients": [{"name": "Alice", "phone": "+14155550101"}],
        "mode": "sequential", "poll_interval": "20ms", "ring_timeout": 5}));
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now())).unwrap();
    ev["check"]["twilio"] = json!({"announce_webhook": evil.webhook_url()});
    let r = sb.run(&["--api-url", &twilio.url, "--timeout", "30s"], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(twilio.calls().len(), 1, "the page itself goes out: {}", r.stderr);
    assert!(evil.calls().is_empty(), "the host's URL received {:?}", evil.calls());
    assert!(r.stderr.contains("event override `twilio.announce_webhook` ignored: set by a check attribute"), "{}", r.stderr);
}

/// Where check results can come from the monitored host (a Sensu client socket, a Sensu Go
/// agent's API), check-level settings are the host's: a result naming its own recipients has
/// the operator's Twilio account call them (toll fraud). `check_settings` lets the operator
/// keep the per-check choices it uses (here the message's words, and `severities`) and refuse
/// the rest, while the page still goes out to the operator's recipients.
#[test]
fn check_settings_keeps_a_check_result_from_choosing_whom_to_call() {
    use crate::fake::twilio::FakeTwilio;
    let twilio = FakeTwilio::start(&[]);
    let sb = twilio_sandbox(json!({"recipients": ["+14155550101"], "check_settings": ["severities"]}));
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now())).unwrap();
    ev["check"]["twilio"] = json!({"recipients": ["+882355500001"], "from": "+19005550100",
                                   "severities": "critical", "message": "{entity} needs you"});
    let r = sb.run(&["--api-url", &twilio.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let calls = twilio.to("Calls.json");
    assert_eq!(calls.len(), 1, "{}", r.stderr);
    assert_eq!(calls[0].param("To"), Some("+14155550101"), "the operator's recipient");
    assert_eq!(calls[0].param("From"), Some("+14155550199"));
    for refused in ["recipients", "from"] {
        let line = format!("event override `twilio.{refused}` ignored: set by a check attribute; `twilio.check_settings` does not name it");
        assert!(r.stderr.contains(&line), "{line} missing: {}", r.stderr);
    }
    assert!(!r.stderr.contains("twilio.severities` ignored") && !r.stderr.contains("twilio.message` ignored"), "{}", r.stderr);
    let said = &calls[0].twiml.as_ref().expect("twiml").say[0];
    assert!(said.starts_with("web-01 needs you"), "presentation is not narrowed: {said}");
    // The named setting is used: a warning is not in the check's `severities`.
    let mut warn = ev.clone();
    warn["check"]["status"] = 1.into();
    warn["client"]["name"] = "web-02".into();
    let r = sb.run(&["--api-url", &twilio.url], warn.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("severity warning is not in severities [critical]"), "{}", r.stderr);
    assert_eq!(twilio.to("Calls.json").len(), 1);
}

/// handler-twilio caps the calls to each number (default 3 per 15 minutes, 7 per hour) across
/// every incident, and a call over a cap was simply not placed — the event logged as delivered
/// and recorded, so its repeats were suppressed for `refresh` too. One host failing three checks
/// (or writing three results for made-up checks to its Sensu client socket) filled Alice's cap,
/// and web-01's failure a minute later reached nobody. Over a cap the page is texted instead
/// (SMS is not capped), in broadcast and in sequential mode.
#[test]
fn one_hosts_storm_filling_the_call_caps_does_not_silence_another_hosts_page() {
    use crate::fake::twilio::{FakeTwilio, Outcome};
    const ALICE: &str = "+14155550101";
    for mode in ["broadcast", "sequential"] {
        let fake = FakeTwilio::start(&[]);
        fake.outcomes(&[Outcome::Answered; 4]);
        let sb = twilio_sandbox(json!({"recipients": [{"name": "Alice", "phone": ALICE}], "mode": mode,
            "poll_interval": "20ms", "ring_timeout": 5}));
        let t = now();
        let run = |entity: &str, check: &str, at: i64| {
            let ev = json!({"action": "create", "occurrences": 1, "client": {"name": entity},
                "check": {"name": check, "status": 2, "output": "CRITICAL", "executed": at}});
            let mut cmd = sb.command(&["--api-url", &fake.url, "--timeout", "30s"]);
            cmd.env("PAGERPIPE_NOW", at.to_string());
            crate::util::run_command(cmd, ev.to_string().as_bytes())
        };
        for (i, check) in ["made_up_1", "made_up_2", "made_up_3"].iter().enumerate() {
            let r = run("evil-01", check, t + i as i64);
            assert_eq!(r.code, Some(0), "{mode}: {r:?}");
        }
        assert_eq!(fake.to("Calls.json").len(), 3, "{mode}: the storm's calls");
        let r = run("web-01", "check_disk", t + 60);
        assert_eq!(r.code, Some(0), "{mode}: {r:?}");
        assert_eq!(fake.to("Calls.json").len(), 3, "{mode}: the cap holds: {}", r.stderr);
        let texts = fake.to("Messages.json");
        assert_eq!(texts.len(), 1, "{mode}: web-01's page reached nobody: {}", r.stderr);
        assert_eq!(texts[0].param("To"), Some(ALICE));
        assert!(texts[0].param("Body").is_some_and(|b| b.contains("web-01") && b.contains("check_disk")), "{mode}: {:?}", texts[0]);
        fake.assert_no_violations();
    }
}

/// The routing key a host's own check result carries in the spool tests below.
const EVIL_KEY: &str = "EV1LEV1LEV1LEV1LEV1LEV1LEV1LEV1L";

/// evil-01's failure at `at` (Unix seconds), carrying its own routing key ([`EVIL_KEY`]),
/// spooled while PagerDuty cannot be reached (exit 75). The run.
fn spool_evil_failure(sb: &Sandbox, at: i64) -> Run {
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", at)).unwrap_or_default();
    ev["client"]["name"] = json!("evil-01");
    ev["check"]["pagerduty"] = json!({"routing_key": EVIL_KEY});
    let r = sb.run(&["--api-url", REFUSED_URL, "--timeout", "1s"], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(75), "{r:?}");
    r
}

/// A spool flush took the entries oldest first and stopped at the first retryable failure, as
/// if the service were down. But PagerDuty's rate limit is per routing key, and a check result
/// may carry its own (a Sensu 1.x client-socket result with `pagerduty.routing_key`; a team's
/// key flooded by its own storm): an entry answered 429 for good stood at the head of the spool,
/// and every flush (`--flush`, and the quarter of each invocation's deadline given to other
/// incidents' entries) spent all its time on it and stopped. db-01's spooled recovery behind it
/// never went out — given up after spool_max_age, its incident left open. An entry that cannot
/// go out yet now holds back only the entries sent the same way, and takes at most half of
/// what is left of the flush.
#[test]
fn a_spooled_entry_throttled_on_its_own_routing_key_does_not_hold_back_other_incidents() {
    let sb = pagerduty_sandbox();
    let t = now();
    // PagerDuty has a blip: the host's failure (with a routing key of its own), then db-01's
    // recovery, are spooled.
    spool_evil_failure(&sb, t - 20);
    let mut recovery: Value = serde_json::from_slice(&fixture_at("sensu/resolve.json", t - 10)).unwrap();
    recovery["client"]["name"] = json!("db-01");
    let r = sb.run(&["--api-url", REFUSED_URL, "--timeout", "1s"], recovery.to_string().as_bytes());
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("pagerduty").len(), 2);
    // PagerDuty is back; the host keeps its own routing key over the rate limit.
    let fake = FakePagerDuty::start(&[]);
    fake.throttle(EVIL_KEY);
    let r = sb.run(&["--flush", "--timeout", "3s", "--api-url", &fake.url], b"");
    let delivered = fake.accepted();
    assert!(
        delivered.iter().any(|e| e["dedup_key"] == "db-01/check_disk" && e["event_action"] == "resolve"),
        "db-01's recovery is still queued behind the throttled entry: {}",
        r.stderr
    );
    assert_eq!(sb.spooled("pagerduty").len(), 1, "the throttled entry waits for a later flush: {}", r.stderr);
    fake.assert_no_violations();
}

/// `--log-format json` lines (and `--list`'s JSON records) held a host-written name's U+2028,
/// NEL and bidirectional controls raw: valid JSON, but readers that end lines at U+2028 or
/// NEL cut the line, and a terminal rendered the overrides. They are `\uXXXX` escapes now, in
/// the same JSON value.
#[test]
fn json_lines_carry_no_raw_line_separator_or_bidi_control() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let entity = "web-01\u{2028}pagerduty\u{85}\u{202e}x";
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", crate::util::unix_now())).unwrap();
    ev["client"]["name"] = json!(entity);
    let r = sb.run(&["--api-url", &fake.url, "--log-format", "json"], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let list = sb.run(&["--list", "--log-format", "json"], b"");
    assert_eq!(list.code, Some(0), "{list:?}");
    for out in [&r.stderr, &list.stdout] {
        assert!(!out.contains(['\u{2028}', '\u{85}', '\u{202e}']), "{out:?}");
        for l in out.lines() {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
        }
        assert!(out.contains(r"web-01\u2028pagerduty\u0085\u202ex"), "{out}");
    }
    let listed: Value = serde_json::from_str(list.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(listed["key"], json!(format!("{entity}/check_disk")), "the same value, escaped");
}

/// PagerDuty's classic pd-zabbix template puts `name:{TRIGGER.NAME}` first, before `id:`,
/// `status:`, `hostname:` and `severity:`, and a trigger name may embed `{ITEM.LASTVALUE}`,
/// which the monitored host writes. Each key was read once, first line first, so lines the
/// value added inside the name came before the template's own and won: `id:` and `hostname:`
/// keyed the page as another host's incident (its recovery would resolve that one; its
/// failure made the other's read as a repeat), `nseverity:0` made a High problem `info` and
/// filtered it out, and `NOTE: Escalation cancelled` turned the problem into a resolve. After
/// `name:` in that order the template's own later line counts, a note counts only with no key
/// line after it (Zabbix prepends its own), and of `severity:` and `nseverity:` the more severe.
#[test]
fn a_trigger_name_in_the_classic_zabbix_template_cannot_rekey_downgrade_or_resolve_the_problem() {
    let classic = |value: &str| {
        format!("name:Log says {value}\nid:13502\nstatus:PROBLEM\nhostname:web-01\nip:10.0.0.5\nvalue:1\nevent_id:8123\nseverity:High\n")
    };
    let page = |message: &str| {
        let sb = pagerduty_sandbox();
        let fake = FakePagerDuty::start(&[]);
        let r = sb.run(&["--api-url", &fake.url, "--from", "zabbix", "ops", "trigger", message], b"");
        assert_eq!(r.code, Some(0), "{message:?}: {r:?}");
        fake.assert_no_violations();
        (fake.events(), r.stderr)
    };
    for value in [
        "x\nid:999\nhostname:db-01",
        "x\nnseverity:0",
        "x\nip:1\nNOTE: Escalation cancelled: by the host",
        "x\nid:999\nhostname:db-01\nNOTE: Escalation cancelled: y\nnseverity:1",
    ] {
        let (events, stderr) = page(&classic(value));
        assert_eq!(events.len(), 1, "{value:?}: the problem pages: {stderr}");
        let sent = &events[0];
        assert_eq!(sent["event_action"], "trigger", "{value:?}");
        assert_eq!(sent["dedup_key"], "13502-web-01", "{value:?}");
        assert_eq!(sent["payload"]["source"], "web-01", "{value:?}");
        assert_eq!(sent["payload"]["severity"], "error", "{value:?}");
    }
    // Zabbix's own note, prepended to the message, still resolves.
    let (events, stderr) = page(&format!("NOTE: Escalation cancelled: host disabled.\n{}", classic("x")));
    let actions: Vec<&str> = events.iter().filter_map(|e| e["event_action"].as_str()).collect();
    assert_eq!(actions, ["resolve"], "{stderr}");
}

/// The Problem update template's two lines (`update_action:`, `user:`, conf.d/zabbix-pagerduty.md)
/// count only among the fixed lines before `name:`. In the classic order (`name:` first) a
/// trigger name embedding `{ITEM.LASTVALUE}` is followed by the template's lines, and a line
/// `user:…` the monitored host wrote into it was read as the `user` field: the name, so the
/// page's check and summary, was cut there and its rest became a `zabbix_user` label. Such a
/// line is the name's text again, as it was before those keys were known.
#[test]
fn a_user_line_in_a_classic_zabbix_trigger_name_does_not_cut_the_name() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let name = "Log says x\nuser:Mallory\nupdate_action:acknowledged\nand more";
    let message = format!("name:{name}\nid:13502\nstatus:PROBLEM\nhostname:web-01\nip:10.0.0.5\nvalue:1\nevent_id:8123\nseverity:High\n");
    let r = sb.run(&["--api-url", &fake.url, "--from", "zabbix", "ops", "trigger", &message], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let events = fake.events();
    assert_eq!(events.len(), 1, "{}", r.stderr);
    let payload = &events[0]["payload"];
    assert_eq!(events[0]["event_action"], "trigger");
    assert_eq!(payload["component"], name, "{payload}");
    assert_eq!(payload["summary"], "web-01/Log says x user:Mallory update_action:acknowledged and more: problem (severity High)");
    let labels = &payload["custom_details"]["labels"];
    assert!(labels.get("zabbix_user").is_none() && labels.get("zabbix_update_action").is_none(), "{labels}");
}

/// A Sensu Go agent writes its entity's labels and annotations (Sensu 1.x: its client
/// attributes), and every event of the entity carries them, the keepalive that fires when the
/// agent goes silent too. An event over 1 MiB even with each long value cut to 16 384
/// characters exited 65: a host with 1.2 MiB of small labels (or seventy 16 KB annotations)
/// silenced every page about itself, keepalive included, before an attacker stopped its agent.
/// The largest parts now shrink to fit 1 MiB, the fields that name, key and time the event are
/// kept whole, and the page goes out.
#[test]
fn a_host_bloating_its_entity_labels_cannot_silence_its_pages() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let mut event: Value = serde_json::from_slice(&fixture_at("sensu-go/failing.json", now())).unwrap_or_default();
    let labels: serde_json::Map<String, Value> = (0..100_000).map(|i| (format!("l{i}"), Value::from("v"))).collect();
    let annotations: serde_json::Map<String, Value> = (0..70).map(|i| (format!("a{i}"), Value::from("x".repeat(16_000)))).collect();
    event["entity"]["metadata"]["labels"] = Value::Object(labels);
    event["entity"]["metadata"]["annotations"] = Value::Object(annotations);
    let bytes = event.to_string().into_bytes();
    assert!(bytes.len() > 2 * 1024 * 1024, "{}", bytes.len());
    let r = sb.run(&["--api-url", &fake.url], &bytes);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("shrunk to fit"), "{}", r.stderr);
    let events = fake.events();
    assert_eq!(events.len(), 1, "{}", r.stderr);
    assert_eq!((events[0]["event_action"].as_str(), events[0]["dedup_key"].as_str()), (Some("trigger"), Some("webserver01/check-http")));
    assert_eq!(events[0]["payload"]["source"], "webserver01");
    fake.assert_no_violations();
}

/// Labels each longer than the share of 1 MiB it gets: 30 000 of 25 characters (1.17 MB),
/// or of 100. Each value was cut to its share with a mark (` … [cut: 25 characters]`) as long
/// as the value itself, kept although it was still longer than the share; thousands of such
/// overruns put the event back over 1 MiB, and it exited 65 ("even with its long values
/// cut"): a host silenced its pages again, with labels of a size Sensu Go writes every day.
/// Now a value whose share cannot hold the mark keeps what fits of its head, ending in `…`,
/// and a part that still does not fit is left out: the event always fits, and pages with a
/// warning naming where it was cut.
#[test]
fn a_host_with_many_labels_each_longer_than_its_share_cannot_silence_its_pages() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let cases = [(30_000, 25), (30_000, 100), (10_000, 1_000), (100_000, 1)];
    for (n, (count, len)) in cases.into_iter().enumerate() {
        let mut event: Value = serde_json::from_slice(&fixture_at("sensu-go/failing.json", now())).unwrap_or_default();
        let labels: serde_json::Map<String, Value> = (0..count).map(|i| (format!("l{i:05}"), Value::from("v".repeat(len)))).collect();
        event["entity"]["metadata"]["labels"] = Value::Object(labels);
        event["check"]["metadata"]["name"] = format!("check-http-{n}").into();
        let bytes = event.to_string().into_bytes();
        assert!(bytes.len() > 1024 * 1024 && bytes.len() < 16 * 1024 * 1024, "{}", bytes.len());
        let r = sb.run(&["--api-url", &fake.url], &bytes);
        assert_eq!(r.code, Some(0), "{count} labels of {len}: {r:?}");
        assert!(r.stderr.contains("shrunk to fit") && r.stderr.contains("entity.metadata.labels"), "{}", r.stderr);
    }
    let events = fake.events();
    assert_eq!(events.len(), cases.len(), "{events:?}");
    for (n, e) in events.iter().enumerate() {
        assert_eq!(
            (e["event_action"].as_str(), e["dedup_key"].as_str()),
            (Some("trigger"), Some(format!("webserver01/check-http-{n}").as_str()))
        );
        assert_eq!(e["payload"]["source"], "webserver01");
        assert!(e["payload"]["summary"].as_str().is_some_and(|s| s.contains("503 Service Unavailable")), "{}", e["payload"]);
    }
    fake.assert_no_violations();
}

/// A Sensu 1.x client's attributes are read from client.json on the monitored host, and every
/// event of the client carries them, its keepalive too. A value nested 127 levels deep there
/// (serde_json refuses more than 128) exited 65 "invalid JSON … recursion limit exceeded": a
/// host silenced its pages with one line of its own configuration. Now a value nested deeper
/// than 64 levels, which nothing reads, is replaced by a mark before the event is parsed, at
/// any depth (100 000 too), without recursion: the page goes out, with a warning naming it.
#[test]
fn a_host_nesting_a_client_attribute_deep_cannot_silence_its_pages() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let depths = [127, 100_000];
    for (n, depth) in depths.into_iter().enumerate() {
        let mut event: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now())).unwrap_or_default();
        event["client"]["custom"] = "DEEP".into();
        event["check"]["name"] = format!("check_disk_{n}").into();
        // As text: a `Value` that deep would overflow the test's own stack when dropped.
        let text = event.to_string().replace("\"DEEP\"", &format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
        let r = sb.run(&["--api-url", &fake.url], text.as_bytes());
        assert_eq!(r.code, Some(0), "depth {depth}: {r:?}");
        assert!(r.stderr.contains("nested deeper than 64 levels") && r.stderr.contains("client.custom"), "{}", r.stderr);
    }
    let events = fake.events();
    assert_eq!(events.len(), depths.len(), "{events:?}");
    for (n, e) in events.iter().enumerate() {
        assert_eq!(
            (e["event_action"].as_str(), e["dedup_key"].as_str()),
            (Some("trigger"), Some(format!("web-01/check_disk_{n}").as_str()))
        );
        assert!(e["payload"]["summary"].as_str().is_some_and(|s| s.contains("CheckDisk CRITICAL")), "{}", e["payload"]);
    }
    fake.assert_no_violations();
}

/// PagerDuty refuses an event over 512 KB for good, so handler-pagerduty cuts its body to fit
/// 500 000 bytes of compact JSON; but the HTTP client sent it pretty-printed (ureq's
/// `send_json`), a newline and indent per member. A Sensu Go entity with 40 000 short labels
/// (a 510 KB event, read whole) became a 750 KB request: refused (HTTP 400, exit 69), the page
/// lost. Bodies go out as compact JSON, the size they were fitted to.
#[test]
fn an_entity_with_many_short_labels_still_fits_the_pagerduty_event_limit() {
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let mut event: Value = serde_json::from_slice(&fixture_at("sensu-go/failing.json", now())).unwrap_or_default();
    event["entity"]["metadata"]["labels"] = Value::Object((0..40_000).map(|i| (format!("l{i}"), Value::from("v"))).collect());
    let bytes = event.to_string().into_bytes();
    assert!(bytes.len() > 500_000 && bytes.len() < 1024 * 1024, "{}", bytes.len());
    let r = sb.run(&["--api-url", &fake.url], &bytes);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(actions(&fake), ["trigger"], "{}", r.stderr);
    fake.assert_no_violations();
}

/// A spool entry's name carries a 64-bit FNV-1a hash of its incident key, and an invocation
/// took every entry whose name carried its own key's hash for its incident's: delivered them
/// first, held its own request back behind one that could not go out, and folded them into
/// its record. FNV-1a is no cryptographic hash: a host can choose a check or entity name whose
/// key shares web-01's hash. With that incident's trigger spooled and its own routing key kept
/// throttled, web-01's failure queued behind it (exit 75) for as long as the throttling lasted,
/// up to `spool_max_age`, and was then given up. Entries are told apart by their incident key;
/// the hash only finds them. The planted entry stands for such a name (computing one is beside
/// the point).
#[test]
fn another_incident_sharing_the_spool_hash_cannot_hold_back_a_failure() {
    let sb = pagerduty_sandbox();
    let t = now();
    // While PagerDuty is unreachable, the host's own failure, with a routing key of its own,
    // is spooled; its name is made to carry web-01/check_disk's hash.
    let r = spool_evil_failure(&sb, t - 20);
    let (path, entry) = sb.spooled_entry("pagerduty", &r.stderr);
    // An incident of its own in the ledger: the event chose its routing key.
    assert!(entry["incident_key"].as_str().is_some_and(|k| k.starts_with("evil-01/check_disk@")), "{entry}");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let (stem, _) = name.rsplit_once('-').unwrap_or_default();
    let colliding = path.with_file_name(format!("{stem}-{:016x}.json", common::spool::key_hash("web-01/check_disk")));
    std::fs::rename(&path, &colliding).unwrap();
    // PagerDuty is back, the host's key over its rate limit; web-01's disk fills up.
    let fake = FakePagerDuty::start(&[]);
    fake.throttle(EVIL_KEY);
    let r = sb.run(&["--api-url", &fake.url, "--timeout", "3s"], &fixture_at("sensu/create.json", t));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        fake.accepted().iter().any(|e| e["dedup_key"] == "web-01/check_disk" && e["event_action"] == "trigger"),
        "web-01's failure waited behind another incident's spooled trigger: {}",
        r.stderr
    );
    assert!(colliding.exists(), "the other incident's entry waits for its own turn: {}", r.stderr);
    fake.assert_no_violations();
}

/// War-room names come from host and check names, lowercased with punctuation made `-`, so
/// `Web-01`, `WEB-01`, `web.01`, `Web.01` and `WEB.01` make the name web-01's failure of the
/// same check gets. On `name_taken` handler-slack tried `-2` … `-5` and then refused the page
/// (exit 69): a host failing that check under five such names (a Sensu Go agent names its
/// proxy entities as it likes) took them all, and web-01's failure that day opened no war room
/// and was posted nowhere. After the numbered names one with a random suffix is tried, which
/// no host can take first.
#[test]
fn hosts_taking_every_numbered_war_room_name_cannot_cost_another_hosts_page() {
    use crate::fake::slack::{BOT_TOKEN, FakeSlack};
    const T: u64 = 1_796_086_800; // 2026-12-01T01:00:00Z
    const BASE: &str = "inc-20261201-web-01-check_disk";
    let fake = FakeSlack::start();
    fake.set_clock(T);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-slack"));
    sb.config("slack.json", &json!({"slack": {"token": BOT_TOKEN}}));
    let run = |entity: &str, secs: u64| {
        let ev = json!({"action": "create", "occurrences": 1, "client": {"name": entity},
            "check": {"name": "check_disk", "status": 2, "output": "disk", "interval": 60, "executed": T + secs}});
        let mut cmd = sb.command(&["--api-url", &fake.api_url()]);
        cmd.env("PAGERPIPE_NOW", (T + secs).to_string());
        crate::util::run_command(cmd, ev.to_string().as_bytes())
    };
    for (i, lookalike) in ["Web-01", "WEB-01", "web.01", "Web.01", "WEB.01"].into_iter().enumerate() {
        let r = run(lookalike, 10 * i as u64);
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    let taken: Vec<String> = fake.created().into_iter().map(|c| c.name).collect();
    assert_eq!(taken, [BASE.to_string(), format!("{BASE}-2"), format!("{BASE}-3"), format!("{BASE}-4"), format!("{BASE}-5")]);
    let r = run("web-01", 60);
    assert_eq!(r.code, Some(0), "web-01's failure has no war room: {r:?}");
    let created = fake.created();
    assert_eq!(created.len(), 6, "{}", r.stderr);
    let room = &created[5];
    let suffix = room.name.strip_prefix(&format!("{BASE}-")).unwrap_or_default();
    assert!(suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{}", room.name);
    assert_eq!(fake.channel(&room.id).roots().len(), 1, "web-01's alert is posted in its war room");
    fake.assert_no_violations();
}

/// handler-twilio notes a call in the incident's record while its create is in flight, so that
/// the next holder can look it up if this one dies; the note keeps the event's settings
/// overrides, to send it again alike. A check may carry its own Twilio account
/// (`check.twilio.auth_token`, a check-level setting), and the record was written 0640 in the
/// group-shared state directory: every member of the `pagerpipe` group (the nagios, zabbix and
/// sensu users) could read that auth token while the call was being placed, or for good once
/// a killed handler left the note behind. A record holding a note in flight is owner-only, as
/// a spool entry holding a credential is.
#[test]
fn a_checks_own_twilio_auth_token_is_never_in_a_group_readable_record() {
    use crate::fake::twilio::{AUTH_TOKEN, FakeTwilio, Script};
    use std::os::unix::fs::PermissionsExt;
    let sb = twilio_sandbox(json!({"auth_token": "the-operators-own-token-0000000000", "recipients": ["+14155550101"]}));
    let fake = FakeTwilio::start(&[Script::Late(1500)]);
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now())).unwrap_or_default();
    ev["check"]["twilio"] = json!({"auth_token": AUTH_TOKEN});
    let child = crate::util::spawn_command(sb.command(&["--api-url", &fake.url, "--timeout", "10s"]), ev.to_string().as_bytes());
    let record = sb.state_file("twilio", "web-01%2Fcheck_disk.json");
    let (mode, holds_token) = crate::util::wait_until(
        "the call's note in flight",
        std::time::Duration::from_secs(8),
        || {
            let text = std::fs::read_to_string(&record).ok()?;
            let mode = std::fs::metadata(&record).ok()?.permissions().mode() & 0o777;
            text.contains("\"inflight\"").then_some((mode, text.contains(AUTH_TOKEN)))
        },
        || format!("{:?}", std::fs::read_to_string(&record)),
    );
    assert!(holds_token, "the note keeps the event's overrides, the check's auth token too");
    let r = crate::util::finish(child);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(mode, 0o600, "a record holding the check's auth token is readable by the group");
    assert_eq!(fake.calls().len(), 1, "{}", r.stderr);
    fake.assert_no_violations();
}

/// A summary template is presentation, which a monitored host's entity annotations may set
/// (`pagerpipe/pagerduty.summary_template`), and it was rendered whole before PagerDuty's
/// 1 024 characters were cut from it: 60 000 `{output}` placeholders over a 16 KB check
/// output (a 500 KB event) made a 960 MB string, 7 s of CPU and 1.9 GB of memory on the
/// monitoring server for one event, and more than a small machine has. A rendering stops at
/// 64 KiB. Run under a 400 MB address-space limit, the page goes out whole.
#[test]
fn a_host_written_template_cannot_cost_the_server_gigabytes() {
    if !crate::util::require_program("/usr/bin/prlimit", "util-linux") {
        return;
    }
    let sb = pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu-go/failing.json", now())).unwrap_or_default();
    ev["check"]["output"] = json!("x".repeat(16_000));
    ev["entity"]["metadata"]["annotations"] = json!({"pagerpipe/pagerduty.summary_template": "{output}".repeat(60_000)});
    let cmd = crate::util::under_memory_limit(&sb.command(&["--api-url", &fake.url]), 400 * 1024 * 1024);
    let r = crate::util::run_command(cmd, ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let events = fake.events();
    assert_eq!(events.len(), 1, "{}", r.stderr);
    let summary = events[0]["payload"]["summary"].as_str().unwrap_or_default();
    assert!(summary.starts_with("xxxx") && summary.chars().count() <= 1024, "{summary:.80}");
    fake.assert_no_violations();
}

/// A Reactio timeline message is limited HTML, so every event value a `message` template
/// inserts is escaped; but `{incident_key}` rendered a Zabbix `incident_key:` line's text as
/// it was, and in PagerDuty's classic template (name first) a trigger name embedding the item
/// value can add that line: `<img src=x onerror=…>` went into the incident's message as HTML.
#[test]
fn a_zabbix_incident_key_is_text_in_a_reactio_message() {
    use crate::fake::reactio::{API_KEY, FakeReactio};
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
    sb.config("reactio.json", &json!({"reactio": {"api_key": API_KEY, "organization": "example", "message": "<p>{incident_key}</p>"}}));
    let fake = FakeReactio::start(&[]);
    let message = "name:Log says x\nincident_key:<img src=x onerror=alert(1)>\nid:13502\nstatus:PROBLEM\nhostname:web-01\nseverity:High\n";
    let r = sb.run(&["--api-url", &fake.url, "--from", "zabbix", "ops", "trigger", message], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    let created = fake.accepted("/api/v1/incidents");
    assert_eq!(created.len(), 1, "{}", r.stderr);
    assert_eq!(created[0]["message"], "<p>&lt;img src=x onerror=alert(1)&gt;</p>");
    fake.assert_no_violations();
}

/// A Twilio incident paged once, then paged again (refresh 0) with its call answered late: the
/// second handler is left running, its call noted in flight in the record with the event's
/// overrides, which hold the check's own auth token ([`crate::fake::twilio::AUTH_TOKEN`]).
fn a_call_in_flight_carrying_a_checks_own_token() -> (Sandbox, crate::fake::twilio::FakeTwilio, std::process::Child) {
    use crate::fake::twilio::{AUTH_TOKEN, FakeTwilio, Script};
    let sb = twilio_sandbox(json!({"auth_token": "the-operators-own-token-0000000000", "recipients": ["+14155550101"], "refresh": 0}));
    let fake = FakeTwilio::start(&[Script::Accept, Script::Late(1500)]);
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now())).unwrap_or_default();
    ev["check"]["twilio"] = json!({"auth_token": AUTH_TOKEN});
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    // The same failure again (refresh 0: it calls again), its call answered late: in flight.
    let child = crate::util::spawn_command(sb.command(&["--api-url", &fake.url, "--timeout", "10s"]), ev.to_string().as_bytes());
    let record = sb.state_file("twilio", "web-01%2Fcheck_disk.json");
    crate::util::wait_until(
        "the call's note in flight",
        std::time::Duration::from_secs(8),
        || std::fs::read_to_string(&record).ok().filter(|t| t.contains("\"inflight\"") && t.contains(AUTH_TOKEN)),
        || format!("{:?}", std::fs::read_to_string(&record)),
    );
    (sb, fake, child)
}

/// `--list --log-format json` prints each open incident's stored record, and a record holds
/// the requests in flight with their event's overrides: a check's own Twilio auth token was
/// printed whole to the operator's terminal (and whatever captures it). It is masked, as the
/// operator's own credentials are.
#[test]
fn list_masks_a_checks_own_credentials_in_a_request_in_flight() {
    shows_the_record_in_flight_without_the_checks_token(&["--list", "--log-format", "json"], b"", "\"inflight\"");
}

/// Run `args` on `input` while a Twilio call carrying a check's own auth token is in flight
/// ([`a_call_in_flight_carrying_a_checks_own_token`]): it exits 0, its stdout shows the
/// record (`shown` in it), and neither stream holds the token; the call then ends as usual.
fn shows_the_record_in_flight_without_the_checks_token(args: &[&str], input: &[u8], shown: &str) {
    use crate::fake::twilio::AUTH_TOKEN;
    let (sb, fake, child) = a_call_in_flight_carrying_a_checks_own_token();
    let out = sb.run(args, input);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains(shown), "the record with its request in flight is shown: {}", out.stdout);
    assert!(!out.stdout.contains(AUTH_TOKEN) && !out.stderr.contains(AUTH_TOKEN), "{}", out.stdout);
    let r = crate::util::finish(child);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
}

/// A Twilio broadcast on a full disk (`ulimit -f 0`): the call caps' record and the incident's
/// record cannot be written. Everyone is still called, once, and the log says the caps were not
/// kept; a duplicate is better than silence.
#[test]
fn a_twilio_broadcast_on_a_full_disk_calls_everyone_once() {
    use crate::fake::twilio::FakeTwilio;
    let sb = twilio_sandbox(json!({"recipients": ["+14155550101", "+14155550102"]}));
    let fake = FakeTwilio::start(&[]);
    let cmd = sb.command(&["--api-url", &fake.url]);
    let r = crate::util::run_command(crate::util::on_a_full_disk(&cmd), &fixture_at("sensu/create.json", now()));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("call caps unavailable") && r.stderr.contains("calling anyway"), "{}", r.stderr);
    assert!(r.stderr.contains("cannot record the outcome"), "{}", r.stderr);
    let mut to: Vec<String> = fake.to("Calls.json").iter().map(|c| c.param("To").unwrap_or_default().to_string()).collect();
    to.sort();
    assert_eq!(to, ["+14155550101", "+14155550102"], "{}", r.stderr);
    fake.assert_no_violations();
}

/// `--dry-run` printed the request body as pretty JSON on stdout with a host-written name's
/// and output's C1 controls (U+009B, a one-character CSI to a terminal that honours C1),
/// U+2028 and bidirectional overrides raw: an operator trying a handler on a captured event
/// saw the terminal take commands, or a dedup key displayed reversed. They are `\uXXXX`
/// escapes now, as in the JSON log lines: the same JSON value, still pretty.
#[test]
fn dry_run_output_carries_no_raw_c1_line_separator_or_bidi_control() {
    let sb = pagerduty_sandbox();
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", crate::util::unix_now())).unwrap();
    ev["client"]["name"] = json!("web\u{9b}2J-01\u{202e}10-bew");
    ev["check"]["output"] = json!("DISK\u{85}CRITICAL\u{2028}\u{9b}31m / 95%");
    let r = sb.run(&["--dry-run"], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stdout.contains(['\u{9b}', '\u{85}', '\u{2028}', '\u{202e}']), "{:?}", r.stdout);
    assert!(r.stdout.contains(r"web\u009b2J-01\u202e10-bew"), "{}", r.stdout);
    assert!(r.stdout.lines().count() > 3, "still pretty: {}", r.stdout);
    let body: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert_eq!(body["payload"]["source"], json!("web\u{9b}2J-01\u{202e}10-bew"), "the same value, escaped");
}

/// `--explain` printed the incident's record whole, requests in flight included with their
/// event's overrides: a check's own Twilio auth token was masked only when the event explained
/// carried the same token (the operator explaining a captured event without it, or another
/// check's event for the same incident, saw it whole). It is masked as `--list` masks it.
#[test]
fn explain_masks_a_checks_own_credentials_in_a_request_in_flight() {
    shows_the_record_in_flight_without_the_checks_token(&["--explain"], &fixture_at("sensu/create.json", now()), "inflight");
}

/// A check-level setting whose value is well-formed but leaves the handler unable to deliver
/// — a PagerDuty routing key of the wrong length (a typo in a check attribute or a Nagios
/// `_SERVICEPAGERDUTY_ROUTING_KEY`), Twilio `channels: []` — passed the override check and
/// failed only at `ready`: exit 78 with a line blaming the operator's settings file, and the
/// page was lost. An operator who allows a check result to choose `channels` (it sounds
/// harmless) let the monitored host silence its own pages that way. Such an override is now
/// ignored as invalid, the operator's setting used.
#[test]
fn a_check_setting_that_leaves_the_handler_unable_to_deliver_is_ignored_not_the_page() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu-go/failing.json", now())).unwrap();
    ev["check"]["metadata"]["annotations"] = json!({"pagerpipe/pagerduty.routing_key": "0123456789abcdef"});
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let sent = fake.events();
    assert_eq!(sent.len(), 1, "{}", r.stderr);
    assert_eq!(sent[0]["routing_key"], ROUTING_KEY, "the operator's key");
    assert!(
        r.stderr.contains("event override `pagerduty.routing_key` ignored: the value from a check annotation is invalid"),
        "{}",
        r.stderr
    );
    fake.assert_no_violations();

    use crate::fake::twilio::FakeTwilio;
    let twilio = FakeTwilio::start(&[]);
    let sb = twilio_sandbox(json!({"recipients": ["+14155550101"], "check_settings": ["channels", "severities"]}));
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now())).unwrap();
    ev["check"]["twilio"] = json!({"channels": []});
    let r = sb.run(&["--api-url", &twilio.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(twilio.to("Calls.json").len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("event override `twilio.channels` ignored: the value from a check attribute is invalid"), "{}", r.stderr);
    twilio.assert_no_violations();
}

/// Entity annotations (written on the monitored host) could set the links the handlers show
/// behind their own labels: Slack's `link_template` (the war room's `open in monitoring`),
/// PagerDuty's `client_url` (`View in Sensu`), and Reactio's `message` (an HTML template whose
/// own text is markup: `<a href="https://evil.example/sso">sign in to acknowledge</a>`). A
/// compromised host could so send whoever is woken up to a look-alike login page under the
/// operator's words. They are check-level now: an entity's is ignored and logged.
#[test]
fn an_entity_cannot_put_a_link_of_its_choosing_behind_the_handlers_labels() {
    const EVIL: &str = "https://evil.example/sso";
    let ev = |annotations: Value| {
        let mut ev: Value = serde_json::from_slice(&fixture_at("sensu-go/failing.json", now())).unwrap();
        ev["entity"]["metadata"]["annotations"] = annotations;
        ev.to_string().into_bytes()
    };
    let refused = |r: &Run, setting: &str| {
        let line = format!("event override `{setting}` ignored: set by an entity annotation");
        assert!(r.stderr.contains(&line), "{line}: {}", r.stderr);
    };

    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let r = sb.run(&["--api-url", &fake.url], &ev(json!({"pagerpipe/pagerduty.client": "Sensu", "pagerpipe/pagerduty.client_url": EVIL})));
    assert_eq!(r.code, Some(0), "{r:?}");
    let sent = fake.events();
    assert_eq!(sent.len(), 1, "{}", r.stderr);
    assert_eq!(sent[0]["client"], "Sensu", "the entity may still name the client: {}", sent[0]);
    assert!(sent[0].get("client_url").is_none(), "{}", sent[0]);
    refused(&r, "pagerduty.client_url");
    fake.assert_no_violations();

    use crate::fake::slack::{BOT_TOKEN, FakeSlack};
    let slack = FakeSlack::start();
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-slack"));
    sb.config("slack.json", &json!({"slack": {"token": BOT_TOKEN}}));
    let r = sb.run(&["--api-url", &slack.api_url()], &ev(json!({"pagerpipe/slack.link_template": format!("{EVIL}?{{entity}}")})));
    assert_eq!(r.code, Some(0), "{r:?}");
    let rooms = slack.created();
    assert_eq!(rooms.len(), 1, "{}", r.stderr);
    let room = slack.channel(&rooms[0].id);
    let shown = format!("{:?} {:?}", room.topic, room.messages);
    assert!(!shown.contains("evil.example"), "{shown}");
    refused(&r, "slack.link_template");
    slack.assert_no_violations();

    use crate::fake::reactio::{API_KEY, FakeReactio};
    let reactio = FakeReactio::start(&[]);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
    sb.config(
        "reactio.json",
        &json!({"reactio": {"api_key": API_KEY, "organization": "example", "severities": ["critical"], "message": "<p>ours: {output}</p>"}}),
    );
    let r = sb.run(
        &["--api-url", &reactio.url],
        &ev(json!({"pagerpipe/reactio.message": format!("<p>{{output}}</p><p><a href=\"{EVIL}\">sign in to acknowledge</a></p>"),
                   "pagerpipe/reactio.topics": "web"})),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(reactio.incidents().len(), 1, "{}", r.stderr);
    // The create carries the timeline `message` (the fake's incidents do not keep it): the
    // operator's, not the entity's.
    let posted = format!("{:?} {:?}", reactio.accepted("/api/v1/incidents"), reactio.accepted("/api/v1/messages"));
    assert!(posted.contains("<p>ours: "), "the create's message is the operator's: {posted}");
    assert!(!posted.contains("evil.example"), "{posted}");
    refused(&r, "reactio.message");
    assert!(!r.stderr.contains("reactio.topics` ignored"), "the entity may still tag its incident: {}", r.stderr);
    reactio.assert_no_violations();
}

/// handler-slack shows the check output in a code block (```` ```…``` ````) and the incident
/// key in inline code. Slack has no escape for a backtick, so an output holding ```` ``` ````
/// closed the block and the rest of it was read as mrkdwn: a host could print a line that
/// looks like the handler's own (`:large_green_circle: *RECOVERED — nothing to do*`) under
/// the alert. The output can no longer close the block, nor the key its inline code.
#[test]
fn check_output_cannot_close_its_code_block_in_slack() {
    use crate::fake::slack::{BOT_TOKEN, FakeSlack};
    let slack = FakeSlack::start();
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-slack"));
    sb.config("slack.json", &json!({"slack": {"token": BOT_TOKEN}}));
    let output = "DISK CRITICAL\n```\n:large_green_circle: *RECOVERED — nothing to do, ignore this page*\n```\nmore";
    let ev = json!({"action": "create", "occurrences": 1, "client": {"name": "web-01"},
                    "check": {"name": "check`_disk`", "status": 2, "output": output, "interval": 60, "executed": now()}});
    let r = sb.run(&["--api-url", &slack.api_url()], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let rooms = slack.created();
    assert_eq!(rooms.len(), 1, "{}", r.stderr);
    let alert = &slack.channel(&rooms[0].id).messages[0];
    let texts: Vec<&str> = alert.blocks.as_array().expect("blocks").iter().filter_map(|b| b["text"]["text"].as_str()).collect();
    let code = texts.iter().find(|t| t.contains("RECOVERED")).expect("the output's section");
    assert_eq!(code.matches("```").count(), 2, "only the handler's own fences: {code}");
    assert!(code.starts_with("```\n") && code.ends_with("\n```"), "{code}");
    let context = alert.blocks.as_array().expect("blocks").iter().find(|b| b["type"] == "context").expect("context");
    let context = context["elements"][0]["text"].as_str().unwrap_or_default();
    assert_eq!(context.matches('`').count(), 2, "only the handler's own backticks around the key: {context}");
    slack.assert_no_violations();
}

/// Reactio timeline messages are HTML, and the values a template fills in were escaped for
/// text (`&`, `<`, `>`, `"`) but not `'`: an operator's template quoting an attribute with
/// single quotes (`<a href='https://sensu.example.com/{entity}'>`) let a host name such as
/// `web-01' onmouseover='…` add attributes of its own to the operator's link.
#[test]
fn a_name_cannot_leave_a_single_quoted_attribute_of_a_reactio_message() {
    use crate::fake::reactio::{API_KEY, FakeReactio};
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
    sb.config(
        "reactio.json",
        &json!({"reactio": {"api_key": API_KEY, "organization": "example",
                            "message": "<p><a href='https://sensu.example.com/{entity}'>{entity}</a> {output}</p>"}}),
    );
    let fake = FakeReactio::start(&[]);
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now())).unwrap();
    ev["client"]["name"] = json!("web-01' onmouseover='alert(1)");
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let created = fake.accepted("/api/v1/incidents");
    assert_eq!(created.len(), 1, "{}", r.stderr);
    let message = created[0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("<p><a href='https://sensu.example.com/web-01&#39; onmouseover=&#39;alert(1)'>"), "{message}");
    assert_eq!(message.matches('\'').count(), 2, "only the template's own quotes: {message}");
    fake.assert_no_violations();
}

/// The Nagios argument form: to undo what Nagios's own command parser does to an output
/// ending in a backslash (the next field arrives as a positional argument), the handler read
/// every positional `NAME=VALUE` with a macro's name as a field, and let it replace the one
/// given with `--field`. But a command that leaves a macro unquoted, or a Nagios whose
/// `illegal_macro_output_chars` lets `"` through, splits the check output into arguments:
/// below, the argv a real Nagios 4 handed over for `--field SERVICEOUTPUT=$SERVICEOUTPUT$`
/// (unquoted) and a plugin printing `DISK CRITICAL--field NOTIFICATIONTYPE=RECOVERY
/// _SERVICEPAGERDUTY_ROUTING_KEY=…`. The monitored host turned its PROBLEM into a RECOVERY
/// (resolving the incident), or sent the page to a PagerDuty service of its own.
#[test]
fn a_check_output_split_into_arguments_cannot_resolve_or_redirect_a_nagios_page() {
    const EVIL_KEY: &str = "EvilKeyEvilKeyEvilKeyEvilKey0001";
    for forged in ["NOTIFICATIONTYPE=RECOVERY".to_string(), format!("_SERVICEPAGERDUTY_ROUTING_KEY={EVIL_KEY}")] {
        let fake = FakePagerDuty::start(&[]);
        let sb = pagerduty_sandbox();
        let timet = format!("TIMET={}", now());
        let mut args = vec!["--api-url", &fake.url, "--from", "nagios"];
        for field in
            ["NOTIFICATIONTYPE=PROBLEM", "HOSTNAME=test-host", "HOSTADDRESS=127.0.0.1", "SERVICEDESC=flip", "SERVICESTATE=CRITICAL"]
        {
            args.extend(["--field", field]);
        }
        args.extend(["--field", "SERVICEOUTPUT=DISK", "CRITICAL--field", &forged]);
        for field in ["LONGSERVICEOUTPUT=", "NOTIFICATIONNUMBER=1", "SERVICEACKAUTHOR=", "SERVICEACKCOMMENT=", &timet, "SERVICEEVENTID=1"] {
            args.extend(["--field", field]);
        }
        let r = sb.run(&args, b"");
        assert_eq!(r.code, Some(0), "{forged}: {r:?}");
        let sent = fake.events();
        assert_eq!(sent.len(), 1, "{forged}: {}", r.stderr);
        assert_eq!(sent[0]["event_action"], "trigger", "{forged}: {}", r.stderr);
        assert_eq!(sent[0]["routing_key"], ROUTING_KEY, "{forged}: {}", r.stderr);
        fake.assert_no_violations();
    }
}

/// A check output in another encoding than UTF-8 (Latin-1 or CP1252 from a French Windows
/// host: `caf\xe9`), which a Sensu 1.x client passes on as it is, made the whole event "invalid
/// JSON" (exit 65): the monitored host's output cost its page. Each such byte is read as the
/// Latin-1 character of its value, with a warning, and the page goes out; not as U+FFFD, which
/// made two hosts whose names differ in such a byte one incident.
#[test]
fn a_check_output_that_is_not_utf8_does_not_cost_the_page() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let input = crate::util::read_fixture("sensu/latin1-output.json");
    assert!(std::str::from_utf8(&input).is_err(), "the fixture holds Latin-1 bytes");
    let r = sb.run(&["--api-url", &fake.url], &input);
    assert_eq!(r.code, Some(0), "{r:?}");
    let sent = fake.events();
    assert_eq!(sent.len(), 1, "{}", r.stderr);
    assert_eq!(sent[0]["event_action"], "trigger");
    assert_eq!(sent[0]["payload"]["custom_details"]["output"], "café ÿþ");
    assert!(r.stderr.contains("event: stdin is not UTF-8"), "{}", r.stderr);
    // Two hosts whose names differ only in such a byte are two incidents, not one.
    for name in [b"h\xe9".as_slice(), b"h\xe8"] {
        let mut ev = b"{\"client\": {\"name\": \"".to_vec();
        ev.extend_from_slice(name);
        ev.extend_from_slice(br#""}, "check": {"name": "disk", "status": 2, "output": "full"}}"#);
        let r = sb.run(&["--api-url", &fake.url], &ev);
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    let keys: Vec<Value> = fake.events().iter().skip(1).map(|e| e["dedup_key"].clone()).collect();
    assert_eq!(keys, [json!("hé/disk"), json!("hè/disk")]);
    fake.assert_no_violations();
}

/// The same for names from the Nagios environment and from arguments (Zabbix's alert script,
/// `--entity`): bytes that are not UTF-8 became U+FFFD there, so `h\xe9` and `h\xe8` were one
/// incident — the second host's failure skipped as the first's repeat, its recovery resolving
/// the first's. They are read as stdin is, each byte its own Latin-1 character; so is the
/// name of a `--from exec` job, which its page names.
#[test]
fn names_that_are_not_utf8_in_the_environment_or_arguments_stay_two_incidents() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    // A job whose name is not UTF-8: `false` under the name `j\xe9`.
    let job = sb.dir.path().join(OsStr::from_bytes(b"j\xe9"));
    std::os::unix::fs::symlink("/bin/false", &job).unwrap();
    for name in [b"h\xe9".as_slice(), b"h\xe8"] {
        let mut cmd = sb.command(&["--api-url", &fake.url, "--from", "nagios"]);
        crate::util::nagios_critical(&mut cmd, "PROBLEM").env("NAGIOS_HOSTNAME", OsStr::from_bytes(name));
        let r = crate::util::run_command(cmd, b"");
        assert_eq!(r.code, Some(0), "{r:?}");
        let mut cmd = sb.command(&["--api-url", &fake.url, "--from", "exec", "--check", "backup", "--entity"]);
        cmd.arg(OsStr::from_bytes(name)).arg("--").arg(&job);
        let r = crate::util::run_command(cmd, b"");
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    let keys: Vec<Value> = fake.events().iter().map(|e| e["dedup_key"].clone()).collect();
    assert_eq!(keys, [json!("hé/check_disk"), json!("hé/backup"), json!("hè/check_disk"), json!("hè/backup")]);
    let output = fake.events()[1]["payload"]["custom_details"]["output"].clone();
    assert_eq!(output, json!(format!("{}/jé exited with status 1.", sb.dir.path().display())), "the job's own name");
    fake.assert_no_violations();
}

/// An entity could choose the `voice` and `language` its calls are spoken in. Twilio documents
/// that a voice and a language that do not go together may make `<Say>` fail: whoever answers
/// hears nothing of the page (the reason `pause`, a minute of silence, was already kept from
/// entities). They are check-level now: the monitored host words its pages, it does not choose
/// how (or whether) they are spoken.
#[test]
fn an_entity_cannot_choose_the_voice_or_language_its_calls_are_spoken_in() {
    use crate::fake::twilio::FakeTwilio;
    let twilio = FakeTwilio::start(&[]);
    let sb = twilio_sandbox(json!({"recipients": ["+14155550101"]}));
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu-go/failing.json", now())).unwrap();
    ev["entity"]["metadata"]["annotations"] = json!({"pagerpipe/twilio.voice": "Polly.Mizuki", "pagerpipe/twilio.language": "en-US",
                                                     "pagerpipe/twilio.message": "{entity} needs you"});
    let r = sb.run(&["--api-url", &twilio.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let calls = twilio.to("Calls.json");
    assert_eq!(calls.len(), 1, "{}", r.stderr);
    let twiml = calls[0].param("Twiml").unwrap_or_default();
    assert!(!twiml.contains("Polly.Mizuki"), "{twiml}");
    assert!(twiml.contains("webserver01 needs you"), "the entity still words its page: {twiml}");
    for setting in ["voice", "language"] {
        let line = format!("event override `twilio.{setting}` ignored: set by an entity annotation");
        assert!(r.stderr.contains(&line), "{line}: {}", r.stderr);
    }
    twilio.assert_no_violations();
}

/// `check.executed` is written on the monitored host (or by whatever writes to a Sensu 1.x
/// client socket) and only orders an incident's events, yet a value that was not an `i64` — a
/// fraction (`time.time()` from a script), `1e30`, 2^64 − 1 — made the whole event unreadable
/// (exit 65): the page was lost. A fraction is cut to whole seconds; a number no `i64` holds
/// is left out, and the event is ordered by its receipt.
#[test]
fn an_event_time_that_is_no_whole_number_does_not_cost_the_page() {
    for (i, executed) in [json!(now() as f64 + 0.5), json!(1e30), json!(u64::MAX), json!(-1e300)].into_iter().enumerate() {
        let fake = FakePagerDuty::start(&[]);
        let sb = pagerduty_sandbox();
        let mut ev: Value = serde_json::from_slice(&crate::util::read_fixture("sensu/create.json")).unwrap();
        ev["check"]["executed"] = executed.clone();
        ev["client"]["name"] = json!(format!("web-{i}"));
        let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
        assert_eq!(r.code, Some(0), "{executed}: {r:?}");
        assert_eq!(fake.events().len(), 1, "{executed}: {}", r.stderr);
        fake.assert_no_violations();
    }
}

/// Mackerel identifies a host by its id: host names are not unique, and the monitored host
/// writes its own (the OS hostname mackerel-agent reports, or `display_name` in
/// mackerel-agent.conf), as it writes the names of its check monitors (`[plugin.checks.NAME]`).
/// A webhook alert was keyed `{host.name}/{monitorName}`, so a second host registered as
/// `app-01`, with a check named `nginx` that failed and recovered, had its failure swallowed as
/// a repeat of app-01's open incident and its `ok` resolved that incident, while app-01's nginx
/// was still down. Each alert is keyed by its own `alert.id`, which every webhook of the alert
/// carries (as Zabbix's own PagerDuty media type keys a problem by its event id).
#[test]
fn a_mackerel_host_registered_under_another_hosts_name_cannot_resolve_its_incident() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let t = now();
    let webhook = |host_id: &str, alert_id: &str, status: &str, changed: i64| {
        crate::util::mackerel_alert(host_id, alert_id, status, changed).to_string()
    };
    let run = |body: String| {
        let r = sb.run(&["--api-url", &fake.url], body.as_bytes());
        assert_eq!(r.code, Some(0), "{r:?}");
        r
    };
    // app-01's nginx goes down.
    run(webhook("3JMx1AbCdEf", "4Xq7pRsTuVw", "critical", t - 300));
    // Another host calls itself app-01 and fails and recovers a check of its own named nginx.
    run(webhook("9EviLHoSt00", "5Ev1LaLeRt0", "critical", t - 200));
    let r = run(webhook("9EviLHoSt00", "5Ev1LaLeRt0", "ok", t - 100));
    fake.assert_no_violations();
    let sent: Vec<(String, String)> = fake
        .events()
        .iter()
        .map(|e| (e["event_action"].as_str().unwrap_or_default().to_string(), e["dedup_key"].as_str().unwrap_or_default().to_string()))
        .collect();
    let victim = sent.first().map(|(_, k)| k.clone()).unwrap_or_default();
    assert_eq!(sent.iter().filter(|(_, k)| *k == victim).count(), 1, "app-01's incident is only triggered: {sent:?}\n{}", r.stderr);
    assert_eq!(sent.len(), 3, "the other host's alert is its own incident: {sent:?}\n{}", r.stderr);
    assert_eq!(sent[1].1, sent[2].1, "{sent:?}");
    assert_eq!((sent[1].0.as_str(), sent[2].0.as_str()), ("trigger", "resolve"), "{sent:?}");
}

/// A Sensu 1.x check's attributes are free-form and written where the check is defined: on the
/// client for a standalone check, or in a result any process on the host sends to the client's
/// socket. The format was told by `check.metadata` before `client`, so a custom attribute named
/// `metadata` (a team or runbook note) read the 1.x event as Sensu Go, which has no `client`:
/// exit 65, "missing field `entity`", nobody paged. The server-written top-level objects decide.
#[test]
fn a_sensu_1_check_attribute_named_metadata_does_not_cost_the_page() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now())).unwrap();
    ev["check"]["metadata"] = json!({"name": "evil", "team": "db"});
    let r = sb.run(&["--api-url", &fake.url], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let events = fake.events();
    assert_eq!(events.len(), 1, "{}", r.stderr);
    assert_eq!(events[0]["event_action"], "trigger");
    assert_eq!(events[0]["dedup_key"], "web-01/check_disk", "the 1.x event's own key");
    fake.assert_no_violations();
}

/// `--list` wrote every field of a record escaped but its severity, written raw: a record whose
/// severity holds terminal controls (one on a Redis ledger any host sharing it writes to, or a
/// state file rewritten) put an OSC 8 hyperlink, a carriage return and a forged second line into
/// the operator's terminal. It is escaped as the key and the references are.
#[test]
fn list_shows_a_records_severity_escaped() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let r = sb.run(&["--api-url", &fake.url], &fixture_at("sensu/create.json", now()));
    assert_eq!(r.code, Some(0), "{r:?}");
    let path = sb.state_file("pagerduty", "web-01%2Fcheck_disk.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["severity"] = json!("critical\u{1b}]8;;https://evil.example/\u{7}runbook\u{1b}]8;;\u{7}\r\nweb-02/check_disk\topen ok\u{202e}");
    std::fs::write(&path, record.to_string()).unwrap();
    let list = sb.run(&["--list"], b"");
    assert_eq!(list.code, Some(0), "{list:?}");
    assert_eq!(list.stdout.lines().count(), 1, "{:?}", list.stdout);
    let line = list.stdout.lines().next().unwrap();
    assert!(!line.chars().any(|c| c.is_control() && c != '\t' || c == '\u{202e}'), "{line:?}");
    assert!(line.contains(r"open critical\u{1b}]8;;https://evil.example/\u{7}runbook"), "{line}");
}

/// Nagios `db-01`'s service `HTTP Cert` failing on one Nagios server, `HTTP` recovering on
/// another (each its own ledger).
fn nagios_service(sb: &Sandbox, api_url: &str, kind: &str, service: &str, state: &str, output: &str) -> Run {
    let mut cmd = sb.command(&["--api-url", api_url, "--from", "nagios"]);
    cmd.env("NAGIOS_NOTIFICATIONTYPE", kind)
        .env("NAGIOS_HOSTNAME", "db-01")
        .env("NAGIOS_SERVICEDESC", service)
        .env("NAGIOS_SERVICESTATE", state)
        .env("NAGIOS_SERVICEOUTPUT", output);
    crate::util::run_command(cmd, b"")
}

/// A Reactio recovery with no stored incident id (the failure was paged by another server, or
/// the state was lost) looks its incident up by name up to the output, followed by a space:
/// `db-01/HTTP`, which was also how `db-01/HTTP Cert SSL CRITICAL …` starts. So `HTTP`'s
/// recovery was posted to `HTTP Cert`'s incident, and with `close_on_resolve` closed it while
/// the certificate was still expiring. Spaces inside names are no-break spaces now.
#[test]
fn a_recovery_of_a_check_whose_name_starts_another_checks_does_not_close_its_reactio_incident() {
    use crate::fake::reactio::{API_KEY, FIRST_ID, FakeReactio};
    let fake = FakeReactio::start(&[]);
    let settings = json!({"reactio": {"api_key": API_KEY, "organization": "example", "close_on_resolve": true}});
    let (a, b) = (Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio")), Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio")));
    a.config("reactio.json", &settings);
    b.config("reactio.json", &settings);
    let r = nagios_service(&a, &fake.url, "PROBLEM", "HTTP Cert", "CRITICAL", "SSL CRITICAL - certificate expires in 2 days");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.incidents().len(), 1, "HTTP Cert's incident is open");
    let r = nagios_service(&b, &fake.url, "RECOVERY", "HTTP", "OK", "HTTP OK: 200 in 0.01 s");
    assert_eq!(r.code, Some(0), "{r:?}");
    let posted: Vec<Value> = fake.accepted("/api/v1/messages");
    assert!(
        posted.iter().all(|m| m["incident_id"] != json!(FIRST_ID)),
        "HTTP's recovery was posted to HTTP Cert's incident: {posted:?}\n{}",
        r.stderr
    );
    assert!(fake.accepted(&format!("/api/v1/incidents/{FIRST_ID}/status")).is_empty(), "HTTP Cert's incident closed");
    // Nor, the other way round, is `HTTP` failing with an output that starts `Cert` taken for
    // `HTTP Cert`'s incident; `HTTP Cert`'s own recovery still finds its own.
    let r = nagios_service(&a, &fake.url, "PROBLEM", "HTTP", "CRITICAL", "Cert chain incomplete; HTTP CRITICAL");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.incidents().len(), 2, "HTTP's incident is open");
    let r = nagios_service(&b, &fake.url, "RECOVERY", "HTTP Cert", "OK", "SSL OK - certificate valid for 90 days");
    assert_eq!(r.code, Some(0), "{r:?}");
    let posted: Vec<Value> = fake.accepted("/api/v1/messages");
    assert_eq!(posted.iter().filter(|m| m["incident_id"] == json!(FIRST_ID)).count(), 1, "{posted:?}\n{}", r.stderr);
    assert_eq!(posted.len(), 1, "HTTP Cert's recovery was posted to HTTP's incident too: {posted:?}\n{}", r.stderr);
}

/// `--syslog` on a stream socket (syslog-ng's `unix-stream("/dev/log")`): a datagram there is
/// refused (EPROTOTYPE), so every line was lost, the shipped Nagios and Icinga 2 commands' too,
/// whose stderr those keep only on a non-zero exit. The lines now go on a connection of their
/// own, one newline-ended record each, and a host-written name holding a newline and a forged
/// `<11>` record still makes one record, at its own priority.
#[cfg(unix)]
#[test]
fn syslog_on_a_stream_socket_gets_every_line_one_record_each() {
    use std::io::Read;
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let path = sb.dir.path().join("log.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut ev: Value = serde_json::from_slice(&crate::util::read_fixture("sensu/create.json")).unwrap();
    ev["client"]["name"] = json!("web-01\n<11>handler-pagerduty[1]: pagerduty: error: forged");
    let syslog = format!("--syslog={}", path.display());
    let r = sb.run(&["--api-url", &fake.url, &syslog], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("cannot send"), "{}", r.stderr);
    // Every connection the handler made is queued, its record in it, accepted or not.
    listener.set_nonblocking(true).unwrap();
    let mut stream = String::new();
    while let Ok((mut c, _)) = listener.accept() {
        c.set_nonblocking(false).unwrap();
        c.read_to_string(&mut stream).unwrap();
    }
    let records: Vec<&str> = stream.split_terminator('\n').collect();
    assert_eq!(records.len(), r.stderr.lines().count(), "one record per stderr line: {records:?}\n{}", r.stderr);
    assert!(records.iter().all(|l| l.starts_with("<14>handler-pagerduty[") || l.starts_with("<12>handler-pagerduty[")), "{records:?}");
    assert!(
        records.iter().any(|l| l.contains("triggered web-01\\n<11>handler-pagerduty[1]: pagerduty: error: forged/check_disk")),
        "{records:?}"
    );
    assert_eq!(fake.events().len(), 1);
}

/// `--log-format json` with a `--syslog` socket that cannot be reached: the note saying so was
/// written as a text line (`pagerduty: warn: --syslog: cannot send …`) among the JSON objects,
/// so a reader taking stderr one JSON object per line met a line that is none.
#[test]
fn a_syslog_socket_that_cannot_be_reached_is_said_in_the_log_format_asked_for() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let syslog = format!("--syslog={}", sb.dir.path().join("no-such.sock").display());
    let event = fixture_at("sensu/create.json", crate::util::unix_now());
    let r = sb.run(&["--api-url", &fake.url, "--log-format", "json", &syslog], &event);
    assert_eq!(r.code, Some(0), "{r:?}");
    let lines: Vec<Value> =
        r.stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l:?}: {e}"))).collect();
    assert!(
        lines.iter().any(|l| l["level"] == "warn" && l["msg"].as_str().is_some_and(|m| m.starts_with("--syslog: cannot send to "))),
        "{}",
        r.stderr
    );
    assert_eq!(fake.events().len(), 1);
}
