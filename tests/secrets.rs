//! Secrets never appear unmasked: every handler is run through every output path — delivery
//! log lines, `-v` debug lines, `--log-format json`, `--dry-run` on stdout, refusals (401,
//! 400), server errors until the deadline (spooled), bad configuration, usage errors, the
//! Zabbix `SENDTO` routing key — with a recognizable routing key / auth token / API key, and
//! stdout, stderr and the *names* of everything under the state and spool directories are
//! searched for it. (A spool entry's content holds the request to send, credential included:
//! that is its job; its name must not.)

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

use crate::fake::pagerduty::FakePagerDuty;
use crate::fake::reactio::{self, FakeReactio};
use crate::fake::slack::{self as fake_slack, FakeSlack};
use crate::fake::twilio::{self, FakeTwilio};
use crate::fake::{Received, Reply, Server};
use crate::util::{REFUSED_URL, Run, Sandbox, fixture_at, pagerduty_sandbox_with, read_fixture, run_command};

/// A 32-character routing key that is easy to spot.
const PD_KEY: &str = "S3CR3TR0UT1NGKEY5ecret0000000042";

/// A service that refuses with `status` and quotes `secrets` back in every field it has (as a
/// careless or hostile server might), in the error shapes of PagerDuty, Reactio and Twilio.
fn echoing(status: u16, secrets: &[&str]) -> Server {
    let s = secrets.join(" ");
    Server::start(move |_r: &Received| {
        Reply::Json(
            status,
            json!({
                "status": format!("invalid event {s}"),
                "message": format!("Event object is invalid: key {s}"),
                "errors": [format!("routing_key {s} is not valid")],
                "type": "authentication_error",
                "error": {"message": format!("bad key {s}")},
                "code": 20003,
                "more_info": format!("https://www.twilio.com/docs/errors/20003?key={s}"),
            }),
        )
    })
}

/// Every file and directory name under `dir`, recursively.
fn names_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(entry.file_name().to_string_lossy().into_owned());
        if entry.path().is_dir() {
            out.extend(names_under(&entry.path()));
        }
    }
    out
}

/// What must never appear: each secret whole, and for Basic auth its base64 form.
struct Needles(Vec<String>);

impl Needles {
    fn assert_absent(&self, what: &str, sb: &Sandbox, r: &Run) {
        let names = names_under(sb.dir.path()).join("\n");
        for n in &self.0 {
            assert!(!r.stdout.contains(n.as_str()), "{what}: secret {n} on stdout:\n{}", r.stdout);
            assert!(!r.stderr.contains(n.as_str()), "{what}: secret {n} on stderr:\n{}", r.stderr);
            assert!(!names.contains(n.as_str()), "{what}: secret {n} in a file name:\n{names}");
        }
        assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
    }
}

/// Run `args` on `event` with extra environment.
fn run_env(sb: &Sandbox, args: &[&str], env: &[(&str, &str)], event: &[u8]) -> Run {
    let mut cmd = sb.command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(cmd, event)
}

/// The output paths every handler goes through, given a working fake's URL.
fn paths(sb: &Sandbox, good_url: &str, needles: &Needles, env: &[(&str, &str)]) {
    let create = read_fixture("sensu/create.json");
    let resolve = read_fixture("sensu/resolve.json");
    let check = |what: &str, args: &[&str], event: &[u8], want: Option<i32>| {
        let r = run_env(sb, args, env, event);
        if let Some(code) = want {
            assert_eq!(r.code, Some(code), "{what}: {r:?}");
        }
        needles.assert_absent(what, sb, &r);
        r
    };
    let dry = check("dry run, -v", &["--api-url", good_url, "--dry-run", "-v"], &create, Some(0));
    assert!(!dry.stdout.is_empty(), "dry run prints the request");
    check("dry run, json log", &["--api-url", good_url, "--dry-run", "--log-format", "json"], &create, Some(0));
    check("delivery, -v", &["--api-url", good_url, "-v"], &create, Some(0));
    check("resolve, -v, json log", &["--api-url", good_url, "-v", "--log-format", "json"], &resolve, Some(0));
    let secrets: Vec<&str> = needles.0.iter().map(String::as_str).collect();
    // From here on the failures come from later check runs than the resolve (the ledger
    // supersedes events older than the last one applied).
    let create = fixture_at("sensu/create.json", 1_900_000_000);
    for status in [401, 400, 403, 404] {
        let server = echoing(status, &secrets);
        let what = format!("HTTP {status} quoting the secret, -v");
        // PagerDuty's Events API answers 400 alone of these: the others are a wrong api_url or
        // something in between, kept for the flush after the fix (78).
        // Kept, a page is not sent again by the next run (a repeat of a spooled trigger): each
        // run has an incident of its own.
        let code = if sb.bin.ends_with("handler-pagerduty") && status != 400 { 78 } else { 69 };
        let create = |mode: &str| {
            let mut ev: serde_json::Value = serde_json::from_slice(&create).expect("fixture");
            ev["client"]["name"] = json!(format!("web-{status}-{mode}"));
            ev.to_string().into_bytes()
        };
        check(&what, &["--api-url", &server.url, "-v"], &create("text"), Some(code));
        check(&format!("{what}, json log"), &["--api-url", &server.url, "-v", "--log-format", "json"], &create("json"), Some(code));
    }
    check("usage error", &["--api-url", good_url, "--timeout", "soon"], &create, Some(2));
    check("bad event", &["--api-url", good_url, "-v"], b"{\"check\":", Some(65));
    // Last, on two different incidents: a spooled page is queued, and each later run first
    // retries the spool.
    let server = echoing(500, &secrets);
    check("HTTP 500 until the deadline, -v", &["--api-url", &server.url, "-v", "--timeout", "1s"], &create, Some(75));
    let down = REFUSED_URL;
    let failing = read_fixture("sensu-go/failing.json");
    check("connection refused, -v, json log", &["--api-url", down, "-v", "--log-format", "json", "--timeout", "1s"], &failing, Some(75));
    check("spool retried, -v", &["--api-url", down, "-v", "--timeout", "1s"], &fixture_at("sensu/resolve.json", 1_900_000_100), None);
}

