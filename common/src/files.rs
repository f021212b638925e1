//! Directories and durable files, as the state store and the spool both need them.
//!
//! - [`choose_dir`]: the system directory (`/var/lib/pagerpipe`, `/var/spool/pagerpipe`) when it
//!   can be written, else a per-user one under `$XDG_STATE_HOME` (or `~/.local/state`), with a
//!   notice for the log — a handler run by hand as an ordinary user still works, and says where
//!   its files went.
//! - [`write_atomic`]: a temp file in the same directory, fsynced, renamed into place, and the
//!   directory fsynced, so that after a crash the file is either absent or whole
//!   (STACK.md: "fsync the directory afterwards for durability").

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A directory chosen by [`choose_dir`].
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The directory (created, writable).
    pub dir: PathBuf,
    /// A line for the log: set when the system directory could not be written and the
    /// per-user one is used, or when the system directory did not exist and was created
    /// (mode 2775, group `pagerpipe` when it exists; see `create_shared_base`).
    pub fallback_notice: Option<String>,
}

/// Pick `<explicit>/<handler>` when `explicit` is given (errors if it cannot be created or
/// written); otherwise `<system>/<handler>`, falling back to
/// `<$XDG_STATE_HOME or ~/.local/state>/<user_sub>/<handler>`.
///
/// `what` names the directory in messages (`state dir`, `spool dir`) and `flag` the flag that
/// sets it (`--state-dir`). Errors: the explicit directory is unusable, or neither the system
/// directory nor a per-user one can be used.
pub fn choose_dir(what: &str, flag: &str, explicit: Option<&Path>, system: &Path, user_sub: &str, handler: &str) -> anyhow::Result<Chosen> {
    if let Some(dir) = explicit {
        let dir = dir.join(handler);
        ensure_writable(&dir, what)?;
        return Ok(Chosen { dir, fallback_notice: None });
    }
    let created_notice = create_shared_base(system);
    let default = system.join(handler);
    match ensure_writable(&default, what) {
        Ok(()) => Ok(Chosen { dir: default, fallback_notice: created_notice }),
        Err(first) => {
            let base = per_user_state_dir()
                .ok_or_else(|| first.context("and neither XDG_STATE_HOME nor HOME is set for a per-user fallback"))?;
            let dir = base.join(user_sub).join(handler);
            ensure_writable(&dir, what)?;
            let notice = format!(
                "{what} {} is not writable; using {} (set {flag} or grant write access)",
                default.display(),
                dir.display()
            );
            Ok(Chosen { dir, fallback_notice: Some(notice) })
        }
    }
}

/// The group the packages create for the monitoring users that share settings, state and
/// spool (`sensu`, `nagios`, `icinga`, `zabbix`; packaging/README.md).
pub const SHARED_GROUP: &str = "pagerpipe";

/// Mode of a shared system directory (`/var/lib/pagerpipe`, `/var/spool/pagerpipe`): group
/// `pagerpipe` may create files, nobody else may; setgid so that everything created inside
/// belongs to the group (the packages create them so).
pub const SHARED_DIR_MODE: u32 = 0o2775;

/// When the system directory `base` does not exist (a run without the packages, e.g. as root
/// from a tarball), create it as the packages do: mode 2775, group `pagerpipe` when that group
/// exists. Returns a line for the log saying what was created, and why other monitoring users
/// cannot use it when the group is missing. `None` when it existed or cannot be created (the
/// caller's normal fallback then applies).
fn create_shared_base(base: &Path) -> Option<String> {
    if base.exists() {
        return None;
    }
    fs::create_dir(base).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(base, fs::Permissions::from_mode(SHARED_DIR_MODE));
        let gid = fs::read_to_string("/etc/group").ok().and_then(|g| group_id(&g, SHARED_GROUP));
        match gid {
            Some(gid) => {
                let group = Some(rustix::fs::Gid::from_raw(gid));
                match rustix::fs::chown(base, None, group) {
                    Ok(()) => Some(format!("created {} (mode 2775, group {SHARED_GROUP}), as the packages do", base.display())),
                    Err(e) => Some(format!(
                        "created {} (mode 2775) but cannot give it to group {SHARED_GROUP} ({e}); run `chgrp {SHARED_GROUP} {}`",
                        base.display(),
                        base.display()
                    )),
                }
            }
            None => Some(format!(
                "created {} (mode 2775, group of this user): the group {SHARED_GROUP} does not exist, so other monitoring users cannot write it; install the pagerpipe package, or `groupadd --system {SHARED_GROUP}`, add the monitoring users to it and `chgrp -R {SHARED_GROUP} {}`",
                base.display(),
                base.display()
            )),
        }
    }
    #[cfg(not(unix))]
    Some(format!("created {}", base.display()))
}

