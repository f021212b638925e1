//! A fake Twilio API 2010-04-01: create a call (`POST /2010-04-01/Accounts/{AccountSid}/Calls.json`),
//! send a message (`…/Messages.json`), fetch a call (`GET …/Calls/{Sid}.json`), update one
//! (`POST …/Calls/{Sid}.json`, e.g. `Status=canceled`) and list calls (ListCall,
//! `GET …/Calls.json?To=…&From=…&StartTime>=YYYY-MM-DD`: the query parameters checked against
//! the ListCall operation's parameters in the spec, the answer a `ListCallResponse` of at most
//! `PageSize` calls (default 50) with `next_page_uri` to the next page; `StartTime` filters
//! go by when a call started, which a call still waiting in Twilio's queue has not).
//!
//! Checks each request the way Twilio would (`../shared/specs/README.md`): HTTP Basic auth
//! (`AccountSid:AuthToken` or `ApiKeySid:secret`, the account SID in the path),
//! `application/x-www-form-urlencoded`, the parameters against the create-Call / create-Message
//! request schemas of `../shared/specs/twilio-api-v2010-calls-messages.json` (form values are
//! strings, so each is coerced to the schema's type first), and by hand the rules the schema
//! leaves out: E.164 `To`/`From`; exactly one of `Url`/`Twiml`/`ApplicationSid`; `Twiml` at most
//! 4000 characters, well-formed XML with root `<Response>`; `Timeout` at most 600; `Body` at most
//! 1600 characters (both counted in UTF-16 code units, the stricter reading: an emoji is two). A wrong credential → 401 code 20003; a broken request → 400 with Twilio's
//! error body, also recorded as a violation. Valid requests get the scripted reply (201 with a
//! call object `CA…` / message object `SM…` by default).
//!
//! Calls live on: each is given the next scripted [`Outcome`] (default: answered by a person),
//! and a fetch reports it the way Twilio's status values progress — `ringing` on the first
//! fetch, the outcome's final status from the second on (`completed` with a `duration`, `busy`,
//! `no-answer`, …; `answered_by` only when the call was created with `MachineDetection`). The
//! call SID and the update parameters are checked against the spec's path-parameter pattern and
//! update-Call request schema; the answers themselves match the spec's call schema (self-test).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::{Received, Reply, Server, openapi_to_json_schema, spec_path};

/// Call statuses after which Twilio does nothing more with a call.
const FINAL: [&str; 5] = ["completed", "busy", "failed", "no-answer", "canceled"];

/// The account SID the fake accepts.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000f00d01";
/// The auth token the fake accepts (never a real one).
pub const AUTH_TOKEN: &str = "twilio-test-token-0000000000c0ffee";
/// An API key SID the fake accepts, with [`API_KEY_SECRET`].
pub const API_KEY_SID: &str = "SK00000000000000000000000000beef02";
/// The API key secret the fake accepts.
pub const API_KEY_SECRET: &str = "twilio-test-api-key-secret-0000cafe";

/// A scripted answer for one valid, authorized request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// 201 with the created call or message.
    Accept,
    /// 401 code 20003 (as if the credentials were revoked).
    Unauthorized,
    /// 400 code 21211: the `To` number is not valid.
    InvalidTo,
    /// 429 code 20429.
    RateLimited,
    /// 500.
    ServerError,
    /// Never answer, and do nothing (the request was lost on the way).
    Hang,
    /// Place the call (or send the message) and never answer: a request of unknown fate to
    /// its sender, which Twilio did act on.
    AcceptThenHang,
    /// Place the call (or send the message) and answer 201 after this many milliseconds (a
    /// create in flight for a while).
    Late(u64),
    /// Place the call (or send the message), then answer this 5xx status with Twilio's error
    /// body: a gateway error (500/502/504) that came back after Twilio acted on the request.
    AcceptThenFail(u16),
    /// 503 with `Retry-After: 1`, nothing placed.
    Unavailable,
}

/// How a scripted call ends, as `GET …/Calls/{Sid}.json` reports it from the second fetch on
/// (the first says `ringing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A person answered and listened: `completed`, duration 12 s; `answered_by: human` with
    /// `MachineDetection`.
    Answered,
    /// A person answered and is still listening: `in-progress`.
    InProgress,
    /// Rang out: `no-answer`.
    NoAnswer,
    /// `busy`.
    Busy,
    /// `failed` (e.g. the carrier rejected it).
    Failed,
    /// A voicemail took it: `completed`, duration 20 s; with `MachineDetection`
    /// `answered_by: machine_end_beep` (without, it cannot be told from a person).
    Voicemail,
    /// Rings until cancelled (`ringing` on every fetch).
    Ringing,
}

/// A call the fake placed, with what has happened to it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Call SID.
    pub sid: String,
    /// The number called.
    pub to: String,
    /// The caller number.
    pub from: String,
    /// How it ends.
    pub outcome: Outcome,
    /// Created with `MachineDetection`.
    pub amd: bool,
    /// Fetches so far.
    pub fetches: u32,
    /// Cancelled by an update (`Status=canceled`) while queued or ringing.
    pub canceled: bool,
    /// When it was created, Unix seconds (ListCall's `StartTime` filters).
    pub created: u64,
}

impl Call {
    /// Whether the call is over (its status is final: completed, busy, failed, no-answer,
    /// canceled).
    pub fn has_ended(&self) -> bool {
        FINAL.contains(&self.status())
    }

    /// The status a fetch reports now.
    pub fn status(&self) -> &'static str {
        if self.canceled {
            return "canceled";
        }
        if self.fetches <= 1 {
            return if self.fetches == 0 { "queued" } else { "ringing" };
        }
        match self.outcome {
            Outcome::Answered | Outcome::Voicemail => "completed",
            Outcome::InProgress => "in-progress",
            Outcome::NoAnswer => "no-answer",
            Outcome::Busy => "busy",
            Outcome::Failed => "failed",
            Outcome::Ringing => "ringing",
        }
    }

    /// When the call started, Unix seconds: `None` while it waits in Twilio's queue (`queued`,
    /// never dialled; also one cancelled there), as the spec's `start_time` is "Empty if the
    /// call has not yet been dialed". The fake dials a call when it is first fetched, or by
    /// [`FakeTwilio::dial_queued`]; it starts at its creation time.
    pub fn started(&self) -> Option<u64> {
        (self.fetches > 0).then_some(self.created)
    }

    /// The call resource as Twilio answers a fetch or an update.
    pub fn resource(&self) -> Value {
        let status = self.status();
        let (duration, answered_by) = match (status, self.outcome) {
            ("completed", Outcome::Answered) => (Some("12"), self.amd.then_some("human")),
            ("completed", Outcome::Voicemail) => (Some("20"), self.amd.then_some("machine_end_beep")),
            ("in-progress", _) => (None, self.amd.then_some("human")),
            _ => (None, None),
        };
        // RFC 2822, as Twilio writes its dates.
        let created = httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.created)).replace("GMT", "+0000");
        // "Empty if the call has not yet been dialed" (the spec's `start_time`).
        let started = self.started().map(|_| created.clone());
        json!({"sid": self.sid, "account_sid": ACCOUNT_SID, "to": self.to, "from": self.from, "status": status,
               "date_created": created, "start_time": started,
               "direction": "outbound-api", "api_version": "2010-04-01", "duration": duration, "answered_by": answered_by,
               "price": null, "price_unit": "USD", "parent_call_sid": null,
               "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{}.json", self.sid)})
    }
}

