//! The handlers' command-line front door: parse the arguments with the build's version string,
//! and write man pages and shell completions from the very same clap definition.
//!
//! Packages ship a man page and bash/zsh/fish completions for every handler. Writing them by
//! hand would let them drift from the flags, so a handler generates them itself, as ripgrep
//! does with `rg --generate man`: the hidden flag `--generate KIND` (see [`Generate`]) prints
//! one of them on stdout and exits. `packaging/build.sh` runs it on the release binaries. The
//! flag is not part of the handler's clap definition, so `--help`, the man page and the
//! completions do not show it; it is recognized only as the first and only argument.
//!
//! The version comes from the root package's `build.rs` (`PAGERPIPE_VERSION`: the package
//! version and the git commit, or "unknown commit" when built from a tarball without `.git`),
//! so `--version` says which build answered.

use std::ffi::OsString;
use std::io::{self, Write};

use clap::{Arg, ArgAction, Command, Parser, ValueEnum};

/// What `--generate` writes on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The man page, section 1, in roff (`man -l` reads it).
    Man,
    /// A bash completion script (for `/usr/share/bash-completion/completions/<name>`).
    CompleteBash,
    /// A zsh completion function (for a `_<name>` file in `$fpath`).
    CompleteZsh,
    /// A fish completion script (for `vendor_completions.d/<name>.fish`).
    CompleteFish,
}

/// The id and long name of the hidden flag.
const GENERATE: &str = "generate";

/// The clap command of `A` as documented: `version` as its version (for `-V`/`--version` and
/// the man page). Man pages and completions are generated from this, and [`parse`] parses it.
///
/// A single-value flag given twice is not a usage error: the last one wins
/// (`args_override_self`), as in most command-line tools, so that a wrapper can append a flag
/// to a command line that already has it. Repeatable flags (`--config`, `--field`) still
/// collect every occurrence.
pub fn documented<A: Parser>(version: &'static str) -> Command {
    A::command().version(version).args_override_self(true)
}

/// Whether `args` (program name first, as `std::env::args_os` gives them) ask for
/// `--generate KIND`: `None` when the first argument is not `--generate`/`--generate=KIND`,
/// else the kind, or clap's usage error for an unknown kind or any further argument.
///
/// `--generate` is recognized only as the first argument and parsed apart from the handler's
/// own flags, so that settings in the environment (e.g. `PAGERDUTY_ROUTING_KEY`, which clap
/// counts as a given `--routing-key`) neither conflict with it nor reach the output.
pub fn generate_request(name: &str, args: &[OsString]) -> Option<Result<Generate, clap::Error>> {
    let first = args.get(1)?.to_str()?;
    if first != "--generate" && !first.starts_with("--generate=") {
        return None;
    }
    let cmd = Command::new(GENERATE).bin_name(name).disable_help_flag(true).arg(
        Arg::new(GENERATE)
            .long(GENERATE)
            .value_name("KIND")
            .value_parser(clap::builder::EnumValueParser::<Generate>::new())
            .action(ArgAction::Set)
            .required(true),
    );
    Some(cmd.try_get_matches_from(args).and_then(|m| {
        m.get_one::<Generate>(GENERATE).copied().ok_or_else(|| clap::Error::new(clap::error::ErrorKind::MissingRequiredArgument))
    }))
}

