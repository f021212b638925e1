//! The floor of a delivery (bench/compare.sh BENCH_FLOOR=1): a static Rust process that makes
//! the one HTTP exchange a delivery makes with the loopback fake PagerDuty, and nothing else —
//! no flags, settings, ledger or HTTP library. `post HOST:PORT DEDUP_KEY < EVENT.json`: POSTs
//! `{"routing_key":…,"event_action":"trigger","dedup_key":…,"payload":EVENT}` (about the size
//! of a handler's request) to /v2/enqueue in one write and exits 0 on a 202, 1 otherwise.
use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(key)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: post HOST:PORT DEDUP_KEY < EVENT.json");
        std::process::exit(2);
    };
    let mut event = String::new();
    let sent = std::io::stdin().read_to_string(&mut event).and_then(|_| {
        let body = format!(
            r#"{{"routing_key":"BenchRoutingKey00000000000000000","event_action":"trigger","dedup_key":"{key}","payload":{event}}}"#
        );
        let request = format!(
            "POST /v2/enqueue HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = std::net::TcpStream::connect(addr.as_str())?;
        stream.set_nodelay(true)?;
        stream.write_all(request.as_bytes())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        Ok(answer)
    });
    match sent {
        Ok(answer) if answer.starts_with(b"HTTP/1.1 202") => {}
        Ok(answer) => {
            eprintln!("post: {}", String::from_utf8_lossy(&answer[..answer.len().min(200)]));
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("post: {e}");
            std::process::exit(1);
        }
    }
}
