//! The file state store: one JSON file per key under `<state_dir>/<handler>/`.
//!
//! One record file per key, and a lock byte of its own per key, keep unrelated incidents from
//! contending for one lock during a storm.
//!
//! - `<name>.json`: the record, replaced by an atomic rename ([`files::write_atomic`]), so a
//!   reader sees the old record or the new one, never half of either. Durable writes fsync the
//!   file and the directory; volatile ones (stop requests, rate counters) skip both. A record
//!   with an expiry (a closed incident) carries it in `"_expires"` (Unix seconds) and reads as
//!   absent afterwards; the next update removes it.
//! - `.locks-<euid>`: the locks of this user's invocations, one byte per incident and lock
//!   (module `locks`). An update takes the record's lock for the read-modify-write only
//!   (microseconds); the incident's [`Hold`] — held for a whole delivery — is another byte, so
//!   that an update (a stop request, a record written) never waits for a delivery. The kernel
//!   releases both when their holder dies: a killed handler never leaves an incident held.
//!   No file is created or removed per incident for its locks.
//!
//! A record that cannot be parsed is renamed to `<name>.json.corrupt-<unix secs>` and reported
//! through [`Store::take_notices`]; the key then starts afresh.

use std::cell::RefCell;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::locks::{ByteLock, Locks, Slot};
use super::{Expiry, Hold, Store, percent_decode};
use crate::clock;
use crate::files::{self, Durability};

/// Default state directory for system installs.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pagerpipe";

/// Field of a stored record holding its expiry time (Unix seconds).
const EXPIRES: &str = "_expires";

/// How long an update waits for a record's lock by default: a record's lock is held for
/// microseconds, so a lock held this long is held by a stuck process, or on purpose by a
/// member of the group; the update then fails and the caller delivers without dedup.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(5);

/// The least an update waits for a record's lock, even past the deadline (recording after a
/// long delivery): a briefly held lock is still waited for a moment.
pub const MIN_LOCK_WAIT: Duration = Duration::from_millis(250);

/// Largest record read, in bytes (1 MiB); a larger one is refused as unreadable.
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// A state store rooted at one directory.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    /// This user's lock file in `dir`.
    locks: Locks,
    /// When record-lock waits give up (`None`: [`DEFAULT_LOCK_WAIT`] from each wait's start).
    lock_deadline: Option<Instant>,
    notices: RefCell<Vec<String>>,
}

/// What [`FileStore::read`] found under a record's name besides the record it returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Found {
    /// The record's expiry (Unix seconds), when it has one.
    expiry: Option<u64>,
    /// A file stays under the record's name that reads as no record: expired, or another
    /// user's. The write that replaces it is durable ([`durability_over`]).
    shadowed: bool,
}

/// How a write asked to be made `asked` is made over what `found` found: durably when it
/// replaces a file that read as no record, whatever was asked. A volatile write lost in a
/// crash would bring that file back in place of what was written over it, and it would no
/// longer read as no record where the clock stepped back behind its expiry (a closed
/// incident, which would then take the next resolve for done).
fn durability_over(asked: Durability, found: Found) -> Durability {
    if found.shadowed { Durability::Durable } else { asked }
}

/// Where the store ended up, and why, for the handler to log.
#[derive(Debug)]
pub struct Opened {
    /// The store.
    pub store: FileStore,
    /// Set when the default directory was not writable and the per-user fallback is used.
    pub fallback_notice: Option<String>,
}

/// The incident's hold is a byte of this user's lock file.
impl Hold for ByteLock {}

/// The owner of `path` (not followed) when it is not this process's effective user.
#[cfg(unix)]
fn foreign_owner(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let uid = fs::symlink_metadata(path).ok()?.uid();
    (uid != rustix::process::geteuid().as_raw()).then_some(uid)
}

#[cfg(not(unix))]
fn foreign_owner(_path: &Path) -> Option<u32> {
    None
}

