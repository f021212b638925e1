//! A loopback HTTP CONNECT proxy, as corporate networks put in front of the internet.
//!
//! Accepts `CONNECT host:port HTTP/1.1` (RFC 9110 §9.3.6), records the target and the
//! `Proxy-Authorization` header, answers `200 Connection established` and then copies bytes
//! both ways, so TLS runs end to end through it (the proxy sees only ciphertext). It refuses
//! anything that is not CONNECT with 405, and can be told to demand credentials (407).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// How the proxy answers a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Open the tunnel.
    Tunnel,
    /// `407 Proxy Authentication Required`, whatever the client sent.
    RequireAuth,
}

/// One CONNECT the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// `host:port` from the request line.
    pub target: String,
    /// The `Proxy-Authorization` header, if any.
    pub authorization: Option<String>,
}

/// The proxy; stops when dropped.
pub struct ConnectProxy {
    /// `http://127.0.0.1:<port>`, what a test puts in `HTTPS_PROXY`.
    pub url: String,
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Connect>>>,
    violations: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ConnectProxy {
    /// Start the proxy on a free port of 127.0.0.1.
    pub fn start(mode: Mode) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sn, vi, sp) = (Arc::clone(&seen), Arc::clone(&violations), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (sn, vi) = (Arc::clone(&sn), Arc::clone(&vi));
                std::thread::spawn(move || {
                    if let Err(e) = serve(conn, mode, &sn) {
                        vi.lock().unwrap().push(e.to_string());
                    }
                });
            }
        });
        ConnectProxy { url: format!("http://127.0.0.1:{}", addr.port()), addr, seen, violations, stop, thread: Some(thread) }
    }

    /// The CONNECT requests received, in order.
    pub fn connects(&self) -> Vec<Connect> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests that were not a well-formed CONNECT.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(client: TcpStream, mode: Mode, seen: &Mutex<Vec<Connect>>) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut out = client;
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(()); // the Drop wake-up, or a client that gave up
    }
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((_, v)) = h.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("proxy-authorization")) {
            authorization = Some(v.trim().to_string());
        }
    }
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [method, target, version] = parts[..] else {
        out.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
        return Err(io::Error::other(format!("malformed request line {line:?}")));
    };
    if method != "CONNECT" || !version.starts_with("HTTP/1.") || !target.contains(':') {
        out.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")?;
        return Err(io::Error::other(format!("not a CONNECT host:port request: {line:?}")));
    }
    seen.lock().unwrap().push(Connect { target: target.to_string(), authorization });
    if mode == Mode::RequireAuth {
        out.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
        )?;
        return Ok(());
    }
    let upstream = match TcpStream::connect(target) {
        Ok(u) => u,
        Err(e) => {
            out.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
            return Err(io::Error::other(format!("cannot reach {target}: {e}")));
        }
    };
    out.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    // Bytes the client sent right after the CONNECT head are already in the reader's buffer.
    let mut up_w = upstream.try_clone()?;
    let buffered = reader.buffer().to_vec();
    up_w.write_all(&buffered)?;
    let mut up_r = upstream;
    let mut down_w = out.try_clone()?;
    let down = std::thread::spawn(move || {
        let _ = io::copy(&mut up_r, &mut down_w);
        let _ = down_w.shutdown(Shutdown::Write);
    });
    let _ = io::copy(reader.get_mut(), &mut up_w);
    let _ = up_w.shutdown(Shutdown::Write);
    let _ = down.join();
    Ok(())
}
