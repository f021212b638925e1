//! Several hosts sharing one Redis ledger (README "Running on more than one host"), as black-box
//! runs of the binaries: each "host" is a sandbox with its own state and spool directories, and
//! every one points `--state-store` at the same `redis-server` on 127.0.0.1 (tests/util.rs
//! [`RedisServer`]).

use std::io::Write as _;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake::pagerduty::{FakePagerDuty, Script};
use crate::fake::reactio::{self, FakeReactio};
use crate::fake::slack::{self, FakeSlack, Fault};
use crate::fake::twilio::FakeTwilio;
use crate::util::{ROUTING_KEY, RedisServer, Sandbox, fixture_at, read_fixture, unix_now, wait_until};

const PAGERDUTY: &str = env!("CARGO_BIN_EXE_handler-pagerduty");
const TWILIO: &str = env!("CARGO_BIN_EXE_handler-twilio");
const SLACK: &str = env!("CARGO_BIN_EXE_handler-slack");
const REACTIO: &str = env!("CARGO_BIN_EXE_handler-reactio");
/// The incident key of the Sensu fixtures, as the Redis keys name it.
const KEY: &str = "web-01/check_disk";

/// `n` handler-pagerduty hosts.
fn pagerduty_hosts(n: usize) -> Vec<Sandbox> {
    (0..n)
        .map(|_| {
            let sb = Sandbox::new(PAGERDUTY);
            sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
            sb
        })
        .collect()
}

/// `n` handler-twilio hosts with one account, three recipients, voice and SMS, SMS on resolve.
fn twilio_hosts(n: usize) -> Vec<Sandbox> {
    (0..n)
        .map(|_| {
            let sb = Sandbox::new(TWILIO);
            sb.config(
                "twilio.json",
                &json!({"twilio": {
                    "account_sid": crate::fake::twilio::ACCOUNT_SID, "auth_token": crate::fake::twilio::AUTH_TOKEN,
                    "from": "+14155550100", "recipients": ["+14155550101", "+14155550102", "+14155550103"],
                    "channels": ["voice", "sms"], "notify_on_resolve": true}}),
            );
            sb
        })
        .collect()
}

/// `n` handler-slack hosts opening war rooms (two responders invited), with `extra` laid over
/// the `slack` section.
fn slack_hosts(n: usize, extra: Value) -> Vec<Sandbox> {
    (0..n)
        .map(|_| {
            let sb = Sandbox::new(SLACK);
            let section =
                crate::util::laid_over(json!({"token": slack::BOT_TOKEN, "responders": [slack::USERS[0], slack::USERS[1]]}), extra.clone());
            sb.config("slack.json", &json!({ "slack": section }));
            sb
        })
        .collect()
}

/// `n` handler-reactio hosts of one organization.
fn reactio_hosts(n: usize) -> Vec<Sandbox> {
    (0..n)
        .map(|_| {
            let sb = Sandbox::new(REACTIO);
            sb.config("reactio.json", &json!({"reactio": {"api_key": reactio::API_KEY, "organization": "example"}}));
            sb
        })
        .collect()
}

/// The stored record of `handler`'s incident [`KEY`] in Redis (`Null` when there is none).
fn shared_record(redis: &RedisServer, handler: &str) -> Value {
    let got = redis.cli(&["GET", &format!("pagerpipe:{handler}:rec:{KEY}")]).expect("redis-cli GET");
    serde_json::from_str(got.trim()).unwrap_or(Value::Null)
}

/// Run `host`'s handler on `event` with the shared store and `args`, to the end.
fn run_on(host: &Sandbox, redis: &RedisServer, args: &[&str], event: &[u8]) -> (Option<i32>, String) {
    wait_all(vec![spawn(host, redis, args, event)]).remove(0)
}

/// Run `host`'s handler-pagerduty on `recovery` with a 600 ms lease, kill it (kill -9, by its
/// PID) once PagerDuty has its `nth` event (the recovery, held by the fake), and wait until its
/// lease on the incident has run out.
fn recovery_killed_once_pagerduty_has_it(host: &Sandbox, redis: &RedisServer, fake: &FakePagerDuty, recovery: &[u8], nth: usize) {
    let mut cmd = host.command(&["--api-url", &fake.url, "--state-store", &redis.url, "--timeout", "10s"]);
    cmd.env(common::state::redis::LEASE_ENV, "600");
    let mut resolving = start(cmd, recovery);
    wait_until("the recovery to reach PagerDuty", Duration::from_secs(10), || (fake.events().len() == nth).then_some(()), String::new);
    resolving.kill().expect("SIGKILL the handler by its PID");
    let _ = resolving.wait();
    let hold = format!("pagerpipe:pagerduty:hold:{KEY}");
    let free = || redis.cli(&["EXISTS", &hold]).ok().filter(|n| n.trim() == "0");
    wait_until("the killed holder's lease to run out", Duration::from_secs(10), free, String::new);
}

/// `host`'s `--flush` with the shared store and `args`: (exit code, stderr).
fn flush_on(host: &Sandbox, redis: &RedisServer, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = host.command(&["--flush", "--state-store", &redis.url]);
    cmd.args(args).stdin(Stdio::null());
    let out = cmd.output().expect("flush");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Start `host`'s handler with `args` and the shared store (`--state-store`), and feed it `event`.
fn spawn(host: &Sandbox, redis: &RedisServer, args: &[&str], event: &[u8]) -> Child {
    let mut cmd = host.command(args);
    cmd.arg("--state-store").arg(&redis.url);
    start(cmd, event)
}

/// Start `cmd` and feed it `event`.
fn start(mut cmd: std::process::Command, event: &[u8]) -> Child {
    let mut child = cmd.spawn().expect("spawn handler");
    child.stdin.take().expect("stdin").write_all(event).expect("write the event");
    child
}

/// Wait for every child: (exit code, stderr) of each.
fn wait_all(children: Vec<Child>) -> Vec<(Option<i32>, String)> {
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait handler");
            (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
        })
        .collect()
}

/// The Sensu 1.x `fixture` with `client.name` set to `entity`.
fn event_for(fixture: &str, entity: &str) -> Vec<u8> {
    let mut ev: Value = serde_json::from_slice(&read_fixture(fixture)).expect("fixture JSON");
    ev["client"]["name"] = entity.into();
    ev.to_string().into_bytes()
}

#[test]
fn a_storm_of_90_events_on_three_hosts_pages_once() {
    let Some(redis) = RedisServer::start() else { return };
    // The first delivery takes 150 ms, so the rest of the storm arrives while it is in flight.
    let fake = FakePagerDuty::start(&[Script::Slow]);
    let hosts = pagerduty_hosts(3);
    // The three ways to name the store: the flag (host 0), the environment (host 1), the
    // settings file (host 2).
    hosts[2].config("ledger.json", &json!({"pagerduty": {"state_store": redis.url}}));
    let event = read_fixture("sensu/create.json");
    let children = (0..90)
        .map(|i| match i % 3 {
            0 => spawn(&hosts[0], &redis, &["--api-url", &fake.url], &event),
            1 => {
                let mut cmd = hosts[1].command(&["--api-url", &fake.url]);
                cmd.env("PAGERPIPE_STATE_STORE", &redis.url);
                start(cmd, &event)
            }
            _ => start(hosts[2].command(&["--api-url", &fake.url]), &event),
        })
        .collect();
    for (code, stderr) in wait_all(children) {
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!stderr.contains("error") && !stderr.contains(&redis.password), "{stderr}");
    }
    fake.assert_no_violations();
    assert_eq!(fake.events().len(), 1, "one page for the whole storm, on whichever host: {:?}", fake.events());
    for h in &hosts {
        assert!(h.spooled("pagerduty").is_empty());
    }
    // The ledger is in Redis, not on the hosts.
    let record = redis.cli(&["GET", "pagerpipe:pagerduty:rec:web-01/check_disk"]).unwrap();
    let record: Value = serde_json::from_str(record.trim()).unwrap();
    assert_eq!((record["open"].as_bool(), record["count"].as_u64()), (Some(true), Some(1)));
    for h in &hosts {
        assert!(!h.state_dir().join("pagerduty").join("web-01%2Fcheck_disk.json").exists(), "no record on a host");
    }
    // --list and --forget on any host see the shared ledger.
    let out = hosts[1].command(&["--list", "--state-store", &redis.url]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("web-01/check_disk"), "{}", String::from_utf8_lossy(&out.stdout));
    let forget = |host: &Sandbox| {
        host.command(&["--forget", "web-01/check_disk", "--state-store", &redis.url]).stdin(Stdio::null()).output().unwrap()
    };
    assert_eq!(forget(&hosts[2]).status.code(), Some(0));
    assert_eq!(redis.cli(&["EXISTS", "pagerpipe:pagerduty:rec:web-01/check_disk"]).unwrap().trim(), "0");
    assert_eq!(forget(&hosts[0]).status.code(), Some(65), "forgotten everywhere");
}

#[test]
fn a_recovery_handled_on_another_host_resolves_and_a_repeat_there_is_suppressed() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeTwilio::start(&[]);
    let hosts = twilio_hosts(3);
    let run = |host: usize, fixture: &str| {
        let (code, stderr) = wait_all(vec![spawn(&hosts[host], &redis, &["--api-url", &fake.url], &read_fixture(fixture))]).remove(0);
        assert_eq!(code, Some(0), "{stderr}");
        stderr
    };
    run(0, "sensu/create.json");
    assert_eq!((fake.to("Calls.json").len(), fake.to("Messages.json").len()), (3, 3));
    // The same failure on another host: already notified there too.
    let stderr = run(1, "sensu/create.json");
    assert!(stderr.contains("already notified"), "{stderr}");
    assert_eq!(fake.to("Calls.json").len(), 3, "nobody is rung twice");
    // The recovery on a third host knows who was paged, and tells them.
    run(2, "sensu/resolve.json");
    let texts = fake.to("Messages.json");
    assert_eq!(texts.len(), 6);
    assert!(texts[5].param("Body").is_some_and(|b| b.starts_with("RESOLVED: ")), "{:?}", texts[5].param("Body"));
    fake.assert_no_violations();
}

#[test]
fn a_broadcast_raised_on_two_hosts_at_once_rings_each_person_once() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeTwilio::start(&[]);
    let hosts = twilio_hosts(2);
    let event = read_fixture("sensu/create.json");
    let children = (0..2).map(|i| spawn(&hosts[i], &redis, &["--api-url", &fake.url], &event)).collect();
    for (code, stderr) in wait_all(children) {
        assert_eq!(code, Some(0), "{stderr}");
    }
    let mut called: Vec<String> = fake.to("Calls.json").iter().filter_map(|c| c.param("To").map(str::to_string)).collect();
    called.sort();
    assert_eq!(called, ["+14155550101", "+14155550102", "+14155550103"]);
    fake.assert_no_violations();
}

#[test]
fn redis_killed_mid_storm_every_event_is_delivered_or_spooled() {
    let Some(mut redis) = RedisServer::start() else { return };
    // The first three requests are never answered: their invocations are certainly still in
    // flight (until their 3 s deadline) when Redis is killed.
    let fake = FakePagerDuty::start(&[Script::Hang, Script::Hang, Script::Hang]);
    let hosts = pagerduty_hosts(3);
    let entities: Vec<String> = (0..30).map(|i| format!("web-{i:02}")).collect();
    let mut children = Vec::new();
    for round in 0..2 {
        for (i, entity) in entities.iter().enumerate() {
            let event = event_for("sensu/create.json", entity);
            children.push(spawn(&hosts[(i + round) % 3], &redis, &["--api-url", &fake.url, "--timeout", "3s"], &event));
        }
    }
    wait_until("three requests in flight", Duration::from_secs(30), || (fake.events().len() >= 3).then_some(()), String::new);
    redis.kill();
    for (code, stderr) in wait_all(children) {
        assert!(matches!(code, Some(0 | 75)), "delivered (0) or spooled (75), got {code:?}: {stderr}");
    }
    // What was spooled goes out with the next flush (Redis is still down: without the ledger).
    for h in &hosts {
        let mut cmd = h.command(&["--flush", "--api-url", &fake.url]);
        cmd.arg("--state-store").arg(&redis.url).stdin(Stdio::null());
        let out = cmd.output().expect("flush");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(h.spooled("pagerduty").is_empty());
    }
    let mut paged: Vec<String> =
        fake.events()[3..].iter().filter_map(|e| e["dedup_key"].as_str().and_then(|k| k.split('/').next()).map(str::to_string)).collect();
    paged.sort();
    paged.dedup();
    assert_eq!(paged, entities, "every incident paged and answered (a duplicate beats silence)");
    fake.assert_no_violations();
}

#[test]
fn twilio_call_caps_hold_across_hosts() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeTwilio::start(&[]);
    let (one, two) = ("+14155550101", "+14155550102");
    let hosts: Vec<Sandbox> = (0..4)
        .map(|_| {
            let sb = Sandbox::new(TWILIO);
            sb.config(
                "twilio.json",
                &json!({"twilio": {
                    "account_sid": crate::fake::twilio::ACCOUNT_SID, "auth_token": crate::fake::twilio::AUTH_TOKEN,
                    "from": "+14155550100", "recipients": [one, two]}}),
            );
            sb
        })
        .collect();
    // Eight different incidents at the same moment on four hosts: each host alone would call
    // each person twice (eight calls each in all); the shared cap allows three (call_caps
    // default: 3 in 15 minutes).
    let now = 1_795_219_200u64;
    let children = (0..8)
        .map(|i| {
            let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
            ev["check"]["name"] = format!("check_{i}").into();
            let mut cmd = hosts[i % 4].command(&["--api-url", &fake.url, "--state-store", &redis.url]);
            cmd.env("PAGERPIPE_NOW", now.to_string());
            start(cmd, ev.to_string().as_bytes())
        })
        .collect();
    for (code, stderr) in wait_all(children) {
        assert_eq!(code, Some(0), "{stderr}");
    }
    fake.assert_no_violations();
    let called: Vec<String> = fake.to("Calls.json").iter().filter_map(|c| c.param("To").map(str::to_string)).collect();
    for to in [one, two] {
        assert_eq!(called.iter().filter(|c| *c == to).count(), 3, "{to} called exactly 3 times in all: {called:?}");
    }
    let caps: Value = serde_json::from_str(redis.cli(&["GET", "pagerpipe:twilio:rec:recipients:calls"]).unwrap().trim()).unwrap();
    assert_eq!(caps["calls"][one], json!([now, now, now]), "no update lost: {caps}");
}

