//! Directories and durable files, as the state store and the spool both need them.
//!
//! - [`choose_dir`]: the system directory (`/var/lib/pagerpipe`, `/var/spool/pagerpipe`) when it
//!   can be written, else a per-user one under `$XDG_STATE_HOME` (or `~/.local/state`), with a
//!   notice for the log — a handler run by hand as an ordinary user still works, and says where
//!   its files went.
//! - [`write_atomic`]: a temp file in the same directory, fsynced, renamed into place, and the
//!   directory fsynced, so that after a crash the file is either absent or whole
//!   (STACK.md: "fsync the directory afterwards for durability").
//!
//! **Shared directories.** The packages' state and spool directories are `root:pagerpipe`
//! mode 2775: every member of the group can create, rename and remove entries in them. So no
//! name in them is trusted to be what it looks like. A member could plant a FIFO named like a
//! record or a spool entry (an ordinary `open` + `read` blocks forever), a symlink (an `open`
//! follows it, and `O_CREAT` creates its target wherever it points), a directory, or hold a
//! lock forever. The primitives here never follow, never block and never wait without a
//! deadline:
//!
//! - [`open_regular`] / [`read_regular`]: `O_NOFOLLOW | O_NONBLOCK`, then `fstat` of the open
//!   descriptor; anything but a regular file is refused ([`NotRegular`], see [`not_regular`])
//!   before a byte is read. Used by [`open_lock`].
//! - [`ensure_writable`] refuses a directory that is a symlink (the handler subdirectory,
//!   `failed/`): it is created, never followed.
//! - [`list_entries`]: a directory's entries with their kind from `lstat`, so a caller can
//!   skip or [`move_aside`] what is not a regular file, and carry on with the entries behind.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
            let base =
                per_user_state_dir().ok_or_else(|| first.context("and neither XDG_STATE_HOME nor HOME is set for a per-user fallback"))?;
            let dir = base.join(user_sub).join(handler);
            ensure_writable(&dir, what)?;
            let notice =
                format!("{what} {} is not writable; using {} (set {flag} or grant write access)", default.display(), dir.display());
            Ok(Chosen { dir, fallback_notice: Some(notice) })
        }
    }
}

/// The directory [`choose_dir`] would pick, found without creating or changing anything (for
/// `--explain`, which writes nothing): `<explicit>/<handler>`; otherwise `<system>/<handler>`
/// when this user could write it (it, or the nearest of its parents that exists, is a
/// directory this user may write in), else the per-user fallback
/// `<$XDG_STATE_HOME or ~/.local/state>/<user_sub>/<handler>`. The directory may not exist
/// (nothing was written there yet).
pub fn find_dir(explicit: Option<&Path>, system: &Path, user_sub: &str, handler: &str) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.join(handler);
    }
    let default = system.join(handler);
    let nearest = default.ancestors().find(|d| d.exists());
    if nearest.is_some_and(|d| d.is_dir() && writable(d).is_ok()) {
        return default;
    }
    per_user_state_dir().map_or(default, |base| base.join(user_sub).join(handler))
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
/// for `File::lock` / `try_lock` (STACK.md: never lock the file that a rename replaces): a
/// flush's claim on an incident's spooled entries (`spool::Claim`).
///
/// One `open`, read-only with `O_CREAT` (`flock` needs no write access), so that a lock file
/// another member of the `pagerpipe` group created can still be used (a second one without
/// `O_CREAT` when the kernel refuses that in a sticky directory). Never follows a
/// symlink (a dangling `.lock` symlink does not create a file where it points) and never
/// blocks on a FIFO: anything but a regular file is refused ([`not_regular`] tells). A new
/// lock file gets [`FILE_MODE`] (no access for other users, who could otherwise hold it).
///
/// Errors name the file (the cause is the error's source: print with `{:#}`).
pub fn open_lock(path: &Path) -> anyhow::Result<LockFile> {
    let mut options = OpenOptions::new();
    options.read(true);
    // Group members share locks (flock needs only read access); other users get none, so
    // that they cannot hold one.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    #[cfg(not(unix))]
    options.write(true).create(true).truncate(false);
    match open_regular_meta(path, &options, true) {
        // `O_CREAT` makes a directory fail to open rather than open and show as one.
        Err(e) if e.kind() == ErrorKind::IsADirectory => Err(std::io::Error::new(ErrorKind::InvalidInput, NotRegular(Kind::Directory))),
        // In a sticky directory (3775, an operator's choice), a kernel that protects regular
        // files there (`fs.protected_regular`) refuses `O_CREAT` on another user's existing
        // file whatever the access asked; opened without it, the file is shared as in a 2775
        // one. When nothing is there (any more: its holder may have just removed it), the
        // creation is tried again, and its error, if any, stands.
        Err(e) if e.kind() == ErrorKind::PermissionDenied => match open_regular_meta(path, &options, false) {
            Err(again) if again.kind() == ErrorKind::NotFound => open_regular_meta(path, &options, true),
            other => other,
        },
        other => other,
    }
    .map(|(file, meta)| LockFile::new(file, &meta))
    // The io::Error stays the source, so that `not_regular` can tell; `{:#}` shows it.
    .map_err(|e| anyhow::Error::new(e).context(format!("cannot open lock {}", path.display())))
}

