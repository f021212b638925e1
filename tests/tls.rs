//! Real HTTPS and proxies: handler-pagerduty against the spec-validating fake PagerDuty behind
//! a TLS front whose certificate a private CA signed at test time, directly and through a
//! loopback HTTP CONNECT proxy.
//!
//! Covers `--ca-file` and the `ca_file` setting (a PEM file, or `system` for the OS store,
//! which honours `SSL_CERT_FILE`), what an untrusted / misnamed certificate and a bad CA file
//! exit with (78, one line, not retried), and the proxy variables read with curl's rules:
//! `HTTPS_PROXY`/`https_proxy` carry https, `NO_PROXY` bypasses, `HTTP_PROXY` does not carry
//! https, proxy credentials are sent but never printed.

use std::process::Command;

use serde_json::json;

use crate::fake::pagerduty::FakePagerDuty;
use crate::fake::proxy::{ConnectProxy, Mode};
use crate::fake::tls::{Pki, TlsFront};
use crate::util::{ROUTING_KEY, Run, Sandbox, read_fixture, run_command, run_within};

const BIN: &str = env!("CARGO_BIN_EXE_handler-pagerduty");

/// The fake PagerDuty behind a TLS front with a certificate for `names`.
struct Https {
    fake: FakePagerDuty,
    pki: Pki,
    front: TlsFront,
}

fn https(names: &[&str]) -> Https {
    let fake = FakePagerDuty::start(&[]);
    let pki = Pki::new(names);
    let front = TlsFront::start(&fake.url, &pki);
    Https { fake, pki, front }
}

fn sandbox(extra: serde_json::Value) -> Sandbox {
    let sb = Sandbox::new(BIN);
    let mut section = json!({"routing_key": ROUTING_KEY});
    section.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    sb.config("pagerduty.json", &json!({ "pagerduty": section }));
    sb
}

/// The handler with `--api-url <front>`, `args`, and `env` on top of the sandbox's clean one.
fn command(sb: &Sandbox, h: &Https, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut all = vec!["--api-url", h.front.url.as_str()];
    all.extend_from_slice(args);
    let mut cmd = sb.command(&all);
    cmd.envs(env.iter().copied());
    cmd
}

fn run(sb: &Sandbox, h: &Https, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_command(command(sb, h, args, env), &read_fixture("sensu/create.json"))
}

fn assert_delivered(r: &Run, h: &Https) {
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("pagerduty: triggered web-01/check_disk"), "{}", r.stderr);
    h.fake.assert_no_violations();
    let ev = h.fake.events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["routing_key"], ROUTING_KEY);
    assert_eq!(ev[0]["event_action"], "trigger");
    assert_eq!(h.front.handshakes(), 1, "one TLS session; failures: {:?}", h.front.failures());
}

/// Exit 78 with exactly one line on stderr that contains every one of `needles`, no attempt
/// retried, nothing delivered.
fn assert_config_error(r: &Run, h: &Https, needles: &[&str]) {
    assert_eq!(r.code, Some(78), "{r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {}", r.stderr);
    assert!(lines[0].starts_with("pagerduty: error: "), "{}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from: {}", lines[0]);
    }
    assert!(!r.stderr.contains("attempt"), "a configuration error is not retried: {}", r.stderr);
    assert!(h.fake.events().is_empty());
}

#[test]
fn ca_file_flag_trusts_a_private_ca() {
    let h = https(&["127.0.0.1", "localhost"]);
    let sb = sandbox(json!({}));
    let ca = h.pki.write_ca(sb.dir.path(), "ca.pem");
    let r = run(&sb, &h, &["--ca-file", ca.to_str().unwrap()], &[]);
    assert_delivered(&r, &h);
}