/// `n` handler-twilio hosts in sequential mode over three people: status checks every 20 ms,
/// `ring_timeout` 1 s (so that a `--timeout` of 16 s is enough for an event), no call caps.
fn sequential_twilio_hosts(n: usize) -> Vec<Sandbox> {
    (0..n)
        .map(|_| {
            let sb = Sandbox::new(TWILIO);
            sb.config(
                "twilio.json",
                &json!({"twilio": {
                    "account_sid": crate::fake::twilio::ACCOUNT_SID, "auth_token": crate::fake::twilio::AUTH_TOKEN,
                    "from": "+14155550100", "recipients": ["+14155550101", "+14155550102", "+14155550103"],
                    "mode": "sequential", "poll_interval": "20ms", "ring_timeout": 1, "call_caps": {}}}),
            );
            sb
        })
        .collect()
}

/// The Redis key of handler-twilio's hold of [`KEY`].
const TWILIO_HOLD: &str = "pagerpipe:twilio:hold:web-01/check_disk";

/// Start a sequential run of the failure on `host` (lease 600 ms, `--timeout 60s`) and wait
/// until its first call rings and is being followed.
fn start_ringing_run(host: &Sandbox, redis: &RedisServer, fake: &FakeTwilio) -> Child {
    let mut cmd = host.command(&["--api-url", &fake.url, "--timeout", "60s", "--state-store", &redis.url]);
    cmd.env(common::state::redis::LEASE_ENV, "600");
    let run = start(cmd, &read_fixture("sensu/create.json"));
    fake.wait_for("the first call ringing and followed", |calls| calls.len() == 1 && calls[0].fetches >= 1);
    run
}

/// Redis restarts (no persistence: the hold's lease and the record are gone) while host A's
/// sequential run has its first call ringing. A connects again and takes its hold again, so
/// the same failure on host B waits for it and queues (exit 75) instead of calling the same
/// people alongside; a resolve on B after that still reaches A through the record: A cancels
/// the ringing call and places no further one.
#[test]
fn a_sequential_run_keeps_its_incident_across_a_redis_restart_and_a_resolve_on_another_host_stops_it() {
    let Some(mut redis) = RedisServer::start() else { return };
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[crate::fake::twilio::Outcome::Ringing]);
    let hosts = sequential_twilio_hosts(2);
    let a = start_ringing_run(&hosts[0], &redis, &fake);
    let token = redis.cli(&["GET", TWILIO_HOLD]).expect("A holds the incident");
    redis.restart();
    wait_until(
        "A to hold its incident again in the restarted Redis",
        Duration::from_secs(20),
        || (redis.cli(&["GET", TWILIO_HOLD]).ok()? == token).then_some(()),
        || format!("calls: {:?}", fake.calls()),
    );
    let args = ["--api-url", fake.url.as_str(), "--timeout", "16s"];
    let (code, stderr) = run_on(&hosts[1], &redis, &args, &read_fixture("sensu/create.json"));
    assert_eq!(code, Some(75), "{stderr}");
    assert!(stderr.contains("another invocation is delivering for this incident"), "{stderr}");
    assert_eq!(fake.calls().len(), 1, "B started a second run: {stderr}");
    let (code, resolved) = run_on(&hosts[1], &redis, &args, &read_fixture("sensu/resolve.json"));
    let (a_code, a_stderr) = wait_all(vec![a]).remove(0);
    assert_eq!(a_code, Some(0), "{a_stderr}");
    assert!(a_stderr.contains(&format!("stopped: {KEY} was resolved meanwhile")), "{a_stderr}");
    assert!(a_stderr.contains("connected again") && !a_stderr.contains(&redis.password), "{a_stderr}");
    // Status checks every 20 ms while Redis restarted: one warning that stop requests cannot be
    // read (if a check fell in the outage), and one line when they can again; not one a check.
    let unread = a_stderr.matches("cannot read the record of web-01/check_disk to see whether to stop").count();
    let again = a_stderr.matches("the record can be read again to see whether to stop").count();
    assert!(unread <= 1 && again == unread, "{a_stderr}");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "a call after the resolve: {a_stderr}\n{resolved}");
    assert!(calls[0].canceled, "the ringing call was cancelled: {calls:?}");
    assert_eq!(code, Some(0), "{resolved}");
    fake.assert_no_violations();
}

/// Redis restarts while host A's sequential run has its first call ringing, and another host
/// takes the incident before A is back (its lease key set by hand stands for it): A's hold is
/// lost, so A cancels the ringing call, places no further one, says why in one line and exits
/// 75 — never two runs calling the same people at once; the holder pages.
#[test]
fn a_sequential_run_whose_hold_another_host_took_during_a_redis_restart_stops_calling() {
    let Some(mut redis) = RedisServer::start() else { return };
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[crate::fake::twilio::Outcome::Ringing]);
    let hosts = sequential_twilio_hosts(1);
    let a = start_ringing_run(&hosts[0], &redis, &fake);
    redis.restart();
    redis.cli(&["SET", TWILIO_HOLD, "another-host", "PX", "60000"]).unwrap();
    let (code, stderr) = wait_all(vec![a]).remove(0);
    assert_eq!(code, Some(75), "{stderr}");
    let lost: Vec<&str> = stderr.lines().filter(|l| l.contains(&format!("the hold {TWILIO_HOLD}")) && l.contains("was lost")).collect();
    assert_eq!(lost.len(), 1, "{stderr}");
    assert!(lost[0].contains("places no further call"), "{stderr}");
    // Handed over, not lost: the event is not printed as undelivered (resent by hand, it would
    // page a second time while the host holding the incident pages).
    assert!(!stderr.contains("undelivered event"), "{stderr}");
    assert!(!stderr.contains(&redis.password), "{stderr}");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{stderr}");
    assert!(calls[0].canceled, "the ringing call was cancelled: {calls:?}");
    assert_eq!(redis.cli(&["GET", TWILIO_HOLD]).unwrap().trim(), "another-host", "the other host's hold is left");
    fake.assert_no_violations();
}

/// The same for a run spooled while Twilio was unreachable and carried on by `--flush`: its hold
/// lost to another host during a Redis restart, the flush places no further call, cancels the
/// ringing one, and leaves the run queued (exit 75) for a flush that holds the incident.
#[test]
fn a_flushed_sequential_run_whose_hold_another_host_took_during_a_redis_restart_stays_queued() {
    let Some(mut redis) = RedisServer::start() else { return };
    let host = sequential_twilio_hosts(1).remove(0);
    let (code, stderr) =
        run_on(&host, &redis, &["--api-url", crate::util::REFUSED_URL, "--timeout", "16s"], &read_fixture("sensu/create.json"));
    assert_eq!(code, Some(75), "{stderr}");
    assert_eq!(host.spooled("twilio").len(), 1, "{stderr}");
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[crate::fake::twilio::Outcome::Ringing]);
    let mut cmd = host.command(&["--flush", "--api-url", &fake.url, "--timeout", "60s", "--state-store", &redis.url]);
    cmd.env(common::state::redis::LEASE_ENV, "600");
    let flush = start(cmd, b"");
    fake.wait_for("the first call ringing and followed", |calls| calls.len() == 1 && calls[0].fetches >= 1);
    redis.restart();
    redis.cli(&["SET", TWILIO_HOLD, "another-host", "PX", "60000"]).unwrap();
    let (code, stderr) = wait_all(vec![flush]).remove(0);
    assert_eq!(code, Some(75), "{stderr}");
    assert!(stderr.contains("was lost") && stderr.contains("places no further call"), "{stderr}");
    assert!(!stderr.contains(&redis.password), "{stderr}");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{stderr}");
    assert!(calls[0].canceled, "the ringing call was cancelled: {calls:?}");
    assert_eq!(host.spooled("twilio").len(), 1, "the run stays queued: {stderr}");
    fake.assert_no_violations();
}

#[test]
fn a_recovery_waiting_for_a_trigger_in_flight_is_not_sent_ahead_of_it_when_redis_dies() {
    let Some(mut redis) = RedisServer::start() else { return };
    // Host A's trigger: the first attempt fails after 4 s (a 500), the retry is accepted. Host B's
    // recovery arrives meanwhile and waits for A's hold; then Redis dies. Sent at once, B's
    // recovery reached PagerDuty before A's retried trigger: the incident stayed open there.
    let fake = FakePagerDuty::start(&[Script::LateError(4000)]);
    let hosts = pagerduty_hosts(2);
    let args = ["--api-url", &fake.url, "--timeout", "30s"];
    let a = spawn(&hosts[0], &redis, &args, &read_fixture("sensu/create.json"));
    wait_until("A's first attempt", Duration::from_secs(30), || (!fake.events().is_empty()).then_some(()), String::new);
    let b = spawn(&hosts[1], &redis, &args, &read_fixture("sensu/resolve.json"));
    // B asks the delivery in progress to stop before it waits for its hold.
    let rec = "pagerpipe:pagerduty:rec:web-01/check_disk";
    wait_until(
        "B's stop request",
        Duration::from_secs(30),
        || redis.cli(&["GET", rec]).ok().filter(|r| r.contains("\"stop\":{")),
        String::new,
    );
    assert_eq!(fake.events().len(), 1, "A's first attempt is still unanswered");
    redis.kill();
    let mut done = wait_all(vec![a, b]);
    let (b_code, b_err) = done.pop().unwrap();
    let (a_code, a_err) = done.pop().unwrap();
    assert_eq!(a_code, Some(0), "{a_err}");
    assert_eq!(b_code, Some(75), "the recovery is queued behind the trigger in flight: {b_err}");
    assert!(b_err.contains("queued behind"), "{b_err}");
    // The next flush (Redis still down) sends it, after the trigger.
    let out = hosts[1].command(&["--flush", "--api-url", &fake.url, "--state-store", &redis.url]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let order: Vec<Value> = fake.accepted().iter().map(|e| e["event_action"].clone()).collect();
    assert_eq!(order, [json!("trigger"), json!("resolve")]);
    fake.assert_no_violations();
}

#[test]
fn a_slack_storm_on_three_hosts_opens_one_war_room_and_posts_one_alert() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeSlack::start();
    // The war room's creation is answered after 300 ms: the rest of the storm arrives while
    // the first host is opening it.
    fake.fail("conversations.create", &[Fault::Slow(300)]);
    let hosts = slack_hosts(3, json!({}));
    let event = fixture_at("sensu/create.json", unix_now() - 5);
    let api = fake.api_url();
    let children = (0..30).map(|i| spawn(&hosts[i % 3], &redis, &["--api-url", &api], &event)).collect();
    for (code, stderr) in wait_all(children) {
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!stderr.contains("error"), "{stderr}");
    }
    fake.assert_no_violations();
    let created = fake.created();
    assert_eq!(created.len(), 1, "one war room for the storm: {:?}", slack::summary(&fake.calls()));
    assert_eq!(fake.calls_to("conversations.create").len(), 1, "no second name asked for (no -2)");
    let room = &created[0];
    assert_eq!(room.roots().len(), 1, "one alert");
    assert_eq!(fake.calls_to("chat.postMessage").len(), 1);
    let record = shared_record(&redis, "slack");
    assert_eq!(record["refs"]["channel_id"], room.id.as_str(), "{record}");
    assert_eq!(record["refs"]["ts"], room.roots()[0].ts.as_str(), "{record}");
    assert_eq!((record["open"].as_bool(), record["count"].as_u64()), (Some(true), Some(1)), "{record}");
    for h in &hosts {
        assert!(h.spooled("slack").is_empty());
    }
}

#[test]
fn a_slack_recovery_on_another_host_is_threaded_under_the_alert_in_its_war_room() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeSlack::start();
    let hosts = slack_hosts(3, json!({"archive_on_resolve": true}));
    let api = fake.api_url();
    let args = ["--api-url", api.as_str()];
    let now = unix_now();
    let (code, stderr) = run_on(&hosts[0], &redis, &args, &fixture_at("sensu/create.json", now - 30));
    assert_eq!(code, Some(0), "{stderr}");
    // The same failure on another host: already notified there too.
    let (code, stderr) = run_on(&hosts[1], &redis, &args, &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("already notified"), "{stderr}");
    // The recovery on a third host: in the alert's thread, in the war room the first one
    // opened, which it archives.
    let (code, stderr) = run_on(&hosts[2], &redis, &args, &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    fake.assert_no_violations();
    let created = fake.created();
    assert_eq!(created.len(), 1, "{:?}", slack::summary(&fake.calls()));
    let room = &created[0];
    let roots = room.roots();
    assert_eq!(roots.len(), 1);
    let replies = room.replies(&roots[0].ts);
    assert_eq!(replies.len(), 1, "{stderr}");
    assert!(replies[0].text.contains("RECOVERED") && replies[0].reply_broadcast, "{:?}", replies[0]);
    assert!(room.is_archived, "{stderr}");
    let record = shared_record(&redis, "slack");
    assert_eq!(record["open"], false, "{record}");
}