/// An open lock file ([`open_lock`]) and which file it is (device and inode, from the open's
/// own check).
#[derive(Debug)]
pub struct LockFile {
    file: File,
    #[cfg(unix)]
    id: (u64, u64),
}

impl LockFile {
    fn new(file: File, meta: &std::fs::Metadata) -> LockFile {
        #[cfg(unix)]
        let id = id_of(meta);
        #[cfg(not(unix))]
        let _ = meta;
        LockFile {
            file,
            #[cfg(unix)]
            id,
        }
    }

    /// The open file, to lock.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The open file, kept while its lock is held (dropping it releases the lock).
    pub fn into_file(self) -> File {
        self.file
    }

    /// Whether `path` still names this file: a lock taken on a file that its last holder
    /// removed (or replaced) meanwhile guards nothing, and must be taken again on the new
    /// one. One `lstat`.
    pub fn still_at(&self, path: &Path) -> bool {
        #[cfg(unix)]
        return still_names(path, self.id);
        #[cfg(not(unix))]
        path.exists()
    }
}

/// Which file `meta` describes: (device, inode).
#[cfg(unix)]
pub fn id_of(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Whether `path` (not followed) still names the file `id` ([`id_of`]): a lock taken on a file
/// that was removed or replaced meanwhile guards nothing. One `lstat`.
#[cfg(unix)]
pub fn still_names(path: &Path, id: (u64, u64)) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| id_of(&m) == id)
}

/// [`open_lock`], but a lock path that is not a regular file (a FIFO, a directory, a
/// symlink someone planted) is renamed aside to `<name>.refused-<unix nanos>` in the same
/// directory — without opening or following it — reported through `notice`, and a fresh lock
/// file is created in its place: a planted entry costs one log line, not every later
/// invocation's lock.
///
/// Errors: those of [`open_lock`] for other causes, or the rename's.
pub fn open_lock_or_move_aside(path: &Path, notice: &mut dyn FnMut(String)) -> anyhow::Result<LockFile> {
    match open_lock(path) {
        // A lock file this user may not open (another member of the group created it mode
        // 0000): no flush could ever claim the incident's spooled entries, and they would wait
        // until spool_max_age gave them up. Moved aside like a planted FIFO.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == ErrorKind::PermissionDenied) => {
            let aside = refused_path(path);
            fs::rename(path, &aside)
                .map_err(|re| anyhow::anyhow!("cannot open lock {} ({e:#}) nor move it aside: {re}", path.display()))?;
            notice(format!("lock file {} could not be opened by this user; moved to {}", path.display(), aside.display()));
            open_lock(path)
        }
        Err(e) if let Some(kind) = not_regular(e.as_ref()) => {
            let aside = refused_path(path);
            fs::rename(path, &aside).map_err(|re| anyhow::anyhow!("cannot move {} aside: {re}", path.display()))?;
            notice(format!(
                "lock file {} was {}, not a regular file; moved to {} (never followed or read)",
                path.display(),
                kind.described(),
                aside.display()
            ));
            open_lock(path)
        }
        other => other,
    }
}

