//! The file store's locks: one byte each in a lock file per user, never created or removed per
//! incident.
//!
//! Each user's invocations lock in `<state_dir>/<handler>/.locks-<euid>`: a regular file of
//! [`SALT_BYTES`] random bytes, mode 0600, owned by that user, created once and never removed.
//! An incident's hold ([`super::Hold`], held for a whole delivery) is an exclusive
//! open-file-description lock (`fcntl(F_OFD_SETLK)`, Linux 3.15 and later) on one byte of it,
//! and the lock of the incident's record (held for a read-modify-write, microseconds) is one
//! on the next byte, so that an update never waits for a delivery. Which byte: a SipHash-1-3 of
//! the incident key, keyed with the file's random bytes, cut to 62 bits
//! ([`byte_of`]).
//!
//! - **A crash frees everything.** The kernel releases an OFD lock when its open file
//!   description is closed, so when its holder dies: a killed handler never leaves an incident
//!   held. Each lock opens the file anew (its own open file description), so that two locks
//!   of one key exclude each other within one process too, as the `flock`s on per-key files
//!   did.
//! - **Why not a file per key** (`<name>.hold`, `<name>.lock`, until Dec 3, 2026): creating and
//!   removing those files made four of the six changes a delivery made to the state directory,
//!   each a journal entry on a journaled disk (bench/HISTORY.md, "session 19"). Now a
//!   delivery makes two: the record's temp file and its rename.
//! - **Why one file per user.** No other user can open a 0600 file, so no other member of the
//!   `pagerpipe` group can hold an incident of this user's forever, nor read the key that picks
//!   the bytes. A lock file under this user's name that another user owns, or that is not a
//!   regular file of [`SALT_BYTES`] bytes, was planted: it is moved aside
//!   (`.locks-<euid>.refused-<unix nanos>`, with a notice) and a fresh one made. In a sticky
//!   directory (3775) only its owner may move another user's file: there this user's
//!   invocations lock in a stand-in beside it instead (`.locks-<euid>.alt-<random>`, the first
//!   by name that this user owns, made under the directory's lock), with a notice. Two users of
//!   the group do not exclude each other's deliveries; nor does one dedup the other's, since
//!   a record another user wrote reads as no record (see `FileStore`).
//! - **Two keys share a byte** only when their 62-bit hashes collide: the two incidents would
//!   then wait for each other, never be merged. The key is random and readable by this user
//!   alone, so a monitored host that chooses its check's name cannot aim it at another
//!   incident's byte.
//!
//! A lock is taken, then the path is checked to still name the file locked (device and
//! inode): a lock on a file someone moved away in between is taken again on the new one. So a
//! lock file, once made, is never moved while it may be held: it is made, and a planted one
//! moved aside, by one invocation at a time (under a `flock` of the directory, waited for a
//! second at most), and only the very file found wrong is moved.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

use crate::files::{self, id_of, still_names};

/// Length of a lock file, in bytes: the random key of its SipHash ([`byte_of`]).
pub const SALT_BYTES: usize = 16;

/// How many times a lock file is opened again when it was replaced, created by another
/// invocation at the same moment, or moved aside, before the store gives up with an error.
const OPEN_TRIES: usize = 8;

/// How long making or replacing the lock file waits for the state directory's lock
/// ([`Locks::lock_dir`]), held by another invocation for microseconds: longer, someone holds it
/// on purpose.
const DIR_LOCK_WAIT: Duration = Duration::from_secs(1);

/// Which of an incident's two locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The incident's hold, for a whole delivery.
    Hold,
    /// The lock of the incident's record, for one read-modify-write.
    Record,
}

/// The lock file of one user in one state directory.
#[derive(Debug)]
pub struct Locks {
    path: PathBuf,
    /// Whether the notice that a stand-in is in use was given ([`Locks::tell_stand_in`]).
    told: std::sync::atomic::AtomicBool,
}

/// One byte of a lock file, locked by this process until this is dropped (closing its own
/// open file description releases the lock).
#[derive(Debug)]
pub struct ByteLock {
    _file: File,
}

/// An open lock file: the file, which one it is (device, inode), and its key.
struct Opened {
    file: File,
    /// Where it was opened: the lock file's name, or a stand-in's ([`Locks::stand_in`]).
    path: PathBuf,
    id: (u64, u64),
    salt: [u8; SALT_BYTES],
}