#[test]
fn a_reactio_storm_on_three_hosts_opens_one_incident_with_one_broadcast() {
    let Some(redis) = RedisServer::start() else { return };
    // The incident's creation is answered after 300 ms: the rest of the storm arrives while
    // the first host is opening it.
    let fake = FakeReactio::start(&[reactio::Script::Late(300)]);
    let hosts = reactio_hosts(3);
    let event = fixture_at("sensu/create.json", unix_now() - 5);
    let children = (0..30).map(|i| spawn(&hosts[i % 3], &redis, &["--api-url", &fake.url], &event)).collect();
    for (code, stderr) in wait_all(children) {
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!stderr.contains("error"), "{stderr}");
    }
    fake.assert_no_violations();
    assert_eq!(fake.incidents().len(), 1, "one incident for the storm: {:?}", fake.calls());
    assert_eq!(fake.accepted("/api/v1/notifications").len(), 0, "its broadcast went with the create, once");
    assert_eq!(fake.calls().len(), 1, "{:?}", fake.calls());
    let record = shared_record(&redis, "reactio");
    assert_eq!(record["refs"]["incident_id"], reactio::FIRST_ID, "{record}");
}

#[test]
fn a_reactio_recovery_on_another_host_resolves_the_incident_by_the_stored_id() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeReactio::start(&[]);
    // Another incident of the organization with the same name is open too (opened by hand, or
    // by a host that does not share the ledger): the stored id decides, not a lookup by name.
    let hosts = reactio_hosts(2);
    let now = unix_now();
    let (code, stderr) = run_on(&hosts[0], &redis, &["--api-url", &fake.url], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(0), "{stderr}");
    fake.opened_elsewhere("web-01/check_disk CheckDisk CRITICAL: / 95.2% used (45G of 47G)", 1);
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains(&format!("incident {}: recovery posted", reactio::FIRST_ID)), "{stderr}");
    let messages = fake.accepted("/api/v1/messages");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["incident_id"], reactio::FIRST_ID);
    assert!(fake.calls().iter().all(|c| !c.path.starts_with("/api/v1/incidents?")), "no lookup: {:?}", fake.calls());
    assert_eq!(shared_record(&redis, "reactio")["open"], false);
    fake.assert_no_violations();
}

#[test]
fn a_reactio_recovery_meeting_another_hosts_create_in_flight_resolves_that_incident() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeReactio::start(&[reactio::Script::Late(4000)]);
    let hosts = reactio_hosts(2);
    let now = unix_now();
    let a = spawn(&hosts[0], &redis, &["--api-url", &fake.url, "--timeout", "20s"], &fixture_at("sensu/create.json", now - 20));
    wait_until("A's create", Duration::from_secs(30), || (!fake.calls().is_empty()).then_some(()), String::new);
    let b = spawn(&hosts[1], &redis, &["--api-url", &fake.url, "--timeout", "2s"], &fixture_at("sensu/resolve.json", now - 10));
    let mut done = wait_all(vec![a, b]);
    let (b_code, b_err) = done.pop().unwrap();
    let (a_code, a_err) = done.pop().unwrap();
    assert_eq!(a_code, Some(0), "{a_err}");
    assert_eq!(b_code, Some(75), "the recovery is queued behind the create: {b_err}");
    let (code, stderr) = flush_on(&hosts[1], &redis, &["--api-url", &fake.url]);
    assert_eq!(code, Some(0), "{stderr}");
    let messages = fake.accepted("/api/v1/messages");
    assert_eq!(messages.len(), 1, "{stderr}");
    assert_eq!(messages[0]["incident_id"], reactio::FIRST_ID);
    assert_eq!(fake.incidents().len(), 1);
    assert_eq!(shared_record(&redis, "reactio")["open"], false);
    fake.assert_no_violations();
}

#[test]
fn a_reactio_failure_handed_over_after_its_recovery_on_another_host_opens_no_incident() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeReactio::start(&[]);
    let hosts = reactio_hosts(2);
    let now = unix_now();
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run_on(&hosts[0], &redis, &["--api-url", &fake.url], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("superseded"), "{stderr}");
    assert!(fake.incidents().is_empty(), "{:?}", fake.calls());
    fake.assert_no_violations();
}
#[test]
fn a_slack_recovery_meeting_another_hosts_war_room_still_being_opened_is_posted_in_its_thread() {
    // Host A's war room takes 4 s to be created; host B's recovery (2 s deadline) waits for A's
    // hold for 1.5 s of it, then queues behind it.
    let Some((redis, fake, hosts, api, now)) = two_slack_hosts("conversations.create", &[Fault::Slow(4000)]) else { return };
    let a = spawn(&hosts[0], &redis, &["--api-url", &api, "--timeout", "20s"], &fixture_at("sensu/create.json", now - 20));
    wait_until("A's create", Duration::from_secs(30), || (!fake.calls_to("conversations.create").is_empty()).then_some(()), String::new);
    let b = spawn(&hosts[1], &redis, &["--api-url", &api, "--timeout", "2s"], &fixture_at("sensu/resolve.json", now - 10));
    let mut done = wait_all(vec![a, b]);
    let (b_code, b_err) = done.pop().unwrap();
    let (a_code, a_err) = done.pop().unwrap();
    assert_eq!(a_code, Some(0), "{a_err}");
    assert_eq!(b_code, Some(75), "the recovery is queued behind the war room being opened: {b_err}");
    assert!(b_err.contains("queued behind"), "{b_err}");
    let (code, stderr) = flush_on(&hosts[1], &redis, &["--api-url", &api]);
    assert_eq!(code, Some(0), "{stderr}");
    fake.assert_no_violations();
    let room = &fake.created()[0];
    let roots = room.roots();
    assert_eq!(roots.len(), 1);
    let replies = room.replies(&roots[0].ts);
    assert_eq!(replies.len(), 1, "the recovery in the alert's thread: {b_err}\n{stderr}");
    assert!(replies[0].text.contains("RECOVERED"), "{:?}", replies[0]);
    assert_eq!(shared_record(&redis, "slack")["open"], false);
}
#[test]
fn a_slack_failure_handed_over_after_its_recovery_on_another_host_opens_no_war_room() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeSlack::start();
    let hosts = slack_hosts(2, json!({}));
    let api = fake.api_url();
    let now = unix_now();
    // Host B handles the recovery (check run 10 s ago) first; host A, behind a backlog, hands
    // over the failure the check reported 20 s ago afterwards.
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &api], &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run_on(&hosts[0], &redis, &["--api-url", &api], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("superseded"), "{stderr}");
    assert!(fake.created().is_empty(), "no war room for a check that has recovered: {:?}", slack::summary(&fake.calls()));
    fake.assert_no_violations();
}

/// Two Slack hosts on one Redis, and the fake Slack answering `method` with `faults` first:
/// (the Redis, the fake, the hosts, the fake's API URL, now). `None` when redis-server is
/// missing (reported by [`RedisServer::start`]).
fn two_slack_hosts(method: &str, faults: &[Fault]) -> Option<(RedisServer, FakeSlack, Vec<Sandbox>, String, i64)> {
    let redis = RedisServer::start()?;
    let fake = FakeSlack::start();
    fake.fail(method, faults);
    let hosts = slack_hosts(2, json!({}));
    let api = fake.api_url();
    Some((redis, fake, hosts, api, unix_now()))
}

