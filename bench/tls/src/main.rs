//! What each trust store costs one event: loading the CA certificates, building the TLS client,
//! and one HTTPS exchange with a loopback TLS server whose certificate a private CA signed.
//!
//! `tls-bench inproc N`: in this process, N rounds; each round runs every variant once, in
//! rotated order, each with a fresh agent (as every handler process has), timed from "load the
//! roots" to "response read" (or to "certificate refused" for stores that do not hold the
//! private CA: the handshake has then done all its work but the last flight, so the difference
//! between variants is what loading and indexing their roots costs).
//!
//! `tls-bench process HANDLER N`: the same comparison for whole `handler-pagerduty` processes,
//! one per event (a different entity each time, fresh state), plus plain HTTP for reference.
//!
//! Prints a Markdown table per mode. The TLS server is tests/fake/tls.rs in front of a minimal
//! HTTP responder that answers 202 like PagerDuty.

#[path = "../../../tests/fake/tls.rs"]
mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::Trust;
use ureq::tls::{Certificate, RootCerts};

const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A tiny HTTP/1.1 server: reads one request (head + Content-Length body), answers 202.
fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let mut len = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some((_, v)) = line.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let reply = br#"{"status":"success","message":"Event processed","dedup_key":"k"}"#;
                let mut w = conn;
                let _ = write!(w, "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", reply.len());
                let _ = w.write_all(reply);
            });
        }
    });
    addr
}

fn native(file: Option<&Path>, dir: Option<&Path>) -> RootCerts {
    let found = rustls_native_certs::load_certs_from_paths(file, dir);
    assert!(!found.certs.is_empty(), "no certificates in {file:?} {dir:?}");
    found.certs.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect::<Vec<_>>().into()
}

/// One variant: a name, how its roots are made, and whether the private CA is among them.
struct Variant {
    name: &'static str,
    roots: Box<dyn Fn() -> RootCerts>,
    trusted: bool,
}

fn variants(ca: &Path, other_ca: &Path, bundle_plus_ca: &Path) -> Vec<Variant> {
    let (ca, other, bpc) = (ca.to_path_buf(), other_ca.to_path_buf(), bundle_plus_ca.to_path_buf());
    let probe = openssl_probe::probe();
    let (pf, pd) = (probe.cert_file.clone(), probe.cert_dir.first().cloned());
    let pd2 = pd.clone();
    vec![
        Variant { name: "bundled Mozilla roots (default; refused)", roots: Box::new(|| Trust::Bundled.root_certs().unwrap()), trusted: false },
        Variant { name: "ca_file: one private CA", roots: Box::new(move || Trust::File(ca.clone()).root_certs().unwrap()), trusted: true },
        Variant {
            name: "ca_file: another private CA (refused)",
            roots: Box::new(move || Trust::File(other.clone()).root_certs().unwrap()),
            trusted: false,
        },
        Variant {
            name: "ca_file: system, SSL_CERT_FILE=bundle+CA",
            roots: Box::new(move || native(Some(&bpc), None)),
            trusted: true,
        },
        Variant { name: "ca_file: system = bundle file (refused)", roots: Box::new(|| Trust::System.root_certs().unwrap()), trusted: false },
        Variant {
            name: "rustls-native-certs default: bundle + dir (refused)",
            roots: Box::new(move || native(pf.as_deref(), pd.as_deref())),
            trusted: false,
        },
        Variant { name: "hashed dir /etc/ssl/certs only (refused)", roots: Box::new(move || native(None, pd2.as_deref())), trusted: false },
        Variant { name: "ureq platform-verifier (refused)", roots: Box::new(|| RootCerts::PlatformVerifier), trusted: false },
    ]
}

fn once(v: &Variant, url: &str) -> Duration {
    let start = Instant::now();
    let tls = ureq::tls::TlsConfig::builder().root_certs((v.roots)()).build();
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).proxy(None).tls_config(tls).build().into();
    let res = agent
        .post(url)
        .config()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .send_json(serde_json::json!({"routing_key": "BenchRoutingKey00000000000000000", "event_action": "trigger"}));
    let took = start.elapsed();
    match (res, v.trusted) {
        (Ok(mut r), true) => {
            assert_eq!(r.status(), 202);
            let _ = r.body_mut().read_to_string();
        }
        (Err(e), false) => assert!(e.to_string().to_lowercase().contains("certificate"), "{}: {e}", v.name),
        (other, _) => panic!("{}: unexpected {other:?}", v.name),
    }
    took
}

struct Stats {
    median: f64,
    p90: f64,
    mean: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Stats { median: at(0.5), p90: at(0.9), mean: ms.iter().sum::<f64>() / ms.len() as f64 }
}

