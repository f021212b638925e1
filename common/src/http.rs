//! One HTTP agent for every handler: timeouts inside a deadline, retries, classification.
//!
//! A page is only useful if it arrives while someone can still act, and a handler that hangs
//! blocks the monitoring system's handler pool, so every request runs inside one overall
//! [`Deadline`] (`--timeout`). Each attempt gets at most half of the whole budget (at least 1 s)
//! and never more than what is left, so a hanging server still leaves time for a second try.
//! Responses are classified by the provider into delivered / retryable / permanent;
//! transport errors (connect refused, reset, DNS, timeout) are retryable, certificate and URL
//! errors are configuration problems ([`Transport`]). Retries back off exponentially (250 ms
//! doubling to 4 s, jittered, `Retry-After` honoured) while the deadline allows.
//!
//! A [`Request`] is plain data (method, URL, headers, body) so that it can be printed by
//! `--dry-run` (with [`Request::redacted`]) and written to the spool as it is.
//!
//! **TLS** is rustls (ring). The trusted CAs are the `ca_file` setting ([`Trust`]): by default
//! Mozilla's roots compiled in (webpki-roots), which cost nothing per event; `system` for the
//! OS store (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle file), which costs
//! about 1 ms of every event that is delivered (measured: bench/README.md, "TLS trust store");
//! or a PEM file for a private CA. An untrusted, expired or misnamed certificate is not retried:
//! the delivery is [`Delivery::Broken`] (exit 78), see [`Transport`].
//!
//! **Proxies** come from the environment, read with curl's rules, not ureq's ([`proxy`]):
//! `https_proxy`/`HTTPS_PROXY` for https URLs, `http_proxy` for http, `all_proxy`/`ALL_PROXY`
//! for both, `no_proxy`/`NO_PROXY` with domain suffixes, addresses, CIDR networks and ports.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret;

pub mod proxy;
pub mod trust;

pub use proxy::{ProxyEnv, Route};
pub use trust::Trust;

/// Largest response body read, in bytes (64 KiB); the rest is ignored.
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// HTTP method of a [`Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// GET (no body).
    #[serde(rename = "GET")]
    Get,
    /// POST.
    #[serde(rename = "POST")]
    Post,
}

impl Method {
    /// `GET` or `POST`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    /// No body.
    Empty,
    /// `application/json`.
    Json(Value),
    /// `application/x-www-form-urlencoded`, pairs in order.
    Form(Vec<(String, String)>),
}

/// A fully built request: what the provider decided to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Extra headers (may carry credentials: `Authorization`, `X-Api-Key`).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Body,
}

impl Request {
    /// A JSON POST.
    pub fn post_json(url: impl Into<String>, body: Value) -> Request {
        Request { method: Method::Post, url: url.into(), headers: Vec::new(), body: Body::Json(body) }
    }

    /// A copy safe to print: credential headers and the given secret values masked
    /// everywhere (headers, JSON strings, form values, URL).
    pub fn redacted(&self, secrets: &[&str]) -> Request {
        let mask = |s: &str| secret::mask_all(s, secrets);
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| {
                let sensitive = k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("x-api-key");
                (k.clone(), if sensitive { secret::mask(v) } else { mask(v) })
            })
            .collect();
        let body = match &self.body {
            Body::Empty => Body::Empty,
            Body::Json(v) => Body::Json(secret::mask_json(v, secrets)),
            Body::Form(pairs) => Body::Form(pairs.iter().map(|(k, v)| (k.clone(), mask(v))).collect()),
        };
        Request { method: self.method, url: mask(&self.url), headers, body }
    }
}

/// A response, read in full (up to [`MAX_RESPONSE_BYTES`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Body as text (lossy UTF-8).
    pub body: String,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after: Option<Duration>,
}

/// How a provider classifies a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// The service accepted the request.
    Delivered,
    /// Try again (rate limited, server error); the text says why.
    Retryable(String),
    /// Never try again (invalid request, bad credentials); the text says why.
    Permanent(String),
}

/// Default classification: 2xx delivered; 3xx ([`redirect`]), 408, 429 and 5xx retryable;
/// everything else permanent.
pub fn classify_status(status: u16) -> Class {
    match status {
        200..=299 => Class::Delivered,
        300..=399 | 408 | 429 | 500..=599 => Class::Retryable(format!("HTTP {status}")),
        _ => Class::Permanent(format!("HTTP {status}")),
    }
}

