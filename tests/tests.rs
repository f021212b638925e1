//! Integration tests: the real handler binaries, real event fixtures, loopback fakes.

mod batch;
mod e2e_docs;
mod e2e_wording;
mod exit_codes;
mod fake;
mod hostile;
mod inputs;
mod ledger;
mod multi_host;
mod pagerduty;
mod properties;
mod reactio;
mod redteam;
mod redis_store;
mod secrets;
mod slack;
mod spool;
mod timeouts;
mod tls;
mod trust;
mod twilio;
mod twilio_announce;
mod util;
