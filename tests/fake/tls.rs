//! Real HTTPS on loopback: a private CA made at test time, and a TLS front for the plain fakes.
//!
//! [`Pki`] generates (with `rcgen`) a throw-away certificate authority and a server certificate it
//! signs for the names a test asks for (`127.0.0.1`, `localhost`, or a wrong name). [`TlsFront`]
//! listens on 127.0.0.1, completes the TLS handshake with that certificate (rustls, ring — the
//! same stack the handlers use as clients) and relays the decrypted bytes to a plain-HTTP fake
//! (e.g. [`super::pagerduty::FakePagerDuty`]), the way a TLS-terminating load balancer does. So
//! every fake that validates requests against a spec serves HTTPS unchanged, and the front
//! records how many handshakes completed and why the others failed (the alert a client sent
//! when it refused the certificate).
//!
//! Self-contained (rcgen, rustls, std only) so that `bench/tls` can include it with `#[path]`.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A private CA and one server certificate it signed.
pub struct Pki {
    /// The CA certificate, PEM: what a client passes as `--ca-file`.
    pub ca_pem: String,
    /// The server certificate, DER.
    pub server_cert: CertificateDer<'static>,
    /// The server certificate's private key, PKCS#8 DER.
    pub server_key: Vec<u8>,
    /// The server certificate and its key, PEM (for servers that read files: `redis-server`).
    pub server_pem: (String, String),
}

impl Pki {
    /// A new CA (`CN=pagerpipe test CA <pid>-<n>`) and a server certificate for `names` (IP addresses
    /// become IP subject alternative names, anything else DNS names).
    pub fn new(names: &[&str]) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        // A name of its own, so that another test CA is a different issuer, not an impostor.
        static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SERIAL.fetch_add(1, Ordering::SeqCst);
        ca.distinguished_name.push(DnType::CommonName, format!("pagerpipe test CA {}-{n}", std::process::id()));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca.self_signed(&ca_key).expect("self-signed CA");
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("server params");
        server.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("server"));
        let cert = server.signed_by(&key, &issuer).expect("server certificate");
        Pki {
            ca_pem: ca_cert.pem(),
            server_cert: cert.der().clone(),
            server_key: key.serialize_der(),
            server_pem: (cert.pem(), key.serialize_pem()),
        }
    }

    /// Write the CA certificate to `dir/name` and return the path.
    pub fn write_ca(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.ca_pem).expect("write CA file");
        path
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.server_cert.clone()], key)
            .expect("server certificate and key");
        Arc::new(config)
    }
}

#[derive(Default)]
struct Stats {
    handshakes: usize,
    failures: Vec<String>,
}

/// A TLS-terminating front on 127.0.0.1 that relays to a plain-HTTP backend; stops when dropped.
pub struct TlsFront {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The listening address.
    pub addr: SocketAddr,
    stats: Arc<Mutex<Stats>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// Serve `pki`'s server certificate and relay to `backend` (`http://127.0.0.1:<port>` or
    /// `127.0.0.1:<port>`).
    pub fn start(backend: &str, pki: &Pki) -> TlsFront {
        let backend: SocketAddr = backend.trim_start_matches("http://").trim_end_matches('/').parse().expect("backend is 127.0.0.1:<port>");
        let config = pki.server_config();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let stats = Arc::new(Mutex::new(Stats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&stats), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (config, st) = (Arc::clone(&config), Arc::clone(&st));
                std::thread::spawn(move || {
                    if let Err(e) = relay(conn, backend, config, &st) {
                        st.lock().unwrap().failures.push(e.to_string());
                    }
                });
            }
        });
        TlsFront { url: format!("https://127.0.0.1:{}", addr.port()), addr, stats, stop, thread: Some(thread) }
    }

    /// Handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.stats.lock().unwrap().handshakes
    }

    /// Why connections failed (e.g. `received fatal alert: UnknownCA` when a client refused the
    /// certificate).
    pub fn failures(&self) -> Vec<String> {
        self.stats.lock().unwrap().failures.clone()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One connection: the client side drives the handshake and sends requests to the backend on
/// this thread; a second thread encrypts the backend's answers. Both share the rustls state.
fn relay(client: TcpStream, backend: SocketAddr, config: Arc<rustls::ServerConfig>, stats: &Mutex<Stats>) -> io::Result<()> {
    let conn = Arc::new(Mutex::new(rustls::ServerConnection::new(config).map_err(io::Error::other)?));
    let mut to_client = client.try_clone()?;
    let mut from_client = client;
    let mut to_backend: Option<TcpStream> = None;
    let mut answers: Option<JoinHandle<()>> = None;
    let mut buf = vec![0u8; 16 * 1024];
    let result = loop {
        let n = match from_client.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        let mut plain = Vec::new();
        {
            let mut c = conn.lock().unwrap();
            let mut input = &buf[..n];
            let mut failed = None;
            while !input.is_empty() {
                if let Err(e) = c.read_tls(&mut input) {
                    failed = Some(e);
                    break;
                }
                if let Err(e) = c.process_new_packets() {
                    // Send our alert, if any, before giving up.
                    while c.wants_write() && c.write_tls(&mut to_client).is_ok() {}
                    failed = Some(io::Error::other(e));
                    break;
                }
                match c.reader().read_to_end(&mut plain) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            while c.wants_write() {
                c.write_tls(&mut to_client)?;
            }
            if let Some(e) = failed {
                break Err(e);
            }
            if !c.is_handshaking() && to_backend.is_none() {
                stats.lock().unwrap().handshakes += 1;
                let back = TcpStream::connect(backend)?;
                to_backend = Some(back.try_clone()?);
                let (conn, mut out) = (Arc::clone(&conn), to_client.try_clone()?);
                answers = Some(std::thread::spawn(move || pump_answers(back, &conn, &mut out)));
            }
        }
        if let Some(b) = to_backend.as_mut().filter(|_| !plain.is_empty()) {
            b.write_all(&plain)?;
        }
    };
    if let Some(b) = &to_backend {
        let _ = b.shutdown(Shutdown::Write);
    }
    if let Some(t) = answers {
        let _ = t.join();
    }
    result
}

fn pump_answers(mut backend: TcpStream, conn: &Mutex<rustls::ServerConnection>, client: &mut TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match backend.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut c = conn.lock().unwrap();
        if c.writer().write_all(&buf[..n]).is_err() {
            break;
        }
        while c.wants_write() {
            if c.write_tls(client).is_err() {
                return;
            }
        }
    }
    let mut c = conn.lock().unwrap();
    c.send_close_notify();
    while c.wants_write() && c.write_tls(client).is_ok() {}
    let _ = client.shutdown(Shutdown::Both);
}
