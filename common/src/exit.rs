//! The error → exit-code contract shared by every handler.
//!
//! A monitoring system only sees a handler's exit code and its stderr, so every failure is
//! classified once, here, into the sysexits codes that mail delivery agents use (see DESIGN.md
//! and the README's exit-code table). Library code returns a [`Failure`], which carries its
//! [`Code`] and an `anyhow` error chain; a handler's `main` prints the chain as one line and
//! exits with the code.

use std::fmt;

/// The exit codes a handler can return (`sysexits.h` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// 0: delivered, or deliberately skipped by a filter.
    Ok,
    /// 2: usage error (reported by clap itself).
    Usage,
    /// 65 (`EX_DATAERR`): the event could not be read (bad JSON, missing fields, too large).
    DataErr,
    /// 69 (`EX_UNAVAILABLE`): the service refused the request for good (400, 401, 403, 404 …).
    Unavailable,
    /// 75 (`EX_TEMPFAIL`): not delivered yet (network error, 429, 5xx until the deadline).
    TempFail,
    /// 78 (`EX_CONFIG`): configuration missing or invalid.
    Config,
}

impl Code {
    /// The numeric process exit status.
    pub fn as_u8(self) -> u8 {
        match self {
            Code::Ok => 0,
            Code::Usage => 2,
            Code::DataErr => 65,
            Code::Unavailable => 69,
            Code::TempFail => 75,
            Code::Config => 78,
        }
    }

    /// Wrap an error chain into a [`Failure`] with this code.
    pub fn fail(self, error: impl Into<anyhow::Error>) -> Failure {
        Failure { code: self, error: error.into() }
    }

    /// Build a [`Failure`] with this code from a message.
    pub fn msg(self, message: impl fmt::Display) -> Failure {
        Failure { code: self, error: anyhow::anyhow!("{message}") }
    }
}

impl From<Code> for std::process::ExitCode {
    fn from(code: Code) -> Self {
        std::process::ExitCode::from(code.as_u8())
    }
}

/// A classified failure: what went wrong (an `anyhow` chain, printed as one line with `{:#}`)
/// and which exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The exit code the handler returns for this failure.
    pub code: Code,
    /// The error chain; its `{:#}` rendering is the one-line message printed on stderr.
    pub error: anyhow::Error,
}

impl Failure {
    /// Add context to the error chain, keeping the code.
    pub fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Failure {
        Failure { code: self.code, error: self.error.context(context) }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// `Result` with a classified failure.
pub type Result<T> = std::result::Result<T, Failure>;

/// Attach an exit code to any error: `fs::read(p).or_exit(Code::Config)?`.
pub trait OrExit<T> {
    /// Classify the error with `code`.
    fn or_exit(self, code: Code) -> Result<T>;
}

impl<T, E: Into<anyhow::Error>> OrExit<T> for std::result::Result<T, E> {
    fn or_exit(self, code: Code) -> Result<T> {
        self.map_err(|e| code.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_sysexits() {
        assert_eq!(Code::Ok.as_u8(), 0);
        assert_eq!(Code::Usage.as_u8(), 2);
        assert_eq!(Code::DataErr.as_u8(), 65);
        assert_eq!(Code::Unavailable.as_u8(), 69);
        assert_eq!(Code::TempFail.as_u8(), 75);
        assert_eq!(Code::Config.as_u8(), 78);
    }

    #[test]
    fn failure_prints_whole_chain_on_one_line() {
        let f = Code::Config.msg("no routing key").context("settings");
        assert_eq!(f.to_string(), "settings: no routing key");
        assert_eq!(f.code, Code::Config);
    }
}
