//! `handler-twilio`: a Sensu/Nagios/Zabbix/Mackerel event in, Twilio phone calls (text to
//! speech, inline TwiML) and SMS to the on-call people out. Thin: flags here, the rest in
//! `provider`, `twiml` and `common::pipeline`.

mod provider;
mod twiml;

use clap::Parser;
use common::cli::CommonArgs;
use serde_json::{Map, Value};

/// Call (and optionally text) the on-call people through Twilio from one monitoring event on stdin.
///
/// Exit codes: 0 delivered or skipped by a filter, 2 usage, 65 unreadable event, 69 refused by
/// Twilio (bad credentials, invalid number), 75 not delivered yet, 78 configuration missing or
/// invalid (e.g. a number that is not E.164).
#[derive(Debug, Parser)]
#[command(name = "handler-twilio", version)]
struct Args {
    /// Twilio account SID (AC + 32 hex digits)
    #[arg(long, value_name = "SID")]
    account_sid: Option<String>,

    /// Twilio auth token of the account
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    auth_token: Option<String>,

    /// Twilio API key SID (SK + 32 hex digits), used with --api-key-secret instead of the auth token
    #[arg(long, value_name = "SID")]
    api_key_sid: Option<String>,

    /// Secret of the Twilio API key
    #[arg(long, env = "TWILIO_API_KEY_SECRET", hide_env_values = true, value_name = "SECRET")]
    api_key_secret: Option<String>,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut flags = Map::new();
    for (name, value) in [
        ("account_sid", &args.account_sid),
        ("auth_token", &args.auth_token),
        ("api_key_sid", &args.api_key_sid),
        ("api_key_secret", &args.api_key_secret),
    ] {
        if let Some(v) = value {
            flags.insert(name.into(), Value::from(v.as_str()));
        }
    }
    common::pipeline::main::<provider::Twilio>(&args.common, flags)
}
