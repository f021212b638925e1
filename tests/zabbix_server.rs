//! What a real Zabbix server sent, replayed: `tests/fixtures/zabbix/server-6.0.14/` holds the
//! alert-script arguments Debian's zabbix-server-pgsql 1:6.0.14 passed to the media type of
//! conf.d/zabbix-pagerduty.md (problem, recovery and problem update templates as written there),
//! byte for byte, one directory per scenario, one file per alert in the order the server ran
//! them (`NN-<subject>.txt`: the message; `NN.sendto`: the Send to when not `pagerduty`). How
//! they were made: the fixtures' README.

use serde_json::{Value, json};

use crate::fake::pagerduty::FakePagerDuty;
use crate::fake::slack::{BOT_TOKEN, FakeSlack, USERS};
use crate::util::{Run, Sandbox, fixture, pagerduty_sandbox, run_command};

const SLACK: &str = env!("CARGO_BIN_EXE_handler-slack");

/// The alerts of `scenario`, in the order the server ran the script: (Send to, subject, message).
fn alerts(scenario: &str) -> Vec<(String, String, String)> {
    let dir = fixture(&format!("zabbix/server-6.0.14/{scenario}"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| {
            let (number, subject) = n.trim_end_matches(".txt").split_once('-').unwrap();
            let send_to = std::fs::read_to_string(dir.join(format!("{number}.sendto"))).unwrap_or_else(|_| "pagerduty".into());
            (send_to, subject.to_string(), std::fs::read_to_string(dir.join(n)).unwrap())
        })
        .collect()
}

/// Run each alert of `scenario` (the first `count`) as Zabbix runs the script: three arguments.
fn replay(sb: &Sandbox, api_url: &str, scenario: &str, count: usize) -> Vec<Run> {
    alerts(scenario)
        .into_iter()
        .take(count)
        .map(|(send_to, subject, message)| {
            let r = run_command(sb.command(&["--api-url", api_url, "--from", "zabbix", &send_to, &subject, &message]), b"");
            assert_eq!(r.code, Some(0), "{scenario} {subject}: {r:?}");
            r
        })
        .collect()
}

fn actions(events: &[Value]) -> Vec<(String, String)> {
    events.iter().map(|e| (e["event_action"].as_str().unwrap().into(), e["dedup_key"].as_str().unwrap().into())).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, k)| (a.to_string(), k.to_string())).collect()
}

/// A problem, its acknowledgement (with a comment) and its recovery, as the server sent them:
/// one PagerDuty alert triggered, acknowledged and resolved. The trigger's URL is empty, as a
/// trigger has it by default (`url:` with nothing after it): no link.
#[test]
fn zabbix_server_problem_acknowledgement_and_recovery_are_one_alert() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let runs = replay(&sb, &fake.url, "basic", usize::MAX);
    assert!(runs[1].stderr.contains("acknowledged 10911-web-01"), "{}", runs[1].stderr);
    fake.assert_no_violations();
    let ev = fake.events();
    let key = "10911-web-01";
    assert_eq!(actions(&ev), pairs(&[("trigger", key), ("acknowledge", key), ("resolve", key)]));
    assert_eq!(ev[0]["payload"]["summary"], "web-01/App status is degraded: 3 of 5 backends down: degraded: 3 of 5 backends down");
    assert_eq!((&ev[0]["payload"]["severity"], &ev[0]["payload"]["source"]), (&json!("error"), &json!("web-01")));
    assert_eq!(ev[0]["payload"]["custom_details"]["address"], "192.0.2.5");
    assert!(ev[0].get("links").is_none(), "an empty url: line is no link: {}", ev[0]);
}

/// The media's own `pagerduty` user, as the guide advises, is no Super admin and shares no user
/// group with the administrator who acknowledges: the server then writes `{USER.FULLNAME}` as
/// "Inaccessible user". handler-slack's thread reply said "acknowledged by Inaccessible user";
/// it says nobody's name, and the log says what to change. Once the `pagerduty` user shares a
/// user group with the administrator, the server names them, and so does the reply.
#[test]
fn zabbix_server_an_acknowledgement_by_a_user_hidden_from_the_media_user_names_no_one() {
    let replies = |scenario: &str| {
        let fake = FakeSlack::start();
        let sb = Sandbox::new(SLACK);
        sb.config("slack.json", &json!({"slack": {"token": BOT_TOKEN, "responders": [USERS[0]]}}));
        let runs = replay(&sb, &fake.api_url(), scenario, 2);
        fake.assert_no_violations();
        let room = &fake.created()[0];
        let replies: Vec<String> = room.replies(&room.roots()[0].ts).iter().map(|m| m.text.clone()).collect();
        assert_eq!(replies.len(), 1, "{replies:?}");
        (replies[0].clone(), runs[1].stderr.clone())
    };
    let (hidden, log) = replies("basic");
    assert!(hidden.contains("acknowledged in Zabbix"), "{hidden}");
    assert!(!hidden.contains("Inaccessible"), "{hidden}");
    assert!(log.contains("Inaccessible user") && log.contains("user group"), "{log}");
    let (named, log) = replies("names");
    assert!(named.contains("acknowledged by Zabbix Administrator (Admin)"), "{named}");
    assert!(!log.contains("Inaccessible"), "{log}");
}

