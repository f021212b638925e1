//! The Redis state store: one Redis shared by every host that handles events (a Sensu Go
//! cluster, several Sensu 1.x servers, Zabbix HA nodes), so that a page raised on one host is
//! known on the others.
//!
//! URL: `redis://[user:password@]host:port/db` or `rediss://…` (TLS). The password is a secret:
//! [`Store::describe`] and every error say `redis://host:port/db` only, and
//! [`RedisStore::secrets`] / [`secret::url_password`] give it to the logger to mask. For `rediss://` the
//! `ca_file` setting chooses the trusted CAs as it does for HTTPS ([`Trust`]): absent → Mozilla's
//! roots compiled in, `system` → the OS store, a path → the CA certificates in that PEM file (a
//! private CA).
//!
//! Keys, per handler (`pagerduty`, `twilio`, `reactio`):
//!
//! - `pagerpipe:<handler>:rec:<key>`: the record, JSON. A record written with
//!   [`Expiry::After`] (a closed incident) gets a Redis expiry (`PX`), so Redis itself forgets
//!   it; a later write with [`Expiry::Never`] keeps it for good, one with [`Expiry::Keep`]
//!   (`KEEPTTL`) keeps its expiry.
//! - `pagerpipe:<handler>:hold:<key>`: the incident's [`Hold`], a lease: `SET … NX PX <lease>`
//!   with a token of the holder's own (host, PID, time), renewed every lease/3 by a thread of the
//!   holder's process while the hold lives, from the first wait of the holder that reaches a
//!   third of the lease ([`crate::lease`]: a hold released sooner, a quick delivery's, never
//!   starts that thread) (a Lua script extends it only if the token is still
//!   the holder's; gone, it is taken again with the same token unless another holder has it)
//!   and deleted on drop (again only if the token is the holder's); where Redis
//!   refuses scripts (an ACL without `+eval`), a `WATCH` transaction does each instead, so that
//!   a released incident is free at once there too. A holder killed
//!   with `kill -9`, or cut off from Redis, stops renewing: the incident is free again within
//!   one lease ([`DEFAULT_LEASE`], 5 s).
//! - `pagerpipe:<handler>:corrupt:<key>:<unix secs>`: a record that was not JSON, kept for
//!   7 days for inspection when an update replaced it.
//!
//! [`Store::update_with`] is an optimistic transaction. When this invocation has read or
//! written the record before (the storm path's read, the read that comes with a hold), the
//! caller's function decides on those bytes and a Lua script writes the result only if Redis
//! still holds them (one round trip; for a record seen absent, once the invocation knows
//! whether Redis runs scripts, a plain `SET … NX`, which needs none). Otherwise, or when
//! another writer got in first: `WATCH` + `GET` (one round trip), the caller's function, then
//! `MULTI`/`SET`/`EXEC` (one round trip); when another writer, on any host, changed the record
//! in between, `EXEC` does nothing and the whole step runs again with the new record. So
//! concurrent updates never lose one another, and the function may run more than once: also
//! when it changes nothing on the bytes last seen (only a fresh read may conclude that), and
//! when Redis refuses the script (an ACL without `+eval`: the transaction alone, from then on,
//! but for records seen absent).
//!
//! **Round trips of a delivery** (`handler-pagerduty`, a trigger): the record and the hold's
//! existence (one pipeline: the storm path's read); the hold's `SET NX PX` and the record's
//! `GET` (one pipeline: what the holder decides on); the record's write (the script above);
//! the hold's release, sent without waiting for its answer (once a script ran in the
//! invocation: until then the release waits, to learn whether Redis takes scripts). Three
//! waits for Redis, where a naive client makes six.
//!
//! The durability a write asks for is not used: what survives a crash of the Redis server is
//! the server's own persistence configuration (`appendonly`, `save`), which a client cannot
//! choose per write; a handler on a lost host loses nothing, since the record is on the server.
//!
//! **Timeouts.** [`RedisStore::connect`] takes a budget: the TCP connection must be made within
//! it, and every command must be answered within it. `AUTH` and `SELECT` travel with the first
//! command, in its round trip (the TLS handshake too, for `rediss://`), so a wrong password, a
//! missing database or an untrusted certificate shows at the first call, not at connecting. The
//! first call that fails (and any later one that fails for a network reason: refused, reset,
//! timed out) marks the store unusable for the rest of the invocation: later calls fail at once,
//! repeating why, instead of each waiting again. So an unreachable or stalled Redis costs the
//! handler at most about three budgets of its deadline: connecting, and one stalled pipeline,
//! whose every answer is waited for (two: the storm path's read, or the hold with its read).
//! When the store failed before Redis answered anything in the invocation, and the connection
//! did not merely break (the password, user or database refused, the certificate refused, no
//! answer), nothing was read from Redis and nothing will be: [`Store::unusable`] tells the
//! pipeline, which goes on as without a store, so that an operator reads why once, not again at
//! every step.
//! Resolving the host name is the system resolver's business and is not bounded by the budget.
//! A connection that broke (reset or closed: Redis restarted) is made again, within one more
//! budget: where the pipeline asks for it ([`Store::reconnect`]: to record what the service
//! accepted, or to read whether a long delivery must stop), and by the renewal thread while a
//! hold lives; an attempt that failed is not repeated within a renewal period (lease/3), and a
//! store that failed otherwise (no answer within the budget, its settings refused) is not
//! connected to again.
//!
//! **Holds across a restart.** Redis without persistence loses the leases when it restarts,
//! and a proxy or firewall that cuts the connection stops the renewals: either way a long
//! delivery (a Twilio run calling one person after another) would lose its incident to the
//! next host's event. The new connection keeps every live hold: renewed
//! when the lease is still there; taken again with the same token (`SET NX PX`) when it is
//! not (the restarted Redis lost it, or it lapsed while Redis was away) and nobody else took
//! it; found lost when another holder has it, which [`Store::hold_lost`] tells the holder (a
//! Twilio run then places no further call). A notice says which, in one line. A normal
//! renewal costs what it did (one round trip); a lease found gone costs one more.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use redis::{ConnectionAddr, IntoConnectionInfo as _};
use serde_json::Value;

use super::{Expiry, Hold, Misconfigured, Store, percent_decode};
use crate::clock;
use crate::files::Durability;
use crate::http::Trust;
use crate::lease;
use crate::secret;

/// How long a hold lasts without renewal: a killed holder frees its incident within this.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// Environment variable that sets the hold's lease in milliseconds instead of
/// [`DEFAULT_LEASE`] (at least 30 ms); tests set it low so that a killed holder frees its
/// incident sooner.
pub const LEASE_ENV: &str = "PAGERPIPE_REDIS_LEASE_MS";

/// The lease [`LEASE_ENV`] asks for, when it is set to a number of milliseconds.
pub fn lease_from_env() -> Option<Duration> {
    std::env::var(LEASE_ENV).ok()?.trim().parse::<u64>().ok().map(Duration::from_millis)
}

/// The most a Redis store may cost an invocation per wait ([`budget`]).
pub const MAX_BUDGET: Duration = Duration::from_secs(1);

/// The budget for [`RedisStore::connect`] out of an invocation's `remaining` time: a tenth of
/// it, at most [`MAX_BUDGET`] (1 s of the default 10 s `--timeout`). A Redis on the same network
/// answers in well under a millisecond; one that takes longer than this is treated as
/// unreachable, so that the page still goes out in time.
pub fn budget(remaining: Duration) -> Duration {
    (remaining / 10).min(MAX_BUDGET)
}

/// How often a waiting [`RedisStore::hold`] asks again.
const HOLD_POLL: Duration = Duration::from_millis(10);

/// How many times [`Store::update_with`] runs again after another writer got in first, before
/// it gives up (each retry means another writer succeeded, so this only ends a pathological
/// storm of writers on one key).
const MAX_TRANSACTION_ATTEMPTS: u32 = 1000;

/// How long an unreadable record is kept aside.
const CORRUPT_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How many records' bytes [`Store::update_deciding`] remembers for its one-round-trip write.
const SEEN_RECORDS: usize = 8;

/// Keys per `MGET` in [`RedisStore::get_many`]: a round trip per this many records, each answer
/// a few kilobytes at most.
const MGET_KEYS: usize = 256;

/// The shortest timeout a socket accepts (a zero budget means "do not wait", not "forever").
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Extend a hold by `ARGV[2]` ms if it is still held with token `ARGV[1]`: 1, else 0.
const RENEW_LUA: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                         return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

/// Delete a hold if it is still held with token `ARGV[1]`: 1, else 0.
const RELEASE_LUA: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                           return redis.call('DEL', KEYS[1]) else return 0 end";