/// One valid request the fake accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// `Calls.json` or `Messages.json`.
    pub resource: String,
    /// The form parameters, decoded, in order.
    pub params: Vec<(String, String)>,
    /// The parsed `Twiml`, for a call.
    pub twiml: Option<Twiml>,
    /// The SID answered.
    pub sid: String,
}

impl Accepted {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A `Twiml` document as Twilio would read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Twiml {
    /// Element names in document order (`Response`, `Say`, …).
    pub elements: Vec<String>,
    /// The text of each `<Say>`, unescaped: what would be spoken.
    pub say: Vec<String>,
    /// Attributes of the first `<Say>`, unescaped.
    pub say_attrs: Vec<(String, String)>,
    /// The text of `<Conference>`, when there is one.
    pub conference: Option<String>,
    /// The `length` of `<Pause>`, when there is one.
    pub pause: Option<String>,
}

/// Parse `doc` as TwiML: well-formed XML whose root element is `<Response>`.
pub fn parse_twiml(doc: &str) -> Result<Twiml, String> {
    use quick_xml::events::Event;
    // XML 1.0 `Char` (quick-xml does not check it; Twilio's parser does): a NUL, ESC or other
    // C0 control, raw or as a character reference, is a document parse failure.
    let xml_char = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if let Some(c) = doc.chars().find(|c| !xml_char(*c)) {
        return Err(format!("not well-formed XML: character {c:?} is not allowed in XML 1.0"));
    }
    let mut reader = quick_xml::Reader::from_str(doc);
    let mut t = Twiml::default();
    let mut open: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut roots = 0;
    loop {
        let ev = reader.read_event().map_err(|e| format!("not well-formed XML at {}: {e}", reader.buffer_position()))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = e.name().as_ref().to_string();
                if open.is_empty() {
                    roots += 1;
                    if name != "Response" {
                        return Err(format!("root element is <{name}>, not <Response>"));
                    }
                }
                structure(open.last().map(String::as_str), &name)?;
                for a in e.attributes() {
                    let a = a.map_err(|e| format!("bad attribute: {e}"))?;
                    let key = a.key.as_ref().to_string();
                    let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| format!("bad attribute value: {e}"))?;
                    attribute(&name, &key, &value)?;
                }
                if name == "Say" && t.say_attrs.is_empty() {
                    for a in e.attributes() {
                        let a = a.map_err(|e| format!("bad attribute: {e}"))?;
                        let v = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| format!("bad attribute value: {e}"))?;
                        t.say_attrs.push((a.key.as_ref().to_string(), v.into_owned()));
                    }
                }
                if name == "Pause" {
                    let length = e
                        .try_get_attribute("length")
                        .map_err(|e| format!("bad attribute: {e}"))?
                        .map(|a| a.value.into_owned())
                        .unwrap_or_else(|| "1".into());
                    if !length.parse::<u32>().is_ok_and(|n| n >= 1) {
                        return Err(format!("<Pause length=\"{length}\"> is not a whole number of seconds"));
                    }
                    t.pause = Some(length);
                }
                t.elements.push(name.clone());
                // Empty elements close at once; Start pushes until its End.
                if empty {
                    if open.is_empty() {
                        break;
                    }
                } else {
                    open.push(name);
                    text.clear();
                }
            }
            Event::Text(e) => {
                let content = e.xml10_content();
                if open.len() == 1 && !content.trim().is_empty() {
                    return Err(format!("text {:?} directly in <Response>", content.trim()));
                }
                text.push_str(&content)
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                match r.resolve_char_ref().map_err(|e| format!("bad character reference: {e}"))? {
                    Some(c) if !xml_char(c) => return Err(format!("not well-formed XML: character reference to {c:?}")),
                    Some(c) => text.push(c),
                    None => text
                        .push_str(quick_xml::escape::resolve_predefined_entity(&name).ok_or_else(|| format!("unknown entity &{name};"))?),
                }
            }
            Event::End(e) => {
                let name = e.name().as_ref().to_string();
                match name.as_str() {
                    "Say" => t.say.push(std::mem::take(&mut text)),
                    "Conference" => t.conference = Some(std::mem::take(&mut text)),
                    _ => text.clear(),
                }
                open.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(format!("unclosed <{}>", open.join("> <")));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(t)
}

/// Twilio's voice verbs, the elements a `<Response>` holds (TwiML reference).
const VERBS: [&str; 19] = [
    "Say", "Play", "Pause", "Dial", "Gather", "Hangup", "Redirect", "Reject", "Record", "Enqueue", "Leave", "Connect", "Refer", "Stream",
    "Start", "Stop", "Pay", "Prompt", "Echo",
];
/// The nouns a `<Dial>` holds.
const DIAL_NOUNS: [&str; 8] = ["Number", "Client", "Conference", "Queue", "Sip", "Sim", "Application", "WhatsApp"];

/// Whether `name` may stand where it stands, under `parent` (`None`: the root): verbs in
/// `<Response>`, nouns in `<Dial>`, SSML (lower-case names) in `<Say>`; Twilio answers
/// 12100 (document parse failure) or 12200 (schema validation) otherwise.
fn structure(parent: Option<&str>, name: &str) -> Result<(), String> {
    let ok = match parent {
        None => name == "Response",
        Some("Response") => VERBS.contains(&name),
        Some("Dial") => DIAL_NOUNS.contains(&name),
        Some("Say") => name.starts_with(|c: char| c.is_ascii_lowercase()),
        Some("Gather") => ["Say", "Play", "Pause"].contains(&name),
        Some(_) => {
            name.starts_with(|c: char| c.is_ascii_lowercase()) && parent.is_some_and(|p| p.starts_with(|c: char| c.is_ascii_lowercase()))
        }
    };
    if ok { Ok(()) } else { Err(format!("<{name}> is not allowed in <{}>", parent.unwrap_or("document"))) }
}

/// Whether `<name key="value">` is an attribute Twilio knows, with a value it takes, for the
/// elements pagerpipe writes (`Say`, `Pause`, `Dial`, `Conference`; TwiML reference).
fn attribute(name: &str, key: &str, value: &str) -> Result<(), String> {
    let known: &[&str] = match name {
        "Response" => &[],
        "Say" => &["voice", "language", "loop"],
        "Pause" => &["length"],
        "Dial" => &[
            "action",
            "method",
            "timeout",
            "hangupOnStar",
            "timeLimit",
            "callerId",
            "record",
            "trim",
            "recordingStatusCallback",
            "recordingStatusCallbackMethod",
            "recordingStatusCallbackEvent",
            "answerOnBridge",
            "ringTone",
            "recordingTrack",
            "sequential",
            "referUrl",
            "referMethod",
            "events",
        ],
        "Conference" => &[
            "muted",
            "beep",
            "startConferenceOnEnter",
            "endConferenceOnExit",
            "waitUrl",
            "waitMethod",
            "maxParticipants",
            "record",
            "region",
            "coach",
            "trim",
            "statusCallbackEvent",
            "statusCallback",
            "statusCallbackMethod",
            "recordingStatusCallback",
            "recordingStatusCallbackMethod",
            "recordingStatusCallbackEvent",
            "eventCallbackUrl",
            "jitterBufferSize",
            "participantLabel",
        ],
        _ => return Ok(()),
    };
    if !known.contains(&key) {
        return Err(format!("<{name}> has no attribute {key:?}"));
    }
    let whole = |min: u64| value.parse::<u64>().is_ok_and(|n| n >= min);
    let valid = match (name, key) {
        // `loop="0"` is Twilio's "for ever": a page spoken until the person hangs up.
        ("Say", "loop") => whole(1),
        ("Say", "language" | "voice") => !value.trim().is_empty(),
        ("Pause", "length") => whole(1),
        _ => true,
    };
    if valid { Ok(()) } else { Err(format!("<{name} {key}={value:?}> is not a value Twilio takes")) }
}

