//! Test helpers: a fresh directory per test and a ready command for a handler binary.
//!
//! Every command runs with a cleared environment (no proxy, no real credentials, no HOME), its
//! own state directory, and fast retries (`PAGERPIPE_RETRY_BASE_MS=20`), so tests are
//! independent of the machine and of each other.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A 32-character routing key used by the tests (never a real one).
pub const ROUTING_KEY: &str = "R0ut1ngKeyF0rTests0000000000abcd";

/// A service URL where nothing listens: loopback port 1 (tcpmux, a privileged port no test
/// machine serves), so a connection is refused at once. Tests never bind a port, drop it and
/// hope it stays free.
pub const REFUSED_URL: &str = "http://127.0.0.1:1";

/// A loopback service a connection to which is neither refused nor made: a listener with a
/// backlog of one whose accept queue the test filled, so the kernel drops every further SYN
/// (as a firewall dropping packets, or a host gone from the network, makes a connect hang until
/// its timeout). Dropped, it closes the port.
pub struct Unconnectable {
    _listener: socket2::Socket,
    _queued: Vec<std::net::TcpStream>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Unconnectable {
    /// Bind, listen with a backlog of one, and connect until a connection is neither made nor
    /// refused within 200 ms (the queue is full).
    pub fn start() -> Unconnectable {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
        listener.bind(&any.into()).expect("bind");
        listener.listen(1).expect("listen");
        let addr = listener.local_addr().expect("address").as_socket().expect("an IP address");
        let mut queued = Vec::new();
        loop {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(c) => queued.push(c),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(e) => panic!("filling the accept queue of {addr}: {e}"),
            }
            assert!(queued.len() < 64, "the accept queue of {addr} never filled");
        }
        Unconnectable { _listener: listener, _queued: queued, url: format!("http://{addr}") }
    }
}

/// A loopback service that accepts connections and then stalls: it reads what the client sends
/// first, writes `reply` (possibly nothing) and answers nothing more while it lives, keeping
/// every connection open (a TLS server that never finishes its handshake, a proxy that never
/// answers `CONNECT`, a service that sends a response's head and never its body). Stopped when
/// dropped.
pub struct Stalling {
    /// `127.0.0.1:PORT`.
    pub addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Stalling {
    /// Listen on a free port of 127.0.0.1.
    pub fn start(reply: &'static [u8]) -> Stalling {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut open = Vec::new();
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut first = [0u8; 4096];
                let _ = std::io::Read::read(&mut conn, &mut first);
                let _ = conn.write_all(reply);
                open.push(conn);
            }
        });
        Stalling { addr, stop }
    }
}

impl Drop for Stalling {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accepting thread so that it sees the stop (and closes every connection).
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).map(|mut c| c.write_all(b"\r\n\r\n"));
    }
}

/// Path of a fixture under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

/// Read a fixture.
pub fn read_fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// The Mackerel webhook alert of `mackerel/check-alert.json` as the host `host_id`'s alert
/// `alert_id` sends it in `status` (`ok`: closed), created and changed at `changed` (Unix
/// seconds): [`mackerel_status`].
pub fn mackerel_alert(host_id: &str, alert_id: &str, status: &str, changed: i64) -> serde_json::Value {
    let mut w: serde_json::Value = serde_json::from_slice(&read_fixture("mackerel/check-alert.json")).expect("fixture is JSON");
    w["host"]["id"] = host_id.into();
    w["alert"]["id"] = alert_id.into();
    w["alert"]["createdAt"] = (changed * 1000).into();
    w["alert"]["openedAt"] = changed.into();
    mackerel_status(&mut w, status, changed);
    w
}

/// Set a Mackerel webhook alert's `status`, changed at `changed` (Unix seconds): open unless
/// `ok`, then closed at `changed`.
pub fn mackerel_status(w: &mut serde_json::Value, status: &str, changed: i64) {
    w["alert"]["status"] = status.into();
    w["alert"]["statusChangedAt"] = changed.into();
    w["alert"]["isOpen"] = (status != "ok").into();
    w["alert"]["closedAt"] = if status == "ok" { changed.into() } else { serde_json::Value::Null };
}

/// This machine's clock, Unix seconds: for event times near now (a Sensu `check.executed` is
/// believed only up to 60 s before its receipt).
pub fn unix_now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()).expect("time")
}

/// This test process's effective uid: the handlers it runs lock in `.locks-<euid>`
/// ([`common::files::euid`], which names that file).
pub fn euid() -> u32 {
    common::files::euid()
}

