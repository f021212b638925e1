//! Wall-clock time, with one override for tests.
//!
//! Refresh windows, rate caps and daily rotation all depend on "now". Tests cannot wait 30
//! minutes or for tomorrow, so the environment variable `PAGERPIPE_NOW` (Unix seconds), when
//! set, replaces the system clock for these decisions. Durations measured for logs and
//! deadlines always use the monotonic clock and ignore it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Environment variable that fixes "now" (Unix seconds) for tests and rehearsals.
pub const NOW_ENV: &str = "PAGERPIPE_NOW";

/// Now, in Unix seconds (`PAGERPIPE_NOW` when set to a number).
pub fn now_unix() -> u64 {
    if let Some(fixed) = std::env::var(NOW_ENV).ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        return fixed;
    }
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Now in Unix nanoseconds from the system clock (for unique tokens; not overridable).
pub fn now_unix_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// RFC 3339 UTC timestamp (`2026-11-21T10:00:00Z`) for Unix seconds.
pub fn rfc3339(unix_secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(unix_secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1460172826), "2016-04-09T03:33:46Z");
    }
}
