//! `handler-reactio`: a Sensu/Nagios/Zabbix/Mackerel event in, a Reactio incident with a
//! broadcast notification out (re-notified after `refresh`, a timeline message on recovery).
//! Thin: flags here, the rest in `provider` and `common::pipeline`.

// The entry point is `common::handler_main!` below, not `fn main`: see `common::entry`.
#![cfg_attr(all(not(test), target_os = "linux", target_env = "gnu"), no_main)]

mod provider;

use clap::Parser;
use common::cli::CommonArgs;

/// Open a Reactio incident and broadcast it to the team from one monitoring event on stdin.
///
/// Exit codes: 0 delivered or skipped by a filter, 2 usage, 65 unreadable event, 69 refused by
/// Reactio, 75 not delivered yet, 78 configuration missing or invalid.
#[derive(Debug, Parser)]
#[command(name = "handler-reactio", version)]
// The shared --severities help names the shared default; Reactio's is `critical`, as the Ruby
// handler's was (provider.rs).
#[command(mut_arg("severities", |a| a.help(SEVERITIES_HELP).long_help(SEVERITIES_HELP)))]
struct Args {
    /// Reactio API key (issued per project). Visible to every user in `ps` when given here: prefer the environment variable, --api-key-file (systemd credentials, Docker secrets) or a settings file readable by the handler's user only
    #[arg(long, env = "REACTIO_API_KEY", hide_env_values = true, value_name = "KEY")]
    api_key: Option<String>,

    /// File holding the API key (setting `api_key_file`), e.g. $CREDENTIALS_DIRECTORY/reactio_api_key
    #[arg(long, env = "REACTIO_API_KEY_FILE", value_name = "FILE", value_parser = common::cli::path_text())]
    api_key_file: Option<String>,

    /// Reactio organization ID, the subdomain of https://{organization}.reactio.jp
    #[arg(long, value_name = "ID")]
    organization: Option<String>,

    #[command(flatten)]
    common: CommonArgs,
}

/// `--severities` as Reactio applies it.
const SEVERITIES_HELP: &str = "Statuses that open an incident, comma-separated: warning,critical,unknown, and info for Zabbix Information/Not classified [default: critical]";

common::handler_main!(run);

/// The handler's whole work; its exit code.
fn run() -> common::exit::Code {
    let args: Args = common::app::parse(env!("PAGERPIPE_VERSION"));
    let flags = common::cli::flag_settings([
        ("api_key", &args.api_key),
        ("api_key_file", &args.api_key_file),
        ("organization", &args.organization),
    ]);
    common::pipeline::main::<provider::Reactio>(&args.common, flags)
}
