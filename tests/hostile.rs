//! Hostile input: every handler, fed events that are broken on purpose, exits 65 with one
//! clear line on stderr — never a panic (exit 101, "panicked"), never a hang.
//!
//! The small cases are files under `tests/fixtures/hostile/` (truncated JSON, invalid UTF-8,
//! NUL bytes, numbers as strings, wrong types, a missing `check`, empty input, a BOM, two
//! events back to back, out-of-range statuses, lone surrogates, bad Mackerel webhooks …). The
//! big ones are generated here so the repository does not carry them: 17 MB of check output,
//! 10 000-deep nesting (arrays, objects, unclosed, or closed but no event), 100 000-deep
//! unclosed nesting inside an event, 50 000 keys, a 500 000-digit number. The `--from` sources (Nagios macros, Zabbix arguments, Mackerel
//! action environment) get their own broken invocations.
//!
//! The other half: events that are odd but *valid* (escaped NULs, path traversal in names,
//! 50 000-character entities, output just under the 1 MiB cap, emoji and right-to-left text,
//! an attribute nested 10 000 or 100 000 levels deep, which is cut out) are delivered, within
//! every service's limits, by every handler.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fake::pagerduty::FakePagerDuty;
use crate::fake::reactio::{self, FakeReactio};
use crate::fake::twilio::{self, FakeTwilio};
use crate::util::{ROUTING_KEY, Run, Sandbox, fixture, read_fixture};

const HANDLERS: [(&str, &str); 3] = [
    ("pagerduty", env!("CARGO_BIN_EXE_handler-pagerduty")),
    ("reactio", env!("CARGO_BIN_EXE_handler-reactio")),
    ("twilio", env!("CARGO_BIN_EXE_handler-twilio")),
];

/// Longest a handler may take on bad input before the test calls it a hang. Generous: bad
/// input is rejected before any network or state access, so anything near this is a bug.
const HANG: Duration = Duration::from_secs(20);

/// Run `cmd` with `stdin`, killing it after [`HANG`] (reported as `code: None`).
fn run_watched(mut cmd: Command, stdin: Vec<u8>) -> Run {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn handler");
    let mut input = child.stdin.take().expect("stdin");
    // A handler stops reading at the 16 MiB cap: the writer then gets EPIPE, which is fine.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut b);
        b
    });
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    let _ = writer.join();
    Run {
        code,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
        took,
    }
}

/// Assert the one-line, exit-65 contract for `handler` on case `name`.
fn assert_rejected(handler: &str, name: &str, r: &Run, want: &str) {
    let ctx = format!("{handler} / {name}: code {:?} after {:?}\nstderr: {}", r.code, r.took, truncated(&r.stderr));
    assert!(!r.stderr.contains("panicked"), "panic: {ctx}");
    assert_ne!(r.code, None, "hang (killed after {HANG:?}) or signal: {ctx}");
    assert_eq!(r.code, Some(65), "{ctx}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {ctx}");
    let line = lines[0];
    assert!(line.starts_with(&format!("{handler}: error: event")), "names the event as what failed: {ctx}");
    assert!(line.contains(want), "says {want:?}: {ctx}");
    // Clear: short enough to read, and never an echo of the (possibly huge) input.
    assert!(line.chars().count() <= 400, "{} characters: {ctx}", line.chars().count());
    assert!(!line.contains('\0'), "{ctx}");
    assert!(r.stdout.is_empty(), "nothing on stdout: {ctx}");
}

fn truncated(s: &str) -> String {
    s.chars().take(2000).collect()
}