/// Two Slack hosts on one Redis, and a war room spooled on host A: Slack rate-limits its
/// create (Retry-After 30 s, past its deadline) for a failure whose check ran 20 s ago.
/// `None` when redis-server is missing (reported by [`RedisServer::start`]).
fn war_room_spooled_on_a_rate_limited_host() -> Option<(RedisServer, FakeSlack, Vec<Sandbox>, String, i64)> {
    let (redis, fake, hosts, api, now) = two_slack_hosts("conversations.create", &[Fault::RateLimited(30)])?;
    let (code, stderr) = run_on(&hosts[0], &redis, &["--api-url", &api, "--timeout", "3s"], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{stderr}");
    assert_eq!(hosts[0].spooled("slack").len(), 4, "create, topic, invite, alert: {stderr}");
    Some((redis, fake, hosts, api, now))
}

#[test]
fn a_war_room_spooled_on_a_rate_limited_host_is_opened_once_by_whichever_host_gets_through() {
    let Some((redis, fake, hosts, api, now)) = war_room_spooled_on_a_rate_limited_host() else { return };
    // The check's next failure reaches host B, which Slack lets through: B opens the war room.
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &api], &fixture_at("sensu/create.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(fake.created().len(), 1);
    // A's flush finds the incident notified: nothing of its spooled war room goes out.
    let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", &api]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(hosts[0].spooled("slack").is_empty(), "{stderr}");
    assert_eq!(fake.calls_to("conversations.create").len(), 2, "the rate-limited one and B's: {:?}", slack::summary(&fake.calls()));
    assert_eq!(fake.created().len(), 1, "{stderr}");
    assert_eq!(fake.created()[0].roots().len(), 1, "{stderr}");
    fake.assert_no_violations();
}

#[test]
fn a_war_room_spooled_on_a_rate_limited_host_is_not_opened_after_the_recovery_on_another_host() {
    let Some((redis, fake, hosts, api, now)) = war_room_spooled_on_a_rate_limited_host() else { return };
    // The recovery reaches host B while A's war room waits in A's spool: nobody was paged yet,
    // so nothing is posted.
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &api], &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    // A's flush must not open a war room for a check that has recovered.
    let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", &api]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(hosts[0].spooled("slack").is_empty(), "{stderr}");
    assert!(fake.created().is_empty(), "{stderr}\n{:?}", slack::summary(&fake.calls()));
    fake.assert_no_violations();
}
#[test]
fn a_host_opening_war_rooms_never_archives_the_channel_another_host_posts_alerts_to() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeSlack::start();
    // Host A posts to the team's #alerts (one-channel mode); host B, whose settings file was
    // not updated, still opens war rooms and archives them on recovery.
    let a = slack_hosts(1, json!({"channel": slack::ALERTS})).remove(0);
    let b = slack_hosts(1, json!({"archive_on_resolve": true})).remove(0);
    let api = fake.api_url();
    let now = unix_now();
    let (code, stderr) = run_on(&a, &redis, &["--api-url", &api], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run_on(&b, &redis, &["--api-url", &api], &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    let alerts = fake.channel(slack::ALERTS);
    let roots = alerts.roots();
    assert_eq!(roots.len(), 1);
    assert_eq!(alerts.replies(&roots[0].ts).len(), 1, "the recovery in the alert's thread: {stderr}");
    assert!(!alerts.is_archived, "#alerts archived by the recovery: {stderr}");
    assert!(fake.created().is_empty());
    fake.assert_no_violations();
}

#[test]
fn a_war_room_and_its_recovery_spooled_while_redis_is_down_are_delivered_whole_by_a_flush_without_it() {
    let Some(mut redis) = RedisServer::start() else { return };
    redis.kill();
    let host = slack_hosts(1, json!({"archive_on_resolve": true})).remove(0);
    // Slack is unreachable too: the war room is spooled, and the recovery behind it.
    let down = format!("{}/api", crate::util::REFUSED_URL);
    let args = ["--api-url", down.as_str(), "--timeout", "2s"];
    let now = unix_now();
    let (code, stderr) = run_on(&host, &redis, &args, &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{stderr}");
    assert_eq!(host.spooled("slack").len(), 4, "create, topic, invite, alert: {stderr}");
    let (code, stderr) = run_on(&host, &redis, &args, &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(75), "{stderr}");
    assert_eq!(host.spooled("slack").len(), 6, "and the recovery and the archive: {stderr}");
    // Slack is back, Redis is not: the flush delivers all of it, each step with the channel
    // and the alert's ts the step before it brought back.
    let fake = FakeSlack::start();
    let (code, stderr) = flush_on(&host, &redis, &["--api-url", &fake.api_url()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(host.spooled("slack").is_empty(), "{stderr}");
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, crate::fake::slack::WAR_ROOM_LIFE, "{stderr}");
    let room = &fake.created()[0];
    let roots = room.roots();
    assert_eq!(roots.len(), 1, "{stderr}");
    let replies = room.replies(&roots[0].ts);
    assert!(replies.len() == 1 && replies[0].text.contains("RECOVERED"), "{stderr}");
    assert!(room.is_archived && !room.topic.is_empty(), "{stderr}");
    fake.assert_no_violations();
}

#[test]
fn a_reactio_incident_and_its_recovery_spooled_while_redis_is_down_are_delivered_by_a_flush_without_it() {
    let Some(mut redis) = RedisServer::start() else { return };
    redis.kill();
    let host = reactio_hosts(1).remove(0);
    let args = ["--api-url", crate::util::REFUSED_URL, "--timeout", "2s"];
    let now = unix_now();
    let (code, stderr) = run_on(&host, &redis, &args, &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{stderr}");
    let (code, stderr) = run_on(&host, &redis, &args, &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(75), "{stderr}");
    assert_eq!(host.spooled("reactio").len(), 2, "the create and the recovery behind it: {stderr}");
    let fake = FakeReactio::start(&[]);
    let (code, stderr) = flush_on(&host, &redis, &["--api-url", &fake.url]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(fake.incidents().len(), 1, "{stderr}");
    let messages = fake.accepted("/api/v1/messages");
    assert_eq!(messages.len(), 1, "the recovery, to the incident the create opened: {stderr}");
    assert_eq!(messages[0]["incident_id"], reactio::FIRST_ID);
    fake.assert_no_violations();
}

#[test]
fn a_recovery_while_redis_is_down_finds_the_war_room_its_own_flush_just_opened() {
    let Some(mut redis) = RedisServer::start() else { return };
    redis.kill();
    let host = slack_hosts(1, json!({})).remove(0);
    let down = format!("{}/api", crate::util::REFUSED_URL);
    let now = unix_now();
    let (code, stderr) = run_on(&host, &redis, &["--api-url", &down, "--timeout", "2s"], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{stderr}");
    // Slack is back, Redis is not, when the recovery comes: the war room goes out first (the
    // spool is the incident's log), and the recovery is threaded under its alert.
    let fake = FakeSlack::start();
    let (code, stderr) = run_on(&host, &redis, &["--api-url", &fake.api_url()], &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(host.spooled("slack").is_empty(), "{stderr}");
    let room = &fake.created()[0];
    let roots = room.roots();
    assert_eq!(roots.len(), 1, "{stderr}");
    let replies = room.replies(&roots[0].ts);
    assert!(replies.len() == 1 && replies[0].text.contains("RECOVERED"), "the recovery in the alert's thread: {stderr}");
    fake.assert_no_violations();
}
#[test]
fn redis_killed_mid_slack_storm_every_war_room_is_opened_or_spooled() {
    let Some(mut redis) = RedisServer::start() else { return };
    let fake = FakeSlack::start();
    // The first three war rooms are answered after 3 s: their invocations are certainly still
    // in flight when Redis is killed.
    fake.fail("conversations.create", &[Fault::Slow(3000), Fault::Slow(3000), Fault::Slow(3000)]);
    let hosts = slack_hosts(3, json!({}));
    let api = fake.api_url();
    let entities: Vec<String> = (0..10).map(|i| format!("web-{i:02}")).collect();
    let now = unix_now();
    let mut children = Vec::new();
    for round in 0..2 {
        for (i, entity) in entities.iter().enumerate() {
            let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now - 5)).unwrap();
            ev["client"]["name"] = entity.as_str().into();
            children.push(spawn(&hosts[(i + round) % 3], &redis, &["--api-url", &api, "--timeout", "5s"], ev.to_string().as_bytes()));
        }
    }
    wait_until(
        "three creates in flight",
        Duration::from_secs(30),
        || (fake.calls_to("conversations.create").len() >= 3).then_some(()),
        String::new,
    );
    redis.kill();
    for (code, stderr) in wait_all(children) {
        assert!(matches!(code, Some(0 | 75)), "delivered (0) or spooled (75), got {code:?}: {stderr}");
    }
    // What was spooled goes out with the next flush (Redis is still down: without the ledger).
    // Without the ledger nothing tells a flush that another host opened the war room its
    // queued event waited for (the name is taken: it opens the next one, -2), and nothing
    // holds an incident against a concurrent flush of the same spool: a duplicate room, or a
    // refused step of a duplicate, is the price (README: a duplicate is better than
    // silence). What must hold: every incident's alert went out.
    for h in &hosts {
        let (code, stderr) = flush_on(h, &redis, &["--api-url", &api]);
        assert!(matches!(code, Some(0 | 69)), "{stderr}");
        assert!(h.spooled("slack").is_empty(), "{stderr}");
    }
    let rooms = fake.created();
    let summary: Vec<(String, usize, usize)> = entities
        .iter()
        .map(|e| {
            let mine: Vec<&slack::Channel> = rooms.iter().filter(|r| r.name.contains(&format!("-{e}-"))).collect();
            (e.clone(), mine.len(), mine.iter().map(|r| r.roots().len()).sum())
        })
        .collect();
    for (e, _, alerts) in &summary {
        assert!(*alerts >= 1, "{e}: its alert went out: (entity, war rooms, alerts) {summary:?}");
    }
    fake.assert_no_violations();
}

#[test]
fn a_war_room_whose_alert_waits_in_one_hosts_spool_gets_the_next_hosts_alert_not_a_second_room() {
    // Host A opens the war room; Slack rate-limits its alert (Retry-After past its deadline):
    // the alert waits in A's spool, the room is remembered in the shared record.
    let Some((redis, fake, hosts, api, now)) = two_slack_hosts("chat.postMessage", &[Fault::RateLimited(30)]) else { return };
    let (code, stderr) = run_on(&hosts[0], &redis, &["--api-url", &api, "--timeout", "3s"], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{stderr}");
    assert_eq!(fake.created().len(), 1);
    // The check's next failure on host B: into that room, not a second one.
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &api], &fixture_at("sensu/create.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(fake.created().len(), 1, "one war room: {stderr}\n{:?}", slack::summary(&fake.calls()));
    let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", &api]);
    assert_eq!(code, Some(0), "{stderr}");
    let room = &fake.created()[0];
    assert_eq!(room.roots().len(), 1, "one alert: {stderr}");
    fake.assert_no_violations();
}

#[test]
fn redis_killed_mid_reactio_storm_every_incident_is_opened_or_spooled() {
    let Some(mut redis) = RedisServer::start() else { return };
    // The first three creates are answered after 3 s: their invocations are certainly still in
    // flight when Redis is killed.
    let late = reactio::Script::Late(3000);
    let fake = FakeReactio::start(&[late, late, late]);
    let hosts = reactio_hosts(3);
    let entities: Vec<String> = (0..10).map(|i| format!("web-{i:02}")).collect();
    let now = unix_now();
    let mut children = Vec::new();
    for round in 0..2 {
        for (i, entity) in entities.iter().enumerate() {
            let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now - 5)).unwrap();
            ev["client"]["name"] = entity.as_str().into();
            children.push(spawn(&hosts[(i + round) % 3], &redis, &["--api-url", &fake.url, "--timeout", "5s"], ev.to_string().as_bytes()));
        }
    }
    wait_until("three creates in flight", Duration::from_secs(30), || (fake.calls().len() >= 3).then_some(()), String::new);
    redis.kill();
    for (code, stderr) in wait_all(children) {
        assert!(matches!(code, Some(0 | 75)), "delivered (0) or spooled (75), got {code:?}: {stderr}");
    }
    for h in &hosts {
        let (code, stderr) = flush_on(h, &redis, &["--api-url", &fake.url]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(h.spooled("reactio").is_empty(), "{stderr}");
    }
    let incidents = fake.incidents();
    let per_entity: Vec<(String, usize)> = entities
        .iter()
        .map(|e| (e.clone(), incidents.iter().filter(|i| i["name"].as_str().is_some_and(|n| n.starts_with(&format!("{e}/")))).count()))
        .collect();
    for (e, n) in &per_entity {
        // Without the ledger each host opens its own (a duplicate is better than silence).
        assert!((1..=2).contains(n), "{e}: an incident per event at most: {per_entity:?}");
    }
    fake.assert_no_violations();
}

#[test]
fn a_reactio_create_whose_answer_was_lost_is_found_by_the_flush_and_its_recovery_resolves_it_elsewhere() {
    let Some(redis) = RedisServer::start() else { return };
    // Reactio opens the incident (and broadcasts) at once, and answers after 4 s: past host A's
    // deadline. Sent again blindly, it would open a second incident and broadcast again.
    let fake = FakeReactio::start(&[reactio::Script::Late(4000)]);
    let hosts = reactio_hosts(2);
    let now = unix_now();
    let (code, stderr) =
        run_on(&hosts[0], &redis, &["--api-url", &fake.url, "--timeout", "2s"], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{stderr}");
    assert_eq!(fake.incidents().len(), 1);
    let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", &fake.url]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("acted on it after all"), "{stderr}");
    assert_eq!(fake.incidents().len(), 1, "not opened twice: {stderr}");
    assert_eq!(fake.calls().iter().filter(|c| c.path == "/api/v1/incidents").count(), 1, "one create: {stderr}");
    // Its recovery on host B resolves it by the id the flush stored.
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    let messages = fake.accepted("/api/v1/messages");
    assert_eq!(messages.len(), 1, "{stderr}");
    assert_eq!(messages[0]["incident_id"], reactio::FIRST_ID);
    fake.assert_no_violations();
}
#[test]
fn the_next_failure_after_a_recovery_on_other_hosts_opens_the_days_next_war_room() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeSlack::start();
    let hosts = slack_hosts(3, json!({}));
    let api = fake.api_url();
    let args = ["--api-url", api.as_str()];
    let now = unix_now();
    for (host, fixture, age) in [(0, "sensu/create.json", 30), (1, "sensu/resolve.json", 20), (2, "sensu/create.json", 10)] {
        let (code, stderr) = run_on(&hosts[host], &redis, &args, &fixture_at(fixture, now - age));
        assert_eq!(code, Some(0), "{stderr}");
    }
    // The day's name is the first room's: the third host asks for -2 straight away (the
    // shared record names the room), and the second incident's record is its own.
    let created = fake.created();
    assert_eq!(created.len(), 2, "{:?}", slack::summary(&fake.calls()));
    assert_eq!(created[1].name, format!("{}-2", created[0].name));
    assert_eq!(fake.calls_to("conversations.create").len(), 2, "no name_taken on the way");
    let record = shared_record(&redis, "slack");
    assert_eq!(record["refs"]["channel_id"], created[1].id.as_str(), "{record}");
    assert_eq!((record["open"].as_bool(), record["count"].as_u64()), (Some(true), Some(1)), "{record}");
    fake.assert_no_violations();
}

/// A Sensu 1.x `fixture` for `entity` whose check ran at `executed`.
fn event_at(fixture: &str, entity: &str, executed: i64) -> Vec<u8> {
    let mut ev: Value = serde_json::from_slice(&fixture_at(fixture, executed)).expect("fixture JSON");
    ev["client"]["name"] = entity.into();
    ev.to_string().into_bytes()
}

#[test]
fn a_failure_and_its_recovery_racing_on_two_hosts_leave_no_war_room_open() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeSlack::start();
    let hosts = slack_hosts(2, json!({}));
    let api = fake.api_url();
    let now = unix_now();
    // Ten incidents, each failure (20 s ago) on host A and its recovery (10 s ago) on host B
    // started together: whichever reaches the ledger first, the recovery is the last word.
    let entities: Vec<String> = (0..10).map(|i| format!("db-{i:02}")).collect();
    let mut children = Vec::new();
    for e in &entities {
        children.push(spawn(&hosts[0], &redis, &["--api-url", &api], &event_at("sensu/create.json", e, now - 20)));
        children.push(spawn(&hosts[1], &redis, &["--api-url", &api], &event_at("sensu/resolve.json", e, now - 10)));
    }
    for (code, stderr) in wait_all(children) {
        assert_eq!(code, Some(0), "{stderr}");
    }
    for e in &entities {
        for room in fake.created().iter().filter(|r| r.name.contains(&format!("-{e}-"))) {
            let roots = room.roots();
            assert_eq!(roots.len(), 1, "{e}: {:?}", slack::summary(&fake.calls()));
            let replies = room.replies(&roots[0].ts);
            assert!(replies.iter().any(|r| r.text.contains("RECOVERED")), "{e}: a war room left open");
        }
        let rec = redis.cli(&["GET", &format!("pagerpipe:slack:rec:{e}/check_disk")]).unwrap();
        let rec: Value = serde_json::from_str(rec.trim()).unwrap_or(Value::Null);
        assert_ne!(rec["open"], true, "{e}: {rec}");
    }
    fake.assert_no_violations();
}

#[test]
fn a_failure_and_its_recovery_racing_on_two_hosts_leave_no_reactio_incident_unresolved() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeReactio::start(&[]);
    let hosts = reactio_hosts(2);
    let now = unix_now();
    let entities: Vec<String> = (0..10).map(|i| format!("db-{i:02}")).collect();
    let mut children = Vec::new();
    for e in &entities {
        children.push(spawn(&hosts[0], &redis, &["--api-url", &fake.url], &event_at("sensu/create.json", e, now - 20)));
        children.push(spawn(&hosts[1], &redis, &["--api-url", &fake.url], &event_at("sensu/resolve.json", e, now - 10)));
    }
    for (code, stderr) in wait_all(children) {
        assert_eq!(code, Some(0), "{stderr}");
    }
    let resolved: Vec<Value> = fake.accepted("/api/v1/messages").iter().map(|m| m["incident_id"].clone()).collect();
    for incident in fake.incidents() {
        assert!(resolved.contains(&incident["id"]), "{} left without its recovery: {:?}", incident["name"], fake.calls());
    }
    for e in &entities {
        let rec = redis.cli(&["GET", &format!("pagerpipe:reactio:rec:{e}/check_disk")]).unwrap();
        let rec: Value = serde_json::from_str(rec.trim()).unwrap_or(Value::Null);
        assert_ne!(rec["open"], true, "{e}: {rec}");
    }
    fake.assert_no_violations();
}

/// Among many open incidents (700: more than one `MGET` of the lookup reads), a Mackerel
/// host that registered as app-01 still passes over the real app-01's war room, which the
/// ledger holds open for another incident key: it opens its own, `-2`.
#[test]
fn a_host_named_like_another_passes_over_its_war_room_among_700_open_incidents() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeSlack::start();
    let host = slack_hosts(1, json!({})).remove(0);
    let api = fake.api_url();
    let real: Value = serde_json::from_slice(&read_fixture("mackerel/check-alert.json")).unwrap();
    let (code, stderr) = run_on(&host, &redis, &["--api-url", &api], real.to_string().as_bytes());
    assert_eq!(code, Some(0), "{stderr}");
    let room = fake.created()[0].clone();
    let keys = redis.cli(&["--scan", "--pattern", "pagerpipe:slack:rec:*"]).unwrap();
    let [real_key] = keys.lines().collect::<Vec<_>>()[..] else { panic!("one record: {keys}") };
    let record: Value = serde_json::from_str(redis.cli(&["GET", real_key]).unwrap().trim()).unwrap();
    assert_eq!(record["refs"]["channel_id"], room.id.as_str(), "{record}");
    // 700 other open incidents, each with a war room of its own, whose keys list before the
    // real one's (`4Xq7pRsTuVw`, its alert id).
    let mut mset = vec!["MSET".to_string()];
    for i in 0..700 {
        let mut other = record.clone();
        other["refs"]["channel_id"] = json!(format!("C0OTHER{i:04}"));
        mset.push(format!("pagerpipe:slack:rec:{i:03}-db/check_disk"));
        mset.push(other.to_string());
    }
    redis.cli(&mset.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    let mut impostor = real.clone();
    impostor["host"]["id"] = json!("9ZzImpostor");
    impostor["alert"]["id"] = json!("5Impostor01");
    impostor["alert"]["url"] = json!("https://mackerel.io/orgs/Example/alerts/5Impostor01");
    let (code, stderr) = run_on(&host, &redis, &["--api-url", &api], impostor.to_string().as_bytes());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("is the war room of another incident the ledger holds open"), "{stderr}");
    let rooms = fake.created();
    assert_eq!(rooms.len(), 2, "{stderr}");
    assert_eq!(rooms[1].name, format!("{}-2", room.name), "{stderr}");
    assert_eq!(fake.channel(&room.id).roots().len(), 1, "only app-01's own alert in its war room");
    fake.assert_no_violations();
}

#[test]
fn two_spooled_war_rooms_whose_names_fold_alike_are_both_opened_by_the_flush() {
    let Some(redis) = RedisServer::start() else { return };
    let hosts = slack_hosts(2, json!({}));
    let down = format!("{}/api", crate::util::REFUSED_URL);
    let now = unix_now();
    // web.01 and web-01 fail while Slack is unreachable from both hosts: both war rooms are
    // spooled, each under the one name both entity names make.
    for (host, entity) in [(0, "web.01"), (1, "web-01")] {
        let (code, stderr) =
            run_on(&hosts[host], &redis, &["--api-url", &down, "--timeout", "1s"], &event_at("sensu/create.json", entity, now - 10));
        assert_eq!(code, Some(75), "{stderr}");
    }
    let fake = FakeSlack::start();
    let mut flushed = String::new();
    for h in &hosts {
        let (code, stderr) = flush_on(h, &redis, &["--api-url", &fake.api_url()]);
        assert_eq!(code, Some(0), "{stderr}");
        flushed.push_str(&stderr);
    }
    // The second flush meets name_taken and asks for the next name, as a live run does: both
    // incidents get their war room and their alert (the second was refused, 69, its alert lost).
    let rooms = fake.created();
    assert_eq!(rooms.len(), 2, "{flushed}");
    assert_eq!(rooms[1].name, format!("{}-2", rooms[0].name), "{flushed}");
    for room in &rooms {
        assert_eq!(room.roots().len(), 1, "{}: {flushed}", room.name);
        assert!(!room.topic.is_empty(), "{}", room.name);
    }
    for (entity, room) in [("web.01", &rooms[0]), ("web-01", &rooms[1])] {
        let rec = redis.cli(&["GET", &format!("pagerpipe:slack:rec:{entity}/check_disk")]).unwrap();
        let rec: Value = serde_json::from_str(rec.trim()).unwrap();
        assert_eq!(rec["refs"]["channel_id"], room.id.as_str(), "{entity}: {rec}");
    }
    fake.assert_no_violations();
}

#[test]
fn a_first_page_refused_leaves_no_key_behind_in_redis() {
    let Some(redis) = RedisServer::start() else { return };
    // A wrong key: Reactio refuses the create (401). Its in-flight note made the record; with
    // nothing else in it, the record goes with the note (before, an empty key stayed in Redis
    // for good: it has no expiry).
    let fake = FakeReactio::start(&[]);
    let host = reactio_hosts(1).remove(0);
    host.config("zz-wrong-key.json", &json!({"reactio": {"api_key": "not-the-right-key-000000000000000dead"}}));
    let (code, stderr) = run_on(&host, &redis, &["--api-url", &fake.url], &fixture_at("sensu/create.json", unix_now() - 5));
    assert_eq!(code, Some(69), "{stderr}");
    assert_eq!(redis.cli(&["EXISTS", &format!("pagerpipe:reactio:rec:{KEY}")]).unwrap().trim(), "0", "{stderr}");
}

/// A Zabbix problem for web-01 (Zabbix gives no time of its own: ordered by receipt).
const ZABBIX_PROBLEM: &str = "name:Zabbix agent on web-01 is unreachable for 5 minutes\nid:13502\nstatus:PROBLEM\nhostname:web-01\nvalue:1\nevent_id:8123\nseverity:High\n";

/// The `zabbix` arguments of handler-twilio for `subject` and `message` (no "Send to").
fn zabbix(subject: &str, message: &str) -> [String; 5] {
    ["--from", "zabbix", "", subject, message].map(str::to_string)
}

/// [`ZABBIX_PROBLEM`]'s recovery.
fn zabbix_recovery() -> String {
    ZABBIX_PROBLEM.replace("status:PROBLEM", "status:OK").replace("value:1", "value:0")
}

/// Run `host`'s handler-twilio with `args` and the shared store, its clock at `at`
/// (`PAGERPIPE_NOW`): (exit code, stderr).
fn run_at(host: &Sandbox, redis: &RedisServer, args: &[String], at: i64) -> (Option<i32>, String) {
    let mut cmd = host.command(&["--state-store", &redis.url]);
    cmd.args(args).env("PAGERPIPE_NOW", at.to_string());
    wait_all(vec![start(cmd, b"")]).remove(0)
}

/// Zabbix HA on one Redis: node A cannot reach Twilio and spools the problem's calls and texts;
/// its recovery reaches node B 30 s later (a failover), where nobody was called for it, and is
/// skipped; then A's flush. With `paged_before`, B paged and resolved an earlier problem of the
/// incident 100 s before. The recovery's time must be noted (README "Recoveries go out") so
/// that A's flush supersedes what it spooled and rings nobody for a problem that has recovered,
/// with nothing left to tell them it did. Returns B's stderr for the recovery.
fn zabbix_problem_spooled_on_a_and_recovered_on_b_rings_nobody(paged_before: bool) -> String {
    let Some(redis) = RedisServer::start() else { return String::new() };
    let hosts = twilio_hosts(2);
    let fake = FakeTwilio::start(&[]);
    let api = |url: &str| ["--api-url", url, "--timeout", "2s"].map(str::to_string);
    let now = unix_now();
    if paged_before {
        for (args, at) in [(zabbix("PROBLEM", ZABBIX_PROBLEM), now - 100), (zabbix("OK", &zabbix_recovery()), now - 90)] {
            let (code, stderr) = run_at(&hosts[1], &redis, &[&api(&fake.url)[..], &args].concat(), at);
            assert_eq!(code, Some(0), "{stderr}");
        }
    }
    let paged = fake.accepted().len();
    let (code, stderr) = run_at(&hosts[0], &redis, &[&api(crate::util::REFUSED_URL)[..], &zabbix("PROBLEM", ZABBIX_PROBLEM)].concat(), now);
    assert_eq!(code, Some(75), "{stderr}");
    assert!(!hosts[0].spooled("twilio").is_empty(), "{stderr}");
    let (code, skipped) = run_at(&hosts[1], &redis, &[&api(&fake.url)[..], &zabbix("OK", &zabbix_recovery())].concat(), now + 30);
    assert_eq!(code, Some(0), "{skipped}");
    let (code, flushed) = run_at(&hosts[0], &redis, &[&["--flush".to_string()][..], &api(&fake.url)].concat(), now + 40);
    assert_eq!(code, Some(0), "{flushed}");
    assert!(hosts[0].spooled("twilio").is_empty(), "{flushed}");
    let rang = &fake.accepted()[paged..];
    assert!(rang.is_empty(), "rang for a problem that recovered: {rang:?}\n{skipped}\n{flushed}");
    fake.assert_no_violations();
    skipped
}

/// Before, a receipt time was never noted, and A's flush called all three and texted them.
#[test]
fn a_problem_without_a_time_spooled_on_one_host_does_not_ring_after_its_recovery_skipped_on_another() {
    zabbix_problem_spooled_on_a_and_recovered_on_b_rings_nobody(false);
}

/// The recovery on B finds the earlier problem's record and is skipped as "already resolved";
/// before, a receipt time was never noted over a record, and A's flush called all three.
#[test]
fn a_problem_without_a_time_spooled_on_one_host_does_not_ring_after_its_recovery_on_another_finds_it_resolved() {
    let skipped = zabbix_problem_spooled_on_a_and_recovered_on_b_rings_nobody(true);
    assert!(skipped.is_empty() || skipped.contains("already resolved"), "{skipped}");
}

/// Zabbix events carry no time: each is ordered by its receipt, on the clock of the host that
/// took it. Host A, whose clock runs 5 s ahead of B's, starts a sequential run for a problem;
/// its recovery reaches B while A's first call rings. An event as it arrives is the later one
/// (README "Event order"), so the recovery stops the run: the ringing call is cancelled and
/// nobody else is called. Before, B's stop request carried B's earlier clock reading and A
/// took it for a resolve from before its own event: A kept calling.
#[test]
fn a_recovery_without_a_time_stops_a_sequential_run_on_a_host_whose_clock_is_ahead() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[crate::fake::twilio::Outcome::Ringing]);
    let hosts = sequential_twilio_hosts(2);
    let now = unix_now();
    let recovery = zabbix_recovery();
    let mut cmd = hosts[0].command(&["--api-url", &fake.url, "--timeout", "20s", "--state-store", &redis.url]);
    cmd.args(zabbix("PROBLEM", ZABBIX_PROBLEM)).env("PAGERPIPE_NOW", (now + 5).to_string());
    let a = start(cmd, b"");
    fake.wait_for("the first call ringing and followed", |calls| calls.len() == 1 && calls[0].fetches >= 1);
    let mut cmd = hosts[1].command(&["--api-url", &fake.url, "--timeout", "16s", "--state-store", &redis.url]);
    cmd.args(zabbix("OK", &recovery)).env("PAGERPIPE_NOW", now.to_string());
    let b = start(cmd, b"");
    let mut done = wait_all(vec![a, b]);
    let ((a_code, a_stderr), (code, resolved)) = (done.remove(0), done.remove(0));
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "called on after the recovery: {a_stderr}\n{resolved}");
    assert!(calls[0].canceled, "the ringing call was cancelled: {calls:?}");
    assert_eq!(a_code, Some(0), "{a_stderr}");
    assert!(a_stderr.contains("was resolved meanwhile"), "{a_stderr}");
    assert_eq!(code, Some(0), "{resolved}");
    fake.assert_no_violations();
}

