//! Pages from any script or batch job (`--from cli`, `--from exec`), with each handler against
//! its loopback fake: the same scenarios run for handler-pagerduty, handler-twilio,
//! handler-reactio and handler-slack, each page read back from what the fake service accepted.

use serde_json::json;

use crate::fake::pagerduty::FakePagerDuty;
use crate::fake::reactio::{self, FakeReactio};
use crate::fake::slack::{self, FakeSlack};
use crate::fake::twilio::{self, FakeTwilio};
use crate::util::{ROUTING_KEY, Run, Sandbox};

/// One page as the fake service received it.
#[derive(Debug, Clone, PartialEq)]
struct Page {
    /// `trigger` or `resolve`.
    action: &'static str,
    /// The check status word the page names (`critical`, `warning`, …).
    status: String,
    /// The page's text that carries the check output.
    text: String,
}

/// A fake incident service and how to read pages back from it.
enum Service {
    PagerDuty(FakePagerDuty),
    Twilio(FakeTwilio),
    Reactio(FakeReactio),
    Slack(FakeSlack),
}

const TWILIO_TO: &str = "+14155550101";

impl Service {
    fn all() -> [fn() -> Service; 4] {
        [
            || Service::PagerDuty(FakePagerDuty::start(&[])),
            || Service::Twilio(FakeTwilio::start(&[])),
            || Service::Reactio(FakeReactio::start(&[])),
            || Service::Slack(FakeSlack::start()),
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            Service::PagerDuty(_) => "pagerduty",
            Service::Twilio(_) => "twilio",
            Service::Reactio(_) => "reactio",
            Service::Slack(_) => "slack",
        }
    }

    fn url(&self) -> String {
        match self {
            Service::PagerDuty(f) => f.url.clone(),
            Service::Twilio(f) => f.url.clone(),
            Service::Reactio(f) => f.url.clone(),
            Service::Slack(f) => f.api_url(),
        }
    }

    /// A sandbox for this handler: credentials for the fake; Twilio texts a RESOLVED SMS on
    /// resolve and its call caps do not get in the way; Reactio pages for every severity and names the status in the incident name; Slack posts to one channel.
    fn sandbox(&self) -> Sandbox {
        match self {
            Service::PagerDuty(_) => {
                let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-pagerduty"));
                sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
                sb
            }
            Service::Twilio(_) => {
                let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-twilio"));
                sb.config(
                    "twilio.json",
                    &json!({"twilio": {"account_sid": twilio::ACCOUNT_SID, "auth_token": twilio::AUTH_TOKEN,
                        "from": "+14155550199", "recipients": [TWILIO_TO], "notify_on_resolve": true, "call_caps": {"1h": 100}}}),
                );
                sb
            }
            Service::Reactio(_) => {
                let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-reactio"));
                sb.config(
                    "reactio.json",
                    &json!({"reactio": {"api_key": reactio::API_KEY, "organization": "example",
                        "severities": "warning,critical,unknown", "name_template": "{status}: {output}"}}),
                );
                sb
            }
            Service::Slack(_) => {
                let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-slack"));
                sb.config("slack.json", &json!({"slack": {"token": slack::BOT_TOKEN, "channel": slack::ALERTS}}));
                sb
            }
        }
    }

