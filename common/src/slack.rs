//! What handler-slack and handler-twilio's announcer (a Slack post saying who answered) both
//! need to know of Slack Web API answers (`../shared/specs/slack-web-api.md` §4).

use std::time::Duration;

/// The shortest wait before repeating a call Slack answered with a rate limit and no
/// `Retry-After`: 1 s (spec §4: `rate_limited`, "treat it like `ratelimited` (back off ≥ 1 s
/// when no `Retry-After`)"; `chat.postMessage` allows about one message per second per channel).
pub const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(1);

/// Whether `code` is one of Slack's rate-limit answers (`ratelimited`, `rate_limited`; §4).
pub fn is_rate_limit(code: &str) -> bool {
    matches!(code, "ratelimited" | "rate_limited")
}

/// Whether Slack's error `code` is transient, worth another try inside the deadline (spec §5
/// "Common to every method", class **retry**, and §5.5 `message_limit_exceeded`): the rate
/// limits, Slack's own trouble, and a workspace migrating. One list for handler-slack and the
/// announcer of handler-twilio, so that neither gives up on a page the other would retry.
pub fn is_retry(code: &str) -> bool {
    is_rate_limit(code)
        || matches!(
            code,
            "message_limit_exceeded"
                | "internal_error"
                | "fatal_error"
                | "service_unavailable"
                | "request_timeout"
                | "team_added_to_org"
                | "org_login_required"
        )
}