/// Every kind of problem update the server sends (a comment; an acknowledgement with a change
/// of severity; an unacknowledgement; a change of severity; a manual close, followed by its
/// recovery): only the acknowledgement and the recovery reach PagerDuty.
#[test]
fn zabbix_server_problem_updates_page_only_the_acknowledgement() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let runs = replay(&sb, &fake.url, "updates", usize::MAX);
    let skipped: Vec<bool> = runs.iter().map(|r| r.stderr.contains("is not paged")).collect();
    assert_eq!(skipped, [false, true, false, true, true, true, false], "{runs:?}");
    fake.assert_no_violations();
    let key = "10911-web-01";
    assert_eq!(actions(&fake.events()), pairs(&[("trigger", key), ("acknowledge", key), ("resolve", key)]));
}

/// A host disabled while its problem's escalation runs: the server's "NOTE: Escalation
/// canceled" message resolves the alert.
#[test]
fn zabbix_server_escalation_canceled_resolves() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    replay(&sb, &fake.url, "cancel", usize::MAX);
    fake.assert_no_violations();
    let key = "10911-web-01";
    assert_eq!(actions(&fake.events()), pairs(&[("trigger", key), ("resolve", key)]));
}

/// Text the monitored host wrote, through real macro expansion: an item value (embedded in the
/// trigger name by `{ITEM.LASTVALUE}`, then `{ITEM.VALUE}`) holding newlines, key lines
/// (`update_action:`, `name:`, `item_value:`, `incident_key:`, `url:`, `status:OK`,
/// `nseverity:0`, an escalation note), a tab, a carriage return and non-ASCII; and a trigger
/// name holding such lines itself. Neither moves the incident, the severity, the action or the
/// link: each problem is triggered, acknowledged (by the template's own line, not the name's)
/// and resolved as the server meant, and a comment stays unpaged.
#[test]
fn zabbix_server_hostile_names_and_values_stay_text() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    replay(&sb, &fake.url, "hostile_value", usize::MAX);
    let runs = replay(&sb, &fake.url, "hostile_name", usize::MAX);
    assert!(runs[1].stderr.contains("(\"commented\") is not paged"), "{}", runs[1].stderr);
    fake.assert_no_violations();
    let ev = fake.events();
    let (v, n) = ("10911-web-01", "10912-web-01");
    assert_eq!(
        actions(&ev),
        pairs(&[("trigger", v), ("acknowledge", v), ("resolve", v), ("trigger", n), ("acknowledge", n), ("resolve", n)])
    );
    for (e, severity) in [(&ev[0], "error"), (&ev[3], "warning")] {
        assert_eq!((&e["payload"]["severity"], &e["payload"]["source"]), (&json!(severity), &json!("web-01")), "{e}");
        assert!(e.get("links").is_none() || !e["links"].to_string().contains("evil"), "{e}");
    }
    assert_eq!(ev[3]["links"], json!([{"href": "https://zabbix.example.com/tr_events.php?triggerid=10912", "text": "View in Zabbix"}]));
    assert!(ev[3]["payload"]["summary"].as_str().unwrap().starts_with("web-01/Ünïcödé 障害 name"), "{}", ev[3]);
}

/// The hostile item value holds an `item_value:` line, and the trigger name embeds the value
/// (`{ITEM.LASTVALUE}`), so the message has that line inside the name, before the template's own.
/// The name was cut at the first one and the rest taken for the value ("App status is fine …
/// name:evil: x incident_key:…"): the name and the value are each what the server put there.
#[test]
fn zabbix_server_a_name_embedding_a_value_with_an_item_value_line_is_split_where_the_server_put_it() {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    replay(&sb, &fake.url, "hostile_value", 1);
    fake.assert_no_violations();
    let ev = fake.events();
    let value = "fine\nupdate_action:acknowledged\nname:evil\nitem_value:x\nincident_key:999-db-01\nurl:https://evil.example.net/\nNOTE: Escalation canceled: x\nstatus:OK\nvalue:0\nnseverity:0\nÜñíçødé 障害\t\nend";
    assert_eq!(ev[0]["payload"]["custom_details"]["output"], value);
    assert_eq!(ev[0]["payload"]["component"], format!("App status is {value}"));
}