/// Where a planted entry at `path` is moved aside to: `<name>.refused-<unix nanos>` in the
/// same directory.
pub fn refused_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{name}.refused-{}", crate::clock::now_unix_nanos()))
}

/// What a directory entry is, by `lstat` (a symlink is a symlink, whatever it points to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file: the only kind pagerpipe reads or locks.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link (never followed).
    Symlink,
    /// A FIFO (named pipe): opening it for reading blocks until a writer comes.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A block or character device.
    Device,
    /// Anything else the platform has.
    Other,
}

impl Kind {
    /// The kind of `file_type`.
    pub fn of(file_type: fs::FileType) -> Kind {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if file_type.is_fifo() {
                return Kind::Fifo;
            }
            if file_type.is_socket() {
                return Kind::Socket;
            }
            if file_type.is_block_device() || file_type.is_char_device() {
                return Kind::Device;
            }
        }
        if file_type.is_symlink() {
            Kind::Symlink
        } else if file_type.is_dir() {
            Kind::Directory
        } else if file_type.is_file() {
            Kind::Regular
        } else {
            Kind::Other
        }
    }

    /// `a FIFO`, `a symlink`, … for messages.
    pub fn described(self) -> &'static str {
        match self {
            Kind::Regular => "a regular file",
            Kind::Directory => "a directory",
            Kind::Symlink => "a symlink",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::Device => "a device",
            Kind::Other => "not a regular file",
        }
    }
}

/// The error [`open_regular`] returns (inside an `io::Error` of kind `InvalidInput`) for a path
/// that is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRegular(pub Kind);

impl std::fmt::Display for NotRegular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "is {}, not a regular file; refused (never read or followed)", self.0.described())
    }
}

impl std::error::Error for NotRegular {}

/// The kind of a path that [`open_regular`], [`read_regular`] or [`open_lock`] refused for
/// not being a regular file: `Some(kind)` for a symlink (`ELOOP` from `O_NOFOLLOW`), a FIFO
/// without a reader (`ENXIO` on a write open), or anything `fstat` showed; `None` for other
/// errors (not found, permission, I/O). Looks through `anyhow` contexts too.
pub fn not_regular(e: &(dyn std::error::Error + 'static)) -> Option<Kind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(n) = err.downcast_ref::<NotRegular>() {
            return Some(n.0);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(n) = io.get_ref().and_then(|inner| inner.downcast_ref::<NotRegular>()) {
                return Some(n.0);
            }
            #[cfg(unix)]
            match io.raw_os_error() {
                Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => return Some(Kind::Symlink),
                Some(code) if code == rustix::io::Errno::NXIO.raw_os_error() => return Some(Kind::Fifo),
                _ => {}
            }
        }
        cur = err.source();
    }
    None
}

/// Open `path` with `options`, refusing anything but a regular file, without following a
/// symlink and without blocking: `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` are added (Unix), then
/// the open descriptor is checked with `fstat`. A symlink fails with `ELOOP`; a FIFO, a
/// directory, a device or a socket with an `InvalidInput` error carrying [`NotRegular`] (a
/// socket, and a FIFO opened for writing without a reader, which the open refuses with
/// `ENXIO`, by `lstat`) — check with [`not_regular`]. `O_NONBLOCK` has no effect on a regular
/// file.
///
/// Errors: the open's own (not found, permission …) or the refusal.
pub fn open_regular(path: &Path, options: &OpenOptions) -> std::io::Result<File> {
    open_regular_meta(path, options, false).map(|(file, _)| file)
}