/// A Sensu fixture (1.x or Go) whose check ran at `executed` (Unix seconds): the ledger applies
/// an incident's events in the order of these times, so a test that replays `create` after
/// `resolve` gives the second failure a later time, as a real check run would have.
pub fn fixture_at(rel: &str, executed: i64) -> Vec<u8> {
    let mut ev: serde_json::Value = serde_json::from_slice(&read_fixture(rel)).expect("fixture is JSON");
    if let Some(check) = ev.get_mut("check").and_then(serde_json::Value::as_object_mut) {
        check.insert("executed".into(), executed.into());
        check.insert("issued".into(), executed.into());
    }
    if ev.get("timestamp").is_some() {
        ev["timestamp"] = executed.into();
    }
    serde_json::to_vec(&ev).expect("JSON")
}

/// The result of running a handler.
#[derive(Debug)]
pub struct Run {
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
    /// Wall time.
    pub took: Duration,
}

impl Run {
    /// The run of a finished process: its exit code, output, and how long it took.
    pub fn from(out: Output, took: Duration) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took,
        }
    }
}

/// A scratch directory with a state dir and a config dir, and a handler to run in it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub bin: &'static str,
    /// `--state-store` for every command (a shared ledger, e.g. `redis://…`); `None`: the
    /// file store in [`Sandbox::state_dir`].
    state_store: Option<String>,
    /// Environment variables for every command, besides the sandbox's own.
    env: Vec<(String, String)>,
}

impl Sandbox {
    /// A sandbox for the handler binary at `bin` (`env!("CARGO_BIN_EXE_handler-pagerduty")`).
    pub fn new(bin: &'static str) -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        Sandbox { dir, bin, state_store: None, env: Vec::new() }
    }

    /// This sandbox with every command run with the environment variable `name` set to `value`.
    pub fn with_env(mut self, name: &str, value: &str) -> Sandbox {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// This sandbox with every command run with `--state-store url` (the ledger shared by the
    /// "hosts" of a test), besides its `--state-dir`.
    pub fn with_state_store(mut self, url: &str) -> Sandbox {
        self.state_store = Some(url.to_string());
        self
    }

    /// The state directory passed with `--state-dir`.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Path of `file` (e.g. `web-01%2Fcheck_disk.json`, or the lock file `.locks-<euid>`) in
    /// `handler`'s directory of the state store, which is created when missing: where a test
    /// plants a record or a lock file before the handler runs.
    pub fn state_file(&self, handler: &str, file: &str) -> PathBuf {
        let dir = self.state_dir().join(handler);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(file)
    }

    /// The one entry `handler`'s spool holds: its path and its JSON, for a test that rewrites
    /// it. Fails the test, showing `stderr` (of the run that spooled it), unless exactly one
    /// entry is queued.
    pub fn spooled_entry(&self, handler: &str, stderr: &str) -> (PathBuf, serde_json::Value) {
        let names = self.spooled(handler);
        assert_eq!(names.len(), 1, "{stderr}");
        let path = self.spool_dir().join(handler).join(&names[0]);
        let entry = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        (path, entry)
    }

    /// The spool directory passed with `--spool-dir`.
    pub fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// Names of the queued spool entries of `handler`, oldest first.
    pub fn spooled(&self, handler: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.spool_dir().join(handler))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    /// The entries `handler`'s spool moved to `failed/`, oldest first, as JSON (each with its
    /// `failure`).
    pub fn failed(&self, handler: &str) -> Vec<serde_json::Value> {
        let dir = self.spool_dir().join(handler).join("failed");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        names.sort();
        names.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    /// The config directory passed with `--config`.
    pub fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("conf.d")
    }

    /// The stored state record `file` of `handler` (panics when absent or not JSON).
    pub fn state(&self, handler: &str, file: &str) -> serde_json::Value {
        let p = self.state_dir().join(handler).join(file);
        serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).expect("state record is JSON")
    }

