//! pagerpipe-common: the shared core of the pagerpipe handlers.
//!
//! Everything two handlers would otherwise repeat lives here: reading and normalizing events
//! ([`event`]), settings ([`config`], [`cli`]) and the settings nothing reads ([`unread`]),
//! parsing flags with the build's version and generating man pages and completions ([`app`]), filters ([`filter`]), the dedup state store
//! ([`state`]) and the waits that keep its Redis leases alive ([`lease`]), HTTP delivery ([`http`]), templates ([`template`]), Slack mrkdwn escaping
//! ([`mrkdwn`]), logging ([`log`]), secret masking ([`secret`]), the exit-code contract
//! ([`exit`]), and the invocation itself
//! ([`pipeline`]), which a handler drives with its [`pipeline::Provider`], or with a synthetic
//! event for `--test` ([`rehearsal`]).

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod entry;
pub mod event;
pub mod exit;
pub mod files;
pub mod filter;
pub mod http;
pub mod lease;
pub mod log;
pub mod mrkdwn;
pub mod outcome;
pub mod pipeline;
pub mod rehearsal;
pub mod secret;
pub mod slack;
pub mod spool;
pub mod state;
pub mod template;
pub mod trust;
pub mod unread;
