//! Every monitoring system in: Nagios/Icinga macros, Zabbix alert-script arguments, Mackerel
//! action environment and webhook JSON, each through handler-pagerduty to the fake PagerDuty.

use serde_json::{Value, json};

use crate::fake::pagerduty::FakePagerDuty;
use crate::util::{ROUTING_KEY, Run, Sandbox, run_command};

const BIN: &str = env!("CARGO_BIN_EXE_handler-pagerduty");

fn sandbox() -> Sandbox {
    let sb = Sandbox::new(BIN);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
    sb
}

fn ok(r: &Run) {
    assert_eq!(r.code, Some(0), "{r:?}");
}

fn run_env(sb: &Sandbox, fake: &FakePagerDuty, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["--api-url", fake.url.as_str()];
    all.extend_from_slice(args);
    let mut cmd = sb.command(&all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(cmd, b"")
}

#[test]
fn nagios_environment_macros_problem_then_recovery() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let base = [
        ("NAGIOS_HOSTNAME", "web-01"),
        ("NAGIOS_HOSTADDRESS", "10.0.0.1"),
        ("NAGIOS_SERVICEDESC", "HTTP"),
        ("NAGIOS_NOTIFICATIONNUMBER", "1"),
        ("NAGIOS_LONGSERVICEOUTPUT", "detail one\\ndetail two"),
    ];
    let mut problem = base.to_vec();
    problem.extend([
        ("NAGIOS_NOTIFICATIONTYPE", "PROBLEM"),
        ("NAGIOS_SERVICESTATE", "CRITICAL"),
        ("NAGIOS_SERVICEOUTPUT", "HTTP CRITICAL - 503 <b>Service Unavailable</b> & 'down'"),
    ]);
    let r = run_env(&sb, &fake, &["--from", "nagios"], &problem);
    assert_eq!(r.code, Some(0), "{r:?}");
    let mut recovery = base.to_vec();
    recovery.extend([("NAGIOS_NOTIFICATIONTYPE", "RECOVERY"), ("NAGIOS_SERVICESTATE", "OK"), ("NAGIOS_SERVICEOUTPUT", "HTTP OK")]);
    let r = run_env(&sb, &fake, &["--from", "nagios"], &recovery);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["dedup_key"], "web-01/HTTP");
    assert_eq!(
        ev[0]["payload"]["custom_details"]["output"],
        "HTTP CRITICAL - 503 <b>Service Unavailable</b> & 'down'\ndetail one\ndetail two"
    );
    assert_eq!(ev[0]["payload"]["custom_details"]["address"], "10.0.0.1");
    assert_eq!((ev[1]["event_action"].as_str(), ev[1]["dedup_key"].as_str()), (Some("resolve"), Some("web-01/HTTP")));
}

/// A custom variable passed in the argument form (`--field
/// "_SERVICEPAGERDUTY_SEVERITIES=$_SERVICEPAGERDUTY_SEVERITIES$"`, as conf.d/nagios-pagerduty.cfg
/// shows) reaches the handler empty for every service that does not define it, and so does an
/// Icinga 2 `env` entry whose `$service.vars.…$` is not set. Empty is "not set": the operator's
/// settings apply (before, `severities` became empty, and the problem was skipped: no page), and
/// an empty service variable does not hide the host's.
#[test]
fn nagios_and_icinga_custom_variables_passed_empty_are_not_set() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let fields = |host: &str, state: &str| {
        vec![
            "--from".to_string(),
            "nagios".to_string(),
            "--field".to_string(),
            "NOTIFICATIONTYPE=PROBLEM".to_string(),
            "--field".to_string(),
            format!("HOSTNAME={host}"),
            "--field".to_string(),
            "SERVICEDESC=HTTP".to_string(),
            "--field".to_string(),
            format!("SERVICESTATE={state}"),
            "--field".to_string(),
            "SERVICEOUTPUT=HTTP down".to_string(),
            "--field".to_string(),
            "_SERVICEPAGERDUTY_SEVERITIES=".to_string(),
            "--field".to_string(),
            "_SERVICEPAGERDUTY_PAGER_TEAM=".to_string(),
        ]
    };
    let args = fields("web-01", "WARNING");
    let r = run_env(&sb, &fake, &args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    ok(&r);
    assert!(!r.stderr.contains("skipped") && !r.stderr.contains("ignored"), "{}", r.stderr);
    assert_eq!(fake.events().len(), 1, "the warning pages, as the operator's severities say: {}", r.stderr);

    // The host's variable applies when the service's is empty.
    let mut args = fields("web-02", "WARNING");
    args.extend(["--field".to_string(), "_HOSTPAGERDUTY_SEVERITIES=critical".to_string()]);
    let r = run_env(&sb, &fake, &args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    ok(&r);
    assert!(r.stderr.contains("skipped web-02/HTTP: severity warning is not in severities [critical]"), "{}", r.stderr);

    // Icinga 2's env block: the same.
    let r = run_env(
        &sb,
        &fake,
        &["--from", "icinga"],
        &[
            ("NOTIFICATIONTYPE", "PROBLEM"),
            ("HOSTNAME", "web-03"),
            ("SERVICENAME", "http"),
            ("SERVICESTATE", "WARNING"),
            ("SERVICEOUTPUT", "down"),
            ("_SERVICEPAGERDUTY_SEVERITIES", ""),
        ],
    );
    ok(&r);
    assert_eq!(fake.events().len(), 2, "{}", r.stderr);
    fake.assert_no_violations();
}

/// What a real Nagios 4.4 (Debian's nagios4 4.4.6) passes for `--field
/// "_SERVICEPAGERDUTY_<SETTING>=$_SERVICEPAGERDUTY_<SETTING>$"` of a service without the
/// variable: it leaves the macro unexpanded and runs the command through a shell, which makes
/// the field `$`. That `$`, like the macro left as written, is not set: the operator's templates
/// apply and no label is made of it (before, every such service's dedup key and summary were
/// `$`, one incident for all of them, and the operator's `severities` came with a warning that
/// an invalid override was ignored).
#[test]
fn nagios_custom_variables_nagios_left_unexpanded_are_not_set() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let page = |service: &str| {
        let fields = [
            "NOTIFICATIONTYPE=PROBLEM".to_string(),
            "HOSTNAME=web-01".to_string(),
            format!("SERVICEDESC={service}"),
            "SERVICESTATE=WARNING".to_string(),
            "SERVICEOUTPUT=slow".to_string(),
            "_SERVICEPAGERDUTY_DEDUP_KEY_TEMPLATE=$".to_string(),
            "_SERVICEPAGERDUTY_SUMMARY_TEMPLATE=$_SERVICEPAGERDUTY_SUMMARY_TEMPLATE$".to_string(),
            "_SERVICEPAGERDUTY_SEVERITIES=$".to_string(),
            "_HOSTPAGERDUTY_PAGER_TEAM= $ ".to_string(),
            "_SERVICETEAM=$".to_string(),
            "_HOSTRACK=$_HOSTRACK$".to_string(),
            "_SERVICEOWNER=storage".to_string(),
        ];
        let args = crate::util::nagios_fields(&fields);
        let r = run_env(&sb, &fake, &args, &[]);
        ok(&r);
        assert!(!r.stderr.contains("ignored") && !r.stderr.contains("warn"), "{}", r.stderr);
    };
    page("HTTP");
    page("DISK");
    fake.assert_no_violations();
    let ev = fake.events();
    let keys: Vec<&str> = ev.iter().filter_map(|e| e["dedup_key"].as_str()).collect();
    assert_eq!(keys, ["web-01/HTTP", "web-01/DISK"]);
    assert_eq!(ev[0]["payload"]["summary"], "web-01/HTTP: slow");
    assert_eq!(ev[0]["payload"]["custom_details"]["labels"], json!({"owner": "storage"}));
}

