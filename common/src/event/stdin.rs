//! Standard input within the invocation's time limit.
//!
//! A handler reads its event from stdin until end of input. A sender that never closes the
//! pipe (a wrapper script that keeps it open, a monitoring system that hangs after writing)
//! would leave the handler waiting forever: no page, and one of the monitoring system's
//! handler slots taken until it kills the process. [`Stdin`] reads within a time limit (the
//! `--timeout`), and tells its reader when input stops for a while, so that a whole event
//! followed by an open pipe is not waited on ([`super::read_capped`]).
//!
//! A terminal is read without a limit: someone is typing or pasting.

use std::io::{ErrorKind, IsTerminal, Read};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// How long input may stop, once some has come, before [`Stdin::read`] says so
/// ([`ErrorKind::WouldBlock`]): 100 ms. A sender writes an event in one go; a pause this long
/// after a whole event means the pipe was left open.
pub const IDLE: Duration = Duration::from_millis(100);

/// The process's stdin, read until `end`.
///
/// Reads fail with [`ErrorKind::TimedOut`] once `end` has passed with no input ready, and
/// with [`ErrorKind::WouldBlock`] when, after some input, none came for [`IDLE`] (read again
/// to go on waiting); on a terminal they wait. Reads go to the file descriptor directly, not
/// through std's buffer.
#[derive(Debug)]
pub struct Stdin {
    stdin: std::io::Stdin,
    /// `None`: a terminal, read without a limit.
    end: Option<Instant>,
    /// Whether any input came yet.
    some: bool,
}

impl Stdin {
    /// The process's stdin, read within `limit` from now (without a limit on a terminal).
    pub fn within(limit: Duration) -> Stdin {
        let stdin = std::io::stdin();
        let end = (!stdin.is_terminal()).then(|| Instant::now().checked_add(limit).unwrap_or_else(Instant::now));
        Stdin { stdin, end, some: false }
    }
}

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            // A terminal: wait as long as it takes (also when it was left non-blocking).
            let (wait, left) = match self.end {
                None => (None, None),
                Some(end) => {
                    let left = end.saturating_duration_since(Instant::now());
                    (Some(if self.some { left.min(IDLE) } else { left }), Some(left))
                }
            };
            let timeout = wait.map(|w| Timespec { tv_sec: w.as_secs() as i64, tv_nsec: i64::from(w.subsec_nanos()) });
            let fd = self.stdin.as_fd();
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(0) if wait < left => return Err(ErrorKind::WouldBlock.into()),
                Ok(0) => return Err(ErrorKind::TimedOut.into()),
                // Ready, at end of input (POLLHUP), or not readable (POLLNVAL, POLLERR): the
                // read says which.
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            return match rustix::io::read(fd, &mut *buf) {
                Ok(n) => {
                    self.some |= n > 0;
                    Ok(n)
                }
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
                // No stdin at all (descriptor 0 closed): empty, as std reads it.
                Err(rustix::io::Errno::BADF) => Ok(0),
                Err(e) => Err(e.into()),
            };
        }
    }
}