/// A Slack war room opened step by step against a slow Slack (its create and its alert each
/// answered after 700 ms) under a 300 ms Redis lease, while host B gets the check's next failure:
/// host A's hold stays its own throughout (its waits renew it), so B waits for it instead of
/// taking the incident and opening a second war room; one room, one alert, B's failure in it.
#[test]
fn a_slack_war_room_opened_slowly_keeps_its_hold_and_the_other_host_waits() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeSlack::start();
    fake.fail("conversations.create", &[Fault::Slow(700)]);
    fake.fail("chat.postMessage", &[Fault::Slow(700)]);
    let hosts: Vec<Sandbox> = slack_hosts(2, json!({})).into_iter().map(|h| h.with_env(common::state::redis::LEASE_ENV, "300")).collect();
    let api = fake.api_url();
    let now = unix_now();
    let a = spawn(&hosts[0], &redis, &["--api-url", &api, "--timeout", "20s"], &fixture_at("sensu/create.json", now - 20));
    let hold = format!("pagerpipe:slack:hold:{KEY}");
    let token =
        wait_until("A's hold", Duration::from_secs(10), || redis.cli(&["GET", &hold]).ok().filter(|t| !t.trim().is_empty()), String::new);
    wait_until("A's create", Duration::from_secs(10), || (!fake.calls_to("conversations.create").is_empty()).then_some(()), String::new);
    let b = spawn(&hosts[1], &redis, &["--api-url", &api, "--timeout", "20s"], &fixture_at("sensu/create.json", now - 10));
    // Watched until A is done: gone or another's, the hold lapsed while A was opening the room.
    let mut lapsed = None;
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while lapsed.is_none() && !fake.calls_to("chat.postMessage").iter().any(slack::Call::ok) {
        assert!(std::time::Instant::now() < give_up, "A never posted its alert: {:?}", slack::summary(&fake.calls()));
        let now = redis.cli(&["GET", &hold]).expect("redis-cli");
        if now != token {
            lapsed = Some(now);
        }
    }
    let mut done = wait_all(vec![a, b]);
    let (b_code, b_err) = done.pop().unwrap();
    let (a_code, a_err) = done.pop().unwrap();
    assert_eq!(lapsed, None, "A's hold stayed its own while it opened the war room: {a_err}\n{b_err}");
    assert_eq!(a_code, Some(0), "{a_err}");
    assert_eq!(b_code, Some(0), "{b_err}");
    assert_eq!(fake.created().len(), 1, "one war room: {:?}", slack::summary(&fake.calls()));
    fake.assert_no_violations();
}

/// An acknowledgement covers the notifications before it, on whichever host they wait. Host A
/// re-notifies a problem while Twilio cannot be reached: its calls are spooled there. The
/// operator acknowledges, handled on host B, whose ledger already says "acknowledged" (the first
/// acknowledgement): before, it was skipped without a trace, and A's flush, once Twilio was
/// back, rang everyone for the problem the operator had just taken. Now the skipped
/// acknowledgement's time is noted in the shared ledger, and the older spooled calls are
/// superseded by it.
#[test]
fn an_acknowledgement_skipped_on_one_host_supersedes_calls_spooled_before_it_on_another() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeTwilio::start(&[]);
    let hosts = twilio_hosts(2);
    // Twilio refuses connections while the re-notification is handled.
    let down = crate::util::REFUSED_URL;
    let t0 = unix_now() - 10_000;
    let nagios = |host: usize, at: i64, ack: bool, api: &str| {
        let mut cmd = hosts[host].command(&["--api-url", api, "--from", "nagios", "--timeout", "2s", "--state-store", &redis.url]);
        cmd.env("PAGERPIPE_NOW", at.to_string());
        if ack {
            crate::util::nagios_ack(&mut cmd, "bob");
        } else {
            crate::util::nagios_critical(&mut cmd, "PROBLEM");
        }
        crate::util::run_command(cmd, b"")
    };
    let r = nagios(0, t0, false, &fake.url);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(fake.to("Calls.json").len(), 3, "{}", r.stderr);
    let r = nagios(1, t0 + 60, true, &fake.url);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // Re-notified after refresh (30 minutes) on A, Twilio unreachable: spooled there.
    let r = nagios(0, t0 + 2000, false, down);
    assert_eq!(r.code, Some(75), "{}", r.stderr);
    // Taken again by the operator, on B.
    let r = nagios(1, t0 + 2060, true, &fake.url);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // Twilio is back; A's flush.
    let mut cmd = hosts[0].command(&["--flush", "--api-url", &fake.url, "--state-store", &redis.url]);
    cmd.env("PAGERPIPE_NOW", (t0 + 2120).to_string());
    let flushed = crate::util::run_command(cmd, b"");
    assert_eq!(flushed.code, Some(0), "{}", flushed.stderr);
    assert_eq!(fake.to("Calls.json").len(), 3, "nobody is rung for a problem acknowledged after it:\n{}", flushed.stderr);
    assert!(flushed.stderr.contains("superseded"), "{}", flushed.stderr);
    assert!(std::fs::read_dir(hosts[0].spool_dir()).unwrap().flatten().all(|e| e.path().is_dir()), "{}", flushed.stderr);
    fake.assert_no_violations();
}