/// Nagios 4 runs notification commands in parallel, so the PROBLEM and the RECOVERY of one
/// second (a passive result CRITICAL, then OK) can reach the handler in either order, with the
/// same `$TIMET$`. Their `$SERVICEEVENTID$` (`$HOSTEVENTID$` for a host) says which state
/// change came last: a PROBLEM arriving after its own RECOVERY is superseded instead of
/// reopening the incident (it was sent, and the incident left open). Without event ids, one
/// second's events are applied as they come.
#[test]
fn nagios_problem_after_its_recovery_of_the_same_second_is_superseded_by_the_event_id() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let t = (crate::util::unix_now() - 5).to_string();
    let notify = |fields: &[&str]| {
        let args = crate::util::nagios_fields(fields);
        let r = run_env(&sb, &fake, &args, &[("NAGIOS_TIMET", t.as_str())]);
        assert_eq!(r.code, Some(0), "{r:?}");
        r
    };
    let service = |kind: &str, state: &str, id: &str| {
        notify(&[&format!("NOTIFICATIONTYPE={kind}"), "HOSTNAME=web-01", "SERVICEDESC=queue", &format!("SERVICESTATE={state}"), id])
    };
    let host = |kind: &str, state: &str, id: &str| {
        notify(&[&format!("NOTIFICATIONTYPE={kind}"), "HOSTNAME=db-01", &format!("HOSTSTATE={state}"), id])
    };
    service("RECOVERY", "OK", "SERVICEEVENTID=11");
    let r = service("PROBLEM", "CRITICAL", "SERVICEEVENTID=10");
    assert!(r.stderr.contains("superseded"), "{}", r.stderr);
    host("RECOVERY", "UP", "HOSTEVENTID=21");
    let r = host("PROBLEM", "DOWN", "HOSTEVENTID=20");
    assert!(r.stderr.contains("superseded"), "{}", r.stderr);
    // In their own order, both go out; so does a later state change of the same second.
    service("PROBLEM", "CRITICAL", "SERVICEEVENTID=12");
    service("RECOVERY", "OK", "SERVICEEVENTID=13");
    fake.assert_no_violations();
    let pages: Vec<(String, String)> =
        fake.events().iter().map(|e| (e["event_action"].as_str().unwrap().into(), e["dedup_key"].as_str().unwrap().into())).collect();
    let want = [("resolve", "web-01/queue"), ("resolve", "db-01/host"), ("trigger", "web-01/queue"), ("resolve", "web-01/queue")];
    assert_eq!(pages, want.map(|(a, k)| (a.to_string(), k.to_string())));
}

#[test]
fn a_nagios_downtime_end_resolves_what_was_paged_and_nothing_else() {
    // Every service of a downtime gets DOWNTIMEEND when it ends, paged or not: resolves for all
    // of them reach PagerDuty's rate limit per routing key and hold back real triggers.
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let service = |name: &'static str, kind: &'static str, state: &'static str| {
        vec![
            ("NAGIOS_HOSTNAME", "web-01"),
            ("NAGIOS_SERVICEDESC", name),
            ("NAGIOS_NOTIFICATIONTYPE", kind),
            ("NAGIOS_SERVICESTATE", state),
            ("NAGIOS_SERVICEOUTPUT", "output"),
        ]
    };
    ok(&run_env(&sb, &fake, &["--from", "nagios"], &service("HTTP", "PROBLEM", "CRITICAL")));
    let r = run_env(&sb, &fake, &["--from", "nagios"], &service("SSH", "DOWNTIMEEND", "OK"));
    ok(&r);
    assert!(r.stderr.contains("nothing is open for it in the ledger"), "{}", r.stderr);
    ok(&run_env(&sb, &fake, &["--from", "nagios"], &service("HTTP", "DOWNTIMEEND", "OK")));
    fake.assert_no_violations();
    let sent: Vec<(String, String)> = fake
        .events()
        .iter()
        .map(|e| (e["event_action"].as_str().unwrap_or("").into(), e["dedup_key"].as_str().unwrap_or("").into()))
        .collect();
    assert_eq!(sent, [("trigger".to_string(), "web-01/HTTP".to_string()), ("resolve".into(), "web-01/HTTP".into())]);
}

#[test]
fn a_nagios_downtime_end_is_sent_when_the_ledger_cannot_say_or_the_operator_mapped_it() {
    // "Only what was paged" needs the ledger: without it a paged problem that recovered in the
    // downtime would stay open (a duplicate resolve beats that), and the operator's own
    // notification_types mapping is theirs.
    let env = [
        ("NAGIOS_HOSTNAME", "web-01"),
        ("NAGIOS_SERVICEDESC", "SMTP"),
        ("NAGIOS_NOTIFICATIONTYPE", "DOWNTIMEEND"),
        ("NAGIOS_SERVICESTATE", "OK"),
        ("NAGIOS_SERVICEOUTPUT", "output"),
    ];
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let not_a_dir = sb.dir.path().join("state-is-a-file");
    std::fs::write(&not_a_dir, b"").expect("write");
    let state_dir = ["--from", "nagios", "--state-dir", not_a_dir.to_str().unwrap_or_default()];
    // --explain says what the real run does.
    let explained = run_env(&sb, &fake, &[&state_dir[..], &["--explain"]].concat(), &env);
    assert!(explained.stdout.contains("ledger verdict: send the resolve"), "{}", explained.stdout);
    let r = run_env(&sb, &fake, &state_dir, &env);
    ok(&r);
    let mapped = Sandbox::new(BIN);
    mapped.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY, "notification_types": {"DOWNTIMEEND": "resolve"}}}));
    ok(&run_env(&mapped, &fake, &["--from", "nagios"], &env));
    // A record that cannot be read (not JSON) says nothing either.
    std::fs::write(sb.state_file("pagerduty", "web-01%2FSMTP.json"), b"{not json").expect("write");
    let r = run_env(&sb, &fake, &["--from", "nagios"], &env);
    ok(&r);
    assert!(r.stderr.contains("is unreadable"), "{}", r.stderr);
    fake.assert_no_violations();
    let actions: Vec<Value> = fake.events().iter().map(|e| e["event_action"].clone()).collect();
    assert_eq!(actions, [json!("resolve"), json!("resolve"), json!("resolve")], "{}", r.stderr);
}

/// With `enable_environment_macros=1` Nagios hands a notification command every custom
/// variable of the host and the service, and sites keep credentials there (`_SNMP_COMMUNITY`,
/// `_DB_PASSWORD` …, which Icinga Web 2 hides by name). Custom variables that are not settings
/// become labels, which handler-pagerduty sends in `custom_details`: those credentials went to
/// PagerDuty. Names that look like credentials are no labels now; other labels still go.
#[test]
fn nagios_custom_variables_holding_credentials_are_not_sent_to_the_service() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let r = run_env(
        &sb,
        &fake,
        &["--from", "nagios"],
        &[
            ("NAGIOS_NOTIFICATIONTYPE", "PROBLEM"),
            ("NAGIOS_HOSTNAME", "db-01"),
            ("NAGIOS_SERVICEDESC", "MYSQL"),
            ("NAGIOS_SERVICESTATE", "CRITICAL"),
            ("NAGIOS_SERVICEOUTPUT", "MYSQL CRITICAL - cannot connect"),
            ("NAGIOS__HOSTSNMP_COMMUNITY", "c0mmunity-s3cret"),
            ("NAGIOS__HOSTSNMPV3_PRIVPASS", "pr1v-s3cret"),
            ("NAGIOS__SERVICEMYSQL_PASSWORD", "hunter2-s3cret"),
            ("NAGIOS__SERVICEAPI_TOKEN", "t0ken-s3cret"),
            ("NAGIOS__SERVICEDB_URL", "mysql://app:hunter2-s3cret@db-01:3306/shop"),
            ("NAGIOS__HOSTTEAM", "dba"),
        ],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["payload"]["custom_details"]["labels"], json!({"team": "dba"}));
    let sent = ev[0].to_string();
    assert!(!sent.contains("s3cret"), "a credential went to PagerDuty: {sent}");
}

#[test]
fn nagios_fields_host_notification_acknowledgement_and_downtime() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let field_run = |fields: &[&str], env: &[(&str, &str)]| run_env(&sb, &fake, &crate::util::nagios_fields(fields), env);
    // Fields win over the environment.
    let r = field_run(
        &["NOTIFICATIONTYPE=PROBLEM", "HOSTNAME=db-01", "HOSTSTATE=DOWN", "HOSTOUTPUT=PING CRITICAL - Packet loss = 100%"],
        &[("NAGIOS_HOSTNAME", "not-this-one")],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = field_run(
        &["NOTIFICATIONTYPE=ACKNOWLEDGEMENT", "HOSTNAME=db-01", "HOSTSTATE=DOWN", "HOSTACKAUTHOR=alice", "HOSTACKCOMMENT=rebooting"],
        &[],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("acknowledged db-01/host"), "{}", r.stderr);
    let r = field_run(&["NOTIFICATIONTYPE=DOWNTIMESTART", "HOSTNAME=db-01", "HOSTSTATE=DOWN"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("DOWNTIMESTART notifications are not paged"), "{}", r.stderr);
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["dedup_key"], "db-01/host");
    assert_eq!(ev[0]["payload"]["source"], "db-01");
    assert_eq!(ev[0]["payload"]["severity"], "critical");
    assert_eq!(ev[1]["event_action"], "acknowledge");
}

#[test]
fn icinga2_names_and_japanese_output() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let r = run_env(
        &sb,
        &fake,
        &["--from", "icinga", "--field", "host.name=app-tokyo-01", "--field", "service.name=disk", "--field", "service.state=WARNING"],
        &[("NOTIFICATIONTYPE", "Problem"), ("SERVICEOUTPUT", "ディスク使用率 85% です")],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev[0]["dedup_key"], "app-tokyo-01/disk");
    assert_eq!(ev[0]["payload"]["summary"], "app-tokyo-01/disk: ディスク使用率 85% です");
    assert_eq!(ev[0]["payload"]["severity"], "warning");
}

