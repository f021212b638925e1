//! The file state store: one JSON file per key under `<state_dir>/<handler>/`.
//!
//! One file per key keeps unrelated incidents from contending for one lock during a storm.
//! Each update takes an exclusive `std::fs::File::lock` on a separate, never-replaced
//! `<name>.lock` file, reads `<name>.json`, and writes the new record to a temp file in the same
//! directory that is renamed over the old one, so a reader sees the old record or the new one,
//! never half of either, and concurrent writers never lose an update. Durable updates fsync the
//! file and the directory; volatile ones (claims, rate counters) skip both, as a disk flush is
//! most of a write's cost and those records matter only while processes run. A record that
//! cannot be parsed is renamed to `<name>.json.corrupt-<unix secs>` and reported through the
//! notice callback; the key then starts afresh.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Store;
use crate::files::{self, Durability};
use crate::clock;

/// Default state directory for system installs.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pagerpipe";

/// A state store rooted at one directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    /// When lock waits give up (`None`: [`DEFAULT_LOCK_WAIT`] from each wait's start).
    lock_deadline: Option<std::time::Instant>,
}

/// Longest wait for a record's lock when no deadline is set ([`FileStore::with_lock_deadline`]).
pub const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Shortest wait for a record's lock, even past the deadline.
pub const MIN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Largest record read: 1 MiB (records are a few hundred bytes; Twilio's call caps a few KiB).
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// Where the store ended up, and why, for the handler to log.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The store.
    pub store: FileStore,
    /// Set when the default directory was not writable and the per-user fallback is used.
    pub fallback_notice: Option<String>,
}

impl FileStore {
    /// A store for `handler` (e.g. `pagerduty`) under `state_dir` (`None`: the default
    /// [`DEFAULT_STATE_DIR`], falling back to `$XDG_STATE_HOME/pagerpipe` or
    /// `~/.local/state/pagerpipe` when that cannot be written). The directory is created.
    ///
    /// Errors: an explicit `state_dir` that cannot be created, or no usable directory at all.
    pub fn open(handler: &str, state_dir: Option<&Path>) -> anyhow::Result<Opened> {
        let chosen = files::choose_dir("state dir", "--state-dir", state_dir, Path::new(DEFAULT_STATE_DIR), "pagerpipe", handler)?;
        Ok(Opened { store: FileStore { dir: chosen.dir, lock_deadline: None }, fallback_notice: chosen.fallback_notice })
    }

    /// A store in exactly `dir` (created if missing, and checked for writing).
    pub fn at(dir: PathBuf) -> anyhow::Result<FileStore> {
        files::ensure_writable(&dir, "state dir")?;
        Ok(FileStore { dir, lock_deadline: None })
    }

    /// Lock waits end at `deadline` (a record's lock held that long — by a stuck process, or
    /// on purpose by a member of the group — fails the update, and the caller delivers without
    /// dedup) instead of [`DEFAULT_LOCK_WAIT`].
    pub fn with_lock_deadline(mut self, deadline: std::time::Instant) -> FileStore {
        self.lock_deadline = Some(deadline);
        self
    }

    /// The directory holding the records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf) {
        let name = file_name_for(key);
        (self.dir.join(format!("{name}.json")), self.dir.join(format!("{name}.lock")))
    }

    fn read(&self, path: &Path, notice: &mut dyn FnMut(String)) -> anyhow::Result<Option<Value>> {
        let bytes = match files::read_regular(path, MAX_RECORD_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            // A FIFO, directory or symlink planted under a record's name: never read or
            // followed; renamed aside (under the record's lock) so the key works again.
            Err(e) if files::not_regular(&e).is_some() => {
                let aside = path.with_extension(format!("json.refused-{}", clock::now_unix()));
                fs::rename(path, &aside).map_err(|re| anyhow::anyhow!("cannot move {} aside: {re}", path.display()))?;
                notice(format!("state file {} {e}; moved to {}", path.display(), aside.display()));
                return Ok(None);
            }
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                let aside = path.with_extension(format!("json.corrupt-{}", clock::now_unix()));
                fs::rename(path, &aside)
                    .map_err(|re| anyhow::anyhow!("cannot move unreadable {} aside: {re}", path.display()))?;
                notice(format!(
                    "state file {} was unreadable ({e}); moved to {} and starting afresh",
                    path.display(),
                    aside.display()
                ));
                Ok(None)
            }
        }
    }

    fn write(&self, path: &Path, value: &Value, durability: Durability) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec(value)?;
        bytes.push(b'\n');
        files::write_atomic(path, &bytes, true, durability)
    }
}