/// Longest `Location` quoted in a redirect's reason, in characters.
pub const MAX_LOCATION_CHARS: usize = 200;

/// A 3xx answer is not a delivery, and it is never followed (the request carries credentials,
/// and a redirect could send them to another host). It is kept like any undeliverable request:
/// retryable, so it is retried within the deadline and then spooled (exit 75) for the next
/// invocation or `--flush`, once `api_url` or the proxy is fixed. The reason names the
/// `Location` (cut to [`MAX_LOCATION_CHARS`]); `None` for any other status.
pub fn redirect(status: u16, location: Option<std::borrow::Cow<'_, str>>) -> Option<String> {
    if !(300..=399).contains(&status) {
        return None;
    }
    let to = match location.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) if l.chars().count() > MAX_LOCATION_CHARS => {
            format!(" to {}…", l.chars().take(MAX_LOCATION_CHARS).collect::<String>())
        }
        Some(l) => format!(" to {l}"),
        None => " without a Location".to_string(),
    };
    Some(format!("HTTP {status} redirect{to}, not followed (a redirect is not a delivery; check api_url and any proxy)"))
}

/// [`classify_status`], with the reason for a failure written by `explain` (called only then),
/// so that a provider can quote the service's own error message.
pub fn classify_status_with(status: u16, explain: impl FnOnce() -> String) -> Class {
    match classify_status(status) {
        Class::Delivered => Class::Delivered,
        Class::Retryable(_) => Class::Retryable(explain()),
        Class::Permanent(_) => Class::Permanent(explain()),
    }
}

/// The end of an invocation's time budget.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    end: Instant,
    total: Duration,
}

impl Deadline {
    /// A deadline `total` from now.
    pub fn after(total: Duration) -> Deadline {
        let start = Instant::now();
        // Settings bound `timeout` (config::TIMEOUT_BOUNDS); a total the clock cannot represent
        // still never panics: it is cut to a day.
        let end = start.checked_add(total).or_else(|| start.checked_add(Duration::from_secs(86_400))).unwrap_or(start);
        Deadline { start, end, total }
    }

    /// Time left (zero when passed).
    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    /// Time since the deadline was set.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The per-attempt timeout: half the budget (at least 1 s), capped by what is left.
    pub fn attempt_timeout(&self) -> Duration {
        (self.total / 2).max(Duration::from_secs(1)).min(self.remaining())
    }
}

/// The final outcome of [`Client::deliver`].
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Accepted; the response and how many attempts it took.
    Delivered {
        /// The accepting response.
        response: Response,
        /// Attempts made (1 = first try).
        attempts: u32,
    },
    /// Refused for good; `reason` holds the provider's explanation.
    Permanent {
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// Why.
        reason: String,
    },
    /// The request itself cannot work (bad URL, TLS failure): a configuration problem.
    Broken(String),
    /// Still retryable when the deadline ran out; `reason` is the last failure.
    NotYet {
        /// The last failure.
        reason: String,
        /// Attempts made.
        attempts: u32,
    },
}

/// The shared HTTP client.
pub struct Client {
    agent: ureq::Agent,
    trust: Trust,
    proxies: ProxyEnv,
}

/// Environment variable that sets the first retry delay in milliseconds (default 250); tests
/// set it low to keep retries fast.
pub const RETRY_BASE_ENV: &str = "PAGERPIPE_RETRY_BASE_MS";

impl Client {
    /// Build the agent. `ca_file` is the setting of that name ([`Trust::from_setting`]): absent
    /// → the bundled Mozilla roots, `system` → the OS trust store, a path → the CA certificates
    /// in that PEM file. Proxies are read from the environment now ([`ProxyEnv::from_env`]).
    /// Errors (exit 78): unreadable or certificate-less CA file, empty system store.
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<Client> {
        Client::with(Trust::from_setting(ca_file), ProxyEnv::from_env())
    }

