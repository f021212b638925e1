//! The spool: a durable queue of requests that could not be delivered yet.
//!
//! The network is often down *because* of the incident being reported, so a request that is
//! still retryable when the invocation's deadline runs out is not dropped: its fully built
//! [`Request`] is written here, one file per entry, and the handler exits 75. Every later
//! invocation first delivers older entries (within a small share of its deadline), and
//! `--flush` delivers everything it can (for a cron job or the packaged systemd timer).
//!
//! Layout of `<spool_dir>/<handler>/` (default `/var/spool/pagerpipe/<handler>`, falling back
//! to `$XDG_STATE_HOME/pagerpipe/spool/<handler>` like the state store):
//!
//! - `<created ns, 20 digits>-<pid>-<seq>-<FNV-1a of the incident key, 16 hex>.json`: one
//!   [`Entry`], written with [`files::write_atomic`] (fsynced, mode 0640). Names sort in
//!   creation order and carry a hash of the incident key, never a credential or the key itself.
//! - `failed/<same name>`: entries refused for good, or older than `spool_max_age` (default
//!   24 h), with [`Entry::failure`] saying why. Nothing there is retried; an operator reads it.
//! - `.flush.lock`: held (exclusive `File::lock`) by whoever is flushing, so concurrent flushes
//!   never deliver an entry twice. Adding an entry needs no lock.
//!
//! Order is kept per incident key: a flush stops at the first entry of a key that is still not
//! deliverable and leaves that key's later entries behind it, and an invocation whose incident
//! still has spooled entries queues its own request behind them instead of sending it (so a
//! trigger is never delivered after its own resolve).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::files::{self, Chosen, Durability};
use crate::http::Request;
use crate::state::file::fnv1a;

/// Default spool directory for system installs.
pub const DEFAULT_SPOOL_DIR: &str = "/var/spool/pagerpipe";
/// Subdirectory for entries that will not be retried.
pub const FAILED_DIR: &str = "failed";
/// Largest spool entry read: 4 MiB (an entry is one request, at most about 1 MiB of event).
pub const MAX_ENTRY_BYTES: u64 = 4 * 1024 * 1024;

/// Default for `spool_max_age`: entries older than this move to `failed/` (24 h).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// One spooled request, as stored in its file (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Handler that spooled it (`pagerduty`, `twilio`, `reactio`).
    pub handler: String,
    /// The incident key the request belongs to (order is kept per key).
    pub incident_key: String,
    /// `trigger`, `acknowledge` or `resolve`.
    pub action: String,
    /// When the event was handled, Unix seconds (`PAGERPIPE_NOW` applies).
    pub created: u64,
    /// The request, credentials included (hence the file mode).
    pub request: Request,
    /// The credentials in `request`, so that a `--flush` without the same settings still
    /// masks them in its log lines.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Values to fill in from the incident's stored references at delivery time: JSON pointer
    /// into the JSON body (e.g. `/incident_id`) → name in `Incident::refs` (e.g.
    /// `incident_id`), for a request that depends on an earlier spooled one's answer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fill: BTreeMap<String, String>,
    /// Delivery attempts made so far (by flushes; the first invocation's not counted).
    #[serde(default)]
    pub attempts: u32,
    /// Why it is in `failed/` (absent in the queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// A spool directory for one handler.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

