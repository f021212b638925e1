//! The handlers' entry point: a C `main` that does, by hand, the part of Rust's runtime
//! start-up a handler needs, and skips the part it does not.
//!
//! Before a Rust `fn main` runs, the standard library's start-up (`std::rt::lang_start`) does
//! four things on Linux:
//!
//! 1. reopens file descriptors 0, 1 and 2 on `/dev/null` when they are closed, so that a file
//!    opened later cannot become "stderr" and receive log lines;
//! 2. ignores `SIGPIPE`, so a write to a closed pipe fails with `EPIPE` instead of killing the
//!    process;
//! 3. prepares the report of a main-thread stack overflow: it reads `/proc/self/maps` (glibc's
//!    `pthread_getattr_np`, parsed with `sscanf`), maps an alternate signal stack with a guard
//!    page, installs `SIGSEGV` and `SIGBUS` handlers, and unmaps that stack again at exit;
//! 4. names the main thread "main".
//!
//! A handler is a process per event, and the storm path (an identical repeat, skipped) costs
//! about a third of a process start beyond `/bin/true`. Point 3 alone was a third of that:
//! 14 system calls, the alternate stack's page faults, and the text parsing, 0.06–0.14 ms of
//! each event on the benchmark machine (bench/HISTORY.md, session 13). So a handler starts
//! at the C `main` of [`handler_main!`](crate::handler_main) instead, which does 1 and 2
//! ([`start`]) and not 3 or 4:
//!
//! - a stack overflow, which no handler path can reach (no recursion of ours deeper than the
//!   event's JSON, which nests at most 82 deep: deeper values are cut out of its text before it
//!   is parsed, `event::prune_deep`, and serde_json refuses 128), would end the process by `SIGSEGV` instead of
//!   a "has overflowed its stack" line and `SIGABRT`: killed by a signal either way;
//! - a panic message would name the thread `<unnamed>` instead of `main`.
//!
//! The process ends through [`std::process::exit`], which flushes stdout as a return from
//! `fn main` does. Arguments and the environment are read as usual (`std::env::args_os`):
//! Rust's standard library takes them from glibc at load time, before any `main`.
//!
//! This module and the macro hold the project's only `unsafe` code (the workspace denies it
//! everywhere else): the C symbol `main`, and `signal(2)` to ignore `SIGPIPE`, which no safe
//! wrapper offers.

use std::os::fd::{AsFd, IntoRawFd};

/// Defines the C entry point `main` of a handler binary, which calls [`start`], then `$run`
/// (a `fn() -> common::exit::Code`: the handler's whole work), then exits with that code.
///
/// Only on glibc Linux: there Rust's standard library reads the arguments and environment at
/// load time, before any `main`. Elsewhere (musl, other systems) it reads them in the start-up
/// this skips, so there the macro defines an ordinary `fn main` and the start-up runs as usual.
/// The binary's root declares `no_main` under the same condition, and not in its unit-test
/// build, where the test harness provides `main` and this expands to a use of `$run`:
///
/// ```text
/// #![cfg_attr(all(not(test), target_os = "linux", target_env = "gnu"), no_main)]
/// fn run() -> common::exit::Code { /* … */ }
/// common::handler_main!(run);
/// ```
#[macro_export]
macro_rules! handler_main {
    ($run:path) => {
        /// The process's entry point, called by the C library (see `common::entry`).
        #[cfg(all(not(test), target_os = "linux", target_env = "gnu"))]
        #[allow(unsafe_code)] // the C symbol `main`: see `common::entry`
        #[unsafe(no_mangle)]
        extern "C" fn main(_argc: ::core::ffi::c_int, _argv: *const *const ::core::ffi::c_char) -> ::core::ffi::c_int {
            $crate::entry::start();
            $crate::entry::exit($run())
        }

        /// The handler's `main` where Rust's start-up must run (see `common::handler_main!`).
        #[cfg(all(not(test), not(all(target_os = "linux", target_env = "gnu"))))]
        fn main() -> ::std::process::ExitCode {
            $run().into()
        }

        #[cfg(test)]
        const _: fn() -> $crate::exit::Code = $run;
    };
}

/// What a handler needs of Rust's runtime start-up, before anything else runs: descriptors 0,
/// 1 and 2 open (a closed one is opened on `/dev/null`, read-write, as Rust's start-up does),
/// and `SIGPIPE` ignored.
///
/// Never fails. Should `/dev/null` not open (a chroot or container without `/dev`), where
/// Rust's start-up aborted the process, the number is taken by an `O_PATH` descriptor of `/`
/// instead: reading or writing it fails with `EBADF`, which `std::io` takes as a closed
/// stream (an empty stdin, a discarded line), and no file or connection opened later can
/// become "stderr". Only if that fails too does the descriptor stay closed.
pub fn start() {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    // One poll(2) for the three, as Rust's start-up does: a closed one answers POLLNVAL.
    let mut fds =
        [PollFd::new(&stdin, PollFlags::empty()), PollFd::new(&stdout, PollFlags::empty()), PollFd::new(&stderr, PollFlags::empty())];
    let closed = match poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })) {
        Ok(_) => fds.map(|fd| fd.revents().contains(PollFlags::NVAL)),
        Err(_) => [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()].map(|fd| rustix::io::fcntl_getfd(fd) == Err(rustix::io::Errno::BADF)),
    };
    // In order: each open takes the lowest free number, so 0 before 1 before 2.
    for _ in closed.into_iter().filter(|&c| c) {
        use rustix::fs::{Mode, OFlags, open};
        // Not close-on-exec: a `--from exec` job inherits it as its own descriptor.
        let taken = open("/dev/null", OFlags::RDWR, Mode::empty()).or_else(|_| open("/", OFlags::PATH, Mode::empty()));
        if let Ok(fd) = taken {
            let _ = fd.into_raw_fd(); // kept open for the life of the process
        }
    }
    ignore_sigpipe();
}

/// `SIGPIPE` ignored: a write to a pipe or socket whose reader is gone (a monitoring system
/// that stopped reading stderr, `--list | head`) returns `EPIPE`, which the handler treats as
/// a failed write, instead of killing it between a delivery and its record. Children started
/// with `std::process::Command` get the default disposition back, as with Rust's start-up.
#[allow(unsafe_code)]
fn ignore_sigpipe() {
    // SAFETY: signal(2) with SIG_IGN touches no memory of ours and cannot fail for SIGPIPE;
    // this runs first in `main`, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Ends the process with `code`'s exit status, after flushing stdout (through
/// [`std::process::exit`]).
pub fn exit(code: crate::exit::Code) -> ! {
    std::process::exit(i32::from(code.as_u8()))
}