/// The name of group `gid` in `/etc/group` text (`name:password:gid:members` lines).
pub fn group_name(etc_group: &str, gid: u32) -> Option<&str> {
    etc_group.lines().find_map(|line| {
        let (name, id) = group_line(line)?;
        (id == gid).then_some(name)
    })
}

/// The id of group `name` in `/etc/group` text.
pub fn group_id(etc_group: &str, name: &str) -> Option<u32> {
    etc_group.lines().find_map(|line| group_line(line).filter(|(n, _)| *n == name).map(|(_, id)| id))
}

fn group_line(line: &str) -> Option<(&str, u32)> {
    let mut fields = line.split(':');
    let name = fields.next()?;
    let id = fields.nth(1)?.trim().parse::<u32>().ok()?;
    Some((name, id))
}

/// Open (creating it if needed) the lock file `path`, a separate file that is never replaced,
/// for `File::lock` / `try_lock` (STACK.md: never lock the file that a rename replaces).
///
/// Errors name the file.
///
/// An existing lock file is opened read-only (`flock` needs no write access), so that a lock
/// file another member of the `pagerpipe` group created can still be used.
pub fn open_lock(path: &Path) -> anyhow::Result<File> {
    match File::open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            OpenOptions::new().create(true).truncate(false).write(true).open(path)
        }
        Err(e) => Err(e),
    }
    .map_err(|e| anyhow::anyhow!("cannot open lock {}: {e}", path.display()))
}

/// Create `dir` (and parents) and check that a file can be created in it.
///
/// Each directory created takes the permission bits of its parent (on Unix), so that under the
/// packages' `root:pagerpipe` mode-2775 directories every handler subdirectory is again
/// group-writable and setgid, whatever the creating process's umask.
///
/// Errors name the directory: `cannot create <what> <dir>: …` or `<what> <dir> is not writable: …`.
pub fn ensure_writable(dir: &Path, what: &str) -> anyhow::Result<()> {
    create_dir_like_parent(dir).map_err(|e| anyhow::anyhow!("cannot create {what} {}: {e}", dir.display()))?;
    writable(dir).map_err(|e| anyhow::anyhow!("{what} {} is not writable: {e}", dir.display()))
}

/// access(2) `W_OK | X_OK`: no file is created (creating one costs ~1.4 ms on a real disk).
#[cfg(unix)]
fn writable(dir: &Path) -> std::io::Result<()> {
    use rustix::fs::{Access, access};
    access(dir, Access::WRITE_OK | Access::EXEC_OK).map_err(std::io::Error::from)
}

/// Elsewhere: an unnamed temp file proves it and leaves nothing behind.
#[cfg(not(unix))]
fn writable(dir: &Path) -> std::io::Result<()> {
    tempfile::tempfile_in(dir).map(drop)
}

fn create_dir_like_parent(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        create_dir_like_parent(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    #[cfg(unix)]
    if let Some(parent) = parent {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(parent)?.permissions().mode() & 0o7777;
        // Best effort: a directory we cannot chmod still works for its creator.
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode));
    }
    Ok(())
}

/// Whether a write must survive a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and its directory: after a crash the new content is there.
    Durable,
    /// No fsync (no disk flush, which dominates the cost of a write on a real disk): after a
    /// crash the file may hold the previous content or, on some file systems, be empty — never
    /// half of the new one. For records that matter only while processes run (claims, rate
    /// counters).
    Volatile,
}

/// Mode of the files pagerpipe writes: owner read-write, group read (the `pagerpipe` group of
/// a package install), nobody else — spool entries hold credentials.
pub const FILE_MODE: u32 = 0o640;

