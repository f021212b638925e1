//! Integration tests: the real handler binaries, real event fixtures, loopback fakes.

// In a test, an unwrap is an assertion: a failure is the test failing, with its line.
#![allow(clippy::unwrap_used)]
// The fakes hand what they saw to the tests through channels of plain tuples.
#![allow(clippy::type_complexity)]

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
mod redis_store;
mod redteam;
mod secrets;
mod shapes;
mod slack;
mod spool;
mod start;
mod timeouts;
mod tls;
mod trust;
mod twilio;
mod twilio_announce;
mod unread_settings;
mod util;
mod zabbix_server;
