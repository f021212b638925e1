//! `--list` and `--forget`: operators can see and fix the incident ledger.
//!
//! `--list` prints one line per open incident on stdout (key, state, since, count, provider
//! references; also one a trigger of unknown fate may have opened, as `maybe open`), or with `--log-format json` one JSON object per line (the stored record).
//! `--forget KEY` removes a record (exit 0), or exits 65 naming a key the ledger does not know.
//! Both work on whichever store the settings choose (files or Redis). A store that cannot be
//! used exits 78 when a setting is the cause (Redis refused the password, user or database of
//! `state_store`, or a command the user's ACL forbids; a URL naming a read-only replica; a TLS
//! certificate this machine refuses; a URL or state directory that cannot be used), else 75
//! (Redis unreachable or not answering: try again later), with one line that never shows the
//! password ([`state::failure_code`]).

use serde_json::{Map, Value};

use super::settings::operator_settings;
use super::{Provider, try_open_store};
use crate::cli::CommonArgs;
use crate::config;
use crate::exit::{Code, Result};
use crate::http::Deadline;
use crate::log::{LogFormat, Logger, escape_controls, escape_json_line};
use crate::state::file::FileStore;
use crate::state::{self, Incident};

/// The one line for a store `--list` or `--forget` cannot use: `what` (`cannot list the
/// incidents: `), then `e`'s chain, exit 78 when a setting is the cause (the chain says what
/// to fix) and 75 otherwise, which ends in what to do: `; try again later` (README "The
/// incident ledger": Redis unreachable or not answering). Never the password: the store's
/// errors name it masked.
fn store_failure(e: &anyhow::Error, what: &str) -> crate::exit::Failure {
    let code = state::failure_code(e);
    let then = if code == Code::TempFail { "; try again later" } else { "" };
    code.msg(format!("{what}{e:#}{then}"))
}

/// Run `--list` or `--forget`.
pub(super) fn command<P: Provider>(args: &CommonArgs, flags: Map<String, Value>, log: &mut Logger) -> Result<Code> {
    let (operator, common) = operator_settings::<P>(args, &flags, log)?.warned::<P>(log);
    log.add_secrets(common.secrets());
    let deadline = Deadline::after(common.timeout);
    // The file store is found, not created: a `--list` or `--forget` naming a directory that
    // is not there (a typo, a host that never paged) says there is nothing in it instead of
    // creating it. `--list` only reads, so a user who may read the records but not write them
    // can list them (naming the directory: without --state-dir such a user is given the
    // per-user one, as a delivery would be); `--forget` opens the store as a delivery does.
    let found = common.state_store.is_none().then(|| FileStore::find(P::NAME, common.state_dir.as_deref()));
    if let (Some(key), Some(found)) = (&args.forget, &found)
        && !found.dir().exists()
    {
        return Err(Code::DataErr.msg(format!("no record for {} in {} (no such directory)", escape_controls(key), found.dir().display())));
    }
    let store: Box<dyn state::Store> = match found {
        Some(found) if args.forget.is_none() => Box::new(found),
        _ => try_open_store::<P>(&common, &deadline, log).map_err(|e| store_failure(&e, ""))?,
    };
    if let Some(key) = &args.forget {
        return match state::forget(store.as_ref(), key) {
            Ok(true) => {
                log.info(format!("forgot {}", escape_controls(key)));
                Ok(Code::Ok)
            }
            Ok(false) => Err(Code::DataErr.msg(format!("no record for {} in {}", escape_controls(key), store.describe()))),
            Err(e) => Err(store_failure(&e, &format!("cannot forget {}: ", escape_controls(key)))),
        };
    }
    let mut records: Vec<Incident> = Vec::new();
    for key in store.keys().map_err(|e| store_failure(&e, "cannot list the incidents: "))? {
        if let Ok(Some(inc)) = state::get(store.as_ref(), &key)
            && (inc.open || opening(&inc).is_some())
        {
            records.push(inc);
        }
    }
    for n in store.take_notices() {
        log.warn(n);
    }
    records.sort_by(|a, b| a.first_notified.cmp(&b.first_notified).then_with(|| a.key.cmp(&b.key)));
    // A record's requests in flight carry their event's overrides, which may hold a check's
    // own credentials (a Twilio auth token in `check.twilio`): masked, as the operator's are.
    let mut secrets = P::from_settings(&operator, &common).map(|p| p.secrets()).unwrap_or_default();
    secrets.extend(config::secret_values(&operator));
    secrets.extend(records.iter().flat_map(|inc| inc.inflight.iter()).flat_map(|e| config::secret_values(&e.overrides)));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let mut out = String::new();
    for inc in &records {
        match args.log_format {
            LogFormat::Json => out.push_str(&json_line(inc, &secrets)),
            LogFormat::Text => out.push_str(&text_line(inc)),
        }
        out.push('\n');
    }
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    let unsure = records.iter().filter(|inc| !inc.open).count();
    let unsure = match unsure {
        0 => String::new(),
        n => format!(" ({n} of them maybe open: opened, if at all, by a trigger of unknown fate)"),
    };
    log.info(format!("{} open incident(s) in {}{unsure}", records.len(), store.describe()));
    Ok(Code::Ok)
}