/// Whether `s` is an E.164 number.
pub fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| (2..=15).contains(&d.len()) && !d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Twilio's error body.
pub fn error(code: u64, status: u16, message: &str) -> Value {
    json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status})
}

/// Validators built from the spec: the create-Call and create-Message request schemas, the
/// update-Call request schema, the call SID path parameter, and the call resource (for the
/// fake's own answers).
pub struct Validators {
    calls: (jsonschema::Validator, Value),
    messages: (jsonschema::Validator, Value),
    update: (jsonschema::Validator, Value),
    call_sid: jsonschema::Validator,
    /// The ListCall query parameters: name, validator of its schema, the schema.
    list: Vec<(String, jsonschema::Validator, Value)>,
    /// The `api.v2010.account.call` schema, `nullable` turned into JSON Schema's `null` type.
    pub call: jsonschema::Validator,
    /// ListCall's answer (`ListCallResponse`), likewise.
    pub list_response: jsonschema::Validator,
}

/// OpenAPI 3.0's `nullable: true` beside a `type` as JSON Schema's `"type": [T, "null"]`, so
/// that [`openapi_to_json_schema`] (which drops `nullable`) keeps what it means.
fn nullable_as_null_type(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut out: Map<String, Value> = o.iter().map(|(k, v)| (k.clone(), nullable_as_null_type(v))).collect();
            if o.get("nullable") == Some(&Value::Bool(true))
                && let Some(Value::String(t)) = o.get("type")
            {
                out.insert("type".into(), json!([t, "null"]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(nullable_as_null_type).collect()),
        other => other.clone(),
    }
}

impl Validators {
    /// Load every schema from the spec.
    pub fn load() -> Validators {
        let doc: Value = serde_json::from_slice(&std::fs::read(spec_path("twilio-api-v2010-calls-messages.json")).unwrap()).unwrap();
        let doc = nullable_as_null_type(&doc);
        let compile = |schema: &Value| {
            let schema = openapi_to_json_schema(schema, &doc);
            (jsonschema::validator_for(&schema).expect("valid JSON Schema"), schema)
        };
        let form = |path: &str| {
            let pointer = format!(
                "/paths/~12010-04-01~1Accounts~1{{AccountSid}}~1{path}/post/requestBody/content/application~1x-www-form-urlencoded/schema"
            );
            compile(doc.pointer(&pointer).unwrap_or_else(|| panic!("{path} request schema in the spec")))
        };
        let instance = "/paths/~12010-04-01~1Accounts~1{AccountSid}~1Calls~1{Sid}.json";
        let sid_param = doc
            .pointer(&format!("{instance}/get/parameters"))
            .and_then(Value::as_array)
            .and_then(|ps| ps.iter().find(|p| p["name"] == "Sid"))
            .map(|p| p["schema"].clone())
            .expect("the Sid path parameter of fetch-Call in the spec");
        let list_op = "/paths/~12010-04-01~1Accounts~1{AccountSid}~1Calls.json/get";
        let list = doc
            .pointer(&format!("{list_op}/parameters"))
            .and_then(Value::as_array)
            .expect("the ListCall parameters in the spec")
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| {
                let (validator, schema) = compile(&p["schema"]);
                (p["name"].as_str().unwrap_or_default().to_string(), validator, schema)
            })
            .collect();
        let list_response = compile(
            doc.pointer(&format!("{list_op}/responses/200/content/application~1json/schema"))
                .expect("the ListCall answer schema in the spec"),
        )
        .0;
        Validators {
            list,
            list_response,
            calls: form("Calls.json"),
            messages: form("Messages.json"),
            update: form("Calls~1{Sid}.json"),
            call_sid: compile(&sid_param).0,
            call: compile(doc.pointer("/components/schemas/api.v2010.account.call").expect("call schema")).0,
        }
    }
}

/// Why a request is refused: status and Twilio error body.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// Twilio error code.
    pub code: u64,
    /// What was wrong.
    pub message: String,
}

fn refuse(status: u16, code: u64, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

/// A valid request, by what it asks for.
#[derive(Debug)]
pub enum Op {
    /// Create a call or send a message: the resource (`Calls.json`, `Messages.json`), the
    /// decoded parameters and, for a call, the parsed TwiML.
    Create(String, Vec<(String, String)>, Option<Twiml>),
    /// Fetch the call with this SID.
    Fetch(String),
    /// Update the call with this SID with these parameters.
    Update(String, Vec<(String, String)>),
    /// List calls (ListCall) with these query parameters, decoded.
    List(Vec<(String, String)>),
}

/// The query parameters of a ListCall, checked against the operation's parameters in the spec
/// (`list`: name → JSON Schema): an unknown name, a value its schema refuses (coerced to the
/// schema's type first), a `To`/`From` that is not E.164, or a `StartTime`/`EndTime` filter
/// that is not a `YYYY-MM-DD` date (the form Twilio's docs give) is refused with 400.
pub fn list_query(query: &str, list: &[(String, jsonschema::Validator, Value)]) -> Result<Vec<(String, String)>, Refusal> {
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    for (k, val) in &params {
        let Some((_, validator, schema)) = list.iter().find(|(name, _, _)| name == k) else {
            return Err(refuse(400, 20001, format!("unknown ListCall parameter {k}")));
        };
        let coerced = match schema.get("type").and_then(Value::as_str) {
            Some("integer") => val.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(val.as_str())),
            _ => Value::from(val.as_str()),
        };
        if let Some(e) = validator.iter_errors(&coerced).next() {
            return Err(refuse(400, 20001, format!("ListCall {k}: {e}")));
        }
        if matches!(k.as_str(), "To" | "From") && !is_e164(val) {
            return Err(refuse(400, 20001, format!("ListCall {k} {val:?} is not an E.164 number")));
        }
        if k.starts_with("StartTime") || k.starts_with("EndTime") {
            let b = val.as_bytes();
            let date =
                b.len() == 10 && b[4] == b'-' && b[7] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
            if !date {
                return Err(refuse(400, 20001, format!("ListCall {k} {val:?} is not a date (YYYY-MM-DD)")));
            }
        }
    }
    Ok(params)
}

