//! One HTTP agent for every handler: timeouts inside a deadline, retries, classification.
//!
//! A page is only useful if it arrives while someone can still act, and a handler that hangs
//! blocks the monitoring system's handler pool, so every request runs inside one overall
//! [`Deadline`] (`--timeout`). Each attempt gets at most half of the whole budget (at least 1 s)
//! and never more than what is left, so a hanging server still leaves time for a second try.
//! Every answer is one [`Outcome`]: responses are classified by the provider into delivered /
//! retryable / refused; transport errors (connect refused, reset, DNS, timeout) are retryable,
//! certificate and URL errors are configuration problems ([`Outcome::Broken`]). When to try
//! again is decided by a pure function, [`retry::plan`] (Cargo's `RetryResult` is the model):
//! exponential backoff (250 ms doubling to 4 s, jittered), `Retry-After` honoured (seconds or
//! an HTTP date), and a request whose fate is unknown (sent, no answer in time) is only tried
//! again with a whole attempt timeout to spare.
//!
//! A [`Request`] is plain data (method, URL, headers, body) so that it can be printed by
//! `--dry-run` (with [`Request::redacted`]) and written to the spool as it is.
//!
//! **TLS** is rustls (ring). The trusted CAs are the `ca_file` setting ([`Trust`]): by default
//! Mozilla's roots compiled in (webpki-roots), which cost nothing per event; `system` for the
//! OS store (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle file), which costs
//! about 1 ms of every event that is delivered (measured: bench/README.md, "TLS trust store");
//! or a PEM file for a private CA. An untrusted, expired or misnamed certificate is not retried:
//! the delivery is [`Outcome::Broken`] (exit 78), see `transport_error`.
//!
//! **Proxies** come from the environment, read with curl's rules, not ureq's ([`proxy`]):
//! `https_proxy`/`HTTPS_PROXY` for https URLs, `http_proxy` for http, `all_proxy`/`ALL_PROXY`
//! for both, `no_proxy`/`NO_PROXY` with domain suffixes, addresses, CIDR networks and ports.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use ureq::unversioned::transport::{ConnectProxyConnector, Connector as _, RustlsConnector};

use crate::outcome::{Fate, Outcome, Retry};
use crate::secret;

pub mod proxy;
pub mod resolve;
pub mod retry;
pub mod trust;
pub mod watch;

pub use proxy::{ProxyEnv, Route};
pub use trust::Trust;

/// Largest response body read for a POST, in bytes (1 MiB); the rest is ignored, and an
/// answer cut short is not JSON. Most answers are a few hundred bytes, but some echo what was
/// sent: Slack's `chat.postMessage` answer holds the message, text and blocks, which written
/// with every character outside ASCII as `\uXXXX` (six bytes, twelve for an emoji) took over
/// 64 KiB for an alert of emoji or CJK output; the handler then could not read the `ts` of the
/// message it had posted. The body is read into memory as it arrives, so the cap costs nothing
/// for a short answer.
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// Largest response body read for a GET, in bytes (4 MiB). The GETs are lookups whose answer
/// is a page of a list, far over 64 KiB at the page sizes asked for: Slack's
/// `conversations.list` (up to 999 conversation objects of about 1 KiB), Twilio's ListCall (50
/// call resources of 1-2 KiB), Reactio's incident list (100 incidents). A page cut short is
/// not JSON, so what it holds would never be found.
pub const MAX_LIST_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

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

/// A response, read in full (up to [`MAX_RESPONSE_BYTES`], or [`MAX_LIST_RESPONSE_BYTES`] for
/// a GET).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Body as text (lossy UTF-8).
    pub body: String,
    /// `Retry-After` (seconds, or an HTTP date made relative to now), when the server sent one.
    pub retry_after: Option<Duration>,
    /// `Location`, when the server sent one (a redirect, which is never followed: it is
    /// named in the log and the request kept).
    pub location: Option<String>,
}