/// The trigger of unknown fate noted in flight in `inc` ([`Incident::inflight`]: sent, no
/// answer yet, or its sender died) that may have opened it at the service, when the record
/// does not hold it open: `--list` shows such an incident too, since the service may well
/// hold it open (a flush looks the request up or sends it again).
fn opening(inc: &Incident) -> Option<&crate::spool::Entry> {
    inc.inflight.iter().find(|e| e.action == crate::filter::Action::Trigger).filter(|_| !inc.open)
}

/// `inc` as one JSON line, every string in it with `secrets` masked before it is written as
/// JSON (written first, a secret holding `"` or `\` would be escaped there, and not found).
fn json_line(inc: &Incident, secrets: &[&str]) -> String {
    escape_json_line(crate::secret::mask_json(&inc.to_value(), secrets).to_string())
}

/// `KEY  open critical  since 2026-12-01T10:00:00Z  count 2  acknowledged  refs {…}`, with
/// `in doubt` after the count when the service may not hold it open ([`Incident::in_doubt`]).
///
/// One that only a trigger of unknown fate may have opened ([`opening`]) reads
/// `KEY  maybe open critical  since -  count 0  trigger of unknown fate (sent 2026-…; …)`.
fn text_line(inc: &Incident) -> String {
    let unsure = opening(inc);
    let mut line = format!(
        "{}\t{} {}\tsince {}\tcount {}",
        escape_controls(&inc.key),
        if unsure.is_some() { "maybe open" } else { "open" },
        escape_controls(unsure.map(|e| e.severity.as_str()).or(inc.severity.as_deref()).unwrap_or("-")),
        inc.first_notified.map_or_else(|| "-".to_string(), crate::clock::rfc3339),
        inc.count
    );
    if let Some(e) = unsure {
        line.push_str(&format!(
            "\ttrigger of unknown fate (sent {}; the service may have opened it: a flush looks it up or sends it again)",
            crate::clock::rfc3339(e.created)
        ));
    }
    if inc.in_doubt {
        line.push_str("\tin doubt (a late resolve may have closed it at the service; the next trigger goes out)");
    }
    if inc.acknowledged_at.is_some() {
        line.push_str("\tacknowledged");
    }
    if !inc.refs.is_empty() {
        line.push_str(&format!("\trefs {}", escape_controls(&Value::Object(inc.refs.clone()).to_string())));
    }
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;

    #[test]
    fn a_record_in_doubt_says_so_in_its_text_line() {
        let inc = Incident { key: "web-01/check_disk".into(), open: true, count: 2, ..Incident::default() };
        assert!(!text_line(&inc).contains("in doubt"));
        assert!(text_line(&Incident { in_doubt: true, ..inc }).contains("\tin doubt ("));
    }

    #[test]
    fn a_record_only_a_trigger_of_unknown_fate_may_have_opened_is_listed_as_maybe_open() {
        let trigger = crate::spool::Entry {
            incident_key: "web-01/check_disk".into(),
            fate: crate::outcome::Fate::Unknown,
            ..crate::spool::sample("web-01/check_disk", crate::filter::Action::Trigger, 1_796_000_000)
        };
        let closed = Incident { key: "web-01/check_disk".into(), ..Incident::default() };
        assert!(opening(&closed).is_none());
        let inc = Incident { inflight: vec![trigger.clone()], ..closed.clone() };
        assert_eq!(
            text_line(&inc),
            "web-01/check_disk\tmaybe open critical\tsince -\tcount 0\ttrigger of unknown fate (sent 2026-11-30T00:53:20Z; \
             the service may have opened it: a flush looks it up or sends it again)"
        );
        // Held open already: listed as open, as before.
        let open = Incident { open: true, severity: Some("warning".into()), ..inc.clone() };
        assert!(opening(&open).is_none() && text_line(&open).starts_with("web-01/check_disk\topen warning\t"));
        // A resolve of unknown fate does not open anything.
        let resolve = crate::spool::Entry { action: crate::filter::Action::Resolve, ..trigger };
        assert!(opening(&Incident { inflight: vec![resolve], ..closed }).is_none());
    }

    #[test]
    fn a_json_line_masks_a_secret_holding_json_escapes() {
        let secret = r#"tok"en\with-escapes-000000"#;
        let mut with = Incident { key: "web-01/check_disk".into(), open: true, ..Incident::default() };
        with.refs.insert("auth_token".into(), Value::String(secret.into()));
        let line = json_line(&with, &[secret]);
        let shown: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(shown["refs"]["auth_token"], crate::secret::mask(secret), "{line}");
        assert!(!line.contains("with-escapes"), "{line}");
    }
}