#[test]
fn pagerduty_routing_key_never_appears() {
    let needles = Needles(vec![PD_KEY.to_string()]);
    let fake = FakePagerDuty::start(&[]);
    // The key in a settings file, in the environment, and as a flag.
    paths(&pagerduty_sandbox_with(json!({"routing_key": PD_KEY})), &fake.url, &needles, &[]);
    paths(&pagerduty_sandbox_with(json!({})), &fake.url, &needles, &[("PAGERDUTY_ROUTING_KEY", PD_KEY)]);
    let sb = pagerduty_sandbox_with(json!({}));
    let r = run_env(&sb, &["--api-url", &fake.url, "--routing-key", PD_KEY, "-v"], &[], &read_fixture("sensu-go/failing.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    needles.assert_absent("--routing-key flag", &sb, &r);
    fake.assert_no_violations();

    // Bad configuration next to a good key, and a key of the wrong length (the key itself is bad).
    let sb = pagerduty_sandbox_with(json!({"routing_key": PD_KEY, "summary_template": "{entitty}"}));
    let r = run_env(&sb, &["-v"], &[], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    needles.assert_absent("bad template", &sb, &r);
    let short = &PD_KEY[..31];
    let sb = pagerduty_sandbox_with(json!({"routing_key": short}));
    for args in [&["-v"][..], &["-v", "--dry-run"]] {
        let r = run_env(&sb, args, &[], &read_fixture("sensu/create.json"));
        Needles(vec![short.to_string()]).assert_absent("31-character key", &sb, &r);
    }
    let sb = pagerduty_sandbox_with(json!({"routing_key": 12345678901234567890u64}));
    let r = run_env(&sb, &[], &[], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    Needles(vec!["12345678901234567890".into()]).assert_absent("numeric key", &sb, &r);

    // Zabbix: the key arrives as {ALERT.SENDTO}.
    let sb = pagerduty_sandbox_with(json!({}));
    let message = "name:Disk full\nid:13502\nstatus:PROBLEM\nhostname:db-01\nseverity:High";
    for extra in [&["-v"][..], &["-v", "--dry-run"], &["-v", "--log-format", "json"]] {
        let mut args = vec!["--api-url", fake.url.as_str(), "--from", "zabbix"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[PD_KEY, "trigger", message]);
        let r = run_env(&sb, &args, &[], b"");
        assert_eq!(r.code, Some(0), "{r:?}");
        needles.assert_absent("Zabbix SENDTO", &sb, &r);
    }
    fake.assert_no_violations();
}

#[test]
fn a_routing_key_written_as_the_pager_team_is_not_quoted() {
    // A key put in `pager_team` by mistake (by a check, or in the operator's own settings) was
    // quoted three times in the line saying there is no such team.
    let needles = Needles(vec![PD_KEY.to_string()]);
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox_with(json!({"routing_key": crate::util::ROUTING_KEY}));
    let mut event: Value = serde_json::from_slice(&fixture_at("sensu/create.json", crate::util::unix_now())).expect("JSON");
    event["check"]["pager_team"] = json!(PD_KEY);
    let r = run_env(&sb, &["--api-url", &fake.url], &[], &serde_json::to_vec(&event).expect("JSON"));
    assert_eq!(r.code, Some(0), "the page goes out with the operator's key: {r:?}");
    assert!(r.stderr.contains("event override `pagerduty.pager_team` ignored"), "{}", r.stderr);
    needles.assert_absent("pager_team from a check", &sb, &r);
    let sb = pagerduty_sandbox_with(json!({"routing_key": crate::util::ROUTING_KEY, "pager_team": PD_KEY}));
    let r = run_env(&sb, &["--api-url", &fake.url], &[], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("pager_team` is a value of 32 characters"), "{}", r.stderr);
    needles.assert_absent("pager_team in the settings", &sb, &r);
    fake.assert_no_violations();
}

#[test]
fn reactio_api_key_never_appears() {
    let needles = Needles(vec![reactio::API_KEY.to_string()]);
    let fake = FakeReactio::start(&[]);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
    sb.config("reactio.json", &json!({"reactio": {"api_key": reactio::API_KEY, "organization": "example"}}));
    paths(&sb, &fake.url, &needles, &[]);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
    sb.config("reactio.json", &json!({"reactio": {"organization": "example"}}));
    paths(&sb, &fake.url, &needles, &[("REACTIO_API_KEY", reactio::API_KEY)]);
    fake.assert_no_violations();
}

#[test]
fn slack_bot_token_never_appears() {
    let needles = Needles(vec![fake_slack::BOT_TOKEN.to_string()]);
    let fake = FakeSlack::start();
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-slack"));
    sb.config("slack.json", &json!({"slack": {"token": fake_slack::BOT_TOKEN, "responders": ["U01ALICE01"]}}));
    paths(&sb, &fake.api_url(), &needles, &[]);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-slack"));
    sb.config("slack.json", &json!({"slack": {"channel": fake_slack::ALERTS}}));
    paths(&sb, &fake.api_url(), &needles, &[("SLACK_BOT_TOKEN", fake_slack::BOT_TOKEN)]);
    // --help with the token in the environment, and --test.
    let r = run_env(&sb, &["--help"], &[("SLACK_BOT_TOKEN", fake_slack::BOT_TOKEN)], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    needles.assert_absent("--help", &sb, &r);
    let r = run_env(&sb, &["--api-url", &fake.api_url(), "--test", "-v"], &[("SLACK_BOT_TOKEN", fake_slack::BOT_TOKEN)], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    needles.assert_absent("--test", &sb, &r);
    fake.assert_no_violations();
}

#[test]
fn twilio_auth_token_and_api_key_secret_never_appear() {
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let fake = FakeTwilio::start(&[]);
    let base = json!({"account_sid": twilio::ACCOUNT_SID, "from": "+14155550199", "recipients": ["+14155550101"],
                      "channels": ["voice", "sms"]});
    let with = |extra: Value| {
        let mut section = base.clone();
        if let (Some(s), Value::Object(e)) = (section.as_object_mut(), extra) {
            s.extend(e);
        }
        let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-twilio"));
        sb.config("twilio.json", &json!({ "twilio": section }));
        sb
    };
    let token = Needles(vec![twilio::AUTH_TOKEN.to_string(), b64(format!("{}:{}", twilio::ACCOUNT_SID, twilio::AUTH_TOKEN))]);
    paths(&with(json!({"auth_token": twilio::AUTH_TOKEN})), &fake.url, &token, &[]);
    paths(&with(json!({})), &fake.url, &token, &[("TWILIO_AUTH_TOKEN", twilio::AUTH_TOKEN)]);
    let key = Needles(vec![twilio::API_KEY_SECRET.to_string(), b64(format!("{}:{}", twilio::API_KEY_SID, twilio::API_KEY_SECRET))]);
    paths(&with(json!({"api_key_sid": twilio::API_KEY_SID, "api_key_secret": twilio::API_KEY_SECRET})), &fake.url, &key, &[]);
    fake.assert_no_violations();
}

#[test]
fn an_event_cannot_send_the_key_elsewhere() {
    // A monitored host controls its Sensu Go entity annotations (and a check its attributes):
    // an override of api_url / ca_file / state_dir / spool_dir is ignored, so the page goes to
    // the configured service and nothing reaches the host's server or its paths.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&hits);
    let evil = Server::start(move |_r: &Received| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Reply::Json(202, json!({"status": "success", "message": "Event processed", "dedup_key": "x"}))
    });
    let fake = FakePagerDuty::start(&[]);
    for fixture in ["sensu-go/failing.json", "sensu/create.json"] {
        let sb = pagerduty_sandbox_with(json!({"routing_key": PD_KEY}));
        let elsewhere = sb.dir.path().join("elsewhere");
        let local_only = json!({
            "api_url": evil.url,
            "state_dir": elsewhere.join("state"),
            "spool_dir": elsewhere.join("spool"),
            "ca_file": elsewhere.join("evil.pem"),
        });
        let mut ev: Value = serde_json::from_slice(&read_fixture(fixture)).expect("fixture");
        if fixture.starts_with("sensu-go") {
            let annotations: serde_json::Map<String, Value> =
                local_only.as_object().expect("object").iter().map(|(k, v)| (format!("pagerpipe/pagerduty.{k}"), v.clone())).collect();
            ev["entity"]["metadata"]["annotations"] = Value::Object(annotations);
        } else {
            ev["check"]["pagerduty"] = local_only;
        }
        let r = run_env(&sb, &["--api-url", &fake.url], &[], ev.to_string().as_bytes());
        assert_eq!(r.code, Some(0), "{fixture}: {r:?}");
        assert!(!elsewhere.exists(), "{fixture}: nothing written where the event said");
        assert!(r.stderr.contains("event override `pagerduty.api_url` ignored"), "{fixture}: said so: {}", r.stderr);
    }
    assert_eq!(fake.events().len(), 2, "delivered to the configured service");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing sent where the event said");
    fake.assert_no_violations();
}

#[cfg(unix)]
#[test]
fn a_settings_file_with_a_secret_readable_by_others_is_warned_about_by_name() {
    use std::os::unix::fs::PermissionsExt;
    let sb = pagerduty_sandbox_with(json!({"routing_key": PD_KEY}));
    let file = sb.conf_dir().join("pagerduty.json");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = sb.run(&["--dry-run"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    let warning = r.stderr.lines().find(|l| l.contains("holds a secret")).unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(warning.contains(file.to_str().unwrap()) && warning.contains("chmod go-r"), "{warning}");
    assert!(!r.stderr.contains(PD_KEY));

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = sb.run(&["--dry-run"], &read_fixture("sensu/create.json"));
    assert!(!r.stderr.contains("holds a secret"), "{}", r.stderr);
}

/// Observed: a world-readable settings file whose `state_store` URL carried the Redis password
/// got no warning; only settings named like secrets (`routing_key` …) were looked at.
#[cfg(unix)]
#[test]
fn a_settings_file_with_a_state_store_password_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let pw = "Red1sPassw0rdInAFile";
    let sb = pagerduty_sandbox_with(json!({"routing_key": PD_KEY}));
    let file = sb.conf_dir().join("state.json");
    std::fs::write(&file, json!({"pagerduty": {"state_store": format!("redis://:{pw}@127.0.0.1:1/0")}}).to_string()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = sb.run(&["--dry-run"], &read_fixture("sensu/create.json"));
    let warning = r.stderr.lines().find(|l| l.contains("holds a secret")).unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(warning.contains(file.to_str().unwrap()) && warning.contains("state_store") && warning.contains("0644"), "{warning}");
    assert!(!r.stderr.contains(pw), "{}", r.stderr);
    // A URL without a password is no secret.
    std::fs::write(&file, json!({"pagerduty": {"state_store": "redis://127.0.0.1:1/0"}}).to_string()).unwrap();
    let r = sb.run(&["--dry-run"], &read_fixture("sensu/create.json"));
    assert!(!r.stderr.contains("holds a secret"), "{}", r.stderr);
}

/// Observed: `--config FIFO` and `--routing-key-file FIFO` blocked the handler for good (far past
/// `--timeout`, the event lost), and `--config /dev/zero` grew it to gigabytes. Each is refused
/// at once, one line naming the path and what it is, exit 78, and the event is printed (its
/// credentials masked) so that the monitoring system's log keeps it. A FIFO inside a `--config`
/// directory is skipped, as before.
#[cfg(unix)]
#[test]
fn settings_and_secret_files_that_are_not_regular_files_are_refused_at_once() {
    let sb = pagerduty_sandbox_with(json!({"routing_key": PD_KEY}));
    let fifo = sb.dir.path().join("fifo.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let fifo = fifo.to_str().unwrap();
    let big = sb.dir.path().join("big.json");
    std::fs::write(&big, format!("{{\"pagerduty\": {{\"x\": \"{}\"}}}}", "a".repeat(2 << 20))).unwrap();
    let big = big.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--config", fifo], "config: {} is a FIFO, not a regular file"),
        (&["--config", "/dev/zero"], "config: {} is a device, not a regular file"),
        (&["--config", big], "config: {} is larger than 1048576 bytes"),
        (&["--routing-key-file", fifo], "settings `pagerduty.routing_key_file`: {} is a FIFO, not a regular file"),
        (&["--routing-key-file", "/dev/zero"], "settings `pagerduty.routing_key_file`: {} is a device, not a regular file"),
        (&["--routing-key-file", sb.dir.path().to_str().unwrap()], "settings `pagerduty.routing_key_file`: {} is a directory"),
    ];
    for (args, why) in cases {
        let mut all = vec!["--timeout", "3s"];
        all.extend_from_slice(args);
        let r = crate::util::run_within(sb.command(&all), &read_fixture("sensu/create.json"), std::time::Duration::from_secs(20));
        assert_eq!(r.code, Some(78), "{args:?}: {r:?}");
        let why = why.replace("{}", args[1]);
        assert!(r.stderr.lines().any(|l| l.starts_with("pagerduty: error: ") && l.contains(&why)), "{why:?}: {}", r.stderr);
        assert!(r.stderr.contains("undelivered event, not spooled: {"), "{args:?}: the event is kept in the log: {}", r.stderr);
        assert!(!r.stderr.contains(PD_KEY), "{}", r.stderr);
    }
    // In the --config directory, a FIFO named like a settings file is passed over.
    let planted = sb.conf_dir().join("zz.json");
    assert!(std::process::Command::new("mkfifo").arg(&planted).status().unwrap().success());
    let r = crate::util::run_within(sb.command(&["--dry-run"]), &read_fixture("sensu/create.json"), std::time::Duration::from_secs(20));
    assert_eq!(r.code, Some(0), "{r:?}");
}

/// Observed: a settings file saved with a UTF-8 byte order mark (Notepad) was refused as
/// invalid JSON (exit 78). The mark is skipped.
#[test]
fn a_settings_file_starting_with_a_byte_order_mark_is_read() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-pagerduty"));
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(json!({"pagerduty": {"routing_key": PD_KEY}}).to_string().as_bytes());
    std::fs::write(sb.conf_dir().join("pagerduty.json"), bytes).unwrap();
    let r = sb.run(&["--dry-run"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("would have triggered web-01/check_disk"), "{}", r.stderr);
}

/// Observed: with no routing key the handler exited 78 and the event was gone: it is printed
/// to stderr (the monitoring system's log), as an event that cannot be spooled is.
#[test]
fn an_event_without_a_routing_key_is_printed_not_lost() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-pagerduty"));
    let r = sb.run(&["--api-url", REFUSED_URL], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("no PagerDuty routing key"), "{}", r.stderr);
    let printed = r.stderr.lines().find(|l| l.contains("undelivered event, not spooled: ")).unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(printed.contains("check_disk") && printed.contains("web-01"), "{printed}");
    // Not for --dry-run, which delivers nothing anyway.
    let r = sb.run(&["--dry-run"], &read_fixture("sensu/create.json"));
    assert!(!r.stderr.contains("undelivered event"), "{}", r.stderr);
}

/// Observed: when the settings could not be used (exit 78: an invalid `timeout` beside the
/// routing key, a `--config` FIFO beside the file holding it), the event printed to stderr
/// showed the operator's routing key where the event quoted it (a check whose output shows a
/// settings file), though a delivery's printed event masks it: the provider had not registered
/// its secrets yet. The secrets the settings hold, as far as they can be read (a settings
/// file, a `routing_key_file`, a flag), are masked in it too.
#[cfg(unix)]
#[test]
fn the_event_printed_for_unusable_settings_masks_the_operators_secrets() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-pagerduty"));
    let mut event: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    event["check"]["output"] = json!(format!("config drift: routing_key={PD_KEY}"));
    let event = event.to_string();
    let fifo = sb.dir.path().join("fifo.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let key_file = sb.dir.path().join("routing_key");
    std::fs::write(&key_file, format!("{PD_KEY}\n")).unwrap();
    let in_file = sb.dir.path().join("in-file.json");
    std::fs::write(&in_file, json!({"pagerduty": {"routing_key": PD_KEY, "timeout": "forever"}}).to_string()).unwrap();
    let by_file = sb.dir.path().join("by-file.json");
    std::fs::write(&by_file, json!({"pagerduty": {"routing_key_file": key_file}}).to_string()).unwrap();
    let bad_timeout = sb.dir.path().join("bad-timeout.json");
    std::fs::write(&bad_timeout, json!({"pagerduty": {"timeout": "forever"}}).to_string()).unwrap();
    let (in_file, by_file, fifo) = (in_file.to_str().unwrap(), by_file.to_str().unwrap(), fifo.to_str().unwrap());
    let cases: [&[&str]; 4] = [
        &["--config", in_file],
        &["--config", by_file, "--config", fifo],
        &["--routing-key", PD_KEY, "--config", fifo],
        &["--routing-key-file", key_file.to_str().unwrap(), "--config", bad_timeout.to_str().unwrap()],
    ];
    for args in cases {
        let r = crate::util::run_within(sb.command(args), event.as_bytes(), std::time::Duration::from_secs(20));
        assert_eq!(r.code, Some(78), "{args:?}: {r:?}");
        let printed = r.stderr.lines().find(|l| l.contains("undelivered event, not spooled: ")).unwrap_or_else(|| panic!("{}", r.stderr));
        assert!(printed.contains("config drift: routing_key=") && printed.contains("check_disk"), "{printed}");
        assert!(!r.stderr.contains(PD_KEY), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn a_state_store_password_with_a_raw_slash_question_mark_or_hash_is_not_shown() {
    // Observed: `redis://:pa/ss…@host` (a generated password not percent-encoded) was printed
    // whole in "state store URL redis://:pa/ss…@…: no host" on every page, `--list` and
    // `--forget`: the password was only looked for up to the first `/`, `?` or `#`.
    let fake = FakePagerDuty::start(&[]);
    for sep in ['/', '?', '#'] {
        let pw = format!("Red1sPa{sep}ssw0rdN0tEnc0ded");
        let url = format!("redis://:{pw}@127.0.0.1:1/0");
        let sb = crate::util::pagerduty_sandbox();
        for args in [&["--list"][..], &["--forget", "web-01/check_disk"], &["--list", "--log-format", "json"]] {
            let mut all = vec!["--state-store", url.as_str()];
            all.extend_from_slice(args);
            let r = sb.run(&all, b"");
            assert_eq!(r.code, Some(78), "{args:?} {r:?}");
            assert!(r.stderr.contains("state store URL"), "{}", r.stderr);
            assert!(!r.stderr.contains(&pw) && !r.stdout.contains(&pw), "{args:?}: {r:?}");
        }
        let r = sb.run(&["--state-store", &url, "--api-url", &fake.url], &read_fixture("sensu/create.json"));
        assert_eq!(r.code, Some(0), "{r:?}");
        assert!(r.stderr.contains("state store URL"), "{}", r.stderr);
        assert!(!r.stderr.contains(&pw) && !r.stdout.contains(&pw), "{r:?}");
    }
    assert_eq!(fake.accepted().len(), 3, "every page still went out");
}

/// An `api_url` with user information (`https://relay:password@gateway.example`: an outbound
/// gateway that wants Basic authentication, which the HTTP client sends from it) is a
/// credential, but `--dry-run` printed "would POST https://relay:password@…" and every flush
/// "spooled trigger … POST https://relay:password@…". Its password is masked like the others.
#[test]
fn an_api_url_password_is_not_shown() {
    let pw = "Gat3wayPassw0rdForTheRelay";
    let sb = crate::util::pagerduty_sandbox();
    let down = format!("http://relay:{pw}@{}", REFUSED_URL.trim_start_matches("http://"));
    let r = sb.run(&["--api-url", &down, "--dry-run"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("would POST http://relay:"), "{}", r.stderr);
    assert!(!r.stderr.contains(pw) && !r.stdout.contains(pw), "dry run: {r:?}");
    let fake = FakePagerDuty::start(&[]);
    let up = format!("http://relay:{pw}@{}", fake.url.trim_start_matches("http://"));
    for log_format in ["text", "json"] {
        let check = format!("backup-{log_format}");
        let args = ["--api-url", &down, "--timeout", "1s", "--from", "cli", "--check", &check, "--status", "critical"];
        let r = sb.run(&args, b"");
        assert_eq!(r.code, Some(75), "{r:?}");
        assert!(!r.stderr.contains(pw), "spooled: {r:?}");
        let r = sb.run(&["--api-url", &up, "--flush", "--log-format", log_format, "-v"], b"");
        assert!(r.stderr.contains("POST http://relay:"), "{}", r.stderr);
        assert!(!r.stderr.contains(pw) && !r.stdout.contains(pw), "flush: {r:?}");
    }
    assert_eq!(fake.accepted().len(), 2, "the spooled pages went out through the relay");
}

/// The same with a password shorter than the 4 bytes the logger masks alone (replacing every
/// "ab" would garble the line): `--dry-run` printed "would POST http://relay:ab1@…". It is
/// masked with the user information around it.
#[test]
fn a_short_api_url_password_is_not_shown() {
    let sb = crate::util::pagerduty_sandbox();
    let down = format!("http://relay:ab1@{}", REFUSED_URL.trim_start_matches("http://"));
    let r = sb.run(&["--api-url", &down, "--dry-run"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("would POST http:"), "{}", r.stderr);
    assert!(!r.stderr.contains(":ab1@") && !r.stdout.contains(":ab1@"), "dry run: {r:?}");
}

/// Other Redis clients take the password elsewhere: redis-rs's and redis-py's Unix socket URLs
/// in the query (`redis+unix:///run/redis.sock?pass=…`, `unix://…?password=…`), a URL with
/// the password as a query parameter, or no scheme at all (`:password@host:6379`, as
/// `redis-cli -u` users shorten it). Such a URL is refused, and the refusal quoted it whole on
/// every page, `--list` and `--explain` (and into syslog with `--syslog`): only the password of
/// a `scheme://user:password@` URL was masked.
#[test]
fn a_state_store_password_in_a_query_or_without_a_scheme_is_not_shown() {
    let fake = FakePagerDuty::start(&[]);
    let pw = "Red1sPassw0rdInTheQuery";
    let urls = [
        format!("redis+unix:///run/redis/redis.sock?db=0&pass={pw}"),
        format!("unix:///run/redis/redis.sock?password={pw}"),
        format!("redis://127.0.0.1:1/0?password={pw}"),
        format!(":{pw}@127.0.0.1:1"),
        format!("default:{pw}@127.0.0.1:1/0"),
    ];
    for url in &urls {
        let sb = crate::util::pagerduty_sandbox();
        for args in [&["--list"][..], &["--list", "--log-format", "json"]] {
            let mut all = vec!["--state-store", url.as_str()];
            all.extend_from_slice(args);
            let r = sb.run(&all, b"");
            assert_eq!(r.code, Some(78), "{url} {args:?} {r:?}");
            assert!(r.stderr.contains("state store URL"), "{}", r.stderr);
            assert!(!r.stderr.contains(pw) && !r.stdout.contains(pw), "{url} {args:?}: {r:?}");
        }
        for args in [&["--explain"][..], &[]] {
            let mut all = vec!["--state-store", url.as_str(), "--api-url", &fake.url];
            all.extend_from_slice(args);
            let r = sb.run(&all, &read_fixture("sensu/create.json"));
            assert_eq!(r.code, Some(0), "{url} {args:?} {r:?}");
            assert!(format!("{}{}", r.stdout, r.stderr).contains("state store URL"), "{r:?}");
            assert!(!r.stderr.contains(pw) && !r.stdout.contains(pw), "{url} {args:?}: {r:?}");
        }
    }
    assert_eq!(fake.accepted().len(), urls.len(), "every page still went out");
}

/// Credentials an event carries for its checks in every handler's section (a check's own
/// PagerDuty service, Slack token, Twilio account, Reactio project), easy to spot.
const CHECK_PD_KEY: &str = "CHECKSR0UT1NGKEYforAnotherTeam42";
const CHECK_SLACK_TOKEN: &str = "xoxb-4242424242-4242424242-TheChecksOwnSlackTok";
const CHECK_TWILIO_TOKEN: &str = "c0ffee00c0ffee00c0ffee00c0ffee42";
const CHECK_REACTIO_KEY: &str = "TheChecksOwnReactioApiKey00000042";

/// The four handlers, each set up with its own operator credentials, and their names.
fn every_handler() -> Vec<(&'static str, Sandbox)> {
    let reactio = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
    reactio.config("reactio.json", &json!({"reactio": {"api_key": reactio::API_KEY, "organization": "example"}}));
    let slack = Sandbox::new(env!("CARGO_BIN_EXE_handler-slack"));
    slack.config("slack.json", &json!({"slack": {"token": fake_slack::BOT_TOKEN, "responders": ["U01ALICE01"]}}));
    let twilio = Sandbox::new(env!("CARGO_BIN_EXE_handler-twilio"));
    twilio.config("twilio.json", &json!({"twilio": crate::util::twilio_settings(json!({"recipients": ["+14155550101"]}))}));
    vec![("pagerduty", pagerduty_sandbox_with(json!({"routing_key": PD_KEY}))), ("reactio", reactio), ("slack", slack), ("twilio", twilio)]
}

/// Events carrying every handler's credentials, as `(what, arguments, environment, stdin)`: a
/// Sensu Go event's check annotations (and one entity annotation, masked in the printed event
/// only: [`an_entity_chosen_credential_masks_the_printed_event_only`]), a Sensu 1.x event's check
/// attributes, Nagios custom variables (`--from nagios`, printed as what was read of it).
fn events_carrying_credentials() -> Vec<(&'static str, Vec<&'static str>, Vec<(String, String)>, Vec<u8>)> {
    let mut go: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).expect("fixture");
    go["check"]["metadata"]["annotations"] = json!({
        "pagerpipe/pagerduty.routing_key": CHECK_PD_KEY,
        "pagerpipe/slack.token": CHECK_SLACK_TOKEN,
        "pagerpipe/twilio.auth_token": CHECK_TWILIO_TOKEN,
    });
    go["entity"]["metadata"]["annotations"] = json!({"pagerpipe/reactio.api_key": CHECK_REACTIO_KEY});
    let mut one: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).expect("fixture");
    one["check"]["pagerduty"] = json!({"routing_key": CHECK_PD_KEY});
    one["check"]["slack"] = json!({"token": CHECK_SLACK_TOKEN});
    one["check"]["twilio"] = json!({"auth_token": CHECK_TWILIO_TOKEN});
    one["check"]["reactio"] = json!({"api_key": CHECK_REACTIO_KEY});
    let nagios: Vec<(String, String)> = [
        ("NAGIOS_NOTIFICATIONTYPE", "PROBLEM"),
        ("NAGIOS_HOSTNAME", "web-01"),
        ("NAGIOS_SERVICEDESC", "check_disk"),
        ("NAGIOS_SERVICESTATE", "CRITICAL"),
        ("NAGIOS_SERVICEOUTPUT", "DISK CRITICAL"),
        ("NAGIOS__SERVICEPAGERDUTY_ROUTING_KEY", CHECK_PD_KEY),
        ("NAGIOS__SERVICESLACK_TOKEN", CHECK_SLACK_TOKEN),
        ("NAGIOS__SERVICETWILIO_AUTH_TOKEN", CHECK_TWILIO_TOKEN),
        ("NAGIOS__HOSTREACTIO_API_KEY", CHECK_REACTIO_KEY),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vec![
        ("Sensu Go annotations", vec![], vec![], go.to_string().into_bytes()),
        ("Sensu 1.x check attributes", vec![], vec![], one.to_string().into_bytes()),
        ("Nagios custom variables", vec!["--from", "nagios"], nagios, Vec::new()),
    ]
}

/// No spool directory can be written and the service is down: the event is printed to stderr
/// on one line, with every credential it carries masked, whichever handler's section holds it.
/// Before, each handler masked only its own: handler-pagerduty printed the check's Slack token,
/// Twilio auth token and Reactio API key in clear into the monitoring system's log. The same
/// events through `--explain` and `--dry-run` show none of them either.
#[test]
fn an_undelivered_event_is_printed_with_every_handlers_credentials_masked() {
    let needles = Needles([CHECK_PD_KEY, CHECK_SLACK_TOKEN, CHECK_TWILIO_TOKEN, CHECK_REACTIO_KEY].map(String::from).to_vec());
    for (handler, sb) in every_handler() {
        for (what, args, env, stdin) in events_carrying_credentials() {
            let what = format!("handler-{handler}, {what}");
            let mut all = vec!["--api-url", REFUSED_URL, "--timeout", "1s"];
            all.extend(&args);
            let mut cmd = sb.command_without_spool(&all);
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
            let r = run_command(cmd, &stdin);
            assert_eq!(r.code, Some(75), "{what}: {r:?}");
            let line =
                r.stderr.lines().find(|l| l.contains("undelivered event, not spooled")).unwrap_or_else(|| panic!("{what}: {}", r.stderr));
            // Masked, not left out: the last four characters tell the operator which one it was.
            let n = CHECK_SLACK_TOKEN.len();
            assert!(line.contains(&format!("{}{}", "*".repeat(n - 4), &CHECK_SLACK_TOKEN[n - 4..])), "{what}: {line}");
            needles.assert_absent(&format!("{what}, undelivered"), &sb, &r);
            for extra in [&["--explain"][..], &["--dry-run", "-v"], &["--dry-run", "--log-format", "json"]] {
                let mut all = vec!["--api-url", REFUSED_URL];
                all.extend(&args);
                all.extend(extra);
                let r = run_env(&sb, &all, &env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(), &stdin);
                needles.assert_absent(&format!("{what}, {extra:?}"), &sb, &r);
            }
        }
    }
}

/// A monitored host writes its Sensu Go entity annotations: a "credential" it puts there is
/// masked in the event printed undelivered (it may be a real one), but a word it chose is not
/// masked in the other lines about its event (before, `pagerpipe/slack.token: "triggered"`
/// turned the handler's own outcome line into `*****ered`).
#[test]
fn an_entity_chosen_credential_masks_the_printed_event_only() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox_with(json!({"routing_key": PD_KEY}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).expect("fixture");
    ev["entity"]["metadata"]["annotations"] = json!({"pagerpipe/slack.token": "triggered"});
    let r = run_env(&sb, &["--api-url", &fake.url], &[], ev.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("pagerduty: triggered "), "the outcome line is the handler's own: {}", r.stderr);
    let sb = pagerduty_sandbox_with(json!({"routing_key": PD_KEY}));
    let cmd = sb.command_without_spool(&["--api-url", REFUSED_URL, "--timeout", "1s"]);
    let r = run_command(cmd, ev.to_string().as_bytes());
    assert_eq!(r.code, Some(75), "{r:?}");
    let line = r.stderr.lines().find(|l| l.contains("undelivered event, not spooled")).unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(!line.contains("\"triggered\""), "masked in the printed event: {line}");
}