/// What the delivery callback of [`Spool::flush`] says about one entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered: the entry is removed.
    Delivered,
    /// Refused for good: the entry moves to `failed/` with this reason.
    Failed(String),
    /// Deliberately not sent (e.g. a call for an incident that has recovered): the entry moves
    /// to `failed/` with this reason for the record, but it is not a failure.
    Dropped(String),
    /// Still retryable: the entry stays, and the flush stops (the service is still down; one
    /// handler talks to one service).
    Retry(String),
    /// Not deliverable yet for a reason of its own (e.g. a value to fill in is not known): the
    /// entry and its incident's later entries stay; other incidents go on.
    Wait(String),
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Entries delivered and removed.
    pub delivered: usize,
    /// Entries moved to `failed/` (refused, unreadable, or too old).
    pub failed: usize,
    /// Entries deliberately not sent, moved to `failed/` for the record ([`Outcome::Dropped`]).
    pub dropped: usize,
    /// Entries still queued afterwards (not attempted, or still retryable).
    pub remaining: usize,
    /// Another process held the flush lock; nothing was attempted.
    pub busy: bool,
    /// The last retryable reason, when the flush stopped early.
    pub stopped: Option<String>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Spool {
    /// The spool for `handler` under `spool_dir` (`None`: [`DEFAULT_SPOOL_DIR`], falling back to
    /// the per-user directory with a notice). The directory is created.
    ///
    /// Errors: an explicit directory that cannot be created or written, or no usable directory.
    pub fn open(handler: &str, spool_dir: Option<&Path>) -> anyhow::Result<(Spool, Option<String>)> {
        let Chosen { dir, fallback_notice } =
            files::choose_dir("spool dir", "--spool-dir", spool_dir, Path::new(DEFAULT_SPOOL_DIR), "pagerpipe/spool", handler)?;
        Ok((Spool { dir }, fallback_notice))
    }

    /// A spool in exactly `dir` (created if missing, and checked for writing).
    pub fn at(dir: PathBuf) -> anyhow::Result<Spool> {
        files::ensure_writable(&dir, "spool dir")?;
        Ok(Spool { dir })
    }

    /// The directory holding the entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `entry` durably; returns its file name (which names neither the key nor a secret).
    ///
    /// Errors: the file cannot be written and synced (the caller must then keep the event
    /// elsewhere: pagerpipe prints it to stderr).
    pub fn push(&self, entry: &Entry) -> anyhow::Result<String> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("{nanos:020}-{}-{seq:03}-{:016x}.json", std::process::id(), key_hash(&entry.incident_key));
        let mut bytes = serde_json::to_vec_pretty(entry)?;
        bytes.push(b'\n');
        files::write_atomic(&self.dir.join(&name), &bytes, false, Durability::Durable)?;
        Ok(name)
    }

    /// Names of the queued entries, oldest first.
    ///
    /// Errors: the directory cannot be listed.
    pub fn queued(&self) -> anyhow::Result<Vec<String>> {
        let mut names = Vec::new();
        let listing = fs::read_dir(&self.dir).map_err(|e| anyhow::anyhow!("cannot list spool dir {}: {e}", self.dir.display()))?;
        for item in listing {
            let item = item.map_err(|e| anyhow::anyhow!("cannot list spool dir {}: {e}", self.dir.display()))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if is_entry_name(&name) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// How many queued entries belong to `incident_key`.
    pub fn queued_for(&self, incident_key: &str) -> anyhow::Result<usize> {
        let suffix = format!("-{:016x}.json", key_hash(incident_key));
        Ok(self.queued()?.iter().filter(|n| n.ends_with(&suffix)).count())
    }

    /// Deliver queued entries oldest first until `deadline`, through `deliver`.
    ///
    /// - The flush lock is taken first: with `wait: false` a held lock means another flush is
    ///   running and nothing is done ([`Report::busy`]); with `wait: true` it is awaited until
    ///   the deadline.
    /// - Entries older than `max_age` (by [`Entry::created`] against `now`, Unix seconds) move to
    ///   `failed/`, reported through `notice`; unreadable entries too.
    /// - [`Outcome::Retry`] stops the flush; [`Outcome::Wait`] holds back that incident's later
    ///   entries only. Entries not reached stay queued.
    ///
    /// Errors: the directory cannot be listed, or a delivered entry cannot be removed (the
    /// flush stops rather than risk delivering it twice).
    pub fn flush(
        &self,
        deadline: Instant,
        wait: bool,
        max_age: Duration,
        now: u64,
        notice: &mut dyn FnMut(String),
        deliver: &mut dyn FnMut(&Entry) -> Outcome,
    ) -> anyhow::Result<Report> {
        let lock_path = self.dir.join(".flush.lock");
        let lock = files::open_lock_or_move_aside(&lock_path, notice)?;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if wait && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    let remaining = self.queued()?.len();
                    return Ok(Report { busy: true, remaining, ..Report::default() });
                }
                Err(fs::TryLockError::Error(e)) => anyhow::bail!("cannot lock {}: {e}", lock_path.display()),
            }
        }
        let result = self.flush_locked(deadline, max_age, now, notice, deliver);
        let _ = File::unlock(&lock);
        result
    }

    fn flush_locked(
        &self,
        deadline: Instant,
        max_age: Duration,
        now: u64,
        notice: &mut dyn FnMut(String),
        deliver: &mut dyn FnMut(&Entry) -> Outcome,
    ) -> anyhow::Result<Report> {
        let mut report = Report::default();
        let mut held: HashSet<String> = HashSet::new();
        for name in self.queued()? {
            let hash = key_hash_of_name(&name).to_string();
            if report.stopped.is_some() || held.contains(&hash) || Instant::now() >= deadline {
                report.remaining += 1;
                continue;
            }
            let path = self.dir.join(&name);
            let mut entry = match files::read_regular(&path, MAX_ENTRY_BYTES) {
                Ok(bytes) => match serde_json::from_slice::<Entry>(&bytes) {
                    Ok(e) => e,
                    Err(e) => {
                        // Keep the bytes for a human; they cannot be delivered.
                        match files::move_aside(&self.dir, &name, FAILED_DIR) {
                            Ok(aside) => notice(format!("spool entry {name} is unreadable ({e}); moved to {}", aside.display())),
                            Err(me) => notice(format!("spool entry {name} is unreadable ({e}); left in place: {me:#}")),
                        }
                        report.failed += 1;
                        continue;
                    }
                },
                // Delivered by a flush that held the lock before us and has just released it.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                // A FIFO, directory or symlink named like an entry: never read, opened or
                // followed; moved aside, and the entries behind it go on.
                Err(e) if files::not_regular(&e).is_some() => {
                    match files::move_aside(&self.dir, &name, FAILED_DIR) {
                        Ok(to) => notice(format!("spool entry {name} {e}; moved to {}", to.display())),
                        Err(me) => notice(format!("spool entry {name} {e}; left in place: {me:#}")),
                    }
                    report.failed += 1;
                    continue;
                }
                // Unreadable (another user's entry, an I/O error): skipped, this incident's
                // later entries held back to keep their order, the others go on.
                Err(e) => {
                    notice(format!("cannot read spool entry {}: {e}; skipped", path.display()));
                    held.insert(hash);
                    report.remaining += 1;
                    continue;
                }
            };
            let age = now.saturating_sub(entry.created);
            if age > max_age.as_secs() {
                let why = format!(
                    "not delivered within spool_max_age ({}): {} {} from {} given up",
                    humantime::format_duration(max_age),
                    entry.action,
                    entry.incident_key,
                    crate::clock::rfc3339(entry.created)
                );
                let moved = self.fail(&name, &mut entry, &why)?;
                notice(format!("{why}; moved to {}", moved.display()));
                report.failed += 1;
                continue;
            }
            match deliver(&entry) {
                Outcome::Delivered => {
                    fs::remove_file(&path).map_err(|e| {
                        anyhow::anyhow!("delivered spool entry {} but cannot remove it: {e}", path.display())
                    })?;
                    files::sync_dir(&self.dir)?;
                    report.delivered += 1;
                }
                Outcome::Failed(why) => {
                    self.fail(&name, &mut entry, &why)?;
                    report.failed += 1;
                }
                Outcome::Dropped(why) => {
                    self.fail(&name, &mut entry, &why)?;
                    report.dropped += 1;
                }
                Outcome::Retry(why) => {
                    entry.attempts += 1;
                    // Best effort: the attempt count is informational.
                    if let Ok(mut bytes) = serde_json::to_vec_pretty(&entry) {
                        bytes.push(b'\n');
                        let _ = files::write_atomic(&path, &bytes, true, Durability::Volatile);
                    }
                    report.remaining += 1;
                    report.stopped = Some(why);
                }
                Outcome::Wait(_) => {
                    held.insert(hash);
                    report.remaining += 1;
                }
            }
        }
        Ok(report)
    }

    /// Move entry `name` to `failed/` with `why`; returns where it went.
    fn fail(&self, name: &str, entry: &mut Entry, why: &str) -> anyhow::Result<PathBuf> {
        let failed_dir = self.dir.join(FAILED_DIR);
        files::ensure_writable(&failed_dir, "spool failed dir")?;
        entry.failure = Some(why.to_string());
        let mut bytes = serde_json::to_vec_pretty(entry)?;
        bytes.push(b'\n');
        let to = failed_dir.join(name);
        files::write_atomic(&to, &bytes, true, Durability::Durable)?;
        let from = self.dir.join(name);
        fs::remove_file(&from).map_err(|e| anyhow::anyhow!("cannot remove {} after moving it to failed/: {e}", from.display()))?;
        files::sync_dir(&self.dir)?;
        Ok(to)
    }

    /// Names of the entries in `failed/`, oldest first (empty when there is none).
    pub fn failed(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.join(FAILED_DIR))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_entry_name(n))
            .collect();
        names.sort();
        names
    }
}