/// Parse the process arguments into `A`, like `A::parse()`, with `version` (e.g.
/// `env!("PAGERPIPE_VERSION")`) as the version; `--generate KIND` as the only argument writes
/// that [`Generate`] output for `A` on stdout instead.
///
/// Like `A::parse()` this exits the process itself: with 0 after `--help`, `--version` or
/// `--generate KIND` (output written; a closed stdout, as in `| head`, is not an error), with
/// 2 (usage) on a bad argument, and with 75 when the generated text cannot be written for
/// another reason (e.g. a full disk; trying again later may work).
pub fn parse<A: Parser>(version: &'static str) -> A {
    let mut cmd = documented::<A>(version);
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(request) = generate_request(cmd.get_name(), &args) {
        let kind = request.unwrap_or_else(|e| e.exit());
        let code = match generate(kind, cmd.clone(), &mut io::stdout().lock()) {
            Ok(()) => 0,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
            Err(e) => {
                eprintln!("{}: error: cannot write the generated {kind:?} output: {e}", cmd.get_name());
                crate::exit::Code::TempFail.as_u8()
            }
        };
        std::process::exit(i32::from(code));
    }
    // In place, not on a clone: the command is dozens of arguments, and copying it cost every
    // event a tenth of its page faults (bench/HISTORY.md).
    let mut matches = cmd.try_get_matches_from_mut(args).unwrap_or_else(|e| e.exit());
    flag_beats_env_twin(&cmd, &mut matches);
    // Taking the values out, not from a copy: `from_arg_matches` clones every matched value
    // first (a tenth of a dedup skip's instructions went to that copy and its drop).
    let parsed = A::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut cmd).exit());
    // Not dropped: the command (every argument's names, help and defaults) is not needed again
    // in this one-shot process, and freeing it piece by piece cost 4 % of a dedup skip's
    // instructions (bench/HISTORY.md, session 17). Its memory goes with the process.
    std::mem::forget(cmd);
    parsed
}

/// A secret and its file (`--routing-key` and `--routing-key-file`, `TWILIO_AUTH_TOKEN` and
/// `--auth-token-file` …), one given as a flag and the other taken from the environment: the
/// flag wins, as flags win over the environment for every setting. Without this the two
/// arrived as one layer and the handler exited 78 ("both set in the same place") when, say, a
/// Sensu Go backend's `PAGERDUTY_ROUTING_KEY` met a handler command with `--routing-key-file`.
/// Both as flags, or both from the environment, stay an error (78).
fn flag_beats_env_twin(cmd: &Command, matches: &mut clap::ArgMatches) {
    use clap::parser::ValueSource;
    // No copy of the ids: this runs at every event (the storm path's budget).
    for file in cmd.get_arguments().map(|a| a.get_id().as_str()) {
        let Some(stem) = file.strip_suffix("_file").filter(|stem| cmd.get_arguments().any(|a| a.get_id() == *stem)) else { continue };
        let (a, b) = (matches.value_source(stem), matches.value_source(file));
        let from_env = match (a, b) {
            (Some(ValueSource::EnvVariable), Some(ValueSource::CommandLine)) => stem,
            (Some(ValueSource::CommandLine), Some(ValueSource::EnvVariable)) => file,
            _ => continue,
        };
        let _ = matches.try_remove_one::<String>(from_env);
    }
}

/// Write `kind` for `cmd` (normally [`documented`]) to `out`. Hidden arguments are left out
/// of the man page; environment variables are named, their values never shown.
///
/// Errors: only those of writing to `out`.
pub fn generate(kind: Generate, mut cmd: Command, out: &mut dyn Write) -> io::Result<()> {
    let name = cmd.get_name().to_string();
    match kind {
        Generate::Man => man(cmd, out),
        Generate::CompleteBash => complete(clap_complete::Shell::Bash, &mut cmd, &name, out),
        Generate::CompleteZsh => complete(clap_complete::Shell::Zsh, &mut cmd, &name, out),
        Generate::CompleteFish => complete(clap_complete::Shell::Fish, &mut cmd, &name, out),
    }
}

