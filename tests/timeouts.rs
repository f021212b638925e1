//! Stalling services: a handler must give up by `--timeout` + 1 s and exit 75 (spooling the
//! page), whatever way the service stalls.
//!
//! Four raw TCP fakes on 127.0.0.1, each for every connection:
//! - **silent**: accepts, reads the request, never answers;
//! - **headers then stall**: sends a complete `200` status line and headers announcing a body,
//!   then nothing;
//! - **drip headers**: sends the status line and headers one byte a second;
//! - **drip body**: sends the headers, then the announced body one byte a second.
//!
//! The elapsed-time bound is a correctness bound (the handler's own `--timeout` contract, which
//! the monitoring system's handler timeout is set against), not a benchmark.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::fake::pagerduty::FakePagerDuty;
use crate::fake::reactio;
use crate::util::{ROUTING_KEY, Run, Sandbox, pagerduty_sandbox, read_fixture, run_command, wait_until};

/// How a fake stalls.
#[derive(Debug, Clone, Copy)]
enum Stall {
    Silent,
    HeadersThenNothing,
    DripHeaders,
    DripBody,
}

const ALL: [Stall; 4] = [Stall::Silent, Stall::HeadersThenNothing, Stall::DripHeaders, Stall::DripBody];

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n";

/// A stalling server; stops (and closes every connection) when dropped.
struct Staller {
    url: String,
    stop: Arc<AtomicBool>,
    accepts: Option<JoinHandle<()>>,
}

impl Staller {
    fn start(how: Stall) -> Staller {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let accepts = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let flag = Arc::clone(&flag);
                        conns.push(std::thread::spawn(move || serve(stream, how, &flag)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Staller { url, stop, accepts: Some(accepts) }
    }
}

impl Drop for Staller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accepts.take() {
            let _ = t.join();
        }
    }
}

/// Wait up to `d`, in small steps, returning early when stopped.
fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn serve(mut stream: TcpStream, how: Stall, stop: &AtomicBool) {
    // Read the request head (and whatever body arrives) without blocking forever.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16 * 1024];
    let _ = stream.read(&mut buf);
    let drip = |stream: &mut TcpStream, bytes: &[u8]| {
        for b in bytes {
            if stream.write_all(&[*b]).is_err() || !pause(Duration::from_secs(1), stop) {
                return;
            }
        }
    };
    match how {
        Stall::Silent => {}
        Stall::HeadersThenNothing => {
            let _ = stream.write_all(HEAD);
        }
        Stall::DripHeaders => drip(&mut stream, HEAD),
        Stall::DripBody => {
            if stream.write_all(HEAD).is_ok() {
                drip(&mut stream, &[b' '; 200]);
            }
        }
    }
    // Hold the connection open until the test is over.
    while pause(Duration::from_secs(1), stop) {}
}

const TIMEOUT_SECS: u64 = 2;

fn assert_gives_up_in_time(handler: &str, sb: &Sandbox, how: Stall, run: crate::util::Run) {
    let bound = Duration::from_secs(TIMEOUT_SECS + 1);
    assert_eq!(run.code, Some(75), "{handler} / {how:?}: {run:?}");
    assert!(run.took <= bound, "{handler} / {how:?}: took {:?}, over --timeout {TIMEOUT_SECS}s + 1 s\n{}", run.took, run.stderr);
    assert!(!run.stderr.contains("panicked"), "{handler} / {how:?}: {}", run.stderr);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with(&format!("{handler}: error:"))).collect();
    assert_eq!(errors.len(), 1, "{handler} / {how:?}: one error line\n{}", run.stderr);
    assert!(errors[0].contains("not delivered"), "{handler} / {how:?}: {}", errors[0]);
    // Not delivered, so nothing lost: the page waits in the spool.
    assert_eq!(sb.spooled(handler).len(), 1, "{handler} / {how:?}: spool {:?}\n{}", sb.spooled(handler), run.stderr);
}

#[test]
fn pagerduty_gives_up_on_every_kind_of_stall_by_timeout_plus_one_second() {
    const BIN: &str = env!("CARGO_BIN_EXE_handler-pagerduty");
    for how in ALL {
        let server = Staller::start(how);
        let sb = Sandbox::new(BIN);
        sb.config("pagerduty.json", &json!({"pagerduty": {"routing_key": ROUTING_KEY}}));
        let timeout = format!("{TIMEOUT_SECS}s");
        let cmd = sb.command(&["--api-url", &server.url, "--timeout", &timeout]);
        let run = run_command(cmd, &read_fixture("sensu/create.json"));
        assert_gives_up_in_time("pagerduty", &sb, how, run);
    }
}