    /// Every page the fake accepted, in order.
    fn pages(&self) -> Vec<Page> {
        match self {
            Service::PagerDuty(f) => {
                f.assert_no_violations();
                f.events()
                    .iter()
                    .map(|e| Page {
                        action: if e["event_action"] == "resolve" { "resolve" } else { "trigger" },
                        status: match e["payload"]["custom_details"]["status"].as_u64() {
                            Some(1) => "warning".into(),
                            Some(2) => "critical".into(),
                            Some(3) => "unknown".into(),
                            _ => String::new(),
                        },
                        text: e["payload"]["custom_details"]["output"].as_str().unwrap_or("").to_string(),
                    })
                    .collect()
            }
            Service::Twilio(f) => {
                f.assert_no_violations();
                // A call per trigger, spoken "<entity> <check> is <status>. <output>"; a
                // resolve is the SMS "RESOLVED: <entity> <check> is ok. <output>".
                f.accepted()
                    .iter()
                    .map(|a| {
                        let (action, text) = match a.param("Body") {
                            Some(body) => ("resolve", body.to_string()),
                            None => ("trigger", a.twiml.as_ref().map(|t| t.say.join(" ")).unwrap_or_default()),
                        };
                        let after = text.split_once(" is ").map(|(_, s)| s).unwrap_or("");
                        let (status, output) = after.split_once(". ").unwrap_or((after.trim_end_matches('.'), ""));
                        Page { action, status: status.to_string(), text: output.to_string() }
                    })
                    .collect()
            }
            Service::Reactio(f) => {
                f.assert_no_violations();
                f.calls()
                    .iter()
                    .filter(|c| c.status == 201)
                    .map(|c| match c.path.as_str() {
                        "/api/v1/incidents" => {
                            let name = c.body["name"].as_str().unwrap_or("");
                            let (status, output) = name.split_once(": ").unwrap_or(("", name));
                            Page { action: "trigger", status: status.to_string(), text: output.to_string() }
                        }
                        _ => Page {
                            action: "resolve",
                            status: String::new(),
                            text: c.body["message"].as_str().unwrap_or("").trim_start_matches("recovered: ").to_string(),
                        },
                    })
                    .collect()
            }
            Service::Slack(f) => {
                f.assert_no_violations();
                // The alert (or, for a recovery, a reply in its thread): the status field and the
                // output's code block, unescaped.
                f.channel(slack::ALERTS)
                    .messages
                    .iter()
                    .map(|m| {
                        let header = m.blocks[0]["text"]["text"].as_str().unwrap_or("");
                        let status = m.blocks[1]["fields"][0]["text"].as_str().unwrap_or("").trim_start_matches("*Status*\n");
                        let code = m.blocks[2]["text"]["text"].as_str().unwrap_or("");
                        let code = code.trim_start_matches("```\n").trim_end_matches("\n```");
                        let text = code.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
                        let action = if header.contains("RECOVERED") { "resolve" } else { "trigger" };
                        Page { action, status: if action == "resolve" { String::new() } else { status.to_string() }, text }
                    })
                    .collect()
            }
        }
    }

    /// Run the handler with `--api-url` of the fake and `args`.
    fn run(&self, sb: &Sandbox, args: &[&str], stdin: &[u8]) -> Run {
        let url = self.url();
        let mut all = vec!["--api-url", url.as_str()];
        all.extend_from_slice(args);
        sb.run(&all, stdin)
    }
}

/// Whitespace runs as one space (Reactio's incident name and TwiML speech collapse them).
fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `/bin/sh -c SCRIPT` as the job of `--from exec`.
fn exec_args<'a>(check: &'a str, extra: &[&'a str], script: &'a str) -> Vec<&'a str> {
    let mut args = vec!["--from", "exec", "--check", check, "--entity", "batch-01"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    args
}

#[test]
fn a_failing_job_triggers_with_its_output_and_the_next_good_run_resolves() {
    for start in Service::all() {
        let svc = start();
        let sb = svc.sandbox();
        let job = "echo 'exporting 3 tables'; echo 'export: table orders: disk full' >&2; exit 4";
        let r = svc.run(&sb, &exec_args("nightly-export", &[], job), b"");
        let who = svc.name();
        assert_eq!(r.code, Some(0), "{who}: {r:?}");
        // The job's output still reaches the handler's stdout and stderr (cron mail, journal).
        assert_eq!(r.stdout, "exporting 3 tables\n", "{who}");
        assert!(r.stderr.contains("export: table orders: disk full\n"), "{who}: {}", r.stderr);
        assert!(r.stderr.contains("job /bin/sh exited with status 4 ("), "{who}: the job's exit is logged: {}", r.stderr);
        assert!(r.stderr.contains("triggered batch-01/nightly-export"), "{who}: {}", r.stderr);
        let pages = svc.pages();
        assert_eq!(pages.len(), 1, "{who}: {pages:?}");
        assert_eq!((pages[0].action, pages[0].status.as_str()), ("trigger", "critical"), "{who}");
        let text = squeeze(&pages[0].text);
        assert!(text.starts_with("/bin/sh exited with status 4."), "{who}: {text}");
        assert!(text.contains("exporting 3 tables") && text.contains("export: table orders: disk full"), "{who}: {text}");
        assert!(!text.contains("exit 4"), "{who}: the job's arguments are not in the page: {text}");

        let r = svc.run(&sb, &exec_args("nightly-export", &[], "echo 'exported 3 tables'"), b"");
        assert_eq!(r.code, Some(0), "{who}: {r:?}");
        assert!(r.stderr.contains("resolved batch-01/nightly-export"), "{who}: {}", r.stderr);
        let pages = svc.pages();
        assert_eq!(pages.len(), 2, "{who}: {pages:?}");
        assert_eq!(pages[1].action, "resolve", "{who}");
        // PagerDuty's resolve carries no payload; the others say what the good run said.
        let said = if who == "pagerduty" { "" } else { "exited with status 0" };
        assert!(pages[1].text.contains(said), "{who}: {:?}", pages[1]);
    }
}