/// Compare-and-set a record in one round trip: if `KEYS[1]` holds exactly `ARGV[2]` (`ARGV[1]`
/// = `1`), or is absent (`ARGV[1]` = `0`), write it as `ARGV[3]` says (`del`; `px`: `ARGV[4]`
/// with an expiry of `ARGV[5]` ms; `keepttl`: `ARGV[4]` keeping its expiry; `set`: `ARGV[4]`
/// for good) and answer 1; else change nothing and answer 0.
const COMPARE_AND_SET_LUA: &str = "local cur = redis.call('GET', KEYS[1]) \
    if ARGV[1] == '1' then if cur ~= ARGV[2] then return 0 end elseif cur then return 0 end \
    if ARGV[3] == 'del' then redis.call('DEL', KEYS[1]) \
    elseif ARGV[3] == 'px' then redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5]) \
    elseif ARGV[3] == 'keepttl' then redis.call('SET', KEYS[1], ARGV[4], 'KEEPTTL') \
    else redis.call('SET', KEYS[1], ARGV[4]) end return 1";

/// A [`Store`] in Redis for one handler. See the module documentation.
pub struct RedisStore {
    shared: Arc<Shared>,
    /// `pagerpipe:<handler>:`.
    namespace: String,
    lease: Duration,
}

/// The connection, and how many answers it owes to commands sent without waiting for them
/// ([`Shared::send_only`]): read, and ignored, before the next command.
struct Conn {
    redis: redis::Connection,
    unread: usize,
}

/// What the store and its renewal thread share.
struct Shared {
    /// One connection per invocation; the renewal thread uses it between the pipeline's
    /// commands (an update holds the lock for its whole transaction).
    conn: Mutex<Conn>,
    /// `AUTH` / `SELECT` (none without a password and for database 0) still to be sent, ahead
    /// of the first command; `None` once the first command went out.
    setup: Mutex<Option<redis::Pipeline>>,
    /// Why the store is unusable for the rest of the invocation (a network failure, or the
    /// first command refused: authentication, database): later calls fail at once, until
    /// [`Store::reconnect`] replaces a connection that broke.
    down: Mutex<Option<Down>>,
    /// The last failed attempt at a new connection ([`Shared::reconnect`]), when and why: it is
    /// not made again within a renewal period, which answers with why. Held while one is made,
    /// so that the renewal thread and the holder do not both make one.
    attempt: Mutex<Option<(Instant, String)>>,
    /// Whether a new connection replaced the first one in this invocation.
    connected_again: std::sync::atomic::AtomicBool,
    /// Whether Redis answered a command of this invocation: from then on, what it answered
    /// may be in use, and a failure does not make the store [`Store::unusable`].
    answered_once: std::sync::atomic::AtomicBool,
    /// What makes a new connection ([`Store::reconnect`]).
    client: redis::Client,
    /// `AUTH` / `SELECT` (maybe none), sent again ahead of a new connection's first command.
    auth: redis::Pipeline,
    /// `redis://host:port/db`.
    describe: String,
    /// The longest wait for an answer.
    budget: Duration,
    /// The password, as written in the URL and decoded, to mask in every message.
    secrets: Vec<String>,
    /// Warnings for [`Store::take_notices`].
    notices: Mutex<Vec<String>>,
    /// The record read in the round trip that took a hold ([`Store::hold`]): `(record key,
    /// its bytes)`, the answer to the next read of that record if no other command went out in
    /// between ([`Shared::run`] empties it; once the store failed, that read is still answered
    /// from here: the hold's own read, as good as when it came).
    prefetched: Mutex<Option<(String, Option<Vec<u8>>)>>,
    /// The holds the renewal thread keeps alive.
    renewals: Mutex<Renewals>,
    /// The bytes of each record as this invocation last read or wrote them: what
    /// [`Store::update_deciding`] expects to find, so that it reads nothing more and writes in
    /// one round trip ([`COMPARE_AND_SET_LUA`]); only a guess, which the script checks.
    /// The last [`SEEN_RECORDS`] records only: an invocation works on one incident (and
    /// Twilio's caps), while `--list` and `--flush` read every record once.
    seen: Mutex<VecDeque<(String, Option<Vec<u8>>)>>,
    /// Whether Redis runs this invocation's scripts, as far as one has told: once refused (an
    /// ACL without `+eval`, a server without scripting), updates take the `WATCH` transaction
    /// only, and a hold is renewed and released by one ([`Shared::if_held`]).
    scripting: Mutex<Scripting>,
}

/// Why the store stopped asking Redis ([`Shared::down`]).
#[derive(Debug, Clone)]
struct Down {
    fault: Fault,
    /// What Redis or the connection said, masked: repeated by every later call.
    reason: String,
}

/// What kind of failure put the store [`Down`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The connection broke: reset or closed by the other end (Redis restarted, a proxy or a
    /// firewall cut it). A new one may work at once ([`Store::reconnect`]).
    Broken,
    /// Redis refused this machine's settings ([`settings_fix`]: the user, password or
    /// database of the URL, the user's ACL): every later call says so as [`Misconfigured`].
    Settings,
    /// Anything else: no answer within the budget (a new connection would wait as long
    /// again), a garbled answer, the first command refused otherwise (`LOADING`).
    Other,
}

impl Fault {
    /// The fault `e` is.
    fn of(e: &redis::RedisError) -> Fault {
        if settings_fix(e).is_some() {
            Fault::Settings
        } else if e.is_connection_dropped() && !e.is_timeout() {
            Fault::Broken
        } else {
            Fault::Other
        }
    }
}

/// A [`Misconfigured`] error saying `text`.
fn misconfigured(text: String) -> anyhow::Error {
    anyhow::Error::new(Misconfigured(text))
}

/// Whether `e` is this machine refusing Redis' TLS certificate (untrusted, expired, issued for
/// another name): a setting to fix, as for HTTPS.
fn certificate_refused(e: &redis::RedisError) -> bool {
    matches!(rustls_error(e, 8), Some(rustls::Error::InvalidCertificate(_)))
}

/// The TLS error behind `e`, looked for `depth` causes deep: the redis crate keeps it as an
/// `Arc` of an I/O error that wraps it.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static), depth: usize) -> Option<&'a rustls::Error> {
    if depth == 0 {
        return None;
    }
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let wrapped: Option<&(dyn std::error::Error + 'static)> = if let Some(io) = e.downcast_ref::<std::io::Error>() {
        io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static))
    } else if let Some(shared) = e.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>() {
        Some(shared.as_ref() as &(dyn std::error::Error + 'static))
    } else {
        None
    };
    wrapped.and_then(|w| rustls_error(w, depth - 1)).or_else(|| e.source().and_then(|s| rustls_error(s, depth - 1)))
}

/// What to fix when Redis refused this machine's settings for the store rather than one
/// command's data: the password or user (`AUTH`: `WRONGPASS`; `NOAUTH` when none was given;
/// `ERR` naming AUTH or a password, when Redis has none set or is older than 6), the database
/// (`SELECT`: `ERR DB index is out of range`), the user's ACL (`NOPERM`), a read-only replica
/// as the URL (`READONLY`); or this machine refused Redis' TLS certificate. `None` when it
/// did not. Told by Redis' own codes and words, not by the command's place in a pipeline: an
/// update runs several.
fn settings_fix(e: &redis::RedisError) -> Option<&'static str> {
    if certificate_refused(e) {
        return Some("trust the CA that signed it with ca_file, or fix the host name in the state_store URL");
    }
    let (code, details) = match e.clone().into_server_errors() {
        Some(errors) => errors.first().map(|(_, error)| (error.code().to_string(), error.details().unwrap_or_default().to_string()))?,
        None => (e.code()?.to_string(), e.detail().unwrap_or_default().to_string()),
    };
    Some(match code.as_str() {
        "WRONGPASS" => "fix the user or password in the state_store URL",
        "NOAUTH" => "Redis asks for a password: put it in the state_store URL (redis://:PASSWORD@host…)",
        "NOPERM" => "allow the command in the Redis user's ACL (README: Running on more than one host)",
        "READONLY" => "the state_store URL names a read-only replica: point it at the primary",
        "ERR" if details.contains("DB index") => "fix the database number in the state_store URL (redis://…/DB)",
        "ERR" if details.contains("AUTH") || details.contains("password") => "fix the user or password in the state_store URL",
        _ => return None,
    })
}

/// Whether Redis runs the store's Lua scripts ([`Shared::scripting`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scripting {
    /// No script was sent yet in this invocation.
    Unknown,
    /// One ran.
    Runs,
    /// One was refused (`NOPERM`, an unknown command): none is sent again.
    Refused,
}

