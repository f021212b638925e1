//! The spool: the tail of each incident's log that has not reached the service yet.
//!
//! The network is often down *because* of the incident being reported, so a request that is
//! still retryable when the invocation's deadline runs out is not dropped: what it needs is
//! written here, one file per request, and the handler exits 75. Every later invocation
//! delivers older entries first (its own incident's under the incident's hold; others within
//! a share of its deadline), and `--flush` delivers everything it can (for a cron job or the
//! packaged systemd timer). The delivery loop, which knows the ledger and the providers, is
//! `pipeline::flush`; this module is the storage.
//!
//! An [`Entry`] holds no URL and no credential: the provider's typed payload (a PagerDuty
//! event without its routing key, a Twilio call's `To`/`From`/`Twiml` or a whole Twilio
//! sequential run, a Reactio message) and
//! the event's own settings overrides, so that a flush builds the request from the settings in
//! force then (base URL, credentials, proxy, CA). Only an entry whose event carried a
//! credential itself (a Zabbix `{ALERT.SENDTO}` routing key) is written readable by its owner
//! alone (0600); the others are 0640. Each user's flush delivers only the entries it owns
//! ([`Spool::list`]): an entry says whom to call and what to say, and is sent with the
//! flushing user's credentials, so one written by another member of the group is never sent.
//!
//! Layout of `<spool_dir>/<handler>/` (default `/var/spool/pagerpipe/<handler>`, falling back
//! to `$XDG_STATE_HOME/pagerpipe/spool/<handler>` like the state store):
//!
//! - `<created ns, 20 digits>-<pid>-<seq>-<FNV-1a of the incident key, 16 hex>.json`: one
//!   entry, written with [`files::write_atomic`] (fsynced). Names sort in creation order and
//!   carry a hash of the incident key, never a credential or the key itself.
//! - `failed/<same name>`: entries refused for good, superseded, or older than
//!   `spool_max_age` (default 24 h), with [`Entry::failure`] saying why. Nothing there is
//!   retried; an operator reads it.
//!
//! Anything in the directory that is not a regular file named like an entry (a FIFO, a
//! directory, a symlink planted by another member of the group) is never opened: it is
//! reported once per listing and passed over, so one bad name never stops the entries behind it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::files::{self, Chosen, Durability};
use crate::filter::Action;
use crate::outcome::Fate;
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
    /// Handler that spooled it (`pagerduty`, `twilio`, `reactio`, `slack`).
    pub handler: String,
    /// The incident key the request belongs to (order is kept per key).
    pub incident_key: String,
    /// The action it carries out.
    pub action: Action,
    /// Status word of the event (`critical` …), for the ledger's repeat rule.
    pub severity: String,
    /// The event's own time, Unix seconds (the ledger's order).
    pub event_time: u64,
    /// The source's sequence number of the event within that second (the ledger's order:
    /// [`crate::state::is_later`]); absent in entries of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<u64>,
    /// Where `event_time` comes from ([`crate::state::applied_after`]); absent for the event's
    /// own time, and in entries of earlier versions.
    #[serde(default, skip_serializing_if = "crate::state::TimeOrigin::is_event")]
    pub time_origin: crate::state::TimeOrigin,
    /// The invocation that spooled it (the ledger's `token`).
    pub token: String,
    /// When it was spooled, Unix seconds (`PAGERPIPE_NOW` applies); `spool_max_age` counts
    /// from here.
    pub created: u64,
    /// The settings overrides the event carried for this handler (a `pager_team` from a check
    /// annotation, a Zabbix `SENDTO`), laid over the settings in force at delivery.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub overrides: Map<String, Value>,
    /// References an earlier request of the incident brought back when a flush delivered it (a
    /// war room's channel and alert `ts`, a Reactio incident id), kept with the requests queued
    /// behind it for whichever process delivers them next: one that cannot read them from the
    /// ledger (Redis down, its write refused) would refuse them for want of the channel or id.
    /// At delivery they fill in what the ledger's references lack.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub refs: Map<String, Value>,
    /// The provider's payload (`Provider::Payload`), as JSON.
    pub payload: Value,
    /// A run's progress notes (Twilio's sequential calls: [`crate::state::Progress`]), kept
    /// with its entry as well as in the incident's record, and rewritten as the run goes on:
    /// the spool is there whenever the entry is, where the ledger may not be (Redis down, a
    /// state directory that cannot be written), and a flush that carries the run on from
    /// these notes never calls the first person again while their phone still rings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<crate::state::Progress>,
    /// Whether an earlier attempt may have reached the service.
    #[serde(default)]
    pub fate: Fate,
    /// Set (before it went out) when a flush sent it noted in flight in its incident's record
    /// ([`crate::state::note_inflight`]), as a request that turns the incident over, and kept
    /// while that note stands for it. Read back, it is a request of unknown fate (the flush may
    /// have been killed after the service acted on it). Whoever holds the incident next on
    /// another host, which cannot see this spool, takes the note and sends its own copy of the
    /// request; once the record holds that action applied (the same [`Entry::token`] and
    /// action), this entry was delivered, by that copy or by the killed flush itself, which had
    /// recorded it: it is removed, not sent a third time. Absent (false) in entries of earlier
    /// versions and in those never so noted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub noted_in_flight: bool,
    /// A CUSTOM notification mapped to `trigger` ([`crate::state::Proposal::custom`]): not
    /// suppressed as a repeat at its flush either. Absent (false) in entries of earlier versions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub custom: bool,
    /// Delivery attempts made so far by flushes.
    #[serde(default)]
    pub attempts: u32,
    /// Why it is in `failed/` (absent in the queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The owner of a directory entry (not followed) when it is not this process's effective user.