#[test]
fn a_job_that_runs_longer_than_the_timeout_still_pages_within_a_timeout_of_its_own() {
    // --timeout is the page's deadline, not the job's (--exec-timeout is): counted from the
    // start, a job of 1.5 s left a 1 s deadline no time, and the page was spooled (exit 75).
    let svc = Service::all()[0]();
    let sb = svc.sandbox();
    let r = svc.run(&sb, &exec_args("slow-export", &["--timeout", "1s"], "sleep 1.5; exit 2"), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("triggered batch-01/slow-export"), "{}", r.stderr);
    assert_eq!(svc.pages().len(), 1);
}

#[test]
fn nagios_exit_codes_map_to_warning_critical_unknown() {
    for start in Service::all() {
        let svc = start();
        let sb = svc.sandbox();
        let who = svc.name();
        for (check, code, status) in [("w", "1", "warning"), ("c", "2", "critical"), ("u", "3", "unknown"), ("x", "5", "critical")] {
            let script = format!("echo 'status {code}'; exit {code}");
            let r = svc.run(&sb, &exec_args(check, &["--exit-codes", "nagios"], &script), b"");
            assert_eq!(r.code, Some(0), "{who} {check}: {r:?}");
            let pages = svc.pages();
            let page = pages.last().expect("a page");
            assert_eq!((page.action, page.status.as_str()), ("trigger", status), "{who}: exit {code}");
        }
        // Without the option every non-zero exit is critical.
        let r = svc.run(&sb, &exec_args("plain", &[], "exit 1"), b"");
        assert_eq!(r.code, Some(0), "{who}: {r:?}");
        assert_eq!(svc.pages().last().map(|p| p.status.clone()).as_deref(), Some("critical"), "{who}");
        assert_eq!(svc.pages().len(), 5, "{who}");
    }
}

#[test]
fn a_job_past_its_exec_timeout_is_killed_and_pages_critical_saying_so() {
    for start in Service::all() {
        let svc = start();
        let sb = svc.sandbox();
        let who = svc.name();
        // The shell's child `sleep` keeps the pipes open: only killing the whole process group
        // lets the handler finish well before the 60 s are up.
        let args = exec_args("stuck", &["--exec-timeout", "300ms", "--exit-codes", "nagios"], "echo 'step 1 done'; sleep 60; echo never");
        let r = svc.run(&sb, &args, b"");
        assert_eq!(r.code, Some(0), "{who}: {r:?}");
        assert_eq!(r.stdout, "step 1 done\n", "{who}");
        assert!(r.stderr.contains("job /bin/sh timed out after 300ms and was killed"), "{who}: {}", r.stderr);
        let pages = svc.pages();
        assert_eq!(pages.len(), 1, "{who}: {pages:?}");
        assert_eq!((pages[0].action, pages[0].status.as_str()), ("trigger", "critical"), "{who}");
        assert_eq!(squeeze(&pages[0].text), "/bin/sh timed out after 300ms and was killed. step 1 done", "{who}");
    }
}