/// The man page: clap_mangen's sections from the clap definition, plus FILES (the default
/// directories, from the constants the code uses) and SEE ALSO.
fn man(mut cmd: Command, out: &mut dyn Write) -> io::Result<()> {
    use clap_mangen::roff::{Roff, bold, roman};
    cmd.build();
    let name = cmd.get_name().to_string();
    let batch = cmd.get_arguments().any(|a| a.get_id() == "from");
    let page = clap_mangen::Man::new(cmd).manual("pagerpipe");
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;
    let mut extra = Roff::new();
    if batch {
        // Pages from scripts and batch jobs (`--from cli`, `--from exec`): the README's examples.
        let settings = format!("/etc/pagerpipe/{}.json", name.trim_start_matches("handler-"));
        extra.control("SH", ["EXAMPLES"]);
        for (what, line) in [
            (
                "A script reports a result; a later --status ok resolves it:",
                format!("{name} --config {settings} --from cli --check backup --status critical --output \"disk full\""),
            ),
            (
                "A nightly job in /etc/cron.d pages when it fails, and its next good run resolves the page; its output still goes to cron mail:",
                format!(
                    "30 2 * * * export  /usr/bin/{name} --config {settings} --from exec --check nightly-export --exec-timeout 2h -- /usr/local/bin/export.sh"
                ),
            ),
            (
                "The same as a systemd service (Type=oneshot, with a timer):",
                format!("ExecStart=/usr/bin/{name} --config {settings} --from exec --check nightly-export -- /usr/local/bin/export.sh"),
            ),
        ] {
            extra.control("PP", []).text([roman(what)]);
            extra.control("RS", ["4"]).control("nf", []).text([roman(line)]).control("fi", []).control("RE", []);
        }
    }
    extra.control("SH", ["FILES"]);
    for (path, what) in [
        (crate::config::DEFAULT_CONFIG_DIR, "settings files (*.json), read when no --config is given and the directory exists"),
        (crate::state::file::DEFAULT_STATE_DIR, "dedup state, one subdirectory per handler"),
        (crate::spool::DEFAULT_SPOOL_DIR, "requests not delivered yet, one subdirectory per handler; --flush delivers them"),
        ("/usr/share/doc/pagerpipe/examples/", "example settings for Sensu, Sensu Go, Nagios, Icinga 2, Zabbix and Mackerel"),
    ] {
        extra.control("TP", []).text([bold(path)]).text([roman(what)]);
    }
    extra.control("SH", ["SEE ALSO"]);
    extra.text([
        bold("handler-pagerduty"),
        roman("(1), "),
        bold("handler-twilio"),
        roman("(1), "),
        bold("handler-reactio"),
        roman("(1), "),
        bold("handler-slack"),
        roman("(1), /usr/share/doc/pagerpipe/README.md"),
    ]);
    extra.to_writer(out)?;
    page.render_version_section(out)
}