    /// Write `conf.d/<name>` with `json`.
    /// Mode 0600, as a settings file holding a secret should be (a looser one is warned about).
    pub fn config(&self, name: &str, json: &serde_json::Value) -> &Self {
        let path = self.conf_dir().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(json).unwrap()).unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        self
    }

    /// A command with the sandbox's `--config`, `--state-dir` and `--spool-dir`, a clean
    /// environment and `args`.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_for(self.bin, args)
    }

    /// [`Sandbox::command`] for another handler binary, sharing this sandbox's settings, state
    /// and spool (e.g. handler-slack's war room, then handler-twilio announcing into it).
    pub fn command_for(&self, bin: &str, args: &[&str]) -> Command {
        self.command_with(bin, &self.spool_dir(), args)
    }

    /// [`Sandbox::command`] with no spool directory it can use: `--spool-dir` and
    /// `XDG_STATE_HOME` (where the spool falls back to) both lie under a regular file. A
    /// request neither delivered nor spooled has its event printed to stderr
    /// (`undelivered event, not spooled: …`).
    pub fn command_without_spool(&self, args: &[&str]) -> Command {
        let file = self.dir.path().join("spool-is-a-file");
        std::fs::write(&file, "x").unwrap();
        let mut cmd = self.command_with(self.bin, &file.join("spool"), args);
        cmd.env("XDG_STATE_HOME", &file);
        cmd
    }

    /// [`Sandbox::command`] as another host sharing the ledger would run it: the same settings
    /// and state, its own spool directory (`hosts/<host>/spool`).
    pub fn command_on_host(&self, host: &str, args: &[&str]) -> Command {
        self.command_with(self.bin, &self.dir.path().join("hosts").join(host).join("spool"), args)
    }

    fn command_with(&self, bin: &str, spool: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("PAGERPIPE_RETRY_BASE_MS", "20")
            .arg("--config")
            .arg(self.conf_dir())
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--spool-dir")
            .arg(spool)
            .args(self.state_store.iter().flat_map(|url| ["--state-store", url.as_str()]))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Run with `stdin` as the event.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_command(self.command(args), stdin)
    }
}

/// `cmd` run under `prlimit --as=BYTES` (util-linux): an address-space limit, so that a test
/// can tell a handler that needs more memory than `bytes` (it aborts) from one that does not,
/// with no clock involved. The same program, arguments and environment (cleared, as
/// [`Sandbox::command`] makes them). Check [`require_program`]`("/usr/bin/prlimit", "util-linux")` first.
pub fn under_memory_limit(cmd: &Command, bytes: u64) -> Command {
    wrapped(cmd, "/usr/bin/prlimit", &[&format!("--as={bytes}"), "--"])
}

/// `cmd`'s program and arguments run by `wrapper` with `wrapper_args` before them, with the
/// same environment (cleared, as [`Sandbox::command`] makes them) and piped stdio.
fn wrapped(cmd: &Command, wrapper: &str, wrapper_args: &[&str]) -> Command {
    let mut limited = Command::new(wrapper);
    limited.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            limited.env(k, v);
        }
    }
    limited
        .args(wrapper_args)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    limited
}

/// `cmd` run as on a full disk: `/bin/sh` ignores SIGXFSZ, sets `ulimit -f 0` (RLIMIT_FSIZE)
/// and `exec`s the program, so that every write of a byte to a file fails with `EFBIG`, as it
/// fails with `ENOSPC` when /var is full: for any user, root too, without a mount. As on a
/// full disk, empty files (locks, holds) are still created and files removed and renamed.
/// Stdin, stdout and stderr are pipes, which the limit does not touch. The same program,
/// arguments and environment (cleared, as [`Sandbox::command`] makes them).
pub fn on_a_full_disk(cmd: &Command) -> Command {
    wrapped(cmd, "/bin/sh", &["-c", "trap '' XFSZ; ulimit -f 0 && exec \"$0\" \"$@\""])
}

/// `base` (a settings object) with the settings of `extra` (an object; anything else adds
/// nothing) laid over it, one level deep.
pub fn laid_over(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(b), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
        b.extend(extra);
    }
    base
}

/// A sandbox for handler-pagerduty whose settings file's `pagerduty` section is `section`.
pub fn pagerduty_sandbox_with(section: serde_json::Value) -> Sandbox {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-pagerduty"));
    sb.config("pagerduty.json", &serde_json::json!({ "pagerduty": section }));
    sb
}

/// A sandbox for handler-pagerduty whose settings file holds [`ROUTING_KEY`].
pub fn pagerduty_sandbox() -> Sandbox {
    pagerduty_sandbox_with(serde_json::json!({ "routing_key": ROUTING_KEY }))
}