/// An event for an incident nobody was paged for, which Twilio skips (after taking its hold,
/// for a recovery, whose time is noted), must let the hold go at once: left to its lease (a
/// minute here), it would make every other host's page for the incident wait, then queue.
#[test]
fn a_skipped_event_for_a_new_incident_leaves_no_hold_behind() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeTwilio::start(&[]);
    let host = &twilio_hosts(1)[0];
    let hold = format!("pagerpipe:twilio:hold:{KEY}");
    let nagios = |kind: &str| {
        let mut cmd = host.command(&["--api-url", &fake.url, "--from", "nagios", "--timeout", "5s", "--state-store", &redis.url]);
        cmd.env(common::state::redis::LEASE_ENV, "60000");
        match kind {
            "ACKNOWLEDGEMENT" => crate::util::nagios_ack(&mut cmd, "bob"),
            _ => crate::util::nagios_critical(&mut cmd, kind).env("NAGIOS_SERVICESTATE", "OK"),
        };
        crate::util::run_command(cmd, b"")
    };
    for kind in ["ACKNOWLEDGEMENT", "RECOVERY"] {
        let r = nagios(kind);
        assert_eq!(r.code, Some(0), "{kind}: {}", r.stderr);
        assert!(r.stderr.contains("skipped"), "{kind}: {}", r.stderr);
        // The release is sent as the process ends; Redis reads it in a moment, not in a minute.
        wait_until(
            "the hold to be released",
            Duration::from_secs(20),
            || (redis.cli(&["EXISTS", &hold]).ok()?.trim() == "0").then_some(()),
            || format!("{kind}: PTTL {:?}\n{}", redis.cli(&["PTTL", &hold]), r.stderr),
        );
    }
    assert!(fake.to("Calls.json").is_empty() && fake.to("Messages.json").is_empty(), "nobody was paged, so nobody is told");
    // A page for it on this or another host goes out at once.
    let mut cmd = host.command(&["--api-url", &fake.url, "--from", "nagios", "--timeout", "5s", "--state-store", &redis.url]);
    crate::util::nagios_critical(&mut cmd, "PROBLEM");
    let r = crate::util::run_command(cmd, b"");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(fake.to("Calls.json").len(), 3, "{}", r.stderr);
}

/// Incident opened by a host that does not share the ledger at `now - 50`; host 0's recovery
/// at `now - 40` finds the incident list answering 500: spooled as a recovery run (a lookup by
/// name at the flush). The list answers again afterwards.
fn reactio_recovery_run_spooled(redis: &RedisServer, fake: &FakeReactio, hosts: &[Sandbox], now: i64) {
    let elsewhere = reactio_hosts(1).remove(0);
    let r = elsewhere.run(&["--api-url", &fake.url], &fixture_at("sensu/create.json", now - 50));
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.fail_lists(1000);
    let (code, stderr) =
        run_on(&hosts[0], redis, &["--api-url", &fake.url, "--timeout", "1s"], &fixture_at("sensu/resolve.json", now - 40));
    assert_eq!(code, Some(75), "{stderr}");
    assert_eq!(hosts[0].spooled("reactio").len(), 1, "{stderr}");
    fake.fail_lists(0);
}

/// The incident ids the recovery messages were posted to, in order.
fn reactio_recovered(fake: &FakeReactio) -> Vec<Value> {
    fake.accepted("/api/v1/messages").iter().map(|m| m["incident_id"].clone()).collect()
}

/// Host A's recovery run is spooled (the incident list answered 500); the check fails again and
/// host B, sharing the ledger, opens incident 1002 for it (and, the second time, recovers it
/// before A flushes). A's flush dropped the run as superseded by those later events, so
/// incident 1001, opened before, never got its recovery and stayed open for good (with the
/// events in one receipt window, the run was carried on instead and found the newest incident
/// of the name: it posted the recovery to 1002, the failure still going on, and the ledger
/// marked it resolved).
#[test]
fn a_reactio_recovery_run_spooled_before_a_failure_on_another_host_still_closes_the_incident_before_it() {
    for recovered_first in [false, true] {
        let Some(redis) = RedisServer::start() else { return };
        let fake = FakeReactio::start(&[]);
        let hosts = reactio_hosts(2);
        let now = unix_now();
        reactio_recovery_run_spooled(&redis, &fake, &hosts, now);
        let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/create.json", now - 30));
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(shared_record(&redis, "reactio")["refs"]["incident_id"], reactio::FIRST_ID + 1);
        let b_recovers = || {
            let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/resolve.json", now - 20));
            assert_eq!(code, Some(0), "{stderr}");
        };
        if recovered_first {
            b_recovers();
        }
        let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", &fake.url]);
        assert_eq!(code, Some(0), "{stderr}");
        let mut recovered = reactio_recovered(&fake);
        recovered.sort_by_key(|id| id.as_u64());
        let expected =
            if recovered_first { vec![json!(reactio::FIRST_ID), json!(reactio::FIRST_ID + 1)] } else { vec![json!(reactio::FIRST_ID)] };
        assert_eq!(recovered, expected, "the incident opened before gets its recovery, once\n{stderr}");
        assert!(hosts[0].spooled("reactio").is_empty(), "{stderr}");
        let record = shared_record(&redis, "reactio");
        assert_eq!(
            (record["open"].clone(), record["refs"]["incident_id"].clone()),
            (json!(!recovered_first), json!(reactio::FIRST_ID + 1)),
            "{record}"
        );
        if !recovered_first {
            // The later failure's recovery closes its own incident.
            b_recovers();
            assert_eq!(reactio_recovered(&fake), vec![json!(reactio::FIRST_ID), json!(reactio::FIRST_ID + 1)]);
        }
        fake.assert_no_violations();
    }
}

/// Two flushes of one host at once over its spooled recovery run (the recovery message answered
/// 1.5 s late), with the ledger in Redis: posted once.
#[test]
fn two_flushes_at_once_post_a_spooled_reactio_recovery_run_once_on_redis() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeReactio::start(&[reactio::Script::Accept, reactio::Script::Late(1500)]);
    let hosts = reactio_hosts(1);
    let now = unix_now();
    reactio_recovery_run_spooled(&redis, &fake, &hosts, now);
    let flush = || {
        let mut cmd = hosts[0].command(&["--flush", "--state-store", &redis.url, "--api-url", &fake.url, "--timeout", "10s"]);
        cmd.stdin(Stdio::null());
        cmd.spawn().expect("spawn flush")
    };
    for (code, stderr) in wait_all(vec![flush(), flush()]) {
        assert_eq!(code, Some(0), "{stderr}");
    }
    assert_eq!(reactio_recovered(&fake), vec![json!(reactio::FIRST_ID)]);
    assert_eq!(shared_record(&redis, "reactio")["open"], false);
    fake.assert_no_violations();
}

/// Host A's recovery run is spooled; the check's next recovery reaches host B, which finds the
/// incident by name and posts to it. A's flush, carrying the run on, passes over the incident
/// the ledger now holds for that later recovery: one recovery posted.
#[test]
fn a_reactio_recovery_run_spooled_before_a_recovery_on_another_host_posts_nothing_more() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeReactio::start(&[]);
    let hosts = reactio_hosts(2);
    let now = unix_now();
    reactio_recovery_run_spooled(&redis, &fake, &hosts, now);
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/resolve.json", now - 20));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", &fake.url]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(reactio_recovered(&fake), vec![json!(reactio::FIRST_ID)], "{stderr}");
    assert!(hosts[0].spooled("reactio").is_empty(), "{stderr}");
    assert_eq!(shared_record(&redis, "reactio")["open"], false);
    fake.assert_no_violations();
}

/// `handler-pagerduty --from cli` on `host` with the shared store and `args`, its clock at `at`
/// (`PAGERPIPE_NOW`), for the check `replication` of the entity `db-cluster` (one incident
/// whichever host runs the script): (exit code, stderr).
fn cli_at(host: &Sandbox, redis: &RedisServer, args: &[&str], status: &str, at: i64) -> (Option<i32>, String) {
    let mut cmd = host.command(&["--state-store", &redis.url]);
    cmd.args(args).args(["--from", "cli", "--entity", "db-cluster", "--check", "replication", "--status", status]);
    cmd.env("PAGERPIPE_NOW", at.to_string());
    wait_all(vec![start(cmd, b"")]).remove(0)
}

/// A script run by whichever host of a cluster is active (`--from cli`, one `--entity`), two
/// hosts on one Redis, host A's clock 5 s ahead of B's. A pages the failure; two seconds later
/// B reports the recovery, cannot reach PagerDuty at that moment and spools it; B's next flush
/// delivers it. The time of a batch event is the moment the handler read it, on the clock of
/// the host that ran it (README "Scripts and batch jobs"): B's recovery is the later event
/// although its time reads 3 s before A's failure. Before, the flush superseded it ("older
/// than the last event applied") and the PagerDuty alert stayed open for good.
#[test]
fn a_batch_recovery_spooled_on_a_host_whose_clock_is_behind_still_resolves_the_failure_another_host_paged() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakePagerDuty::start(&[]);
    let hosts = pagerduty_hosts(2);
    let now = unix_now();
    let (code, stderr) = cli_at(&hosts[0], &redis, &["--api-url", &fake.url], "critical", now + 5);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = cli_at(&hosts[1], &redis, &["--api-url", crate::util::REFUSED_URL, "--timeout", "1s"], "ok", now + 2);
    assert_eq!(code, Some(75), "{stderr}");
    let mut cmd = hosts[1].command(&["--flush", "--api-url", &fake.url, "--state-store", &redis.url]);
    cmd.env("PAGERPIPE_NOW", (now + 10).to_string()).stdin(Stdio::null());
    let out = cmd.output().expect("flush");
    let flushed = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{flushed}");
    assert_eq!(actions(&fake), ["trigger", "resolve"], "the recovery was not sent: {flushed}");
    let record = redis.cli(&["GET", "pagerpipe:pagerduty:rec:db-cluster/replication"]).expect("redis-cli GET");
    let record: Value = serde_json::from_str(record.trim()).unwrap_or(Value::Null);
    assert_eq!(record["open"].as_bool(), Some(false), "{record}");
    fake.assert_no_violations();
}