/// What [`Shared::if_held`] does to a hold that is still its holder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldOp {
    /// Extend it to this many milliseconds from now (`PEXPIRE`).
    Renew(u64),
    /// Delete it (`DEL`).
    Release,
}

impl HoldOp {
    /// The script doing it in one round trip, only if `hkey` still holds `token`.
    fn script(self, hkey: &str, token: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        match self {
            HoldOp::Renew(ms) => cmd.arg(RENEW_LUA).arg(1).arg(hkey).arg(token).arg(ms),
            HoldOp::Release => cmd.arg(RELEASE_LUA).arg(1).arg(hkey).arg(token),
        };
        cmd
    }

    /// The plain command doing it, for the `WATCH` transaction.
    fn command(self, hkey: &str) -> redis::Cmd {
        match self {
            HoldOp::Renew(ms) => redis::cmd("PEXPIRE").arg(hkey).arg(ms).to_owned(),
            HoldOp::Release => redis::cmd("DEL").arg(hkey).to_owned(),
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("url", &self.shared.describe).field("namespace", &self.namespace).finish()
    }
}

/// The secrets of a state store `url` for the logger to mask: its password as written and,
/// when it is percent-encoded, as decoded (what Redis receives); empty without a password.
pub fn secrets_of(url: &str) -> Vec<String> {
    let Some(raw) = secret::url_password(url) else { return Vec::new() };
    let decoded = percent_decode(raw);
    if decoded != raw { vec![raw.to_string(), decoded] } else { vec![raw.to_string()] }
}

/// `url` as an error message quotes it: the user information (everything before the last `@`)
/// as `…@` and the query and fragment as `?…`, so that a URL the store refuses shows no
/// password wherever it was written: other Redis clients take it in the query
/// (`redis+unix:///run/redis.sock?pass=…`, `unix://…?password=…`), and a URL without a scheme
/// (`:password@host:6379`) has no `scheme://user:password@` for [`secrets_of`] to find. What
/// is left (scheme, host, port, path) says which URL is meant.
fn shown_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let (user, rest) = match rest.rsplit_once('@') {
        Some((_, host)) => ("…@", host),
        None => ("", rest),
    };
    let (rest, query) = match rest.find(['?', '#']) {
        Some(i) => (&rest[..i], "?…"),
        None => (rest, ""),
    };
    format!("{scheme}{user}{rest}{query}")
}

/// `text` with every secret masked ([`secret::mask_all`]); short passwords are masked too.
fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), &secret::mask(s));
        }
    }
    out
}

/// Glob-special characters of `SCAN … MATCH` escaped.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// PEM text for DER certificates (what the redis crate takes as its root certificates).
fn pem_of(certs: &[rustls::pki_types::CertificateDer<'_>]) -> Vec<u8> {
    let mut out = String::new();
    for der in certs {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out.into_bytes()
}

/// The trusted CA certificates for `rediss://`, PEM, or `None` for Mozilla's compiled-in roots.
fn root_pem(trust: &Trust) -> anyhow::Result<Option<Vec<u8>>> {
    match trust {
        Trust::Bundled => Ok(None),
        Trust::File(path) => {
            let pem = crate::http::trust::read_ca_file(path)?;
            use rustls::pki_types::pem::PemObject as _;
            let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem).filter(Result::is_ok).count();
            if certs == 0 {
                anyhow::bail!("ca_file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)", path.display());
            }
            Ok(Some(pem))
        }
        Trust::System => {
            let found = crate::http::trust::load_system();
            if found.certs.is_empty() {
                let why = found.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
                anyhow::bail!(
                    "ca_file system: no CA certificate found in the system trust store{why} \
                     (install ca-certificates, or set SSL_CERT_FILE, or name a PEM file in ca_file)"
                );
            }
            Ok(Some(pem_of(&found.certs)))
        }
    }
}

/// A state store URL, parsed: `redis://[[user]:password@]host[:port][/db]` or `rediss://…`.
///
/// Parsed here rather than by the redis crate's URL parser, which pulls the `url` crate and
/// its IDNA tables into every handler binary (+ ~250 KB, and peak RSS on every event) for URLs
/// whose hosts are plain names and addresses. The user name and password are percent-decoded
/// (`%40` for `@`); anything else (a query, a fragment, `redis+unix://`) is refused by name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RedisUrl {
    tls: bool,
    /// A name or an IP address (an IPv6 one without its brackets).
    host: String,
    /// 6379 when not given.
    port: u16,
    user: Option<String>,
    password: Option<String>,
    /// 0 when not given.
    db: i64,
}

impl RedisUrl {
    /// Errors: what is wrong, in words, without the URL (the caller names it, masked).
    fn parse(url: &str) -> Result<RedisUrl, String> {
        const FORM: &str = "expected redis://[user:password@]host[:port][/db] or rediss://…";
        let (scheme, rest) = url.split_once("://").ok_or_else(|| FORM.to_string())?;
        let tls = match scheme {
            "redis" => false,
            "rediss" => true,
            other => return Err(format!("the scheme is {other}: {FORM}")),
        };
        if rest.contains(['?', '#']) {
            return Err(format!("no query or fragment (?…, #…) is supported: {FORM}"));
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let nonempty = |s: &str| (!s.is_empty()).then(|| percent_decode(s));
        let (user, password) = match userinfo.map(|u| u.split_once(':')) {
            None => (None, None),
            Some(Some((user, password))) => (nonempty(user), nonempty(password)),
            Some(None) => (userinfo.and_then(nonempty), None),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| format!("an IPv6 address needs its closing ]: {FORM}"))?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(|| format!("after ] comes :port: {FORM}"))?)),
            }
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(format!("no host: {FORM}"));
        }
        let port = match port {
            None | Some("") => 6379,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("the port {p} is not a port number (1-65535)"))?,
        };
        let db = match path.trim_end_matches('/') {
            "" => 0,
            d => d.parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| format!("the database {d} is not a number (0, 1, …)"))?,
        };
        Ok(RedisUrl { tls, host: host.to_string(), port, user, password, db })
    }
}

impl RedisStore {
    /// A record's bytes (`GET` of `rkey`) as JSON; an unreadable one is noticed and read as none.
    fn parsed(&self, rkey: &str, raw: Option<Vec<u8>>) -> Option<Value> {
        raw.and_then(|b| match parse(&b) {
            Ok(v) => Some(v),
            Err(e) => {
                self.shared.notice(format!("state record {rkey} in {} is unreadable ({e}); ignored", self.shared.describe));
                None
            }
        })
    }
    /// Connect to the Redis at `url` for `handler` (`pagerduty`, …), within `budget`.
    ///
    /// `url`: `redis://[user:password@]host[:port][/db]` (port 6379 and db 0 by default) or
    /// `rediss://…` for TLS, whose trusted CAs `ca_file` chooses ([`Trust::from_setting`]: the
    /// same setting as for HTTPS). `budget` bounds the TCP connection and then each command
    /// (see the module documentation).
    ///
    /// Errors (none of them shows the password): a URL that does not parse or has another
    /// scheme, an unreadable or certificate-less `ca_file`, Redis not reachable within `budget`.
    /// Authentication, the database and the TLS certificate are checked by the first call
    /// (whose error says so).
    pub fn connect(url: &str, handler: &str, ca_file: Option<&Path>, budget: Duration) -> anyhow::Result<RedisStore> {
        let secrets = secrets_of(url);
        let masked_url = mask(&shown_url(url), &secrets);
        let parsed = RedisUrl::parse(url).map_err(|why| misconfigured(mask(&format!("state store URL {masked_url}: {why}"), &secrets)))?;
        let RedisUrl { tls, host, port, user, password, db } = parsed;
        let scheme = if tls { "rediss" } else { "redis" };
        // AUTH and SELECT are not sent while connecting but with the first command, in the same
        // round trip ([`Shared::run`]): a storm's identical repeat costs one round trip (`AUTH` +
        // `GET`), not two. No CLIENT SETINFO: one command less, and none an ACL user needs.
        // TCP_NODELAY: each command is one small write waiting for its answer, and a TLS
        // handshake is several; Nagle's algorithm would only delay them.
        let mut setup = redis::pipe();
        if let Some(password) = &password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &user {
                auth.arg(user);
            }
            setup.add_command(auth.arg(password).to_owned()).ignore();
        }
        if db != 0 {
            setup.cmd("SELECT").arg(db).ignore();
        }
        let auth = setup.clone();
        let addr = if tls {
            ConnectionAddr::TcpTls { host: host.clone(), port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(host.clone(), port)
        };
        let info = addr.into_connection_info().map_err(|e| misconfigured(mask(&format!("state store URL {masked_url}: {e}"), &secrets)))?;
        let tcp = info.tcp_settings().clone().set_nodelay(true);
        let info = info.set_redis_settings(redis::RedisConnectionInfo::default().set_skip_set_lib_name()).set_tcp_settings(tcp);
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let describe = format!("{scheme}://{host}:{port}/{db}");
        let client = if scheme == "rediss" {
            match root_pem(&Trust::from_setting(ca_file)).map_err(|e| misconfigured(format!("{e:#}")))? {
                None => redis::Client::open(info),
                Some(pem) => redis::Client::build_with_tls(info, redis::TlsCertificates { client_tls: None, root_cert: Some(pem) }),
            }
        } else {
            redis::Client::open(info)
        }
        .map_err(|e| misconfigured(mask(&format!("state store {describe}: {e}"), &secrets)))?;
        let budget = budget.max(MIN_TIMEOUT);
        let fail = |e: redis::RedisError| {
            anyhow::anyhow!("{}", mask(&format!("cannot connect to the state store {describe}: {}", why(&e, budget)), &secrets))
        };
        let conn = client.get_connection_with_timeout(budget).map_err(fail)?;
        conn.set_read_timeout(Some(budget)).map_err(fail)?;
        conn.set_write_timeout(Some(budget)).map_err(fail)?;
        Ok(RedisStore {
            shared: Arc::new(Shared {
                conn: Mutex::new(Conn { redis: conn, unread: 0 }),
                setup: Mutex::new(Some(setup)),
                down: Mutex::new(None),
                attempt: Mutex::new(None),
                connected_again: std::sync::atomic::AtomicBool::new(false),
                answered_once: std::sync::atomic::AtomicBool::new(false),
                client,
                auth,
                describe,
                budget,
                secrets,
                notices: Mutex::new(Vec::new()),
                prefetched: Mutex::new(None),
                renewals: Mutex::new(Renewals::default()),
                seen: Mutex::new(VecDeque::new()),
                scripting: Mutex::new(Scripting::Unknown),
            }),
            namespace: format!("pagerpipe:{handler}:"),
            lease: DEFAULT_LEASE,
        })
    }