#[test]
fn ca_file_setting_in_conf_d_trusts_a_private_ca() {
    let h = https(&["127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = h.pki.write_ca(dir.path(), "private-ca.pem");
    let sb = sandbox(json!({"ca_file": ca}));
    let r = run(&sb, &h, &[], &[]);
    assert_delivered(&r, &h);
}

#[test]
fn ca_file_system_uses_the_os_store_and_honours_ssl_cert_file() {
    let h = https(&["127.0.0.1"]);
    let sb = sandbox(json!({"ca_file": "system"}));
    let ca = h.pki.write_ca(sb.dir.path(), "bundle.pem");
    let r = run(&sb, &h, &[], &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    assert_delivered(&r, &h);

    // A store that holds no certificate at all is a configuration error before any request.
    let h = https(&["127.0.0.1"]);
    let empty = sb.dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let r = run(&sandbox(json!({"ca_file": "system"})), &h, &[], &[("SSL_CERT_FILE", empty.to_str().unwrap())]);
    assert_config_error(&r, &h, &["ca_file system", "no CA certificate found"]);
    assert_eq!(h.front.handshakes(), 0);
}

#[test]
fn untrusted_certificate_is_a_configuration_error_not_retried() {
    let h = https(&["127.0.0.1"]);
    // Bundled Mozilla roots: the private CA is unknown.
    let r = run(&sandbox(json!({})), &h, &[], &[]);
    assert_config_error(&r, &h, &["TLS:", "127.0.0.1", "not signed by a trusted CA", "unknown issuer", "set ca_file"]);
    // The handler refused the certificate; the front saw the alert, no session was made.
    assert_eq!(h.front.handshakes(), 0);

    // Another CA's file: the message names the file.
    let dir = tempfile::tempdir().unwrap();
    let wrong = Pki::new(&["127.0.0.1"]).write_ca(dir.path(), "other-ca.pem");
    let r = run(&sandbox(json!({})), &h, &["--ca-file", wrong.to_str().unwrap()], &[]);
    assert_config_error(&r, &h, &["not signed by a trusted CA", "other-ca.pem does not hold the CA"]);

    // The OS store does not hold a test CA either.
    let r = run(&sandbox(json!({})), &h, &["--ca-file", "system"], &[]);
    assert_config_error(&r, &h, &["not signed by a trusted CA", "system trust store does not hold"]);
    assert_eq!(h.front.handshakes(), 0);
}

#[test]
fn certificate_for_another_name_is_refused() {
    let h = https(&["pagerduty.invalid"]);
    let sb = sandbox(json!({}));
    let ca = h.pki.write_ca(sb.dir.path(), "ca.pem");
    let r = run(&sb, &h, &["--ca-file", ca.to_str().unwrap()], &[]);
    assert_config_error(&r, &h, &["TLS:", "not valid for 127.0.0.1", "check api_url"]);
}

#[test]
fn ca_file_without_a_certificate_or_missing_is_78() {
    let h = https(&["127.0.0.1"]);
    let sb = sandbox(json!({}));
    let bad = sb.dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "this is not a certificate\n").unwrap();
    let r = run(&sb, &h, &["--ca-file", bad.to_str().unwrap()], &[]);
    assert_config_error(&r, &h, &["not-a-ca.pem holds no PEM certificate"]);
    // A fresh sandbox: the first page is spooled (the next event would find it queued).
    let sb = sandbox(json!({}));
    let r = run(&sb, &h, &["--ca-file", sb.dir.path().join("absent.pem").to_str().unwrap()], &[]);
    assert_config_error(&r, &h, &["cannot read ca_file", "absent.pem"]);
    assert_eq!(h.front.handshakes(), 0);
}

/// Observed: a `ca_file` that could not be loaded (missing, a directory, no PEM inside) exited
/// 78 with the page neither spooled nor printed, though the README says a flush picks up a
/// fixed `ca_file`; a FIFO there blocked the handler for good, past `--timeout`, and
/// `/dev/zero` grew it to gigabytes. Each is refused at once, by name and kind, the page is
/// spooled (still 78), and the flush after the fix delivers every one.
#[test]
fn a_ca_file_that_cannot_be_loaded_keeps_the_page_for_the_flush_after_the_fix() {
    let h = https(&["127.0.0.1"]);
    let sb = sandbox(json!({}));
    let dir = sb.dir.path().join("ca-dir");
    std::fs::create_dir(&dir).unwrap();
    let fifo = sb.dir.path().join("ca-fifo.pem");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let empty = sb.dir.path().join("no-pem.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let cases = [
        (sb.dir.path().join("absent.pem"), "cannot read ca_file"),
        (dir, "is a directory, not a regular file"),
        (fifo, "is a FIFO, not a regular file"),
        (std::path::PathBuf::from("/dev/zero"), "is a device, not a regular file"),
        (empty, "holds no PEM certificate"),
    ];
    for (i, (path, why)) in cases.iter().enumerate() {
        let mut ev: serde_json::Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
        ev["check"]["name"] = json!(format!("check_{i}"));
        let cmd = command(&sb, &h, &["--ca-file", path.to_str().unwrap(), "--timeout", "3s"], &[]);
        let r = run_within(cmd, ev.to_string().as_bytes(), std::time::Duration::from_secs(20));
        assert_eq!(r.code, Some(78), "{path:?}: {r:?}");
        let line = r.stderr.lines().find(|l| l.starts_with("pagerduty: error: ") && l.contains(why));
        let line = line.unwrap_or_else(|| panic!("{path:?}: {}", r.stderr));
        assert!(line.contains(path.to_str().unwrap()) && line.contains("spooled as"), "{line}");
        assert_eq!(sb.spooled("pagerduty").len(), i + 1, "{path:?}: spooled: {}", r.stderr);
    }
    assert!(h.fake.events().is_empty());
    // The fixed ca_file: the flush delivers them all.
    let ca = h.pki.write_ca(sb.dir.path(), "ca.pem");
    let r = run_command(command(&sb, &h, &["--flush", "--ca-file", ca.to_str().unwrap()], &[]), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(h.fake.events().len(), cases.len(), "{}", r.stderr);
    assert!(sb.spooled("pagerduty").is_empty());
    h.fake.assert_no_violations();
}

/// With no spool to keep it, the page refused for its `ca_file` is printed (masked), not lost.
#[test]
fn a_ca_file_that_cannot_be_loaded_without_a_spool_prints_the_event() {
    let h = https(&["127.0.0.1"]);
    let sb = sandbox(json!({}));
    let args = ["--api-url", h.front.url.as_str(), "--ca-file", "/nonexistent/ca.pem"];
    let r = run_command(sb.command_without_spool(&args), &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("undelivered event, not spooled: {"), "{}", r.stderr);
    assert!(r.stderr.contains("cannot read ca_file /nonexistent/ca.pem"), "{}", r.stderr);
    assert!(!r.stderr.contains(ROUTING_KEY), "{}", r.stderr);
}

#[test]
fn https_proxy_carries_the_tls_session() {
    let proxy = ConnectProxy::start(Mode::Tunnel);
    // The scheme-less form `host:port` means an http:// proxy.
    let bare = proxy.url.trim_start_matches("http://");
    // A proxy named by host name is looked up by the agent's resolver too (ureq's CONNECT
    // connector asks it): `localhost` is in every /etc/hosts.
    let named = proxy.url.replacen("127.0.0.1", "localhost", 1);
    assert_ne!(named, proxy.url, "the proxy listens on 127.0.0.1");
    let cases = [
        ("HTTPS_PROXY", proxy.url.as_str()),
        ("https_proxy", &proxy.url),
        ("ALL_PROXY", &proxy.url),
        ("HTTPS_PROXY", bare),
        ("HTTPS_PROXY", &named),
    ];
    for (var, value) in cases {
        let h = https(&["127.0.0.1"]);
        let sb = sandbox(json!({}));
        let ca = h.pki.write_ca(sb.dir.path(), "ca.pem");
        let before = proxy.connects().len();
        let r = run(&sb, &h, &["--ca-file", ca.to_str().unwrap()], &[(var, value)]);
        assert_delivered(&r, &h);
        let seen = proxy.connects();
        assert_eq!(seen.len(), before + 1, "{var}={value}: {seen:?}");
        assert_eq!(seen[before].target, h.front.url.trim_start_matches("https://"), "{var}={value}");
        assert_eq!(seen[before].authorization, None);
    }
    assert!(proxy.violations().is_empty(), "{:?}", proxy.violations());
}

#[test]
fn no_proxy_bypasses_the_proxy_and_http_proxy_does_not_carry_https() {
    let proxy = ConnectProxy::start(Mode::Tunnel);
    let cases: [&[(&str, &str)]; 3] = [
        &[("HTTPS_PROXY", &proxy.url), ("NO_PROXY", "localhost, 127.0.0.1")],
        &[("https_proxy", &proxy.url), ("no_proxy", "10.0.0.0/8,127.0.0.0/8")],
        // ureq alone would send https through HTTP_PROXY; curl's rule is that it is for http://.
        &[("HTTP_PROXY", &proxy.url), ("http_proxy", &proxy.url)],
    ];
    for env in cases {
        let h = https(&["127.0.0.1"]);
        let sb = sandbox(json!({}));
        let ca = h.pki.write_ca(sb.dir.path(), "ca.pem");
        let r = run(&sb, &h, &["--ca-file", ca.to_str().unwrap()], env);
        assert_delivered(&r, &h);
        assert!(proxy.connects().is_empty(), "{env:?} went through the proxy: {:?}", proxy.connects());
    }
}

#[test]
fn proxy_credentials_are_sent_but_never_printed() {
    let h = https(&["127.0.0.1"]);
    let proxy = ConnectProxy::start(Mode::RequireAuth);
    let sb = sandbox(json!({}));
    let ca = h.pki.write_ca(sb.dir.path(), "ca.pem");
    let url = proxy.url.replace("http://", "http://pager:Pr0xyS3cret@");
    let r = run(&sb, &h, &["--ca-file", ca.to_str().unwrap()], &[("HTTPS_PROXY", &url)]);
    assert_config_error(&r, &h, &["requires authentication (407)", "HTTPS_PROXY", proxy.url.trim_start_matches("http://")]);
    assert!(!r.stderr.contains("Pr0xyS3cret"), "{}", r.stderr);
    let seen = proxy.connects();
    assert_eq!(seen.len(), 1, "{seen:?}");
    // RFC 7617: Basic base64("pager:Pr0xyS3cret").
    assert_eq!(seen[0].authorization.as_deref(), Some("Basic cGFnZXI6UHIweHlTM2NyZXQ="));

    // A proxy variable that is no proxy URL is named, credentials masked.
    let r =
        run(&sandbox(json!({})), &h, &["--ca-file", ca.to_str().unwrap()], &[("HTTPS_PROXY", "socks5://pager:Pr0xyS3cret@127.0.0.1:1")]);
    assert_config_error(&r, &h, &["HTTPS_PROXY names a socks5:// proxy"]);
    assert!(!r.stderr.contains("Pr0xyS3cret"), "{}", r.stderr);
}

#[test]
fn a_page_refused_for_an_untrusted_certificate_is_kept_and_flushed_once_ca_file_is_fixed() {
    let h = https(&["127.0.0.1"]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &h, &[], &[]);
    assert_config_error(&r, &h, &["not signed by a trusted CA", "spooled as"]);
    assert_eq!(sb.spooled("pagerduty").len(), 1);

    // Still untrusted: the flush keeps it (and says why) rather than giving it up.
    let r = run_command(sb.command(&["--flush", "--timeout", "5s", "--api-url", &h.front.url]), b"");
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("the entry is kept"), "{}", r.stderr);
    assert_eq!(sb.spooled("pagerduty").len(), 1);

    let ca = h.pki.write_ca(sb.dir.path(), "ca.pem");
    let r = run_command(sb.command(&["--flush", "--timeout", "5s", "--api-url", &h.front.url, "--ca-file", ca.to_str().unwrap()]), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(h.fake.events().len(), 1);
    h.fake.assert_no_violations();
    assert!(sb.spooled("pagerduty").is_empty());
}

/// README "HTTPS and proxies" quotes the line an untrusted certificate gives; it is the line
/// the handler prints, the host and the spool file's name aside (`…`), up to its end (which
/// names the spool file it is kept in).
#[test]
fn readme_quotes_the_untrusted_certificate_line_as_given() {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let want = readme.lines().find(|l| l.contains("unknown issuer") && l.starts_with("pagerduty: ")).expect("README quotes the line");
    let want = want.replace("events.pagerduty.com", "…").replace("/var/spool/pagerpipe/pagerduty/….json", "…");
    let h = https(&["127.0.0.1"]);
    let r = run(&sandbox(json!({})), &h, &[], &[]);
    assert_eq!(r.code, Some(78), "{r:?}");
    let line = r.stderr.lines().last().unwrap_or_default();
    let mut rest = line;
    for (i, part) in want.split('…').enumerate() {
        let at = rest.find(part).unwrap_or_else(|| panic!("{part:?} of the README's line is not in:\n{line}"));
        assert!(i > 0 || at == 0, "{line}\nstarts differently from the README's\n{want}");
        rest = &rest[at + part.len()..];
    }
    assert!(want.ends_with('…') || rest.is_empty(), "{line}\nends differently from the README's\n{want}");
}

/// Observed: an `https://` `api_url` pointed at a plain-HTTP port (a slip when a service moves
/// to TLS) failed in the handshake, where rustls reads the server's `400` page as a corrupt
/// record, yet was taken for a request that may have reached the service (unknown fate: sent
/// again only with a whole attempt to spare, a Twilio call looked up first). Nothing was sent:
/// it is spooled as not sent, the reason naming the handshake, and the flush to the right URL
/// delivers it.
#[test]
fn https_to_a_plain_http_port_fails_in_the_handshake_and_is_spooled_as_not_sent() {
    use std::io::{Read as _, Write as _};
    let fake = FakePagerDuty::start(&[]);
    // A plain-HTTP server as nginx is one: whatever comes that is not HTTP is answered `400`
    // at once, and the connection closed.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/v2/enqueue", plain.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in plain.incoming() {
            let Ok(mut conn) = conn else { return };
            let _ = conn.read(&mut [0; 4096]);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request");
        }
    });
    let sb = sandbox(json!({}));
    let r = run_command(sb.command(&["--api-url", &url, "--timeout", "2s"]), &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("TLS handshake with 127.0.0.1"), "{}", r.stderr);
    assert!(r.stderr.contains("attempt 3 failed"), "retried as any connection failure: {}", r.stderr);
    assert_eq!(only_spooled_entry(&sb, &r)["fate"], "not_sent");
    assert!(fake.events().is_empty());
    let r = run_command(sb.command(&["--flush", "--api-url", &fake.url]), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.events().len(), 1, "{}", r.stderr);
    fake.assert_no_violations();
}

