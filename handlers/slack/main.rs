//! `handler-slack`: a Sensu/Nagios/Zabbix/Mackerel event in, a Slack war room out (a channel
//! per incident: created, topic set, responders invited, alert posted; updates, the
//! acknowledgement and the recovery in the alert's thread), or posts to one existing channel.
//! Thin: flags here, the rest in `provider` (the flow), `api` (Slack's methods and error
//! codes), `name` (channel names), `message` (Block Kit), `mrkdwn` (escaping and limits) and
//! `common::pipeline`.

// The entry point is `common::handler_main!` below, not `fn main`: see `common::entry`.
#![cfg_attr(all(not(test), target_os = "linux", target_env = "gnu"), no_main)]

mod api;
mod message;
mod mrkdwn;
mod name;
mod provider;

use clap::Parser;
use common::cli::CommonArgs;

/// Open a Slack channel for an incident (or post to one channel) from one monitoring event on stdin.
///
/// Exit codes: 0 delivered or skipped by a filter, 2 usage, 65 unreadable event, 69 refused by
/// Slack (its error code is in the line; also a bad token, or a scope the app lacks), 75 not
/// delivered yet (spooled), 78 configuration missing or invalid.
#[derive(Debug, Parser)]
#[command(name = "handler-slack", version)]
struct Args {
    /// Slack bot token (the app's Bot User OAuth Token, xoxb-…). Visible to every user in `ps` when given here: prefer the environment variable, --token-file (systemd credentials, Docker secrets) or a settings file readable by the handler's user only
    #[arg(long, env = "SLACK_BOT_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    token: Option<String>,

    /// File holding the bot token (setting `token_file`), e.g. $CREDENTIALS_DIRECTORY/slack_token
    #[arg(long, env = "SLACK_BOT_TOKEN_FILE", value_name = "FILE", value_parser = common::cli::path_text())]
    token_file: Option<String>,

    /// Post to this existing channel (ID such as C0123ABCD) instead of opening a channel per incident
    #[arg(long, value_name = "CHANNEL")]
    channel: Option<String>,

    /// Check the token (auth.test) and post a test message to the channel setting, instead of reading an event
    #[arg(long, conflicts_with_all = ["from", "input"])]
    test: bool,

    #[command(flatten)]
    common: CommonArgs,
}

common::handler_main!(run);

/// The handler's whole work; its exit code.
fn run() -> common::exit::Code {
    let args: Args = common::app::parse(env!("PAGERPIPE_VERSION"));
    let flags = common::cli::flag_settings([("token", &args.token), ("token_file", &args.token_file), ("channel", &args.channel)]);
    if args.test {
        // The same pipeline, fed a synthetic event whose check output reads "test message".
        return common::rehearsal::main::<provider::Slack>(&args.common, flags, "test message");
    }
    common::pipeline::main::<provider::Slack>(&args.common, flags)
}