    /// The same store with holds that last `lease` without renewal (renewed every lease/3).
    /// Shorter leases free a dead holder's incidents sooner and cost more renewals.
    pub fn with_lease(mut self, lease: Duration) -> RedisStore {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// The secrets of the URL (the password, as written and decoded) for the logger to mask.
    pub fn secrets(&self) -> Vec<String> {
        self.shared.secrets.clone()
    }

    /// The Redis key of `key`'s record: `pagerpipe:<handler>:rec:<key>`.
    pub fn record_key(&self, key: &str) -> String {
        format!("{}rec:{key}", self.namespace)
    }

    /// The Redis key of `key`'s hold: `pagerpipe:<handler>:hold:<key>`.
    pub fn hold_key(&self, key: &str) -> String {
        format!("{}hold:{key}", self.namespace)
    }

    /// [`Store::update_deciding`] in one round trip, from the bytes this invocation last read
    /// or wrote for `rkey` ([`Shared::seen`]): `f` decides on them, and [`COMPARE_AND_SET_LUA`]
    /// writes its record only if Redis still holds those bytes; a record last seen absent (a
    /// new incident's) is written by a plain `SET … NX` instead once the invocation knows
    /// whether Redis runs scripts: where it refuses them (one round trip, not the `WATCH`
    /// transaction's two), and where one ran already (no script to run on Redis' side).
    /// `Ok(true)`: written. `Ok(false)`: nothing done (nothing seen, an unreadable
    /// record, another writer got in first, or `f` changes nothing, which only a fresh read may
    /// conclude): the caller runs the transaction.
    ///
    /// Errors: Redis failed, or the record cannot be encoded.
    fn compare_and_set(
        &self,
        rkey: &str,
        expire: Expiry,
        ttl_ms: Option<u64>,
        f: &mut dyn FnMut(Option<Value>) -> (Option<Value>, Durability),
    ) -> anyhow::Result<bool> {
        let Some(expected) = self.shared.last_seen(rkey) else { return Ok(false) };
        if expected.is_some() && self.shared.scripting() == Scripting::Refused {
            return Ok(false);
        }
        let Ok(current) = expected.as_deref().map(parse).transpose() else { return Ok(false) };
        let before = current.clone();
        let (new, _) = f(current);
        if !must_write(new.as_ref(), before.as_ref(), before.is_some(), ttl_ms.is_some()) {
            return Ok(false);
        }
        let bytes = new.as_ref().map(encode).transpose()?;
        // Until a script has run, the script is sent (it tells whether Redis takes them, so that
        // the hold's release need not wait for its answer: one wait fewer than `SET NX` and a
        // release waited for).
        if let (None, Some(bytes), Scripting::Runs | Scripting::Refused) = (&expected, &bytes, self.shared.scripting()) {
            // Absent then, so nothing to delete and no expiry to keep: written only if still absent.
            let mut set = redis::cmd("SET");
            set.arg(rkey).arg(bytes.as_slice()).arg("NX");
            if let Some(ms) = ttl_ms {
                set.arg("PX").arg(ms);
            }
            let (written,): (Option<String>,) = self.shared.run("update a record", |c, setup| first(setup).add_command(set).query(c))?;
            if written.is_some() {
                self.shared.saw(rkey, Some(bytes));
            }
            return Ok(written.is_some());
        }
        let mut cas = redis::cmd("EVAL");
        cas.arg(COMPARE_AND_SET_LUA).arg(1).arg(rkey);
        match &expected {
            Some(old) => cas.arg("1").arg(old.as_slice()),
            None => cas.arg("0").arg(""),
        };
        match (&bytes, ttl_ms, expire) {
            (None, ..) => cas.arg("del"),
            (Some(b), Some(ms), _) => cas.arg("px").arg(b.as_slice()).arg(ms),
            // A side note (a stop request, a request in flight) keeps the record's expiry.
            (Some(b), None, Expiry::Keep) => cas.arg("keepttl").arg(b.as_slice()),
            (Some(b), None, _) => cas.arg("set").arg(b.as_slice()),
        };
        // A script Redis refuses (NOPERM, scripting disabled) is not a failure of the store:
        // the transaction does without it, for the rest of the invocation.
        let answer = self.shared.run("update a record", |c, setup| {
            let at = setup.as_ref().map_or(0, redis::Pipeline::len);
            match first(setup).add_command(cas).query::<(i64,)>(c) {
                Ok((n,)) => Ok(Some(n)),
                Err(e) if script_refused(&e, at) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        let Some(done) = answer else {
            self.shared.set_scripting(Scripting::Refused);
            return Ok(false);
        };
        self.shared.set_scripting(Scripting::Runs);
        if done == 1 {
            self.shared.saw(rkey, bytes.as_deref());
        }
        Ok(done == 1)
    }
}

/// What went wrong, for a message: a timeout says how long was waited.
/// Of a pipeline's failures, the first (`AUTH` refused, then every later command refused for
/// want of it: only the first says why).
fn why(e: &redis::RedisError, budget: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", humanize(budget));
    }
    match e.clone().into_server_errors().as_deref().and_then(<[_]>::first) {
        Some((_, first)) => match first.details() {
            // Redis ends some with a full stop; a hint may follow.
            Some(details) => format!("{} {}", first.code(), details.trim_end_matches('.')),
            None => first.code().to_string(),
        },
        None => e.to_string(),
    }
}

/// Whether `e` says the connection is unusable (refused, reset, timed out, garbled), as
/// opposed to Redis refusing one command.
fn is_network(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_unrecoverable_error()
}

/// Whether `e` is Redis refusing a script (`NOPERM` for an ACL without `+eval`, an unknown
/// command where scripting is turned off), as opposed to a failure of the connection or a
/// refusal of what the script does (`READONLY` on a replica, `OOM` on a full Redis).
/// `at`: the script's place in its pipeline (after `AUTH`/`SELECT`, whose refusal is not the
/// script's).
fn script_refused(e: &redis::RedisError, at: usize) -> bool {
    let refusal = |code: &str, details: Option<&str>| {
        code == "NOPERM" || (code == "ERR" && details.is_some_and(|d| d.starts_with("unknown command")))
    };
    match e.clone().into_server_errors() {
        Some(errors) => errors.iter().all(|(i, error)| *i == at && refusal(error.code(), error.details())),
        None => e.code().is_some_and(|code| refusal(code, e.detail())),
    }
}

/// `1.5s`, `250ms`.
fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The record `rkey` as read with the hold just taken, once ([`Shared::prefetched`]).
    fn take_prefetched(&self, rkey: &str) -> Option<Option<Vec<u8>>> {
        let mut slot = self.prefetched.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|(k, _)| k == rkey) { slot.take().map(|(_, raw)| raw) } else { None }
    }

    /// Remember `raw` as the bytes of `rkey` now ([`Shared::seen`]).
    fn saw(&self, rkey: &str, raw: Option<&[u8]>) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|(k, _)| k != rkey);
        if seen.len() >= SEEN_RECORDS {
            seen.pop_front();
        }
        seen.push_back((rkey.to_string(), raw.map(<[u8]>::to_vec)));
    }

    /// The bytes `rkey` had when this invocation last read or wrote it, if it did.
    fn last_seen(&self, rkey: &str) -> Option<Option<Vec<u8>>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).iter().find(|(k, _)| k == rkey).map(|(_, raw)| raw.clone())
    }

    fn scripting(&self) -> Scripting {
        *self.scripting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_scripting(&self, scripting: Scripting) {
        *self.scripting.lock().unwrap_or_else(PoisonError::into_inner) = scripting;
    }

    /// Do `op` to the hold `hkey` if it still holds `token` (this holder's): `Ok(true)` done,
    /// `Ok(false)` not this holder's any more (it lapsed, and maybe another took it). One
    /// round trip by script ([`HoldOp::script`]); where Redis refuses scripts, `WATCH` and
    /// `GET` of the hold, then, when the token is this holder's, `MULTI`, `op`, `EXEC` (two),
    /// which does nothing when the hold changed in between.
    ///
    /// Errors: Redis failed.
    fn if_held(&self, what: &str, hkey: &str, token: &str, op: HoldOp) -> anyhow::Result<bool> {
        self.run(what, |c, mut setup| {
            if self.scripting() != Scripting::Refused {
                let at = setup.as_ref().map_or(0, redis::Pipeline::len);
                match first(setup.take()).add_command(op.script(hkey, token)).query::<(i64,)>(c) {
                    Ok((n,)) => {
                        self.set_scripting(Scripting::Runs);
                        return Ok(n == 1);
                    }
                    Err(e) if script_refused(&e, at) => self.set_scripting(Scripting::Refused),
                    Err(e) => return Err(e),
                }
            }
            let (held,): (Option<Vec<u8>>,) = first(setup.take()).cmd("WATCH").arg(hkey).ignore().cmd("GET").arg(hkey).query(c)?;
            if held.as_deref() != Some(token.as_bytes()) {
                redis::cmd("UNWATCH").query::<()>(c)?;
                return Ok(false);
            }
            let done: Option<(i64,)> = redis::pipe().atomic().add_command(op.command(hkey)).query(c)?;
            Ok(done.is_some_and(|(n,)| n == 1))
        })
    }

    fn notice(&self, text: String) {
        self.notices.lock().unwrap_or_else(PoisonError::into_inner).push(mask(&text, &self.secrets));
    }

    /// Run `op` on the connection; `what` names it in the error. `op` gets the commands still
    /// to be sent ahead of the first one (`AUTH`, `SELECT`: a pipeline whose answers are
    /// ignored) and must send them first, in the same round trip ([`first`]). A network
    /// failure, or any failure of the first command, marks the store unusable for the rest of
    /// the invocation (see the module documentation).
    fn run<T>(
        &self,
        what: &str,
        op: impl FnOnce(&mut redis::Connection, Option<redis::Pipeline>) -> redis::RedisResult<T>,
    ) -> anyhow::Result<T> {
        if let Some(down) = self.down.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            let text =
                format!("state store {}: not asked to {what}: it failed earlier in this invocation ({})", self.describe, down.reason);
            return Err(if down.fault == Fault::Settings { misconfigured(text) } else { anyhow::anyhow!("{text}") });
        }
        let mut conn = self.lock();
        // Whatever this command is, the record read with a hold may be out of date after it.
        self.prefetched.lock().unwrap_or_else(PoisonError::into_inner).take();
        let setup = self.setup.lock().unwrap_or_else(PoisonError::into_inner).take();
        let first = setup.is_some();
        let Conn { redis, unread } = &mut *conn;
        let answered = std::iter::repeat_with(|| redis.recv_response()).take(std::mem::take(unread)).find_map(Result::err);
        let result = answered.map_or_else(|| op(redis, setup), Err);
        if result.is_ok() {
            self.answered_once.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result.map_err(|e| {
            let fix = settings_fix(&e);
            let reason = mask(&why(&e, self.budget), &self.secrets) + &fix.map(|fix| format!("; {fix}")).unwrap_or_default();
            if first || is_network(&e) {
                *self.down.lock().unwrap_or_else(PoisonError::into_inner) = Some(Down { fault: Fault::of(&e), reason: reason.clone() });
            }
            let text = format!("state store {}: {what}: {reason}", self.describe);
            if fix.is_some() { misconfigured(text) } else { anyhow::anyhow!("{text}") }
        })
    }

    /// Send `cmd` without waiting for its answer, which the next command reads first (or
    /// nobody, when the process ends: Redis runs a command it has received whether or not its
    /// answer is read). For a command whose answer does not matter; nothing is sent when the
    /// store failed earlier. Before the first command (which must carry `AUTH`), it is run
    /// as any other.
    fn send_only(&self, what: &str, cmd: &redis::Cmd) {
        if self.down.lock().unwrap_or_else(PoisonError::into_inner).is_some() {
            return;
        }
        if self.setup.lock().unwrap_or_else(PoisonError::into_inner).is_some() {
            let _ = self.run(what, |c, setup| first(setup).add_command(cmd.clone()).query::<(redis::Value,)>(c));
            return;
        }
        let mut conn = self.lock();
        self.prefetched.lock().unwrap_or_else(PoisonError::into_inner).take();
        match conn.redis.send_packed_command(&cmd.get_packed_command()) {
            Ok(()) => conn.unread += 1,
            Err(e) => {
                let reason = mask(&why(&e, self.budget), &self.secrets);
                *self.down.lock().unwrap_or_else(PoisonError::into_inner) = Some(Down { fault: Fault::of(&e), reason });
            }
        }
    }
}