/// Observed: a connection cut in the middle of the TLS handshake (a firewall that filters on
/// the server name resets it after the ClientHello; a TLS front with no backend closes it) was
/// taken for a request that may have reached the service ("it may have reached the service",
/// spooled of unknown fate: a Twilio call spooled after one attempt and looked up first),
/// though the request is only written once the handshake is done. Nothing was sent: it is
/// retried as any connection failure and spooled as not sent.
#[test]
fn a_connection_cut_in_the_tls_handshake_is_spooled_as_not_sent() {
    use std::io::Read as _;
    for reset in [false, true] {
        let cutter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}/v2/enqueue", cutter.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in cutter.incoming() {
                let Ok(mut conn) = conn else { return };
                // The ClientHello is read, then the connection closed (reset: with SO_LINGER 0).
                let _ = conn.read(&mut [0; 4096]);
                if reset {
                    let _ = socket2::SockRef::from(&conn).set_linger(Some(std::time::Duration::ZERO));
                }
                drop(conn);
            }
        });
        let sb = sandbox(json!({}));
        let r = run_command(sb.command(&["--api-url", &url, "--timeout", "2s"]), &read_fixture("sensu/create.json"));
        assert_eq!(r.code, Some(75), "{r:?}");
        assert!(r.stderr.contains("attempt 2 failed: network error with 127.0.0.1"), "{}", r.stderr);
        assert!(!r.stderr.contains("it may have reached the service"), "reset {reset}: {}", r.stderr);
        assert_eq!(only_spooled_entry(&sb, &r)["fate"], "not_sent", "reset {reset}");
    }
}

/// The one request `r` left in the sandbox's PagerDuty spool, as its JSON entry.
fn only_spooled_entry(sb: &Sandbox, r: &Run) -> serde_json::Value {
    let spooled = sb.spooled("pagerduty");
    assert_eq!(spooled.len(), 1, "{}", r.stderr);
    serde_json::from_slice(&std::fs::read(sb.spool_dir().join("pagerduty").join(&spooled[0])).unwrap()).unwrap()
}