/// The byte of the lock file that locks `slot` of incident `key`: an even offset for the
/// hold, the next one for the record. Offsets stay below 2^63 (`off_t`).
pub fn byte_of(salt: &[u8; SALT_BYTES], key: &str, slot: Slot) -> i64 {
    let hash = siphasher::sip::SipHasher13::new_with_key(salt).hash(key.as_bytes()) >> 2;
    let byte = hash * 2 + u64::from(slot == Slot::Record);
    // Below 2^63 by construction (62 bits, doubled, plus one).
    i64::try_from(byte).unwrap_or(i64::MAX - 1)
}

/// An exclusive lock (`F_WRLCK`), or the lack of one (`F_UNLCK`), of the one byte at `at`.
fn one_byte(kind: i16, at: i64) -> libc::flock {
    libc::flock { l_type: kind, l_whence: libc::SEEK_SET as i16, l_start: at, l_len: 1, l_pid: 0 }
}

/// `N` random bytes from the kernel (`getrandom`), for a lock file in `dir`.
///
/// Errors: the kernel gives none, or fewer than asked.
fn random_bytes<const N: usize>(dir: &Path) -> anyhow::Result<[u8; N]> {
    let mut bytes = [0; N];
    match rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()) {
        Ok(n) if n == N => Ok(bytes),
        Ok(n) => anyhow::bail!("cannot make a lock file in {}: {n} random bytes of {N}", dir.display()),
        Err(e) => anyhow::bail!("cannot make a lock file in {}: no random bytes: {e}", dir.display()),
    }
}

/// Why the file `meta` describes (from `fstat` of an open, or `lstat`) is not a lock file of
/// this user; `None` when it is one: a regular file of [`SALT_BYTES`] bytes that it owns.
fn misfit(meta: &std::fs::Metadata) -> Option<String> {
    match files::Kind::of(meta.file_type()) {
        files::Kind::Regular => {}
        files::Kind::Other => return Some("is not a regular file".to_string()),
        kind => return Some(format!("is {}, not a regular file", kind.described())),
    }
    if meta.uid() != files::euid() {
        return Some(format!("belongs to another user (uid {})", meta.uid()));
    }
    (meta.len() != SALT_BYTES as u64).then(|| format!("is {} bytes long, not the {SALT_BYTES} of a lock file", meta.len()))
}