/// Write `bytes` to `path` atomically: temp file in `path`'s directory (mode [`FILE_MODE`] on
/// Unix), `fsync` (when [`Durability::Durable`]), rename over `path`, `fsync` of the directory
/// (when durable). With `replace: false` an existing `path` is an error instead of being
/// replaced.
///
/// Errors name the file.
pub fn write_atomic(path: &Path, bytes: &[u8], replace: bool, durability: Durability) -> anyhow::Result<()> {
    let durable = durability == Durability::Durable;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(FILE_MODE));
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| anyhow::anyhow!("cannot create a temp file in {}: {e}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| if durable { tmp.as_file().sync_all() } else { Ok(()) })
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    if replace {
        tmp.persist(path).map_err(|e| anyhow::anyhow!("cannot replace {}: {}", path.display(), e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| anyhow::anyhow!("cannot create {}: {}", path.display(), e.error))?;
    }
    if durable { sync_dir(dir) } else { Ok(()) }
}

/// `fsync` a directory so that renames and removals in it survive a crash.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| anyhow::anyhow!("cannot sync directory {}: {e}", dir.display()))
}

/// `$XDG_STATE_HOME`, else `$HOME/.local/state` (XDG Base Directory spec); `None` when neither
/// is set.
pub fn per_user_state_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_STATE_HOME") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".local/state")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_creates_replaces_or_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one", false, Durability::Durable).unwrap();
        assert!(write_atomic(&p, b"two", false, Durability::Durable).is_err(), "no-clobber must refuse an existing file");
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two", true, Durability::Volatile).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn new_directories_take_their_parents_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("pagerpipe");
        fs::create_dir(&top).unwrap();
        fs::set_permissions(&top, fs::Permissions::from_mode(0o2775)).unwrap();
        ensure_writable(&top.join("pagerduty/failed"), "spool dir").unwrap();
        for d in ["pagerduty", "pagerduty/failed"] {
            let mode = fs::metadata(top.join(d)).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o2775, "{d}");
        }
        assert_eq!(fs::read_dir(top.join("pagerduty/failed")).unwrap().count(), 0, "the probe leaves nothing");
    }

    #[test]
    fn explicit_dir_gets_the_handler_subdir() {
        let dir = tempfile::tempdir().unwrap();
        let c = choose_dir("spool dir", "--spool-dir", Some(dir.path()), Path::new("/nonexistent"), "x", "pagerduty").unwrap();
        assert_eq!(c.dir, dir.path().join("pagerduty"));
        assert!(c.fallback_notice.is_none());
    }

    #[test]
    fn groups_come_from_etc_group() {
        let groups = "root:x:0:\nnagios:x:116:\npagerpipe:x:998:nagios,zabbix,sensu\n# comment\n";
        assert_eq!(group_name(groups, 998), Some(SHARED_GROUP));
        assert_eq!(group_name(groups, 116), Some("nagios"));
        assert_eq!(group_name(groups, 5), None);
        assert_eq!(group_id(groups, SHARED_GROUP), Some(998));
        assert_eq!(group_id(groups, "zabbix"), None);
    }

    #[test]
    fn a_missing_system_base_is_created_shared() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("spool-pagerpipe");
        let chosen = choose_dir("spool dir", "--spool-dir", None, &base, "pagerpipe/spool", "pagerduty").unwrap();
        assert_eq!(chosen.dir, base.join("pagerduty"));
        let notice = chosen.fallback_notice.expect("says what it created");
        assert!(notice.contains("mode 2775"), "{notice}");
        assert_eq!(fs::metadata(&base).unwrap().permissions().mode() & 0o7777, SHARED_DIR_MODE);
        assert_eq!(fs::metadata(base.join("pagerduty")).unwrap().permissions().mode() & 0o7777, SHARED_DIR_MODE, "handler subdirectory like its parent");
        // Existing: nothing to say.
        let again = choose_dir("spool dir", "--spool-dir", None, &base, "pagerpipe/spool", "pagerduty").unwrap();
        assert_eq!(again.fallback_notice, None);
    }
}