/// On host A (`hosts[0]`): a failure and its recovery, then the next failure, whose answer the
/// service at `api` sends too late (its third request; `--timeout 2s`: spooled, exit 75); its
/// recovery on host B; A's `--flush`. What the three said, for assertion messages.
fn lost_answer_then_a_recovery_on_another_host(hosts: &[Sandbox], redis: &RedisServer, api: &str) -> String {
    let now = unix_now();
    let url = ["--api-url", api];
    for (fixture, at) in [("sensu/create.json", now - 40), ("sensu/resolve.json", now - 30)] {
        let (code, stderr) = run_on(&hosts[0], redis, &url, &fixture_at(fixture, at));
        assert_eq!(code, Some(0), "{stderr}");
    }
    let (code, lost) = run_on(&hosts[0], redis, &["--api-url", api, "--timeout", "2s"], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{lost}");
    let (code, recovery) = run_on(&hosts[1], redis, &url, &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{recovery}");
    let (code, flush) = flush_on(&hosts[0], redis, &url);
    assert_eq!(code, Some(0), "{flush}");
    format!("lost failure:\n{lost}recovery on B:\n{recovery}flush on A:\n{flush}")
}

/// An incident opened and recovered, then the check's next failure on host A, whose create
/// Reactio carries out but answers only after A's deadline (exit 75: spooled on A, fate
/// unknown), then its recovery on host B, then A's `--flush`. Both incidents must end with
/// their recovery posted: the second one was opened by the lost create, and the recovery is
/// the last event.
///
/// Found by the chaos soak (session 25). Before, B skipped the recovery ("already resolved":
/// the ledger still held the first incident's recovery), and A's flush then dropped the
/// spooled create as superseded by it without looking up what it had opened: the second
/// incident stayed open for good.
#[test]
fn a_reactio_recovery_on_another_host_after_a_create_whose_answer_was_lost_resolves_the_incident_it_opened() {
    let Some(redis) = RedisServer::start() else { return };
    // The first incident's create and recovery message; then the lost create.
    let fake = FakeReactio::start(&[reactio::Script::Accept, reactio::Script::Accept, reactio::Script::Late(4000)]);
    let hosts = reactio_hosts(2);
    let story = lost_answer_then_a_recovery_on_another_host(&hosts, &redis, &fake.url);
    assert_eq!(fake.incidents().len(), 2, "Reactio opened the second incident, once: {story}");
    let recovered: Vec<Value> = fake.accepted("/api/v1/messages").iter().map(|m| m["incident_id"].clone()).collect();
    assert_eq!(recovered, [json!(reactio::FIRST_ID), json!(reactio::FIRST_ID + 1)], "one recovery message each: {story}");
    assert_eq!(fake.calls().iter().filter(|c| c.path == "/api/v1/incidents").count(), 2, "no create sent again: {story}");
    assert!(hosts[0].spooled("reactio").is_empty(), "left spooled: {:?}", hosts[0].spooled("reactio"));
    assert_ne!(shared_record(&redis, "reactio")["open"], true, "the ledger closed: {story}");
    fake.assert_no_violations();
}

/// The same for PagerDuty: a trigger whose answer was lost on host A (PagerDuty opened the
/// alert), then its recovery on host B, then A's `--flush`: the alert must end resolved.
#[test]
fn a_pagerduty_recovery_on_another_host_after_a_trigger_whose_answer_was_lost_resolves_the_alert() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakePagerDuty::start(&[Script::Accept, Script::Accept, Script::Late(4000)]);
    let hosts = pagerduty_hosts(2);
    let story = lost_answer_then_a_recovery_on_another_host(&hosts, &redis, &fake.url);
    let accepted = actions(&fake);
    assert_eq!(accepted.last().map(String::as_str), Some("resolve"), "PagerDuty ends resolved: {accepted:?}\n{story}");
    fake.assert_no_violations();
}

/// A Reactio create whose answer was lost on host A (spooled there, noted in the ledger), then
/// `--flush` on host B, which takes the note and finds the incident the create opened, then
/// `--flush` on host A with its own copy: one incident, one create.
///
/// Found by the chaos soak (session 25), once the note of such a request was left for other
/// hosts: A's lookup passed over the incident the ledger held for the key, which was the one
/// its own create had opened (B recorded it under the same action), and created a second
/// incident with a second broadcast.
#[test]
fn a_lost_reactio_create_settled_by_another_hosts_flush_is_not_created_again_by_its_own() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeReactio::start(&[reactio::Script::Late(4000)]);
    let hosts = reactio_hosts(2);
    let now = unix_now();
    let url = ["--api-url", fake.url.as_str()];
    let (code, lost) = run_on(&hosts[0], &redis, &["--api-url", &fake.url, "--timeout", "2s"], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{lost}");
    let (code, flush_b) = flush_on(&hosts[1], &redis, &url);
    assert_eq!(code, Some(0), "{flush_b}");
    let (code, flush_a) = flush_on(&hosts[0], &redis, &url);
    assert_eq!(code, Some(0), "{flush_a}");
    let story = format!("lost create on A:\n{lost}flush on B:\n{flush_b}flush on A:\n{flush_a}");
    assert_eq!(fake.incidents().len(), 1, "one incident: {story}");
    assert_eq!(fake.calls().iter().filter(|c| c.method == "POST" && c.path == "/api/v1/incidents").count(), 1, "one create: {story}");
    assert!(hosts[0].spooled("reactio").is_empty() && hosts[1].spooled("reactio").is_empty(), "{story}");
    assert_eq!(shared_record(&redis, "reactio")["refs"]["incident_id"], json!(reactio::FIRST_ID), "{story}");
    fake.assert_no_violations();
}

/// The `event_action` of each event PagerDuty acted on, in the order it acted.
fn actions(fake: &FakePagerDuty) -> Vec<String> {
    fake.accepted().iter().map(|e| e["event_action"].as_str().unwrap_or_default().to_string()).collect()
}

/// Open `fake`'s gate and wait until PagerDuty has acted on the request held up on its way.
fn let_the_held_request_through(fake: &FakePagerDuty) {
    let before = fake.events().len();
    fake.open_gate();
    wait_until(
        "the held request to be acted on",
        Duration::from_secs(10),
        || (fake.events().len() > before).then_some(()),
        || format!("{:?}", actions(fake)),
    );
}

/// A trigger of unknown fate on host A (sent, held up on its way, no answer before its
/// deadline) that another host took over, resent and then resolved: the original reaches
/// PagerDuty after that resolve, and the incident is open there while the check is OK. Host A's
/// flush, finding its copy superseded by the resolve, sends the resolve again: the last word
/// PagerDuty has is the recovery. Before, the copy was dropped and the incident stayed open
/// (nothing else would resolve it: the recovery was delivered, and was the last event). Found
/// by the chaos soak.
#[test]
fn a_trigger_of_unknown_fate_reaching_pagerduty_after_its_recovery_is_resolved_again_by_the_flush() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakePagerDuty::start(&[Script::Held]);
    let hosts = pagerduty_hosts(2);
    let now = unix_now();
    let (code, stderr) =
        run_on(&hosts[0], &redis, &["--api-url", &fake.url, "--timeout", "1s"], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{stderr}");
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(actions(&fake), ["trigger", "resolve"], "{stderr}");
    let_the_held_request_through(&fake);
    assert_eq!(actions(&fake), ["trigger", "resolve", "trigger"]);
    let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", &fake.url]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("superseded"), "{stderr}");
    assert_eq!(actions(&fake), ["trigger", "resolve", "trigger", "resolve"], "{stderr}");
    assert!(hosts[0].spooled("pagerduty").is_empty());
    assert_eq!(shared_record(&redis, "pagerduty")["open"], false);
    fake.assert_no_violations();
}

/// The same, but host A's flush cannot reach PagerDuty as this machine is configured (an
/// untrusted certificate: its CA file left out): the resolve cannot be sent again, and the
/// trigger's entry, which carries it, is kept for the flush after the fix (exit 78), as any
/// entry refused by the configuration is. Before, it was moved to `failed/` with a warning
/// (exit 0), and the resolve was never sent again: PagerDuty stayed open while the check was
/// OK.
#[test]
fn a_trigger_of_unknown_fate_whose_recovery_cannot_be_sent_again_for_the_configuration_is_kept_until_the_fix() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakePagerDuty::start(&[Script::Held]);
    let pki = crate::fake::tls::Pki::new(&["127.0.0.1"]);
    let front = crate::fake::tls::TlsFront::start(&fake.url, &pki);
    let hosts = pagerduty_hosts(2);
    let now = unix_now();
    let (code, stderr) =
        run_on(&hosts[0], &redis, &["--api-url", &fake.url, "--timeout", "1s"], &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{stderr}");
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(0), "{stderr}");
    let_the_held_request_through(&fake);
    assert_eq!(actions(&fake), ["trigger", "resolve", "trigger"]);
    let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", &front.url]);
    assert_eq!(code, Some(78), "kept for the fix: {stderr}");
    assert!(stderr.contains("not signed by a trusted CA"), "{stderr}");
    assert_eq!(hosts[0].spooled("pagerduty").len(), 1, "{stderr}");
    assert!(hosts[0].failed("pagerduty").is_empty(), "{stderr}");
    let ca = pki.write_ca(hosts[0].dir.path(), "ca.pem");
    let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", &front.url, "--ca-file", ca.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(actions(&fake), ["trigger", "resolve", "trigger", "resolve"], "{stderr}");
    assert!(hosts[0].spooled("pagerduty").is_empty());
    fake.assert_no_violations();
}

/// The same, but a later failure is in flight by then: host B's trigger for it got no answer
/// in time (PagerDuty acted on it, answering late), so it is spooled on B and noted in the
/// ledger, for whichever host holds the incident next to send again. Host A's copy of the first
/// trigger, flushed while A handles another check's event, must not send the resolve again
/// over it: PagerDuty was resolved while the check failed, until that note was settled. Now the
/// resolve is left to the settling of the later trigger (sent again, or itself found
/// superseded by a recovery, which is then sent again). Found in review.
#[test]
fn a_trigger_of_unknown_fate_does_not_resolve_again_over_a_later_trigger_still_in_flight() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakePagerDuty::start(&[Script::Held, Script::Accept, Script::Accept, Script::Late(3000)]);
    let hosts = pagerduty_hosts(2);
    let now = unix_now();
    let (code, stderr) =
        run_on(&hosts[0], &redis, &["--api-url", &fake.url, "--timeout", "1s"], &fixture_at("sensu/create.json", now - 30));
    assert_eq!(code, Some(75), "{stderr}");
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/resolve.json", now - 20));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) =
        run_on(&hosts[1], &redis, &["--api-url", &fake.url, "--timeout", "1s"], &fixture_at("sensu/create.json", now - 10));
    assert_eq!(code, Some(75), "the later failure's answer is lost: {stderr}");
    let_the_held_request_through(&fake);
    assert_eq!(actions(&fake), ["trigger", "resolve", "trigger", "trigger"]);
    // Host A handles another check's event, and flushes its copy of the first trigger on the way.
    let mut other: Value = serde_json::from_slice(&fixture_at("sensu/create.json", now)).unwrap();
    other["check"]["name"] = "check_load".into();
    let (code, stderr) = run_on(&hosts[0], &redis, &["--api-url", &fake.url], other.to_string().as_bytes());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(hosts[0].spooled("pagerduty").is_empty(), "{stderr}");
    let of_disk: Vec<String> = fake
        .accepted()
        .iter()
        .filter(|e| e["dedup_key"] == KEY)
        .map(|e| e["event_action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(of_disk.last().map(String::as_str), Some("trigger"), "resolved while failing: {of_disk:?}\n{stderr}");
    // The later failure's note is settled by the next flush: PagerDuty still open, and so is
    // the record.
    let (code, stderr) = flush_on(&hosts[1], &redis, &["--api-url", &fake.url]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(shared_record(&redis, "pagerduty")["open"], true, "{stderr}");
    assert_eq!(actions(&fake).last().map(String::as_str), Some("trigger"), "{stderr}");
    fake.assert_no_violations();
}

/// How [`a_resolve_of_unknown_fate_reaching_pagerduty_after_a_later_failure`] feeds its
/// events: Sensu 1.x events on stdin, or Nagios notifications with the operator's
/// acknowledgement of the later failure before host A's flush.
#[derive(Clone, Copy, PartialEq)]
enum Feed {
    Sensu,
    NagiosAcknowledged,
}

/// A resolve of unknown fate on host A, taken over by host B with a later failure, reaches
/// PagerDuty after that failure: resolved there while the check is critical. Host A's flush,
/// finding its copy superseded, cannot send the failure again (it has only the resolve), so the
/// record stops suppressing repeats (`--list` says "in doubt"): the failure's next event goes
/// out, on either host, and PagerDuty opens the incident again; the one after it is an
/// identical repeat again. Before, repeats were suppressed for the whole refresh.
///
/// With [`Feed::NagiosAcknowledged`] the operator acknowledged the later failure on host B
/// before host A's flush (PagerDuty, resolved by the late recovery, ignores it): the record is
/// open by that failure, though its last action is the acknowledgement. Before, only a record
/// whose last action was a trigger was marked in doubt, and the failure's next event within
/// refresh was skipped as a repeat: PagerDuty stayed resolved while the check failed. Found in
/// review.
fn a_resolve_of_unknown_fate_reaching_pagerduty_after_a_later_failure(feed: Feed) {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakePagerDuty::start(&[Script::Accept, Script::Held]);
    let hosts = pagerduty_hosts(2);
    let now = unix_now();
    // Event `kind` (PROBLEM, RECOVERY, ACKNOWLEDGEMENT) of `now - ago` on host `host`.
    let event = |host: usize, kind: &str, ago: i64, timeout: &str| match feed {
        Feed::Sensu => {
            let fixture = if kind == "RECOVERY" { "sensu/resolve.json" } else { "sensu/create.json" };
            run_on(&hosts[host], &redis, &["--api-url", &fake.url, "--timeout", timeout], &fixture_at(fixture, now - ago))
        }
        Feed::NagiosAcknowledged => {
            let args = ["--api-url", &fake.url, "--timeout", timeout, "--state-store", &redis.url];
            let r = crate::util::nagios_at(&hosts[host], &args, kind, now - ago);
            (r.code, r.stderr)
        }
    };
    let in_doubt = || {
        let listed = hosts[1].command(&["--list", "--state-store", &redis.url]).stdin(Stdio::null()).output().unwrap();
        String::from_utf8_lossy(&listed.stdout).contains("\tin doubt")
    };
    let (code, stderr) = event(0, "PROBLEM", 40, "10s");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = event(0, "RECOVERY", 30, "1s");
    assert_eq!(code, Some(75), "{stderr}");
    let (code, stderr) = event(1, "PROBLEM", 20, "10s");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(actions(&fake), ["trigger", "resolve", "trigger"], "{stderr}");
    let_the_held_request_through(&fake);
    assert_eq!(actions(&fake).last().map(String::as_str), Some("resolve"));
    if feed == Feed::NagiosAcknowledged {
        let (code, stderr) = event(1, "ACKNOWLEDGEMENT", 15, "10s");
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(actions(&fake), ["trigger", "resolve", "trigger", "resolve", "acknowledge"], "{stderr}");
    }
    let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", &fake.url]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("superseded"), "{stderr}");
    assert!(in_doubt(), "{stderr}");
    // The failure's next event, well within refresh, on either host.
    let (code, stderr) = event(1, "PROBLEM", 10, "10s");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("already notified"), "{stderr}");
    assert_eq!(actions(&fake).last().map(String::as_str), Some("trigger"), "{stderr}");
    // And the one after it is an identical repeat again.
    let (code, stderr) = event(0, "PROBLEM", 0, "10s");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("already notified"), "{stderr}");
    assert!(!in_doubt());
    fake.assert_no_violations();
}

#[test]
fn a_resolve_of_unknown_fate_reaching_pagerduty_after_a_later_failure_lets_the_next_repeat_through() {
    a_resolve_of_unknown_fate_reaching_pagerduty_after_a_later_failure(Feed::Sensu);
}

#[test]
fn a_resolve_of_unknown_fate_reaching_pagerduty_after_an_acknowledged_failure_lets_the_next_repeat_through() {
    a_resolve_of_unknown_fate_reaching_pagerduty_after_a_later_failure(Feed::NagiosAcknowledged);
}

/// A Reactio create of unknown fate on host A (no answer before its deadline), and the
/// recovery on host B, which takes the create over from the ledger's note and queues behind it
/// while Reactio cannot list its incidents; then both hosts flush, `a_first` or B first. One
/// incident, and the recovery posted to it, whichever flushes first; nothing refused (a chaos
/// soak once saw the recovery moved to `failed/`, exit 69: not this way).
fn reactio_recovery_queued_behind_another_hosts_create(a_first: bool) {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeReactio::start(&[reactio::Script::Hang]);
    let hosts = reactio_hosts(2);
    let now = unix_now();
    let short = ["--api-url", fake.url.as_str(), "--timeout", "1s"];
    let (code, stderr) = run_on(&hosts[0], &redis, &short, &fixture_at("sensu/create.json", now - 20));
    assert_eq!(code, Some(75), "{stderr}");
    fake.fail_lists(1000);
    let (code, stderr) = run_on(&hosts[1], &redis, &short, &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(75), "{stderr}");
    assert!(fake.accepted("/api/v1/messages").is_empty());
    fake.fail_lists(0);
    let order: [usize; 2] = if a_first { [0, 1] } else { [1, 0] };
    for host in order {
        let (code, stderr) = flush_on(&hosts[host], &redis, &["--api-url", &fake.url]);
        assert_eq!(code, Some(0), "host {host}: {stderr}");
    }
    assert_eq!(fake.incidents().len(), 1, "{:?}", fake.calls());
    let messages = fake.accepted("/api/v1/messages");
    assert_eq!(messages.len(), 1, "{:?}", fake.calls());
    assert_eq!(messages[0]["incident_id"], reactio::FIRST_ID);
    // Host A's copy of the create, once B delivered it and the recovery, is superseded.
    assert_flushed_clean(&redis, &fake, &hosts);
}