#[cfg(unix)]
fn foreign_owner(item: &fs::DirEntry) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let uid = item.metadata().ok()?.uid();
    (uid != rustix::process::geteuid().as_raw()).then_some(uid)
}

#[cfg(not(unix))]
fn foreign_owner(_item: &fs::DirEntry) -> Option<u32> {
    None
}

/// A spool directory for one handler.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

/// What a listing found besides entries: names that are not regular files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// Entry names, oldest first.
    pub names: Vec<String>,
    /// One line per name passed over (not a regular file), for the log.
    pub passed_over: Vec<String>,
    /// One line per entry another user owns, left for that user's flush (for a debug line).
    pub others: Vec<String>,
}

impl Listing {
    /// The entry names of `incident_key`, oldest first: those whose name carries its key hash
    /// (another incident's key may share the hash: read the entry to be sure).
    pub fn names_for<'a>(&'a self, incident_key: &str) -> impl Iterator<Item = &'a String> {
        let hash = format!("{:016x}", key_hash(incident_key));
        self.names.iter().filter(move |n| key_hash_of_name(n) == hash)
    }
}

/// A flush's claim on one incident's spooled entries ([`Spool::claim`]): an exclusive `flock`
/// on a lock file that is removed when the claim is dropped, so that no lock file outlives
/// its use.
///
/// The protocol that makes removal safe: after the lock is taken, the path must still name
/// the file that was locked (same device and inode); if another process removed it in between,
/// the lock is on an orphan and is taken again on the new file. Removal happens while the lock
/// is held, so whoever locks next finds either the old file (and notices) or a new one.
pub struct Claim {
    path: PathBuf,
    /// Held for the lock; closed (releasing it) after the drop removed the path.
    _file: fs::File,
}

impl Drop for Claim {
    /// Removes the lock file, then the lock goes with the file's descriptor (closed after
    /// this, as the field is dropped): whoever waited on it finds the path gone or new.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
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

    /// The spool [`Spool::open`] would open, found without creating anything (for
    /// `--explain`); its directory may not exist.
    pub fn find(handler: &str, spool_dir: Option<&Path>) -> Spool {
        Spool { dir: files::find_dir(spool_dir, Path::new(DEFAULT_SPOOL_DIR), "pagerpipe/spool", handler) }
    }

