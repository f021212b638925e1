//! `handler-pagerduty`: a Sensu/Nagios/Zabbix/Mackerel event in, a PagerDuty Events API v2
//! alert triggered, acknowledged or resolved out. Thin: flags here, the rest in `provider` and
//! `common::pipeline`.

// The entry point is `common::handler_main!` below, not `fn main`: see `common::entry`.
#![cfg_attr(all(not(test), target_os = "linux", target_env = "gnu"), no_main)]

mod provider;

use clap::Parser;
use common::cli::CommonArgs;

/// Trigger, acknowledge or resolve a PagerDuty alert from one monitoring event on stdin.
///
/// Exit codes: 0 delivered or skipped by a filter, 2 usage, 65 unreadable event, 69 refused by
/// PagerDuty, 75 not delivered yet, 78 configuration missing or invalid.
#[derive(Debug, Parser)]
#[command(name = "handler-pagerduty", version)]
struct Args {
    /// Events API v2 integration key (32 characters). Visible to every user in `ps` when given here: prefer the environment variable, --routing-key-file (systemd credentials, Docker secrets) or a settings file readable by the handler's user only
    #[arg(long, env = "PAGERDUTY_ROUTING_KEY", hide_env_values = true, value_name = "KEY")]
    routing_key: Option<String>,

    /// File holding the integration key (setting `routing_key_file`), e.g. $CREDENTIALS_DIRECTORY/routing_key
    #[arg(long, env = "PAGERDUTY_ROUTING_KEY_FILE", value_name = "FILE", value_parser = common::cli::path_text())]
    routing_key_file: Option<String>,

    #[command(flatten)]
    common: CommonArgs,
}

common::handler_main!(run);

/// The handler's whole work; its exit code.
fn run() -> common::exit::Code {
    let args: Args = common::app::parse(env!("PAGERPIPE_VERSION"));
    let flags = common::cli::flag_settings([("routing_key", &args.routing_key), ("routing_key_file", &args.routing_key_file)]);
    common::pipeline::main::<provider::PagerDuty>(&args.common, flags)
}