impl FileStore {
    /// A store for `handler` (e.g. `pagerduty`) under `state_dir` (`None`: the default
    /// [`DEFAULT_STATE_DIR`], falling back to `$XDG_STATE_HOME/pagerpipe` or
    /// `~/.local/state/pagerpipe` when that cannot be written). The directory is created.
    ///
    /// Errors: an explicit `state_dir` that cannot be created, or no usable directory at all.
    pub fn open(handler: &str, state_dir: Option<&Path>) -> anyhow::Result<Opened> {
        let chosen = files::choose_dir("state dir", "--state-dir", state_dir, Path::new(DEFAULT_STATE_DIR), "pagerpipe", handler)?;
        Ok(Opened { store: FileStore::new(chosen.dir), fallback_notice: chosen.fallback_notice })
    }

    /// The store [`FileStore::open`] would open, found without creating anything (for
    /// `--explain`): reading a record from a directory that does not exist finds none.
    pub fn find(handler: &str, state_dir: Option<&Path>) -> FileStore {
        FileStore::new(files::find_dir(state_dir, Path::new(DEFAULT_STATE_DIR), "pagerpipe", handler))
    }

    /// A store in exactly `dir` (created if missing, and checked for writing).
    ///
    /// Errors: the directory cannot be created or written.
    pub fn at(dir: PathBuf) -> anyhow::Result<FileStore> {
        files::ensure_writable(&dir, "state dir")?;
        Ok(FileStore::new(dir))
    }

    fn new(dir: PathBuf) -> FileStore {
        FileStore { locks: Locks::in_dir(&dir), dir, lock_deadline: None, notices: RefCell::new(Vec::new()) }
    }

    /// Record-lock waits end at `deadline` (a record's lock held that long — by a stuck
    /// process, or on purpose by a member of the group — fails the update, and the caller
    /// delivers without dedup) instead of [`DEFAULT_LOCK_WAIT`].
    pub fn with_lock_deadline(mut self, deadline: Instant) -> FileStore {
        self.lock_deadline = Some(deadline);
        self
    }

    fn notice(&self) -> impl FnMut(String) + '_ {
        |n| self.notices.borrow_mut().push(n)
    }

    /// The directory holding the records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", file_name_for(key)))
    }

    /// The record at `path`, `None` when absent, expired or another user's (see [`Found`]);
    /// an unparsable one is moved aside.
    fn read(&self, path: &Path) -> anyhow::Result<(Option<Value>, Found)> {
        let shadowed = Found { expiry: None, shadowed: true };
        let bytes = match files::read_regular_owned(path, MAX_RECORD_BYTES) {
            Ok((b, owner)) => match self.owned(path, b, owner) {
                Some(b) => b,
                None => return Ok((None, shadowed)),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok((None, Found::default())),
            // Another user's record this user may not read (one written 0600 while it held a
            // request in flight): another user's, as when readable; the write replaces it.
            Err(e) if self.foreign_unreadable(path, &e) => return Ok((None, shadowed)),
            // A FIFO, directory or symlink planted under a record's name: never read or
            // followed; renamed aside (under the record's lock) so the key works again.
            // Said by kind (`is a symlink, …`), not by the open's error (`ELOOP`: "Too many
            // levels of symbolic links"), as the spool and the lock file say it.
            Err(e) if files::not_regular(&e).is_some() => {
                let kind = files::not_regular(&e).unwrap_or(files::Kind::Other);
                let aside = path.with_extension(format!("json.refused-{}", clock::now_unix()));
                fs::rename(path, &aside).map_err(|re| anyhow::anyhow!("cannot move {} aside: {re}", path.display()))?;
                let refused = files::NotRegular(kind);
                self.notices.borrow_mut().push(format!("state file {} {refused}; moved to {}", path.display(), aside.display()));
                return Ok((None, Found::default()));
            }
            // Larger than any record (a member of the group can plant one), or this user's own
            // file it cannot read: it would fail every update of the key, so that no outcome is
            // ever recorded and every repeat pages again. Moved aside like a corrupt one. (An
            // unreadable file another user owns is another user's record, above.)
            Err(e) => {
                let aside = path.with_extension(format!("json.corrupt-{}", clock::now_unix()));
                fs::rename(path, &aside).map_err(|re| anyhow::anyhow!("cannot read {} ({e}) nor move it aside: {re}", path.display()))?;
                self.notices.borrow_mut().push(format!(
                    "state file {} could not be read ({e}); moved to {} and starting afresh",
                    path.display(),
                    aside.display()
                ));
                return Ok((None, Found::default()));
            }
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => {
                let expiry = expiry_of(&v);
                let v = unexpired(v);
                let shadowed = v.is_none();
                Ok((v, Found { expiry, shadowed }))
            }
            Err(e) => {
                let aside = path.with_extension(format!("json.corrupt-{}", clock::now_unix()));
                fs::rename(path, &aside).map_err(|re| anyhow::anyhow!("cannot move unreadable {} aside: {re}", path.display()))?;
                self.notices.borrow_mut().push(format!(
                    "state file {} was unreadable ({e}); moved to {} and starting afresh",
                    path.display(),
                    aside.display()
                ));
                Ok((None, Found::default()))
            }
        }
    }
}