    /// A spool in exactly `dir` (created if missing, and checked for writing).
    ///
    /// Errors: the directory cannot be created or written.
    pub fn at(dir: PathBuf) -> anyhow::Result<Spool> {
        files::ensure_writable(&dir, "spool dir")?;
        Ok(Spool { dir })
    }

    /// The directory holding the entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `entry` durably; returns its file name (which names neither the key nor a
    /// secret). `private`: readable by the owner only (the entry holds a credential).
    ///
    /// Errors: the file cannot be written and synced (the caller must then keep the event
    /// elsewhere: pagerpipe prints it to stderr).
    pub fn push(&self, entry: &Entry, private: bool) -> anyhow::Result<String> {
        self.push_at(entry, private, SystemTime::now())
    }

    /// [`Spool::push`], the entry placed in the queue as if written `at` (its name sorts by
    /// it): a request of unknown fate takes the place in its incident's log of when its
    /// delivery began, ahead of what queued behind that delivery while it was in flight.
    ///
    /// Errors: as [`Spool::push`].
    pub fn push_at(&self, entry: &Entry, private: bool, at: SystemTime) -> anyhow::Result<String> {
        let nanos = at.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("{nanos:020}-{}-{seq:03}-{:016x}.json", std::process::id(), key_hash(&entry.incident_key));
        let mut bytes = serde_json::to_vec_pretty(entry)?;
        bytes.push(b'\n');
        let path = self.dir.join(&name);
        // Created with its final mode: never readable by the group, not even for a moment.
        files::write_atomic_mode(&path, &bytes, false, Durability::Durable, files::mode_for(private))?;
        Ok(name)
    }

    /// The queued entries, oldest first, and what was passed over (moved to `failed/`).
    ///
    /// Errors: the directory cannot be listed.
    pub fn list(&self) -> anyhow::Result<Listing> {
        self.listing(true)
    }

    /// [`Spool::list`] for a reader that must change nothing (`--explain`): what is not a
    /// regular file is passed over where it is, not moved to `failed/`.
    ///
    /// Errors: the directory cannot be listed.
    pub fn peek(&self) -> anyhow::Result<Listing> {
        self.listing(false)
    }

    /// The listing; `tidy`: move what is not a regular file to `failed/`.
    fn listing(&self, tidy: bool) -> anyhow::Result<Listing> {
        let mut listing = Listing::default();
        let read = fs::read_dir(&self.dir).map_err(|e| anyhow::anyhow!("cannot list spool dir {}: {e}", self.dir.display()))?;
        for item in read {
            let item = item.map_err(|e| anyhow::anyhow!("cannot list spool dir {}: {e}", self.dir.display()))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if !is_entry_name(&name) {
                continue;
            }
            // DirEntry::file_type does not follow symlinks. Anything but a regular file is never
            // opened: it is moved to failed/ (a rename of the entry itself), once.
            match item.file_type() {
                // An entry is delivered with the credentials and settings of the user who
                // flushes it, and its payload says whom to call and what to say: one another
                // member of the group wrote (or planted) is left for that member's own flush,
                // never sent with this user's credentials. (The file's owner is the one thing
                // in a shared 2775 directory another member cannot forge.)
                Ok(t) if t.is_file() => match foreign_owner(&item) {
                    None => listing.names.push(name),
                    Some(uid) => listing.others.push(format!(
                        "spool: {} belongs to another user (uid {uid}); left for that user's flush",
                        self.dir.join(&name).display()
                    )),
                },
                Ok(t) if !tidy => listing.passed_over.push(format!(
                    "spool: {} is a {}, not a spool entry; passed over (a delivering run moves it to {FAILED_DIR}/)",
                    self.dir.join(&name).display(),
                    kind(&t)
                )),
                Ok(t) => listing.passed_over.push(match files::move_aside(&self.dir, &name, FAILED_DIR) {
                    Ok(to) => {
                        format!("spool: {} is a {}, not a spool entry; moved to {}", self.dir.join(&name).display(), kind(&t), to.display())
                    }
                    Err(e) => {
                        format!("spool: {} is a {}, not a spool entry; passed over ({e:#})", self.dir.join(&name).display(), kind(&t))
                    }
                }),
                Err(e) => listing.passed_over.push(format!("spool: cannot read the type of {name}: {e}; passed over")),
            }
        }
        listing.names.sort();
        Ok(listing)
    }