/// The hash of an incident key as it appears in entry names.
pub fn key_hash(incident_key: &str) -> u64 {
    fnv1a(incident_key.as_bytes())
}

fn key_hash_of_name(name: &str) -> &str {
    name.trim_end_matches(".json").rsplit('-').next().unwrap_or("")
}

fn is_entry_name(name: &str) -> bool {
    name.ends_with(".json") && name.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(key: &str, action: &str, created: u64) -> Entry {
        Entry {
            handler: "pagerduty".into(),
            incident_key: key.into(),
            action: action.into(),
            created,
            request: Request::post_json("http://127.0.0.1:9/v2/enqueue", json!({"dedup_key": key, "event_action": action})),
            secrets: vec!["0123456789abcdef0123456789abcdef".into()],
            fill: BTreeMap::new(),
            attempts: 0,
            failure: None,
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn names_sort_in_creation_order_and_hide_key_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        let a = spool.push(&entry("web-01/disk", "trigger", 1)).unwrap();
        let b = spool.push(&entry("web-01/disk", "resolve", 2)).unwrap();
        assert!(a < b);
        assert!(!a.contains("web") && !a.contains("0123456789abcdef"));
        assert_eq!(spool.queued().unwrap(), vec![a, b]);
        assert_eq!(spool.queued_for("web-01/disk").unwrap(), 2);
        assert_eq!(spool.queued_for("db-01/disk").unwrap(), 0);
    }

    #[test]
    fn flush_delivers_in_order_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        spool.push(&entry("k", "trigger", 10)).unwrap();
        spool.push(&entry("k", "resolve", 11)).unwrap();
        let mut seen = Vec::new();
        let report = spool
            .flush(far(), false, DEFAULT_MAX_AGE, 12, &mut |_| {}, &mut |e| {
                seen.push(e.action.clone());
                Outcome::Delivered
            })
            .unwrap();
        assert_eq!(seen, ["trigger", "resolve"]);
        assert_eq!(report, Report { delivered: 2, ..Report::default() });
        assert!(spool.queued().unwrap().is_empty());
    }

    #[test]
    fn retry_stops_the_flush_and_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        spool.push(&entry("a", "trigger", 10)).unwrap();
        spool.push(&entry("b", "trigger", 10)).unwrap();
        let mut calls = 0;
        let report = spool
            .flush(far(), false, DEFAULT_MAX_AGE, 12, &mut |_| {}, &mut |_| {
                calls += 1;
                Outcome::Retry("connection refused".into())
            })
            .unwrap();
        assert_eq!(calls, 1);
        assert_eq!(report.remaining, 2);
        assert_eq!(report.stopped.as_deref(), Some("connection refused"));
        let first = &spool.queued().unwrap()[0];
        let stored: Entry = serde_json::from_slice(&fs::read(dir.path().join(first)).unwrap()).unwrap();
        assert_eq!(stored.attempts, 1);
    }

    #[test]
    fn wait_holds_back_only_that_incident() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        spool.push(&entry("a", "trigger", 10)).unwrap();
        spool.push(&entry("b", "trigger", 10)).unwrap();
        spool.push(&entry("a", "resolve", 11)).unwrap();
        let mut seen = Vec::new();
        let report = spool
            .flush(far(), false, DEFAULT_MAX_AGE, 12, &mut |_| {}, &mut |e| {
                seen.push(format!("{} {}", e.incident_key, e.action));
                if e.incident_key == "a" { Outcome::Wait("not yet".into()) } else { Outcome::Delivered }
            })
            .unwrap();
        assert_eq!(seen, ["a trigger", "b trigger"], "a's resolve must not overtake its trigger");
        assert_eq!((report.delivered, report.remaining), (1, 2));
    }

    #[test]
    fn refused_and_expired_entries_move_to_failed_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        spool.push(&entry("old", "trigger", 0)).unwrap();
        spool.push(&entry("bad", "trigger", 100_000)).unwrap();
        let mut notices = Vec::new();
        let report = spool
            .flush(far(), false, DEFAULT_MAX_AGE, 100_001, &mut |n| notices.push(n), &mut |_| {
                Outcome::Failed("HTTP 400: invalid".into())
            })
            .unwrap();
        assert_eq!(report.failed, 2);
        assert!(spool.queued().unwrap().is_empty());
        assert_eq!(notices.len(), 1);
        assert!(notices[0].contains("spool_max_age"), "{}", notices[0]);
        let failed = spool.failed();
        assert_eq!(failed.len(), 2);
        let reasons: Vec<String> = failed
            .iter()
            .map(|n| {
                let e: Entry = serde_json::from_slice(&fs::read(dir.path().join(FAILED_DIR).join(n)).unwrap()).unwrap();
                e.failure.unwrap()
            })
            .collect();
        assert!(reasons.iter().any(|r| r.contains("spool_max_age")));
        assert!(reasons.iter().any(|r| r == "HTTP 400: invalid"));
    }

    #[test]
    fn a_held_lock_makes_a_non_waiting_flush_busy() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        spool.push(&entry("k", "trigger", 10)).unwrap();
        let holder = File::create(dir.path().join(".flush.lock")).unwrap();
        holder.lock().unwrap();
        let report = spool.flush(far(), false, DEFAULT_MAX_AGE, 10, &mut |_| {}, &mut |_| Outcome::Delivered).unwrap();
        assert!(report.busy);
        assert_eq!(report.remaining, 1);
        holder.unlock().unwrap();
    }

    #[test]
    fn unreadable_entry_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        fs::write(dir.path().join("00000000000000000001-1-000-0000000000000001.json"), "{truncated").unwrap();
        let mut notices = Vec::new();
        let report = spool.flush(far(), false, DEFAULT_MAX_AGE, 10, &mut |n| notices.push(n), &mut |_| Outcome::Delivered).unwrap();
        assert_eq!(report.failed, 1);
        assert_eq!(spool.failed().len(), 1);
        assert!(notices[0].contains("unreadable"));
    }
}