    /// [`Client::new`] with the trust and proxy settings given explicitly.
    pub fn with(trust: Trust, proxies: ProxyEnv) -> anyhow::Result<Client> {
        let tls = ureq::tls::TlsConfig::builder().root_certs(trust.root_certs()?).build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("pagerpipe/", env!("CARGO_PKG_VERSION")))
            .max_redirects(0)
            .tls_config(tls)
            // ureq would read the environment its own way; the route is chosen per request.
            .proxy(None);
        Ok(Client { agent: config.build().into(), trust, proxies })
    }

    /// Send once with `timeout` for the whole exchange. Errors are classified ([`Transport`])
    /// and say which host, and which proxy if any, they concern.
    pub fn send_once(&self, req: &Request, timeout: Duration) -> Result<Response, Transport> {
        let route = self.proxies.route(&req.url).map_err(Transport::Broken)?;
        let proxy = match &route {
            Route::Direct => None,
            Route::Proxy { proxy, .. } => Some(proxy.clone()),
        };
        let result = match req.method {
            Method::Get => {
                let mut b = self.agent.get(&req.url);
                for (k, v) in &req.headers {
                    b = b.header(k, v);
                }
                b.config().timeout_global(Some(timeout)).proxy(proxy).build().call()
            }
            Method::Post => {
                let mut b = self.agent.post(&req.url);
                for (k, v) in &req.headers {
                    b = b.header(k, v);
                }
                let b = b.config().timeout_global(Some(timeout)).proxy(proxy).build();
                match &req.body {
                    Body::Empty => b.send_empty(),
                    Body::Json(v) => b.send_json(v),
                    Body::Form(pairs) => b.send_form(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                }
            }
        };
        let classify = |e: &ureq::Error| transport_error(e, &Target::of(&req.url, &route, &self.trust));
        let mut resp = result.map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        if let Some(why) = redirect(status, resp.headers().get("location").map(|v| String::from_utf8_lossy(v.as_bytes()))) {
            return Err(Transport::Retryable(why));
        }
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            // A server's hint never exceeds an hour (the deadline cuts it anyway), so that no
            // addition to it can overflow.
            .map(|secs| Duration::from_secs(secs.min(3600)));
        let mut bytes = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| classify(&ureq::Error::Io(e)))?;
        Ok(Response { status, body: String::from_utf8_lossy(&bytes).into_owned(), retry_after })
    }

    /// Send `req` until it is delivered, refused for good, or `deadline` runs out.
    ///
    /// `classify` turns a response into a [`Class`]; `log` receives one line per failed attempt.
    pub fn deliver(
        &self,
        req: &Request,
        deadline: &Deadline,
        classify: &dyn Fn(&Response) -> Class,
        log: &mut dyn FnMut(String),
    ) -> Delivery {
        let base = std::env::var(RETRY_BASE_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_millis(250));
        let mut attempts = 0u32;
        let mut last = String::from("no attempt made: the deadline had already passed");
        loop {
            let timeout = deadline.attempt_timeout();
            if timeout < Duration::from_millis(20) {
                return Delivery::NotYet { reason: last, attempts };
            }
            attempts += 1;
            let mut wait_hint = None;
            match self.send_once(req, timeout) {
                Ok(resp) => match classify(&resp) {
                    Class::Delivered => return Delivery::Delivered { response: resp, attempts },
                    Class::Permanent(reason) => return Delivery::Permanent { status: Some(resp.status), reason },
                    Class::Retryable(reason) => {
                        wait_hint = resp.retry_after;
                        last = reason;
                    }
                },
                Err(Transport::Retryable(reason)) => last = reason,
                Err(Transport::Broken(reason)) => return Delivery::Broken(reason),
            }
            let backoff = jittered(base.saturating_mul(1 << (attempts - 1).min(4)).min(Duration::from_secs(4)));
            let wait = wait_hint.map_or(backoff, |h| h.max(backoff));
            let remaining = deadline.remaining();
            log(format!("attempt {attempts} failed: {last}; {} left", fmt_ms(remaining)));
            if wait.saturating_add(Duration::from_millis(20)) >= remaining {
                return Delivery::NotYet { reason: last, attempts };
            }
            std::thread::sleep(wait);
        }
    }
}