/// A pipeline that starts with `setup` (from [`Shared::run`]), for one command whose answer is
/// the pipeline's only one.
fn first(setup: Option<redis::Pipeline>) -> redis::Pipeline {
    setup.unwrap_or_else(redis::pipe)
}

/// After a command that takes the hold `hkey` with `token` failed: when `AUTH` or `SELECT`
/// went ahead of it in its round trip (`at`: the command's place after them) and Redis refused
/// one of them, the command still ran, as Redis' default user (a Redis with no password: the
/// URL's is refused) or in database 0 (the URL's database does not exist). The hold it may
/// have taken there is released (only if the token is this one's; its answer waited for and
/// ignored), so that a host with wrong settings, which delivers without the store, leaves
/// nothing behind for the hosts sharing that database. Nothing is sent after a network failure.
fn release_after_refused_setup(c: &mut redis::Connection, at: usize, e: &redis::RedisError, hkey: &str, token: &str) {
    let setup_refused = e.clone().into_server_errors().is_some_and(|errors| errors.iter().any(|(i, _)| *i < at));
    if setup_refused {
        let _ = HoldOp::Release.script(hkey, token).query::<redis::Value>(c);
    }
}

/// A record's bytes as JSON, or the parse error.
fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Whether an update that turns the record `before` into `new` must write: `new` differs, or
/// `rewrite` (an expiry to set, an unreadable record to replace); a deletion when something is
/// stored (`existed`, readable or not).
fn must_write(new: Option<&Value>, before: Option<&Value>, existed: bool, rewrite: bool) -> bool {
    match new {
        Some(v) => Some(v) != before || rewrite,
        None => existed,
    }
}

/// A record as stored.
fn encode(v: &Value) -> redis::RedisResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| redis::RedisError::from((redis::ErrorKind::Client, "cannot encode the record", e.to_string())))
}

/// An incident's hold: a lease in Redis, renewed by the store's renewal thread until dropped.
struct RedisHold {
    shared: Arc<Shared>,
    key: String,
    token: String,
}

impl Hold for RedisHold {}

impl Drop for RedisHold {
    fn drop(&mut self) {
        // The renewal thread is neither woken nor waited for (a context switch, and a third
        // thread competing for the CPU with Redis and the service, per delivery): it ends at
        // its next renewal time when no hold is left, or with the process. A renewal it sends
        // after the release below finds the token gone and changes nothing.
        {
            let mut renewals = self.shared.renewals();
            renewals.holds.retain(|(k, t)| (k, t) != (&self.key, &self.token));
            renewals.lost.retain(|(k, t, _)| (k, t) != (&self.key, &self.token));
        }
        // Delete the lease only if it is still ours (it may have expired and been taken by
        // another holder if this process was stopped for longer than the lease). Where a
        // script ran before, its answer is not waited for: a delivery's last round trip
        // saved. Otherwise it is, so that a refused script is known and the transaction
        // releases the hold instead of leaving it to lapse (the incident blocked for a lease).
        let what = "release a hold";
        match self.shared.scripting() {
            Scripting::Runs => self.shared.send_only(what, &HoldOp::Release.script(&self.key, &self.token)),
            Scripting::Unknown | Scripting::Refused => {
                let _ = self.shared.if_held(what, &self.key, &self.token, HoldOp::Release);
            }
        }
    }
}

