//! One HTTP agent for every handler: timeouts inside a deadline, retries, classification.
//!
//! A page is only useful if it arrives while someone can still act, and a handler that hangs
//! blocks the monitoring system's handler pool, so every request runs inside one overall
//! [`Deadline`] (`--timeout`). Each attempt gets at most half of the whole budget (at least 1 s)
//! and never more than what is left, so a hanging server still leaves time for a second try.
//! Responses are classified by the provider into delivered / retryable / permanent;
//! transport errors (connect refused, reset, DNS, timeout) are retryable, TLS and URL errors are
//! configuration problems. Retries back off exponentially (250 ms doubling to 4 s, jittered,
//! `Retry-After` honoured) while the deadline allows.
//!
//! A [`Request`] is plain data (method, URL, headers, body) so that it can be printed by
//! `--dry-run` (with [`Request::redacted`]) and written to the spool as it is.
//!
//! TLS is rustls with the Mozilla roots compiled in (webpki-roots): no CA bundle is read at
//! start-up. A private CA is given with `ca_file` (PEM). Proxies come from the environment:
//! the first of `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY` (any case), with `NO_PROXY` honoured
//! (ureq's rules).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret;

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

/// Default classification: 2xx delivered; 408, 429 and 5xx retryable; everything else permanent.
pub fn classify_status(status: u16) -> Class {
    match status {
        200..=299 => Class::Delivered,
        408 | 429 | 500..=599 => Class::Retryable(format!("HTTP {status}")),
        _ => Class::Permanent(format!("HTTP {status}")),
    }
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
        Deadline { start, end: start + total, total }
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
}

/// Environment variable that sets the first retry delay in milliseconds (default 250); tests
/// set it low to keep retries fast.
pub const RETRY_BASE_ENV: &str = "PAGERPIPE_RETRY_BASE_MS";

impl Client {
    /// Build the agent. `ca_file`: PEM file of root certificates to trust instead of the
    /// bundled Mozilla roots. Errors: unreadable or empty CA file.
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<Client> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("pagerpipe/", env!("CARGO_PKG_VERSION")))
            .max_redirects(0);
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read ca_file {}: {e}", path.display()))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                anyhow::bail!("ca_file {} holds no PEM certificate", path.display());
            }
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
            config = config.tls_config(tls);
        }
        Ok(Client { agent: config.build().into() })
    }

    /// Send once with `timeout` for the whole exchange.
    pub fn send_once(&self, req: &Request, timeout: Duration) -> Result<Response, ureq::Error> {
        let result = match req.method {
            Method::Get => {
                let mut b = self.agent.get(&req.url);
                for (k, v) in &req.headers {
                    b = b.header(k, v);
                }
                b.config().timeout_global(Some(timeout)).build().call()
            }
            Method::Post => {
                let mut b = self.agent.post(&req.url);
                for (k, v) in &req.headers {
                    b = b.header(k, v);
                }
                let b = b.config().timeout_global(Some(timeout)).build();
                match &req.body {
                    Body::Empty => b.send_empty(),
                    Body::Json(v) => b.send_json(v),
                    Body::Form(pairs) => b.send_form(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                }
            }
        };
        let mut resp = result?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut bytes = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(ureq::Error::Io)?;
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
                Err(e) => match transport_error(&e) {
                    Transport::Retryable(reason) => last = reason,
                    Transport::Broken(reason) => return Delivery::Broken(reason),
                },
            }
            let backoff = jittered(base.saturating_mul(1 << (attempts - 1).min(4)).min(Duration::from_secs(4)));
            let wait = wait_hint.map_or(backoff, |h| h.max(backoff));
            let remaining = deadline.remaining();
            log(format!("attempt {attempts} failed: {last}; {} left", fmt_ms(remaining)));
            if wait + Duration::from_millis(20) >= remaining {
                return Delivery::NotYet { reason: last, attempts };
            }
            std::thread::sleep(wait);
        }
    }
}

/// A transport error, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Network trouble: try again.
    Retryable(String),
    /// The request cannot work as configured (TLS, URL, proxy URL).
    Broken(String),
}

/// Classify a transport error: network trouble is retryable; TLS, URL and proxy-URL errors
/// are configuration problems.
pub fn transport_error(e: &ureq::Error) -> Transport {
    use Transport as Class;
    use ureq::Error as E;
    match e {
        E::Timeout(t) => Class::Retryable(format!("timed out ({t})")),
        E::Io(io) => Class::Retryable(format!("network error: {io}")),
        E::HostNotFound => Class::Retryable("host not found (DNS)".into()),
        E::ConnectionFailed => Class::Retryable("connection failed".into()),
        E::Protocol(p) => Class::Retryable(format!("HTTP protocol error: {p}")),
        E::BadUri(u) => Class::Broken(format!("bad URL: {u}")),
        E::InvalidProxyUrl => Class::Broken("invalid proxy URL in the environment".into()),
        other => {
            let text = other.to_string();
            if text.to_ascii_lowercase().contains("tls") || text.contains("certificate") {
                Class::Broken(format!("TLS error: {text} (set ca_file for a private CA)"))
            } else {
                Class::Retryable(text)
            }
        }
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