/// Check one request; `Ok` says what it asks for.
pub fn route(r: &Received, v: &Validators) -> Result<Op, Refusal> {
    use base64::Engine as _;
    let accepted = [(ACCOUNT_SID, AUTH_TOKEN), (API_KEY_SID, API_KEY_SECRET)];
    let auth = r
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let authorized = auth.as_deref().and_then(|a| a.split_once(':')).is_some_and(|(u, p)| accepted.contains(&(u, p)));
    if !authorized {
        return Err(refuse(401, 20003, "Authenticate"));
    }
    let prefix = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/");
    let not_found = || refuse(404, 20404, format!("The requested resource {} {} was not found", r.method, r.url));
    let rest = r.url.strip_prefix(&prefix).ok_or_else(not_found)?;
    if let Some(query) = rest.strip_prefix("Calls.json?").or((rest == "Calls.json" && r.method == "GET").then_some(""))
        && r.method == "GET"
    {
        if !r.body.is_empty() {
            return Err(refuse(400, 20001, "a list has no body"));
        }
        return list_query(query, &v.list).map(Op::List);
    }
    let instance = rest.strip_prefix("Calls/").and_then(|s| s.strip_suffix(".json")).map(str::to_string);
    match (r.method.as_str(), rest, instance) {
        ("POST", "Calls.json" | "Messages.json", _) => {
            let (resource, params, twiml) = check(r, v)?;
            Ok(Op::Create(resource, params, twiml))
        }
        ("GET" | "POST", _, Some(sid)) => {
            if !v.call_sid.is_valid(&Value::from(sid.as_str())) {
                return Err(refuse(404, 20404, format!("{sid:?} is not a call SID (^CA[0-9a-fA-F]{{32}}$)")));
            }
            if r.method == "GET" {
                if !r.body.is_empty() {
                    return Err(refuse(400, 20001, "a fetch has no body"));
                }
                return Ok(Op::Fetch(sid));
            }
            let params = form(r, &v.update)?;
            if let Some((_, status)) = params.iter().find(|(k, _)| k == "Status")
                && !matches!(status.as_str(), "canceled" | "completed")
            {
                return Err(refuse(400, 20001, format!("Status {status:?} is not canceled or completed")));
            }
            Ok(Op::Update(sid, params))
        }
        _ => Err(not_found()),
    }
}

/// The form parameters of `r`, checked against `schema` (strings coerced to its types first,
/// as Twilio's API layer does; unknown parameters refused).
fn form(r: &Received, (validator, schema): &(jsonschema::Validator, Value)) -> Result<Vec<(String, String)>, Refusal> {
    if r.header("content-type").map(|c| c.split(';').next().unwrap_or("").trim()) != Some("application/x-www-form-urlencoded") {
        return Err(refuse(400, 20001, format!("content-type is {:?}", r.header("content-type"))));
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(&r.body).into_owned().collect();
    let mut obj = Map::new();
    for (k, val) in &params {
        let kind = schema.pointer(&format!("/properties/{k}/type")).and_then(Value::as_str);
        let coerced = match kind {
            Some("integer") => val.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(val.as_str())),
            Some("number") => val
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                .unwrap_or_else(|| Value::from(val.as_str())),
            Some("boolean") => val.parse::<bool>().map(Value::from).unwrap_or_else(|_| Value::from(val.as_str())),
            Some("array") => Value::Array(vec![Value::from(val.as_str())]),
            _ => Value::from(val.as_str()),
        };
        if schema.pointer(&format!("/properties/{k}")).is_none() {
            return Err(refuse(400, 20001, format!("unknown parameter {k}")));
        }
        obj.insert(k.clone(), coerced);
    }
    let obj = Value::Object(obj);
    if let Some(e) = validator.iter_errors(&obj).next() {
        return Err(refuse(400, 20001, format!("schema: {e} at {}", e.instance_path())));
    }
    Ok(params)
}

/// Check one create request; `Ok` holds the resource name, the decoded parameters and the parsed TwiML.
pub fn check(r: &Received, v: &Validators) -> Result<(String, Vec<(String, String)>, Option<Twiml>), Refusal> {
    let prefix = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/");
    let resource = match r.url.strip_prefix(&prefix) {
        Some(res @ ("Calls.json" | "Messages.json")) if r.method == "POST" => res.to_string(),
        _ => return Err(refuse(404, 20404, format!("The requested resource {} {} was not found", r.method, r.url))),
    };
    let params = form(r, if resource == "Calls.json" { &v.calls } else { &v.messages })?;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("To") {
        Some(to) if is_e164(to) => {}
        to => return Err(refuse(400, 21211, format!("The 'To' number {} is not a valid phone number.", to.unwrap_or("")))),
    }
    // A message may come from a Messaging Service instead of a number (one of From /
    // MessagingServiceSid, specs/README.md); a call always needs From.
    let service = resource == "Messages.json" && get("From").is_none() && get("MessagingServiceSid").is_some();
    match get("From") {
        Some(from) if is_e164(from) => {}
        None if service => {
            let sid = get("MessagingServiceSid").unwrap_or("");
            let valid = sid.len() == 34 && sid.starts_with("MG") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
            if !valid {
                return Err(refuse(400, 20001, format!("MessagingServiceSid {sid:?} is not MG followed by 32 hex digits")));
            }
        }
        from => return Err(refuse(400, 21212, format!("The 'From' number {} is not a valid phone number.", from.unwrap_or("")))),
    }
    let mut twiml = None;
    if resource == "Calls.json" {
        let given = ["Url", "Twiml", "ApplicationSid"].iter().filter(|k| get(k).is_some()).count();
        if given != 1 {
            return Err(refuse(400, 21205, format!("exactly one of Url, Twiml, ApplicationSid is required, {given} given")));
        }
        if let Some(doc) = get("Twiml") {
            let n = common::template::utf16_len(doc);
            if n > 4000 {
                return Err(refuse(400, 21205, format!("Twiml has {n} characters, over 4000")));
            }
            twiml = Some(parse_twiml(doc).map_err(|e| refuse(400, 12100, format!("Document parse failure: {e}")))?);
        }
        if get("Timeout").and_then(|t| t.parse::<i64>().ok()).is_some_and(|t| !(1..=600).contains(&t)) {
            return Err(refuse(400, 21216, "Timeout must be between 1 and 600"));
        }
        // Answering Machine Detection takes exactly these values (Twilio's AMD docs).
        if let Some(md) = get("MachineDetection")
            && !matches!(md, "Enable" | "DetectMessageEnd")
        {
            return Err(refuse(400, 20001, format!("MachineDetection {md:?} is not Enable or DetectMessageEnd")));
        }
    } else {
        // An empty value is no body (Twilio: 21602 "Message body is required").
        let bodies = ["Body", "MediaUrl", "ContentSid"].iter().filter(|k| get(k).is_some_and(|v| !v.is_empty())).count();
        if bodies == 0 {
            return Err(refuse(400, 21602, "Message body is required."));
        }
        if let Some(n) = get("Body").map(common::template::utf16_len)
            && n > 1600
        {
            return Err(refuse(400, 21617, format!("The concatenated message body exceeds the 1600 character limit ({n}).")));
        }
    }
    Ok((resource, params, twiml))
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Script>,
    outcomes: VecDeque<Outcome>,
    accepted: Vec<Accepted>,
    calls: Vec<Call>,
    updates: Vec<(String, Vec<(String, String)>)>,
    /// The query parameters of each ListCall.
    lists: Vec<Vec<(String, String)>>,
    /// Milliseconds to wait before sending the answer being made ([`Script::Late`]).
    answer_after: Option<u64>,
    /// How calls to a number end once [`Inner::outcomes`] ran out ([`FakeTwilio::outcome_for`]).
    by_number: Vec<(String, Outcome)>,
    /// Calls created while others were still going on: the new call's SID and theirs.
    overlaps: Vec<(String, Vec<String>)>,
    /// Calls whose fetches are answered 404 ([`FakeTwilio::refuse_fetches`]).
    unreadable: Vec<String>,
    /// The status every ListCall is refused with, as for credentials that may place calls
    /// but not list them ([`FakeTwilio::refuse_lists`]).
    lists_refused: Option<u16>,
    violations: Vec<String>,
}

