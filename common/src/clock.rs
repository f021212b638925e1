//! Wall-clock time, with one override for tests.
//!
//! Refresh windows, rate caps and daily rotation all depend on "now". Tests cannot wait 30
//! minutes or for tomorrow, so the environment variable `PAGERPIPE_NOW` (Unix seconds), when
//! set, replaces the system clock for these decisions. Durations measured for logs and
//! deadlines always use the monotonic clock and ignore it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Environment variable that fixes "now" (Unix seconds) for tests and rehearsals.
pub const NOW_ENV: &str = "PAGERPIPE_NOW";

/// Now, in Unix seconds (`PAGERPIPE_NOW` when set to a number, at most
/// [`MAX_RFC3339_SECS`] so that no time arithmetic on it can overflow).
pub fn now_unix() -> u64 {
    if let Some(fixed) = std::env::var(NOW_ENV).ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        return fixed.min(MAX_RFC3339_SECS);
    }
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Now in Unix nanoseconds from the system clock (for unique tokens; not overridable).
pub fn now_unix_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Latest time [`rfc3339`] writes: 9999-12-31T23:59:59Z (RFC 3339 has four-digit years).
pub const MAX_RFC3339_SECS: u64 = 253_402_300_799;

/// RFC 3339 UTC timestamp (`2026-11-21T10:00:00Z`) for Unix seconds. A time past year 9999
/// (an event's `check.executed` of `i64::MAX`) is written as [`MAX_RFC3339_SECS`], never a panic.
pub fn rfc3339(unix_secs: u64) -> String {
    let secs = unix_secs.min(MAX_RFC3339_SECS);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

/// Seconds from `then` to `now` (both Unix seconds), for "how long ago" decisions (refresh
/// windows, spool ages, claim ages). A `then` in the future — the clock was stepped back
/// after a record was written, or another host's clock is ahead — counts as `now`: age 0,
/// never an underflow, never a negative wait.
///
/// Pair it with [`not_after`] when a record is written back: a stored time that is in the
/// future would otherwise keep its age at 0 (suppressing repeats) until the clock catches up.
pub fn age(then: u64, now: u64) -> u64 {
    now.saturating_sub(then)
}

/// `then`, or `now` when `then` is in the future: the time to keep in a record that was read
/// with a future time, so that a clock step costs at most one `refresh` period of suppression.
pub fn not_after(then: u64, now: u64) -> u64 {
    then.min(now)
}

/// This host's name (uname nodename), to tell hosts apart on a shared state store.
pub fn host_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1460172826), "2016-04-09T03:33:46Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX as u64), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn a_time_in_the_future_counts_as_now() {
        assert_eq!(age(100, 160), 60);
        assert_eq!(age(200, 160), 0);
        assert_eq!(age(u64::MAX, 0), 0);
        assert_eq!(not_after(200, 160), 160);
        assert_eq!(not_after(100, 160), 100);
    }
}