impl FileStore {
    /// Whether `e`, from reading `path`, is a record of another user that this user may not
    /// read (another user's handler wrote it 0600 while it held a request in flight, and was
    /// killed): read as no record, like another user's readable one ([`FileStore::owned`]),
    /// with the same notice, not as a failed store nor a corrupt record.
    fn foreign_unreadable(&self, path: &Path, e: &std::io::Error) -> bool {
        let Some(owner) = (e.kind() == ErrorKind::PermissionDenied).then(|| foreign_owner(path)).flatten() else { return false };
        self.not_trusted(path, owner);
        true
    }

    /// The notice for a record `path` that user `owner`, not this one, wrote.
    fn not_trusted(&self, path: &Path, owner: u32) {
        self.notices
            .borrow_mut()
            .push(format!("state file {} belongs to another user (uid {owner}); not trusted, read as no record", path.display()));
    }

    /// `bytes` of the record at `path` when this user owns it; `None` (with a notice) when
    /// another user does.
    ///
    /// Every record this user's invocations write is a file it owns (written to a temp file
    /// and renamed into place). In the shared 2775 directory any other member of the group can
    /// plant a record — "resolved" to swallow the recovery, "notified just now" to suppress the
    /// next page, an event time of now to supersede the event being handled — and the file's
    /// owner is the one thing it cannot forge. So a record another user owns is read as no
    /// record: at worst a page goes out twice, never not at all. The next write replaces it.
    fn owned(&self, path: &Path, bytes: Vec<u8>, owner: u32) -> Option<Vec<u8>> {
        if owner == files::euid() {
            return Some(bytes);
        }
        self.not_trusted(path, owner);
        None
    }
}

/// The expiry time a stored record carries, when it has one.
fn expiry_of(v: &Value) -> Option<u64> {
    v.get(EXPIRES).and_then(Value::as_u64)
}

/// `v` without its expiry field, or `None` when it has expired.
fn unexpired(mut v: Value) -> Option<Value> {
    if let Some(obj) = v.as_object_mut()
        && let Some(at) = obj.remove(EXPIRES)
        && at.as_u64().is_some_and(|at| at <= clock::now_unix())
    {
        return None;
    }
    Some(v)
}

