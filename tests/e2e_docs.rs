//! The shipped setup documents, followed literally against real servers: `conf.d/nagios-pagerduty.cfg`
//! in a real Nagios 4, `conf.d/icinga2-pagerduty.conf` in a real Icinga 2 daemon, and the alert
//! script and message template of `conf.d/zabbix-pagerduty.md` run as Zabbix runs them. The files
//! are used as shipped; only the paths they name (`/usr/bin/handler-pagerduty`,
//! `/etc/pagerpipe/pagerduty.json`) are rewritten to this build and the test's temporary
//! directory. The settings file holds what the documents say goes there (the routing key), plus
//! the fake's URL and temporary state and spool directories. Each server runs until the fake has
//! received what it should (no fixed sleeps) and is stopped by PID.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake::pagerduty::FakePagerDuty;
use crate::util::{ROUTING_KEY, ServerProcess, require_program, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_handler-pagerduty");
const SHIPPED_BIN: &str = "/usr/bin/handler-pagerduty";
const SHIPPED_SETTINGS: &str = "/etc/pagerpipe/pagerduty.json";
const SHIPPED_SYSLOG: &str = "--syslog";
const NAGIOS: &str = "/usr/sbin/nagios4";
const ICINGA: &str = "/usr/sbin/icinga2";
/// Long enough for a slow CI machine; the wait ends as soon as the condition holds.
const LIMIT: Duration = Duration::from_secs(60);

/// A shipped file from `conf.d/`, with the documented paths rewritten; panics when a path it
/// should name is missing (the document and this test would disagree). The commands'
/// `--syslog` (the default socket, `/dev/log`) is pointed at `site`'s own socket.
fn shipped(name: &str, site: &Site) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d").join(name)).unwrap();
    for path in [SHIPPED_BIN, SHIPPED_SETTINGS] {
        assert!(text.contains(path), "conf.d/{name} no longer names {path}");
    }
    // Nagios 4 and Icinga 2 keep a notification command's stderr only when it exits non-zero.
    if name.starts_with("nagios") || name.starts_with("icinga") {
        let bare = text.lines().find(|l| l.contains(SHIPPED_BIN) && !l.contains(SHIPPED_SYSLOG));
        assert!(bare.is_none(), "conf.d/{name}: a command without {SHIPPED_SYSLOG}: {bare:?}");
    }
    text.replace(SHIPPED_BIN, BIN)
        .replace(SHIPPED_SETTINGS, site.settings().to_str().unwrap())
        .replace(SHIPPED_SYSLOG, &format!("{SHIPPED_SYSLOG}={}", site.path("syslog.sock").display()))
}

/// A temporary directory with the settings file the documents describe, mode 0640, and a
/// syslog socket (`syslog.sock`) standing in for `/dev/log`.
struct Site {
    dir: tempfile::TempDir,
    fake: FakePagerDuty,
    syslog: std::os::unix::net::UnixDatagram,
}

impl Site {
    fn new() -> Site {
        Site::with(json!({}))
    }

    /// A site whose `pagerduty` settings also hold `extra`.
    fn with(extra: Value) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakePagerDuty::start(&[]);
        let mut settings = json!({"pagerduty": {
            "routing_key": ROUTING_KEY, "api_url": fake.url,
            "state_dir": dir.path().join("state"), "spool_dir": dir.path().join("spool")}});
        for (k, v) in extra.as_object().unwrap() {
            settings["pagerduty"][k] = v.clone();
        }
        let path = dir.path().join("pagerduty.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&settings).unwrap()).unwrap();
        set_mode(&path, 0o640);
        let syslog = std::os::unix::net::UnixDatagram::bind(dir.path().join("syslog.sock")).unwrap();
        syslog.set_nonblocking(true).unwrap();
        Site { dir, fake, syslog }
    }