/// A transport error, classified.
///
/// Retryable: anything the network or the far side may stop doing by itself — refused or reset
/// connections, DNS failures, timeouts, HTTP protocol garbage, a proxy's 5xx, TLS failures that
/// are not about the certificate (a corrupted record, a bad MAC, an alert from a node that is
/// going down). These end as 75 (spooled) when the deadline runs out.
///
/// Broken (exit 78, `EX_CONFIG`): what no retry can fix because it is decided by this machine's
/// settings — a bad URL, a proxy variable that is not a proxy URL, a proxy that wants other
/// credentials (401/403/407), and every **certificate** problem: signed by a CA we do not
/// trust, expired or not yet valid (this machine's clock), issued for another name, revoked,
/// malformed, or a server with no protocol version or cipher in common. Not 75: the same
/// certificate comes back on every retry (Cargo's network retry makes the same call). Not 69:
/// that code says "the service refused this request, fix the request or credentials", but the
/// service never saw it; what the operator must fix is `ca_file`, `api_url`, the proxy, the
/// clock — the handler's configuration. (A TLS-inspecting proxy or an attacker in the path
/// shows up the same way, and needs the same human attention.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Network trouble: try again.
    Retryable(String),
    /// The request cannot work as configured (certificate, URL, proxy).
    Broken(String),
}

/// What an error is about, for its message: `host:port`, the route, the trust in force.
struct Target<'a> {
    host: String,
    route: &'a Route,
    trust: &'a Trust,
}

impl<'a> Target<'a> {
    fn of(url: &str, route: &'a Route, trust: &'a Trust) -> Target<'a> {
        let host = url
            .parse::<ureq::http::Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| a.as_str().rsplit('@').next().unwrap_or("").to_string()))
            .unwrap_or_else(|| "the server".into());
        Target { host, route, trust }
    }
}

/// Classify a transport error (see [`Transport`] for the rules).
fn transport_error(e: &ureq::Error, t: &Target<'_>) -> Transport {
    use ureq::Error as E;
    let (host, via) = (&t.host, t.route.suffix());
    if let Some(tls) = rustls_error(e) {
        return tls_error(tls, t);
    }
    match e {
        E::Timeout(what) => Transport::Retryable(format!("{host}{via} timed out ({what})")),
        E::Io(io) => Transport::Retryable(format!("network error with {host}{via}: {io}")),
        E::HostNotFound => match t.route {
            Route::Direct => Transport::Retryable(format!("host {host} not found (DNS)")),
            Route::Proxy { shown, .. } => Transport::Retryable(format!("{shown}: host not found (DNS)")),
        },
        E::ConnectionFailed => Transport::Retryable(format!("cannot connect to {host}{via}")),
        E::Protocol(p) => Transport::Retryable(format!("HTTP protocol error from {host}{via}: {p}")),
        E::BadUri(u) => Transport::Broken(format!("bad URL: {u}")),
        // The request cannot even be built (e.g. a URL or header the http crate rejects):
        // retrying builds the same request.
        E::Http(h) => Transport::Broken(format!("cannot build the request for {host}: {h}; check api_url")),
        E::InvalidProxyUrl => Transport::Broken("invalid proxy URL in the environment".into()),
        E::Tls(what) => Transport::Broken(format!("TLS with {host}: {what}")),
        E::Pem(p) => Transport::Broken(format!("TLS: bad PEM: {p}")),
        E::ConnectProxyFailed(why) => {
            let Route::Proxy { shown, var, .. } = t.route else {
                return Transport::Retryable(format!("proxy failed: {why}"));
            };
            // ureq words it "proxy server responded 407/407 Proxy Authentication Required".
            let status = why.split("responded ").nth(1).and_then(|s| s.get(..3)).and_then(|s| s.parse::<u16>().ok());
            match status {
                Some(407) => Transport::Broken(format!(
                    "{shown} requires authentication (407) for {host}: put user:password@ in {var} (or check them)"
                )),
                Some(s @ (401 | 403)) => Transport::Broken(format!("{shown} refused the tunnel to {host} ({s}): check its access rules")),
                _ => Transport::Retryable(format!("{shown} failed to open a tunnel to {host}: {why}")),
            }
        }
        other => Transport::Retryable(format!("{other} ({host}{via})")),
    }
}

/// The rustls error inside a ureq error: given as is, or wrapped in the I/O error of the handshake.
fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