impl Store for FileStore {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn get(&self, key: &str) -> anyhow::Result<Option<Value>> {
        let path = self.path(key, "json");
        match files::read_regular_owned(&path, MAX_RECORD_BYTES) {
            Ok((bytes, owner)) => Ok(self.owned(&path, bytes, owner).and_then(|b| match serde_json::from_slice(&b) {
                Ok(v) => unexpired(v),
                // Moved aside by the next update; no record until then (as the Redis store says).
                Err(e) => {
                    self.notices.borrow_mut().push(format!("state file {} is unreadable ({e}); ignored", path.display()));
                    None
                }
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) if self.foreign_unreadable(&path, &e) => Ok(None),
            // Not a regular file: moved aside by the next update; no record until then.
            Err(e) if files::not_regular(&e).is_some() => {
                let kind = files::not_regular(&e).unwrap_or(files::Kind::Other);
                self.notices.borrow_mut().push(format!("state file {} {}", path.display(), files::NotRegular(kind)));
                Ok(None)
            }
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    fn update_deciding(
        &self,
        key: &str,
        expire: Expiry,
        f: &mut dyn FnMut(Option<Value>) -> (Option<Value>, Durability),
    ) -> anyhow::Result<()> {
        let path = self.path(key, "json");
        let now = Instant::now();
        let until = self.lock_deadline.map_or(now + DEFAULT_LOCK_WAIT, |d| d.max(now + MIN_LOCK_WAIT));
        let Some(_lock) = self.locks.take(key, Slot::Record, until, &mut self.notice())? else {
            anyhow::bail!("the record {} is locked by another process past this invocation's deadline", path.display());
        };
        (|| {
            let (current, found) = self.read(&path)?;
            // An update that keeps the expiry (a stop request, a skipped event's time) keeps the
            // one the record had: a closed incident is still forgotten in time.
            let kept = current.as_ref().and(found.expiry).filter(|_| expire == Expiry::Keep);
            let before = current.clone();
            let (new, durability) = f(current);
            match new {
                Some(new) if Some(&new) != before.as_ref() || matches!(expire, Expiry::After(_)) => {
                    let mut stored = new;
                    let expires = match expire {
                        Expiry::After(ttl) => Some(clock::now_unix().saturating_add(ttl.as_secs())),
                        Expiry::Keep => kept,
                        Expiry::Never => None,
                    };
                    if let (Some(at), Some(obj)) = (expires, stored.as_object_mut()) {
                        obj.insert(EXPIRES.into(), at.into());
                    }
                    // A request noted in flight carries its event's settings overrides, which
                    // may hold a credential (a check's own Twilio auth token): owner only.
                    let mode = files::mode_for(holds_inflight(&stored));
                    let mut bytes = serde_json::to_vec(&stored)?;
                    bytes.push(b'\n');
                    files::write_atomic_mode(&path, &bytes, true, durability_over(durability, found), mode)
                }
                Some(_) => Ok(()),
                None => match fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(anyhow::anyhow!("cannot remove {}: {e}", path.display())),
                },
            }
        })()
    }

    fn hold(&self, key: &str, until: Instant) -> anyhow::Result<Option<Box<dyn Hold>>> {
        Ok(self.locks.take(key, Slot::Hold, until, &mut self.notice())?.map(|l| Box::new(l) as Box<dyn Hold>))
    }

    /// Asks the kernel whether the hold's byte is locked (never creates, waits or writes: a
    /// storm of repeats writes nothing).
    fn busy(&self, key: &str) -> anyhow::Result<bool> {
        self.locks.held(key, Slot::Hold)
    }

    fn keys(&self) -> anyhow::Result<Vec<String>> {
        let listing = match fs::read_dir(&self.dir) {
            Ok(listing) => listing,
            // A store found but never created (`--list` on a host that never paged) holds nothing.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => anyhow::bail!("cannot list state dir {}: {e}", self.dir.display()),
        };
        let mut keys = Vec::new();
        for item in listing.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".json") else { continue };
            if stem.starts_with(".tmp-") {
                continue;
            }
            // The key is stored in the record; the file name may be a shortened form (else it is
            // the key, percent-encoded by `file_name_for`).
            match self.read(&item.path()).map(|(v, _)| v) {
                Ok(Some(v)) => keys.push(v.get("key").and_then(Value::as_str).map_or_else(|| percent_decode(stem), str::to_string)),
                Ok(None) => {}
                Err(e) => self.notices.borrow_mut().push(format!("{e:#}")),
            }
        }
        Ok(keys)
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.borrow_mut())
    }
}

