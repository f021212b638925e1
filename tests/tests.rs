//! Integration tests: the real handler binaries, real event fixtures, loopback fakes.

mod fake;
mod hostile;
mod inputs;
mod pagerduty;
mod reactio;
mod spool;
mod tls;
mod twilio;
mod util;