/// An open Reactio incident whose recovery on host A Reactio answers slowly; meanwhile the
/// check's next failure on host A and that failure's recovery on host B, each queued behind
/// the recovery in flight (exit 75: the incident busy); then both hosts flush, `a_first` or B
/// first. The failure comes after the first recovery (a new incident, opened by A's flush when
/// it goes first), and the second recovery after the failure: whichever flushes first, every
/// incident opened gets its recovery, none twice, and the ledger is left closed.
///
/// Before, B's recovery was built from the ledger as it was while the first recovery was in
/// flight (incident 1001 open): a message to 1001. With A flushing first, B's flush posted a
/// second recovery to 1001, and 1002 stayed open in Reactio for good while the ledger said
/// resolved. (A's own entries cannot catch it: the failure is superseded only by a stop queued
/// behind it in the same spool.)
fn reactio_recovery_queued_behind_a_recovery_in_flight_and_another_hosts_failure(a_first: bool) {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeReactio::start(&[reactio::Script::Accept, reactio::Script::Late(6000)]);
    let hosts = reactio_hosts(2);
    let now = unix_now();
    let url = ["--api-url", fake.url.as_str()];
    let short = ["--api-url", fake.url.as_str(), "--timeout", "1s"];
    let (code, stderr) = run_on(&hosts[0], &redis, &url, &fixture_at("sensu/create.json", now - 60));
    assert_eq!(code, Some(0), "{stderr}");
    let recovery = spawn(&hosts[0], &redis, &["--api-url", &fake.url, "--timeout", "15s"], &fixture_at("sensu/resolve.json", now - 50));
    wait_until("the recovery in flight", Duration::from_secs(10), || (fake.calls().len() == 2).then_some(()), String::new);
    let (code, failure) = run_on(&hosts[0], &redis, &short, &fixture_at("sensu/create.json", now - 40));
    assert_eq!(code, Some(75), "A's failure queues behind the recovery in flight: {failure}");
    let (code, second) = run_on(&hosts[1], &redis, &short, &fixture_at("sensu/resolve.json", now - 30));
    assert_eq!(code, Some(75), "B's recovery queues behind the recovery in flight: {second}");
    let (code, stderr) = wait_all(vec![recovery]).remove(0);
    assert_eq!(code, Some(0), "{stderr}");
    let mut story = format!("A's failure:\n{failure}B's recovery:\n{second}");
    let order: [usize; 2] = if a_first { [0, 1] } else { [1, 0] };
    for host in order {
        let (code, stderr) = flush_on(&hosts[host], &redis, &["--api-url", &fake.url]);
        story.push_str(&format!("flush on host {host}:\n{stderr}"));
        assert_eq!(code, Some(0), "host {host}: {story}");
    }
    let resolved: Vec<Value> = fake.accepted("/api/v1/messages").iter().map(|m| m["incident_id"].clone()).collect();
    let opened: Vec<Value> = fake.incidents().iter().map(|i| i["id"].clone()).collect();
    assert_eq!(resolved, opened, "each incident opened gets its recovery, once: {story}");
    assert_eq!(opened.len(), if a_first { 2 } else { 1 }, "{story}");
    for host in &hosts {
        assert!(host.spooled("reactio").is_empty(), "{story}");
    }
    assert_eq!(shared_record(&redis, "reactio")["open"], false, "{story}");
    fake.assert_no_violations();
}

#[test]
fn a_reactio_recovery_queued_behind_a_recovery_in_flight_recovers_the_incident_another_hosts_flush_opens_first() {
    reactio_recovery_queued_behind_a_recovery_in_flight_and_another_hosts_failure(true);
}

#[test]
fn a_reactio_recovery_queued_behind_a_recovery_in_flight_flushed_first_leaves_the_other_hosts_failure_superseded() {
    reactio_recovery_queued_behind_a_recovery_in_flight_and_another_hosts_failure(false);
}

/// After the flushes of a Reactio scenario on `hosts`: every spool empty, nothing in `failed/`
/// but copies superseded (a host's copy of a create another host delivered, with its recovery),
/// the shared record not open, and no request broke the contract.
fn assert_flushed_clean(redis: &RedisServer, fake: &FakeReactio, hosts: &[Sandbox]) {
    for host in hosts {
        assert!(host.spooled("reactio").is_empty());
        let failed = host.failed("reactio");
        assert!(failed.iter().all(|f| f["failure"].as_str().is_some_and(|w| w.contains("superseded"))), "{failed:?}");
    }
    assert_ne!(shared_record(redis, "reactio")["open"], true);
    fake.assert_no_violations();
}

#[test]
fn a_reactio_recovery_queued_behind_another_hosts_create_is_posted_when_that_host_flushes_first() {
    reactio_recovery_queued_behind_another_hosts_create(true);
}

#[test]
fn a_reactio_recovery_queued_behind_another_hosts_create_is_posted_when_its_own_host_flushes_first() {
    reactio_recovery_queued_behind_another_hosts_create(false);
}

/// A Reactio recovery on host B that meets host A still trying to create the incident
/// (Reactio unreachable from A, its connects hanging) queues behind it; A's create ends up in
/// A's spool. Whichever host flushes first, the incident does not stay open: before, B's
/// recovery was a message waiting for an id only A's spool could bring, refused at B's flush
/// (exit 69), and A's flush then opened the incident after its recovery. Found by the chaos
/// soak.
fn reactio_recovery_queued_behind_another_hosts_busy_create(a_first: bool) {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakeReactio::start(&[]);
    let unreachable = crate::util::Unconnectable::start();
    let hosts = reactio_hosts(2);
    let now = unix_now();
    let a = spawn(&hosts[0], &redis, &["--api-url", &unreachable.url, "--timeout", "4s"], &fixture_at("sensu/create.json", now - 20));
    let hold = format!("pagerpipe:reactio:hold:{KEY}");
    wait_until("A's hold", Duration::from_secs(10), || redis.cli(&["GET", &hold]).ok().filter(|t| !t.trim().is_empty()), String::new);
    let (code, stderr) =
        run_on(&hosts[1], &redis, &["--api-url", &fake.url, "--timeout", "1s"], &fixture_at("sensu/resolve.json", now - 10));
    assert_eq!(code, Some(75), "B queues behind A: {stderr}");
    let (code, stderr) = wait_all(vec![a]).remove(0);
    assert_eq!(code, Some(75), "A's create is spooled: {stderr}");
    let order: [usize; 2] = if a_first { [0, 1] } else { [1, 0] };
    for host in order {
        let (code, stderr) = flush_on(&hosts[host], &redis, &["--api-url", &fake.url]);
        assert_eq!(code, Some(0), "host {host}: {stderr}");
    }
    let resolved: Vec<Value> = fake.accepted("/api/v1/messages").iter().map(|m| m["incident_id"].clone()).collect();
    for incident in fake.incidents() {
        assert!(resolved.contains(&incident["id"]), "{} left open: {:?}", incident["name"], fake.calls());
    }
    assert_eq!(fake.incidents().len(), usize::from(a_first), "{:?}", fake.calls());
    assert_flushed_clean(&redis, &fake, &hosts);
}

#[test]
fn a_reactio_recovery_queued_behind_another_hosts_busy_create_resolves_the_incident_that_host_flushes_first() {
    reactio_recovery_queued_behind_another_hosts_busy_create(true);
}

#[test]
fn a_reactio_recovery_queued_behind_another_hosts_busy_create_flushed_first_leaves_that_create_superseded() {
    reactio_recovery_queued_behind_another_hosts_busy_create(false);
}

/// An open incident's recovery reaches PagerDuty, which resolves it, and its handler on host A
/// is killed before the answer: the recovery is noted in flight in the shared ledger. Host A's
/// `--flush`, which cannot reach PagerDuty then, moves that request to A's spool (its fate
/// unknown) and keeps it there. The check then fails again, handled on host B: B cannot see
/// A's spool, so the ledger must still tell it that the recovery may have gone out. Before,
/// the flush removed the note once the request was in its spool: B found the record open with
/// nothing noted and skipped the failure as "already notified" while PagerDuty had the incident
/// resolved (a lost page). Found in review.
#[test]
fn a_failure_on_another_host_after_a_flush_spooled_a_killed_resolve_pages() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakePagerDuty::start(&[Script::Accept, Script::Gated]);
    let hosts = pagerduty_hosts(2);
    let now = unix_now();
    let (code, stderr) = run_on(&hosts[0], &redis, &["--api-url", &fake.url], &fixture_at("sensu/create.json", now - 60));
    assert_eq!(code, Some(0), "{stderr}");
    recovery_killed_once_pagerduty_has_it(&hosts[0], &redis, &fake, &fixture_at("sensu/resolve.json", now - 50), 2);
    let (code, stderr) = flush_on(&hosts[0], &redis, &["--api-url", crate::util::REFUSED_URL, "--timeout", "1s"]);
    assert_eq!(code, Some(75), "{stderr}");
    assert!(stderr.contains("was in flight when its handler ended"), "host A's flush spooled the noted recovery: {stderr}");
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/create.json", now - 40));
    assert_eq!(code, Some(0), "{stderr}");
    fake.open_gate();
    let seen = actions(&fake);
    assert_eq!(seen.last().map(String::as_str), Some("trigger"), "PagerDuty's last word: {seen:?}\n{stderr}");
    assert_eq!(shared_record(&redis, "pagerduty")["open"], true, "{stderr}");
    assert!(shared_record(&redis, "pagerduty").get("inflight").is_none(), "nothing left noted in flight");
    fake.assert_no_violations();
}

/// The same without an outage: host A's `--flush` moves the killed recovery's note to its
/// spool at its start, then waits for another check's entry queued ahead of it, whose incident
/// host B is delivering (PagerDuty holds B's answer). Meanwhile the check fails again, handled
/// on host B: the ledger must still tell B that the recovery may have gone out. Before, the
/// flush removed the note as it took the request, and B skipped the failure as "already
/// notified"; the flush then found the recovery superseded by it: PagerDuty kept the incident
/// resolved while the check failed. Found in review.
#[test]
fn a_failure_on_another_host_while_a_flush_that_took_a_killed_resolve_waits_pages() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = FakePagerDuty::start(&[]);
    let hosts = pagerduty_hosts(2);
    let now = unix_now();
    let other = |executed: i64| {
        let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", executed)).unwrap();
        ev["check"]["name"] = "check_load".into();
        ev.to_string().into_bytes()
    };
    let (code, stderr) = run_on(&hosts[0], &redis, &["--api-url", &fake.url], &fixture_at("sensu/create.json", now - 60));
    assert_eq!(code, Some(0), "{stderr}");
    // Another check's failure, spooled on host A while PagerDuty could not be reached from it;
    // the recovery below is noted in a later second, so that the flush comes to it after this.
    let (code, stderr) = run_on(&hosts[0], &redis, &["--api-url", crate::util::REFUSED_URL, "--timeout", "1s"], &other(now - 55));
    assert_eq!(code, Some(75), "{stderr}");
    let spooled_at = unix_now();
    wait_until("the next second", Duration::from_secs(3), || (unix_now() > spooled_at).then_some(()), String::new);
    // The recovery, handled on host B (whose spool is empty), is killed once PagerDuty has it.
    fake.then(&[Script::Gated]);
    recovery_killed_once_pagerduty_has_it(&hosts[1], &redis, &fake, &fixture_at("sensu/resolve.json", now - 50), 2);
    // Host B delivers the other check's next failure; PagerDuty holds its answer.
    fake.then(&[Script::Gated]);
    let other_on_b = spawn(&hosts[1], &redis, &["--api-url", &fake.url, "--timeout", "30s"], &other(now - 45));
    wait_until("host B's request to reach PagerDuty", Duration::from_secs(10), || (fake.events().len() == 3).then_some(()), String::new);
    let mut flush = hosts[0].command(&["--flush", "--state-store", &redis.url, "--api-url", &fake.url, "--timeout", "30s"]);
    let flush = flush.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn the flush");
    wait_until(
        "host A's flush to spool the noted recovery",
        Duration::from_secs(10),
        || (hosts[0].spooled("pagerduty").len() == 2).then_some(()),
        String::new,
    );
    let (code, stderr) = run_on(&hosts[1], &redis, &["--api-url", &fake.url], &fixture_at("sensu/create.json", now - 40));
    assert_eq!(code, Some(0), "{stderr}");
    fake.open_gate();
    let flushed = flush.wait_with_output().expect("wait for the flush");
    let flushed = String::from_utf8_lossy(&flushed.stderr).into_owned();
    assert_eq!(wait_all(vec![other_on_b])[0].0, Some(0));
    let of_disk: Vec<String> = fake
        .accepted()
        .iter()
        .filter(|e| e["dedup_key"] == KEY)
        .map(|e| e["event_action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(of_disk.last().map(String::as_str), Some("trigger"), "PagerDuty's last word: {of_disk:?}\n{stderr}\nflush:\n{flushed}");
    assert_eq!(shared_record(&redis, "pagerduty")["open"], true, "{stderr}");
    assert!(shared_record(&redis, "pagerduty").get("inflight").is_none(), "nothing left noted in flight");
    fake.assert_no_violations();
}