    /// A claim on the entries of `incident_key` for one flush, when no ledger hold covers the
    /// incident (no state store, or the store failed): an exclusive `flock` on
    /// `claim-<key hash>.lock` in the spool directory, taken without waiting, removed when
    /// released (dropped). Without it two flushes (the minute timer's and an event's own, or
    /// two overlapping `--flush`) would each carry on the same entry: a Twilio sequential run
    /// calling its first person twice. `Ok(None)`: another process holds the claim; its
    /// entries are left queued. A lock path that is not a regular file is moved aside,
    /// reported through `notice`. (Incidents whose keys share a hash share a claim: one waits
    /// for the other's flush, nothing more.)
    ///
    /// Errors: the lock file cannot be opened or locked.
    pub fn claim(&self, incident_key: &str, notice: &mut dyn FnMut(String)) -> anyhow::Result<Option<Claim>> {
        let path = self.dir.join(format!("claim-{:016x}.lock", key_hash(incident_key)));
        loop {
            let lock = files::open_lock_or_move_aside(&path, notice)?;
            match lock.file().try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(e)) => anyhow::bail!("cannot lock {}: {e}", path.display()),
            }
            if lock.still_at(&path) {
                return Ok(Some(Claim { path, _file: lock.into_file() }));
            }
        }
    }

    /// Names of the queued entries, oldest first.
    ///
    /// Errors: the directory cannot be listed.
    pub fn queued(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.list()?.names)
    }

    /// Names of the queued entries of `incident_key`, oldest first.
    ///
    /// Errors: the directory cannot be listed.
    pub fn queued_for(&self, incident_key: &str) -> anyhow::Result<Vec<String>> {
        Ok(self.list()?.names_for(incident_key).cloned().collect())
    }

    /// Read entry `name`: `Ok(None)` when it is gone (delivered by another process), `Err`
    /// with the reason when it cannot be read or parsed (see [`Spool::fail_unreadable`]). Only
    /// a regular file is opened, never through a symlink, and never a FIFO (which would block).
    pub fn read(&self, name: &str) -> Result<Option<Entry>, String> {
        let path = self.dir.join(name);
        let bytes = match files::read_regular(&path, MAX_ENTRY_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_slice::<Entry>(&bytes).map(Some).map_err(|e| format!("{name} is not a spool entry of this version ({e})"))
    }

    /// Remove entry `name` after its delivery.
    ///
    /// Errors: it cannot be removed (the caller stops rather than risk delivering it twice).
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => files::sync_dir(&self.dir),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(anyhow::anyhow!("delivered spool entry {} but cannot remove it: {e}", path.display())),
        }
    }

    /// Store `entry` again under `name` (attempts and fate after a failed try). Best effort.
    /// An entry no longer there (delivered meanwhile by a process that had the incident's hold,
    /// when this one could not take it) is left gone: written again, it would go out twice.
    pub fn rewrite(&self, name: &str, entry: &Entry) {
        let _ = self.try_rewrite(name, entry, Durability::Volatile);
    }

    /// [`Spool::rewrite`], saying whether it worked, written with `durability` (a run's
    /// progress notes: [`Durability::Durable`], as they are what stops a phone being rung twice).
    ///
    /// Errors: the entry is no longer there (it is not written again), or it cannot be written.
    pub fn try_rewrite(&self, name: &str, entry: &Entry, durability: Durability) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        if fs::symlink_metadata(&path).is_err() {
            anyhow::bail!("spool entry {} is gone", path.display());
        }
        let mut bytes = serde_json::to_vec_pretty(entry)?;
        bytes.push(b'\n');
        files::write_atomic_mode(&path, &bytes, true, durability, files::mode_for(is_private(&path)))
    }

    /// Move entry `name` to `failed/` with `why`; returns where it went. When the copy with
    /// `why` cannot be written (a full disk), the entry is renamed there as it is, which needs
    /// no room: `why` is then only in the caller's log line, and the entry leaves the queue all
    /// the same (left there, a refused request would be sent again by every flush).
    ///
    /// Errors: `failed/` cannot be created (or is not a directory), or the entry can neither be
    /// written there nor renamed there, or cannot be removed from the queue.
    pub fn fail(&self, name: &str, entry: &mut Entry, why: &str) -> anyhow::Result<PathBuf> {
        let failed_dir = self.failed_dir()?;
        entry.failure = Some(why.to_string());
        let mut bytes = serde_json::to_vec_pretty(entry)?;
        bytes.push(b'\n');
        let to = failed_dir.join(name);
        let mode = files::mode_for(is_private(&self.dir.join(name)));
        if let Err(e) = files::write_atomic_mode(&to, &bytes, true, Durability::Durable, mode) {
            let moved = files::move_aside(&self.dir, name, FAILED_DIR)
                .map_err(|re| anyhow::anyhow!("{e:#}; nor can it be moved there as it is: {re:#}"))?;
            // Best effort: lost in a crash, the entry is back in the queue and refused once more.
            let _ = files::sync_dir(&self.dir);
            return Ok(moved);
        }
        let from = self.dir.join(name);
        fs::remove_file(&from).map_err(|e| anyhow::anyhow!("cannot remove {} after moving it to failed/: {e}", from.display()))?;
        files::sync_dir(&self.dir)?;
        Ok(to)
    }

    /// Move an entry that cannot be read or parsed to `failed/` as it is (the bytes are kept
    /// for a human); returns where it went.
    ///
    /// Errors: as [`Spool::fail`].
    pub fn fail_unreadable(&self, name: &str) -> anyhow::Result<PathBuf> {
        self.failed_dir()?;
        files::move_aside(&self.dir, name, FAILED_DIR)
    }

    /// `failed/`, created when missing; refused when it is anything but a directory (a
    /// symlink planted there is never followed).
    fn failed_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self.dir.join(FAILED_DIR);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(dir),
            Ok(m) => anyhow::bail!("{} is a {}, not a directory: remove it", dir.display(), kind(&m.file_type())),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                files::ensure_writable(&dir, "spool failed dir")?;
                Ok(dir)
            }
            Err(e) => anyhow::bail!("cannot read {}: {e}", dir.display()),
        }
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

