//! `handler-twilio`: a Sensu/Nagios/Zabbix/Mackerel event in, Twilio phone calls (text to
//! speech, inline TwiML) and SMS to the on-call people out. Thin: flags here, the rest in
//! `provider` (requests and responses), `sequential` (one call at a time), `rotation`, `caps`,
//! `twiml` and `common::pipeline`.

// The entry point is `common::handler_main!` below, not `fn main`: see `common::entry`.
#![cfg_attr(all(not(test), target_os = "linux", target_env = "gnu"), no_main)]

mod announce;
mod caps;
mod provider;
mod rotation;
mod sequential;
mod twiml;

use clap::Parser;
use common::cli::CommonArgs;

/// Call (and optionally text) the on-call people through Twilio from one monitoring event on stdin.
///
/// Exit codes: 0 delivered or skipped by a filter, 2 usage, 65 unreadable event, 69 refused by
/// Twilio (bad credentials, invalid number), 75 not delivered yet (also: nobody answered in
/// sequential mode), 78 configuration missing or invalid (e.g. a number that is not E.164).
#[derive(Debug, Parser)]
#[command(name = "handler-twilio", version)]
struct Args {
    /// Twilio account SID (AC + 32 hex digits)
    #[arg(long, value_name = "SID")]
    account_sid: Option<String>,

    /// Twilio auth token of the account. Visible to every user in `ps` when given here: prefer the environment variable, --auth-token-file (systemd credentials, Docker secrets) or a settings file readable by the handler's user only
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    auth_token: Option<String>,

    /// File holding the auth token (setting `auth_token_file`), e.g. $CREDENTIALS_DIRECTORY/twilio_auth_token
    #[arg(long, env = "TWILIO_AUTH_TOKEN_FILE", value_name = "FILE", value_parser = common::cli::path_text())]
    auth_token_file: Option<String>,

    /// Twilio API key SID (SK + 32 hex digits), used with --api-key-secret instead of the auth token
    #[arg(long, value_name = "SID")]
    api_key_sid: Option<String>,

    /// Secret of the Twilio API key. Visible to every user in `ps` when given here: prefer the environment variable, --api-key-secret-file (systemd credentials, Docker secrets) or a settings file readable by the handler's user only
    #[arg(long, env = "TWILIO_API_KEY_SECRET", hide_env_values = true, value_name = "SECRET")]
    api_key_secret: Option<String>,

    /// File holding the API key secret (setting `api_key_secret_file`)
    #[arg(long, env = "TWILIO_API_KEY_SECRET_FILE", value_name = "FILE", value_parser = common::cli::path_text())]
    api_key_secret_file: Option<String>,

    /// Slack bot token for announcing who answered in announce_channel (chat.postMessage). Visible to every user in `ps` when given here: prefer the environment variable or a settings file readable by the handler's user only
    #[arg(long, env = "SLACK_BOT_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    announce_token: Option<String>,

    /// Call everyone at once, or one at a time until someone answers [default: broadcast]
    #[arg(long, value_name = "MODE", value_parser = ["broadcast", "sequential"])]
    mode: Option<String>,

    /// Rehearse: call (and text, per channels) the configured recipients with test_message instead of reading an event; call caps apply
    #[arg(long, conflicts_with_all = ["from", "input"])]
    test: bool,

    #[command(flatten)]
    common: CommonArgs,
}

common::handler_main!(run);

/// The handler's whole work; its exit code.
fn run() -> common::exit::Code {
    let args: Args = common::app::parse(env!("PAGERPIPE_VERSION"));
    let flags = common::cli::flag_settings([
        ("account_sid", &args.account_sid),
        ("auth_token", &args.auth_token),
        ("auth_token_file", &args.auth_token_file),
        ("api_key_sid", &args.api_key_sid),
        ("api_key_secret", &args.api_key_secret),
        ("api_key_secret_file", &args.api_key_secret_file),
        ("mode", &args.mode),
        ("announce_token", &args.announce_token),
    ]);
    if args.test {
        // The same pipeline, fed a synthetic event whose check output reads "test page".
        return common::rehearsal::main::<provider::Twilio>(&args.common, flags, "test page");
    }
    common::pipeline::main::<provider::Twilio>(&args.common, flags)
}
