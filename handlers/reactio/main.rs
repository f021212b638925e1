//! `handler-reactio`: a Sensu/Nagios/Zabbix/Mackerel event in, a Reactio incident with a
//! broadcast notification out (re-notified after `refresh`, a timeline message on recovery).
//! Thin: flags here, the rest in `provider` and `common::pipeline`.

mod provider;

use clap::Parser;
use common::cli::CommonArgs;

/// Open a Reactio incident and broadcast it to the team from one monitoring event on stdin.
///
/// Exit codes: 0 delivered or skipped by a filter, 2 usage, 65 unreadable event, 69 refused by
/// Reactio, 75 not delivered yet, 78 configuration missing or invalid.
#[derive(Debug, Parser)]
#[command(name = "handler-reactio", version)]
struct Args {
    /// Reactio API key (issued per project)
    #[arg(long, env = "REACTIO_API_KEY", hide_env_values = true, value_name = "KEY")]
    api_key: Option<String>,

    /// Reactio organization ID, the subdomain of https://{organization}.reactio.jp
    #[arg(long, value_name = "ID")]
    organization: Option<String>,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> std::process::ExitCode {
    let args: Args = common::app::parse(env!("PAGERPIPE_VERSION"));
    let flags = common::cli::flag_settings([("api_key", &args.api_key), ("organization", &args.organization)]);
    common::pipeline::main::<provider::Reactio>(&args.common, flags)
}