/// Whether the file at `path` is readable by its owner only.
fn is_private(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::symlink_metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// A file type in words, for messages.
fn kind(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
    }
    if t.is_symlink() {
        "symlink"
    } else if t.is_dir() {
        "directory"
    } else {
        "file of another kind"
    }
}

/// The hash of an incident key as it appears in entry names.
pub fn key_hash(incident_key: &str) -> u64 {
    fnv1a(incident_key.as_bytes())
}

/// The key-hash part of an entry name.
pub fn key_hash_of_name(name: &str) -> &str {
    name.trim_end_matches(".json").rsplit('-').next().unwrap_or("")
}

fn is_entry_name(name: &str) -> bool {
    name.ends_with(".json") && name.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// A spooled request for unit tests: PagerDuty's, of `key`, its event and spool time `created`,
/// not sent yet.
#[cfg(test)]
pub(crate) fn sample(key: &str, action: Action, created: u64) -> Entry {
    Entry {
        time_origin: crate::state::TimeOrigin::Event,
        handler: "pagerduty".into(),
        incident_key: key.into(),
        action,
        severity: "critical".into(),
        event_time: created,
        event_seq: None,
        token: "t".into(),
        created,
        overrides: Map::new(),
        refs: Map::new(),
        payload: serde_json::json!({"dedup_key": key}),
        fate: Fate::NotSent,
        noted_in_flight: false,
        custom: false,
        attempts: 0,
        failure: None,
        progress: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, action: Action, created: u64) -> Entry {
        sample(key, action, created)
    }

    #[test]
    fn names_sort_in_creation_order_and_hide_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        let a = spool.push(&entry("web-01/disk", Action::Trigger, 1), false).unwrap();
        let b = spool.push(&entry("web-01/disk", Action::Resolve, 2), false).unwrap();
        assert!(a < b);
        assert!(!a.contains("web"));
        assert_eq!(spool.queued().unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(spool.queued_for("web-01/disk").unwrap(), vec![a.clone(), b]);
        assert!(spool.queued_for("db-01/disk").unwrap().is_empty());
        assert_eq!(spool.read(&a).unwrap().unwrap().action, Action::Trigger);
        spool.remove(&a).unwrap();
        assert_eq!(spool.read(&a), Ok(None));
    }

    #[cfg(unix)]
    #[test]
    fn private_entries_are_owner_only_and_stay_so_in_failed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        let open = spool.push(&entry("a", Action::Trigger, 1), false).unwrap();
        let private = spool.push(&entry("b", Action::Trigger, 1), true).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(&open)), 0o640);
        assert_eq!(mode(&dir.path().join(&private)), 0o600);
        let mut e = spool.read(&private).unwrap().unwrap();
        let to = spool.fail(&private, &mut e, "HTTP 400").unwrap();
        assert_eq!(mode(&to), 0o600);
    }

    #[test]
    fn an_entry_delivered_meanwhile_is_not_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        let name = spool.push(&entry("a", Action::Trigger, 1), false).unwrap();
        let mut e = spool.read(&name).unwrap().unwrap();
        e.attempts += 1;
        spool.rewrite(&name, &e);
        assert_eq!(spool.read(&name).unwrap().map(|e| e.attempts), Some(e.attempts), "rewritten while it is there");
        spool.remove(&name).unwrap();
        spool.rewrite(&name, &e);
        assert!(spool.read(&name).unwrap().is_none(), "a delivered entry comes back");
        assert!(spool.list().unwrap().names.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn fifos_directories_and_symlinks_are_passed_over_and_failed_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        let good = spool.push(&entry("a", Action::Trigger, 1), false).unwrap();
        let fifo = dir.path().join("00000000000000000000-1-000-0000000000000001.json");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o644), 0).unwrap();
        fs::create_dir(dir.path().join("00000000000000000001-1-000-0000000000000002.json")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("00000000000000000002-1-000-0000000000000003.json")).unwrap();
        let listing = spool.list().unwrap();
        assert_eq!(listing.names, vec![good.clone()]);
        assert_eq!(listing.passed_over.len(), 3, "{:?}", listing.passed_over);
        assert_eq!(spool.failed().len(), 3, "moved aside, once");
        assert!(spool.list().unwrap().passed_over.is_empty());
        fs::remove_dir_all(dir.path().join(FAILED_DIR)).unwrap();
        // A planted `failed` symlink is refused, not followed.
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(FAILED_DIR)).unwrap();
        let mut e = spool.read(&good).unwrap().unwrap();
        assert!(spool.fail(&good, &mut e, "x").is_err());
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[test]
    fn unreadable_entries_are_reported_and_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path().to_path_buf()).unwrap();
        let name = "00000000000000000001-1-000-0000000000000001.json";
        fs::write(dir.path().join(name), "{truncated").unwrap();
        assert!(spool.read(name).is_err());
        spool.fail_unreadable(name).unwrap();
        assert_eq!(spool.failed(), vec![name.to_string()]);
        assert!(spool.queued().unwrap().is_empty());
    }
}