    /// The datagrams the handlers sent to the site's syslog socket so far.
    fn syslog_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.syslog.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        lines
    }

    fn settings(&self) -> PathBuf {
        self.dir.path().join("pagerduty.json")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A shell script `name` that prints `<label> state N` and exits with the number in the
    /// file `<name>.state` (initially `state`): the check whose result the test controls.
    fn check_script(&self, name: &str, label: &str, state: u8) -> PathBuf {
        let script = self.path(name);
        let state_file = self.path(&format!("{name}.state"));
        std::fs::write(&state_file, state.to_string()).unwrap();
        std::fs::write(&script, format!("#!/bin/sh\ns=$(cat '{}')\necho \"{label} state $s\"\nexit $s\n", state_file.display())).unwrap();
        set_mode(&script, 0o755);
        script
    }

    fn set_state(&self, name: &str, state: u8) {
        std::fs::write(self.path(&format!("{name}.state")), state.to_string()).unwrap();
    }

    /// The (action, dedup key) pairs the fake PagerDuty accepted, in order.
    fn pages(&self) -> Vec<(String, String)> {
        self.fake.assert_no_violations();
        self.fake
            .events()
            .iter()
            .map(|e| (e["event_action"].as_str().unwrap_or("").to_string(), e["dedup_key"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    /// Wait until the fake holds `want` (in any order), with `log` for the failure message.
    fn wait_for_pages(&self, want: &[(&str, &str)], log: impl Fn() -> String) -> Vec<Value> {
        let mut want: Vec<(String, String)> = want.iter().map(|(a, k)| (a.to_string(), k.to_string())).collect();
        want.sort();
        wait_until(
            &format!("PagerDuty events {want:?}"),
            LIMIT,
            || {
                let mut got = self.pages();
                got.sort();
                (got == want).then(|| self.fake.events())
            },
            || format!("got {:?}; log:\n{}", self.pages(), log()),
        )
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn id(flag: &str) -> String {
    String::from_utf8(Command::new("id").arg(flag).output().unwrap().stdout).unwrap().trim().to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A real Nagios 4 in `site`'s directory `nagios/` with the shipped conf.d/nagios-pagerduty.cfg,
/// as Debian ships Nagios (`enable_environment_macros=0`, so the `--field` commands; the
/// `illegal_macro_output_chars` of Debian's nagios.cfg), an external command file
/// `nagios/nagios.cmd`, and what a site adds: the 24x7 period (Debian's timeperiods.cfg) and
/// `objects`, host and service definitions naming the documented `contacts pagerduty`.
/// Returns the running server and the directory (`nagios.log`, `status.dat` …).
fn start_nagios(site: &Site, objects: &str) -> (ServerProcess, PathBuf) {
    start_nagios_with(site, &shipped("nagios-pagerduty.cfg", site), objects)
}

/// [`start_nagios`] with `cfg` (the shipped file as an operator edited it) in its place.
fn start_nagios_with(site: &Site, cfg: &str, objects: &str) -> (ServerProcess, PathBuf) {
    let d = site.dir.path().join("nagios");
    std::fs::create_dir_all(d.join("checkresults")).unwrap();
    std::fs::write(d.join("pagerduty.cfg"), cfg).unwrap();
    let dd = d.display();
    std::fs::write(d.join("resource.cfg"), "").unwrap();
    std::fs::write(
        d.join("nagios.cfg"),
        format!(
            "log_file={dd}/nagios.log\ncfg_file={dd}/pagerduty.cfg\ncfg_file={dd}/site.cfg\nobject_cache_file={dd}/objects.cache\n\
             precached_object_file={dd}/objects.precache\nresource_file={dd}/resource.cfg\nstatus_file={dd}/status.dat\n\
             status_update_interval=1\ncheck_result_path={dd}/checkresults\nlock_file={dd}/nagios.lock\ntemp_file={dd}/nagios.tmp\n\
             temp_path={dd}\nquery_socket={dd}/nagios.qh\ncheck_external_commands=1\ncommand_file={dd}/nagios.cmd\n\
             command_check_interval=-1\ninterval_length=1\nenable_environment_macros=0\n\
             illegal_macro_output_chars=`~$&|'\"<>\nuse_syslog=0\nmax_service_check_spread=1\nmax_host_check_spread=1\n\
             service_inter_check_delay_method=n\nhost_inter_check_delay_method=n\ncheck_result_reaper_frequency=1\n\
             enable_notifications=1\nretain_state_information=0\nlog_notifications=1\nnagios_user={}\nnagios_group={}\n",
            id("-un"),
            id("-gn")
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("site.cfg"),
        format!(
            "define timeperiod {{\n timeperiod_name 24x7\n alias 24x7\n sunday 00:00-24:00\n monday 00:00-24:00\n tuesday 00:00-24:00\n wednesday 00:00-24:00\n thursday 00:00-24:00\n friday 00:00-24:00\n saturday 00:00-24:00\n}}\n{objects}"
        ),
    )
    .unwrap();
    let verify = Command::new(NAGIOS).arg("-v").arg(d.join("nagios.cfg")).output().unwrap();
    assert!(verify.status.success(), "nagios4 -v refuses the shipped cfg: {}", String::from_utf8_lossy(&verify.stdout));
    let mut nagios = Command::new(NAGIOS);
    nagios.arg(d.join("nagios.cfg")).stdout(Stdio::null()).stderr(Stdio::null());
    let server = ServerProcess::start(nagios);
    // The command file is a FIFO Nagios creates once it runs.
    wait_until("nagios.cmd", LIMIT, || d.join("nagios.cmd").exists().then_some(()), || read(&d.join("nagios.log")));
    (server, d)
}

/// Write external commands to a running Nagios (`[time] NAME;args` lines).
fn nagios_commands(d: &Path, lines: &[String]) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let text: String = lines.iter().map(|l| format!("[{now}] {l}\n")).collect();
    std::fs::OpenOptions::new().write(true).open(d.join("nagios.cmd")).unwrap().write_all(text.as_bytes()).unwrap();
}

/// The value of `field` in the `servicestatus` block of `service` in Nagios's status.dat.
fn service_status(d: &Path, service: &str, field: &str) -> Option<String> {
    let status = read(&d.join("status.dat"));
    let block = status.split("servicestatus {").skip(1).find(|b| b.contains(&format!("\tservice_description={service}\n")))?;
    let block = block.split('}').next()?;
    block.lines().find_map(|l| l.trim().strip_prefix(&format!("{field}=")).map(str::to_string))
}

/// conf.d/nagios-pagerduty.cfg in Nagios 4 as Debian ships it (`enable_environment_macros=0`,
/// so the `--field` commands): a service problem and recovery on one host, a host problem and
/// recovery on another.
#[test]
fn nagios4_with_the_shipped_cfg_pages_service_and_host_problems_and_recoveries() {
    if !require_program(NAGIOS, "nagios4-core") {
        return;
    }
    let site = Site::new();
    // Both fail from their first check: Nagios assumes OK/UP at start, so the first result is
    // a hard state change that notifies.
    let svc = site.check_script("svc", "HTTP", 2);
    let host = site.check_script("host", "PING", 2);
    let (_nagios, d) = start_nagios(
        &site,
        &format!(
            "define command {{\n command_name check-svc\n command_line {}\n}}\n\
             define command {{\n command_name check-host\n command_line {}\n}}\n\
             define command {{\n command_name host-up\n command_line /bin/true\n}}\n\
             define host {{\n host_name web-01\n address 127.0.0.1\n check_command host-up\n max_check_attempts 1\n check_interval 300\n notification_period 24x7\n notification_interval 0\n contacts pagerduty\n}}\n\
             define host {{\n host_name db-01\n address 127.0.0.2\n check_command check-host\n max_check_attempts 1\n check_interval 1\n retry_interval 1\n notification_period 24x7\n notification_interval 0\n contacts pagerduty\n}}\n\
             define service {{\n host_name web-01\n service_description HTTP\n check_command check-svc\n max_check_attempts 1\n check_interval 1\n retry_interval 1\n notification_interval 0\n notification_period 24x7\n contacts pagerduty\n}}\n",
            svc.display(),
            host.display()
        ),
    );
    let log = || read(&d.join("nagios.log"));

    let ev = site.wait_for_pages(&[("trigger", "web-01/HTTP"), ("trigger", "db-01/host")], log);
    let summaries: Vec<&str> = ev.iter().filter_map(|e| e["payload"]["summary"].as_str()).collect();
    assert!(summaries.contains(&"web-01/HTTP: HTTP state 2") && summaries.contains(&"db-01/host: PING state 2"), "{summaries:?}");
    site.set_state("svc", 0);
    site.set_state("host", 0);
    site.wait_for_pages(
        &[("trigger", "web-01/HTTP"), ("trigger", "db-01/host"), ("resolve", "web-01/HTTP"), ("resolve", "db-01/host")],
        log,
    );
}

/// The shipped cfg in a real Nagios 4 with a shared Redis ledger that cannot be reached: the
/// page still goes out, exit 0, and Nagios keeps the stderr of a command that exits 0 nowhere,
/// so the error line that says the ledger was not used reaches the operator through the
/// commands' `--syslog` alone (before it, it reached no log at all).
#[test]
fn nagios4_with_the_shipped_cfg_logs_a_delivered_pages_errors_to_syslog() {
    if !require_program(NAGIOS, "nagios4-core") {
        return;
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let site = Site::with(json!({"state_store": format!("redis://:secret-password@127.0.0.1:{closed}/0")}));
    let (_nagios, d) = start_nagios(&site, &passive_service("QUEUE", ""));
    nagios_commands(&d, &["PROCESS_SERVICE_CHECK_RESULT;web-01;QUEUE;2;QUEUE CRITICAL - 5000 messages".to_string()]);
    site.wait_for_pages(&[("trigger", "web-01/QUEUE")], || read(&d.join("nagios.log")));
    let lines = wait_until(
        "the handler's lines on the syslog socket",
        LIMIT,
        || {
            let lines = site.syslog_lines();
            (!lines.is_empty()).then_some(lines)
        },
        || read(&d.join("nagios.log")),
    );
    let mut lines = lines;
    // The handler may still be writing its last lines.
    std::thread::sleep(Duration::from_millis(500));
    lines.extend(site.syslog_lines());
    let error = format!("cannot connect to the state store redis://127.0.0.1:{closed}/0");
    assert!(lines.iter().any(|l| l.starts_with("<11>handler-pagerduty[") && l.contains(&error)), "no error line on syslog: {lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("<14>handler-pagerduty[") && l.contains("triggered web-01/QUEUE")), "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains("secret-password")), "{lines:?}");
    // What Nagios itself kept of it: nothing (the command exited 0).
    assert!(!read(&d.join("nagios.log")).contains("state store"), "{}", read(&d.join("nagios.log")));
}

/// conf.d/nagios-pagerduty.cfg's per-service settings in the argument form, followed as its
/// comment says: the example `--field` added to the service command, the custom variable set
/// on one service. Its warning pages nobody (its `severities` is `critical`); a service without
/// the variable, which Nagios 4.4 passes as `$` (the macro left unexpanded, read by the shell
/// it runs the command through), pages its warning as the settings file says, with no warning
/// line (before, every page of a service without it logged that an invalid override was
/// ignored; with a template setting, its dedup key or summary was `$`). A service with the
/// variable empty, as the comment says to define it where it does not apply, pages an output
/// ending in a backslash (through the shell, that output is a syntax error: no page).
#[test]
fn nagios4_with_the_shipped_cfg_takes_a_services_own_settings_as_its_comment_says() {
    if !require_program(NAGIOS, "nagios4-core") {
        return;
    }
    let site = Site::new();
    let cfg = shipped("nagios-pagerduty.cfg", &site);
    let field = cfg
        .lines()
        .find_map(|l| l.strip_prefix('#').map(str::trim).filter(|l| l.starts_with("--field \"_SERVICEPAGERDUTY_SEVERITIES=")))
        .expect("the comment's example --field");
    assert!(cfg.contains("_PAGERDUTY_SEVERITIES critical }"), "the comment names the variable it sets");
    assert!(cfg.contains("_PAGERDUTY_SEVERITIES }"), "the comment defines it empty where it does not apply");
    let command = cfg.lines().find(|l| l.contains("--field") && l.contains("SERVICEEVENTID=")).expect("the service command");
    let cfg = cfg.replacen(command, &format!("{command} {field}"), 1);
    let service = |name: &str, extra: &str| {
        format!(
            "define service {{\n host_name web-01\n service_description {name}\n check_command passive-only\n active_checks_enabled 0\n {extra} max_check_attempts 1\n notification_interval 0\n notification_period 24x7\n contacts pagerduty\n}}\n"
        )
    };
    let objects = format!(
        "{}{}{}{}",
        passive_service("disk", "_PAGERDUTY_SEVERITIES critical\n"),
        service("load", "_PAGERDUTY_SEVERITIES critical\n"),
        service("load-any", ""),
        service("win-disk", "_PAGERDUTY_SEVERITIES\n"),
    );
    let (_nagios, d) = start_nagios_with(&site, &cfg, &objects);
    let log = || read(&d.join("nagios.log"));
    nagios_commands(
        &d,
        &[
            "PROCESS_SERVICE_CHECK_RESULT;web-01;load;1;LOAD WARNING".to_string(),
            "PROCESS_SERVICE_CHECK_RESULT;web-01;disk;2;DISK CRITICAL".to_string(),
            "PROCESS_SERVICE_CHECK_RESULT;web-01;load-any;1;LOAD WARNING".to_string(),
            "PROCESS_SERVICE_CHECK_RESULT;web-01;win-disk;2;DISK CRITICAL - D:\\".to_string(),
        ],
    );
    let ev = site.wait_for_pages(&[("trigger", "web-01/disk"), ("trigger", "web-01/load-any"), ("trigger", "web-01/win-disk")], log);
    let summaries: Vec<&str> = ev.iter().filter_map(|e| e["payload"]["summary"].as_str()).collect();
    assert!(summaries.contains(&"web-01/load-any: LOAD WARNING"), "{summaries:?}");
    assert!(summaries.contains(&"web-01/win-disk: DISK CRITICAL - D:\\"), "{summaries:?}");
    // A handler's warnings precede its decision line: once the four decisions are in, so is
    // any warning.
    let decision = |l: &String| l.contains(": pagerduty: triggered ") || l.contains(": pagerduty: skipped ");
    let mut lines = Vec::new();
    wait_until(
        "the handlers' four decisions on syslog",
        LIMIT,
        || {
            lines.extend(site.syslog_lines());
            (lines.iter().filter(|l| decision(l)).count() >= 4).then_some(())
        },
        log,
    );
    assert!(lines.iter().any(|l| l.contains("skipped web-01/load: severity warning is not in severities [critical]")), "{lines:?}");
    assert!(lines.iter().all(decision), "nothing but the four decisions: {lines:?}");
    assert_eq!(site.pages().len(), 3, "{:?}", site.pages());
}

/// Objects for a real Nagios 4 run: host web-01 and its service `name`, both checked passively
/// only (results come through the external command file), notifying the shipped `pagerduty`
/// contact at once and not again; `extra` lines go into the service.
fn passive_service(name: &str, extra: &str) -> String {
    format!(
        "define command {{\n command_name passive-only\n command_line /bin/true\n}}\n\
         define host {{\n host_name web-01\n address 127.0.0.1\n check_command passive-only\n active_checks_enabled 0\n max_check_attempts 1\n notification_period 24x7\n notification_interval 0\n contacts pagerduty\n}}\n\
         define service {{\n host_name web-01\n service_description {name}\n check_command passive-only\n active_checks_enabled 0\n passive_checks_enabled 1\n {extra} max_check_attempts 1\n notification_interval 0\n notification_period 24x7\n contacts pagerduty\n}}\n"
    )
}

/// The shipped cfg in a real Nagios 4, driven through its external command file as an
/// operator and NSCA/NRDP would: a passive result CRITICAL, an acknowledgement, OK; then,
/// round after round, CRITICAL and OK within one second. Nagios runs the PROBLEM and the
/// RECOVERY notification of one second in parallel, so the RECOVERY's handler often reaches
/// the incident first; the incident must still end resolved every round (it was left open
/// when the PROBLEM's handler came second: one second's events were applied as they came).
#[test]
fn nagios4_with_the_shipped_cfg_acknowledges_and_orders_a_problem_and_recovery_of_one_second() {
    if !require_program(NAGIOS, "nagios4-core") {
        return;
    }
    let site = Site::new();
    let (_nagios, d) = start_nagios(&site, &passive_service("queue", "flap_detection_enabled 0\n"));
    let log = || read(&d.join("nagios.log"));
    let result = |status: u8, output: &str| format!("PROCESS_SERVICE_CHECK_RESULT;web-01;queue;{status};{output}");
    let key = "web-01/queue";

    nagios_commands(&d, &[result(2, "QUEUE CRITICAL - 5000 messages")]);
    site.wait_for_pages(&[("trigger", key)], log);
    nagios_commands(&d, &["ACKNOWLEDGE_SVC_PROBLEM;web-01;queue;1;1;0;alice;looking".to_string()]);
    site.wait_for_pages(&[("trigger", key), ("acknowledge", key)], log);
    nagios_commands(&d, &[result(0, "QUEUE OK - 3 messages")]);
    site.wait_for_pages(&[("trigger", key), ("acknowledge", key), ("resolve", key)], log);

    let record = || -> Value {
        let path = site.path("state").join("pagerduty").join("web-01%2Fqueue.json");
        serde_json::from_str(&read(&path)).unwrap_or(Value::Null)
    };
    for round in 1..=8 {
        nagios_commands(&d, &[result(2, &format!("QUEUE CRITICAL round {round}")), result(0, &format!("QUEUE OK round {round}"))]);
        // Done when the ledger has taken in the round's RECOVERY: the state change Nagios
        // numbered last, which status.dat shows once the notifications are out.
        wait_until(
            &format!("round {round}: the ledger at Nagios's current event id, resolved"),
            LIMIT,
            || {
                let current = service_status(&d, "queue", "current_event_id")?.parse::<u64>().ok()?;
                let rec = record();
                (service_status(&d, "queue", "current_state").as_deref() == Some("0")
                    && rec["event_seq"].as_u64() == Some(current)
                    && rec["open"] == false)
                    .then_some(())
            },
            || format!("record {}; pages {:?}; log:\n{}", record(), site.pages(), log()),
        );
    }
    // Whatever went out in between, the last word PagerDuty had is the resolve.
    let pages = site.pages();
    assert_eq!(pages.last().map(|(a, k)| (a.as_str(), k.as_str())), Some(("resolve", key)), "{pages:?}");
}

/// The shipped cfg in a real Nagios 4: a service pages, an operator schedules a downtime, the
/// service recovers during it. Nagios sends no RECOVERY then (no notification at all during a
/// downtime) nor afterwards; the incident is resolved by the DOWNTIMEEND notification in state
/// OK (it stayed open: the shipped contact had no `s` option, and DOWNTIMEEND was skipped).
#[test]
fn nagios4_with_the_shipped_cfg_resolves_a_problem_that_recovered_during_a_downtime() {
    if !require_program(NAGIOS, "nagios4-core") {
        return;
    }
    let site = Site::new();
    let (_nagios, d) = start_nagios(&site, &passive_service("backup", ""));
    let log = || read(&d.join("nagios.log"));
    let key = "web-01/backup";
    nagios_commands(&d, &["PROCESS_SERVICE_CHECK_RESULT;web-01;backup;2;BACKUP CRITICAL - disk full".to_string()]);
    site.wait_for_pages(&[("trigger", key)], log);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    nagios_commands(&d, &[format!("SCHEDULE_SVC_DOWNTIME;web-01;backup;{now};{};1;0;3;bob;disk swap", now + 3)]);
    wait_until("the downtime to start", LIMIT, || log().contains("SERVICE DOWNTIME ALERT: web-01;backup;STARTED").then_some(()), log);
    nagios_commands(&d, &["PROCESS_SERVICE_CHECK_RESULT;web-01;backup;0;BACKUP OK".to_string()]);
    let ev = site.wait_for_pages(&[("trigger", key), ("resolve", key)], log);
    assert!(log().contains("DOWNTIMEEND (OK)"), "resolved by the downtime's end: {ev:?}");
    assert!(!log().contains("web-01;backup;OK;notify-service-pagerduty"), "Nagios sent a RECOVERY after all: {}", log());
}

/// The shipped argument form in a real Nagios 4, with a check output that ends in a backslash
/// (a Windows path): Nagios's own command parser takes the `\"` for the closing quote, drops
/// the backslash, glues the next `--field` onto the output and hands the next field over as a
/// positional argument. The page still says what the check said, and the field is read (the
/// summary ended in `D:--field` and the long output was lost).
#[test]
fn nagios4_with_the_shipped_cfg_keeps_an_output_ending_in_a_backslash() {
    if !require_program(NAGIOS, "nagios4-core") {
        return;
    }
    let site = Site::new();
    let script = site.path("win-disk");
    std::fs::write(&script, "#!/bin/sh\nprintf 'DISK CRITICAL - free space on D:\\\\\\nD:\\\\ 2%% free\\n'\nexit 2\n").unwrap();
    set_mode(&script, 0o755);
    let (_nagios, d) = start_nagios(
        &site,
        &format!(
            "define command {{\n command_name win-disk\n command_line {}\n}}\n\
             define command {{\n command_name host-up\n command_line /bin/true\n}}\n\
             define host {{\n host_name win-01\n address 127.0.0.1\n check_command host-up\n max_check_attempts 1\n check_interval 300\n notification_period 24x7\n notification_interval 0\n contacts pagerduty\n}}\n\
             define service {{\n host_name win-01\n service_description disk\n check_command win-disk\n max_check_attempts 1\n check_interval 1\n retry_interval 1\n notification_interval 0\n notification_period 24x7\n contacts pagerduty\n}}\n",
            script.display()
        ),
    );
    let ev = site.wait_for_pages(&[("trigger", "win-01/disk")], || read(&d.join("nagios.log")));
    assert_eq!(ev[0]["payload"]["summary"], "win-01/disk: DISK CRITICAL - free space on D:\\ D:\\ 2% free");
}

/// A real Icinga 2 daemon in `site`'s directory `icinga2/` with the shipped
/// conf.d/icinga2-pagerduty.conf, the checker and notification features, an external command
/// pipe `icinga2/icinga2.cmd` (the `command` feature), and `objects` (hosts, services and their
/// check commands). Returns the running daemon, the directory, and a reader of its log.
fn start_icinga(site: &Site, objects: &str) -> (ServerProcess, PathBuf, impl Fn() -> String + use<>) {
    start_icinga_with(site, &shipped("icinga2-pagerduty.conf", site), objects)
}

/// [`start_icinga`] with `conf` (the shipped file as an operator edited it) in its place.
fn start_icinga_with(site: &Site, conf: &str, objects: &str) -> (ServerProcess, PathBuf, impl Fn() -> String + use<>) {
    let d = site.dir.path().join("icinga2");
    for sub in ["data", "log", "cache", "spool", "run"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("pagerduty.conf"), conf).unwrap();
    std::fs::write(
        d.join("icinga2.conf"),
        format!(
            "include \"{}\"\n\
             object CheckerComponent \"checker\" {{ }}\n\
             object NotificationComponent \"notification\" {{ }}\n\
             object ExternalCommandListener \"command\" {{ command_path = \"{}\" }}\n\
             {objects}",
            d.join("pagerduty.conf").display(),
            d.join("icinga2.cmd").display(),
        ),
    )
    .unwrap();
    let daemon = |extra: &[&str]| {
        let mut c = Command::new(ICINGA);
        c.arg("daemon").args(extra).arg("-c").arg(d.join("icinga2.conf"));
        for (name, sub) in [("DataDir", "data"), ("LogDir", "log"), ("CacheDir", "cache"), ("SpoolDir", "spool"), ("InitRunDir", "run")] {
            c.arg(format!("-D{name}={}", d.join(sub).display()));
        }
        c.arg(format!("-DRunAsUser={}", id("-un"))).arg(format!("-DRunAsGroup={}", id("-gn")));
        c
    };
    let check = daemon(&["-C"]).output().unwrap();
    assert!(check.status.success(), "icinga2 daemon -C refuses the shipped conf: {}", String::from_utf8_lossy(&check.stdout));
    let out = d.join("icinga2.out");
    let mut icinga = daemon(&[]);
    icinga.stdout(std::fs::File::create(&out).unwrap()).stderr(Stdio::null());
    let server = ServerProcess::start(icinga);
    let log = move || read(&out);
    // The command pipe is a FIFO Icinga creates once it runs.
    wait_until("icinga2.cmd", LIMIT, || d.join("icinga2.cmd").exists().then_some(()), &log);
    (server, d, log)
}

/// conf.d/icinga2-pagerduty.conf in a real Icinga 2 daemon: a host problem (no `$service.*$`
/// macros) and a service problem on a host that has no check result yet (no `$host.output$`),
/// each through problem and recovery.
#[test]
fn icinga2_with_the_shipped_conf_pages_host_and_service_problems_and_recoveries() {
    if !require_program(ICINGA, "icinga2-bin") {
        return;
    }
    let site = Site::new();
    let svc = site.check_script("svc", "DISK", 2);
    // Icinga 2 host checks: exit 0/1 is UP, 2/3 is DOWN.
    let host = site.check_script("host", "PING", 2);
    let (_icinga, _, log) = start_icinga(
        &site,
        &format!(
            "object CheckCommand \"check-svc\" {{ command = [ \"{}\" ] }}\n\
             object CheckCommand \"check-host\" {{ command = [ \"{}\" ] }}\n\
             object Host \"web-01\" {{\n  address = \"127.0.0.1\"\n  check_command = \"check-host\"\n  check_interval = 1s\n  retry_interval = 1s\n  max_check_attempts = 1\n  vars.notify_pagerduty = true\n}}\n\
             object Host \"fresh-01\" {{\n  address = \"127.0.0.2\"\n  check_command = \"check-host\"\n  enable_active_checks = false\n}}\n\
             object Service \"disk\" {{\n  host_name = \"fresh-01\"\n  check_command = \"check-svc\"\n  check_interval = 1s\n  retry_interval = 1s\n  max_check_attempts = 1\n  vars.notify_pagerduty = true\n}}\n",
            svc.display(),
            host.display()
        ),
    );

    let ev = site.wait_for_pages(&[("trigger", "web-01/host"), ("trigger", "fresh-01/disk")], &log);
    let summaries: Vec<&str> = ev.iter().filter_map(|e| e["payload"]["summary"].as_str()).collect();
    assert!(summaries.contains(&"web-01/host: PING state 2") && summaries.contains(&"fresh-01/disk: DISK state 2"), "{summaries:?}");
    site.set_state("svc", 0);
    site.set_state("host", 0);
    site.wait_for_pages(
        &[("trigger", "web-01/host"), ("trigger", "fresh-01/disk"), ("resolve", "web-01/host"), ("resolve", "fresh-01/disk")],
        &log,
    );
}

/// conf.d/icinga2-pagerduty.conf's per-object settings, followed as its comment says: the
/// example `env` entry added to the NotificationCommand, and the variable set on one Service.
/// That service's warning pages nobody (its `severities` is `critical`), its critical pages,
/// and a service without the variable (the entry arrives empty) pages its warning as the
/// settings file says.
#[test]
fn icinga2_with_the_shipped_conf_takes_a_services_own_settings_as_its_comment_says() {
    if !require_program(ICINGA, "icinga2-bin") {
        return;
    }
    let site = Site::new();
    let conf = shipped("icinga2-pagerduty.conf", &site);
    let entry = conf
        .lines()
        .find_map(|l| l.strip_prefix("//").map(str::trim).filter(|l| l.starts_with("_SERVICEPAGERDUTY_SEVERITIES = ")))
        .expect("the comment's example env entry");
    let var = entry.split("$service.vars.").nth(1).and_then(|r| r.split('$').next()).expect("a $service.vars.…$ macro");
    assert!(conf.contains(&format!("`vars.{var} = \"critical\"` on the Service")), "the comment names the variable it sets");
    let conf = conf.replacen("  env = {\n", &format!("  env = {{\n    {entry}\n"), 1);
    assert!(conf.contains(entry), "the NotificationCommand has an env block");
    let warn = site.check_script("warn", "LOAD", 1);
    let crit = site.check_script("crit", "DISK", 2);
    let service = |name: &str, script: &Path, vars: &str| {
        format!(
            "object CheckCommand \"check-{name}\" {{ command = [ \"{}\" ] }}\n\
             object Service \"{name}\" {{\n  host_name = \"web-01\"\n  check_command = \"check-{name}\"\n  check_interval = 1s\n  retry_interval = 1s\n  max_check_attempts = 1\n  vars.notify_pagerduty = true\n{vars}}}\n",
            script.display()
        )
    };
    let objects = format!(
        "object CheckCommand \"passive-only\" {{ command = [ \"/bin/true\" ] }}\n\
         object Host \"web-01\" {{\n  address = \"127.0.0.1\"\n  check_command = \"passive-only\"\n  enable_active_checks = false\n}}\n{}{}{}",
        service("load", &warn, &format!("  vars.{var} = \"critical\"\n")),
        service("disk", &crit, &format!("  vars.{var} = \"critical\"\n")),
        service("load-any", &warn, ""),
    );
    let (_icinga, _, log) = start_icinga_with(&site, &conf, &objects);
    site.wait_for_pages(&[("trigger", "web-01/disk"), ("trigger", "web-01/load-any")], &log);
    // The skipped warning is a line of its own on syslog; wait for it, then nothing else came.
    let skipped = wait_until(
        "the skipped warning of web-01/load",
        LIMIT,
        || site.syslog_lines().into_iter().find(|l| l.contains("skipped web-01/load:")),
        &log,
    );
    assert!(skipped.contains("severity warning is not in severities [critical]"), "{skipped}");
    assert_eq!(site.pages().len(), 2, "{:?}", site.pages());
}

/// The shipped conf in a real Icinga 2, driven through its external command pipe as an
/// operator (or a passive check sender) would: a passive result CRITICAL pages, an operator's
/// acknowledgement (Icinga's Acknowledgement notification, `$notification.author$` and
/// `$notification.comment$`) acknowledges the PagerDuty incident, and OK resolves it.
#[test]
fn icinga2_with_the_shipped_conf_acknowledges_a_problem() {
    if !require_program(ICINGA, "icinga2-bin") {
        return;
    }
    let site = Site::new();
    let (_icinga, d, log) = start_icinga(
        &site,
        "object CheckCommand \"passive-only\" { command = [ \"/bin/true\" ] }\n\
         object Host \"web-01\" {\n  address = \"127.0.0.1\"\n  check_command = \"passive-only\"\n  enable_active_checks = false\n}\n\
         object Service \"queue\" {\n  host_name = \"web-01\"\n  check_command = \"passive-only\"\n  enable_active_checks = false\n  max_check_attempts = 1\n  vars.notify_pagerduty = true\n}\n",
    );
    let key = "web-01/queue";
    let command = |line: &str| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        std::fs::OpenOptions::new()
            .write(true)
            .open(d.join("icinga2.cmd"))
            .unwrap()
            .write_all(format!("[{now}] {line}\n").as_bytes())
            .unwrap();
    };
    command("PROCESS_SERVICE_CHECK_RESULT;web-01;queue;2;QUEUE CRITICAL - 5000 messages");
    site.wait_for_pages(&[("trigger", key)], &log);
    command("ACKNOWLEDGE_SVC_PROBLEM;web-01;queue;1;1;0;alice;looking");
    let ev = site.wait_for_pages(&[("trigger", key), ("acknowledge", key)], &log);
    assert_eq!(ev[0]["payload"]["summary"], "web-01/queue: QUEUE CRITICAL - 5000 messages");
    command("PROCESS_SERVICE_CHECK_RESULT;web-01;queue;0;QUEUE OK - 3 messages");
    site.wait_for_pages(&[("trigger", key), ("acknowledge", key), ("resolve", key)], &log);
    // Icinga logs a command's output only when it exits non-zero: the shipped --syslog has them.
    std::thread::sleep(Duration::from_millis(500));
    let lines = site.syslog_lines();
    for done in ["triggered web-01/queue", "acknowledged web-01/queue", "resolved web-01/queue"] {
        assert!(lines.iter().any(|l| l.starts_with("<14>handler-pagerduty[") && l.contains(done)), "no `{done}` on syslog: {lines:?}");
    }
}

/// The code block of `markdown` that contains `needle`.
fn code_block(markdown: &str, needle: &str) -> String {
    markdown
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|b| b.split_once('\n').map(|(_, body)| body).unwrap_or(b))
        .find(|b| b.contains(needle))
        .unwrap_or_else(|| panic!("no code block with {needle:?}"))
        .to_string()
}

/// conf.d/zabbix-pagerduty.md: its alert-script wrapper, run as Zabbix runs it (three
/// arguments), with its message templates expanded as Zabbix expands them, for a problem, its
/// acknowledgement (the Problem update template) and its recovery; the trigger name embeds
/// `{ITEM.LASTVALUE}`, so it differs between problem and recovery. The
/// settings file is the shipped conf.d/pagerduty.json, as step 1 says.
#[test]
fn zabbix_with_the_documented_media_type_pages_a_problem_its_acknowledgement_and_its_recovery() {
    let site = Site::new();
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d/zabbix-pagerduty.md")).unwrap();
    // Step 1: the shipped example settings, the routing key filled in (plus the test's paths).
    let mut settings: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d/pagerduty.json"))
            .unwrap()
            .replace("REPLACE_WITH_YOUR_32_CHAR_INTEGRATION_KEY", ROUTING_KEY),
    )
    .unwrap();
    let ours: Value = serde_json::from_slice(&std::fs::read(site.settings()).unwrap()).unwrap();
    for k in ["api_url", "state_dir", "spool_dir"] {
        settings["pagerduty"][k] = ours["pagerduty"][k].clone();
    }
    std::fs::write(site.settings(), serde_json::to_vec_pretty(&settings).unwrap()).unwrap();
    // Step 2: the wrapper.
    let wrapper = site.path("pagerpipe-pagerduty");
    let script = code_block(&md, "#!/bin/sh").replace(SHIPPED_BIN, BIN).replace(SHIPPED_SETTINGS, site.settings().to_str().unwrap());
    std::fs::write(&wrapper, script).unwrap();
    set_mode(&wrapper, 0o755);
    // Step 3: the message template, expanded.
    let template = code_block(&md, "item_value:{ITEM.VALUE}");
    let update_template = code_block(&md, "update_action:{EVENT.UPDATE.ACTION}");
    let expand_in = |template: &str, status: &str, value: &str, last: &str| {
        template
            .replace("{EVENT.UPDATE.ACTION}", "acknowledged and commented")
            .replace("{USER.FULLNAME}", "Ann Admin (ann)")
            .replace("{TRIGGER.ID}", "23502")
            .replace("{TRIGGER.STATUS}", status)
            .replace("{HOST.NAME}", "web-01")
            .replace("{HOST.IP}", "10.0.0.5")
            .replace("{TRIGGER.VALUE}", value)
            .replace("{EVENT.ID}", "81232")
            .replace("{TRIGGER.SEVERITY}", "Average")
            .replace("{TRIGGER.NSEVERITY}", "3")
            .replace("{TRIGGER.URL}", "https://zabbix.example.com/tr_events.php?triggerid=23502")
            .replace("{TRIGGER.NAME}", &format!("Free disk space is {last} on /"))
            .replace("{ITEM.VALUE}", last)
    };
    let expand = |status: &str, value: &str, last: &str| expand_in(&template, status, value, last);
    assert!(!expand("PROBLEM", "1", "x").contains('{'), "every macro of the documented template is expanded: {template}");
    let update = expand_in(&update_template, "PROBLEM", "1", "18.2 %");
    assert!(!update.contains('{'), "every macro of the documented update template is expanded: {update_template}");
    let run = |subject: &str, message: &str| {
        let out = Command::new(&wrapper).env_clear().args(["", subject, message]).output().unwrap();
        assert!(out.status.success(), "{subject}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let log = run("trigger", &expand("PROBLEM", "1", "18.2 %"));
    assert!(!log.contains("readable"), "a root:pagerpipe 0640 settings file is the documented layout: {log}");
    let log = run("update", &update);
    assert!(log.contains("acknowledged"), "{log}");
    run("resolve", &expand("OK", "0", "35.0 %"));
    let ev = site.wait_for_pages(&[("trigger", "23502-web-01"), ("acknowledge", "23502-web-01"), ("resolve", "23502-web-01")], String::new);
    let trigger = ev.iter().find(|e| e["event_action"] == "trigger").unwrap();
    assert_eq!(trigger["payload"]["summary"], "web-01/Free disk space is 18.2 % on /: 18.2 %");
    assert_eq!(trigger["payload"]["severity"], "warning");
}

/// packaging/systemd/pagerpipe-flush@.service, its `ExecStart` run as systemd runs it (`$$` is
/// `$`), for a Nagios or Zabbix site laid out as the guides above say: settings in
/// `/etc/pagerpipe/pagerduty.json`, no `/etc/sensu/conf.d`. The flush reads them, so the
/// spooled page goes out (before, it read no settings: no routing key).
#[test]
fn the_flush_timer_reads_the_settings_file_the_guides_create() {
    let site = Site::new();
    let unit = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd/pagerpipe-flush@.service"));
    let line = |prefix: &str| unit.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no {prefix} line")).to_string();
    let script = line("ExecStart=/bin/sh -c '").strip_suffix('\'').expect("a quoted script").replace("$$", "$");
    let handlers = line("Environment=\"PAGERPIPE_FLUSH=").trim_end_matches('"').to_string();
    assert!(handlers.split(' ').any(|h| h == "pagerduty"), "{handlers}");
    let bin_dir = Path::new(BIN).parent().unwrap().to_str().unwrap().to_string();
    for shipped in ["/usr/bin/handler-", "/etc/pagerpipe/", "/etc/sensu/conf.d"] {
        assert!(script.contains(shipped), "the flush service no longer names {shipped}: {script}");
    }
    let script = script
        .replace("/usr/bin/handler-", &format!("{bin_dir}/handler-"))
        .replace("/etc/pagerpipe/", &format!("{}/", site.dir.path().display()))
        .replace("/etc/sensu/conf.d", site.path("no-sensu").to_str().unwrap());

    let spool = Command::new(BIN)
        .env_clear()
        .args(["--config", site.settings().to_str().unwrap(), "--api-url", "http://127.0.0.1:1", "--timeout", "1s"])
        .stdin(std::fs::File::open(crate::util::fixture("sensu/create.json")).unwrap())
        .output()
        .unwrap();
    assert_eq!(spool.status.code(), Some(75), "{}", String::from_utf8_lossy(&spool.stderr));
    let out = Command::new("/bin/sh").env_clear().env("PAGERPIPE_FLUSH", "pagerduty").args(["-c", &script]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{log}");
    site.wait_for_pages(&[("trigger", "web-01/check_disk")], || log.clone());
}

/// The Sensu Go handler definitions the documents give: each ```yaml block of README.md and
/// docs/*.md holding `type: Handler`, conf.d/*.yml, and the packaged handlers.yml.in.
fn sensu_go_handlers() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut docs = vec![root.join("README.md")];
    let mut more: Vec<_> = std::fs::read_dir(root.join("docs")).unwrap().map(|e| e.unwrap().path()).collect();
    more.sort();
    docs.extend(more);
    for doc in docs {
        for (n, block) in read(&doc).split("```yaml\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap();
            if block.contains("type: Handler") {
                out.push((format!("{} yaml block {n}", doc.display()), block.to_string()));
            }
        }
    }
    for file in [root.join("conf.d/sensu-go-pagerduty.yml"), root.join("packaging/sensu/handlers.yml.in")] {
        for (n, doc) in read(&file).split("\n---\n").enumerate().filter(|(_, d)| d.contains("type: Handler")) {
            out.push((format!("{} document {n}", file.display()), doc.to_string()));
        }
    }
    out
}

/// Every documented Sensu Go handler runs as written on a Sensu Go event (`--dry-run`; paths
/// under `/var/lib/sensu` and `/etc/pagerpipe` rewritten to a temporary directory, the
/// settings file it names being the shipped example of that name), reads the
/// environment variables its `secrets` set, and keeps state and spool together under the
/// backend's directory: the asset brings no `/var/lib/pagerpipe`, and a `--state-dir` without
/// `--spool-dir` left the spool in a per-user fallback, away from what the handlers.yml of the
/// asset and the other guides use.
#[test]
fn every_documented_sensu_go_handler_runs_as_written() {
    let handlers = sensu_go_handlers();
    assert!(handlers.len() >= 9, "{:?}", handlers.iter().map(|(w, _)| w).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    for (where_, def) in handlers {
        let command = def.lines().find_map(|l| l.trim().strip_prefix("command: ")).unwrap_or_else(|| panic!("{where_}: no command"));
        let mut words = command.split_whitespace();
        let name = words.next().unwrap();
        let bin = match name {
            "handler-pagerduty" => BIN,
            "handler-twilio" => env!("CARGO_BIN_EXE_handler-twilio"),
            "handler-reactio" => env!("CARGO_BIN_EXE_handler-reactio"),
            "handler-slack" => env!("CARGO_BIN_EXE_handler-slack"),
            other => panic!("{where_}: {other} is no handler"),
        };
        for flag in ["--state-dir", "--spool-dir"] {
            assert!(command.contains(flag), "{where_}: `{command}` has no {flag}");
        }
        let args: Vec<String> = words
            .map(|w| {
                w.replace("/var/lib/sensu", dir.path().to_str().unwrap())
                    .replace("/etc/pagerpipe", dir.path().join("etc").to_str().unwrap())
            })
            .collect();
        // The settings file the guides say to copy there: the shipped example of that name
        // (conf.d/twilio.json, sequential mode with its own "timeout"), else an empty one.
        for a in args.iter().filter(|a| a.ends_with(".json")) {
            let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d").join(Path::new(a).file_name().unwrap());
            std::fs::write(a, std::fs::read(&example).unwrap_or_else(|_| b"{}".to_vec())).unwrap();
        }
        let help = String::from_utf8(Command::new(bin).arg("--help").env_clear().output().unwrap().stdout).unwrap();
        for secret in def.lines().filter_map(|l| l.trim().strip_prefix("- name: ")) {
            assert!(help.contains(&format!("[env: {secret}")), "{where_}: {name} reads no {secret}");
        }
        let out = Command::new(bin)
            .env_clear()
            .args(&args)
            .arg("--dry-run")
            .stdin(std::fs::File::open(crate::util::fixture("sensu-go/failing.json")).unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{where_}: `{command}`: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// conf.d/mackerel-agent.conf: the check's `action` command run as mackerel-agent runs it
/// (`sh -c`, with the `MACKEREL_*` variables and the action's `env`, if any) after each check
/// run: a change to CRITICAL pages, an unchanged status does not, the change back resolves.
#[test]
fn mackerel_action_as_shipped_pages_a_change_and_its_recovery() {
    let site = Site::new();
    let conf = shipped("mackerel-agent.conf", &site);
    let action = conf.lines().find_map(|l| l.strip_prefix("action = { ")).expect("an action line");
    let command = action.split("command = \"").nth(1).and_then(|s| s.split('"').next()).expect("the action's command");
    let env: Vec<(String, String)> = action
        .split("env = {")
        .nth(1)
        .map(|e| {
            e.split('}')
                .next()
                .unwrap()
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                .collect()
        })
        .unwrap_or_default();
    let run = |status: &str, previous: &str| {
        let out = Command::new("/bin/sh")
            .env_clear()
            .envs(env.iter().cloned())
            .env("MACKEREL_STATUS", status)
            .env("MACKEREL_PREVIOUS_STATUS", previous)
            .env("MACKEREL_CHECK_MESSAGE", format!("nginx {status}"))
            .args(["-c", command])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{status} after {previous}: {log}");
        log
    };
    // The entity is this host's name, as the handler reads it.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let log = run("CRITICAL", "OK");
    site.wait_for_pages(&[("trigger", &format!("{host}/nginx"))], || log.clone());
    run("CRITICAL", "CRITICAL");
    let log = run("OK", "CRITICAL");
    site.wait_for_pages(&[("trigger", &format!("{host}/nginx")), ("resolve", &format!("{host}/nginx"))], || log.clone());
}

/// A directory of `handler-*` scripts running this build's handlers with `sb`'s settings,
/// state and spool, then the arguments they are given: with it first on `PATH`, the README's
/// command lines run as written.
fn handlers_on_path(sb: &crate::util::Sandbox) -> PathBuf {
    let dir = sb.dir.path().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bin) in [
        ("handler-pagerduty", BIN),
        ("handler-twilio", env!("CARGO_BIN_EXE_handler-twilio")),
        ("handler-reactio", env!("CARGO_BIN_EXE_handler-reactio")),
        ("handler-slack", env!("CARGO_BIN_EXE_handler-slack")),
    ] {
        let script = dir.join(name);
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nexec '{bin}' --config '{}' --state-dir '{}' --spool-dir '{}' \"$@\"\n",
                sb.conf_dir().display(),
                sb.state_dir().display(),
                sb.spool_dir().display()
            ),
        )
        .unwrap();
        set_mode(&script, 0o755);
    }
    dir
}

/// `line` run by `sh -c` in `sb`'s directory, with [`handlers_on_path`] first on `PATH`.
fn sh(sb: &crate::util::Sandbox, line: &str) -> crate::util::Run {
    let mut cmd = Command::new("/bin/sh");
    cmd.env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", handlers_on_path(sb).display()))
        .env("PAGERPIPE_RETRY_BASE_MS", "20")
        .current_dir(sb.dir.path())
        .args(["-c", line])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::util::run_command(cmd, b"")
}

fn readme() -> String {
    read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
}

/// README "Scripts and batch jobs": the `--from cli` lines as written: a failed backup pages,
/// `df -h` piped into handler-twilio calls with its output, the good run resolves.
#[test]
fn readme_script_lines_run_as_written() {
    let pd = FakePagerDuty::start(&[]);
    let twilio = crate::fake::twilio::FakeTwilio::start(&[]);
    let sb = crate::util::Sandbox::new(BIN);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY, "api_url": pd.url}}));
    let section = crate::util::twilio_settings(json!({"recipients": ["+14155550101"], "api_url": twilio.url}));
    sb.config("twilio.json", &json!({ "twilio": section }));
    let block = code_block(&readme(), "--from cli --check backup");
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 3, "{block}");
    for line in lines {
        let r = sh(&sb, line);
        assert_eq!(r.code, Some(0), "{line}: {r:?}");
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let pages: Vec<(String, String)> = pd
        .events()
        .iter()
        .map(|e| (e["event_action"].as_str().unwrap().to_string(), e["dedup_key"].as_str().unwrap().to_string()))
        .collect();
    let backup = format!("{host}/backup");
    assert_eq!(pages, [("trigger".to_string(), backup.clone()), ("resolve".to_string(), backup)]);
    assert_eq!(pd.events()[0]["payload"]["custom_details"]["output"], "backup failed: disk full");
    let calls = twilio.to("Calls.json");
    assert_eq!(calls.len(), 1);
    let said = calls[0].twiml.as_ref().unwrap().say.join(" ");
    assert!(said.contains("disk-space") && said.contains("Filesystem"), "df's output is read out: {said}");
    pd.assert_no_violations();
    twilio.assert_no_violations();
}

/// README "The incident ledger": `--list`, `--list --log-format json`, `--forget` (exit 65 for
/// an unknown key, as its comment says) and `--explain < event.json`, as written.
#[test]
fn readme_ledger_lines_run_as_written() {
    let pd = FakePagerDuty::start(&[]);
    let sb = crate::util::Sandbox::new(BIN);
    sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY, "api_url": pd.url}}));
    std::fs::copy(crate::util::fixture("sensu/create.json"), sb.dir.path().join("event.json")).unwrap();
    assert_eq!(sh(&sb, "handler-pagerduty < event.json").code, Some(0));
    let block = code_block(&readme(), "handler-pagerduty --forget");
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    let [list, json_list, forget, explain] = lines[..] else { panic!("four lines: {block}") };
    assert!(forget.contains("exit 65 for an unknown key"), "{forget}");

    let r = sh(&sb, list);
    assert!(r.code == Some(0) && r.stdout.starts_with("web-01/check_disk\topen critical\tsince "), "{r:?}");
    let r = sh(&sb, json_list);
    assert_eq!(r.code, Some(0), "{r:?}");
    let record: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!((record["key"].as_str(), record["open"].as_bool()), (Some("web-01/check_disk"), Some(true)));
    assert_eq!(sh(&sb, forget).code, Some(0));
    assert_eq!(sh(&sb, forget).code, Some(65), "the key is unknown now");
    let r = sh(&sb, explain);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("incident key: web-01/check_disk") && r.stdout.contains("ledger verdict: send the trigger"), "{}", r.stdout);
    assert_eq!(pd.events().len(), 1, "--explain sends nothing");
}