/// The fake; stops when dropped.
pub struct FakeTwilio {
    /// Base URL to pass as `--api-url`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    _server: Server,
}

impl FakeTwilio {
    /// Start the fake. `script` answers valid create requests in order; after it runs out, 201.
    pub fn start(script: &[Script]) -> FakeTwilio {
        FakeTwilio::start_on(0, script)
    }

    /// [`FakeTwilio::start`] on a given loopback port (0: chosen by the OS), e.g. to bring
    /// Twilio "back" where a handler found it down.
    pub fn start_on(port: u16, script: &[Script]) -> FakeTwilio {
        let inner = Arc::new(Mutex::new(Inner { script: script.iter().copied().collect(), ..Inner::default() }));
        let validators = Validators::load();
        let shared = Arc::clone(&inner);
        let respond = move |r: &Received| {
            let mut inner = shared.lock().unwrap();
            let reply = match route(r, &validators) {
                Ok(Op::Create(resource, params, twiml)) => inner.create(resource, params, twiml),
                Ok(Op::List(params)) if inner.lists_refused.is_some() => {
                    inner.lists.push(params);
                    let status = inner.lists_refused.unwrap_or(403);
                    let (code, message) = if status == 401 { (20003, "Authenticate") } else { (20403, "Forbidden") };
                    Reply::Json(status, error(code, status, message))
                }
                Ok(Op::List(params)) => match inner.list(&params) {
                    Ok(answer) => {
                        inner.lists.push(params);
                        Reply::Json(200, answer)
                    }
                    Err(why) => {
                        inner.violations.push(format!("{} {}: {why}", r.method, r.url));
                        Reply::Json(400, error(20001, 400, &why))
                    }
                },
                Ok(Op::Fetch(sid)) if inner.unreadable.contains(&sid) => Reply::Json(
                    404,
                    error(20404, 404, &format!("The requested resource /2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json was not found")),
                ),
                Ok(Op::Fetch(sid)) => match inner.calls.iter_mut().find(|c| c.sid == sid) {
                    Some(call) => {
                        call.fetches += 1;
                        Reply::Json(200, call.resource())
                    }
                    None => inner.unknown_call(r, &sid),
                },
                Ok(Op::Update(sid, params)) => match inner.calls.iter().position(|c| c.sid == sid) {
                    Some(i) => {
                        let status = params.iter().find(|(k, _)| k == "Status").map(|(_, v)| v.clone());
                        let call = &mut inner.calls[i];
                        // Twilio cancels only a call that has not been answered yet.
                        if status.as_deref() == Some("canceled") && matches!(call.status(), "queued" | "ringing") {
                            call.canceled = true;
                        }
                        let answer = call.resource();
                        inner.updates.push((sid, params));
                        Reply::Json(200, answer)
                    }
                    None => inner.unknown_call(r, &sid),
                },
                Err(f) => {
                    inner.violations.push(format!("{} {}: {} {}", r.method, r.url, f.code, f.message));
                    Reply::Json(f.status, error(f.code, f.status, &f.message))
                }
            };
            // A late answer waits without holding the fake's lock.
            let after = inner.answer_after.take();
            drop(inner);
            if let Some(ms) = after {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            reply
        };
        let server = if port == 0 { Server::start(respond) } else { Server::start_on(port, respond) };
        FakeTwilio { url: server.url.clone(), inner, _server: server }
    }

    /// Script how the next calls end, in order of creation (afterwards: [`Outcome::Answered`]).
    pub fn outcomes(&self, outcomes: &[Outcome]) -> &Self {
        self.inner.lock().expect("the fake's lock").outcomes.extend(outcomes.iter().copied());
        self
    }

    /// How calls to `number` end, for calls created once the [`FakeTwilio::outcomes`] script
    /// ran out (default: [`Outcome::Answered`]).
    pub fn outcome_for(&self, number: &str, outcome: Outcome) -> &Self {
        self.inner.lock().expect("the fake's lock").by_number.push((number.to_string(), outcome));
        self
    }

    /// Calls created while other calls were still going on (never reported ended nor
    /// cancelled): the new call's SID and the others'. A phone rings twice at once, or two
    /// people at once, only here.
    pub fn overlaps(&self) -> Vec<(String, Vec<String>)> {
        self.inner.lock().expect("the fake's lock").overlaps.clone()
    }

    /// From now on answer fetches of call `sid` with Twilio's 404 (20404), as if its status
    /// could no longer be read (the call itself goes on as scripted).
    pub fn refuse_fetches(&self, sid: &str) {
        self.inner.lock().expect("the fake's lock").unreadable.push(sid.to_string());
    }

    /// From now on refuse every ListCall with `status` (401: Twilio's 20003 `Authenticate`;
    /// another, such as 403: 20403 `Forbidden`), as Twilio does for credentials that may
    /// place calls but not list them (a restricted API key); `None`: answer them again. A
    /// refused list is still counted in [`FakeTwilio::lists`].
    pub fn refuse_lists(&self, status: Option<u16>) {
        self.inner.lock().expect("the fake's lock").lists_refused = status;
    }

    /// Decide now how the call `sid` ends (a call scripted [`Outcome::Ringing`] answered or rung
    /// out while the test watches): fetches report it from the next one on (a call not fetched
    /// twice yet still goes through `queued` and `ringing` first). Panics for an unknown SID.
    pub fn end_call(&self, sid: &str, outcome: Outcome) {
        let mut inner = self.inner.lock().expect("the fake's lock");
        let call = inner.calls.iter_mut().find(|c| c.sid == sid).unwrap_or_else(|| panic!("no call {sid}"));
        call.outcome = outcome;
    }

    /// How many scripted answers ([`Script`]) are still to be given: a test sees that a
    /// create was answered (e.g. refused with a 429) without a call being placed.
    pub fn script_left(&self) -> usize {
        self.inner.lock().expect("the fake's lock").script.len()
    }

    /// Valid create requests accepted, in arrival order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.inner.lock().unwrap().accepted.clone()
    }

    /// Accepted create requests to `resource` (`Calls.json`, `Messages.json`).
    pub fn to(&self, resource: &str) -> Vec<Accepted> {
        self.accepted().into_iter().filter(|a| a.resource == resource).collect()
    }