/// A `twilio` settings section with the fake Twilio's account and token and `From`
/// +14155550199, and the settings of `section` (an object) laid over them.
pub fn twilio_settings(section: serde_json::Value) -> serde_json::Value {
    use crate::fake::twilio::{ACCOUNT_SID, AUTH_TOKEN};
    laid_over(serde_json::json!({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": "+14155550199"}), section)
}

/// A sandbox for handler-twilio whose settings file holds [`twilio_settings`] of `section`
/// (an object: `recipients` at least).
pub fn twilio_sandbox(section: serde_json::Value) -> Sandbox {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_handler-twilio"));
    sb.config("twilio.json", &serde_json::json!({ "twilio": twilio_settings(section) }));
    sb
}

/// `cmd` with the Nagios environment of a notification of `kind` (`PROBLEM`,
/// `ACKNOWLEDGEMENT` …) for `web-01`'s `check_disk` (CRITICAL, output `DISK CRITICAL`), for
/// `--from nagios`.
pub fn nagios_critical<'a>(cmd: &'a mut Command, kind: &str) -> &'a mut Command {
    cmd.env("NAGIOS_NOTIFICATIONTYPE", kind)
        .env("NAGIOS_HOSTNAME", "web-01")
        .env("NAGIOS_SERVICEDESC", "check_disk")
        .env("NAGIOS_SERVICESTATE", "CRITICAL")
        .env("NAGIOS_SERVICEOUTPUT", "DISK CRITICAL")
}

/// `cmd` with the Nagios environment of an acknowledgement of `web-01`'s `check_disk`
/// ([`nagios_critical`]) by `author`.
pub fn nagios_ack<'a>(cmd: &'a mut Command, author: &str) -> &'a mut Command {
    nagios_critical(cmd, "ACKNOWLEDGEMENT").env("NAGIOS_SERVICEACKAUTHOR", author)
}

/// Run `sb`'s handler with `args` and `--from nagios` on the Nagios environment of a `kind`
/// notification of `web-01`'s `check_disk` at `NAGIOS_TIMET` `at`: `ACKNOWLEDGEMENT` by bob
/// ([`nagios_ack`]), `RECOVERY` in state OK, else a CRITICAL ([`nagios_critical`]) of that type.
pub fn nagios_at(sb: &Sandbox, args: &[&str], kind: &str, at: i64) -> Run {
    let mut cmd = sb.command(args);
    cmd.args(["--from", "nagios"]);
    match kind {
        "ACKNOWLEDGEMENT" => nagios_ack(&mut cmd, "bob"),
        "RECOVERY" => nagios_critical(&mut cmd, kind).env("NAGIOS_SERVICESTATE", "OK").env("NAGIOS_SERVICEOUTPUT", "DISK OK"),
        _ => nagios_critical(&mut cmd, kind),
    };
    cmd.env("NAGIOS_TIMET", at.to_string());
    run_command(cmd, b"")
}

/// Spawn `cmd`, feed `stdin`, wait. Panics only on spawn failure.
pub fn run_command(mut cmd: Command, stdin: &[u8]) -> Run {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn handler");
    {
        let mut input = child.stdin.take().unwrap();
        // The handler may exit before reading everything (oversize input): ignore EPIPE.
        let _ = input.write_all(stdin);
    }
    let out = child.wait_with_output().expect("wait handler");
    Run::from(out, start.elapsed())
}

/// [`run_command`], bounded: a handler still running after `limit` (one that blocks for good,
/// e.g. on a FIFO) is killed (SIGKILL, by its PID) and the test fails, instead of hanging the
/// suite.
pub fn run_within(mut cmd: Command, stdin: &[u8], limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn handler");
    let pid = child.id();
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Run::from(out.expect("wait handler"), start.elapsed()),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the handler (PID {pid}) was still running after {limit:?}: killed");
        }
    }
}