/// [`open_regular`], with the metadata it checked; `create`: with `O_CREAT` whatever the
/// access (a read-only lock file created in the same `open`; unix only, elsewhere the options
/// say).
pub(crate) fn open_regular_meta(path: &Path, options: &OpenOptions, create: bool) -> std::io::Result<(File, std::fs::Metadata)> {
    let mut options = options.clone();
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        if create {
            flags |= OFlags::CREATE;
        }
        options.custom_flags(flags.bits() as i32);
    }
    #[cfg(not(unix))]
    let _ = create;
    let file = match options.open(path) {
        Ok(file) => file,
        // No open accepts a socket, and a write open a FIFO without a reader: `ENXIO` either
        // way, so what is there is told by `lstat` (never followed).
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
            return Err(match fs::symlink_metadata(path).map(|m| Kind::of(m.file_type())) {
                Ok(kind) if kind != Kind::Regular => std::io::Error::new(ErrorKind::InvalidInput, NotRegular(kind)),
                _ => e,
            });
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let kind = Kind::of(meta.file_type());
    if kind != Kind::Regular {
        return Err(std::io::Error::new(ErrorKind::InvalidInput, NotRegular(kind)));
    }
    Ok((file, meta))
}

/// The rest of `file` (whose metadata is `meta`), at most `max_bytes`, read into a buffer
/// sized from the file's length (one `read` for a record, not five growing ones).
///
/// Errors: a read error, or more than `max_bytes` (`InvalidData`).
fn read_whole(file: File, meta: &std::fs::Metadata, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    let expected = usize::try_from(meta.len().min(max_bytes).saturating_add(1)).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(expected);
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(std::io::Error::new(ErrorKind::InvalidData, format!("is larger than {max_bytes} bytes")));
    }
    Ok(bytes)
}

/// Read the regular file `path` whole, at most `max_bytes` ([`open_regular`]: never follows,
/// never blocks, refuses what is not a regular file). `NotFound` is passed through as it is.
///
/// Errors: those of [`open_regular`], a read error, or a file larger than `max_bytes`
/// (`InvalidData`).
pub fn read_regular(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    let (file, meta) = open_regular_meta(path, OpenOptions::new().read(true), false)?;
    read_whole(file, &meta, max_bytes)
}

/// [`read_regular`], following symlinks: for a file that a symlink names on purpose in a
/// directory only the operator writes (a tz database zone: `US/Eastern` →
/// `../America/New_York`). Still never blocks: `O_NONBLOCK`, then `fstat` of the open
/// descriptor, so a FIFO or a device found there is refused ([`NotRegular`]) before a byte is
/// read, and at most `max_bytes` are read.
pub fn read_regular_followed(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags((OFlags::NONBLOCK | OFlags::CLOEXEC).bits() as i32);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    let kind = Kind::of(meta.file_type());
    if kind != Kind::Regular {
        return Err(std::io::Error::new(ErrorKind::InvalidInput, NotRegular(kind)));
    }
    read_whole(file, &meta, max_bytes)
}

/// Why a file the operator named was not read ([`read_configured`]). Its `Display` is one
/// phrase to put after the path, for a one-line message: `is a FIFO, not a regular file`,
/// `is larger than 1048576 bytes`, `cannot be read: <os error>`.
#[derive(Debug)]
pub enum NotReadable {
    /// Not a regular file (a FIFO, a device, a directory, a socket): what is there instead.
    NotRegular(Kind),
    /// Larger than the cap given, in bytes.
    TooLarge(u64),
    /// The system refused (missing, permission denied …).
    Io(std::io::Error),
}

impl std::fmt::Display for NotReadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReadable::NotRegular(kind) => write!(f, "is {}, not a regular file", kind.described()),
            NotReadable::TooLarge(max_bytes) => write!(f, "is larger than {max_bytes} bytes"),
            NotReadable::Io(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// Read a file the operator names in a setting or a flag (a settings file, a `*_file` secret, a
/// `ca_file`), at most `max_bytes`, with [`read_regular_followed`]: a symlink is followed (the
/// operator's own layout), but a FIFO, a device, a directory or a socket is refused before a
/// byte is read, so that `--config /some/fifo` never blocks and `/dev/zero` never fills memory.
///
/// Errors: [`NotReadable`].
pub fn read_configured(path: &Path, max_bytes: u64) -> Result<Vec<u8>, NotReadable> {
    read_regular_followed(path, max_bytes).map_err(|e| {
        // A socket cannot be opened (`ENXIO`): what is there is told by `stat`.
        #[cfg(unix)]
        if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error())
            && let Ok(kind) = fs::metadata(path).map(|m| Kind::of(m.file_type()))
        {
            return NotReadable::NotRegular(kind);
        }
        if let Some(kind) = not_regular(&e) {
            NotReadable::NotRegular(kind)
        } else if e.kind() == ErrorKind::InvalidData {
            NotReadable::TooLarge(max_bytes)
        } else {
            NotReadable::Io(e)
        }
    })
}