/// Whether record `v` holds requests noted in flight (`inflight`, [`super::Incident::inflight`]).
fn holds_inflight(v: &Value) -> bool {
    v.get("inflight").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

/// Map a key to a file name: `[A-Za-z0-9_-]` and inner dots kept, other bytes as `%XX`; names
/// longer than 180 bytes keep a prefix and end in a 64-bit FNV-1a hash of the whole key.
pub fn file_name_for(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, b) in key.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    if out.len() > 180 {
        let mut cut = 160;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out = format!("{}~{:016x}", &out[..cut], fnv1a(key.as_bytes()));
    }
    out
}

/// 64-bit FNV-1a: a stable hash for file names and shortened keys (not for security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Write;
    use serde_json::json;

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(file_name_for("web-01/check_disk"), "web-01%2Fcheck_disk");
        assert_eq!(file_name_for("../etc"), "%2E.%2Fetc");
        assert_eq!(file_name_for(""), "%00");
        let long_a = "a".repeat(300);
        let long_b = format!("{}b", "a".repeat(299));
        assert!(file_name_for(&long_a).len() <= 180);
        assert_ne!(file_name_for(&long_a), file_name_for(&long_b));
    }

    #[test]
    fn update_reads_modifies_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path().join("pd")).unwrap();
        for _ in 0..3 {
            store
                .update("k", &mut |cur| {
                    let n = cur.and_then(|v| v["n"].as_u64()).unwrap_or(0);
                    Some(json!({"n": n + 1}))
                })
                .unwrap();
        }
        assert_eq!(store.get("k").unwrap(), Some(json!({"n": 3})));
        store.update("k", &mut |_| None).unwrap();
        assert_eq!(store.get("k").unwrap(), None);
        assert!(store.take_notices().is_empty());
    }

    #[test]
    fn corrupt_record_is_moved_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path().to_path_buf()).unwrap();
        std::fs::write(dir.path().join("k.json"), "{not json").unwrap();
        store
            .update("k", &mut |cur| {
                assert!(cur.is_none());
                Some(json!({"ok": true}))
            })
            .unwrap();
        let notes = store.take_notices();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("was unreadable"), "{}", notes[0]);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path().to_path_buf()).unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                let store = FileStore::at(dir.path().to_path_buf()).unwrap();
                s.spawn(move || {
                    for _ in 0..25 {
                        store
                            .update("shared", &mut |cur| {
                                let n = cur.and_then(|v| v["n"].as_u64()).unwrap_or(0);
                                Some(json!({"n": n + 1}))
                            })
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(store.get("shared").unwrap(), Some(json!({"n": 200})));
    }

    #[test]
    fn busy_sees_a_live_hold_and_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::at(dir.path().to_path_buf()).expect("store");
        let files = || fs::read_dir(dir.path()).expect("list").count();
        assert!(!store.busy("web-01/disk").expect("probe"));
        assert_eq!(files(), 0, "a probe creates no file");
        let held = store.hold("web-01/disk", Instant::now()).expect("hold").expect("free");
        assert!(store.busy("web-01/disk").expect("probe"));
        assert!(!store.busy("db-01/disk").expect("probe"));
        drop(held);
        assert!(!store.busy("web-01/disk").expect("probe"));
        assert_eq!(files(), 1, "the lock file stays, and nothing else was made");
    }

    #[test]
    fn a_hold_excludes_others_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileStore::at(dir.path().to_path_buf()).unwrap();
        let b = FileStore::at(dir.path().to_path_buf()).unwrap();
        let held = a.hold("k", Instant::now()).unwrap();
        assert!(held.is_some());
        assert!(b.hold("k", Instant::now()).unwrap().is_none(), "a second holder must wait");
        assert!(b.hold("other", Instant::now()).unwrap().is_some(), "other incidents are free");
        // An update does not wait for the hold.
        b.update("k", &mut |_| Some(json!({"x": 1}))).unwrap();
        drop(held);
        assert!(b.hold("k", Instant::now()).unwrap().is_some());
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [format!(".locks-{}", files::euid()), "k.json".into()], "no file per lock");
    }

    #[test]
    fn a_write_over_a_record_that_reads_as_none_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path().to_path_buf()).unwrap();
        let path = store.path("web-01/disk", "json");
        assert_eq!(store.read(&path).unwrap(), (None, Found::default()));
        std::fs::write(&path, b"{\"key\":\"web-01/disk\",\"open\":false,\"_expires\":1}\n").unwrap();
        assert_eq!(store.read(&path).unwrap(), (None, Found { expiry: Some(1), shadowed: true }));
        let far = clock::now_unix() + 3600;
        std::fs::write(&path, format!("{{\"key\":\"web-01/disk\",\"open\":false,\"_expires\":{far}}}\n")).unwrap();
        assert_eq!(
            store.read(&path).unwrap(),
            (Some(json!({"key": "web-01/disk", "open": false})), Found { expiry: Some(far), shadowed: false })
        );
        // An expired (or another user's) record in place: whatever was asked, durably.
        for asked in [Durability::Volatile, Durability::Durable] {
            assert_eq!(durability_over(asked, Found { expiry: Some(1), shadowed: true }), Durability::Durable);
            assert_eq!(durability_over(asked, Found::default()), asked);
        }
    }

    #[test]
    fn expired_records_read_as_absent_and_keys_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path().to_path_buf()).unwrap();
        store
            .update_with(
                "web-01/disk",
                Write { durability: Durability::Volatile, expire: Expiry::After(Duration::from_secs(60)) },
                &mut |_| Some(json!({"key": "web-01/disk", "open": false})),
            )
            .unwrap();
        assert_eq!(store.get("web-01/disk").unwrap(), Some(json!({"key": "web-01/disk", "open": false})));
        store
            .update_with("gone", Write { durability: Durability::Volatile, expire: Expiry::After(Duration::ZERO) }, &mut |_| {
                Some(json!({"key": "gone"}))
            })
            .unwrap();
        assert_eq!(store.get("gone").unwrap(), None);
        let mut keys = store.keys().unwrap();
        keys.sort();
        assert_eq!(keys, ["web-01/disk"]);
        assert_eq!(percent_decode(&file_name_for("a/b c")), "a/b c");
    }

    #[test]
    fn progress_notes_keep_an_open_record_and_renew_a_closed_ones_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path().to_path_buf()).unwrap();
        let expiry = |key: &str| expiry_of(&serde_json::from_slice(&fs::read(store.path(key, "json")).unwrap()).unwrap());
        let write = |key: &str, expire| {
            store.update_with(key, Write { durability: Durability::Durable, expire }, &mut |_| {
                Some(json!({"key": key, "open": key == "open", "last_action": "trigger"}))
            })
        };
        write("closed", Expiry::After(Duration::from_secs(60))).unwrap();
        write("open", Expiry::Never).unwrap();
        let about_to_expire = expiry("closed").expect("a closed record expires");
        let notes = crate::state::Progress { token: "t".into(), notes: json!({"calls": []}) };
        for key in ["closed", "open"] {
            crate::state::note_progress(&store, key, &notes).unwrap();
            assert_eq!(crate::state::get(&store, key).unwrap().and_then(|r| r.progress), Some(notes.clone()), "{key}");
        }
        // A closed record about to be forgotten outlives the run that reopens it; an open one
        // is kept.
        let renewed = expiry("closed").expect("a closed record expires");
        assert!(renewed >= about_to_expire - 60 + crate::state::CLOSED_RECORD_TTL.as_secs(), "{about_to_expire} -> {renewed}");
        assert_eq!(expiry("open"), None);
    }
}