fn table(title: &str, names: &[String], samples: &[Vec<f64>], reference: usize) {
    println!("\n{title}\n");
    println!("| variant | median | p90 | mean | median − {} |", names[reference]);
    println!("|---|---|---|---|---|");
    let base = stats(samples[reference].clone()).median;
    for (name, s) in names.iter().zip(samples) {
        let st = stats(s.clone());
        println!("| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {:+.2} ms |", st.median, st.p90, st.mean, st.median - base);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        std::env::var_os("SSL_CERT_FILE").is_none() && std::env::var_os("SSL_CERT_DIR").is_none(),
        "unset SSL_CERT_FILE/SSL_CERT_DIR: the bench measures the system's default store"
    );
    let usage = "usage: tls-bench inproc N | tls-bench process HANDLER_BIN N";
    let work = tempfile::tempdir().expect("tempdir");
    let pki = tls::Pki::new(&["127.0.0.1"]);
    let back = backend();
    let front = tls::TlsFront::start(&back.to_string(), &pki);
    let ca = pki.write_ca(work.path(), "ca.pem");
    let other_ca = tls::Pki::new(&["127.0.0.1"]).write_ca(work.path(), "other-ca.pem");
    let bundle_plus_ca = work.path().join("bundle+ca.pem");
    let mut bundle = std::fs::read_to_string(BUNDLE).expect("the system CA bundle (Debian: ca-certificates)");
    bundle.push_str(&pki.ca_pem);
    std::fs::write(&bundle_plus_ca, bundle).expect("write bundle");
    let count = |p: &Path| std::fs::read_to_string(p).map(|s| s.matches("BEGIN CERTIFICATE").count()).unwrap_or(0);
    let dir_files = std::fs::read_dir("/etc/ssl/certs").map(|d| d.count()).unwrap_or(0);
    eprintln!("system bundle {BUNDLE}: {} certificates; /etc/ssl/certs: {dir_files} entries", count(Path::new(BUNDLE)));

    match args.get(1).map(String::as_str) {
        Some("inproc") => {
            let n: usize = args.get(2).and_then(|a| a.parse().ok()).expect(usage);
            let vs = variants(&ca, &other_ca, &bundle_plus_ca);
            let mut samples = vec![Vec::with_capacity(n); vs.len()];
            let warmup = 10;
            for round in 0..n + warmup {
                for k in 0..vs.len() {
                    let i = (k + round) % vs.len();
                    let t = once(&vs[i], &front.url);
                    if round >= warmup {
                        samples[i].push(t.as_secs_f64() * 1000.0);
                    }
                }
            }
            let names: Vec<String> = vs.iter().map(|v| v.name.to_string()).collect();
            table(&format!("In process, {n} rounds (+{warmup} warm-up): load roots + build agent + connect + TLS handshake (+ POST when trusted)"), &names, &samples, 0);
        }
        Some("process") => {
            let bin = PathBuf::from(args.get(2).expect(usage));
            let n: usize = args.get(3).and_then(|a| a.parse().ok()).expect(usage);
            process(&bin, n, work.path(), &front.url, &format!("http://{back}"), [&ca, &other_ca], &bundle_plus_ca);
        }
        _ => panic!("{usage}"),
    }
    drop(front);
}

/// Name, API URL, extra arguments, extra environment, expected exit code.
type ProcessVariant<'a> = (&'a str, &'a str, Vec<String>, Vec<(&'a str, String)>, i32);

/// Whole handler processes, one per event.
fn process(bin: &Path, n: usize, work: &Path, https: &str, http: &str, [ca, other_ca]: [&Path; 2], bundle_plus_ca: &Path) {
    let fixture = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sensu/create.json"))
        .expect("fixture");
    let conf = work.join("conf.d");
    std::fs::create_dir_all(&conf).expect("conf.d");
    let ca = ca.to_str().expect("utf-8 path").to_string();
    let other_ca = other_ca.to_str().expect("utf-8 path").to_string();
    let bpc = bundle_plus_ca.to_str().expect("utf-8 path").to_string();
    let variants: Vec<ProcessVariant> = vec![
        ("plain HTTP (reference)", http, vec![], vec![], 0),
        ("bundled Mozilla roots (default; refused)", https, vec![], vec![], 78),
        ("ca_file: one private CA", https, vec!["--ca-file".into(), ca.clone()], vec![], 0),
        ("ca_file: another private CA (refused)", https, vec!["--ca-file".into(), other_ca], vec![], 78),
        ("ca_file: system, SSL_CERT_FILE=bundle+CA", https, vec!["--ca-file".into(), "system".into()], vec![("SSL_CERT_FILE", bpc)], 0),
        ("ca_file: system = bundle file (refused)", https, vec!["--ca-file".into(), "system".into()], vec![], 78),
        (
            "ca_file: system, SSL_CERT_FILE + SSL_CERT_DIR set (refused)",
            https,
            vec!["--ca-file".into(), "system".into()],
            vec![("SSL_CERT_FILE", BUNDLE.to_string()), ("SSL_CERT_DIR", "/etc/ssl/certs".to_string())],
            78,
        ),
    ];
    let mut samples = vec![Vec::with_capacity(n); variants.len()];
    let warmup = 5;
    for round in 0..n + warmup {
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let (name, url, args, env, want) = &variants[i];
            let event = fixture.replace("web-01", &format!("h{i}-{round:05}"));
            let state = work.join(format!("state-{i}"));
            let start = Instant::now();
            let mut child = Command::new(bin)
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("PAGERDUTY_ROUTING_KEY", "BenchRoutingKey00000000000000000")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .args(["--api-url", url, "--config"])
                .arg(&conf)
                .arg("--state-dir")
                .arg(&state)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn handler");
            child.stdin.take().expect("stdin").write_all(event.as_bytes()).expect("event");
            let out = child.wait_with_output().expect("wait");
            let took = start.elapsed();
            assert_eq!(out.status.code(), Some(*want), "{name}: {}", String::from_utf8_lossy(&out.stderr));
            if round >= warmup {
                samples[i].push(took.as_secs_f64() * 1000.0);
            }
        }
    }
    let names: Vec<String> = variants.iter().map(|v| v.0.to_string()).collect();
    table(&format!("Whole handler-pagerduty processes, {n} events each (+{warmup} warm-up), one process per event"), &names, &samples, 1);
}