/// The warnings README "Settings files and precedence" quotes are the lines handler-twilio
/// gives for those settings, word for word (the settings file's path aside).
#[test]
fn readme_quotes_the_misspelt_setting_warnings_as_given() {
    let block = code_block(&readme(), "is not a setting of handler-twilio");
    let sb = crate::util::twilio_sandbox(
        json!({"recipients": ["+14155550101"], "check_setting": ["severities"], "check_settings": ["severites"]}),
    );
    let r = sb.run(&["--dry-run"], &crate::util::read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    let conf = sb.conf_dir().join("twilio.json");
    // The block is indented under its list item.
    let lines: Vec<&str> = block.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{block}");
    for line in lines {
        let want = line.replace("/etc/sensu/conf.d/twilio.json", conf.to_str().unwrap());
        assert!(r.stderr.lines().any(|l| l == want), "{want}\nis not among:\n{}", r.stderr);
    }
}

/// `s` with every run of digits as `#`: log lines compared for their words, not their timings.
fn digits_as_hash(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// README "Logs": its three example lines are the lines handler-pagerduty gives (a page, a
/// repeat, a refusal), numbers aside; `…` stands for the service's error detail.
#[test]
fn readme_log_lines_are_the_handlers() {
    let block = code_block(&readme(), "pagerduty: skipped web-01/check_disk: already notified");
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    let [triggered, skipped, refused] = lines[..] else { panic!("three lines: {block}") };
    let sb = crate::util::pagerduty_sandbox();
    let fake = FakePagerDuty::start(&[]);
    let event = crate::util::read_fixture("sensu/create.json");
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(sb.run(&["--api-url", &fake.url], &event).stderr);
    }
    let refusing = FakePagerDuty::start(&[crate::fake::pagerduty::Script::Invalid]);
    let other = crate::util::pagerduty_sandbox();
    got.push(other.run(&["--api-url", &refusing.url], &event).stderr);
    for (want, stderr) in [triggered, skipped, refused].into_iter().zip(&got) {
        let line = stderr.lines().last().unwrap_or_default();
        let (line, want) = (digits_as_hash(line), digits_as_hash(want));
        let mut rest = line.as_str();
        for (i, part) in want.split('…').enumerate() {
            let at = rest.find(part).unwrap_or_else(|| panic!("{part:?} of the README's line is not in:\n{line}"));
            assert!(i > 0 || at == 0, "{line}\nstarts differently from the README's\n{want}");
            rest = &rest[at + part.len()..];
        }
        assert!(want.ends_with('…') || rest.is_empty(), "{line}\nends differently from the README's\n{want}");
    }
}

/// README "Settings files and precedence": environment < flags, for a secret and its `*_file`
/// too. A Sensu Go backend that has `PAGERDUTY_ROUTING_KEY` in its environment (the documented
/// `secrets:`) and a handler command with `--routing-key-file` (the documented systemd
/// credential form) pages with the flag's key, and the other way round; before, the two were
/// taken as "set in the same place" and the handler exited 78.
#[test]
fn readme_a_secret_flag_beats_its_twin_from_the_environment() {
    let sb = crate::util::Sandbox::new(BIN);
    let key_file = sb.dir.path().join("routing_key");
    std::fs::write(&key_file, "filekeyaaaaaaaaaaaaaaaaaaaaaFILE\n").unwrap();
    set_mode(&key_file, 0o600);
    let event = crate::util::read_fixture("sensu/create.json");
    let key_of = |run: &crate::util::Run| {
        assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
        let body: Value = serde_json::from_str(&run.stdout).unwrap();
        body["routing_key"].as_str().unwrap().to_string()
    };

    let mut cmd = sb.command(&["--dry-run", "--routing-key-file", key_file.to_str().unwrap()]);
    cmd.env("PAGERDUTY_ROUTING_KEY", "envkeyaaaaaaaaaaaaaaaaaaaaaaaENV");
    assert!(key_of(&crate::util::run_command(cmd, &event)).ends_with("FILE"));

    let mut cmd = sb.command(&["--dry-run", "--routing-key", "flagkeyaaaaaaaaaaaaaaaaaaaaFLAG0"]);
    cmd.env("PAGERDUTY_ROUTING_KEY_FILE", &key_file);
    assert!(key_of(&crate::util::run_command(cmd, &event)).ends_with("LAG0"));

    // Both from one place (the environment) is still the operator's mistake to fix.
    let mut cmd = sb.command(&["--dry-run"]);
    cmd.env("PAGERDUTY_ROUTING_KEY_FILE", &key_file).env("PAGERDUTY_ROUTING_KEY", "envkeyaaaaaaaaaaaaaaaaaaaaaaaENV");
    let run = crate::util::run_command(cmd, &event);
    assert_eq!(run.code, Some(78), "stderr: {}", run.stderr);
}

/// Every flag a handler's `--help` lists is named in README.md or the handler's own guide
/// (`docs/<name>.md`), so an operator reading the documents finds each one.
#[test]
fn every_help_flag_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = read(&root.join("README.md"));
    for (name, bin) in [
        ("pagerduty", env!("CARGO_BIN_EXE_handler-pagerduty")),
        ("twilio", env!("CARGO_BIN_EXE_handler-twilio")),
        ("reactio", env!("CARGO_BIN_EXE_handler-reactio")),
        ("slack", env!("CARGO_BIN_EXE_handler-slack")),
    ] {
        let docs = format!("{readme}\n{}", read(&root.join("docs").join(format!("{name}.md"))));
        let out = Command::new(bin).arg("--help").output().unwrap();
        assert!(out.status.success(), "handler-{name} --help failed");
        let help = String::from_utf8(out.stdout).unwrap();
        // An option's own line: `      --flag <VALUE>` or `  -v, --verbose` (descriptions are
        // indented further).
        let flags: Vec<&str> = help
            .lines()
            .filter_map(|l| l.strip_prefix("      --").map(|_| &l[6..]).or_else(|| l.strip_prefix("  -").and_then(|r| r.get(4..))))
            .filter(|l| l.starts_with("--"))
            .filter_map(|l| l.split(' ').next())
            .filter(|f| !matches!(*f, "--help" | "--verbose"))
            .collect();
        assert!(flags.len() > 20, "handler-{name} --help lists too few flags to be read right: {flags:?}");
        let named = |flag: &str| {
            docs.match_indices(flag).any(|(at, _)| {
                let next = docs[at + flag.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        };
        let missing: Vec<&str> = flags.into_iter().filter(|f| !named(f)).collect();
        assert!(missing.is_empty(), "handler-{name} --help lists flags README.md and docs/{name}.md never name: {missing:?}");
        // The environment variables it reads (`[env: NAME]`, `[env: NAME=]` when unset).
        let vars: Vec<&str> =
            help.match_indices("[env: ").map(|(at, m)| &help[at + m.len()..]).filter_map(|r| r.split([']', '=']).next()).collect();
        assert!(vars.contains(&"PAGERPIPE_STATE_STORE"), "handler-{name}: {vars:?}");
        let missing: Vec<&str> = vars.into_iter().filter(|v| !named(v)).collect();
        assert!(missing.is_empty(), "handler-{name} --help reads variables README.md and docs/{name}.md never name: {missing:?}");
    }
}

/// README's first screen: its two commands. The first (`cargo run -q --bin handler-pagerduty --
/// --dry-run < tests/fixtures/sensu/create.json`) is run with this build's binary for `cargo run
/// -q --bin NAME --` (one cargo at a time), from the repository root, and prints the trigger
/// it would send. The second is what `.ci/run` runs, command for command; and every
/// `apt-get install` the README names installs the packages `.ci/run` installs, no fewer.
#[test]
fn readme_first_screen_commands_are_what_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = readme();
    let first = readme.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("a ```sh block");
    let commands: Vec<&str> = first.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let [dry_run, suite] = commands[..] else { panic!("two commands on the first screen: {first}") };

    let (cargo_run, rest) = dry_run.split_once(" -- ").expect("cargo run … -- ARGS");
    assert_eq!(cargo_run, "cargo run -q --bin handler-pagerduty", "{dry_run}");
    let (args, input) = rest.split_once(" < ").expect("an event on stdin");
    let event = std::fs::read(root.join(input.trim())).unwrap_or_else(|e| panic!("{input}: {e}"));
    let out = Command::new(BIN)
        .args(args.split_whitespace())
        .current_dir(root)
        .env("HOME", tempfile::tempdir().unwrap().path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(&event)?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{dry_run}: {out:?}");
    let body: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{dry_run}: not the request's JSON ({e}): {out:?}"));
    assert_eq!((body["event_action"].as_str(), body["dedup_key"].as_str()), (Some("trigger"), Some("web-01/check_disk")), "{body}");

    let ci = read(&root.join(".ci/run"));
    let ci_lines: Vec<&str> = ci.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    for command in suite.split("&&").map(str::trim) {
        assert!(
            ci_lines.iter().any(|l| *l == command || l.starts_with(&format!("{command} "))),
            "README's `{command}` is not a command of .ci/run:\n{ci}"
        );
    }
    // The packages: `.ci/run`'s one `apt-get install` line, and each the README suggests.
    let packages = |line: &str| -> std::collections::BTreeSet<String> {
        let after = line.split("apt-get install").nth(1).unwrap_or_default();
        after
            .split(['`', ')', '>'])
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .filter(|w| !w.starts_with('-'))
            .map(str::to_string)
            .collect()
    };
    let ci_install = ci_lines.iter().find(|l| l.starts_with("apt-get install")).expect(".ci/run installs packages");
    let want = packages(ci_install);
    assert!(want.contains("redis-server"), "{want:?}");
    let flat = readme.replace('\n', " ");
    let suggested: Vec<&str> =
        flat.match_indices("apt-get").map(|(at, _)| &flat[at..]).filter(|s| s.starts_with("apt-get install")).collect();
    assert!(suggested.len() >= 2, "README names the packages on its first screen and under Testing");
    for s in suggested {
        assert_eq!(packages(s), want, "README's `{}` vs .ci/run's", &s[..s.find('`').unwrap_or(s.len()).min(90)]);
    }
}