/// What [`lease`] starts: the renewal thread of a store, if the store is still there.
struct StartRenewal {
    shared: std::sync::Weak<Shared>,
    lease: Duration,
}

impl lease::Renewal for StartRenewal {
    fn start(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.start_renewals(self.lease);
        }
    }
}

/// The holds of one store that its renewal thread keeps alive.
#[derive(Default)]
struct Renewals {
    /// `(hold key, token)` of every live hold.
    holds: Vec<(String, String)>,
    /// `(hold key, token, why)` of every hold lost to another holder ([`Store::hold_lost`]):
    /// no longer renewed, until its holder drops it.
    lost: Vec<(String, String, String)>,
    /// Whether the renewal thread runs.
    running: bool,
    /// Whether its start is asked for ([`lease::start_by`]) and has not happened.
    registered: bool,
    /// Whether the renewal thread told that Redis cannot be connected to again (once per
    /// outage, not at every renewal).
    outage_told: bool,
}

/// What became of a hold at its renewal ([`Shared::keep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// Still this holder's: extended by a lease.
    Renewed,
    /// Its lease had lapsed (Redis restarted and lost it, or this process stalled) and nobody
    /// had taken it: taken again with the same token (`SET NX PX`).
    TakenAgain,
    /// Another holder has it now.
    Lost,
}

impl Shared {
    fn renewals(&self) -> MutexGuard<'_, Renewals> {
        self.renewals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keep the lease `hkey` (token `token`) alive until its hold is dropped: one thread per
    /// store renews every live hold every `lease`/3 ([`renew`]). It is not started here but
    /// when the holder's first wait reaches a third of the lease ([`lease::start_by`]); most
    /// holds end before that, and never pay for a thread.
    fn keep_alive(self: &Arc<Self>, hkey: &str, token: &str, lease: Duration) {
        let mut renewals = self.renewals();
        renewals.holds.push((hkey.to_string(), token.to_string()));
        if !renewals.running && !renewals.registered {
            renewals.registered = true;
            let start = Arc::new(StartRenewal { shared: Arc::downgrade(self), lease });
            lease::start_by(Instant::now() + lease / 3, start);
        }
    }

    /// Start the renewal thread, unless it runs or no hold is left. A thread that cannot be
    /// started is told as a notice: the holds then lapse within a lease of being taken.
    fn start_renewals(self: &Arc<Self>, lease: Duration) {
        let mut renewals = self.renewals();
        renewals.registered = false;
        if renewals.running || renewals.holds.is_empty() {
            return;
        }
        let shared = Arc::clone(self);
        match std::thread::Builder::new().name("redis-hold".into()).spawn(move || renew(&shared, lease)) {
            Ok(_) => renewals.running = true,
            Err(e) => {
                let keys: Vec<&str> = renewals.holds.iter().map(|(k, _)| k.as_str()).collect();
                let said = format!(
                    "cannot start the thread that renews the holds {} ({e}); they lapse within {}",
                    keys.join(", "),
                    humanize(lease)
                );
                drop(renewals);
                self.notice(said);
            }
        }
    }

    /// Extend the lease `hkey` of `token` by `lease`; when it is no longer there (it lapsed,
    /// or a restarted Redis lost it), take it again with the same token, unless another holder
    /// has it. One round trip when it is renewed, two otherwise.
    ///
    /// Errors: Redis failed.
    fn keep(&self, hkey: &str, token: &str, lease: Duration) -> anyhow::Result<Kept> {
        let ms = lease.as_millis() as u64;
        if self.if_held("renew a hold", hkey, token, HoldOp::Renew(ms))? {
            return Ok(Kept::Renewed);
        }
        let (taken,): (Option<String>,) =
            self.run("take a hold again", |c, setup| first(setup).cmd("SET").arg(hkey).arg(token).arg("NX").arg("PX").arg(ms).query(c))?;
        Ok(if taken.is_some() { Kept::TakenAgain } else { Kept::Lost })
    }

    /// Act on what [`Shared::keep`] found for the hold `hkey` of `token`: a lost hold leaves
    /// the renewals for [`Shared::lost`] (whose holder tells it: [`Store::hold_lost`]); one
    /// taken again after its holder released it meanwhile is released again; a failure ends
    /// its renewals. Returns what happened, for a notice, when it is news (`None` for a
    /// plain renewal and a lost hold).
    fn settle(&self, hkey: &str, token: &str, kept: anyhow::Result<Kept>, lease: Duration) -> Option<String> {
        let mut renewals = self.renewals();
        let live = renewals.holds.iter().any(|(k, t)| k == hkey && t == token);
        let leave = |renewals: &mut Renewals| renewals.holds.retain(|(k, t)| !(k == hkey && t == token));
        match kept {
            Ok(Kept::Renewed) => None,
            Ok(Kept::TakenAgain) if !live => {
                drop(renewals);
                let _ = self.if_held("release a hold", hkey, token, HoldOp::Release);
                None
            }
            Ok(Kept::TakenAgain) => {
                Some(format!("took the hold {hkey} again (it was gone: a restarted Redis lost it, or it lapsed; nobody else had taken it)"))
            }
            Ok(Kept::Lost) => {
                leave(&mut renewals);
                let why = format!(
                    "the hold {hkey} in {} was lost: its lease lapsed (Redis restarted or could not be reached, or this process \
                     stalled) and another invocation holds the incident now",
                    self.describe
                );
                if live {
                    renewals.lost.push((hkey.to_string(), token.to_string(), why));
                }
                // Told by the holder, which knows what it stops doing.
                None
            }
            Err(e) => {
                leave(&mut renewals);
                live.then(|| format!("{e:#}; the hold {hkey} expires within {}", humanize(lease)))
            }
        }
    }

    /// Whether the store is down because its connection broke ([`Fault::Broken`]): the one
    /// failure a new connection may mend.
    fn broken(&self) -> bool {
        self.down.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|d| d.fault == Fault::Broken)
    }

    /// A new connection when the old one broke ([`Fault::Broken`]: reset or closed, Redis
    /// restarted), within the budget; then every live hold is kept ([`Shared::keep`]: renewed,
    /// or taken again with its token where the restarted Redis lost it, or found lost to
    /// another holder), and a notice says so in one line. `Ok(true)`: a new connection is in
    /// place (made now, or by the other thread since). `Ok(false)`: the store failed otherwise
    /// (no answer in time, settings) or not at all. An attempt that failed is not made again
    /// within `lease`/3 (a renewal period): the holder's status checks and the renewal thread
    /// cost at most one budget per period while Redis stays away.
    ///
    /// Errors: the new connection cannot be made (Redis still restarting, or gone).
    fn reconnect(&self, lease: Duration) -> anyhow::Result<bool> {
        let mut attempt = self.attempt.lock().unwrap_or_else(PoisonError::into_inner);
        let broke = match self.down.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            Some(down) if down.fault == Fault::Broken => down.reason.clone(),
            Some(_) => return Ok(false),
            None => return Ok(self.connected_again.load(std::sync::atomic::Ordering::Relaxed)),
        };
        if let Some((at, why)) = attempt.as_ref()
            && at.elapsed() < lease / 3
        {
            return Err(anyhow::anyhow!("{why}"));
        }
        let fail = |e: redis::RedisError| {
            mask(&format!("cannot connect to the state store {} again: {}", self.describe, why(&e, self.budget)), &self.secrets)
        };
        let made = self.client.get_connection_with_timeout(self.budget).and_then(|redis| {
            redis.set_read_timeout(Some(self.budget))?;
            redis.set_write_timeout(Some(self.budget))?;
            Ok(redis)
        });
        let redis = match made {
            Ok(redis) => redis,
            Err(e) => {
                let text = fail(e);
                *attempt = Some((Instant::now(), text.clone()));
                return Err(anyhow::anyhow!("{text}"));
            }
        };
        *attempt = None;
        let mut conn = self.lock();
        *conn = Conn { redis, unread: 0 };
        self.prefetched.lock().unwrap_or_else(PoisonError::into_inner).take();
        *self.setup.lock().unwrap_or_else(PoisonError::into_inner) = Some(self.auth.clone());
        *self.down.lock().unwrap_or_else(PoisonError::into_inner) = None;
        drop(conn);
        self.connected_again.store(true, std::sync::atomic::Ordering::Relaxed);
        self.renewals().outage_told = false;
        let holds = self.renewals().holds.clone();
        let mut said = vec![format!("state store {}: the connection broke ({broke}); connected again", self.describe)];
        for (hkey, token) in holds {
            let kept = self.keep(&hkey, &token, lease);
            if let Err(e) = &kept
                && self.broken()
            {
                // The new connection broke at its first command: a Redis going down accepted
                // it as it went (a restart's first half). Every hold stays this holder's to
                // keep with the next connection, a renewal period on, not given up.
                let text = format!("{e:#}");
                *attempt = Some((Instant::now(), text.clone()));
                return Err(anyhow::anyhow!("{text}"));
            }
            said.extend(self.settle(&hkey, &token, kept, lease));
        }
        self.notice(said.join("; "));
        Ok(true)
    }

    /// Why the hold `hkey` was lost to another holder, if it was ([`Store::hold_lost`]).
    fn lost(&self, hkey: &str) -> Option<String> {
        self.renewals().lost.iter().find(|(k, _, _)| k == hkey).map(|(_, _, why)| why.clone())
    }
}

