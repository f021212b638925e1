//! When to try a request again: a pure function of what happened so far, so that the schedule
//! is tested without clocks or sockets (Cargo's `util/network/retry.rs` `RetryResult` is the
//! model: decide, then sleep).
//!
//! The rules ([`plan`]):
//! - backoff doubles from [`Policy::base`] (250 ms; `PAGERPIPE_RETRY_BASE_MS` in tests) up to
//!   [`Policy::max`] (4 s), jittered to between half and all of it, so a storm's retries spread;
//! - a `Retry-After` from the service is a floor on the wait (seconds, or an HTTP date:
//!   RFC 9110 §10.2.3);
//! - an attempt of a request whose fate is unknown (it may have been acted on) needs a whole
//!   attempt timeout: it is never cut short by the deadline, so it is never sent again just
//!   because an answer came late (the spool keeps it for an invocation with time to spare);
//! - any other attempt needs at least [`MIN_ATTEMPT`] of the deadline.

use std::time::{Duration, SystemTime};

use crate::outcome::{Fate, Retry};

/// Environment variable that sets the first retry delay in milliseconds (default 250); tests
/// set it low to keep retries fast.
pub const RETRY_BASE_ENV: &str = "PAGERPIPE_RETRY_BASE_MS";

/// The shortest attempt worth starting: 100 ms.
pub const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// First delay.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Policy {
    /// 250 ms doubling to 4 s; the base from [`RETRY_BASE_ENV`] when set.
    pub fn from_env() -> Policy {
        let base = std::env::var(RETRY_BASE_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::from_millis(250), Duration::from_millis);
        Policy { base, max: Duration::from_secs(4) }
    }
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Sleep `wait`, then attempt with this `timeout` for the whole exchange.
    Attempt {
        /// How long to wait first.
        wait: Duration,
        /// The attempt's timeout.
        timeout: Duration,
    },
    /// Stop trying within this deadline; the text says why (empty when the last failure says
    /// it all).
    GiveUp(String),
}

/// The next step after `attempts` attempts (0: none yet) whose last failure is `last`.
///
/// `fate` is what is known of every earlier attempt; `remaining` is what is left of the
/// deadline; `full` the whole attempt timeout; `random` any random number (jitter).
pub fn plan(policy: &Policy, attempts: u32, last: Option<&Retry>, fate: Fate, remaining: Duration, full: Duration, random: u64) -> Step {
    let wait = if attempts == 0 {
        Duration::ZERO
    } else {
        let doubled = policy.base.saturating_mul(1u32 << (attempts - 1).min(16)).min(policy.max);
        let jittered = jitter(doubled, random);
        last.and_then(|l| l.after).map_or(jittered, |after| after.max(jittered))
    };
    let needed = match fate {
        Fate::Unknown => full,
        Fate::NotSent => MIN_ATTEMPT,
    };
    let Some(left) = remaining.checked_sub(wait).filter(|left| *left >= needed) else {
        return Step::GiveUp(match (fate, last.and_then(|l| l.after)) {
            (Fate::Unknown, _) => format!(
                "it may have reached the service, so it is sent again only with a whole attempt timeout ({} ms) to spare",
                full.as_millis()
            ),
            (_, Some(after)) if after >= remaining => {
                format!("the next try has to wait {} s (the service's Retry-After or rate limit)", after.as_secs())
            }
            _ if attempts == 0 => "no time left in the deadline".to_string(),
            _ => String::new(),
        });
    };
    Step::Attempt { wait, timeout: full.min(left) }
}

/// Between half and all of `d`, by `random`.
fn jitter(d: Duration, random: u64) -> Duration {
    let half = d / 2;
    let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_nanos(random % span)
}

/// The longest wait a `Retry-After` is taken for: one year (31 536 000 s). Longer ones, and
/// delay-seconds too large for a `u64` (`99999999999999999999`), are this wait, not no hint:
/// far past any deadline, so the request is given up to the spool at once, and no caller can
/// overflow an `Instant` or a sum of durations with it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(365 * 24 * 3600);

/// `Retry-After` as a wait from `now`: delay-seconds, or an HTTP date (a date in the past is
/// no wait), at most [`MAX_RETRY_AFTER`]. `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy { base: Duration::from_millis(250), max: Duration::from_secs(4) };
    const FULL: Duration = Duration::from_secs(5);

    #[test]
    fn a_retry_after_too_large_for_a_number_is_the_longest_wait() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999999999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("31536001", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("+5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    fn failed(after: Option<u64>) -> Retry {
        Retry { reason: "HTTP 503".into(), fate: Fate::NotSent, after: after.map(Duration::from_secs) }
    }

    #[test]
    fn the_first_attempt_starts_at_once_with_the_full_timeout_or_what_is_left() {
        assert_eq!(
            plan(&P, 0, None, Fate::NotSent, Duration::from_secs(10), FULL, 7),
            Step::Attempt { wait: Duration::ZERO, timeout: FULL }
        );
        assert_eq!(
            plan(&P, 0, None, Fate::NotSent, Duration::from_secs(2), FULL, 7),
            Step::Attempt { wait: Duration::ZERO, timeout: Duration::from_secs(2) }
        );
        assert!(matches!(plan(&P, 0, None, Fate::NotSent, Duration::from_millis(50), FULL, 7), Step::GiveUp(_)));
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_maximum() {
        for (attempts, full_wait) in [(1, 250), (2, 500), (3, 1000), (4, 2000), (5, 4000), (12, 4000)] {
            for random in [0, 1 << 20, u64::MAX] {
                let Step::Attempt { wait, .. } =
                    plan(&P, attempts, Some(&failed(None)), Fate::NotSent, Duration::from_secs(60), FULL, random)
                else {
                    panic!("gave up with a minute left");
                };
                let full_wait = Duration::from_millis(full_wait);
                assert!(wait >= full_wait / 2 && wait <= full_wait, "attempt {attempts}: {wait:?}");
            }
        }
    }

    #[test]
    fn retry_after_is_a_floor_and_gives_up_when_it_does_not_fit() {
        let Step::Attempt { wait, .. } = plan(&P, 1, Some(&failed(Some(3))), Fate::NotSent, Duration::from_secs(10), FULL, 0) else {
            panic!("should retry");
        };
        assert_eq!(wait, Duration::from_secs(3));
        assert!(
            matches!(plan(&P, 1, Some(&failed(Some(30))), Fate::NotSent, Duration::from_secs(10), FULL, 0), Step::GiveUp(w) if w.contains("30 s"))
        );
    }

    #[test]
    fn an_unknown_fate_is_retried_only_with_a_whole_attempt_timeout() {
        let timed_out = Retry { reason: "timed out".into(), fate: Fate::Unknown, after: None };
        assert!(
            matches!(plan(&P, 1, Some(&timed_out), Fate::Unknown, Duration::from_secs(4), FULL, 0), Step::GiveUp(w) if w.contains("whole attempt timeout"))
        );
        assert!(
            matches!(plan(&P, 1, Some(&timed_out), Fate::Unknown, Duration::from_secs(6), FULL, 0), Step::Attempt { timeout, .. } if timeout == FULL)
        );
        // A spooled request of unknown fate: not even a first attempt without the whole timeout.
        assert!(matches!(plan(&P, 0, None, Fate::Unknown, Duration::from_secs(2), FULL, 0), Step::GiveUp(_)));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