/// Run every command in `cmds` at once: all are started first, then each is given `stdin`
/// (so that they meet at the state directory together, as a storm of events does), and all are
/// awaited. Their runs, in the order given.
pub fn run_together(cmds: Vec<Command>, stdin: &[u8]) -> Vec<Run> {
    let start = Instant::now();
    let mut children: Vec<_> = cmds
        .into_iter()
        .map(|mut cmd| cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn handler"))
        .collect();
    for child in &mut children {
        let _ = child.stdin.take().expect("stdin").write_all(stdin);
    }
    children.into_iter().map(|child| Run::from(child.wait_with_output().expect("wait handler"), start.elapsed())).collect()
}

/// Spawn `cmd` with `stdin` written and closed, for a handler that runs while the test acts
/// (stopped by its PID with [`std::process::Child::kill`], or awaited with [`finish`]).
pub fn spawn_command(mut cmd: Command, stdin: &[u8]) -> std::process::Child {
    let mut child = cmd.spawn().expect("spawn handler");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    child
}

/// Wait for a handler started with [`spawn_command`].
pub fn finish(child: std::process::Child) -> Run {
    let start = Instant::now();
    let out = child.wait_with_output().expect("wait handler");
    Run::from(out, start.elapsed())
}

/// Whether the real program at `path` (from the Debian package `package`) is installed, for
/// tests that drive a real monitoring server. Missing under `CI=true` is a failure (`.ci/run`
/// installs every such package); elsewhere the test reports itself as skipped on stderr and
/// returns without asserting anything.
pub fn require_program(path: &str, package: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but {path} is missing: .ci/run must install {package}");
    eprintln!("\n*** SKIPPED: {path} not found (apt-get install {package}) ***\n");
    false
}

/// Poll `cond` every 100 ms until it returns `Some`, for at most `limit`; panics naming `what`
/// and the `context` (e.g. a server's log) when it never does. For conditions observable from
/// the outside (a fake received a request), never as a fixed sleep.
pub fn wait_until<T>(what: &str, limit: Duration, mut cond: impl FnMut() -> Option<T>, context: impl Fn() -> String) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}; {}", context());
        // A test holding a Redis store's hold waits as a handler does: a wait that reaches a
        // third of the lease starts its renewal (`common::lease`).
        common::lease::sleep(Duration::from_millis(100));
    }
}

/// A process a test started that would not end by itself — a real server (Nagios, Icinga 2),
/// a child holding a lease until it is killed — in a process group of its own, whose id is the
/// process's PID; the whole group is killed (SIGKILL) when dropped, also when the test fails
/// first, because these processes fork workers and helpers that would outlive their parent.
pub struct ServerProcess(std::process::Child);

impl ServerProcess {
    /// Spawn `command` as the leader of a new process group. Panics when it cannot start.
    pub fn start(mut command: Command) -> ServerProcess {
        use std::os::unix::process::CommandExt;
        ServerProcess(command.process_group(0).spawn().unwrap_or_else(|e| panic!("start {command:?}: {e}")))
    }

    /// The process's standard output, when it was piped (once).
    pub fn stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.0.stdout.take()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

/// A real `redis-server` (Debian package `redis-server`) on 127.0.0.1, started for one test with
/// a random password, no persistence (`--save '' --appendonly no`) and its own directory; stopped
/// by PID when dropped.
pub struct RedisServer {
    /// `redis://:<password>@127.0.0.1:<port>/0` or `rediss://…`.
    pub url: String,
    /// The password (`--requirepass`).
    pub password: String,
    /// The TCP (or TLS) port.
    pub port: u16,
    /// The CA that signed the TLS server's certificate (`ca_file`), for a TLS server.
    pub ca_file: Option<std::path::PathBuf>,
    child: Option<std::process::Child>,
    /// The command line it was started with, to start it again ([`RedisServer::restart`]).
    command: Vec<std::ffi::OsString>,
    dir: tempfile::TempDir,
}

/// Where Debian's `redis-server` package installs it (`redis-cli` comes with it).
const REDIS_SERVER: &str = "/usr/bin/redis-server";

impl RedisServer {
    /// A plain-TCP server. `None` (with a loud SKIPPED line) when `redis-server` is not installed;
    /// under `CI=true` a missing `redis-server` fails the test instead (`.ci/run` installs it).
    pub fn start() -> Option<RedisServer> {
        RedisServer::launch(None, &[])
    }

    /// A plain-TCP server started with `extra` arguments (`--rename-command EVAL ""`: a
    /// server without scripting). `None` as for [`RedisServer::start`].
    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        RedisServer::launch(None, extra)
    }