/// `clap_complete::generate` writes to `impl Write` and panics on a write error; render into
/// memory first so a failed write is an `Err`, not a panic.
fn complete(shell: clap_complete::Shell, cmd: &mut Command, name: &str, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, cmd, name, &mut buf);
    out.write_all(&buf)?;
    out.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;
    use clap::FromArgMatches;

    /// A stand-in for a handler's `Args`: one secret flag with an environment variable, the
    /// shared flags' style of value names, a doc comment as help.
    #[derive(Debug, clap::Parser)]
    #[command(name = "handler-example")]
    struct Example {
        /// Example API key
        #[arg(long, env = "EXAMPLE_API_KEY", hide_env_values = true, value_name = "KEY")]
        api_key: Option<String>,
        /// Print the request that would be sent
        #[arg(long)]
        dry_run: bool,
    }

    fn render(kind: Generate) -> String {
        let mut out = Vec::new();
        generate(kind, documented::<Example>("1.2.3 (commit abc)"), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn man_page_has_the_flags_the_environment_variable_and_the_version() {
        let man = render(Generate::Man);
        assert!(man.contains(".TH handler-example 1 "), "{man}");
        assert!(man.contains("1.2.3 (commit abc)"), "{man}");
        assert!(man.contains("api\\-key") && man.contains("dry\\-run"), "{man}");
        assert!(man.contains("EXAMPLE_API_KEY"), "the environment variable is named: {man}");
        assert!(man.contains(".SH FILES") && man.contains("/var/spool/pagerpipe"), "{man}");
        assert!(!man.contains(".SH EXAMPLES"), "no --from, no batch examples: {man}");
    }

    /// A handler's flags: the shared ones, with `--from`.
    #[derive(Debug, clap::Parser)]
    #[command(name = "handler-example")]
    struct WithShared {
        #[command(flatten)]
        common: crate::cli::CommonArgs,
    }

    #[test]
    fn man_page_of_a_handler_shows_the_batch_examples() {
        let mut out = Vec::new();
        generate(Generate::Man, documented::<WithShared>("1"), &mut out).unwrap();
        let man = String::from_utf8(out).unwrap();
        assert!(man.contains(".SH EXAMPLES"), "{man}");
        assert!(man.contains("\\-\\-from exec \\-\\-check nightly\\-export"), "{man}");
        assert!(man.contains("/etc/pagerpipe/example.json"), "{man}");
        let see_also = man.split(".SH \"SEE ALSO\"").nth(1).unwrap_or_default();
        for handler in ["pagerduty", "twilio", "reactio", "slack"] {
            assert!(see_also.contains(&format!("handler\\-{handler}")), "SEE ALSO lacks handler-{handler}: {see_also}");
        }
    }

    #[test]
    fn completions_name_the_flags_for_each_shell() {
        for (kind, marker) in [
            (Generate::CompleteBash, "complete -F"),
            (Generate::CompleteZsh, "#compdef handler-example"),
            (Generate::CompleteFish, "complete -c handler-example"),
        ] {
            let text = render(kind);
            assert!(text.contains(marker), "{kind:?}: {text}");
            assert!(text.contains("api-key") && text.contains("dry-run"), "{kind:?}: {text}");
        }
    }

    fn request(args: &[&str]) -> Option<Result<Generate, clap::Error>> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        generate_request("handler-example", &args)
    }

    #[test]
    fn generate_is_recognized_only_first_and_alone() {
        assert_eq!(request(&["x", "--generate", "man"]).unwrap().unwrap(), Generate::Man);
        assert_eq!(request(&["x", "--generate=complete-zsh"]).unwrap().unwrap(), Generate::CompleteZsh);
        assert!(request(&["x", "--generate", "man", "--dry-run"]).unwrap().is_err());
        assert!(request(&["x", "--generate", "html"]).unwrap().is_err());
        assert!(request(&["x", "--generate"]).unwrap().is_err());
        assert!(request(&["x", "--dry-run"]).is_none());
        assert!(request(&["x", "--dry-run", "--generate", "man"]).is_none());
        assert!(request(&["x"]).is_none());
        // Not a --generate request, so the handler's own parser sees (and rejects) it.
        let rejected = documented::<Example>("1").try_get_matches_from(["x", "--dry-run", "--generate", "man"]);
        assert_eq!(rejected.unwrap_err().kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn version_is_the_given_string() {
        let err = documented::<Example>("1.2.3 (unknown commit)").try_get_matches_from(["x", "--version"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(err.to_string(), "handler-example 1.2.3 (unknown commit)\n");
    }

    #[test]
    fn single_value_flags_last_wins_repeatable_flags_collect() {
        #[derive(Debug, clap::Parser)]
        struct Flags {
            #[arg(long)]
            state_dir: Option<String>,
            #[arg(long)]
            config: Vec<String>,
            #[arg(long)]
            dry_run: bool,
        }
        let m = documented::<Flags>("1")
            .try_get_matches_from([
                "x",
                "--state-dir",
                "a",
                "--config",
                "c1",
                "--state-dir",
                "b",
                "--config",
                "c2",
                "--dry-run",
                "--dry-run",
            ])
            .expect("repeated flags are not a usage error");
        let f = Flags::from_arg_matches(&m).unwrap();
        assert_eq!(f.state_dir.as_deref(), Some("b"));
        assert_eq!(f.config, ["c1", "c2"]);
        assert!(f.dry_run);
    }
}