/// One hostile input: its name, its bytes, and the text its error line must contain.
type Case = (String, Vec<u8>, &'static str);

/// The committed corpus with the text each error must contain.
fn corpus() -> Vec<Case> {
    let expect: &[(&str, &str)] = &[
        ("bad-escape.json", "invalid JSON"),
        ("bare-string.json", "expected a JSON object"),
        ("bom.json", "invalid JSON"),
        ("check-name-number.json", "`check.name` must be a string"),
        ("check-not-object.json", "`check` must be an object"),
        ("client-is-string.json", "`client` must be an object"),
        ("empty-check-name.json", "`check.name` is empty"),
        ("empty.json", "stdin is empty"),
        ("history-bad-item.json", "check.history[1]"),
        ("history-wrong-type.json", "`check.history` must be an array"),
        ("lone-surrogate.json", "invalid JSON"),
        ("mackerel-missing-monitor.json", "alert.monitorName"),
        ("mackerel-status-number.json", "`alert.status` must be a string"),
        ("mackerel-status-unknown-word.json", "alert.status"),
        ("missing-check-sensu-go.json", "missing field `check`"),
        ("missing-check.json", "missing field `check`"),
        ("missing-status.json", "missing field `check.status`"),
        ("not-an-object.json", "expected a JSON object"),
        ("nul-between-tokens.json", "invalid JSON"),
        ("nul-in-string.json", "invalid JSON"),
        ("nul-only.bin", "invalid JSON"),
        ("null.json", "expected a JSON object"),
        ("occurrences-as-string.json", "`occurrences` must be a non-negative integer"),
        ("sensu-go-history-item.json", "check.history[0]"),
        ("sensu-go-label-not-string.json", "entity.metadata.labels.team"),
        ("sensu-go-name-number.json", "`entity.metadata.name` must be a string"),
        ("sensu-go-status-as-string.json", "`check.status` must be a non-negative integer"),
        ("silenced-as-string.json", "`silenced` must be a boolean"),
        ("status-as-string.json", "`check.status` must be a non-negative integer"),
        ("status-float.json", "`check.status` must be a non-negative integer"),
        ("status-huge.json", "`check.status` is out of range"),
        ("status-negative.json", "`check.status` must be a non-negative integer"),
        ("status-null.json", "missing field `check.status`"),
        ("status-overflow.json", "invalid JSON"),
        ("truncated-after-key.json", "invalid JSON"),
        ("truncated.json", "invalid JSON"),
        ("two-events.json", "invalid JSON"),
        ("unknown-action.json", "`action` must be create, resolve or flapping"),
        ("whitespace-only.json", "stdin is empty"),
    ];
    let dir = fixture("hostile");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/hostile")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let listed: Vec<String> = expect.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(on_disk, listed, "every corpus file has an expectation here, and every expectation a file");
    expect.iter().map(|(f, want)| (f.to_string(), read_fixture(&format!("hostile/{f}")), *want)).collect()
}

/// The big cases, generated.
fn generated() -> Vec<Case> {
    let mut create: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).expect("fixture");
    create["check"]["output"] = "x".repeat(17 * 1024 * 1024).into();
    let seventeen_mb = create.to_string().into_bytes();
    // Over 1 MiB with no long value to cut.
    let just_over = format!("{{\"a\":[{}0]}}", "0,".repeat(512 * 1024)).into_bytes();
    let deep_arrays = "[".repeat(10_000).into_bytes();
    let deep_objects = "{\"a\":".repeat(10_000).into_bytes();
    let deep_closed = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let deep_unclosed_in_event =
        format!(r#"{{"client":{{"name":"web-01"}},"check":{{"name":"c","status":2,"extra":{}}}}}"#, "[".repeat(100_000)).into_bytes();
    let many_keys = {
        let mut s = String::from("{");
        for i in 0..50_000 {
            s.push_str(&format!("\"k{i}\":0,"));
        }
        s.push_str("\"last\":0}");
        s.into_bytes()
    };
    let long_number = format!(r#"{{"client":{{"name":"a"}},"check":{{"name":"c","status":1{}}}}}"#, "0".repeat(500_000)).into_bytes();
    vec![
        ("17 MB of output".into(), seventeen_mb, "larger than 16777216 bytes"),
        // Shrunk to fit 1 MiB (a host's many labels must not cost its pages), then read.
        ("over 1 MiB of short values".into(), just_over, "missing field `check`"),
        ("10 000-deep arrays".into(), deep_arrays, "invalid JSON"),
        ("10 000-deep objects".into(), deep_objects, "invalid JSON"),
        // Read, nested 64 levels deep (the rest cut out), and no event object.
        ("10 000-deep closed arrays".into(), deep_closed, "expected a JSON object"),
        ("100 000-deep unclosed inside an event".into(), deep_unclosed_in_event, "invalid JSON"),
        ("50 000 keys".into(), many_keys, "missing field `check`"),
        ("500 000-digit status".into(), long_number, "invalid JSON"),
    ]
}

/// Nothing listens here (discard port): bad input must be rejected before any request.
const NOWHERE: &str = "http://127.0.0.1:9";

fn command(bin: &str, sb: &Sandbox, api_url: &str, args: &[&str]) -> Command {
    assert_eq!(bin, sb.bin, "the sandbox was made for this handler");
    let mut all = vec!["--api-url", api_url, "--timeout", "5s"];
    all.extend_from_slice(args);
    sb.command(&all)
}

#[test]
fn every_handler_rejects_the_hostile_corpus_with_65_and_one_line() {
    let mut cases = corpus();
    cases.extend(generated());
    for (handler, bin) in HANDLERS {
        let sb = Sandbox::new(bin);
        for (name, input, want) in &cases {
            let r = run_watched(command(bin, &sb, NOWHERE, &[]), input.clone());
            assert_rejected(handler, name, &r, want);
        }
        // Nothing was written to the state store or the spool.
        assert_eq!(std::fs::read_dir(sb.state_dir()).expect("state dir").count(), 0, "{handler}: state touched");
        assert!(sb.spooled(handler).is_empty(), "{handler}: spooled {:?}", sb.spooled(handler));
    }
}

#[test]
fn forced_formats_reject_the_other_formats_events() {
    // `--input sensu-go` on a Sensu 1.x event and the reverse: named fields, exit 65.
    let sensu1 = read_fixture("sensu/create.json");
    let sensu_go = read_fixture("sensu-go/failing.json");
    for (handler, bin) in HANDLERS {
        let sb = Sandbox::new(bin);
        let r = run_watched(command(bin, &sb, NOWHERE, &["--input", "sensu-go"]), sensu1.clone());
        assert_rejected(handler, "Sensu 1.x as Sensu Go", &r, "missing field `entity`");
        let r = run_watched(command(bin, &sb, NOWHERE, &["--input", "sensu"]), sensu_go.clone());
        assert_rejected(handler, "Sensu Go as Sensu 1.x", &r, "missing field `client`");
    }
}

/// A broken `--from` invocation: arguments and environment.
struct FromCase {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    want: &'static str,
}

fn from_cases() -> Vec<FromCase> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let huge = "A".repeat(100_000);
    vec![
        FromCase { name: "nagios without macros", args: s(&["--from", "nagios"]), env: vec![], want: "missing macro NOTIFICATIONTYPE" },
        FromCase {
            name: "nagios bad state",
            args: s(&["--from", "nagios", "--field", "NOTIFICATIONTYPE=PROBLEM", "--field", "HOSTNAME=h", "--field", "SERVICEDESC=s"]),
            env: vec![("NAGIOS_SERVICESTATE", "ON FIRE".into())],
            want: "\"ON FIRE\"",
        },
        FromCase {
            name: "nagios unknown notification type",
            args: s(&["--from", "nagios", "--field", "HOSTNAME=h", "--field", "HOSTSTATE=DOWN"]),
            env: vec![("NAGIOS_NOTIFICATIONTYPE", huge.clone())],
            want: "NOTIFICATIONTYPE",
        },
        FromCase {
            name: "icinga empty host name",
            args: s(&["--from", "icinga", "--field", "notification.type=PROBLEM", "--field", "host.name="]),
            env: vec![],
            want: "missing macro HOSTNAME",
        },
        FromCase { name: "zabbix one argument", args: s(&["--from", "zabbix", "only-one"]), env: vec![], want: "expected 3 arguments" },
        FromCase {
            name: "zabbix four arguments",
            args: s(&["--from", "zabbix", "a", "b", "c", "d"]),
            env: vec![],
            want: "expected 3 arguments",
        },
        FromCase {
            name: "zabbix no name line",
            args: vec!["--from".into(), "zabbix".into(), "to".into(), "trigger".into(), format!("hostname:h\n{huge}")],
            env: vec![],
            want: "name:",
        },
        FromCase {
            name: "zabbix neither problem nor recovery",
            args: s(&["--from", "zabbix", "to", "maybe", "name:n\nhostname:h"]),
            env: vec![],
            want: "cannot tell problem from recovery",
        },
        // Not a severity it can read (`nseverity:99`, a severity the Zabbix administrator
        // renamed) is no longer refused: the problem pages as critical (inputs.rs
        // a_zabbix_severity_renamed_by_the_administrator_still_pages).
        FromCase {
            name: "mackerel without status",
            args: s(&["--from", "mackerel", "--check", "c"]),
            env: vec![],
            want: "MACKEREL_STATUS",
        },
        FromCase {
            name: "mackerel bad status",
            args: s(&["--from", "mackerel", "--check", "c"]),
            env: vec![("MACKEREL_STATUS", "SORT OF OK".into())],
            want: "MACKEREL_STATUS",
        },
        FromCase {
            name: "mackerel no check name",
            args: s(&["--from", "mackerel"]),
            env: vec![("MACKEREL_STATUS", "CRITICAL".into())],
            want: "no check name",
        },
    ]
}

#[test]
fn every_handler_rejects_broken_from_invocations_with_65_and_one_line() {
    for (handler, bin) in HANDLERS {
        let sb = Sandbox::new(bin);
        for case in from_cases() {
            let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
            let mut cmd = command(bin, &sb, NOWHERE, &args);
            for (k, v) in &case.env {
                cmd.env(k, v);
            }
            let r = run_watched(cmd, Vec::new());
            assert_rejected(handler, case.name, &r, case.want);
        }
    }
}

/// Events that look hostile but are valid: every handler delivers them within the services'
/// limits (the fakes validate each request against the published specs).
fn odd_but_valid() -> Vec<(&'static str, Vec<u8>)> {
    let base: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).expect("fixture");
    let n = std::cell::Cell::new(0);
    // Each case its own check, so dedup does not suppress one as a repeat of another.
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        n.set(n.get() + 1);
        v["check"]["name"] = format!("odd-{}", n.get()).into();
        f(&mut v);
        v.to_string().into_bytes()
    };
    vec![
        (
            "escaped NULs",
            with(&|v| {
                v["client"]["name"] = "web\u{0}01".into();
                v["check"]["output"] = "a\u{0}b\u{0}".into();
            }),
        ),
        (
            "path traversal in names",
            with(&|v| {
                v["client"]["name"] = "../../../etc".into();
                v["check"]["name"] = "/passwd".into();
            }),
        ),
        ("50 000-character entity", with(&|v| v["client"]["name"] = "e".repeat(50_000).into())),
        ("output just under the cap", with(&|v| v["check"]["output"] = "ディスク".repeat(80_000).into())),
        (
            "emoji, RTL and combining marks",
            with(&|v| {
                v["client"]["name"] = "🔥web-01\u{202e}10-bew".into();
                v["check"]["output"] = "e\u{301}\u{301}\u{301} 🧯 مرحبا \u{200b}".repeat(300).into();
            }),
        ),
        ("control characters", with(&|v| v["check"]["output"] = "\u{7}\u{8}\u{1b}[31mred\u{1b}[0m\r\n\t".into())),
        // serde_json refuses more than 128 levels: cut out before parsing (the monitored host
        // writes its client attributes, and must not cost its pages with them).
        ("10 000-deep inside an event", nested(with(&|v| v["check"]["extra"] = "DEEP".into()), 10_000)),
        ("100 000-deep client attribute", nested(with(&|v| v["client"]["custom"] = json!({"a": "DEEP"})), 100_000)),
    ]
}