fn tls_error(e: &rustls::Error, t: &Target<'_>) -> Transport {
    use rustls::CertificateError as C;
    let (host, via) = (&t.host, t.route.suffix());
    let broken = |what: String| Transport::Broken(format!("TLS: {what}; not retried"));
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            // BadSignature: a trusted CA of the issuer's name, but not the key that signed it.
            C::UnknownIssuer | C::BadSignature => broken(format!(
                "the certificate of {host}{via} is not signed by a trusted CA ({}): {}",
                if *c == C::UnknownIssuer { "unknown issuer" } else { "bad signature" },
                t.trust.untrusted_hint()
            )),
            C::NotValidForName | C::NotValidForNameContext { .. } => broken(format!(
                "the certificate presented{via} is not valid for {host}: check api_url (or the certificate of a TLS-inspecting proxy)"
            )),
            C::Expired | C::ExpiredContext { .. } => {
                broken(format!("the certificate of {host}{via} has expired (or this machine's clock is wrong)"))
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                broken(format!("the certificate of {host}{via} is not valid yet: check this machine's clock"))
            }
            C::Revoked => broken(format!("the certificate of {host}{via} is revoked")),
            other => broken(format!("the certificate of {host}{via} is invalid ({other:?})")),
        },
        rustls::Error::NoCertificatesPresented => broken(format!("{host}{via} presented no certificate")),
        rustls::Error::PeerIncompatible(p) => {
            broken(format!("{host}{via} offers no TLS version or cipher suite in common with rustls ({p:?})"))
        }
        other => Transport::Retryable(format!("TLS error with {host}{via}: {other}")),
    }
}

/// A random duration between `d / 2` and `d` (jitter spreads retries of a storm apart).
fn jittered(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let half = d / 2;
    half + Duration::from_nanos(r % (half.as_nanos().max(1) as u64))
}

/// Milliseconds for log lines: `43 ms`.
pub fn fmt_ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_status_classes() {
        assert_eq!(classify_status(202), Class::Delivered);
        assert!(matches!(classify_status(429), Class::Retryable(_)));
        assert!(matches!(classify_status(503), Class::Retryable(_)));
        assert!(matches!(classify_status(400), Class::Permanent(_)));
        assert!(matches!(classify_status(401), Class::Permanent(_)));
        assert!(matches!(classify_status(404), Class::Permanent(_)));
        assert!(matches!(classify_status(302), Class::Retryable(_)));
    }

    #[test]
    fn redirects_are_retryable_and_name_the_location() {
        assert_eq!(redirect(200, None), None);
        assert_eq!(redirect(404, Some("x".into())), None);
        let why = redirect(301, Some("https://events.eu.pagerduty.com/v2/enqueue".into())).unwrap();
        assert!(why.starts_with("HTTP 301 redirect to https://events.eu.pagerduty.com/v2/enqueue, not followed"), "{why}");
        assert!(redirect(302, None).unwrap().contains("without a Location"));
        let long = redirect(307, Some("x".repeat(10_000).into())).unwrap();
        assert!(long.chars().count() < MAX_LOCATION_CHARS + 150, "{long}");
    }

    #[test]
    fn attempt_timeout_is_half_the_budget_within_what_is_left() {
        let d = Deadline::after(Duration::from_secs(10));
        let t = d.attempt_timeout();
        assert!(t <= Duration::from_secs(5) && t > Duration::from_millis(4900), "{t:?}");
        let d = Deadline::after(Duration::from_millis(500));
        assert!(d.attempt_timeout() <= Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let j = jittered(Duration::from_millis(400));
            assert!(j >= Duration::from_millis(200) && j < Duration::from_millis(400), "{j:?}");
        }
    }

    #[test]
    fn redaction_masks_secrets_everywhere() {
        let key = "0123456789abcdef0123456789abcdef";
        let mut r = Request::post_json(format!("https://x/{key}"), json!({"routing_key": key, "nested": {"k": key}}));
        r.headers.push(("X-Api-Key".into(), "supersecretvalue".into()));
        let shown = serde_json::to_string(&r.redacted(&[key])).unwrap();
        assert!(!shown.contains(key), "{shown}");
        assert!(!shown.contains("supersecretvalue"), "{shown}");
    }

    #[test]
    fn connection_refused_is_retryable_until_the_deadline() {
        // Bind then drop a listener to get a port that refuses connections.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = Client::new(None).unwrap();
        let req = Request::post_json(format!("http://127.0.0.1:{port}/v2/enqueue"), json!({}));
        let deadline = Deadline::after(Duration::from_millis(600));
        let mut lines = Vec::new();
        let out = client.deliver(&req, &deadline, &|r| classify_status(r.status), &mut |l| lines.push(l));
        assert!(matches!(out, Delivery::NotYet { attempts, .. } if attempts >= 1), "{out:?}");
        assert!(deadline.elapsed() < Duration::from_millis(900));
        assert!(!lines.is_empty());
    }
}