/// Whether `s` can be a credential sent in an HTTP header as it is (Reactio's `X-Api-Key`, a
/// Slack `Authorization: Bearer` token): visible ASCII only (RFC 9110 §5.5 field values; no
/// space, which ends a token, and no control character). One with a line break, a NUL or a
/// letter outside ASCII makes a request that cannot be built (or that the service cannot
/// read): settings holding one are invalid, so that a check's such key is ignored for the
/// operator's and the operator's own is a configuration error (exit 78) before anything is
/// spooled, instead of a page that can never go out.
pub fn is_header_credential(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `s` is an absolute `http` or `https` URL with a host ([`http_url`]).
pub fn is_http_url(s: &str) -> bool {
    http_url(s).is_some()
}

/// `s` as an absolute `http` or `https` URL with a host and a valid port, written in URI
/// characters only (RFC 3986 §2–§3: what the services' specs type `format: url` / `uri`,
/// PagerDuty's `client_url` and `links[].href`); `None` when it is no such URL.
///
/// The HTTP parser takes more than RFC 3986 allows (it reads what browsers send): `|`, `^`, a
/// backtick, `\`, `"`, a second `#`, a `%` that starts no escape, a port of letters or over
/// 65535. A monitoring system's link holding one of them (a Grafana `var-host=a|b`, a
/// `{TRIGGER.URL}` with a backslash) went out as it was, for PagerDuty to refuse the whole
/// event (HTTP 400, never retried: the page lost). Such characters after the host are
/// percent-encoded as a browser does (`|` → `%7C`), which names the same resource; a host or
/// port that is none makes no URL.
pub fn http_url(s: &str) -> Option<String> {
    let uri = s.parse::<ureq::http::Uri>().ok()?;
    if !matches!(uri.scheme_str().map(str::to_ascii_lowercase).as_deref(), Some("http" | "https")) {
        return None;
    }
    let authority = uri.authority()?;
    if authority.host().is_empty() || !authority.as_str().bytes().all(|b| is_uri_char(b) && b != b'/' && b != b'?' && b != b'#') {
        return None;
    }
    // A port is digits, at most 65535 (an empty one, `host:`, is allowed and means the default).
    let host_port = authority.as_str().rsplit('@').next().unwrap_or_default();
    let after_host = host_port.rsplit_once(']').map_or(host_port, |(_, rest)| rest);
    // (`u16` parsing also takes a sign: `:+80` is no port.)
    if let Some((_, port)) = after_host.split_once(':')
        && !port.is_empty()
        && (authority.port_u16().is_none() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let start = s.find("://")? + 3;
    let (head, rest) = (s.get(..start)?, s.get(start..)?.as_bytes());
    let (auth, tail) = rest.split_at_checked(authority.as_str().len())?;
    let mut out = String::with_capacity(s.len());
    out.push_str(head);
    // In the authority the parser takes a `%` that starts no escape (in the userinfo, or an
    // IPv6 zone `[fe80::1%eth0]`, which RFC 6874 writes `%25eth0`) and an `@` before the last
    // one (in the userinfo): encoded as a browser does.
    let last_at = auth.iter().rposition(|&b| b == b'@');
    for (i, &b) in auth.iter().enumerate() {
        match b {
            b'%' if !auth.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => out.push_str("%25"),
            b'@' if Some(i) != last_at => out.push_str("%40"),
            b => out.push(char::from(b)),
        }
    }
    let mut fragment = false;
    for (i, &b) in tail.iter().enumerate() {
        let escape = tail.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        let keep = match b {
            b'#' if !fragment => {
                fragment = true;
                true
            }
            b'#' => false,
            b'%' => escape,
            // Brackets delimit an IPv6 host only (RFC 3986 §3.2.2): in a path, query or
            // fragment (a Zabbix `filter_hostids[]=`) they are escaped.
            b'[' | b']' => false,
            b => is_uri_char(b),
        };
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

/// Whether byte `b` may appear as it is in a URI (RFC 3986 §2: unreserved, reserved, and `%`).
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Default classification: 2xx delivered; 408, 429 and 5xx retryable; 3xx retryable (a
/// redirect is never followed: the request is kept, and the `Location` named, so an operator
/// can fix `api_url`); everything else refused.
pub fn classify_status(resp: &Response) -> Outcome {
    classify_status_with(resp, || format!("HTTP {}", resp.status))
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
pub fn classify_status_with(resp: &Response, explain: impl FnOnce() -> String) -> Outcome {
    match resp.status {
        200..=299 => Outcome::Delivered(()),
        300..=399 => Outcome::Retry(Retry::not_sent(
            redirect(resp.status, resp.location.as_deref().map(std::borrow::Cow::Borrowed)).unwrap_or_else(explain),
        )),
        408 | 429 | 500..=599 => Outcome::Retry(Retry { reason: explain(), fate: Fate::NotSent, after: resp.retry_after }),
        _ => Outcome::Refused(explain()),
    }
}

/// Whether `resp` carries the service's own answer (a JSON object: PagerDuty's, Twilio's,
/// Reactio's and Slack's Web API errors are), not a page something on the way put in its
/// place (a proxy's or a load balancer's HTML, a wrong `api_url`'s 404 page).
pub fn services_own(resp: &Response) -> bool {
    serde_json::from_str::<serde_json::Value>(&resp.body).is_ok_and(|v| v.is_object())
}

/// [`classify_status_with`] for a JSON API (PagerDuty, Twilio, Reactio), whose every error
/// answer is a JSON object: a 4xx other than 408 and 429 without one is no answer of the
/// service but of something in between (a corporate proxy's "blocked by policy" 403 page, a
/// wrong `api_url`'s 404), this machine's configuration: [`Outcome::Broken`], so the request
/// is spooled for the flush after the fix (exit 78) instead of refused for good and lost.
pub fn classify_json_api_with(resp: &Response, explain: impl FnOnce() -> String) -> Outcome {
    match resp.status {
        400..=499 if !matches!(resp.status, 408 | 429) && !services_own(resp) => Outcome::Broken(format!(
            "{}, which is not the service's own answer (no JSON error in it): check api_url and any proxy",
            explain()
        )),
        _ => classify_status_with(resp, explain),
    }
}

/// What the answer to a spooled request means when a flush (or a flush's run) delivers it:
/// `outcome`, its classification, except that the credentials in force refused (HTTP 401:
/// Twilio's 20003, Reactio's `authentication_error`) keeps the request in the spool
/// ([`Outcome::Broken`]: "fix the configuration; the entry is kept", exit 78 with the entry
/// still queued, and the entries sent the same way held back with it, not those of other
/// destinations: [`credentials_refused`]) instead of moving it to `failed/`. A flush
/// builds each request with the credentials in force, so the flush after they are fixed
/// delivers it (until `spool_max_age`), as handler-slack keeps a request Slack answers
/// `invalid_auth`. A live event's 401 stays a refusal (exit 69: "permanent" in the specs).
pub fn spooled_outcome(resp: &Response, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Refused(why) if credentials_refused(resp) => Outcome::Broken(why),
        other => other,
    }
}

/// Whether the answer `resp` refuses the credentials the request was sent with (HTTP 401),
/// which [`spooled_outcome`] keeps in the spool. Unlike this machine's configuration (a CA, a
/// proxy), which fails every entry alike, credentials may be a destination's own (a check's
/// API key or token): the flush holds back only the entries sent the same way.
pub fn credentials_refused(resp: &Response) -> bool {
    resp.status == 401
}

/// The end of an invocation's time budget.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    end: Instant,
    /// How long an attempt started before `end` may run: `end` itself, except for a
    /// [`Deadline::share`], whose attempts may run to the end of the deadline it was cut from.
    attempts_end: Instant,
    total: Duration,
}

impl Deadline {
    /// A deadline `total` from now.
    pub fn after(total: Duration) -> Deadline {
        let start = Instant::now();
        // Settings bound `timeout` (config::TIMEOUT_BOUNDS); a total the clock cannot represent
        // still never panics: it is cut to a day.
        let end = start.checked_add(total).or_else(|| start.checked_add(Duration::from_secs(86_400))).unwrap_or(start);
        Deadline { start, end, attempts_end: end, total }
    }

    /// The whole time the invocation's deadline was given (`--timeout`): a [`Deadline::share`]
    /// keeps its parent's, not its own part ([`Deadline::attempt_timeout`] is half of it).
    pub fn total(&self) -> Duration {
        self.total
    }

    /// Time left (zero when passed).
    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    /// The latest time (Unix seconds, rounded up) a request sent now within this deadline
    /// could reach the service.
    pub fn end_unix(&self) -> u64 {
        crate::clock::now_unix().saturating_add(self.remaining().as_secs()).saturating_add(1)
    }

    /// Time since the deadline was set.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The full per-attempt timeout: half the budget, at least 1 s. An attempt gets this much,
    /// or what is left when that is less and nothing was sent before ([`retry::plan`]).
    pub fn attempt_timeout(&self) -> Duration {
        (self.total / 2).max(Duration::from_secs(1))
    }

    /// Time an attempt started now may take at most: [`Deadline::remaining`], or for a
    /// [`Deadline::share`] what is left of the deadline it was cut from.
    pub fn attempt_remaining(&self) -> Duration {
        self.attempts_end.saturating_duration_since(Instant::now())
    }

    /// A deadline ending with this one but no later than `share` of what is left, for starting
    /// attempts. An attempt started within it is not cut short at its end (it may run to this
    /// deadline's end): a slow answer cut off after the service acted on the request would make
    /// its fate unknown, and the request would be sent again (the service answering in 0.3 s,
    /// the share running out 0.1 s into the second spooled request).
    pub fn share(&self, share: u32) -> Deadline {
        let start = Instant::now();
        let total = self.remaining() / share.max(1);
        Deadline { start, end: start + total, attempts_end: self.attempts_end, total: self.total }
    }
}

/// The shared HTTP client.
pub struct Client {
    agent: ureq::Agent,
    trust: Trust,
    proxies: ProxyEnv,
    /// Why this client cannot send at all (its `ca_file` could not be loaded,
    /// [`Client::or_unusable`]): every request fails with [`Outcome::Broken`] saying so, so
    /// that the page is spooled for the flush after the fix instead of being lost.
    unusable: Option<String>,
}

/// Environment variable that sets the first retry delay in milliseconds (default 250); tests
/// set it low to keep retries fast.
pub const RETRY_BASE_ENV: &str = "PAGERPIPE_RETRY_BASE_MS";

/// Largest response header accepted, and the size of the buffer it is read into (bytes):
/// 32 KiB. PagerDuty's, Twilio's, Slack's and Reactio's answers carry 1-4 KiB of header.
pub const RESPONSE_HEADER_MAX: usize = 32 * 1024;

/// Size of the buffer a request goes out through (bytes): 16 KiB. The header must fit; the
/// body streams through in pieces of this size.
const OUTPUT_BUFFER: usize = 16 * 1024;

impl Client {
    /// Build the agent. `ca_file` is the setting of that name ([`Trust::from_setting`]): absent
    /// → the bundled Mozilla roots, `system` → the OS trust store, a path → the CA certificates
    /// in that PEM file. Proxies are read from the environment now ([`ProxyEnv::from_env`]).
    /// Errors (exit 78): unreadable or certificate-less CA file, empty system store.
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<Client> {
        Client::with(Trust::from_setting(ca_file), ProxyEnv::from_env())
    }

    /// [`Client::new`], or when the trust cannot be loaded (a `ca_file` that cannot be read, a
    /// FIFO, no PEM certificate in it), a client that sends nothing: each request ends in
    /// [`Outcome::Broken`] with that error (exit 78), which the pipeline spools, as it does an
    /// untrusted certificate, for a later invocation or `--flush` once `ca_file` is fixed.
    pub fn or_unusable(ca_file: Option<&Path>) -> Client {
        Client::new(ca_file).unwrap_or_else(|e| {
            let why = format!("{e:#}");
            let mut client = Client::with_roots(ureq::tls::RootCerts::WebPki, Trust::Bundled, ProxyEnv::default());
            client.unusable = Some(why);
            client
        })
    }

    /// Why this client sends nothing ([`Client::or_unusable`]); `None` for a working one.
    pub fn unusable(&self) -> Option<&str> {
        self.unusable.as_deref()
    }

    /// [`Client::new`] with the trust and proxy settings given explicitly.
    pub fn with(trust: Trust, proxies: ProxyEnv) -> anyhow::Result<Client> {
        Ok(Client::with_roots(trust.root_certs()?, trust, proxies))
    }

    /// [`Client::with`], the roots of `trust` loaded already.
    fn with_roots(roots: ureq::tls::RootCerts, trust: Trust, proxies: ProxyEnv) -> Client {
        let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("pagerpipe/", env!("CARGO_PKG_VERSION")))
            .max_redirects(0)
            // ureq zero-fills both transport buffers when a connection opens (128 KiB each by
            // default): 64 pages touched per process, a quarter of a MiB of peak RSS for a few
            // KiB of exchange. Bodies of any size stream through them; only a response's
            // header must fit the input buffer (the services' are 1-4 KiB), so the header
            // limit is the buffer's size, refused with a clear error beyond it.
            .input_buffer_size(RESPONSE_HEADER_MAX)
            .max_response_header_size(RESPONSE_HEADER_MAX)
            .output_buffer_size(OUTPUT_BUFFER)
            .tls_config(tls)
            // ureq would read the environment its own way; the route is chosen per request.
            .proxy(None);
        // ureq's default chain (a proxy's CONNECT, TCP, rustls; no SOCKS), with the TCP
        // connections' waits watched for a lease's renewal (watch.rs).
        let connector =
            watch::Connecting(().chain(ConnectProxyConnector::default()).chain(watch::Watch::default()).chain(RustlsConnector::default()));
        let agent = ureq::Agent::with_parts(config.build(), connector, resolve::Literal::default());
        Client { agent, trust, proxies, unusable: None }
    }

    /// Send once with `timeout` for the whole exchange. Errors are classified (see
    /// `transport_error`: [`Outcome::Retry`] with the request's [`Fate`], or
    /// [`Outcome::Broken`]) and say which host, and which proxy if any, they concern.
    pub fn send_once(&self, req: &Request, timeout: Duration) -> Result<Response, Outcome> {
        if let Some(why) = &self.unusable {
            return Err(Outcome::Broken(why.clone()));
        }
        let route = self.proxies.route(&req.url).map_err(Outcome::Broken)?;
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
                b.config().timeout_global(Some(timeout)).timeout_connect(Some(timeout)).proxy(proxy).build().call()
            }
            Method::Post => {
                let mut b = self.agent.post(&req.url);
                for (k, v) in &req.headers {
                    b = b.header(k, v);
                }
                let b = b.config().timeout_global(Some(timeout)).timeout_connect(Some(timeout)).proxy(proxy).build();
                match &req.body {
                    Body::Empty => b.send_empty(),
                    // Compact, as the providers measure their bodies against the services'
                    // limits: ureq's send_json pretty-prints, which made a PagerDuty event of
                    // many small labels half again larger than the 512 KB it was fitted to.
                    Body::Json(v) => b.content_type("application/json; charset=utf-8").send(&serde_json::to_vec(v).unwrap_or_default()[..]),
                    Body::Form(pairs) => b.send_form(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                }
            }
        };
        let classify = |e: &ureq::Error| transport_error(e, &Target::of(&req.url, &route, &self.trust));
        let mut resp = result.map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        if let Some(why) = redirect(status, header("location").map(std::borrow::Cow::Owned)) {
            return Err(Outcome::Retry(Retry::not_sent(why)));
        }
        // A server's hint never exceeds an hour (the deadline cuts it anyway), so that no
        // addition to it can overflow.
        let retry_after = header("retry-after")
            .and_then(|v| retry::parse_retry_after(&v, std::time::SystemTime::now()))
            .map(|d| d.min(Duration::from_secs(3600)));
        let location = header("location");
        let mut bytes = Vec::new();
        let cap = match req.method {
            Method::Get => MAX_LIST_RESPONSE_BYTES,
            Method::Post => MAX_RESPONSE_BYTES,
        };
        resp.body_mut().as_reader().take(cap).read_to_end(&mut bytes).map_err(|e| classify(&ureq::Error::Io(e)))?;
        Ok(Response { status, body: String::from_utf8_lossy(&bytes).into_owned(), retry_after, location })
    }

    /// Send `req` until it is delivered, refused for good, or [`retry::plan`] gives up within
    /// `deadline`. `fate` is what is known of earlier attempts (a spooled request that timed
    /// out once is [`Fate::Unknown`]).
    ///
    /// `classify` turns a response into an [`Outcome`]; `log` receives one line per failed
    /// attempt. The result is [`Outcome::Delivered`] with the accepting response and the number
    /// of attempts, or the last failure ([`Outcome::Retry`] carries the request's fate).
    pub fn deliver(
        &self,
        req: &Request,
        deadline: &Deadline,
        fate: Fate,
        classify: &dyn Fn(&Response) -> Outcome,
        log: &mut dyn FnMut(String),
    ) -> Outcome<(Response, u32)> {
        self.deliver_inner(req, deadline, fate, false, &|| None, classify, log)
    }

    /// [`Client::deliver`], but a failure that leaves the request's fate unknown ends the
    /// delivery at once, for a request that must be looked up before it is sent again (a
    /// Twilio call: `Provider::lookup`).
    pub fn deliver_until_unknown(
        &self,
        req: &Request,
        deadline: &Deadline,
        classify: &dyn Fn(&Response) -> Outcome,
        log: &mut dyn FnMut(String),
    ) -> Outcome<(Response, u32)> {
        self.deliver_inner(req, deadline, Fate::NotSent, true, &|| None, classify, log)
    }

    /// [`Client::deliver_until_unknown`] for a request that may stop being wanted while it is
    /// retried (a sequential run's call, which a resolve or acknowledge recorded meanwhile
    /// stops): `halted` is asked before every try, and a reason from it ends the delivery with
    /// [`Outcome::Skipped`], the request not sent (again).
    pub fn deliver_until_unknown_unless(
        &self,
        req: &Request,
        deadline: &Deadline,
        halted: &dyn Fn() -> Option<String>,
        classify: &dyn Fn(&Response) -> Outcome,
        log: &mut dyn FnMut(String),
    ) -> Outcome<(Response, u32)> {
        self.deliver_inner(req, deadline, Fate::NotSent, true, halted, classify, log)
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver_inner(
        &self,
        req: &Request,
        deadline: &Deadline,
        mut fate: Fate,
        stop_on_unknown: bool,
        halted: &dyn Fn() -> Option<String>,
        classify: &dyn Fn(&Response) -> Outcome,
        log: &mut dyn FnMut(String),
    ) -> Outcome<(Response, u32)> {
        let policy = retry::Policy::from_env();
        let mut attempts = 0u32;
        let mut last: Option<Retry> = None;
        loop {
            let step = retry::plan(&policy, attempts, last.as_ref(), fate, deadline.remaining(), deadline.attempt_timeout(), random());
            let timeout = match step {
                retry::Step::Attempt { wait, timeout } => {
                    if attempts > 0 {
                        log(format!(
                            "attempt {attempts} failed: {}; {} left",
                            last.as_ref().map_or("", |r| r.reason.as_str()),
                            fmt_ms(deadline.remaining())
                        ));
                    }
                    crate::lease::sleep(wait);
                    if let Some(why) = halted() {
                        return Outcome::Skipped(why);
                    }
                    // Within a share, what is left of the whole deadline bounds the attempt.
                    if deadline.attempts_end > deadline.end {
                        timeout.max(deadline.attempt_timeout().min(deadline.attempt_remaining()))
                    } else {
                        timeout
                    }
                }
                retry::Step::GiveUp(why) => {
                    let mut r = last.unwrap_or_else(|| Retry::not_sent(why.clone()));
                    r.fate = fate;
                    if attempts > 0 {
                        r.reason =
                            format!("{} (after {attempts} attempt{}{})", r.reason, if attempts == 1 { "" } else { "s" }, why_suffix(&why));
                    }
                    return Outcome::Retry(r);
                }
            };
            attempts += 1;
            let failure = match self.send_once(req, timeout) {
                Ok(resp) => match classify(&resp) {
                    Outcome::Delivered(()) => return Outcome::Delivered((resp, attempts)),
                    Outcome::Retry(r) => r,
                    other => return other.failure().unwrap_or(Outcome::Skipped(String::new())),
                },
                Err(Outcome::Retry(r)) => r,
                Err(other) => return other.failure().unwrap_or(Outcome::Skipped(String::new())),
            };
            if failure.fate == Fate::Unknown {
                if stop_on_unknown {
                    let mut r = failure;
                    r.reason = format!("{} (it may have reached the service: looked up before it is sent again)", r.reason);
                    return Outcome::Retry(r);
                }
                fate = Fate::Unknown;
            }
            last = Some(failure);
        }
    }
}

/// `; <why>` for a give-up reason worth adding to the last failure.
fn why_suffix(why: &str) -> String {
    if why.is_empty() { String::new() } else { format!("; {why}") }
}

/// A random number for jitter (std's randomly keyed hasher: no extra crate for one number).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
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

/// Classify a transport error.
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
///
/// Fate: an error before the request left (DNS, refused or failed connection, connect timeout,
/// proxy tunnel refused) is [`Fate::NotSent`]; a timeout or broken connection after it may have
/// arrived is [`Fate::Unknown`].
fn transport_error(e: &ureq::Error, t: &Target<'_>) -> Outcome {
    use ureq::Error as E;
    let (host, via) = (&t.host, t.route.suffix());
    if let Some((tls, in_handshake)) = rustls_error(e) {
        return tls_error(tls, in_handshake, t);
    }
    match e {
        E::Timeout(what) => {
            let fate = match what {
                ureq::Timeout::Resolve | ureq::Timeout::Connect => Fate::NotSent,
                _ => Fate::Unknown,
            };
            retryable(fate, format!("{host}{via} timed out ({what})"))
        }
        E::Io(io) => {
            use std::io::ErrorKind as K;
            // A name that does not resolve surfaces as an I/O error of no specific kind
            // ("failed to lookup address information" from getaddrinfo): nothing was sent. Nor
            // when the connection failed before it was made ([`watch::InConnect`]: a reset or
            // an end of file in the TLS handshake, a proxy's tunnel cut).
            let in_connect = io.get_ref().is_some_and(|inner| inner.is::<watch::InConnect>());
            let fate = match io.kind() {
                _ if in_connect => Fate::NotSent,
                K::ConnectionRefused | K::AddrNotAvailable | K::NotFound | K::HostUnreachable | K::NetworkUnreachable => Fate::NotSent,
                _ if io.to_string().contains("failed to lookup address") => Fate::NotSent,
                _ => Fate::Unknown,
            };
            retryable(fate, format!("network error with {host}{via}: {io}"))
        }
        E::HostNotFound => match t.route {
            Route::Direct => retryable(Fate::NotSent, format!("host {host} not found (DNS)")),
            Route::Proxy { shown, .. } => retryable(Fate::NotSent, format!("{shown}: host not found (DNS)")),
        },
        E::ConnectionFailed => retryable(Fate::NotSent, format!("cannot connect to {host}{via}")),
        E::Protocol(p) => retryable(Fate::Unknown, format!("HTTP protocol error from {host}{via}: {p}")),
        E::BadUri(u) => Outcome::Broken(format!("bad URL: {u}")),
        // The request cannot even be built (e.g. a URL or header the http crate rejects):
        // retrying builds the same request.
        E::Http(h) => Outcome::Broken(format!("cannot build the request for {host}: {h}; check api_url")),
        E::InvalidProxyUrl => Outcome::Broken("invalid proxy URL in the environment".into()),
        E::Tls(what) => Outcome::Broken(format!("TLS with {host}: {what}")),
        E::Pem(p) => Outcome::Broken(format!("TLS: bad PEM: {p}")),
        E::ConnectProxyFailed(why) => {
            let Route::Proxy { shown, var, .. } = t.route else {
                return retryable(Fate::NotSent, format!("proxy failed: {why}"));
            };
            // ureq words it "proxy server responded 407/407 Proxy Authentication Required".
            let status = why.split("responded ").nth(1).and_then(|s| s.get(..3)).and_then(|s| s.parse::<u16>().ok());
            match status {
                Some(407) => Outcome::Broken(format!(
                    "{shown} requires authentication (407) for {host}: put user:password@ in {var} (or check them)"
                )),
                Some(s @ (401 | 403)) => Outcome::Broken(format!("{shown} refused the tunnel to {host} ({s}): check its access rules")),
                _ => retryable(Fate::NotSent, format!("{shown} failed to open a tunnel to {host}: {why}")),
            }
        }
        other => retryable(Fate::Unknown, format!("{other} ({host}{via})")),
    }
}

/// A retryable transport failure.
fn retryable(fate: Fate, reason: String) -> Outcome {
    Outcome::Retry(Retry { reason, fate, after: None })
}

/// The rustls error inside a ureq error: given as is, or wrapped in an I/O error; and whether
/// it was met in the handshake ([`watch::InConnect`]: nothing of the request was sent).
fn rustls_error(e: &ureq::Error) -> Option<(&rustls::Error, bool)> {
    match e {
        ureq::Error::Rustls(r) => Some((r, false)),
        ureq::Error::Io(io) => {
            let inner = io.get_ref()?;
            match inner.downcast_ref::<watch::InConnect>() {
                Some(connecting) => connecting.0.get_ref()?.downcast_ref::<rustls::Error>().map(|r| (r, true)),
                None => inner.downcast_ref::<rustls::Error>().map(|r| (r, false)),
            }
        }
        _ => None,
    }
}

/// The outcome of TLS error `e`: a certificate this machine does not accept is
/// [`Outcome::Broken`]; any other is retryable, of unknown fate unless it was met in the
/// handshake (`in_handshake`: an `https://` URL to a plain-HTTP port, a connection cut while
/// negotiating), where nothing of the request was sent.
fn tls_error(e: &rustls::Error, in_handshake: bool, t: &Target<'_>) -> Outcome {
    use rustls::CertificateError as C;
    let (host, via) = (&t.host, t.route.suffix());
    let broken = |what: String| Outcome::Broken(format!("TLS: {what}; not retried"));
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
        other if in_handshake => retryable(Fate::NotSent, format!("TLS handshake with {host}{via} failed: {other}")),
        other => retryable(Fate::Unknown, format!("TLS error with {host}{via}: {other}")),
    }
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

    fn resp(status: u16) -> Response {
        Response { status, body: String::new(), retry_after: None, location: None }
    }

    #[test]
    fn a_share_bounds_when_attempts_start_not_how_long_one_runs() {
        let whole = Deadline::after(Duration::from_secs(10));
        let share = whole.share(4);
        assert!(share.remaining() <= Duration::from_millis(2500), "{share:?}");
        // An attempt started within the share may run to the end of the whole deadline.
        let attempt = share.attempt_remaining();
        assert!(attempt > Duration::from_millis(2500) && attempt >= whole.remaining(), "{attempt:?}");
        // A deadline that is no share: the same end for both.
        let d = Deadline::after(Duration::from_secs(3));
        assert!(d.attempt_remaining() <= Duration::from_secs(3));
        assert_eq!(d.attempts_end, d.end);
    }

    #[test]
    fn http_urls() {
        for ok in [
            "https://zabbix.example.com/tr_events.php?triggerid=1&eventid=2",
            "http://10.0.0.5:8080/",
            "HTTPS://x.example",
            "http://[::1]:8080/x?a=%20b#top",
            "https://user@x.example:443/k#/app?q=(a:'b')",
        ] {
            assert!(is_http_url(ok), "{ok}");
            assert_eq!(http_url(ok).as_deref(), Some(ok), "a URL in URI characters is kept as it is");
        }
        for bad in [
            "",
            "see the runbook",
            "zabbix.example.com/x",
            "ftp://x.example/",
            "https://",
            "https:///path",
            "https://x y/",
            "https://g.example:abc/",
            "https://user@g.example:99999/d",
            "https://g.example:+80/",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    /// `format: url` (RFC 3986): what the HTTP parser takes beyond URI characters is
    /// percent-encoded after the host, never sent for PagerDuty to refuse the event.
    #[test]
    fn characters_outside_rfc_3986_are_percent_encoded() {
        for (given, sent) in [
            ("https://g.example/d?var-host=a|b", "https://g.example/d?var-host=a%7Cb"),
            ("https://g.example/d?x=a^b`c", "https://g.example/d?x=a%5Eb%60c"),
            ("https://g.example/d\\x", "https://g.example/d%5Cx"),
            ("https://g.example/d#frag#2", "https://g.example/d#frag%232"),
            ("https://g.example/100%zz", "https://g.example/100%25zz"),
            ("https://g.example/100%", "https://g.example/100%25"),
            ("https://a%zz@g.example/", "https://a%25zz@g.example/"),
            ("https://a@b@g.example/", "https://a%40b@g.example/"),
            ("http://[fe80::1%eth0]:8080/", "http://[fe80::1%25eth0]:8080/"),
            ("https://z.example/zabbix.php?filter_hostids[]=10084", "https://z.example/zabbix.php?filter_hostids%5B%5D=10084"),
            ("https://g.example/ä?q=ö#ü", "https://g.example/%C3%A4?q=%C3%B6#%C3%BC"),
        ] {
            assert_eq!(http_url(given).as_deref(), Some(sent), "{given}");
        }
    }

    #[test]
    fn default_status_classes() {
        assert_eq!(classify_status(&resp(202)), Outcome::Delivered(()));
        assert!(matches!(classify_status(&resp(429)), Outcome::Retry(_)));
        assert!(matches!(classify_status(&resp(503)), Outcome::Retry(_)));
        assert!(matches!(classify_status(&resp(400)), Outcome::Refused(_)));
        assert!(matches!(classify_status(&resp(401)), Outcome::Refused(_)));
        assert!(matches!(classify_status(&resp(404)), Outcome::Refused(_)));
    }

    #[test]
    fn only_a_json_object_is_the_services_own_answer() {
        let r = |body: &str| Response { status: 403, body: body.into(), retry_after: None, location: None };
        assert!(services_own(&r(r#"{"code":20403,"message":"Forbidden","status":403}"#)));
        assert!(services_own(&r(r#"{"type":"authentication_error","message":"invalid api key"}"#)));
        for body in ["<html><body>403 Forbidden</body></html>", "", "[]", "\"denied\""] {
            assert!(!services_own(&r(body)), "{body}");
        }
    }

    #[test]
    fn a_json_apis_4xx_without_its_json_error_is_this_machines_configuration() {
        let r = |status: u16, body: &str| Response { status, body: body.into(), retry_after: None, location: None };
        let explain = |status: u16| move || format!("HTTP {status}");
        assert!(
            matches!(classify_json_api_with(&r(403, "<html>blocked by policy</html>"), explain(403)), Outcome::Broken(why) if why.contains("check api_url"))
        );
        assert!(matches!(classify_json_api_with(&r(404, ""), explain(404)), Outcome::Broken(_)));
        assert!(matches!(classify_json_api_with(&r(400, r#"{"status":"invalid event"}"#), explain(400)), Outcome::Refused(_)));
        assert!(matches!(classify_json_api_with(&r(401, r#"{"code":20003}"#), explain(401)), Outcome::Refused(_)));
        assert!(matches!(classify_json_api_with(&r(429, "<html>slow down</html>"), explain(429)), Outcome::Retry(_)));
        assert!(matches!(classify_json_api_with(&r(502, "<html>bad gateway</html>"), explain(502)), Outcome::Retry(_)));
        assert_eq!(classify_json_api_with(&r(201, ""), explain(201)), Outcome::Delivered(()));
    }

    #[test]
    fn a_redirect_is_kept_and_names_its_location() {
        let mut r = resp(301);
        r.location = Some("https://elsewhere.example/".into());
        match classify_status(&r) {
            Outcome::Retry(retry) => {
                assert!(retry.reason.contains("https://elsewhere.example/"), "{}", retry.reason);
                assert_eq!(retry.fate, Fate::NotSent);
            }
            other => panic!("a redirect must be kept for a retry: {other:?}"),
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
    fn a_refused_connection_is_retryable_and_was_never_sent() {
        // Port 1 on loopback: nothing listens there, so the connection is refused.
        let client = Client::new(None).expect("client");
        let req = Request::post_json("http://127.0.0.1:1/v2/enqueue", json!({}));
        match client.send_once(&req, Duration::from_secs(2)) {
            Err(Outcome::Retry(r)) => assert_eq!(r.fate, Fate::NotSent, "{}", r.reason),
            other => panic!("expected a retryable refusal: {other:?}"),
        }
    }
}