/// [`read_regular`], with the uid of the file's owner (from the same open descriptor, so the
/// bytes and the owner belong to one file; 0 where Unix owners do not exist).
///
/// Errors: those of [`read_regular`].
pub fn read_regular_owned(path: &Path, max_bytes: u64) -> std::io::Result<(Vec<u8>, u32)> {
    let (file, meta) = open_regular_meta(path, OpenOptions::new().read(true), false)?;
    #[cfg(unix)]
    let owner = std::os::unix::fs::MetadataExt::uid(&meta);
    #[cfg(not(unix))]
    let owner = 0;
    Ok((read_whole(file, &meta, max_bytes)?, owner))
}

/// This process's effective uid (0 where Unix owners do not exist).
pub fn euid() -> u32 {
    #[cfg(unix)]
    return rustix::process::geteuid().as_raw();
    #[cfg(not(unix))]
    0
}

/// The entries of `dir` (names as given by the OS, lossily UTF-8) with their [`Kind`] from
/// `lstat` (symlinks are not followed), in name order. An entry whose kind cannot be read is
/// reported as [`Kind::Other`]. Callers read only [`Kind::Regular`] ones and skip or
/// [`move_aside`] the rest, so that one bad entry never stops the entries behind it.
///
/// Errors: the directory cannot be listed.
pub fn list_entries(dir: &Path) -> std::io::Result<Vec<(String, Kind)>> {
    let mut out = Vec::new();
    for item in fs::read_dir(dir)? {
        let item = item?;
        let kind = item.file_type().map(Kind::of).unwrap_or(Kind::Other);
        out.push((item.file_name().to_string_lossy().into_owned(), kind));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Move the entry `name` of `dir` — whatever it is: a FIFO, a symlink, a directory — into the
/// subdirectory `aside` of `dir` (created like [`ensure_writable`], refused if it is a
/// symlink), without opening or following it (a `rename` of the entry itself). An existing
/// entry of that name in `aside` is not replaced: the moved one gets a `.1`, `.2` … suffix.
/// Returns the new path.
///
/// Errors name both paths.
pub fn move_aside(dir: &Path, name: &str, aside: &str) -> anyhow::Result<PathBuf> {
    let to_dir = dir.join(aside);
    ensure_writable(&to_dir, "directory")?;
    let from = dir.join(name);
    let mut to = to_dir.join(name);
    let mut n = 0u32;
    while fs::symlink_metadata(&to).is_ok() {
        n = n.saturating_add(1);
        if n > 1000 {
            anyhow::bail!("cannot move {} aside: {} is full of entries of that name", from.display(), to_dir.display());
        }
        to = to_dir.join(format!("{name}.{n}"));
    }
    fs::rename(&from, &to).map_err(|e| anyhow::anyhow!("cannot move {} to {}: {e}", from.display(), to.display()))?;
    Ok(to)
}

/// Create `dir` (and parents) and check that a file can be created in it.
///
/// Each directory created takes the permission bits of its parent (on Unix), so that under the
/// packages' `root:pagerpipe` mode-2775 directories every handler subdirectory is again
/// group-writable and setgid, whatever the creating process's umask; but never the others'
/// write bit, nor the group's under a world-writable parent (such as `/tmp`), and the first
/// directory of a relative path takes the working directory's.
///
/// Errors name the directory: `cannot create <what> <dir>: …` or `<what> <dir> is not writable: …`.
///
/// `dir` itself must be a real directory, not a symlink to one (in a group-writable parent, a
/// member of the group could otherwise point it anywhere); its parents may be symlinks (an
/// operator's `--state-dir` may well be one).
pub fn ensure_writable(dir: &Path, what: &str) -> anyhow::Result<()> {
    let check_writable = || writable(dir).map_err(|e| anyhow::anyhow!("{what} {} is not writable: {e}", dir.display()));
    let found = fs::symlink_metadata(dir);
    // The common case, at every event: the directory is there (one `lstat`, not four).
    if found.as_ref().is_ok_and(|m| m.file_type().is_dir()) {
        return check_writable();
    }
    // Something else of that name, or of a parent's name (`--spool-dir` given a file): say
    // what it is, not "cannot create …: File exists".
    let exists = found.is_ok_and(|m| !m.is_dir() && !m.file_type().is_symlink());
    if !exists {
        if let Some((parent, meta)) = dir.ancestors().skip(1).find_map(|a| fs::metadata(a).ok().map(|m| (a, m)))
            && !meta.is_dir()
        {
            anyhow::bail!(
                "cannot create {what} {}: {} is {}, not a directory (remove it, or set another directory)",
                dir.display(),
                parent.display(),
                Kind::of(meta.file_type()).described()
            );
        }
        create_dir_like_parent(dir).map_err(|e| anyhow::anyhow!("cannot create {what} {}: {e}", dir.display()))?;
    }
    match fs::symlink_metadata(dir).map(|m| Kind::of(m.file_type())) {
        Ok(Kind::Directory) => {}
        Ok(kind) => anyhow::bail!(
            "{what} {} is {}, not a directory; refused (remove it, or set another directory)",
            dir.display(),
            kind.described()
        ),
        Err(e) => anyhow::bail!("cannot inspect {what} {}: {e}", dir.display()),
    }
    check_writable()
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
    {
        use std::os::unix::fs::PermissionsExt;
        // A relative path's first directory has the working directory for its parent.
        let mode = fs::metadata(parent.unwrap_or(Path::new(".")))?.permissions().mode() & 0o7777;
        // Never writable by others: a world-writable parent (`/tmp`, or one made under `umask
        // 000`) would let any local user remove the spooled pages and the records. Nor by the
        // group when the parent is world-writable: its group bits say nothing of the group
        // this directory gets (its creator's, which other users may share).
        let mode = if mode & 0o002 != 0 { mode & !0o022 } else { mode };
        // Best effort: a directory we cannot chmod still works for its creator.
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode & !0o002));
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

/// Mode of a file that holds a credential (a spool entry or record carrying a check's own
/// token): 0600, the owner only.
pub const PRIVATE_MODE: u32 = 0o600;

/// [`PRIVATE_MODE`] when `private`, else [`FILE_MODE`].
pub fn mode_for(private: bool) -> u32 {
    if private { PRIVATE_MODE } else { FILE_MODE }
}

/// Write `bytes` to `path` atomically: temp file in `path`'s directory (mode [`FILE_MODE`] on
/// Unix), `fsync` (when [`Durability::Durable`]), rename over `path`, `fsync` of the directory
/// (when durable). With `replace: false` an existing `path` is an error instead of being
/// replaced.
///
/// Errors name the file.
pub fn write_atomic(path: &Path, bytes: &[u8], replace: bool, durability: Durability) -> anyhow::Result<()> {
    write_atomic_mode(path, bytes, replace, durability, FILE_MODE)
}

/// [`write_atomic`] with the file created with `mode` (e.g. 0600 for one holding a credential:
/// it is never readable by others, not even for a moment).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], replace: bool, durability: Durability, mode: u32) -> anyhow::Result<()> {
    let durable = durability == Durability::Durable;
    if durable {
        // A disk flush has no bound: a Redis hold's renewal starts first (crate::lease).
        crate::lease::before_wait(Duration::MAX);
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(mode));
    let mut tmp = builder.tempfile_in(dir).map_err(|e| anyhow::anyhow!("cannot create a temp file in {}: {e}", dir.display()))?;
    // Written through the file, not the temp file's wrapper, whose errors also name the temp
    // file: one path in the line (the file being written), not two.
    tmp.as_file_mut()
        .write_all(bytes)
        .and_then(|()| if durable { tmp.as_file().sync_all() } else { Ok(()) })
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    if replace {
        tmp.persist(path).map_err(|e| anyhow::anyhow!("cannot replace {}: {}", path.display(), e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| anyhow::anyhow!("cannot create {}: {}", path.display(), e.error))?;
    }
    if durable { sync_dir(dir) } else { Ok(()) }
}

/// `fsync` a directory so that renames and removals in it survive a crash. Opened with
/// `O_DIRECTORY | O_NONBLOCK` (Unix): a path swapped for a FIFO meanwhile (by a member of the
/// group that shares the directory) is refused at once (`ENOTDIR`), never waited on.
///
/// Errors: the directory cannot be opened or synced (one line naming it).
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    crate::lease::before_wait(Duration::MAX);
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags((OFlags::DIRECTORY | OFlags::NONBLOCK | OFlags::CLOEXEC).bits() as i32);
    }
    options.open(dir).and_then(|d| d.sync_all()).map_err(|e| anyhow::anyhow!("cannot sync directory {}: {e}", dir.display()))
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
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn a_directory_swapped_for_a_fifo_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        sync_dir(dir.path()).unwrap();
        let fifo = dir.path().join("spool");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        // Without O_NONBLOCK the open would wait for a writer for good (the test would hang).
        let e = sync_dir(&fifo).unwrap_err().to_string();
        assert!(e.contains("cannot sync directory") && e.contains("spool"), "{e}");
    }

    #[test]
    #[cfg(unix)]
    fn an_operator_file_is_read_only_when_regular_and_small() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        assert_eq!(read_configured(&fifo, 10).unwrap_err().to_string(), "is a FIFO, not a regular file");
        assert_eq!(read_configured(dir.path(), 10).unwrap_err().to_string(), "is a directory, not a regular file");
        assert_eq!(read_configured(Path::new("/dev/zero"), 10).unwrap_err().to_string(), "is a device, not a regular file");
        let file = dir.path().join("f");
        fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_configured(&file, 10).unwrap(), b"0123456789");
        assert_eq!(read_configured(&file, 9).unwrap_err().to_string(), "is larger than 9 bytes");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_configured(&link, 10).unwrap(), b"0123456789", "a symlink the operator made is followed");
        assert!(matches!(read_configured(&dir.path().join("missing"), 10), Err(NotReadable::Io(_))));
    }

    #[test]
    fn a_file_where_a_directory_should_be_is_named_as_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pagerduty");
        fs::write(&p, b"").unwrap();
        let err = ensure_writable(&p, "spool dir").unwrap_err().to_string();
        assert!(err.contains("is a regular file, not a directory"), "{err}");
        ensure_writable(&dir.path().join("twilio"), "spool dir").unwrap();
        assert!(dir.path().join("twilio").is_dir());
        // The file is a parent (`--spool-dir` given a file): named too.
        let err = ensure_writable(&p.join("slack"), "spool dir").unwrap_err().to_string();
        assert!(err.contains("pagerduty is a regular file, not a directory"), "{err}");
    }

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

    #[cfg(unix)]
    fn fifo(path: &Path) {
        rustix::fs::mkfifoat(rustix::fs::CWD, path, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_opened_and_nothing_blocks_or_follows() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let outside = tempfile::tempdir().unwrap();
        fs::write(d.join("regular.json"), b"{}").unwrap();
        fifo(&d.join("fifo.json"));
        fs::create_dir(d.join("dir.json")).unwrap();
        fs::write(outside.path().join("secret"), b"outside").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), d.join("link.json")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("created-by-follow"), d.join("dangling.lock")).unwrap();

        assert_eq!(read_regular(&d.join("regular.json"), 10).unwrap(), b"{}");
        assert_eq!(read_regular(&d.join("missing.json"), 10).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(read_regular(&d.join("regular.json"), 1).unwrap_err().kind(), ErrorKind::InvalidData);
        for (name, kind) in [("fifo.json", Kind::Fifo), ("dir.json", Kind::Directory), ("link.json", Kind::Symlink)] {
            let err = read_regular(&d.join(name), 1024).unwrap_err();
            assert_eq!(not_regular(&err), Some(kind), "{name}: {err}");
        }
        // Locks: a FIFO, a directory or a dangling symlink is refused, nothing is created.
        for (name, kind) in [("fifo.json", Kind::Fifo), ("dir.json", Kind::Directory), ("dangling.lock", Kind::Symlink)] {
            let err = open_lock(&d.join(name)).unwrap_err();
            assert_eq!(not_regular(err.as_ref()), Some(kind), "{name}: {err:#}");
            assert!(err.to_string().contains(name), "names the file: {err}");
        }
        assert!(!outside.path().join("created-by-follow").exists(), "a symlink is never followed");
        open_lock(&d.join("missing.lock")).unwrap();
        assert!(d.join("missing.lock").is_file(), "a missing lock file is created");

        assert_eq!(
            list_entries(d).unwrap(),
            vec![
                ("dangling.lock".to_string(), Kind::Symlink),
                ("dir.json".to_string(), Kind::Directory),
                ("fifo.json".to_string(), Kind::Fifo),
                ("link.json".to_string(), Kind::Symlink),
                ("missing.lock".to_string(), Kind::Regular),
                ("regular.json".to_string(), Kind::Regular),
            ]
        );
    }

    /// No `open` accepts a socket (`ENXIO`, which a FIFO without a reader also gives a write
    /// open): a socket planted under a lock's or a record's name is told as one, not as a FIFO.
    #[cfg(unix)]
    #[test]
    fn a_planted_socket_is_told_as_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = read_regular(&path, 10).unwrap_err();
        assert_eq!(not_regular(&err), Some(Kind::Socket), "{err}");
        let err = open_lock(&path).unwrap_err();
        assert_eq!(not_regular(err.as_ref()), Some(Kind::Socket), "{err:#}");
        let mut notices = Vec::new();
        open_lock_or_move_aside(&path, &mut |n| notices.push(n)).unwrap();
        assert!(notices.len() == 1 && notices[0].contains("was a socket"), "{notices:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_lock_is_moved_aside_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".flush.lock");
        fifo(&path);
        let mut notices = Vec::new();
        let f = open_lock_or_move_aside(&path, &mut |n| notices.push(n)).unwrap();
        assert!(f.file().metadata().unwrap().is_file());
        assert_eq!(notices.len(), 1);
        assert!(notices[0].contains("was a FIFO"), "{}", notices[0]);
        open_lock_or_move_aside(&path, &mut |n| notices.push(n)).unwrap();
        assert_eq!(notices.len(), 1, "a regular lock file is used as it is");
    }

    #[cfg(unix)]
    #[test]
    fn bad_entries_are_moved_aside_and_symlinked_dirs_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let outside = tempfile::tempdir().unwrap();
        fifo(&d.join("a.json"));
        fs::create_dir(d.join("b.json")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.join("c.json")).unwrap();
        for name in ["a.json", "b.json", "c.json"] {
            let to = move_aside(d, name, "failed").unwrap();
            assert_eq!(to, d.join("failed").join(name));
            assert!(fs::symlink_metadata(&to).is_ok() && fs::symlink_metadata(d.join(name)).is_err());
        }
        fifo(&d.join("a.json"));
        assert_eq!(move_aside(d, "a.json", "failed").unwrap(), d.join("failed/a.json.1"), "nothing replaced");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "nothing moved into the symlink's target");

        // A `failed` (or handler) directory that is a symlink is refused, not followed.
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), other.path().join("failed")).unwrap();
        fs::write(other.path().join("x.json"), b"{}").unwrap();
        let err = move_aside(other.path(), "x.json", "failed").unwrap_err();
        assert!(err.to_string().contains("is a symlink"), "{err}");
        assert!(other.path().join("x.json").exists());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        let err = ensure_writable(&other.path().join("failed"), "spool failed dir").unwrap_err();
        assert!(err.to_string().contains("spool failed dir") && err.to_string().contains("symlink"), "{err}");
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
        assert_eq!(
            fs::metadata(base.join("pagerduty")).unwrap().permissions().mode() & 0o7777,
            SHARED_DIR_MODE,
            "handler subdirectory like its parent"
        );
        // Existing: nothing to say.
        let again = choose_dir("spool dir", "--spool-dir", None, &base, "pagerpipe/spool", "pagerduty").unwrap();
        assert_eq!(again.fallback_notice, None);
    }
}