#[test]
fn a_job_killed_by_a_signal_pages_critical_and_one_that_cannot_start_too() {
    let svc = Service::PagerDuty(FakePagerDuty::start(&[]));
    let sb = svc.sandbox();
    let r = svc.run(&sb, &exec_args("segv", &["--exit-codes", "nagios"], "echo dying; kill -SEGV $$"), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = svc.run(&sb, &["--from", "exec", "--check", "missing", "--entity", "batch-01", "--", "/nonexistent/export.sh"], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    let pages = svc.pages();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert_eq!((pages[0].status.as_str(), pages[0].text.as_str()), ("critical", "/bin/sh was killed by signal 11 (SIGSEGV).\ndying\n"));
    assert_eq!(pages[1].status, "critical");
    assert!(pages[1].text.starts_with("/nonexistent/export.sh could not be started: No such file or directory"), "{:?}", pages[1]);
}

#[test]
fn a_job_output_without_a_line_end_does_not_swallow_the_handlers_first_log_line() {
    // The job's stderr passes through to the handler's; its last line without a line end had
    // the handler's first line glued onto it: `partial{"handler":…}`, which a JSON-lines
    // reader cannot parse, so the line saying how the job ended was lost to it.
    let svc = Service::PagerDuty(FakePagerDuty::start(&[]));
    let sb = svc.sandbox();
    let job = "printf 'to stdout, no line end'; printf 'to stderr, no line end' >&2; exit 3";
    let r = svc.run(&sb, &exec_args("unended", &["--log-format", "json"], job), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "to stdout, no line end\n");
    let mut lines = r.stderr.lines();
    assert_eq!(lines.next(), Some("to stderr, no line end"), "{}", r.stderr);
    let logged: Vec<serde_json::Value> =
        lines.map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}\n{}", r.stderr))).collect();
    assert!(logged.iter().any(|l| l["msg"].as_str().is_some_and(|m| m.starts_with("job /bin/sh exited with status 3"))), "{logged:?}");
    assert!(logged.iter().any(|l| l["msg"].as_str().is_some_and(|m| m.starts_with("triggered batch-01/unended"))), "{logged:?}");
    assert_eq!(svc.pages().len(), 1);
}

#[test]
fn a_job_printing_10_mb_passes_it_all_through_and_the_page_carries_the_last_4_kib() {
    // 10 MiB of numbered lines, distinct enough that a misplaced byte shows.
    let mut big = Vec::with_capacity(10 * 1024 * 1024 + 100);
    let mut n = 0u64;
    while big.len() < 10 * 1024 * 1024 {
        big.extend_from_slice(format!("line {n:08} of the nightly export log\n").as_bytes());
        n += 1;
    }
    let tail = std::str::from_utf8(&big[big.len() - 4096..]).expect("ASCII").to_string();
    for start in Service::all() {
        let svc = start();
        let sb = svc.sandbox();
        let who = svc.name();
        let file = sb.dir.path().join("export.log");
        std::fs::write(&file, &big).expect("write the job's output");
        let script = format!("cat '{}'; exit 1", file.display());
        let r = svc.run(&sb, &exec_args("big", &[], &script), b"");
        assert_eq!(r.code, Some(0), "{who}: code {:?}, stderr {}", r.code, r.stderr);
        assert!(r.stdout.as_bytes() == big.as_slice(), "{who}: stdout passed through whole ({} of {} bytes)", r.stdout.len(), big.len());
        assert!(
            r.stderr.contains(&format!("({} bytes of output)", big.len()))
                || r.stderr.contains(&format!(", {} bytes of output)", big.len())),
            "{who}: {}",
            r.stderr
        );
        let pages = svc.pages();
        assert_eq!(pages.len(), 1, "{who}");
        let text = &pages[0].text;
        match svc {
            // The whole tail, exactly: the first line says how the job ended.
            Service::PagerDuty(_) => assert_eq!(text, &format!("/bin/sh exited with status 1.\n{tail}"), "{who}"),
            // The incident name is cut to 255 characters (docs/reactio.md): the start of it.
            Service::Reactio(_) => {
                let whole = squeeze(&format!("/bin/sh exited with status 1.\n{tail}"));
                assert!(text.ends_with('…') && whole.starts_with(text.trim_end_matches('…')), "{who}: {text}");
            }
            // A call speaks at most what fits Twilio's 4000 characters of TwiML, a Slack code
            // block holds 3000: the ending and the start of the tail.
            Service::Twilio(_) | Service::Slack(_) => {
                let spoken = squeeze(text);
                let start = squeeze(&tail[..200]);
                assert!(spoken.starts_with(&format!("/bin/sh exited with status 1. {start}")), "{who}: {spoken}");
            }
        }
    }
}

#[test]
fn cli_flags_trigger_and_ok_resolves() {
    for start in Service::all() {
        let svc = start();
        let sb = svc.sandbox();
        let who = svc.name();
        let r = svc.run(
            &sb,
            &[
                "--from",
                "cli",
                "--check",
                "backup",
                "--entity",
                "db-01",
                "--status",
                "CRITICAL",
                "--output",
                "backup failed: no space left",
            ],
            b"",
        );
        assert_eq!(r.code, Some(0), "{who}: {r:?}");
        assert!(r.stderr.contains("triggered db-01/backup"), "{who}: {}", r.stderr);
        // A numeric status and the output from stdin; the same key, so it resolves.
        let r =
            svc.run(&sb, &["--from", "cli", "--check", "backup", "--entity", "db-01", "--status", "0", "--output", "-"], b"backup done\n");
        assert_eq!(r.code, Some(0), "{who}: {r:?}");
        assert!(r.stderr.contains("resolved db-01/backup"), "{who}: {}", r.stderr);
        let pages = svc.pages();
        assert_eq!(pages.len(), 2, "{who}: {pages:?}");
        assert_eq!(
            (pages[0].action, pages[0].status.as_str(), pages[0].text.as_str()),
            ("trigger", "critical", "backup failed: no space left"),
            "{who}"
        );
        let said = if who == "pagerduty" { "" } else { "backup done" };
        assert_eq!((pages[1].action, pages[1].text.trim_end()), ("resolve", said), "{who}");
    }
}

#[test]
fn cli_and_exec_flag_mistakes_are_usage_errors_and_run_nothing() {
    let svc = Service::PagerDuty(FakePagerDuty::start(&[]));
    let sb = svc.sandbox();
    let marker = sb.dir.path().join("ran");
    let touch = format!("touch '{}'", marker.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--from", "cli", "--check", "c"], "--status"),
        (vec!["--from", "cli", "--status", "critical"], "--check"),
        (vec!["--from", "cli", "--check", "c", "--status", "fatal"], "fatal"),
        (vec!["--from", "exec", "--", "/bin/sh", "-c", &touch], "--check"),
        (vec!["--from", "exec", "--check", "c"], "after --"),
        (vec!["--check", "c", "--", "/bin/sh", "-c", &touch], "--from"),
        (vec!["--from", "cli", "--check", "c", "--status", "ok", "--", "/bin/sh", "-c", &touch], "COMMAND after --"),
        (vec!["--from", "exec", "--check", "c", "--status", "ok", "--", "/bin/sh", "-c", &touch], "--status"),
        // README: durations are range-checked wherever they come from; 0 is no "no limit" (that is
        // leaving the flag out): it killed every job at once and paged "timed out after 0s".
        (vec!["--from", "exec", "--check", "c", "--exec-timeout", "0", "--", "/bin/sh", "-c", &touch], "--exec-timeout"),
        (vec!["--from", "exec", "--check", "c", "--exec-timeout", "500000000000y", "--", "/bin/sh", "-c", &touch], "10 years"),
    ];
    for (args, says) in cases {
        let r = svc.run(&sb, &args, b"");
        assert_eq!(r.code, Some(2), "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(!marker.exists(), "{args:?}: the job ran");
    }
    assert!(svc.pages().is_empty());
}

#[test]
fn the_job_does_not_inherit_the_handlers_credentials() {
    let svc = Service::PagerDuty(FakePagerDuty::start(&[]));
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-pagerduty"));
    let url = svc.url();
    let mut cmd = sb.command(&[
        "--api-url",
        &url,
        "--from",
        "exec",
        "--check",
        "env",
        "--entity",
        "e",
        "--",
        "/bin/sh",
        "-c",
        "echo \"key=[${PAGERDUTY_ROUTING_KEY-unset}] other=[$OTHER]\"; exit 1",
    ]);
    cmd.env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY).env("OTHER", "kept");
    let r = crate::util::run_command(cmd, b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "key=[unset] other=[kept]\n");
    let pages = svc.pages();
    assert_eq!(pages.len(), 1);
    assert!(!pages[0].text.contains(ROUTING_KEY), "{pages:?}");
}

#[test]
fn the_handlers_exit_code_is_the_pages_not_the_jobs() {
    // PagerDuty refuses the event for good: exit 69 (not the job's 3), and the job's status
    // is in the log.
    let svc = Service::PagerDuty(FakePagerDuty::start(&[crate::fake::pagerduty::Script::Invalid]));
    let sb = svc.sandbox();
    let r = svc.run(&sb, &exec_args("refused", &[], "exit 3"), b"");
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("job /bin/sh exited with status 3 ("), "{}", r.stderr);
}