/// `event` with its string `"DEEP"` replaced by arrays nested `depth` levels deep (as text: a
/// `Value` that deep would overflow the test's stack when dropped).
fn nested(event: Vec<u8>, depth: usize) -> Vec<u8> {
    String::from_utf8_lossy(&event).replace("\"DEEP\"", &format!("{}{}", "[".repeat(depth), "]".repeat(depth))).into_bytes()
}

#[test]
fn odd_but_valid_events_are_delivered_within_the_services_limits() {
    let cases = odd_but_valid();
    for (name, input) in &cases {
        assert!(input.len() < 1024 * 1024, "{name} is {} bytes", input.len());
    }

    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(HANDLERS[0].1);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
    for (name, input) in &cases {
        let r = run_watched(command(HANDLERS[0].1, &sb, &fake.url, &[]), input.clone());
        assert_eq!(r.code, Some(0), "pagerduty / {name}: {}", truncated(&r.stderr));
    }
    fake.assert_no_violations();
    assert_eq!(fake.events().len(), cases.len());

    let fake = FakeReactio::start(&[]);
    let sb = Sandbox::new(HANDLERS[1].1);
    sb.config("reactio.json", &json!({"reactio": {"api_key": reactio::API_KEY, "organization": "example"}}));
    for (name, input) in &cases {
        let r = run_watched(command(HANDLERS[1].1, &sb, &fake.url, &[]), input.clone());
        assert_eq!(r.code, Some(0), "reactio / {name}: {}", truncated(&r.stderr));
    }
    fake.assert_no_violations();

    let fake = FakeTwilio::start(&[]);
    let sb = Sandbox::new(HANDLERS[2].1);
    sb.config(
        "twilio.json",
        &json!({"twilio": {"account_sid": twilio::ACCOUNT_SID, "auth_token": twilio::AUTH_TOKEN,
                "from": "+14155550199", "recipients": ["+14155550101"], "channels": ["voice", "sms"]}}),
    );
    for (name, input) in &cases {
        let r = run_watched(command(HANDLERS[2].1, &sb, &fake.url, &[]), input.clone());
        assert_eq!(r.code, Some(0), "twilio / {name}: {}", truncated(&r.stderr));
    }
    fake.assert_no_violations();
}