    /// The calls placed, in order, with their fetch counts and outcomes.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().expect("the fake's lock").calls.clone()
    }

    /// Add `n` calls from `from` to `to` that were placed earlier, at `created` (Unix seconds)
    /// and are over (completed), as another client of the account made them: ListCall lists
    /// them, no create was received for them.
    pub fn placed_earlier(&self, to: &str, from: &str, n: usize, created: u64) {
        let mut inner = self.inner.lock().expect("the fake's lock");
        let first = inner.calls.len();
        for i in 0..n {
            inner.calls.push(Call {
                sid: format!("CA{:016x}{:016x}", 0x0ea4_11e4_u64, first + i),
                to: to.into(),
                from: from.into(),
                outcome: Outcome::Answered,
                amd: false,
                fetches: 2,
                canceled: false,
                created,
            });
        }
    }

    /// Twilio dials every call still waiting in its queue (never fetched, not cancelled): from
    /// now on each reports `ringing` and has a `start_time`, so ListCall's `StartTime` filters
    /// list it.
    pub fn dial_queued(&self) {
        for c in self.inner.lock().expect("the fake's lock").calls.iter_mut().filter(|c| c.fetches == 0 && !c.canceled) {
            c.fetches = 1;
        }
    }

    /// The query parameters of each ListCall (`GET …/Calls.json?…`), in arrival order.
    pub fn lists(&self) -> Vec<Vec<(String, String)>> {
        self.inner.lock().expect("the fake's lock").lists.clone()
    }

    /// The update requests (`POST …/Calls/{Sid}.json`): SID and parameters.
    pub fn updates(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.inner.lock().expect("the fake's lock").updates.clone()
    }

    /// Wait (up to 60 s, checking every 10 ms) until `cond` holds for the calls placed so far;
    /// panics naming `what` otherwise. For tests that act while a handler is still calling.
    pub fn wait_for(&self, what: &str, cond: impl Fn(&[Call]) -> bool) {
        for _ in 0..6000 {
            if cond(&self.calls()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the fake Twilio never saw {what}: {:#?}", self.calls());
    }

    /// Contract violations seen.
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().unwrap().violations.clone()
    }

    /// Panic if any request broke the contract.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "requests broke the Twilio contract: {v:#?}");
    }
}

impl Inner {
    /// Answer a valid create request per the script.
    fn create(&mut self, resource: String, params: Vec<(String, String)>, twiml: Option<Twiml>) -> Reply {
        let step = self.script.pop_front().unwrap_or(Script::Accept);
        match step {
            Script::Accept | Script::AcceptThenHang | Script::AcceptThenFail(_) => {}
            Script::Unavailable => {
                return Reply::Raw(
                    503,
                    "application/json",
                    vec![("Retry-After", "1".to_string())],
                    error(20503, 503, "Service Unavailable").to_string(),
                );
            }
            Script::Late(ms) => self.answer_after = Some(ms),
            Script::Hang => return Reply::Hang,
            Script::Unauthorized => return Reply::Json(401, error(20003, 401, "Authenticate")),
            Script::InvalidTo => {
                let to = params.iter().find(|(k, _)| k == "To").map(|(_, v)| v.as_str()).unwrap_or("");
                return Reply::Json(400, error(21211, 400, &format!("The 'To' number {to} is not a valid phone number.")));
            }
            Script::RateLimited => return Reply::Json(429, error(20429, 429, "Too Many Requests")),
            Script::ServerError => return Reply::Json(500, error(20500, 500, "Internal Server Error")),
        }
        // Twilio takes the create and fails when the call is answered: error 13520, "Say:
        // Invalid text" (a <Say> with nothing to speak).
        if let Some(t) = &twiml
            && t.say.iter().any(|said| said.trim().is_empty())
        {
            self.violations.push(format!("POST {resource}: a <Say> with nothing to speak (Twilio error 13520, Say: Invalid text)"));
        }
        let serial = self.accepted.len() + 1;
        let (prefix, kind) = if resource == "Calls.json" { ("CA", "call") } else { ("SM", "message") };
        let sid = format!("{prefix}{serial:032x}");
        let p = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let answer = if kind == "call" {
            let call = Call {
                sid: sid.clone(),
                to: p("To"),
                from: p("From"),
                outcome: self
                    .outcomes
                    .pop_front()
                    .or_else(|| self.by_number.iter().find(|(n, _)| *n == p("To")).map(|(_, o)| *o))
                    .unwrap_or(Outcome::Answered),
                amd: !p("MachineDetection").is_empty(),
                fetches: 0,
                canceled: false,
                created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            };
            let answer = call.resource();
            // Still going on: not yet reported ended (busy, no-answer, completed …) or cancelled.
            let going_on: Vec<String> = self.calls.iter().filter(|c| !c.has_ended()).map(|c| c.sid.clone()).collect();
            if !going_on.is_empty() {
                self.overlaps.push((call.sid.clone(), going_on));
            }
            self.calls.push(call);
            answer
        } else {
            json!({"sid": sid, "account_sid": ACCOUNT_SID, "to": p("To"), "from": p("From"), "body": p("Body"),
                   "status": "queued", "direction": "outbound-api", "num_segments": "1", "api_version": "2010-04-01",
                   "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json")})
        };
        self.accepted.push(Accepted { resource, params, twiml, sid });
        if step == Script::AcceptThenHang {
            return Reply::Hang;
        }
        if let Script::AcceptThenFail(status) = step {
            return Reply::Json(status, error(20500, status, "Internal Server Error"));
        }
        Reply::Json(201, answer)
    }

    /// ListCall's answer: the calls matching `To`, `From`, `Status` and the `StartTime`
    /// filters (a day, `YYYY-MM-DD`, UTC, compared with the day the call started: a call still
    /// queued matches none, [`Call::started`]), one page of `PageSize` (default 50, as the spec
    /// says) from the `PageToken` on, with `next_page_uri` naming the next page while there is
    /// one (`null` on the last). The spec gives no order: the fake lists the calls in the order
    /// they were created, oldest first, so that a client reading only the first page misses
    /// the newest calls. `Err`: a `PageToken` the fake never gave.
    fn list(&self, params: &[(String, String)]) -> Result<Value, String> {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let day = |secs: u64| common::clock::rfc3339(secs).get(..10).unwrap_or_default().to_string();
        let matching: Vec<&Call> = self
            .calls
            .iter()
            .filter(|c| get("To").is_none_or(|to| to == c.to))
            .filter(|c| get("From").is_none_or(|from| from == c.from))
            .filter(|c| get("Status").is_none_or(|s| s == c.status()))
            // "Only include calls that started on/before/on or after this date": a call still
            // in Twilio's queue has not started (no `start_time`), so no StartTime filter
            // lists it.
            .filter(|c| get("StartTime").is_none_or(|d| c.started().is_some_and(|t| d == day(t))))
            .filter(|c| get("StartTime>").is_none_or(|d| c.started().is_some_and(|t| day(t).as_str() >= d)))
            .filter(|c| get("StartTime<").is_none_or(|d| c.started().is_some_and(|t| day(t).as_str() < d)))
            .collect();
        let page_size = get("PageSize").and_then(|n| n.parse::<usize>().ok()).unwrap_or(50);
        let start = match get("PageToken") {
            None => 0,
            Some(t) => {
                t.strip_prefix("PA").and_then(|n| n.parse::<usize>().ok()).ok_or_else(|| format!("PageToken {t:?} was never given"))?
            }
        };
        let end = (start + page_size).min(matching.len());
        let calls: Vec<Value> = matching[start.min(end)..end].iter().map(|c| c.resource()).collect();
        let base = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json");
        let filters: Vec<(String, String)> =
            params.iter().filter(|(k, _)| !matches!(k.as_str(), "Page" | "PageToken" | "PageSize")).cloned().collect();
        let page = start / page_size.max(1);
        let uri_of = |page: usize, token: Option<usize>| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.extend_pairs(&filters).append_pair("PageSize", &page_size.to_string()).append_pair("Page", &page.to_string());
            if let Some(t) = token {
                q.append_pair("PageToken", &format!("PA{t}"));
            }
            format!("{base}?{}", q.finish())
        };
        let next = (end < matching.len()).then(|| uri_of(page + 1, Some(end)));
        let previous = (start > 0).then(|| uri_of(page.saturating_sub(1), Some(start.saturating_sub(page_size))));
        Ok(json!({"calls": calls, "start": start, "end": (start + calls.len()).saturating_sub(1), "page": page,
               "page_size": page_size, "uri": uri_of(page, (start > 0).then_some(start)), "first_page_uri": uri_of(0, None),
               "next_page_uri": next, "previous_page_uri": previous}))
    }

    /// A fetch or update of a call that was never placed: Twilio's 404, and a violation.
    fn unknown_call(&mut self, r: &Received, sid: &str) -> Reply {
        let message = format!("The requested resource /2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json was not found");
        self.violations.push(format!("{} {}: 20404 {message}", r.method, r.url));
        Reply::Json(404, error(20404, 404, &message))
    }
}