const ZABBIX_PROBLEM: &str = "name:Zabbix agent on web-01 is unreachable for 5 minutes\nid:13502\nstatus:PROBLEM\nhostname:web-01\nip:10.0.0.5\nvalue:1\nevent_id:8123\nseverity:High\nurl:https://zabbix.example.com/tr_events.php?triggerid=13502&eventid=8123\n";

#[test]
fn zabbix_problem_and_recovery_meet_and_sendto_is_the_routing_key() {
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(BIN); // no routing key in settings: SENDTO carries it
    let r = run_env(&sb, &fake, &["--from", "zabbix", ROUTING_KEY, "PROBLEM", ZABBIX_PROBLEM], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let ok = ZABBIX_PROBLEM.replace("status:PROBLEM", "status:OK").replace("value:1", "value:0");
    let r = run_env(&sb, &fake, &["--from", "zabbix", ROUTING_KEY, "OK", &ok], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["routing_key"], ROUTING_KEY);
    assert_eq!(ev[0]["dedup_key"], "13502-web-01");
    assert_eq!(ev[0]["payload"]["severity"], "error");
    assert_eq!(ev[0]["payload"]["custom_details"]["url"], "https://zabbix.example.com/tr_events.php?triggerid=13502&eventid=8123");
    assert_eq!(
        ev[0]["links"],
        json!([{"href": "https://zabbix.example.com/tr_events.php?triggerid=13502&eventid=8123", "text": "View in Zabbix"}])
    );
    assert_eq!((ev[1]["event_action"].as_str(), ev[1]["dedup_key"].as_str()), (Some("resolve"), Some("13502-web-01")));
}

/// One Zabbix action notifying two users (two teams), each user's media "Send to" holding
/// their team's routing key (conf.d/zabbix-pagerduty.md: "each Zabbix user (team) then pages
/// its own service"): Zabbix runs the alert script once per user with the same message. Both
/// services get the trigger and the resolve. The second team's trigger was skipped as "already
/// notified 0s ago": the ledger knew the incident key, not where it had been paged. A user
/// without a key in "Send to" pages the settings' routing key, a third service.
#[test]
fn a_zabbix_action_notifying_two_teams_pages_both_and_resolves_both() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let (ops, dba) = ("0psTeamR0ut1ngKey000000000000001", "DbaTeamR0ut1ngKey000000000000002");
    let ok = ZABBIX_PROBLEM.replace("status:PROBLEM", "status:OK").replace("value:1", "value:0");
    for (subject, message) in [("PROBLEM", ZABBIX_PROBLEM), ("OK", ok.as_str())] {
        for send_to in [ops, dba, "oncall@example.com"] {
            let r = run_env(&sb, &fake, &["--from", "zabbix", send_to, subject, message], &[]);
            assert_eq!(r.code, Some(0), "{r:?}");
            assert!(!r.stderr.contains("skipped"), "{send_to} {subject}: {}", r.stderr);
            assert!(!r.stderr.contains(ops) && !r.stderr.contains(dba), "a routing key in the log: {}", r.stderr);
            // The delivery line names the ledger's key too when it is the team's own, as
            // --list and --explain show it.
            let named = r.stderr.contains("13502-web-01 (ledger key 13502-web-01@");
            assert_eq!(named, send_to != "oncall@example.com", "{send_to} {subject}: {}", r.stderr);
        }
    }
    fake.assert_no_violations();
    let pages: Vec<(String, String, String)> = fake
        .events()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("routing_key"), s("event_action"), s("dedup_key"))
        })
        .collect();
    let want: Vec<(String, String, String)> = ["trigger", "resolve"]
        .iter()
        .flat_map(|a| [ops, dba, ROUTING_KEY].map(|k| (k.to_string(), a.to_string(), "13502-web-01".to_string())))
        .collect();
    assert_eq!(pages, want);
}

/// A user's media "Send to" holding a routing key with a character missing or too many (a
/// typo) paged the settings' routing key, another team's service, without a word. It still
/// does (a page beats none), with a warning that never shows the value; an email address
/// there is no typo of a key, and says nothing.
#[test]
fn a_zabbix_sendto_that_is_nearly_a_routing_key_is_warned_about() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    for (send_to, warned) in
        [("0psTeamR0ut1ngKey00000000000001", true), ("0psTeamR0ut1ngKey0000000000000001", true), ("oncall@example.com", false)]
    {
        let r = run_env(&sb, &fake, &["--from", "zabbix", send_to, "PROBLEM", ZABBIX_PROBLEM], &[]);
        assert_eq!(r.code, Some(0), "{r:?}");
        let warning = format!("Zabbix SENDTO holds {} letters and digits, not a routing key's 32", send_to.len());
        assert_eq!(r.stderr.contains(&warning), warned, "{send_to}: {}", r.stderr);
        assert!(!r.stderr.contains(send_to) || !warned, "the value in the log: {}", r.stderr);
    }
    // One incident, paged once, to the settings' routing key (a key taken from SENDTO would be
    // another service's page, and another ledger key).
    let keys: Vec<Value> = fake.events().iter().map(|e| e["routing_key"].clone()).collect();
    assert_eq!(keys, [json!(ROUTING_KEY)]);
    fake.assert_no_violations();
}

#[test]
fn a_zabbix_url_line_that_is_no_url_is_no_pagerduty_link() {
    // `links[].href` is `format: url` in the Events API v2 spec: a `{TRIGGER.URL}` holding
    // words went out as a link, an event PagerDuty may refuse for good. It stays in
    // custom_details; the link is left out.
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(BIN);
    let message =
        ZABBIX_PROBLEM.replace("url:https://zabbix.example.com/tr_events.php?triggerid=13502&eventid=8123", "url:see runbook DB-7");
    let r = run_env(&sb, &fake, &["--from", "zabbix", ROUTING_KEY, "PROBLEM", &message], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev[0].get("links"), None, "{}", ev[0]);
    assert_eq!(ev[0]["payload"]["custom_details"]["url"], "see runbook DB-7");
}

#[cfg(unix)]
#[test]
fn invalid_utf8_in_arguments_still_pages() {
    // A mis-encoded byte in a Zabbix message or a Nagios --field must not become a usage error
    // (exit 2) that loses the page: it is read as the Latin-1 character of its value, like
    // the NAGIOS_* environment and stdin.
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(BIN);
    let mut message = ZABBIX_PROBLEM.replace("name:Zabbix agent", "name:Zabbix \u{FFFD}agent").into_bytes();
    // U+FFFD's three bytes, replaced by one that is not UTF-8.
    let at = message.windows(7).position(|w| w == b"Zabbix ").unwrap() + 7;
    message.splice(at..at + 3, [0xff]);
    let mut cmd = sb.command(&["--api-url", &fake.url, "--from", "zabbix", ROUTING_KEY, "PROBLEM"]);
    cmd.arg(OsStr::from_bytes(&message));
    let r = run_command(cmd, b"");
    assert_eq!(r.code, Some(0), "{r:?}");

    let sb = sandbox();
    let mut cmd = sb.command(&["--api-url", &fake.url, "--from", "nagios", "--field", "NOTIFICATIONTYPE=PROBLEM"]);
    cmd.args(["--field", "SERVICEDESC=disk", "--field", "SERVICESTATE=CRITICAL"]);
    cmd.arg("--field").arg(OsStr::from_bytes(b"HOSTNAME=web\xff01"));
    let r = run_command(cmd, b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev.len(), 2);
    assert!(ev[0]["payload"]["summary"].as_str().unwrap().contains("Zabbix \u{FF}agent"), "{}", ev[0]);
    assert_eq!(ev[1]["dedup_key"], "web\u{FF}01/disk");
}

#[test]
fn zabbix_escalation_cancelled_resolves() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    assert_eq!(run_env(&sb, &fake, &["--from", "zabbix", "ops", "trigger", ZABBIX_PROBLEM], &[]).code, Some(0));
    let cancelled = format!("{ZABBIX_PROBLEM}NOTE: Escalation cancelled: host is in maintenance.");
    let r = run_env(&sb, &fake, &["--from", "zabbix", "ops", "trigger", &cancelled], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let ev = fake.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["routing_key"], ROUTING_KEY, "a SENDTO that is not a key leaves the setting alone");
    assert_eq!(ev[1]["event_action"], "resolve");
}

