//! Build script of the `pagerpipe` package: gives the handlers a version string that says which
//! commit they were built from, so `--version` (and the man pages generated from it) identify
//! the build.
//!
//! Sets `PAGERPIPE_VERSION` to `<package version> (commit <12 hex digits>)`. The commit comes
//! from, in order: the `PAGERPIPE_COMMIT` environment variable (for builds from a release
//! tarball, where the packager knows the commit), `git rev-parse` in the source tree, else the
//! words `unknown commit` — a tarball without `.git` still builds.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-env-changed=PAGERPIPE_COMMIT");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = std::env::var("PAGERPIPE_COMMIT").ok().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).or_else(git_commit);
    let described = match commit {
        Some(c) => format!("{version} (commit {c})"),
        None => format!("{version} (unknown commit)"),
    };
    println!("cargo::rustc-env=PAGERPIPE_VERSION={described}");
}

/// The short commit hash of `HEAD`, and `rerun-if-changed` lines for the files that move when
/// `HEAD` moves (so a new commit rebuilds, and nothing else does). `None` without git or
/// outside a repository.
fn git_commit() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").arg("-C").arg(&dir).args(args).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    // Only trust a repository whose top level is this package's directory: a tarball unpacked
    // inside some other repository must not report that repository's commit.
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    // `--git-path` resolves worktrees and the common directory; `HEAD` moves on checkout,
    // the branch's ref (loose, or in packed-refs) on commit.
    let path = |name: &str| git(&["rev-parse", "--git-path", name]).map(|p| dir.join(p));
    for name in ["HEAD", "packed-refs"] {
        if let Some(p) = path(name).filter(|p| p.exists()) {
            println!("cargo::rerun-if-changed={}", p.display());
        }
    }
    if let Some(p) = git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| path(&r)) {
        // A packed ref has no file; watch its directory, where it appears on the next commit.
        let watched = if p.exists() { Some(p.as_path()) } else { p.parent().filter(|d| d.is_dir()) };
        if let Some(w) = watched {
            println!("cargo::rerun-if-changed={}", w.display());
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}