#[cfg(test)]
mod self_test {
    use super::*;
    use base64::Engine as _;

    fn post(resource: &str, user: &str, pass: &str, params: &[(&str, &str)]) -> Received {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        Received {
            method: "POST".into(),
            url: format!("/2010-04-01/Accounts/{ACCOUNT_SID}/{resource}"),
            headers: vec![
                ("content-type".into(), "application/x-www-form-urlencoded".into()),
                ("authorization".into(), format!("Basic {auth}")),
            ],
            body: body.into_bytes(),
        }
    }

    const TWIML: &str = "<Response><Say language=\"en-US\">a &lt;b&gt; &#x41;</Say><Dial><Conference>k</Conference></Dial></Response>";

    #[test]
    fn the_fake_accepts_valid_calls_and_messages() {
        let v = Validators::load();
        let call = [("To", "+14155550100"), ("From", "+14155550199"), ("Twiml", TWIML), ("Timeout", "30")];
        let (res, _, twiml) = check(&post("Calls.json", ACCOUNT_SID, AUTH_TOKEN, &call), &v).expect("valid call");
        assert_eq!(res, "Calls.json");
        let t = twiml.expect("twiml");
        assert_eq!(t.say, vec!["a <b> A"]);
        assert_eq!(t.conference.as_deref(), Some("k"));
        assert_eq!(t.elements, vec!["Response", "Say", "Dial", "Conference"]);
        assert_eq!(t.say_attrs, vec![("language".to_string(), "en-US".to_string())]);
        let sms = [("To", "+819012345678"), ("From", "+14155550199"), ("Body", "障害")];
        assert!(check(&post("Messages.json", API_KEY_SID, API_KEY_SECRET, &sms), &v).is_ok());
        // From a Messaging Service instead of a number (one of From / MessagingServiceSid).
        let service = [("To", "+819012345678"), ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"), ("Body", "障害")];
        assert!(check(&post("Messages.json", ACCOUNT_SID, AUTH_TOKEN, &service), &v).is_ok());
    }

    #[test]
    fn the_fake_rejects_what_twilio_rejects() {
        let v = Validators::load();
        let code = |r: Received| route(&r, &v).map(|_| ()).map_err(|f| f.code);
        let ok = [("To", "+14155550100"), ("From", "+14155550199"), ("Twiml", TWIML)];
        assert_eq!(code(post("Calls.json", ACCOUNT_SID, "wrong", &ok)), Err(20003));
        let long = format!("<Response><Say>{}</Say></Response>", "x".repeat(4000));
        for (params, expected) in [
            (vec![("To", "+1 415 555"), ("From", "+14155550199"), ("Twiml", TWIML)], 21211),
            (vec![("To", "+14155550100"), ("From", "5550199"), ("Twiml", TWIML)], 21212),
            (vec![("To", "+14155550100"), ("From", "+14155550199")], 21205),
            (vec![("To", "+14155550100"), ("From", "+14155550199"), ("Twiml", TWIML), ("Url", "https://x.example/t")], 21205),
            (vec![("To", "+14155550100"), ("From", "+14155550199"), ("Twiml", long.as_str())], 21205),
            (vec![("To", "+14155550100"), ("From", "+14155550199"), ("Twiml", "<Say>x</Say>")], 12100),
            (vec![("To", "+14155550100"), ("From", "+14155550199"), ("Twiml", "<Response><Say>x</Response>")], 12100),
            (vec![("To", "+14155550100"), ("From", "+14155550199"), ("Twiml", TWIML), ("Timeout", "soon")], 20001),
            (vec![("To", "+14155550100"), ("From", "+14155550199"), ("Twiml", TWIML), ("Colour", "red")], 20001),
        ] {
            assert_eq!(code(post("Calls.json", ACCOUNT_SID, AUTH_TOKEN, &params)), Err(expected), "{params:?}");
        }
        assert_eq!(
            code(post("Messages.json", ACCOUNT_SID, AUTH_TOKEN, &[("To", "+14155550100"), ("From", "+14155550199"), ("Body", "")])),
            Err(21602)
        );
        let body = "x".repeat(1601);
        assert_eq!(
            code(post("Messages.json", ACCOUNT_SID, AUTH_TOKEN, &[("To", "+14155550100"), ("From", "+14155550199"), ("Body", &body)])),
            Err(21617)
        );
        let mut json = post("Calls.json", ACCOUNT_SID, AUTH_TOKEN, &ok);
        json.headers[0].1 = "application/json".into();
        assert_eq!(code(json), Err(20001));
    }

    #[test]
    fn the_fake_follows_calls_as_the_spec_describes_them() {
        let v = Validators::load();
        let sid = format!("CA{:032x}", 7);
        let mut get = post(&format!("Calls/{sid}.json"), ACCOUNT_SID, AUTH_TOKEN, &[]);
        get.method = "GET".into();
        get.headers.retain(|(k, _)| k != "content-type");
        get.body.clear();
        assert!(matches!(route(&get, &v), Ok(Op::Fetch(s)) if s == sid));
        let cancel = post(&format!("Calls/{sid}.json"), ACCOUNT_SID, AUTH_TOKEN, &[("Status", "canceled")]);
        assert!(
            matches!(route(&cancel, &v), Ok(Op::Update(s, p)) if s == sid && p == vec![("Status".to_string(), "canceled".to_string())])
        );
        let code = |r: Received| route(&r, &v).map(|_| ()).map_err(|f| f.code);
        let mut bad_sid = get.clone();
        bad_sid.url = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/CA123.json");
        assert_eq!(code(bad_sid), Err(20404));
        assert_eq!(code(post(&format!("Calls/{sid}.json"), ACCOUNT_SID, AUTH_TOKEN, &[("Status", "ringing")])), Err(20001));
        assert_eq!(code(post(&format!("Calls/{sid}.json"), ACCOUNT_SID, AUTH_TOKEN, &[("Colour", "red")])), Err(20001));
        let mut unauthorized = get.clone();
        unauthorized.headers.clear();
        assert_eq!(code(unauthorized), Err(20003));
        // Every status a scripted call goes through is a call resource the spec allows.
        for outcome in [
            Outcome::Answered,
            Outcome::InProgress,
            Outcome::NoAnswer,
            Outcome::Busy,
            Outcome::Failed,
            Outcome::Voicemail,
            Outcome::Ringing,
        ] {
            for amd in [false, true] {
                let mut call = Call {
                    sid: sid.clone(),
                    to: "+14155550100".into(),
                    from: "+14155550199".into(),
                    outcome,
                    amd,
                    fetches: 0,
                    canceled: false,
                    created: 0,
                };
                for _ in 0..3 {
                    let answer = call.resource();
                    assert!(
                        v.call.is_valid(&answer),
                        "{outcome:?} {answer}: {:?}",
                        v.call.iter_errors(&answer).map(|e| e.to_string()).collect::<Vec<_>>()
                    );
                    call.fetches += 1;
                }
            }
        }
        let mut c = Call {
            sid,
            to: "+14155550100".into(),
            from: "+14155550199".into(),
            outcome: Outcome::Voicemail,
            amd: true,
            fetches: 2,
            canceled: false,
            created: 0,
        };
        assert_eq!((c.resource()["status"].clone(), c.resource()["answered_by"].clone()), (json!("completed"), json!("machine_end_beep")));
        c.amd = false;
        assert_eq!(c.resource()["answered_by"], Value::Null);
    }

    #[test]
    fn list_calls_is_checked_and_answered_as_the_spec_describes() {
        let v = Validators::load();
        let list = |query: &str| {
            let mut r = post(&format!("Calls.json?{query}"), ACCOUNT_SID, AUTH_TOKEN, &[]);
            r.method = "GET".into();
            r.headers.retain(|(k, _)| k != "content-type");
            r.body.clear();
            route(&r, &v)
        };
        let good = "To=%2B14155550100&From=%2B14155550199&StartTime%3E=2026-12-01&PageSize=50";
        let Ok(Op::List(params)) = list(good) else { panic!("a valid ListCall: {:?}", list(good).err()) };
        assert!(params.contains(&("StartTime>".to_string(), "2026-12-01".to_string())), "{params:?}");
        for bad in ["Colour=red", "To=555", "StartTime%3E=yesterday", "PageSize=0", "PageSize=many", "ParentCallSid=CA1"] {
            assert_eq!(list(bad).map(|_| ()).map_err(|f| f.code), Err(20001), "{bad}");
        }
        // The answer, with and without calls, is a ListCallResponse.
        let mut inner = Inner::default();
        let call = |to: &str, created: u64| Call {
            sid: format!("CA{created:032x}"),
            to: to.into(),
            from: "+14155550199".into(),
            outcome: Outcome::Answered,
            amd: false,
            // Fetched once: dialled, ringing, with a start time.
            fetches: 1,
            canceled: false,
            created,
        };
        inner.calls = vec![call("+14155550100", 1_795_219_200), call("+14155550101", 1_795_219_200), call("+14155550100", 1_795_000_000)];
        let q = |s: &str| form_urlencoded::parse(s.as_bytes()).into_owned().collect::<Vec<_>>();
        let answer = inner.list(&q("To=%2B14155550100&From=%2B14155550199&StartTime%3E=2026-11-21")).expect("a page");
        assert!(
            v.list_response.is_valid(&answer),
            "{answer}: {:?}",
            v.list_response.iter_errors(&answer).map(|e| e.to_string()).collect::<Vec<_>>()
        );
        assert_eq!(
            answer["calls"].as_array().map(|c| c.iter().map(|c| c["sid"].clone()).collect::<Vec<_>>()),
            Some(vec![json!(format!("CA{:032x}", 1_795_219_200u64))])
        );
        let none = inner.list(&q("To=%2B14155550102")).expect("a page");
        assert!(v.list_response.is_valid(&none) && none["calls"] == json!([]), "{none}");
        // A call still in Twilio's queue has not started: no start_time, in no StartTime list,
        // in the list of queued calls.
        inner.calls.push(Call { fetches: 0, ..call("+14155550100", 1_795_219_300) });
        let queued = json!(format!("CA{:032x}", 1_795_219_300u64));
        let sids = |answer: &Value| answer["calls"].as_array().map(|c| c.iter().map(|c| c["sid"].clone()).collect::<Vec<_>>());
        let started = inner.list(&q("To=%2B14155550100&StartTime%3E=2026-11-21")).expect("a page");
        assert!(!sids(&started).unwrap_or_default().contains(&queued), "{started}");
        let waiting = inner.list(&q("To=%2B14155550100&Status=queued")).expect("a page");
        assert!(v.list_response.is_valid(&waiting), "{waiting}");
        assert_eq!(sids(&waiting), Some(vec![queued]), "{waiting}");
        assert_eq!(waiting["calls"][0]["start_time"], Value::Null, "{waiting}");
        // PageSize pages, oldest first; next_page_uri leads through them to the end.
        inner.calls = (0..5).map(|i| call("+14155550100", 1_795_219_200 + i)).collect();
        let mut sids = Vec::new();
        let mut query = "To=%2B14155550100&PageSize=2".to_string();
        loop {
            let page = inner.list(&q(&query)).expect("a page");
            assert!(v.list_response.is_valid(&page), "{page}");
            sids.extend(page["calls"].as_array().into_iter().flatten().map(|c| c["sid"].clone()));
            let Some(next) = page["next_page_uri"].as_str() else { break };
            let (path, next_query) = next.split_once('?').expect("a query");
            assert_eq!(path, format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"));
            assert!(list_query(next_query, &v.list).is_ok(), "{next}");
            query = next_query.to_string();
        }
        assert_eq!(sids, (0..5).map(|i| json!(format!("CA{:032x}", 1_795_219_200 + i))).collect::<Vec<_>>());
        assert!(inner.list(&q("PageToken=forged")).is_err());
    }

    #[test]
    fn machine_detection_and_pause_are_checked() {
        let v = Validators::load();
        let code = |params: &[(&str, &str)]| {
            check(&post("Calls.json", ACCOUNT_SID, AUTH_TOKEN, params), &v).map(|(_, _, t)| t.and_then(|t| t.pause)).map_err(|f| f.code)
        };
        let paused = "<Response><Pause length=\"2\"/><Say>x</Say></Response>";
        let base = [("To", "+14155550100"), ("From", "+14155550199")];
        assert_eq!(code(&[base[0], base[1], ("Twiml", paused), ("MachineDetection", "Enable")]), Ok(Some("2".into())));
        assert_eq!(code(&[base[0], base[1], ("Twiml", TWIML), ("MachineDetection", "DetectMessageEnd")]), Ok(None));
        assert_eq!(code(&[base[0], base[1], ("Twiml", TWIML), ("MachineDetection", "true")]), Err(20001));
        assert_eq!(code(&[base[0], base[1], ("Twiml", "<Response><Pause length=\"soon\"/></Response>")]), Err(12100));
    }

    #[test]
    fn twiml_verbs_nouns_and_attributes_are_checked() {
        let ok = "<Response><Pause length=\"1\"/><Say language=\"en-US\" voice=\"alice\" loop=\"2\">x</Say><Dial><Conference>k</Conference></Dial></Response>";
        assert!(parse_twiml(ok).is_ok(), "{:?}", parse_twiml(ok));
        for bad in [
            "<Response><Conference>k</Conference></Response>",
            "<Response><Say>x<Dial>+19005550100</Dial></Say></Response>",
            "<Response><Dial><Say>x</Say></Dial></Response>",
            "<Response><Say loop=\"0\">x</Say></Response>",
            "<Response><Say volume=\"11\">x</Say></Response>",
            "<Response><Sayy>x</Sayy></Response>",
            "<Response>spoken?</Response>",
        ] {
            assert!(parse_twiml(bad).is_err(), "{bad}");
        }
    }
}