/// Try once to lock the byte at `at` of `file`: `Ok(false)` when another open file
/// description holds it.
fn try_lock(file: &File, at: i64) -> std::io::Result<bool> {
    match fcntl(file, FcntlArg::F_OFD_SETLK(&one_byte(libc::F_WRLCK as i16, at))) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Lock the byte at `at` of `file`, waiting until `deadline`: `Ok(false)` when it is still
/// held then (someone — another invocation of this user, or the user itself on purpose — kept
/// it). An OFD lock's own wait has no timeout, so it polls ([`poll_until`]).
fn lock_until(file: &File, at: i64, deadline: Instant) -> std::io::Result<bool> {
    poll_until(deadline, || try_lock(file, at))
}

/// Try `once` until it succeeds (`Ok(true)`) or `deadline` passes (`Ok(false)`), pausing from
/// 1 ms, doubling to 50 ms, so that an uncontended or briefly held lock costs nothing
/// noticeable.
fn poll_until(deadline: Instant, mut once: impl FnMut() -> std::io::Result<bool>) -> std::io::Result<bool> {
    let mut pause = Duration::from_millis(1);
    loop {
        if once()? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        crate::lease::sleep(pause.min(deadline.saturating_duration_since(now)));
        pause = pause.saturating_mul(2).min(Duration::from_millis(50));
    }
}

/// What is under the lock file's name.
enum Found {
    /// This user's lock file, opened.
    Usable(Opened),
    /// Nothing.
    Missing,
    /// Something else (planted, or cut short by a crash): why, and which file it is.
    Misfit { why: String, id: (u64, u64) },
}

/// [`Locks::look`] at `path` once: `Ok(Err(why))` when the open failed on what `lstat` then found
/// to be a lock file of this user.
fn look_once(path: &Path) -> anyhow::Result<Result<Found, std::io::Error>> {
    let opened = files::open_regular_meta(path, OpenOptions::new().read(true).write(true), false);
    Ok(Ok(match opened {
        Ok((file, meta)) => match misfit(&meta) {
            None => {
                let mut salt = [0; SALT_BYTES];
                file.read_exact_at(&mut salt, 0).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                Found::Usable(Opened { file, path: path.to_path_buf(), id: id_of(&meta), salt })
            }
            Some(why) => Found::Misfit { why, id: id_of(&meta) },
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Found::Missing,
        // Not a regular file (a FIFO, a socket: refused after the open, or by `lstat`); a
        // directory refuses a write open; a symlink fails it (`O_NOFOLLOW`); a file this
        // user may not open. What is there is judged by `lstat` (never followed): the open
        // may have failed on a file that another invocation has replaced since, with the
        // lock file it made.
        Err(e)
            if files::not_regular(&e).is_some()
                || e.kind() == ErrorKind::IsADirectory
                || e.raw_os_error() == Some(libc::ELOOP)
                || e.kind() == ErrorKind::PermissionDenied =>
        {
            let meta = match std::fs::symlink_metadata(path) {
                Ok(meta) => meta,
                Err(le) if le.kind() == ErrorKind::NotFound => return Ok(Ok(Found::Missing)),
                Err(le) => anyhow::bail!("cannot open {} ({e}) nor look at it: {le}", path.display()),
            };
            match misfit(&meta) {
                Some(why) => Found::Misfit { why, id: id_of(&meta) },
                // This user's file of the right length, which it may not open (mode 0000).
                None if e.kind() == ErrorKind::PermissionDenied && meta.mode() & 0o600 != 0o600 => {
                    Found::Misfit { why: format!("cannot be opened by this user (mode {:04o})", meta.mode() & 0o7777), id: id_of(&meta) }
                }
                None => return Ok(Err(e)),
            }
        }
        Err(e) => anyhow::bail!("cannot open {}: {e}", path.display()),
    }))
}

impl Locks {
    /// The lock file of this process's effective user in `dir` (nothing is opened yet).
    pub fn in_dir(dir: &Path) -> Locks {
        Locks { path: dir.join(format!(".locks-{}", files::euid())), told: std::sync::atomic::AtomicBool::new(false) }
    }

    /// Lock `slot` of `key`, waiting until `until`; `Ok(None)` when another invocation of this
    /// user still holds it then. Creates the lock file if there is none; one that was planted
    /// is moved aside first, reported through `notice`.
    ///
    /// Errors: the lock file cannot be created, opened, moved aside or locked.
    pub fn take(&self, key: &str, slot: Slot, until: Instant, notice: &mut dyn FnMut(String)) -> anyhow::Result<Option<ByteLock>> {
        for _ in 0..OPEN_TRIES {
            let Some(opened) = self.open(true, notice)? else { continue };
            let at = byte_of(&opened.salt, key, slot);
            if !lock_until(&opened.file, at, until).map_err(|e| anyhow::anyhow!("cannot lock {}: {e}", opened.path.display()))? {
                return Ok(None);
            }
            if still_names(&opened.path, opened.id) {
                return Ok(Some(ByteLock { _file: opened.file }));
            }
        }
        anyhow::bail!("cannot lock {}: it was replaced {OPEN_TRIES} times in a row", self.path.display())
    }

    /// Whether another invocation of this user holds `slot` of `key` right now. Takes
    /// nothing, waits for nothing and creates nothing: without a lock file nothing is held,
    /// and a planted one is nobody's lock (the next [`Locks::take`] moves it aside).
    ///
    /// Errors: the lock file cannot be opened or asked.
    pub fn held(&self, key: &str, slot: Slot) -> anyhow::Result<bool> {
        let Some(opened) = self.open(false, &mut |_| {})? else { return Ok(false) };
        let mut probe = one_byte(libc::F_WRLCK as i16, byte_of(&opened.salt, key, slot));
        fcntl(&opened.file, FcntlArg::F_OFD_GETLK(&mut probe)).map_err(|e| anyhow::anyhow!("cannot ask {}: {e}", opened.path.display()))?;
        Ok(probe.l_type != libc::F_UNLCK as i16)
    }

    /// Open the lock file (read-write: an exclusive OFD lock needs it) and read its key.
    /// `Ok(None)`: none there and `create` is false, or none usable this time (the caller
    /// tries again). `create` makes the lock file when there is none, and first moves aside
    /// one that is not this user's lock file ([`Locks::move_aside`]); without it such a file
    /// reads as none.
    ///
    /// Making or replacing the file is done by one invocation at a time, under the directory's
    /// lock ([`Locks::lock_dir`]), and looks again once it has it: invocations that met a
    /// planted file together each judged it, and one that moved aside whatever the name held
    /// by then moved the fresh lock file another had just made, and locked, from under it: the
    /// two no longer excluded each other (a storm paged several times for one incident).
    fn open(&self, create: bool, notice: &mut dyn FnMut(String)) -> anyhow::Result<Option<Opened>> {
        match self.look(&self.path)? {
            Found::Usable(opened) => return Ok(Some(opened)),
            Found::Missing if !create => return Ok(None),
            Found::Missing => {}
            // One that could not be moved aside (below) has a stand-in.
            Found::Misfit { why, .. } => {
                if let Some(opened) = self.stand_in(false)? {
                    if create {
                        self.tell_stand_in(&why, &opened, notice);
                    }
                    return Ok(Some(opened));
                }
                if !create {
                    return Ok(None);
                }
            }
        }
        let _dir = self.lock_dir();
        match self.look(&self.path)? {
            Found::Usable(opened) => Ok(Some(opened)),
            Found::Missing => self.create(&self.path),
            Found::Misfit { why, id } => match self.move_aside(id, &why, notice) {
                Ok(true) => self.create(&self.path),
                Ok(false) => Ok(None),
                // Another user's file in a sticky directory: only its owner (or root) may move
                // or remove it.
                Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                    let opened = self.stand_in(true)?;
                    if let Some(opened) = &opened {
                        self.tell_stand_in(&why, opened, notice);
                    }
                    Ok(opened)
                }
                Err(e) => anyhow::bail!("lock file {} {why}, and cannot be moved aside: {e}", self.path.display()),
            },
        }
    }

    /// The notice that a stand-in is in use, once per [`Locks`] (one invocation).
    fn tell_stand_in(&self, why: &str, stand_in: &Opened, notice: &mut dyn FnMut(String)) {
        if !self.told.swap(true, std::sync::atomic::Ordering::Relaxed) {
            notice(format!(
                "lock file {} {why}, and cannot be moved aside (a sticky directory); until its owner or root removes it, \
                 this user's invocations lock in {}",
                self.path.display(),
                stand_in.path.display()
            ));
        }
    }

    /// The lock file this user's invocations use while a file they cannot move aside holds the
    /// lock file's name (another user's, planted in a sticky directory):
    /// `.locks-<euid>.alt-<16 random hex digits>`, the first by name of the regular files of
    /// [`SALT_BYTES`] bytes named so that this user owns — an owner no other member can forge,
    /// and a name none can take from it there. `create`: made when there is none (under the
    /// directory's lock, so that two invocations do not make one each).
    ///
    /// Errors: the directory cannot be listed, or the stand-in opened or made.
    fn stand_in(&self, create: bool) -> anyhow::Result<Option<Opened>> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let prefix = format!("{}.alt-", self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix(&prefix))
                    .is_some_and(|r| r.len() == 16 && r.bytes().all(|b| b.is_ascii_hexdigit()))
            })
            // Those of other users (a member can plant thousands) are passed over by `lstat`.
            .filter(|e| e.metadata().is_ok_and(|m| misfit(&m).is_none()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            if let Found::Usable(opened) = self.look(&dir.join(name))? {
                return Ok(Some(opened));
            }
        }
        if !create {
            return Ok(None);
        }
        let suffix: [u8; 8] = random_bytes(dir)?;
        let name: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        self.create(&dir.join(format!("{prefix}{name}")))
    }

    /// The state directory's `flock`, held while this invocation makes or replaces the lock
    /// file (microseconds, once per user unless a file was planted). `None` when it is not had
    /// within [`DIR_LOCK_WAIT`] — another user of the group can hold it on purpose — or cannot
    /// be taken at all: the file is made or replaced without it (checked by device and inode
    /// all the same: only a storm meeting a planted file could then move a fresh lock file).
    fn lock_dir(&self) -> Option<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.path.parent()?;
        // `O_DIRECTORY`: whatever is there, the open never blocks (a FIFO fails it).
        let file = OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(dir).ok()?;
        let taken = poll_until(Instant::now() + DIR_LOCK_WAIT, || match file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        });
        taken.ok().filter(|&t| t).map(|_| file)
    }

    /// What is under the lock file's name: this user's lock file (opened, its key read),
    /// nothing, or something else.
    ///
    /// Errors: the name cannot be opened nor looked at, or the file not read.
    fn look(&self, path: &Path) -> anyhow::Result<Found> {
        match look_once(path)? {
            // A lock file made since the open failed: open that one (once: a file of this
            // user's that still cannot be opened is an error).
            Err(_) => look_once(path)?.map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display())),
            Ok(found) => Ok(found),
        }
    }

    /// Move the file `id` under the lock file's name aside (`.refused-<unix nanos>`), judged
    /// not this user's lock file for `why`, with a notice; `Ok(false)` when the name no longer
    /// holds it (the caller looks again). Only that file: one moved in the instant between the
    /// look and the rename (possible only without the directory's lock) is put back.
    ///
    /// Errors: the rename's (`PermissionDenied`: a sticky directory, where only its owner can).
    fn move_aside(&self, id: (u64, u64), why: &str, notice: &mut dyn FnMut(String)) -> std::io::Result<bool> {
        if !still_names(&self.path, id) {
            return Ok(false);
        }
        let aside = files::refused_path(&self.path);
        match std::fs::rename(&self.path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
        if !still_names(&aside, id) {
            // Not the file judged: back under its name, unless a newer one is there already.
            let _ = rustix::fs::renameat_with(rustix::fs::CWD, &aside, rustix::fs::CWD, &self.path, rustix::fs::RenameFlags::NOREPLACE);
            return Ok(false);
        }
        notice(format!(
            "lock file {} {why}: not this handler's; moved to {} and made afresh (never followed or read)",
            self.path.display(),
            aside.display()
        ));
        Ok(true)
    }

    /// Make a lock file at `path` (the lock file's name, or a stand-in's): a temp file (mode
    /// 0600) filled with random bytes, linked under that name. `Ok(None)`: another invocation
    /// made one first (open that one).
    fn create(&self, path: &Path) -> anyhow::Result<Option<Opened>> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let salt: [u8; SALT_BYTES] = random_bytes(dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(files::PRIVATE_MODE))
            .tempfile_in(dir)
            .map_err(|e| anyhow::anyhow!("cannot create a temp file in {}: {e}", dir.display()))?;
        // Synced once, before it gets its name: a crash must not leave an empty lock file,
        // which the next invocation would take for a planted one.
        tmp.write_all(&salt)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        let file = match tmp.persist_noclobber(path) {
            Ok(file) => file,
            Err(e) if e.error.kind() == ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => anyhow::bail!("cannot create {}: {}", path.display(), e.error),
        };
        let meta = file.metadata().map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Ok(Some(Opened { file, path: path.to_path_buf(), id: id_of(&meta), salt }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn now() -> Instant {
        Instant::now()
    }

    #[test]
    fn an_incidents_two_locks_are_two_bytes_and_other_keys_others() {
        let salt = [7; SALT_BYTES];
        let hold = byte_of(&salt, "web-01/disk", Slot::Hold);
        assert_eq!(hold % 2, 0);
        assert_eq!(byte_of(&salt, "web-01/disk", Slot::Record), hold + 1);
        assert_ne!(byte_of(&salt, "web-01/load", Slot::Hold), hold);
        // Another key of the file, another byte for the same name.
        assert_ne!(byte_of(&[8; SALT_BYTES], "web-01/disk", Slot::Hold), hold);
    }

    #[test]
    fn a_lock_excludes_another_open_of_the_file_until_dropped_and_the_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::in_dir(dir.path());
        let mut notices = Vec::new();
        assert!(!locks.held("k", Slot::Hold).unwrap());
        assert!(!locks.path.exists(), "asking creates nothing");
        let hold = locks.take("k", Slot::Hold, now(), &mut |n| notices.push(n)).unwrap().expect("free");
        assert!(locks.held("k", Slot::Hold).unwrap());
        assert!(!locks.held("k", Slot::Record).unwrap(), "the record's lock is another byte");
        assert!(locks.take("k", Slot::Hold, now(), &mut |n| notices.push(n)).unwrap().is_none(), "held, also within one process");
        let record = locks.take("k", Slot::Record, now(), &mut |n| notices.push(n)).unwrap();
        assert!(record.is_some(), "an update does not wait for the hold");
        assert!(locks.take("other", Slot::Hold, now(), &mut |n| notices.push(n)).unwrap().is_some());
        drop(hold);
        assert!(!locks.held("k", Slot::Hold).unwrap());
        assert!(locks.take("k", Slot::Hold, now(), &mut |n| notices.push(n)).unwrap().is_some());
        let meta = std::fs::metadata(&locks.path).unwrap();
        assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (SALT_BYTES as u64, 0o600));
        assert!(notices.is_empty(), "{notices:?}");
    }

    #[test]
    fn a_wait_ends_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::in_dir(dir.path());
        let _held = locks.take("k", Slot::Record, now(), &mut |_| {}).unwrap().expect("free");
        assert!(locks.take("k", Slot::Record, now() + Duration::from_millis(30), &mut |_| {}).unwrap().is_none(), "gives up");
        assert!(locks.take("k", Slot::Record, now(), &mut |_| {}).unwrap().is_none(), "a passed deadline: one try");
    }

    #[test]
    fn a_waiter_gets_the_lock_once_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::in_dir(dir.path());
        let mut held = Some(locks.take("k", Slot::Hold, now(), &mut |_| {}).unwrap().expect("free"));
        let opened = locks.open(false, &mut |_| {}).unwrap().expect("made by the take");
        let at = byte_of(&opened.salt, "k", Slot::Hold);
        // What `lock_until` does, with the holder letting go right after the waiter's first
        // refused try: the wait goes on polling, and gets the lock at the next.
        let mut tries = 0;
        let got = poll_until(now() + Duration::from_secs(30), || {
            tries += 1;
            let free = try_lock(&opened.file, at)?;
            if !free {
                drop(held.take());
            }
            Ok(free)
        });
        assert!(got.unwrap(), "got it once released");
        assert_eq!(tries, 2, "refused while held, then taken");
    }

    #[test]
    fn only_the_file_judged_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::in_dir(dir.path());
        std::fs::write(&locks.path, b"short").unwrap();
        let Found::Misfit { why, id } = locks.look(&locks.path).unwrap() else { panic!("a short file is no lock file") };
        // Meanwhile another invocation moved it aside, made a fresh one and locked a byte.
        std::fs::rename(&locks.path, dir.path().join("elsewhere")).unwrap();
        let _held = locks.take("k", Slot::Hold, now(), &mut |_| {}).unwrap().expect("free");
        let mut notices = Vec::new();
        assert!(!locks.move_aside(id, &why, &mut |n| notices.push(n)).unwrap(), "not the file judged: left alone");
        assert!(locks.held("k", Slot::Hold).unwrap(), "the fresh lock file is still under its name, and held");
        assert!(notices.is_empty(), "{notices:?}");
    }

    #[test]
    fn a_planted_lock_file_is_moved_aside_and_made_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::in_dir(dir.path());
        for planted in ["wrong length", "dir", "symlink"] {
            match planted {
                "dir" => std::fs::create_dir(&locks.path).unwrap(),
                "symlink" => std::os::unix::fs::symlink("/etc/passwd", &locks.path).unwrap(),
                _ => std::fs::write(&locks.path, b"short").unwrap(),
            }
            assert!(!locks.held("k", Slot::Hold).unwrap(), "{planted}: a planted file is nobody's lock");
            let mut notices = Vec::new();
            assert!(locks.take("k", Slot::Hold, now(), &mut |n| notices.push(n)).unwrap().is_some(), "{planted}");
            assert_eq!(notices.len(), 1, "{planted}: {notices:?}");
            assert!(notices[0].contains("moved to") && notices[0].contains(".refused-"), "{planted}: {}", notices[0]);
            assert_eq!(std::fs::symlink_metadata(&locks.path).unwrap().len(), SALT_BYTES as u64, "{planted}");
            std::fs::remove_file(&locks.path).unwrap();
        }
        assert_eq!(std::fs::metadata("/etc/passwd").map(|m| m.len() > 0).ok(), Some(true), "never followed");
    }
}