#[test]
fn reactio_gives_up_on_every_kind_of_stall_by_timeout_plus_one_second() {
    const BIN: &str = env!("CARGO_BIN_EXE_handler-reactio");
    for how in ALL {
        let server = Staller::start(how);
        let sb = Sandbox::new(BIN);
        sb.config("reactio.json", &json!({"reactio": {"api_key": reactio::API_KEY, "organization": "example"}}));
        let timeout = format!("{TIMEOUT_SECS}s");
        let cmd = sb.command(&["--api-url", &server.url, "--timeout", &timeout]);
        let run = run_command(cmd, &read_fixture("sensu/create.json"));
        assert_gives_up_in_time("reactio", &sb, how, run);
    }
}

/// handler-pagerduty with `args`, fed `input` on a stdin the test keeps open, with
/// `--timeout 2s`: the run, once the handler exits (it must, while its stdin is still open),
/// and the fake's events.
fn with_stdin_left_open(args: &[&str], input: &[u8]) -> (Run, Vec<serde_json::Value>) {
    let fake = FakePagerDuty::start(&[]);
    let sb = pagerduty_sandbox();
    let timeout = format!("{TIMEOUT_SECS}s");
    let mut all = vec!["--api-url", fake.url.as_str(), "--timeout", timeout.as_str()];
    all.extend_from_slice(args);
    let mut child = sb.command(&all).spawn().expect("spawn handler");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write the event");
    stdin.flush().expect("flush");
    // A liveness bound, not a measurement: far over --timeout, for a loaded machine.
    let start = Instant::now();
    wait_until("the handler to exit with its stdin still open", Duration::from_secs(60), || child.try_wait().ok().flatten(), String::new);
    let took = start.elapsed();
    drop(stdin);
    let out = child.wait_with_output().expect("wait handler");
    (Run::from(out, took), fake.events())
}

#[test]
fn a_whole_event_on_a_stdin_left_open_pages_without_waiting_for_its_end() {
    // Read to end of input only, the handler waited for a sender that never closes the pipe
    // until the monitoring system killed it: no page.
    let (run, events) = with_stdin_left_open(&[], &read_fixture("sensu/create.json"));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("stdin stayed open after the event"), "{}", run.stderr);
    assert_eq!(events.len(), 1, "one trigger: {events:?}");
    assert_eq!(events[0]["event_action"], "trigger");
}

#[test]
fn a_stdin_left_open_without_a_whole_event_exits_65() {
    // The handler exits while its stdin is still open (`with_stdin_left_open`): at --timeout.
    let fixture = read_fixture("sensu/create.json");
    for (what, input) in [("nothing", &[][..]), ("half an event", &fixture[..fixture.len() / 2])] {
        let (run, events) = with_stdin_left_open(&[], input);
        assert_eq!(run.code, Some(65), "{what}: {run:?}");
        assert!(run.stderr.contains("stdin was still open at the time limit (--timeout)"), "{what}: {}", run.stderr);
        assert!(events.is_empty(), "{what}: nothing sent: {events:?}");
    }
}

#[test]
fn a_job_output_on_a_stdin_left_open_pages_with_what_came_by_the_time_limit() {
    // The time limit is for the output to arrive; the page then has a deadline of its own
    // (when the limit was also the page's deadline, the page was spooled, exit 75).
    let args = ["--from", "cli", "--check", "disk", "--entity", "vm", "--status", "critical", "--output", "-"];
    let (run, events) = with_stdin_left_open(&args, b"disk full\n");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("stdin was still open at the time limit (--timeout); paging with the 10 bytes read"), "{}", run.stderr);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0]["payload"]["summary"].as_str().is_some_and(|s| s.contains("disk full")), "{events:?}");
}

/// A service whose connection is neither made nor refused (its SYNs dropped: a firewall, a
/// host gone from the network): each attempt's connect times out before a byte of the request
/// left, so the request is not of unknown fate. The handler says so ("timed out (connect)"),
/// tries again within its deadline, and spools the trigger as not sent (a flush sends it with
/// any time to spare; a Twilio call would not be looked up first). Before, ureq named the
/// deadline that bounds the whole exchange: "timed out (global)", a single attempt, and the
/// trigger spooled as one the service may have acted on.
#[test]
fn a_connection_that_times_out_leaves_the_request_not_sent() {
    let service = crate::util::Unconnectable::start();
    let sb = pagerduty_sandbox();
    let r = sb.run(&["--api-url", &service.url, "--timeout", "4s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("timed out (connect)") && !r.stderr.contains("(global)"), "{}", r.stderr);
    assert!(r.stderr.contains("attempt 1 failed"), "tried again: {}", r.stderr);
    let (_, entry) = sb.spooled_entry("pagerduty", &r.stderr);
    assert_eq!(entry["fate"], json!("not_sent"), "{entry}");
}