/// What a Zabbix server sends when it cancels an escalation (a host, item, trigger or action
/// disabled mid-escalation): the last alert's subject, and its message after a note, as
/// `escalator.c` writes it: Zabbix 5.x `NOTE: Escalation cancelled: <why>\nLast message
/// sent:\n<message>`, Zabbix 6.0 and later the same with `canceled`. Both resolve the problem the
/// message was about; before, the 6.0 spelling was read as the problem again (a repeat).
#[test]
fn zabbix_escalation_canceled_resolves_in_every_zabbix_spelling() {
    for fixture in ["escalation-cancelled-5.0", "escalation-canceled-6.0"] {
        let fake = FakePagerDuty::start(&[]);
        let sb = sandbox();
        let problem = String::from_utf8(crate::util::read_fixture("zabbix/problem-high.txt")).unwrap();
        ok(&run_env(&sb, &fake, &["--from", "zabbix", "ops", "trigger", &problem], &[]));
        let canceled = String::from_utf8(crate::util::read_fixture(&format!("zabbix/{fixture}.txt"))).unwrap();
        let r = run_env(&sb, &fake, &["--from", "zabbix", "ops", "trigger", &canceled], &[]);
        ok(&r);
        fake.assert_no_violations();
        let ev = fake.events();
        let actions: Vec<(&str, &str)> =
            ev.iter().map(|e| (e["event_action"].as_str().unwrap(), e["dedup_key"].as_str().unwrap())).collect();
        assert_eq!(actions, [("trigger", "23504-web-01"), ("resolve", "23504-web-01")], "{fixture}: {}", r.stderr);
    }
}

#[test]
fn mackerel_action_pages_on_state_changes_only() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let step = |status: &str, previous: &str| {
        run_env(
            &sb,
            &fake,
            &["--from", "mackerel", "--check", "check-nginx", "--entity", "web-01"],
            &[("MACKEREL_STATUS", status), ("MACKEREL_PREVIOUS_STATUS", previous), ("MACKEREL_CHECK_MESSAGE", "nginx: connection refused")],
        )
    };
    for (status, previous, pages) in
        [("OK", "", 0), ("OK", "OK", 0), ("CRITICAL", "OK", 1), ("CRITICAL", "CRITICAL", 1), ("OK", "CRITICAL", 2), ("OK", "OK", 2)]
    {
        let r = step(status, previous);
        assert_eq!(r.code, Some(0), "{status} after {previous:?}: {r:?}");
        assert_eq!(fake.events().len(), pages, "{status} after {previous:?}: {}", r.stderr);
        if status == previous {
            assert!(r.stderr.is_empty(), "unchanged status logs only at debug: {}", r.stderr);
        }
    }
    let ev = fake.events();
    assert_eq!((ev[0]["event_action"].as_str(), ev[1]["event_action"].as_str()), (Some("trigger"), Some("resolve")));
    assert_eq!(ev[0]["dedup_key"], "web-01/check-nginx");
    fake.assert_no_violations();
}

/// Zabbix lets its administrators rename the six severities (Administration → General →
/// Trigger displaying options), and `{TRIGGER.SEVERITY}` is the name as configured
/// (`zbx_config_get_trigger_severity_name`): `重度の障害`, `P1`. Such a name in the documented
/// template's `severity:` line refused the page (exit 65, which Zabbix retries, then gives up):
/// every problem of such a site was lost. Now the page goes out: by `nseverity:` (the template's
/// `{TRIGGER.NSEVERITY}`, which no renaming changes) when the message has it, else as an
/// unreadable severity (critical), with a line saying what to add to the template.
#[test]
fn a_zabbix_severity_renamed_by_the_administrator_still_pages() {
    let problem = String::from_utf8(crate::util::read_fixture("zabbix/problem-high.txt")).unwrap();
    assert!(problem.contains("severity:High\nnseverity:4\n"), "{problem}");
    for (message, severity) in [
        (problem.replace("severity:High\n", "severity:重度の障害\n"), "error"),
        // A template without `nseverity:` (as documented before it was added).
        (problem.replace("severity:High\nnseverity:4\n", "severity:P1\n"), "critical"),
    ] {
        let fake = FakePagerDuty::start(&[]);
        let sb = sandbox();
        let r = run_env(&sb, &fake, &["--from", "zabbix", "ops", "trigger", &message], &[]);
        ok(&r);
        fake.assert_no_violations();
        let ev = fake.events();
        assert_eq!(ev.len(), 1, "{message}: {}", r.stderr);
        assert_eq!((ev[0]["event_action"].as_str(), ev[0]["dedup_key"].as_str()), (Some("trigger"), Some("23504-web-01")));
        assert_eq!(ev[0]["payload"]["severity"], severity, "{message}");
        if !message.contains("nseverity") {
            assert!(r.stderr.contains("nseverity:{TRIGGER.NSEVERITY}"), "says what to add to the template: {}", r.stderr);
            assert!(r.stderr.contains("read as critical"), "{}", r.stderr);
            // Its recovery is sent as any other, and says only what to add.
            let recovery = message.replace("status:PROBLEM", "status:OK").replace("value:1", "value:0");
            let r = run_env(&sb, &fake, &["--from", "zabbix", "ops", "resolve", &recovery], &[]);
            ok(&r);
            assert_eq!(fake.events().last().map(|e| e["event_action"].clone()), Some(json!("resolve")));
            assert!(r.stderr.contains("nseverity:{TRIGGER.NSEVERITY}") && !r.stderr.contains("critical"), "{}", r.stderr);
        }
    }
}

/// Severities renamed to names Zabbix itself uses for another severity (a site that calls its
/// levels Low, Medium, High, Critical, Emergency: Average is "High", High is "Critical") are
/// read by their number when the message has the documented template's `nseverity:` line: the
/// fixed lines before `name:` are the template's own, and the number is what no renaming
/// changes. Before, the more severe of the name and the number counted, so every Average problem
/// was read as High and every High as Disaster: the operator's `zabbix_severities` (here
/// Average not paged) and PagerDuty's severity were overridden by the administrator's names.
#[test]
fn a_zabbix_severity_renamed_to_another_default_name_is_read_by_its_number() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    sb.config("zz-extra.json", &json!({"pagerduty": {"zabbix_severities": {"average": "info"}}}));
    let average = String::from_utf8(crate::util::read_fixture("zabbix/problem-average.txt")).unwrap();
    let high = String::from_utf8(crate::util::read_fixture("zabbix/problem-high.txt")).unwrap();
    assert!(average.contains("severity:Average\nnseverity:3\n") && high.contains("severity:High\nnseverity:4\n"));
    let average = average.replace("severity:Average\n", "severity:High\n");
    let high = high.replace("severity:High\n", "severity:Critical\n");
    let r = run_env(&sb, &fake, &["--from", "zabbix", "ops", "trigger", &average], &[]);
    ok(&r);
    assert!(r.stderr.contains("severity info (Zabbix Average) is not in severities"), "{}", r.stderr);
    ok(&run_env(&sb, &fake, &["--from", "zabbix", "ops", "trigger", &high], &[]));
    fake.assert_no_violations();
    let ev = fake.events();
    let got: Vec<(&str, &str)> =
        ev.iter().map(|e| (e["dedup_key"].as_str().unwrap(), e["payload"]["severity"].as_str().unwrap())).collect();
    assert_eq!(got, [("23504-web-01", "error")], "only the High problem pages, as High: {}", r.stderr);
}

/// PagerDuty's classic template (`name:` first, no `nseverity:` line) on a site whose
/// administrator renamed the severities: a trigger name that embeds an item value can add an
/// `nseverity:` line before the template's own, and the template's `severity:P1` cannot be read.
/// The host's `nseverity:0` was then taken alone: the problem read as Not classified, `info`,
/// and was skipped (a host silencing its own page). Now a number beside an unreadable name in
/// that order is not trusted: the problem pages as critical, and the log says to put the fixed
/// lines first.
#[test]
fn in_the_classic_order_a_host_written_nseverity_does_not_filter_out_a_renamed_severity() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let message =
        "name:Disk usage 97%\nnseverity:0\nid:23504\nstatus:PROBLEM\nhostname:web-01\nip:10.0.0.5\nvalue:1\nevent_id:81234\nseverity:P1\n";
    let r = run_env(&sb, &fake, &["--from", "zabbix", "ops", "trigger", message], &[]);
    ok(&r);
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev.len(), 1, "paged: {}", r.stderr);
    assert_eq!((ev[0]["dedup_key"].as_str(), ev[0]["payload"]["severity"].as_str()), (Some("23504-web-01"), Some("critical")));
    assert!(r.stderr.contains("before `name:`"), "{}", r.stderr);
}

