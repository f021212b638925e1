//! Loopback fakes of the incident services, for the integration tests.
//!
//! Each fake listens on 127.0.0.1 (port chosen by the OS), answers like the real service, and
//! checks every request against the published contract in `../shared/specs/`. A request that
//! breaks the contract is answered the way the real service would (e.g. PagerDuty's 400) *and*
//! recorded as a violation, so a test fails even if the handler would have coped with the error.

pub mod pagerduty;
pub mod proxy;
pub mod reactio;
pub mod slack;
pub mod tls;
pub mod twilio;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How the server answers one request.
pub enum Reply {
    /// Status, JSON body.
    Json(u16, serde_json::Value),
    /// Status, `Content-Type`, extra headers (e.g. `Retry-After`), body as given (e.g. Slack's
    /// plain-text webhook answers, an HTML error page).
    Raw(u16, &'static str, Vec<(&'static str, String)>, String),
    /// Accept the request and never answer (until the test ends).
    Hang,
    /// This reply, after this long (the request was carried out at once; its answer is slow
    /// on the way back: a request in flight for a while).
    Late(Duration, Box<Reply>),
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub url: String,
    /// Headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Received {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A running loopback HTTP server; stops when dropped.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Start a server that answers each request with `respond` (called on its own thread per
    /// request, so a hanging reply does not block the next request).
    pub fn start(respond: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Server {
        Server::start_on(0, respond)
    }

    /// [`Server::start`] on a given loopback port (0: chosen by the OS), e.g. to bring a
    /// service "back" on the port a handler found closed.
    pub fn start_on(port: u16, respond: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Server {
        let server = Arc::new(tiny_http::Server::http(("127.0.0.1", port)).expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("ip addr").port();
        let respond = Arc::new(respond);
        let srv = Arc::clone(&server);
        let thread = std::thread::spawn(move || {
            for mut req in srv.incoming_requests() {
                let respond = Arc::clone(&respond);
                std::thread::spawn(move || {
                    let mut body = Vec::new();
                    let _ = req.as_reader().read_to_end(&mut body);
                    let received = Received {
                        method: req.method().as_str().to_string(),
                        url: req.url().to_string(),
                        headers: req
                            .headers()
                            .iter()
                            .map(|h| (h.field.as_str().as_str().to_ascii_lowercase(), h.value.as_str().to_string()))
                            .collect(),
                        body,
                    };
                    let mut reply = respond(&received);
                    while let Reply::Late(wait, later) = reply {
                        std::thread::sleep(wait);
                        reply = *later;
                    }
                    match reply {
                        Reply::Json(status, value) => {
                            let resp = tiny_http::Response::from_string(value.to_string())
                                .with_status_code(status)
                                .with_header(tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap());
                            let _ = req.respond(resp);
                        }
                        Reply::Raw(status, content_type, headers, body) => {
                            let mut resp = tiny_http::Response::from_string(body)
                                .with_status_code(status)
                                .with_header(tiny_http::Header::from_bytes("Content-Type", content_type).unwrap());
                            for (name, value) in headers {
                                resp = resp.with_header(tiny_http::Header::from_bytes(name, value.as_bytes()).unwrap());
                            }
                            let _ = req.respond(resp);
                        }
                        Reply::Hang => {
                            std::thread::sleep(Duration::from_secs(60));
                            drop(req);
                        }
                        Reply::Late(..) => unreachable!("unwrapped above"),
                    }
                });
            }
        });
        Server { url: format!("http://127.0.0.1:{port}"), server, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Path of a file in `../shared/specs/`.
pub fn spec_path(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/specs").join(name);
    assert!(p.exists(), "the published spec {} is missing: the tests need ../shared/specs beside the repo", p.display());
    p
}

/// Inline every `#/components/...` `$ref` and drop OpenAPI-only keywords (`example`,
/// `x-*`, `nullable`, and `format`, whose OpenAPI values such as `url` are not JSON Schema
/// formats), turning an OpenAPI 3.0 schema into plain JSON Schema.
pub fn openapi_to_json_schema(schema: &serde_json::Value, doc: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match schema {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                let pointer = r.trim_start_matches('#');
                let target = doc.pointer(pointer).unwrap_or_else(|| panic!("unresolved $ref {r}"));
                return openapi_to_json_schema(target, doc);
            }
            let mut out = serde_json::Map::new();
            for (k, v) in o {
                if k == "example" || k == "examples" || k.starts_with("x-") || k == "nullable" || k == "format" {
                    continue;
                }
                out.insert(k.clone(), openapi_to_json_schema(v, doc));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| openapi_to_json_schema(v, doc)).collect()),
        other => other.clone(),
    }
}
