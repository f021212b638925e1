//! `--test`, a rehearsal: the same pipeline a real event takes, fed a synthetic Sensu event
//! instead of stdin, with settings laid over the files so that the filters never skip it.
//! Used by `handler-twilio --test` and `handler-slack --test`; each handler only says what
//! its test event's check output reads.

use serde_json::{Map, Value, json};

use crate::cli::CommonArgs;
use crate::pipeline::{self, Provider};

/// Check name of the `--test` event; the incident key is `{entity}/pagerpipe-test`.
pub const TEST_CHECK: &str = "pagerpipe-test";

/// The event `--test` feeds to the pipeline: a Sensu 1.x `create` for check [`TEST_CHECK`]
/// on `entity` (the `--entity` flag, else this host's name from
/// `/proc/sys/kernel/hostname`, else `pagerpipe`), status 2 (critical), check output
/// `output`. Returns the event as JSON text.
pub fn event(entity: Option<&str>, output: &str) -> String {
    let host = entity
        .map(str::to_string)
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()));
    json!({
        "action": "create",
        "occurrences": 1,
        "client": {"name": host.as_deref().unwrap_or("pagerpipe")},
        "check": {"name": TEST_CHECK, "status": 2, "output": output},
    })
    .to_string()
}

/// The setting that puts a handler in test mode (Twilio speaks `test_message`, Slack checks
/// its token and posts a test message instead of opening a war room): set by `--test` only.
/// A settings file's `test` is dropped with a warning (`pipeline`'s `operator_settings`): in a
/// file it would turn every real page into a rehearsal.
pub const TEST_SETTING: &str = "test";

/// Settings `--test` lays over the files: test mode ([`TEST_SETTING`], e.g. Twilio speaks
/// `test_message`), page whatever the `severities`/`occurrences` filters say, and never
/// suppress a repeated test (`refresh: 0`). A handler's own limits (e.g. Twilio's call caps)
/// still apply.
pub fn settings() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(TEST_SETTING.into(), true.into());
    m.insert("severities".into(), "warning,critical,unknown".into());
    m.insert("occurrences".into(), 1.into());
    m.insert("refresh".into(), 0.into());
    m
}

/// Runs `--test` for provider `P`: `flags` (the handler's own flag settings) plus
/// [`settings`], and [`event`] with check output `output` instead of stdin, through
/// [`pipeline::main_with`]. Returns the process exit code, as [`pipeline::main`] does.
pub fn main<P: Provider>(args: &CommonArgs, mut flags: Map<String, Value>, output: &str) -> crate::exit::Code {
    flags.extend(settings());
    let event = event(args.entity.as_deref(), output);
    pipeline::main_with::<P>(args, flags, event.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_event_is_a_critical_sensu_event_for_the_test_check() {
        let ev = crate::event::parse_json(event(Some("rehearsal-01"), "test page").as_bytes(), None).expect("event");
        assert_eq!((ev.entity.as_str(), ev.check.as_str(), ev.status), ("rehearsal-01", TEST_CHECK, 2));
        assert_eq!(settings()["refresh"], 0);
    }
}
