//! What became of a request, an event or a spooled entry: one type, carrying its exit code.
//!
//! A response is classified by its provider, a request is delivered with retries, a provider
//! acts on an event, a flush delivers a spooled entry: each step answers with an [`Outcome`],
//! and the answer flows up unchanged to the handler's exit code ([`Outcome::code`], the
//! sysexits contract of DESIGN.md). `T` is what a delivery brings back: `()` for a
//! classification, the [`crate::http::Response`] for a request, the provider's
//! [`crate::pipeline::Done`] for an event.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exit::Code;

/// Whether a request that was not accepted may have reached the service anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// It was never sent, or the service answered and did not act on it (429, 5xx, refused
    /// connection): sending it again cannot double anything.
    #[default]
    NotSent,
    /// It was sent and no answer came before the attempt's timeout (or the connection broke
    /// mid-answer): the service may have acted on it. It is sent again only with a whole
    /// request timeout to spare, and a Twilio call is looked up before it is placed again.
    Unknown,
}

/// A retryable failure: the service did not accept the request, but may later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Why, for the log (no secret: callers mask).
    pub reason: String,
    /// Whether the request may have been acted on.
    pub fate: Fate,
    /// The service's `Retry-After`, when it gave one.
    pub after: Option<Duration>,
}

impl Retry {
    /// A retryable failure of a request that was not acted on.
    pub fn not_sent(reason: impl Into<String>) -> Retry {
        Retry { reason: reason.into(), fate: Fate::NotSent, after: None }
    }
}

/// The outcome of a classification, a delivery, an event or a spooled entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T = ()> {
    /// The service accepted it (exit 0).
    Delivered(T),
    /// Deliberately not sent: a filter, an identical repeat, a superseded event (exit 0). The
    /// text says why and is logged.
    Skipped(String),
    /// Still retryable, and not kept anywhere yet (exit 75 if it stays so).
    Retry(Retry),
    /// Kept for later (exit 75): in the spool for a later invocation or `--flush`, or by the
    /// invocation that holds the incident now (a Twilio run whose hold another took); the text
    /// says why and where.
    Spooled(String),
    /// Refused for good by the service (exit 69): never retried.
    Refused(String),
    /// Cannot work as this machine is configured (exit 78): a certificate, a URL, a proxy,
    /// credentials missing.
    Broken(String),
}

impl<T> Outcome<T> {
    /// The process exit code this outcome ends in.
    pub fn code(&self) -> Code {
        match self {
            Outcome::Delivered(_) | Outcome::Skipped(_) => Code::Ok,
            Outcome::Retry(_) | Outcome::Spooled(_) => Code::TempFail,
            Outcome::Refused(_) => Code::Unavailable,
            Outcome::Broken(_) => Code::Config,
        }
    }

    /// The same outcome with the delivered value mapped by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Delivered(t) => Outcome::Delivered(f(t)),
            other => other.failure().unwrap_or(Outcome::Skipped(String::new())),
        }
    }

    /// Why it was not delivered (`None` for a delivery).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Delivered(_) => None,
            Outcome::Skipped(s) | Outcome::Spooled(s) | Outcome::Refused(s) | Outcome::Broken(s) => Some(s),
            Outcome::Retry(r) => Some(&r.reason),
        }
    }

    /// A failure (retryable, spooled, refused, broken) as `Err` carrying a non-delivered
    /// outcome, a delivery as `Ok`; a skip is `Err` too. For `?` in provider code.
    pub fn into_result(self) -> Result<T, Outcome<T>> {
        match self {
            Outcome::Delivered(t) => Ok(t),
            other => Err(other),
        }
    }

    /// The same non-delivered outcome for another `T` (`None` for a delivery).
    pub fn failure<U>(self) -> Option<Outcome<U>> {
        Some(match self {
            Outcome::Delivered(_) => return None,
            Outcome::Skipped(s) => Outcome::Skipped(s),
            Outcome::Retry(r) => Outcome::Retry(r),
            Outcome::Spooled(s) => Outcome::Spooled(s),
            Outcome::Refused(s) => Outcome::Refused(s),
            Outcome::Broken(s) => Outcome::Broken(s),
        })
    }

    /// How hopeful a failure is, for picking the one to report among several (a broadcast
    /// where every request failed): delivered 0, spooled 1, retryable 2, broken 3, refused 4,
    /// skipped 5.
    pub fn rank(&self) -> u8 {
        match self {
            Outcome::Delivered(_) => 0,
            Outcome::Spooled(_) => 1,
            Outcome::Retry(_) => 2,
            Outcome::Broken(_) => 3,
            Outcome::Refused(_) => 4,
            Outcome::Skipped(_) => 5,
        }
    }

    /// The most hopeful of `outcomes` by [`Outcome::rank`] (the first of equals), for reporting
    /// one failure among several; `None` when there is none.
    pub fn most_hopeful(outcomes: Vec<Self>) -> Option<Self> {
        outcomes.into_iter().min_by_key(Outcome::rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_carries_its_exit_code() {
        assert_eq!(Outcome::Delivered(()).code().as_u8(), 0);
        assert_eq!(Outcome::<()>::Skipped("x".into()).code().as_u8(), 0);
        assert_eq!(Outcome::<()>::Retry(Retry::not_sent("x")).code().as_u8(), 75);
        assert_eq!(Outcome::<()>::Spooled("x".into()).code().as_u8(), 75);
        assert_eq!(Outcome::<()>::Refused("x".into()).code().as_u8(), 69);
        assert_eq!(Outcome::<()>::Broken("x".into()).code().as_u8(), 78);
    }

    #[test]
    fn failures_keep_their_reason_across_types() {
        let o: Outcome<u32> = Outcome::Refused("HTTP 400".into());
        let back: Outcome<String> = o.failure().unwrap();
        assert_eq!(back, Outcome::Refused("HTTP 400".into()));
        assert!(Outcome::Delivered(1).failure::<()>().is_none());
    }
}