impl Store for FileStore {
    fn get(&self, key: &str, notice: &mut dyn FnMut(String)) -> anyhow::Result<Option<Value>> {
        let (path, _) = self.paths(key);
        match files::read_regular(&path, MAX_RECORD_BYTES) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => {
                notice(format!("cannot read {}: {e}", path.display()));
                Ok(None)
            }
        }
    }

    fn update_with(
        &self,
        key: &str,
        durability: Durability,
        notice: &mut dyn FnMut(String),
        f: &mut dyn FnMut(Option<Value>) -> Option<Value>,
    ) -> anyhow::Result<()> {
        let (path, lock_path) = self.paths(key);
        let lock = files::open_lock_or_move_aside(&lock_path, notice)?;
        let now = std::time::Instant::now();
        // Past the deadline (recording after a long delivery) a briefly held lock is still
        // waited for a moment; only a lock kept on purpose or by a stuck process fails.
        let until = self.lock_deadline.map_or(now + DEFAULT_LOCK_WAIT, |d| d.max(now + MIN_LOCK_WAIT));
        if !files::lock_until(&lock, until).map_err(|e| anyhow::anyhow!("cannot lock {}: {e}", lock_path.display()))? {
            anyhow::bail!("{} is held by another process past this invocation's deadline", lock_path.display());
        }
        let result = (|| {
            let current = self.read(&path, notice)?;
            let before = current.clone();
            match f(current) {
                Some(new) if Some(&new) != before.as_ref() => self.write(&path, &new, durability),
                Some(_) => Ok(()),
                None => match fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(anyhow::anyhow!("cannot remove {}: {e}", path.display())),
                },
            }
        })();
        let _ = File::unlock(&lock);
        result
    }
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
        let mut notes = Vec::new();
        for _ in 0..3 {
            store
                .update("k", &mut |n| notes.push(n), &mut |cur| {
                    let n = cur.and_then(|v| v["n"].as_u64()).unwrap_or(0);
                    Some(json!({"n": n + 1}))
                })
                .unwrap();
        }
        assert_eq!(store.get("k", &mut |_| {}).unwrap(), Some(json!({"n": 3})));
        store.update("k", &mut |_| {}, &mut |_| None).unwrap();
        assert_eq!(store.get("k", &mut |_| {}).unwrap(), None);
        assert!(notes.is_empty());
    }

    #[test]
    fn corrupt_record_is_moved_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path().to_path_buf()).unwrap();
        std::fs::write(dir.path().join("k.json"), "{not json").unwrap();
        let mut notes = Vec::new();
        store.update("k", &mut |n| notes.push(n), &mut |cur| {
            assert!(cur.is_none());
            Some(json!({"ok": true}))
        })
        .unwrap();
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
                let store = store.clone();
                s.spawn(move || {
                    for _ in 0..25 {
                        store
                            .update("shared", &mut |_| {}, &mut |cur| {
                                let n = cur.and_then(|v| v["n"].as_u64()).unwrap_or(0);
                                Some(json!({"n": n + 1}))
                            })
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(store.get("shared", &mut |_| {}).unwrap(), Some(json!({"n": 200})));
    }
}