/// The renewal thread: at once (it starts when the first renewal falls due), then every
/// `lease`/3, keep every live hold of the store ([`Shared::keep`]); end when none is left. A
/// connection that broke (Redis restarted, a proxy cut it) is made again
/// ([`Shared::reconnect`], which keeps every hold again), at most once per period while Redis
/// stays away; any other failure, or a hold found lost to another holder, ends that hold's
/// renewals (with a notice; a lost hold is told by [`Store::hold_lost`]).
fn renew(shared: &Shared, lease: Duration) {
    /// A renewal thread that panics lets the next hold start another.
    struct Unwinding<'a>(&'a Shared);
    impl Drop for Unwinding<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.renewals().running = false;
            }
        }
    }
    let _unwinding = Unwinding(shared);
    // Started when the first renewal falls due ([`lease`]): renew first, then every lease/3.
    loop {
        let holds = {
            let mut renewals = shared.renewals();
            if renewals.holds.is_empty() {
                renewals.running = false;
                return;
            }
            renewals.holds.clone()
        };
        for (key, token) in holds {
            let kept = shared.keep(&key, &token, lease);
            if kept.is_err() && shared.broken() {
                // Every hold is kept again with the new connection, or none can be.
                if let Err(e) = shared.reconnect(lease) {
                    let mut renewals = shared.renewals();
                    if !std::mem::replace(&mut renewals.outage_told, true) {
                        drop(renewals);
                        shared.notice(format!(
                            "{e:#}; trying again every {} while the hold {key} lives (it lapses within {} unless Redis is back)",
                            humanize(lease / 3),
                            humanize(lease)
                        ));
                    }
                }
                break;
            }
            if let Some(said) = shared.settle(&key, &token, kept, lease) {
                shared.notice(said);
            }
        }
        std::thread::sleep(lease / 3);
    }
}

impl Store for RedisStore {
    fn describe(&self) -> String {
        self.shared.describe.clone()
    }

    /// No round trip right after this invocation took the record's hold (read with it).
    fn get(&self, key: &str) -> anyhow::Result<Option<Value>> {
        let rkey = self.record_key(key);
        let raw = match self.shared.take_prefetched(&rkey) {
            Some(raw) => raw,
            None => self.shared.run("read a record", |c, setup| first(setup).cmd("GET").arg(&rkey).query::<(Option<Vec<u8>>,)>(c))?.0,
        };
        self.shared.saw(&rkey, raw.as_deref());
        Ok(self.parsed(&rkey, raw))
    }

