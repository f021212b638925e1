//! The exit-code contract: README's table, `common::exit::Code` and each handler's `--help`
//! list the same codes, and handler-pagerduty reaches every one of them.

use std::collections::BTreeSet;
use std::path::Path;

use common::exit::Code;
use serde_json::json;

use crate::fake::pagerduty::{FakePagerDuty, Script};
use crate::util::{REFUSED_URL, ROUTING_KEY, Run, Sandbox, read_fixture};

const BIN: &str = env!("CARGO_BIN_EXE_handler-pagerduty");

fn repo_file(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The codes in the first column of README's "Exit codes" table.
fn readme_codes() -> BTreeSet<u8> {
    let readme = repo_file("README.md");
    let section = readme.split("\n## Exit codes").nth(1).expect("README has an `## Exit codes` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|l| l.strip_prefix('|'))
        .filter_map(|l| l.split('|').next())
        .filter_map(|cell| cell.trim().parse::<u8>().ok())
        .collect()
}

/// Every variant of `common::exit::Code`, each with the code the type gives it
/// (`Code::as_u8`). The match below has no wildcard: a new variant does not compile until it is
/// listed here, and then README, `--help` and this file are checked against it.
const ALL_CODES: [Code; 6] = [Code::Ok, Code::Usage, Code::DataErr, Code::Unavailable, Code::TempFail, Code::Config];

fn code_enum_codes() -> BTreeSet<u8> {
    for c in ALL_CODES {
        match c {
            Code::Ok | Code::Usage | Code::DataErr | Code::Unavailable | Code::TempFail | Code::Config => {}
        }
    }
    ALL_CODES.iter().map(|c| c.as_u8()).collect()
}

#[test]
fn every_outcome_ends_in_a_code_of_the_contract() {
    use common::outcome::{Outcome, Retry};
    let outcomes: [(Outcome, Code); 6] = [
        (Outcome::Delivered(()), Code::Ok),
        (Outcome::Skipped("a filter".into()), Code::Ok),
        (Outcome::Retry(Retry::not_sent("HTTP 500")), Code::TempFail),
        (Outcome::Spooled("spooled".into()), Code::TempFail),
        (Outcome::Refused("HTTP 400".into()), Code::Unavailable),
        (Outcome::Broken("no routing key".into()), Code::Config),
    ];
    for (outcome, code) in &outcomes {
        // No wildcard: a new variant of Outcome must be listed above.
        match outcome {
            Outcome::Delivered(())
            | Outcome::Skipped(_)
            | Outcome::Retry(_)
            | Outcome::Spooled(_)
            | Outcome::Refused(_)
            | Outcome::Broken(_) => {}
        }
        assert_eq!(outcome.code(), *code, "{outcome:?}");
        assert!(code_enum_codes().contains(&outcome.code().as_u8()));
    }
    // Each code an outcome can end in is one the README documents.
    let from_outcomes: BTreeSet<u8> = outcomes.iter().map(|(o, _)| o.code().as_u8()).collect();
    assert!(from_outcomes.is_subset(&readme_codes()), "{from_outcomes:?}");
}

#[test]
fn readme_table_lists_exactly_the_codes_of_common_exit() {
    let readme = readme_codes();
    let code = code_enum_codes();
    assert_eq!(code, BTreeSet::from([0, 2, 65, 69, 75, 78]), "common::exit::Code changed: update README and this test");
    assert_eq!(readme, code, "README's exit-code table vs common/src/exit.rs");
    // Each handler's --help states the same codes.
    for bin in [BIN, env!("CARGO_BIN_EXE_handler-reactio"), env!("CARGO_BIN_EXE_handler-twilio")] {
        let out = std::process::Command::new(bin).arg("--help").env_clear().output().expect("run --help");
        let help = String::from_utf8_lossy(&out.stdout);
        // The paragraph that starts with "Exit codes:" (it may wrap).
        let para =
            help.lines().skip_while(|l| !l.contains("Exit codes:")).take_while(|l| !l.trim().is_empty()).collect::<Vec<_>>().join(" ");
        let numbers: BTreeSet<u8> = para.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
        for c in &code {
            assert!(numbers.contains(c), "{bin} --help does not mention exit code {c}: {para}");
        }
    }
}

/// Exit code, and for failures the one error line (besides the event printed when it is
/// neither delivered nor spooled: `undelivered event, not spooled: …`).
fn error_line(r: &Run) -> &str {
    let errors: Vec<&str> =
        r.stderr.lines().filter(|l| l.starts_with("pagerduty: error: ") && !l.contains("undelivered event, not spooled: ")).collect();
    assert_eq!(errors.len(), 1, "one error line: {r:?}");
    errors[0]
}

#[test]
fn handler_pagerduty_reaches_every_exit_code() {
    let mut reached = BTreeSet::new();
    let event = read_fixture("sensu/create.json");
    let configured = || {
        let sb = Sandbox::new(BIN);
        sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
        sb
    };

    // 0: delivered.
    let fake = FakePagerDuty::start(&[]);
    let r = configured().run(&["--api-url", &fake.url], &event);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("triggered web-01/check_disk"), "{}", r.stderr);
    reached.insert(0);

    // 2: usage.
    let r = configured().run(&["--no-such-flag"], &event);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--no-such-flag"), "{}", r.stderr);
    reached.insert(2);

    // 65: unreadable event.
    let r = configured().run(&["--api-url", &fake.url], b"{\"check\": ");
    assert_eq!(r.code, Some(65), "{r:?}");
    assert!(error_line(&r).contains("invalid JSON"), "{}", r.stderr);
    reached.insert(65);

    // 69: refused for good (400).
    let refusing = FakePagerDuty::start(&[Script::Invalid]);
    let r = configured().run(&["--api-url", &refusing.url], &event);
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(error_line(&r).contains("HTTP 400"), "{}", r.stderr);
    reached.insert(69);

    // 75: not delivered yet (nothing listens on the port).
    let r = configured().run(&["--api-url", REFUSED_URL, "--timeout", "1s"], &event);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(error_line(&r).contains("not delivered"), "{}", r.stderr);
    reached.insert(75);

    // 78: configuration missing (no routing key anywhere).
    let r = Sandbox::new(BIN).run(&["--api-url", &fake.url], &event);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(error_line(&r).contains("routing key"), "{}", r.stderr);
    reached.insert(78);

    assert_eq!(reached, code_enum_codes(), "every code of common::exit::Code is reachable");
    fake.assert_no_violations();
}
