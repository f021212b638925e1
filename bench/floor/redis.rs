//! The floor of a dedup skip on the Redis store (bench/compare.sh BENCH_FLOOR=1 BENCH_REDIS=1):
//! a static Rust process that makes the one exchange such a skip makes with the loopback
//! redis-server, and nothing else — connect, `GET` of the incident's record and `EXISTS` of its
//! hold in one write (RESP), both answers read, close; no flags, settings or Redis library.
//! `redis HOST:PORT KEY`: exits 0 when both answers came, 1 otherwise.
use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(key)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: redis HOST:PORT KEY");
        std::process::exit(2);
    };
    let command = |words: &[&str]| {
        let mut out = format!("*{}\r\n", words.len());
        for w in words {
            out += &format!("${}\r\n{w}\r\n", w.len());
        }
        out
    };
    let request =
        command(&["GET", &format!("pagerpipe:pagerduty:rec:{key}")]) + &command(&["EXISTS", &format!("pagerpipe:pagerduty:hold:{key}")]);
    let answered = (|| -> std::io::Result<bool> {
        let mut stream = std::net::TcpStream::connect(addr.as_str())?;
        stream.set_nodelay(true)?;
        stream.write_all(request.as_bytes())?;
        let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
        while answers(&got) < 2 {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(false);
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok(true)
    })();
    match answered {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("redis: the connection closed before both answers");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("redis: {e}");
            std::process::exit(1);
        }
    }
}

/// How many whole RESP answers `bytes` holds: a bulk string (`$LEN\r\n…\r\n`, `$-1\r\n` for
/// none) or a one-line answer (`:1\r\n`, `+OK\r\n`, `-ERR …\r\n`).
fn answers(bytes: &[u8]) -> usize {
    let (mut at, mut count) = (0, 0);
    while let Some(end) = bytes[at..].windows(2).position(|w| w == b"\r\n").map(|p| at + p) {
        let line = &bytes[at..end];
        at = end + 2;
        if line.first() == Some(&b'$') {
            let len: i64 = std::str::from_utf8(&line[1..]).ok().and_then(|s| s.parse().ok()).unwrap_or(-1);
            if len >= 0 {
                at += len as usize + 2;
                if at > bytes.len() {
                    return count;
                }
            }
        }
        count += 1;
    }
    count
}