    /// One `MGET` per `MGET_KEYS` (256) keys. What it reads is not remembered as seen (a scan's
    /// snapshot must not push this invocation's own record out of the bytes its compare-and-set write builds on).
    fn get_many(&self, keys: &[String]) -> anyhow::Result<Vec<Option<Value>>> {
        let mut records = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MGET_KEYS) {
            let rkeys: Vec<String> = chunk.iter().map(|k| self.record_key(k)).collect();
            let (raws,): (Vec<Option<Vec<u8>>>,) =
                self.shared.run("read the records", |c, setup| first(setup).cmd("MGET").arg(&rkeys).query(c))?;
            anyhow::ensure!(
                raws.len() == rkeys.len(),
                "state store {}: MGET answered {} values for {} keys",
                self.describe(),
                raws.len(),
                rkeys.len()
            );
            records.extend(rkeys.iter().zip(raws).map(|(rkey, raw)| self.parsed(rkey, raw)));
        }
        Ok(records)
    }

    /// One round trip: the record's `GET` and the hold's `EXISTS` in one pipeline; none right
    /// after this invocation took the record's hold (read with it; busy: the hold is its own).
    fn get_and_busy(&self, key: &str) -> anyhow::Result<(Option<Value>, Option<bool>)> {
        let (rkey, hkey) = (self.record_key(key), self.hold_key(key));
        let (raw, held) = match self.shared.take_prefetched(&rkey) {
            Some(raw) => (raw, 1),
            None => self.shared.run("read a record", |c, setup| {
                first(setup).cmd("GET").arg(&rkey).cmd("EXISTS").arg(&hkey).query::<(Option<Vec<u8>>, u64)>(c)
            })?,
        };
        self.shared.saw(&rkey, raw.as_deref());
        Ok((self.parsed(&rkey, raw), Some(held > 0)))
    }

    /// The durability `f` chooses is not used: what survives a crash of the Redis server is
    /// Redis' own persistence.
    fn update_deciding(
        &self,
        key: &str,
        expire: Expiry,
        f: &mut dyn FnMut(Option<Value>) -> (Option<Value>, Durability),
    ) -> anyhow::Result<()> {
        let rkey = self.record_key(key);
        let ttl_ms = match expire {
            Expiry::After(d) => Some((d.as_millis() as u64).max(1)),
            Expiry::Keep | Expiry::Never => None,
        };
        if self.compare_and_set(&rkey, expire, ttl_ms, f)? {
            return Ok(());
        }
        self.shared.run("update a record", |c, mut setup| {
            for _ in 0..MAX_TRANSACTION_ATTEMPTS {
                let (raw,): (Option<Vec<u8>>,) = first(setup.take()).cmd("WATCH").arg(&rkey).ignore().cmd("GET").arg(&rkey).query(c)?;
                let (current, corrupt) = match raw.as_deref().map(parse) {
                    None => (None, None),
                    Some(Ok(v)) => (Some(v), None),
                    Some(Err(e)) => (None, raw.map(|b| (b, e))),
                };
                let existed = current.is_some() || corrupt.is_some();
                let before = current.clone();
                let (new, _) = f(current);
                if !must_write(new.as_ref(), before.as_ref(), existed, ttl_ms.is_some() || corrupt.is_some()) {
                    redis::cmd("UNWATCH").query::<()>(c)?;
                    return Ok(());
                }
                let bytes = new.as_ref().map(encode).transpose()?;
                let mut tx = redis::pipe();
                tx.atomic();
                let aside = format!("{}corrupt:{key}:{}", self.namespace, clock::now_unix());
                if let Some((bytes, _)) = &corrupt {
                    tx.cmd("SET").arg(&aside).arg(bytes.as_slice()).arg("PX").arg(CORRUPT_TTL.as_millis() as u64).ignore();
                }
                match &bytes {
                    Some(bytes) => {
                        tx.cmd("SET").arg(&rkey).arg(bytes.as_slice());
                        match (ttl_ms, expire) {
                            (Some(ms), _) => {
                                tx.arg("PX").arg(ms);
                            }
                            // A side note (a stop request, a request in flight) keeps the
                            // record's expiry; an open incident's record is kept.
                            (None, Expiry::Keep) => {
                                tx.arg("KEEPTTL");
                            }
                            (None, _) => {}
                        }
                        tx.ignore();
                    }
                    None => {
                        tx.cmd("DEL").arg(&rkey).ignore();
                    }
                }
                // EXEC answers nil when a watched key changed: run the step again.
                let done: Option<()> = tx.query(c)?;
                if done.is_some() {
                    self.shared.saw(&rkey, bytes.as_deref());
                    if let Some((_, e)) = corrupt {
                        self.shared.notice(format!(
                            "state record {rkey} in {} was unreadable ({e}); kept as {aside} for 7 days and starting afresh",
                            self.shared.describe
                        ));
                    }
                    return Ok(());
                }
            }
            Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "gave up",
                format!("{MAX_TRANSACTION_ATTEMPTS} attempts each overtaken by another writer"),
            )))
        })
    }

    /// `EXISTS` of the lease: one round trip, where taking the hold would be one more, a
    /// release and a renewal thread — asked for every identical repeat of a storm. A killed holder's lease counts until it expires, as it does for [`Store::hold`].
    fn busy(&self, key: &str) -> anyhow::Result<bool> {
        let hkey = self.hold_key(key);
        let (n,): (u64,) = self.shared.run("look at a hold", |c, setup| first(setup).cmd("EXISTS").arg(&hkey).query(c))?;
        Ok(n > 0)
    }

    /// `SET NX PX` and the record's `GET` in one round trip; the next read of the record is
    /// answered from that `GET`.
    fn hold(&self, key: &str, until: Instant) -> anyhow::Result<Option<Box<dyn Hold>>> {
        let (hkey, rkey) = (self.hold_key(key), self.record_key(key));
        let token = super::new_token();
        let ms = self.lease.as_millis() as u64;
        loop {
            // The record is read in the same round trip: what a holder reads next.
            let (taken, raw): (Option<String>, Option<Vec<u8>>) = self.shared.run("take a hold", |c, setup| {
                let at = setup.as_ref().map_or(0, redis::Pipeline::len);
                let answer = first(setup).cmd("SET").arg(&hkey).arg(&token).arg("NX").arg("PX").arg(ms).cmd("GET").arg(&rkey).query(c);
                if let Err(e) = &answer {
                    release_after_refused_setup(c, at, e, &hkey, &token);
                }
                answer
            })?;
            self.shared.saw(&rkey, raw.as_deref());
            if taken.is_some() {
                *self.shared.prefetched.lock().unwrap_or_else(PoisonError::into_inner) = Some((rkey, raw));
                let hold = RedisHold { shared: Arc::clone(&self.shared), key: hkey, token };
                self.shared.keep_alive(&hold.key, &hold.token, self.lease);
                return Ok(Some(Box::new(hold)));
            }
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            lease::sleep(HOLD_POLL.min(until - now));
        }
    }

    /// A plain `DEL`: outside a transaction and a script, which a full Redis (`maxmemory`,
    /// `noeviction`) refuses while it takes a deletion.
    fn delete(&self, key: &str) -> anyhow::Result<()> {
        let rkey = self.record_key(key);
        let (_,): (u64,) = self.shared.run("delete a record", |c, setup| first(setup).cmd("DEL").arg(&rkey).query(c))?;
        self.shared.saw(&rkey, None);
        Ok(())
    }

    /// A new connection, within the store's budget, when a network failure broke the old one
    /// (reset or closed by the other end); `AUTH` and `SELECT` go with its first command.
    /// The holds of this invocation are kept with it: renewed, or taken again with their
    /// tokens where a restarted Redis lost them, or found lost to another holder
    /// ([`Store::hold_lost`]); a notice says which. The bytes of records last seen are kept, as
    /// guesses for the compare-and-set, which checks them against what Redis holds now.
    /// `Ok(true)` too when the renewal thread made the new connection since; an attempt that
    /// failed is not made again within a renewal period (lease/3).
    fn reconnect(&self) -> anyhow::Result<bool> {
        self.shared.reconnect(self.lease)
    }

    fn hold_lost(&self, key: &str) -> Option<String> {
        self.shared.lost(&self.hold_key(key))
    }

    /// Redis answered nothing in this invocation, and the store is down other than by a broken
    /// connection (which a new one may mend): its settings refused (user, password, database,
    /// certificate), no answer within the budget, a garbled answer.
    fn unusable(&self) -> bool {
        !self.shared.answered_once.load(std::sync::atomic::Ordering::Relaxed)
            && self.shared.down.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|d| d.fault != Fault::Broken)
    }

    fn keys(&self) -> anyhow::Result<Vec<String>> {
        let prefix = format!("{}rec:", self.namespace);
        let pattern = format!("{}*", glob_escape(&prefix));
        self.shared.run("list the records", |c, mut setup| {
            let mut seen = std::collections::BTreeSet::new();
            let mut cursor: u64 = 0;
            loop {
                let ((next, batch),): ((u64, Vec<Vec<u8>>),) =
                    first(setup.take()).cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query(c)?;
                for k in batch {
                    if let Some(rest) = k.strip_prefix(prefix.as_bytes()) {
                        seen.insert(String::from_utf8_lossy(rest).into_owned());
                    }
                }
                if next == 0 {
                    return Ok(seen.into_iter().collect());
                }
                cursor = next;
            }
        })
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.shared.notices.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_masked_as_written_and_decoded() {
        assert_eq!(secrets_of("rediss://pagerpipe:p%40ss@10.0.0.5/2"), ["p%40ss", "p@ss"]);
        assert_eq!(secrets_of("redis://:s3cret@redis.example:6379/0"), ["s3cret"]);
        assert!(secrets_of("redis://host:6379/0").is_empty());
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }

    #[test]
    fn urls_parse_into_their_parts_or_say_what_is_wrong() {
        let u = |s: &str| RedisUrl::parse(s);
        let url = |tls, host: &str, port, user: Option<&str>, password: Option<&str>, db| {
            Ok(RedisUrl { tls, host: host.into(), port, user: user.map(Into::into), password: password.map(Into::into), db })
        };
        assert_eq!(u("redis://:s3cret@redis.example:6379/0"), url(false, "redis.example", 6379, None, Some("s3cret"), 0));
        assert_eq!(u("rediss://pagerpipe:p%40ss@10.0.0.5/2"), url(true, "10.0.0.5", 6379, Some("pagerpipe"), Some("p@ss"), 2));
        assert_eq!(u("redis://user:p@ss@host:7000"), url(false, "host", 7000, Some("user"), Some("p@ss"), 0));
        assert_eq!(u("redis://[::1]:6380/3/"), url(false, "::1", 6380, None, None, 3));
        assert_eq!(u("redis://[fd00::5]"), url(false, "fd00::5", 6379, None, None, 0));
        assert_eq!(u("redis://bob@host"), url(false, "host", 6379, Some("bob"), None, 0));
        assert_eq!(u("redis://host/"), url(false, "host", 6379, None, None, 0));
        for (bad, says) in [
            ("http://host", "the scheme is http"),
            ("redis+unix:///tmp/r.sock", "the scheme is redis+unix"),
            ("host:6379", "expected redis://"),
            ("redis://host:notaport/0", "the port notaport"),
            ("redis://host:0", "the port 0"),
            ("redis://host/x", "the database x"),
            ("redis://:pw@/0", "no host"),
            ("redis://host/0?protocol=resp3", "no query"),
            ("redis://[::1/0", "closing ]"),
        ] {
            let e = u(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_url_is_shown_without_user_information_query_or_fragment() {
        assert_eq!(shown_url("redis://:s3cret@redis.example:6379/0"), "redis://…@redis.example:6379/0");
        assert_eq!(shown_url("redis+unix:///run/redis.sock?pass=s3cret"), "redis+unix:///run/redis.sock?…");
        assert_eq!(shown_url(":s3cret@host:6379"), "…@host:6379");
        assert_eq!(shown_url("redis://:ab/cd?e#f@host:6379/0"), "redis://…@host:6379/0");
        assert_eq!(shown_url("redis://host:notaport/0"), "redis://host:notaport/0");
    }

    #[test]
    fn masking_hides_short_passwords_too() {
        let s = secrets_of("redis://:abc@h");
        assert_eq!(mask("bad url redis://:abc@h", &s), "bad url redis://:****@h");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn a_bad_url_is_refused_without_the_password() {
        let e = RedisStore::connect("redis://:hunter2@host:notaport/0", "pagerduty", None, Duration::from_millis(50)).expect_err("refused");
        let text = format!("{e:#}");
        assert!(!text.contains("hunter2") && text.contains("the port notaport is not a port number"), "{text}");
        let e = RedisStore::connect("http://:hunter2@host/", "pagerduty", None, Duration::from_millis(50)).expect_err("refused");
        assert!(!format!("{e:#}").contains("hunter2"), "{e:#}");
    }

    #[test]
    fn system_certificates_become_pem() {
        let pem = pem_of(&[rustls::pki_types::CertificateDer::from(vec![1u8; 100])]);
        let text = String::from_utf8(pem.clone()).expect("PEM is text");
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n") && text.ends_with("-----END CERTIFICATE-----\n"));
        assert!(text.lines().all(|l| l.len() <= 64));
        use rustls::pki_types::pem::PemObject as _;
        let back: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&pem).collect::<Result<_, _>>().expect("PEM parses back");
        assert_eq!(back[0].as_ref(), &[1u8; 100][..]);
    }
}