/// mackerel-agent forgets its checks' statuses when it restarts (`runChecker` starts each one
/// at `StatusUndefined`): the first action after a restart has an empty
/// `MACKEREL_PREVIOUS_STATUS`, whatever the check's status was before. A problem paged before
/// the restart (the host rebooted to fix it, the agent upgraded) that is OK at the first run
/// after it is resolved, when the ledger knows it open; before, "first run and OK" was skipped
/// and the incident stayed open for good, since the agent reports no change after that. A first
/// run OK with nothing open pages nobody, as before.
#[test]
fn mackerel_first_run_after_an_agent_restart_resolves_what_was_paged_and_nothing_else() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let step = |check: &str, status: &str, previous: &str| {
        run_env(
            &sb,
            &fake,
            &["--from", "mackerel", "--check", check, "--entity", "web-01"],
            &[("MACKEREL_STATUS", status), ("MACKEREL_PREVIOUS_STATUS", previous), ("MACKEREL_CHECK_MESSAGE", "nginx: 1 process")],
        )
    };
    ok(&step("check-nginx", "CRITICAL", "OK"));
    // The agent restarts; the check is fine again.
    let r = step("check-nginx", "OK", "");
    ok(&r);
    // Another check's first run after the restart: nothing of it was paged.
    let other = step("check-ntp", "OK", "");
    ok(&other);
    fake.assert_no_violations();
    let ev = fake.events();
    let actions: Vec<(&str, &str)> = ev.iter().map(|e| (e["event_action"].as_str().unwrap(), e["dedup_key"].as_str().unwrap())).collect();
    assert_eq!(actions, [("trigger", "web-01/check-nginx"), ("resolve", "web-01/check-nginx")], "{}", r.stderr);
    assert!(!other.stderr.contains("downtime"), "{}", other.stderr);
}

#[test]
fn mackerel_webhook_on_stdin() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let hook = json!({"orgName": "Example", "event": "alert",
        "host": {"id": "3JMx", "name": "app-01", "url": "https://mackerel.io/orgs/Example/hosts/3JMx", "status": "working"},
        "alert": {"id": "2bj", "status": "critical", "isOpen": true, "trigger": "monitor", "url": "https://mackerel.io/orgs/Example/alerts/2bj",
                  "createdAt": 1473129912693u64, "monitorName": "loadavg5", "metricLabel": "loadavg5", "metricValue": 12.5, "criticalThreshold": 10}});
    let r = sb.run(&["--api-url", &fake.url], hook.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let mut ok = hook.clone();
    ok["alert"]["status"] = "ok".into();
    let r = sb.run(&["--api-url", &fake.url], ok.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    assert_eq!(ev[0]["dedup_key"], "2bj", "the alert's id");
    assert_eq!(ev[0]["payload"]["source"], "app-01");
    assert_eq!((ev[1]["event_action"].as_str(), ev[1]["dedup_key"].as_str()), (Some("resolve"), Some("2bj")));
}

/// Mackerel's webhook carries the alert's message (a check monitor's: the check plugin's output)
/// at the top level, beside `alert`, and a service metric's alert names its service in a
/// top-level `service` object (Mackerel's "Webhook notifications" page;
/// `tests/fixtures/mackerel/`). The handler read `alert.message` and `alert.service`, which
/// Mackerel does not send: a check's page said only "nginx CRITICAL", and a service's alert was
/// paged as the organization's. An alert closed while still failing (`isOpen: false`) is over:
/// it resolves.
#[test]
fn mackerel_webhooks_as_mackerel_sends_them_carry_the_message_and_the_service() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let check: Value = serde_json::from_slice(&crate::util::read_fixture("mackerel/check-alert.json")).unwrap();
    let service: Value = serde_json::from_slice(&crate::util::read_fixture("mackerel/service-alert.json")).unwrap();
    let mut closed = check.clone();
    closed["alert"]["isOpen"] = false.into();
    closed["alert"]["closedAt"] = 1764590700.into();
    for hook in [&check, &service, &closed] {
        let r = sb.run(&["--api-url", &fake.url], hook.to_string().as_bytes());
        ok(&r);
    }
    fake.assert_no_violations();
    let ev = fake.events();
    let got: Vec<(&str, &str, &str)> = ev
        .iter()
        .map(|e| (e["event_action"].as_str().unwrap(), e["dedup_key"].as_str().unwrap(), e["payload"]["summary"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        got,
        [
            ("trigger", "4Xq7pRsTuVw", "app-01/nginx: CRITICAL: nginx is not running (0 processes)"),
            ("trigger", "4Yr8qStUvWx", "shop/checkout errors: checkout.errors 12 > 5"),
            ("resolve", "4Xq7pRsTuVw", ""),
        ]
    );
}

/// A Mackerel webhook channel posts more than alerts: its "test notification" (`sample`) when
/// the operator sets it up, and whichever other events it is set to send (a host's status, a
/// host retired, an alert group). Each was refused as an event that cannot be read ("missing
/// field `check` … not a Sensu 1.x or Sensu Go event", exit 65): now skipped with one line
/// naming the event, exit 0, nothing sent.
#[test]
fn mackerel_webhooks_that_are_not_alerts_are_skipped_by_name() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    for (event, hook) in [
        ("sample", json!({"orgName": "Example", "event": "sample", "message": "Sample Notification from Mackerel", "imageUrl": null})),
        (
            "hostStatus",
            json!({"orgName": "Example", "event": "hostStatus", "fromStatus": "working", "user": null,
            "host": {"id": "22D4", "name": "app-01", "url": "https://mackerel.io/orgs/Example/hosts/22D4", "status": "poweroff"}}),
        ),
        (
            "alertGroup",
            json!({"orgName": "Example", "event": "alertGroup", "memo": "",
            "alertGroupSetting": {"id": "3", "name": "web"}, "alertGroup": {"id": "4", "status": "CRITICAL", "createdAt": 1473129912693u64}}),
        ),
    ] {
        let r = sb.run(&["--api-url", &fake.url], hook.to_string().as_bytes());
        assert_eq!(r.code, Some(0), "{event}: {r:?}");
        assert!(r.stderr.contains(&format!("skipped Example/{event}: Mackerel webhook event")), "{event}: {}", r.stderr);
    }
    assert!(fake.events().is_empty());
}

/// A Sensu Go event may carry metrics and no check (StatsD, a metrics-only result); one handed
/// to a pager by a pipeline exited 65 with "missing field `check`; fix the event the monitoring
/// system sends", though Sensu sent a valid event. Now a skip saying what to change.
#[test]
fn a_sensu_go_metrics_event_without_a_check_is_skipped_with_the_reason() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let event = json!({"entity": {"entity_class": "agent", "metadata": {"name": "web-01", "namespace": "default"}},
        "metrics": {"handlers": ["influxdb"], "points": [{"name": "statsd.counter", "value": 1, "timestamp": 1552506033u64, "tags": []}]},
        "timestamp": 1552506033u64, "metadata": {"namespace": "default"}});
    let r = sb.run(&["--api-url", &fake.url], event.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("skipped web-01/metrics: a metrics event without a check pages nobody"), "{}", r.stderr);
    assert!(fake.events().is_empty());
}

/// A mackerel-agent action whose `--check` or `--entity` came out empty (an unset variable in
/// the action command) paged as incident `/`, or `web-01/`, shared by every such check: one
/// check's recovery resolved another's failure. Refused now (exit 2), as `--from cli` does.
#[test]
fn a_mackerel_action_with_an_empty_check_or_entity_is_a_usage_error() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    for flags in [["--check", "", "--entity", "web-01"], ["--check", "nginx", "--entity", " "]] {
        let mut args = vec!["--from", "mackerel"];
        args.extend(flags);
        let r = run_env(&sb, &fake, &args, &[("MACKEREL_STATUS", "CRITICAL"), ("MACKEREL_PREVIOUS_STATUS", "OK")]);
        assert_eq!(r.code, Some(2), "{flags:?}: {r:?}");
        assert!(r.stderr.contains("is empty; give a name"), "{}", r.stderr);
    }
    // Tried by hand, outside mackerel-agent (no MACKEREL_STATUS): still the usage error README
    // promises, not exit 65 for the missing variable.
    let r = run_env(&sb, &fake, &["--from", "mackerel", "--check", ""], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--check is empty; give a name"), "{}", r.stderr);
    assert!(fake.events().is_empty());
}