    /// A plain-TCP server that is a read-only replica of `primary` (`--replicaof`, with the
    /// same password), once it has synchronised with it. `None` as for [`RedisServer::start`].
    pub fn start_replica_of(primary: &RedisServer) -> Option<RedisServer> {
        let port = primary.port.to_string();
        let mut replica = RedisServer::launch_with_password(
            None,
            &["--replicaof", "127.0.0.1", &port, "--masterauth", &primary.password],
            &primary.password,
        )?;
        let synced = |r: &mut RedisServer| r.cli(&["INFO", "replication"]).is_ok_and(|info| info.contains("master_link_status:up"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !synced(&mut replica) {
            assert!(Instant::now() < deadline, "the replica never synchronised with its primary");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(replica)
    }

    /// A TLS-only server (`--port 0 --tls-port P`) with a certificate for `127.0.0.1` signed by
    /// a CA made now (its PEM file is [`RedisServer::ca_file`]). `None` as for [`RedisServer::start`].
    pub fn start_tls() -> Option<RedisServer> {
        RedisServer::launch(Some(crate::fake::tls::Pki::new(&["127.0.0.1"])), &[])
    }

    /// A server with a new random password and `extra` arguments.
    fn launch(pki: Option<crate::fake::tls::Pki>, extra: &[&str]) -> Option<RedisServer> {
        let password = format!(
            "pw{:x}{:x}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        );
        RedisServer::launch_with_password(pki, extra, &password)
    }

    fn launch_with_password(pki: Option<crate::fake::tls::Pki>, extra: &[&str], password: &str) -> Option<RedisServer> {
        if !require_program(REDIS_SERVER, "redis-server") {
            return None;
        }
        let password = password.to_string();
        // The free port is found by binding port 0; another process could take it before
        // redis-server binds it, so a server that exits at once is started again on another.
        for _ in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut cmd = Command::new(REDIS_SERVER);
            cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--requirepass", &password])
                .args(extra)
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(dir.path().join("redis.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut ca_file = None;
            let scheme = match &pki {
                None => {
                    cmd.args(["--port", &port.to_string()]);
                    "redis"
                }
                Some(pki) => {
                    let ca = pki.write_ca(dir.path(), "ca.pem");
                    std::fs::write(dir.path().join("server.pem"), &pki.server_pem.0).unwrap();
                    std::fs::write(dir.path().join("server.key"), &pki.server_pem.1).unwrap();
                    cmd.args(["--port", "0", "--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
                        .arg("--tls-cert-file")
                        .arg(dir.path().join("server.pem"))
                        .arg("--tls-key-file")
                        .arg(dir.path().join("server.key"))
                        .arg("--tls-ca-cert-file")
                        .arg(&ca);
                    ca_file = Some(ca);
                    "rediss"
                }
            };
            let child = cmd.spawn().expect("spawn redis-server");
            let mut server = RedisServer {
                url: format!("{scheme}://:{password}@127.0.0.1:{port}/0"),
                password: password.clone(),
                port,
                ca_file,
                child: Some(child),
                command: cmd.get_args().map(std::ffi::OsStr::to_os_string).collect(),
                dir,
            };
            if server.wait_ready() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on a free port in 10 tries");
    }

    /// Wait until the server answers `PING` as this server (with its password): `true`; `false`
    /// when it exited first (its port was taken). Panics when it neither answers nor exits
    /// within 20 s, with its log.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
                if log.contains("Address already in use") {
                    self.child = None;
                    return false;
                }
                panic!("redis-server exited ({status}):\n{log}");
            }
            if self.cli(&["PING"]).is_ok_and(|out| out.trim() == "PONG") {
                return true;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
                panic!("redis-server did not answer PING within 20 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run `redis-cli` against this server with `args` (one command): its output, or the error
    /// (non-zero exit, or an `(error)`/`ERR` answer) as text.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("/usr/bin/redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--no-auth-warning", "-a", &self.password]);
        if let Some(ca) = &self.ca_file {
            cmd.arg("--tls").arg("--cacert").arg(ca);
        }
        let out = cmd.args(args).stdin(Stdio::null()).output().map_err(|e| format!("redis-cli: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || text.starts_with("ERR") || text.starts_with("(error)") || text.starts_with("NOAUTH") {
            return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(text)
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Stop the server now (SIGKILL by PID) and wait for it: its port is closed afterwards.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restart the server as an operator's `systemctl restart redis-server` would, without
    /// persistence: stop it (SIGKILL by PID), start it again on the same port with the same
    /// settings, empty, and wait until it answers. Its clients' connections are cut.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(REDIS_SERVER)
            .args(&self.command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        assert!(self.wait_ready(), "redis-server could not take its port {} again", self.port);
    }

    /// Send `signal` (`STOP`, `CONT`) to the server by PID.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().expect("kill").success();
        assert!(ok, "kill -{signal} {}", self.pid());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL stops a stopped (SIGSTOP) server too.
        self.kill();
    }
}

/// `--from nagios` and one `--field` for each of `fields` (`NAME=value`: the README's argument
/// form of a Nagios notification command).
pub fn nagios_fields<S: AsRef<str>>(fields: &[S]) -> Vec<&str> {
    let mut args = vec!["--from", "nagios"];
    for f in fields {
        args.extend(["--field", f.as_ref()]);
    }
    args
}