/// The lines of the README's code block that contains `needle`.
fn readme_block(needle: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let blocks: Vec<&str> = readme.split("```").collect();
    let block =
        blocks.iter().skip(1).step_by(2).find(|b| b.contains(needle)).unwrap_or_else(|| panic!("no README code block with {needle:?}"));
    block.lines().map(str::to_string).collect()
}

#[test]
fn the_documented_cron_line_and_systemd_service_call_when_the_job_fails() {
    const SHIPPED_BIN: &str = "/usr/bin/handler-twilio";
    const SHIPPED_SETTINGS: &str = "/etc/pagerpipe/twilio.json";
    const SHIPPED_JOB: &str = "/usr/local/bin/export.sh";
    let cron = readme_block("/etc/cron.d/nightly-export");
    let cron = cron.iter().find(|l| l.starts_with("30 2 ")).expect("the cron line");
    // A cron.d line: five time fields and the user, then the command, which cron runs with sh -c.
    let cron_command = cron.split_whitespace().skip(6).collect::<Vec<_>>().join(" ");
    let service = readme_block("ExecStart=");
    let exec_start = service.iter().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart=");
    for text in [cron_command.as_str(), exec_start] {
        for path in [SHIPPED_BIN, SHIPPED_SETTINGS, SHIPPED_JOB] {
            assert!(text.contains(path), "the documented command no longer names {path}: {text}");
        }
    }

    for (how, command) in [("cron", cron_command.as_str()), ("systemd", exec_start)] {
        let fake = FakeTwilio::start(&[]);
        let dir = tempfile::tempdir().expect("tempdir");
        let job = dir.path().join("export.sh");
        std::fs::write(&job, "#!/bin/sh\necho 'exporting orders'\necho 'export failed: disk full' >&2\nexit 1\n").expect("job");
        std::fs::set_permissions(&job, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let settings = dir.path().join("twilio.json");
        let section = json!({"account_sid": twilio::ACCOUNT_SID, "from": "+14155550199", "recipients": [TWILIO_TO],
            "api_url": fake.url, "state_dir": dir.path().join("state"), "spool_dir": dir.path().join("spool")});
        std::fs::write(&settings, json!({ "twilio": section }).to_string()).expect("settings");
        std::fs::set_permissions(&settings, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
        let command = command
            .replace(SHIPPED_BIN, env!("CARGO_BIN_EXE_handler-twilio"))
            .replace(SHIPPED_SETTINGS, settings.to_str().expect("UTF-8 path"))
            .replace(SHIPPED_JOB, job.to_str().expect("UTF-8 path"));
        // cron: sh -c COMMAND; systemd: the words of ExecStart= (no shell), with the token from
        // its EnvironmentFile.
        let mut cmd = match how {
            "cron" => {
                let mut c = std::process::Command::new("/bin/sh");
                c.arg("-c").arg(&command);
                c
            }
            _ => {
                let words: Vec<&str> = command.split_whitespace().collect();
                let mut c = std::process::Command::new(words[0]);
                c.args(&words[1..]);
                c
            }
        };
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("PAGERPIPE_RETRY_BASE_MS", "20")
            .env("TWILIO_AUTH_TOKEN", twilio::AUTH_TOKEN)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let r = crate::util::run_command(cmd, b"");
        assert_eq!(r.code, Some(0), "{how}: {r:?}");
        assert_eq!(r.stdout, "exporting orders\n", "{how}: the job's output reaches cron mail / the journal");
        assert!(r.stderr.contains("export failed: disk full\n"), "{how}: {}", r.stderr);
        assert!(r.stderr.contains("exited with status 1"), "{how}: {}", r.stderr);
        fake.assert_no_violations();
        let calls = fake.to("Calls.json");
        assert_eq!(calls.len(), 1, "{how}");
        let spoken = calls[0].twiml.as_ref().map(|t| t.say.join(" ")).unwrap_or_default();
        assert!(spoken.contains("nightly-export is critical.") && spoken.contains("export failed: disk full"), "{how}: {spoken}");
    }
}

#[test]
fn the_job_runs_even_when_the_settings_are_broken_and_the_handler_then_exits_78() {
    let svc = Service::PagerDuty(FakePagerDuty::start(&[]));
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-pagerduty")); // no routing key anywhere
    let marker = sb.dir.path().join("exported");
    let script = format!("touch '{}'; exit 1", marker.display());
    let r = svc.run(&sb, &exec_args("nightly-export", &[], &script), b"");
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(marker.exists(), "the job ran");
    assert!(r.stderr.contains("job /bin/sh exited with status 1 ("), "{}", r.stderr);
    assert!(svc.pages().is_empty());
}
