//! The loopback fake PagerDuty of bench/fake_pagerduty.py, compiled: the same answers and
//! `/stats`, without the Python interpreter's 0.2-0.3 ms per request (bench/HISTORY.md
//! "Session 8"). `fake-pagerduty PORTFILE`: listens on a free port of 127.0.0.1 only and
//! writes the port to PORTFILE (atomically) once it accepts connections.
//!
//!   POST /v2/enqueue -> 202 {"status":"success","message":"Event processed","dedup_key":...}
//!                       (400 when the body is not JSON with routing_key, event_action, dedup_key)
//!   GET  /stats      -> 200 {"accepted":N,"rejected":N,"server_ms_mean":F,"cpu_s":F,
//!                            "by_prefix":{"h":{"accepted":N,"keys":N},...}}
//!
//! One thread, one connection at a time, `Connection: close`: the bench's clients are one-shot
//! processes run one after another (bench/compare.py, bench/pagerduty.sh). A client that sends
//! nothing is dropped after 5 s. Not for bench/storm.sh's 64 concurrent clients: use the
//! Python fake there.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Largest request read, in bytes (PagerDuty refuses events over 512 KB; this leaves room).
const MAX_REQUEST: usize = 1 << 20;

#[derive(Default)]
struct Stats {
    accepted: u64,
    rejected: u64,
    server: Duration,
    /// Incident key prefix (up to the first "-") -> (accepted requests, distinct keys).
    by_prefix: BTreeMap<String, (u64, BTreeSet<String>)>,
}

/// A whole request: method, path and body, once the head and `Content-Length` bytes are in.
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn main() {
    let Some(port_file) = std::env::args().nth(1) else {
        eprintln!("usage: fake-pagerduty PORTFILE");
        std::process::exit(2);
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| die(&format!("bind: {e}")));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| die(&format!("port: {e}")));
    let tmp = format!("{port_file}.tmp");
    std::fs::write(&tmp, format!("{port}\n"))
        .and_then(|()| std::fs::rename(&tmp, &port_file))
        .unwrap_or_else(|e| die(&format!("{port_file}: {e}")));
    let mut stats = Stats::default();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = conn.set_nodelay(true);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let Some(req) = read_request(&mut conn) else { continue };
        let t0 = Instant::now();
        let (code, body) = match (req.method.as_str(), req.path.as_str()) {
            ("POST", _) => {
                let (code, body) = enqueue(&req, &mut stats);
                stats.server += t0.elapsed();
                (code, body)
            }
            ("GET", "/stats") => (200, stats_json(&stats)),
            _ => (404, json!({"status": "not found"})),
        };
        let body = body.to_string();
        let reason = match code {
            200 => "OK",
            202 => "Accepted",
            400 => "Bad Request",
            _ => "Not Found",
        };
        let answer = format!(
            "HTTP/1.1 {code} {reason}\r\nServer: fake-pagerduty\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = conn.write_all(answer.as_bytes());
    }
}

fn die(why: &str) -> ! {
    eprintln!("fake-pagerduty: {why}");
    std::process::exit(1);
}

/// Reads until the head and `Content-Length` bytes of body are in; None on a closed, silent
/// or unreadable connection, or one over [`MAX_REQUEST`].
fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16384];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]);
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
        let length = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + length {
            return Some(Request { method, path, body: buf[end + 4..end + 4 + length].to_vec() });
        }
    }
}

/// POST /v2/enqueue: 202 for JSON with routing_key, event_action and dedup_key, else 400.
fn enqueue(req: &Request, stats: &mut Stats) -> (u16, Value) {
    let event: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let present = |k: &str| event.get(k).is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()));
    let key = event.get("dedup_key").map(|k| k.as_str().map_or_else(|| k.to_string(), str::to_string));
    match key {
        Some(key) if req.path == "/v2/enqueue" && present("routing_key") && present("event_action") => {
            stats.accepted += 1;
            let prefix = key.split('-').next().unwrap_or_default().to_string();
            let entry = stats.by_prefix.entry(prefix).or_default();
            entry.0 += 1;
            entry.1.insert(key.clone());
            (202, json!({"status": "success", "message": "Event processed", "dedup_key": key}))
        }
        _ => {
            stats.rejected += 1;
            (400, json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["bad body"]}))
        }
    }
}

/// GET /stats: the counts, the mean server time per POST in ms, and this process's CPU
/// seconds (from /proc/self/schedstat, nanoseconds on a CPU).
fn stats_json(stats: &Stats) -> Value {
    let n = stats.accepted + stats.rejected;
    let mean_ms = if n == 0 { 0.0 } else { stats.server.as_secs_f64() * 1000.0 / n as f64 };
    let cpu_s = std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()))
        .map_or(0.0, |ns| ns / 1e9);
    let by_prefix: serde_json::Map<String, Value> =
        stats.by_prefix.iter().map(|(p, (accepted, keys))| (p.clone(), json!({"accepted": accepted, "keys": keys.len()}))).collect();
    json!({
        "accepted": stats.accepted,
        "rejected": stats.rejected,
        "server_ms_mean": (mean_ms * 1000.0).round() / 1000.0,
        "cpu_s": cpu_s,
        "by_prefix": by_prefix,
    })
}