#[test]
fn malformed_environment_input_exits_65() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let cases: Vec<(Vec<&str>, Vec<(&str, &str)>, &str)> = vec![
        (vec!["--from", "nagios"], vec![("NAGIOS_HOSTNAME", "h")], "missing macro NOTIFICATIONTYPE"),
        (
            vec!["--from", "nagios"],
            vec![
                ("NAGIOS_NOTIFICATIONTYPE", "PROBLEM"),
                ("NAGIOS_HOSTNAME", "h"),
                ("NAGIOS_SERVICEDESC", "s"),
                ("NAGIOS_SERVICESTATE", "ON FIRE"),
            ],
            "\"ON FIRE\"",
        ),
        (vec!["--from", "zabbix", "only-one"], vec![], "expected 3 arguments"),
        (vec!["--from", "zabbix", "x", "trigger", "hostname:h"], vec![], "no `name:` line"),
        (vec!["--from", "mackerel", "--check", "c"], vec![], "MACKEREL_STATUS is not set"),
    ];
    for (args, env, want) in cases {
        let r = run_env(&sb, &fake, &args, &env);
        assert_eq!(r.code, Some(65), "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    assert!(fake.events().is_empty());
}

/// The real Nagios 4 from Debian (`nagios4-core`), notifying through handler-pagerduty.
mod real_nagios {
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    const NAGIOS: &str = "/usr/sbin/nagios4";

    /// Nagios started from a temporary configuration; its process group is killed when dropped.
    struct Nagios {
        _server: crate::util::ServerProcess,
        dir: PathBuf,
    }

    impl Nagios {
        fn set_state(&self, status: u8) {
            std::fs::write(self.dir.join("svcstate"), status.to_string()).unwrap();
        }
        fn log(&self) -> String {
            std::fs::read_to_string(self.dir.join("nagios.log")).unwrap_or_default()
        }
    }

    fn available() -> bool {
        crate::util::require_program(NAGIOS, "nagios4-core")
    }

    fn start(sb: &Sandbox, notify: &str, env_macros: bool) -> Nagios {
        let dir = sb.dir.path().join("nagios");
        std::fs::create_dir_all(dir.join("checkresults")).unwrap();
        let d = dir.display();
        std::fs::write(dir.join("svcstate"), "0").unwrap();
        std::fs::write(dir.join("check.sh"), format!("#!/bin/sh\ns=$(cat {d}/svcstate)\ntouch {d}/ran\necho \"FLIP state $s\"\nexit $s\n"))
            .unwrap();
        Command::new("chmod").arg("+x").arg(dir.join("check.sh")).status().unwrap();
        std::fs::write(dir.join("resource.cfg"), "").unwrap();
        let cfg = format!(
            "log_file={d}/nagios.log\ncfg_file={d}/objects.cfg\nobject_cache_file={d}/objects.cache\nprecached_object_file={d}/objects.precache\n\
             resource_file={d}/resource.cfg\nstatus_file={d}/status.dat\nstatus_update_interval=1\ncheck_result_path={d}/checkresults\n\
             lock_file={d}/nagios.lock\ntemp_file={d}/nagios.tmp\ntemp_path={d}\nquery_socket={d}/nagios.qh\ncheck_external_commands=0\n\
             interval_length=1\nenable_environment_macros={}\nuse_syslog=0\nmax_service_check_spread=1\nmax_host_check_spread=1\n\
             service_inter_check_delay_method=n\nhost_inter_check_delay_method=n\ncheck_result_reaper_frequency=1\nenable_notifications=1\n\
             retain_state_information=0\nlog_notifications=1\nillegal_macro_output_chars=`~$&|'\"<>\nnagios_user={}\nnagios_group={}\n",
            u8::from(env_macros),
            whoami(),
            whoami_group(),
        );
        std::fs::write(dir.join("nagios.cfg"), cfg).unwrap();
        let objects = format!(
            "define timeperiod {{\n timeperiod_name 24x7\n alias 24x7\n sunday 00:00-24:00\n monday 00:00-24:00\n tuesday 00:00-24:00\n wednesday 00:00-24:00\n thursday 00:00-24:00\n friday 00:00-24:00\n saturday 00:00-24:00\n}}\n\
             define command {{\n command_name flip\n command_line {d}/check.sh\n}}\n\
             define command {{\n command_name host-ok\n command_line /bin/true\n}}\n\
             define command {{\n command_name notify-pagerduty\n command_line {notify}\n}}\n\
             define contact {{\n contact_name oncall\n service_notification_period 24x7\n host_notification_period 24x7\n service_notification_options w,u,c,r\n host_notification_options d,r\n service_notification_commands notify-pagerduty\n host_notification_commands notify-pagerduty\n}}\n\
             define host {{\n host_name test-host\n address 127.0.0.1\n check_command host-ok\n max_check_attempts 1\n check_interval 300\n notification_period 24x7\n contacts oncall\n}}\n\
             define service {{\n host_name test-host\n service_description flip\n check_command flip\n max_check_attempts 1\n check_interval 1\n retry_interval 1\n notification_interval 0\n notification_period 24x7\n notification_options w,u,c,r\n contacts oncall\n}}\n"
        );
        std::fs::write(dir.join("objects.cfg"), objects).unwrap();
        let verify = Command::new(NAGIOS).arg("-v").arg(dir.join("nagios.cfg")).output().unwrap();
        assert!(verify.status.success(), "nagios -v: {}", String::from_utf8_lossy(&verify.stdout));
        let mut command = Command::new(NAGIOS);
        command.arg(dir.join("nagios.cfg")).stdout(Stdio::null()).stderr(Stdio::null());
        Nagios { _server: crate::util::ServerProcess::start(command), dir }
    }

    fn whoami() -> String {
        String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string()
    }

    fn whoami_group() -> String {
        String::from_utf8(Command::new("id").arg("-gn").output().unwrap().stdout).unwrap().trim().to_string()
    }

    fn wait_for(fake: &FakePagerDuty, nagios: &Nagios, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let ev = fake.events();
            if ev.len() >= n {
                return ev;
            }
            assert!(
                start.elapsed() < Duration::from_secs(45),
                "waited 45 s for {n} PagerDuty events, got {}; nagios.log:\n{}",
                ev.len(),
                nagios.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn problem_then_recovery(notify_args: &str, env_macros: bool) {
        let fake = FakePagerDuty::start(&[]);
        let sb = sandbox();
        let notify = format!(
            "{BIN} --config {} --state-dir {} --spool-dir {} --api-url {} --from nagios {notify_args}",
            sb.conf_dir().display(),
            sb.state_dir().display(),
            sb.spool_dir().display(),
            fake.url
        );
        let nagios = start(&sb, &notify, env_macros);
        // The first result is OK (the state file says 0): wait until Nagios has run the check,
        // so that the change to CRITICAL is a state change it notifies.
        crate::util::wait_until(
            "the first check",
            Duration::from_secs(45),
            || nagios.dir.join("ran").exists().then_some(()),
            || nagios.log(),
        );
        nagios.set_state(2);
        let ev = wait_for(&fake, &nagios, 1);
        assert_eq!(ev[0]["event_action"], "trigger", "{ev:?}");
        assert_eq!(ev[0]["dedup_key"], "test-host/flip");
        assert_eq!(ev[0]["payload"]["severity"], "critical");
        assert_eq!(ev[0]["payload"]["summary"], "test-host/flip: FLIP state 2");
        nagios.set_state(0);
        let ev = wait_for(&fake, &nagios, 2);
        assert_eq!(ev[1]["event_action"], "resolve", "{ev:?}");
        assert_eq!(ev[1]["dedup_key"], "test-host/flip");
        fake.assert_no_violations();
    }

    #[test]
    fn nagios4_environment_macros() {
        if available() {
            problem_then_recovery("", true);
        }
    }

    #[test]
    fn nagios4_field_arguments_with_environment_macros_off() {
        if available() {
            problem_then_recovery(
                "--field \"NOTIFICATIONTYPE=$NOTIFICATIONTYPE$\" --field \"HOSTNAME=$HOSTNAME$\" --field \"SERVICEDESC=$SERVICEDESC$\" \
                 --field \"SERVICESTATE=$SERVICESTATE$\" --field \"SERVICEOUTPUT=$SERVICEOUTPUT$\" --field \"NOTIFICATIONNUMBER=$NOTIFICATIONNUMBER$\"",
                false,
            );
        }
    }
}

/// Sensu Go filters in the backend (`fatigue_check`, `not_silenced`, `is_incident`) before the
/// handler runs: whatever occurrence the pipeline lets through pages. The fixtures are events as
/// a fatigue-filtered pipeline hands them over at occurrences 1, 3, 4 and 30 (their check
/// annotations hold the `fatigue_check/*` settings that let exactly that occurrence through).
/// Even with an `occurrences` setting (sensu-plugin's minimum, a Sensu 1.x filter) none is held
/// back by the handler.
#[test]
fn sensu_go_events_page_at_whatever_occurrence_the_pipeline_lets_through() {
    for n in [1, 3, 4, 30] {
        let fake = FakePagerDuty::start(&[]);
        let sb = sandbox();
        sb.config("zz-occurrences.json", &json!({"pagerduty": {"occurrences": 5}}));
        let event = crate::util::read_fixture(&format!("sensu-go/fatigue-occurrence-{n}.json"));
        let r = sb.run(&["--api-url", fake.url.as_str()], &event);
        assert_eq!(r.code, Some(0), "occurrence {n}: {r:?}");
        fake.assert_no_violations();
        let ev = fake.events();
        assert_eq!(ev.len(), 1, "occurrence {n} must page: {}", r.stderr);
        assert_eq!(ev[0]["event_action"], "trigger");
        assert_eq!(ev[0]["dedup_key"], "webserver01/check-http");
        assert_eq!(ev[0]["payload"]["custom_details"]["occurrences"], n);
    }
}

/// Repeats of an open Sensu Go incident are suppressed by the ledger's `refresh` only: in one
/// state directory occurrence 1 pages, 3, 4 and 30 (all within `refresh`) are skipped as already
/// notified, never as "only handling every N occurrences"; with `refresh` 0 each one pages.
#[test]
fn sensu_go_repeats_are_suppressed_by_the_ledger_refresh_only() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    let mut logs = String::new();
    for n in [1, 3, 4, 30] {
        let event = crate::util::read_fixture(&format!("sensu-go/fatigue-occurrence-{n}.json"));
        let r = sb.run(&["--api-url", fake.url.as_str()], &event);
        assert_eq!(r.code, Some(0), "{r:?}");
        logs.push_str(&r.stderr);
    }
    assert_eq!(fake.events().len(), 1, "{logs}");
    assert_eq!(logs.matches("already notified").count(), 3, "{logs}");
    assert!(!logs.contains("only handling every"), "{logs}");

    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    sb.config("zz-refresh.json", &json!({"pagerduty": {"refresh": 0}}));
    for n in [1, 3, 4, 30] {
        let event = crate::util::read_fixture(&format!("sensu-go/fatigue-occurrence-{n}.json"));
        let r = sb.run(&["--api-url", fake.url.as_str()], &event);
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    let occurrences: Vec<Value> = fake.events().iter().map(|e| e["payload"]["custom_details"]["occurrences"].clone()).collect();
    assert_eq!(occurrences, [json!(1), json!(3), json!(4), json!(30)]);
}

/// Zabbix messages at each of the six severities (`tests/fixtures/zabbix/`), through
/// handler-pagerduty's default settings: Not classified and Information map to `info`, which is
/// not in the default `severities`, so they are skipped; Warning and Average page as warning,
/// High as error, Disaster as critical. `zabbix_severities` separates Warning from Average, and
/// `info` in `severities` pages informational problems.
#[test]
fn zabbix_six_severities_are_filterable() {
    let slugs = ["not-classified", "information", "warning", "average", "high", "disaster"];
    let run_all = |extra: Option<Value>| -> (Vec<String>, Vec<Value>) {
        let fake = FakePagerDuty::start(&[]);
        let sb = sandbox();
        if let Some(extra) = extra {
            sb.config("zz-extra.json", &json!({"pagerduty": extra}));
        }
        let mut paged = Vec::new();
        let mut logs = String::new();
        for slug in slugs {
            let message = String::from_utf8(crate::util::read_fixture(&format!("zabbix/problem-{slug}.txt"))).unwrap();
            let before = fake.events().len();
            let r = run_env(&sb, &fake, &["--from", "zabbix", "ops", "trigger", &message], &[]);
            assert_eq!(r.code, Some(0), "{slug}: {r:?}");
            logs.push_str(&r.stderr);
            if fake.events().len() > before {
                paged.push(slug.to_string());
            }
        }
        fake.assert_no_violations();
        assert!(
            logs.contains("severity info (Zabbix Information) is not in severities") || paged.contains(&"information".to_string()),
            "{logs}"
        );
        (paged, fake.events())
    };
    let (paged, events) = run_all(None);
    assert_eq!(paged, ["warning", "average", "high", "disaster"]);
    let sev: Vec<&str> = events.iter().map(|e| e["payload"]["severity"].as_str().unwrap()).collect();
    assert_eq!(sev, ["warning", "warning", "error", "critical"]);
    assert_eq!(
        events[0]["payload"]["summary"], "web-01/Free disk space is less than 20% on volume /: 18.2 %",
        "the name once, then the item value"
    );

    let (paged, _) = run_all(Some(json!({"zabbix_severities": {"warning": "info"}})));
    assert_eq!(paged, ["average", "high", "disaster"]);

    let (paged, events) = run_all(Some(json!({"severities": ["info", "warning", "critical"]})));
    assert_eq!(paged, slugs);
    assert_eq!(events[1]["payload"]["severity"], "info");

    // Every default spelled out changes nothing.
    let (paged, _) = run_all(Some(json!({"zabbix_severities": {
        "not_classified": "info", "information": "info", "warning": "warning",
        "average": "warning", "high": "critical", "disaster": "critical"}})));
    assert_eq!(paged, ["warning", "average", "high", "disaster"]);

    let sb = sandbox();
    sb.config("zz-bad.json", &json!({"pagerduty": {"zabbix_severities": {"warning": "page"}}}));
    let message = String::from_utf8(crate::util::read_fixture("zabbix/problem-warning.txt")).unwrap();
    let r = sb.run(&["--dry-run", "--from", "zabbix", "ops", "trigger", &message], b"");
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("zabbix_severities.warning"), "{}", r.stderr);
}

/// The settings file shipped as conf.d/pagerduty.json (only its routing key filled in) keeps
/// Zabbix's `{TRIGGER.ID}-{HOST.NAME}` key: a trigger whose name embeds `{ITEM.LASTVALUE}`
/// (so problem and recovery differ in name) is resolved by its recovery.
#[test]
fn shipped_pagerduty_settings_keep_zabbix_keys() {
    let fake = FakePagerDuty::start(&[]);
    let sb = Sandbox::new(BIN);
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf.d/pagerduty.json")).unwrap();
    let shipped: Value = serde_json::from_str(&shipped.replace("REPLACE_WITH_YOUR_32_CHAR_INTEGRATION_KEY", ROUTING_KEY)).unwrap();
    sb.config("pagerduty.json", &shipped);
    let problem = String::from_utf8(crate::util::read_fixture("zabbix/problem-warning.txt"))
        .unwrap()
        .replace("name:Free disk space is less than 20% on volume /", "name:Free disk space is 18.2 % on volume /");
    let recovery = problem
        .replace("status:PROBLEM", "status:OK")
        .replace("value:1", "value:0")
        .replace("name:Free disk space is 18.2 % on volume /", "name:Free disk space is 35.0 % on volume /");
    assert_eq!(run_env(&sb, &fake, &["--from", "zabbix", "ops", "trigger", &problem], &[]).code, Some(0));
    let r = run_env(&sb, &fake, &["--from", "zabbix", "ops", "resolve", &recovery], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let ev = fake.events();
    let got: Vec<(&str, &str)> = ev.iter().map(|e| (e["event_action"].as_str().unwrap(), e["dedup_key"].as_str().unwrap())).collect();
    assert_eq!(got, [("trigger", "23502-web-01"), ("resolve", "23502-web-01")]);

    // The same file keeps the Ruby handler's key for Sensu.
    let r = sb.run(&["--api-url", fake.url.as_str()], &crate::util::read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    let last = fake.events().pop().unwrap();
    assert!(last["dedup_key"].as_str().unwrap().contains('/'), "{last}");
}

/// A setting spelled the same as its documented default changes nothing, for every input
/// format: `dedup_key_template` `{incident_key}`, `summary_template` `{entity}/{check}: {output}`.
#[test]
fn settings_spelled_as_their_defaults_change_nothing() {
    let zabbix = String::from_utf8(crate::util::read_fixture("zabbix/problem-high.txt")).unwrap();
    let cases: Vec<(Vec<&str>, Vec<u8>)> = vec![
        (vec![], crate::util::read_fixture("sensu/create.json")),
        (vec![], crate::util::read_fixture("sensu-go/failing.json")),
        (
            vec![
                "--from",
                "nagios",
                "--field",
                "NOTIFICATIONTYPE=PROBLEM",
                "--field",
                "HOSTNAME=web-01",
                "--field",
                "SERVICEDESC=HTTP",
                "--field",
                "SERVICESTATE=CRITICAL",
            ],
            vec![],
        ),
        (vec!["--from", "zabbix", "ops", "trigger", zabbix.as_str()], vec![]),
    ];
    let request = |sb: &Sandbox, args: &[&str], stdin: &[u8]| -> Value {
        let mut all = vec!["--dry-run"];
        all.extend_from_slice(args);
        let r = sb.run(&all, stdin);
        assert_eq!(r.code, Some(0), "{r:?}");
        let mut v: Value = serde_json::from_str(&r.stdout).unwrap();
        v["payload"]["timestamp"] = Value::Null;
        v
    };
    for (args, stdin) in cases {
        let plain = sandbox();
        let spelled = sandbox();
        spelled.config(
            "zz-defaults.json",
            &json!({"pagerduty": {
            "dedup_key_template": "{incident_key}", "summary_template": "{entity}/{check}: {output}"}}),
        );
        assert_eq!(request(&plain, &args, &stdin), request(&spelled, &args, &stdin), "{args:?}");
    }
}

mod zabbix_data_is_never_structure {
    //! Issue 12 point 2: for arbitrary item values (and trigger names that embed them, as
    //! `{ITEM.LASTVALUE}` does), the destination, dedup key, action and links of the request
    //! are those of the same event with a harmless value. Black-box, through `--dry-run`.
    use super::*;
    use proptest::prelude::*;

    fn documented(name: &str, item_value: &str) -> String {
        String::from_utf8(crate::util::read_fixture("zabbix/problem-high.txt"))
            .unwrap()
            .replace("name:Zabbix agent is not available (for 3m)", &format!("name:{name}"))
            .replace("item_value:0", &format!("item_value:{item_value}"))
    }

    /// What must not depend on data: where it goes, which incident, what happens, which links.
    fn fixed_part(sb: &Sandbox, subject: &str, message: &str) -> (Value, Value, Value, Value, String) {
        let r = sb.run(&["--dry-run", "--from", "zabbix", ROUTING_KEY, subject, message], b"");
        assert_eq!(r.code, Some(0), "{r:?}");
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        let post = r.stderr.lines().find(|l| l.contains("would POST")).unwrap_or("").to_string();
        (v["routing_key"].clone(), v["dedup_key"].clone(), v["event_action"].clone(), v["links"].clone(), post)
    }

    fn hostile() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            "(incident_key|url|hostname|id|status|value|severity|nseverity|name|item_value|event_id|ip):[ -~]{0,24}",
            Just("NOTE: Escalation cancelled: by the host".to_string()),
            Just("NOTE: Escalation canceled: by the host\nLast message sent:".to_string()),
            Just("status:OK".to_string()),
            Just("nseverity:0".to_string()),
            "[^\u{0}]{0,12}",
        ];
        (prop::collection::vec(line, 0..6), "[^\u{0}]{0,8}").prop_map(|(lines, head)| {
            let mut s = head;
            for l in lines {
                s.push('\n');
                s.push_str(&l);
            }
            s
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn item_values_and_names_cannot_redirect_or_rekey(value in hostile(), subject in prop::sample::select(vec!["trigger", "resolve", "PROBLEM"])) {
            let sb = Sandbox::new(BIN);
            let harmless = fixed_part(&sb, subject, &documented("Zabbix agent is not available (for 3m)", "0"));
            prop_assert_eq!(&fixed_part(&sb, subject, &documented("Zabbix agent is not available (for 3m)", &value)), &harmless);
            prop_assert_eq!(&fixed_part(&sb, subject, &documented(&format!("Agent said {value}"), "0")), &harmless);
        }
    }
}

/// FLAPPINGSTOP resolves only when the service is OK: still CRITICAL, it keeps (re-)triggering
/// the incident, since Nagios sends no new PROBLEM until `notification_interval`.
#[test]
fn nagios_flapping_stop_resolves_only_when_ok() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    sb.config("zz-refresh.json", &json!({"pagerduty": {"refresh": 0}}));
    let notify = |kind: &str, state: &str| {
        let fields =
            [format!("NOTIFICATIONTYPE={kind}"), "HOSTNAME=web-01".into(), "SERVICEDESC=HTTP".into(), format!("SERVICESTATE={state}")];
        let args = crate::util::nagios_fields(&fields);
        let r = run_env(&sb, &fake, &args, &[]);
        assert_eq!(r.code, Some(0), "{r:?}");
    };
    notify("FLAPPINGSTART", "CRITICAL");
    notify("FLAPPINGSTOP", "CRITICAL");
    notify("FLAPPINGSTOP", "OK");
    fake.assert_no_violations();
    let actions: Vec<String> = fake.events().iter().map(|e| e["event_action"].as_str().unwrap().to_string()).collect();
    assert_eq!(actions, ["trigger", "trigger", "resolve"]);
}

/// A flapping notice in state OK (Nagios 4 sends FLAPPINGSTART when the check flaps back to OK)
/// pages nobody, also with `ok` in `severities`, the word a Sensu handler definition lists; a
/// downtime's end in a problem state pages nobody and says why (not "map it": mapped to resolve,
/// it would close a problem that is still there).
#[test]
fn nagios_flapping_start_in_ok_and_downtime_end_in_a_problem_page_nobody() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    sb.config("zz-severities.json", &json!({"pagerduty": {"severities": ["warning", "critical", "unknown", "ok"]}}));
    let notify = |kind: &str, state: &str| {
        let fields = [
            format!("NOTIFICATIONTYPE={kind}"),
            "HOSTNAME=web-01".into(),
            "SERVICEDESC=HTTP".into(),
            format!("SERVICESTATE={state}"),
            "SERVICEOUTPUT=HTTP state".into(),
        ];
        let args = crate::util::nagios_fields(&fields);
        let r = run_env(&sb, &fake, &args, &[]);
        ok(&r);
        r
    };
    let r = notify("FLAPPINGSTART", "OK");
    assert!(r.stderr.contains("skipped web-01/HTTP: flapping in state OK pages nobody"), "{}", r.stderr);
    let r = notify("DOWNTIMEEND", "CRITICAL");
    assert!(r.stderr.contains("skipped web-01/HTTP: DOWNTIMEEND in a problem state pages nobody"), "{}", r.stderr);
    assert!(!r.stderr.contains("notification_types"), "{}", r.stderr);
    fake.assert_no_violations();
    assert!(fake.events().is_empty(), "{:?}", fake.events());
}

/// A CUSTOM notification (NOTIFICATIONNUMBER 0 in Nagios) mapped to `trigger` pages, also
/// while the incident is open and was paged inside `refresh`: someone asked for it by hand. An
/// identical PROBLEM after it is still a repeat.
#[test]
fn nagios_custom_notification_number_zero_pages_when_mapped() {
    let fake = FakePagerDuty::start(&[]);
    let sb = sandbox();
    sb.config("zz-types.json", &json!({"pagerduty": {"notification_types": {"CUSTOM": "trigger"}}}));
    let notify = |kind: &str, number: &str| {
        run_env(
            &sb,
            &fake,
            &["--from", "nagios"],
            &[
                ("NAGIOS_NOTIFICATIONTYPE", kind),
                ("NAGIOS_NOTIFICATIONNUMBER", number),
                ("NAGIOS_HOSTNAME", "web-01"),
                ("NAGIOS_SERVICEDESC", "HTTP"),
                ("NAGIOS_SERVICESTATE", "CRITICAL"),
                ("NAGIOS_SERVICEOUTPUT", "HTTP CRITICAL"),
            ],
        )
    };
    let r = notify("PROBLEM", "1");
    assert_eq!((r.code, fake.events().len()), (Some(0), 1), "{r:?}");
    let r = notify("CUSTOM", "0");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("not enough occurrences") && !r.stderr.contains("already notified"), "{}", r.stderr);
    assert_eq!(fake.events().len(), 2, "{}", r.stderr);
    let r = notify("PROBLEM", "2");
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    fake.assert_no_violations();
    let actions: Vec<_> = fake.events().iter().map(|e| e["event_action"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(actions, ["trigger", "trigger"]);
}

mod zabbix_reader_properties {
    //! Issue 12 point 2 at the reader, with many cases: whatever the item value or a trigger
    //! name that embeds it holds, the event's incident key, link, action, severity, entity and
    //! `SENDTO` are those of the same message with a harmless value.
    use common::event::{Invocation, Source};
    use proptest::prelude::*;

    fn documented(name: &str, item_value: &str) -> String {
        String::from_utf8(crate::util::read_fixture("zabbix/problem-average.txt"))
            .unwrap()
            .replace("name:Load average is too high (per CPU load over 1.5 for 5m)", &format!("name:{name}"))
            .replace("item_value:1.83", &format!("item_value:{item_value}"))
    }

    /// The structural fields, shown with `Debug` (one comparable value).
    fn structure(subject: &str, message: &str) -> String {
        let inv =
            Invocation { args: vec!["R0ut1ngKeyF0rTests0000000000abcd".into(), subject.into(), message.into()], ..Invocation::default() };
        let e = inv.parse(Source::Zabbix).expect("the documented message parses");
        format!("{:?}", (e.incident_key, e.url, e.action, e.zabbix_severity, e.severity, e.status, e.entity, e.send_to, e.address))
    }

    fn hostile() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            "(incident_key|url|hostname|id|status|value|severity|nseverity|name|item_value|event_id|ip) ?: ?[ -~]{0,24}",
            Just("NOTE: Escalation cancelled: by the host".to_string()),
            Just("NOTE: Escalation canceled: by the host\nLast message sent:".to_string()),
            any::<String>(),
        ];
        prop::collection::vec(line, 0..8).prop_map(|lines| lines.join("\n"))
    }

    proptest! {
        #[test]
        fn values_never_change_the_structure(value in hostile(), subject in prop::sample::select(vec!["trigger", "resolve", "PROBLEM", "other"])) {
            let harmless = structure(subject, &documented("Load average is too high", "1.83"));
            prop_assert_eq!(&structure(subject, &documented("Load average is too high", &value)), &harmless);
            prop_assert_eq!(&structure(subject, &documented(&format!("Load is {value}"), "1.83")), &harmless);
        }
    }
}
