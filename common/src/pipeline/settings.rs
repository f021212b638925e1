//! The settings of one invocation: the operator's (defaults < settings files < flags, secret
//! files read in, settings nothing reads named in warnings), and what an event or a spooled
//! request may lay over them ([`crate::trust`]).

use serde_json::{Map, Value};

use super::Provider;
use crate::cli::CommonArgs;
use crate::config::{self, Common, Files};
use crate::event::Event;
use crate::exit::Result;
use crate::log::Logger;

/// The settings of one invocation.
pub(super) struct Settings {
    /// `P`'s merged section, when the event's overrides are laid over the operator's
    /// (`None`: the event carries none, and the section is [`Operator::section`]).
    pub(super) section: Option<Map<String, Value>>,
    /// Its shared part.
    pub(super) common: Common,
    /// The event's overrides that [`crate::trust`] let through, as they differ from the
    /// operator's settings (kept with spooled requests, so that a flush routes them alike).
    pub(super) overrides: Map<String, Value>,
    /// The operator's settings alone ([`operator_settings`]).
    pub(super) operator: Operator,
}

/// The operator's settings of `P` ([`operator_settings`]), and the files they came from.
pub(super) struct Operator {
    /// `P`'s merged section.
    pub(super) section: Map<String, Value>,
    /// Its shared part.
    pub(super) common: Common,
    /// The settings files, for naming what in them nothing reads ([`Operator::warn_unread`]).
    files: Files,
}

impl Operator {
    /// Warn of the settings in the files that the handler does not read (a misspelled name):
    /// see [`warn_unread`]. Not done by [`operator_settings`] itself: an invocation that ends
    /// as a dedup skip (the storm path) leaves it out — the delivery it repeats warned already,
    /// and a storm of ninety repeats would otherwise log the same warning ninety times — and
    /// it is a tenth of that path's instructions (bench/HISTORY.md, session 17).
    pub(super) fn warn_unread<P: Provider>(&self, log: &Logger) {
        warn_unread::<P>(&self.files, &self.section, &self.common, log);
    }

    /// The section and its shared part, after [`Operator::warn_unread`]: for the invocations
    /// that read no event (`--flush`, `--list`, `--forget`), which have no storm path.
    pub(super) fn warned<P: Provider>(self, log: &Logger) -> (Map<String, Value>, Common) {
        self.warn_unread::<P>(log);
        (self.section, self.common)
    }
}

/// The operator's settings of `P`: `P`'s defaults < settings files (`--config`) < shared flags
/// and `flags`, with secrets named by `*_file` settings read in. Errors exit 78 (the
/// operator's own settings must be right). Warnings about the files (a secret readable by
/// others) go to `log`; those about settings nothing reads are the caller's to give
/// ([`Operator::warn_unread`]). Read once per invocation: a flush builds each spooled
/// request's settings from these ([`settings_with`]).
pub(super) fn operator_settings<P: Provider>(args: &CommonArgs, flags: &Map<String, Value>, log: &Logger) -> Result<Operator> {
    let files = Files::load(&args.config)?;
    for w in files.warnings() {
        log.warn(w);
    }
    let mut shared = args.settings();
    shared.extend(flags.clone());
    let section = files.section(P::NAME);
    for w in config::secret_file_warnings(P::NAME, &section).into_iter().chain(config::secret_file_warnings(P::NAME, &shared)) {
        log.warn(w);
    }
    let mut from_files = config::secret_files(P::NAME, section)?;
    // Test mode is `--test`'s alone: from a file it would make every real page a rehearsal.
    from_files.remove(crate::rehearsal::TEST_SETTING);
    let operator = config::overlay(P::defaults(), [from_files, config::secret_files(P::NAME, shared)?]);
    let common: Common = config::typed(P::NAME, &operator)?;
    common.validate(P::NAME)?;
    Ok(Operator { section: operator, common, files })
}

/// The secrets the operator's settings of `P` hold, as far as they can be read
/// ([`config::readable_secrets`]: flags and environment, each settings path given that loads
/// on its own, each secret file that can be read): for masking the event printed when the
/// settings as a whole cannot be used (exit 78). The provider never registered its secrets
/// then, and the event may hold one (a check's output quoting a settings file).
pub(super) fn readable_secrets<P: Provider>(args: &CommonArgs, flags: &Map<String, Value>) -> Vec<String> {
    let mut shared = args.settings();
    shared.extend(flags.clone());
    let mut out = config::readable_secrets(&shared);
    // One path at a time: a FIFO or an invalid file among them keeps the others' secrets known.
    let paths: Vec<Vec<std::path::PathBuf>> =
        if args.config.is_empty() { vec![Vec::new()] } else { args.config.iter().map(|p| vec![p.clone()]).collect() };
    for files in paths.iter().filter_map(|p| Files::load(p).ok()) {
        out.extend(config::readable_secrets(&files.section(P::NAME)));
    }
    out
}

/// One warning per setting of `P`'s section in the settings files that no part of the handler
/// reads ([`crate::unread`]: [`Common`] and [`Provider::READERS`] all ignore it), naming the
/// setting, the file it is in and the setting it is probably a misspelling of, never its value
/// (it may be a secret under a wrong name). `operator` is the operator's merged section; the
/// defaults and flags in it name only settings that exist, and event overrides are not in it
/// (a name written on the monitored host never gets a log line of its own). Only `P`'s section
/// is looked at: other handlers' sections and Sensu's own settings (`handlers`, `checks` …) in
/// the same directory are not this handler's to judge. Likewise one warning per key of
/// `notification_types` that is no notification type Nagios or Icinga sends
/// ([`crate::event::nagios::NOTIFICATION_TYPES`]): read, but it never applies; and one per
/// entry of `check_settings` or `entity_settings` (as `common`, the operator's, read them)
/// that names no setting an event may set ([`crate::trust::event_settings`]): it allows
/// nothing, and the setting the operator meant stays refused.
fn warn_unread<P: Provider>(files: &Files, operator: &Map<String, Value>, common: &Common, log: &Logger) {
    let mut secrets: Option<Vec<String>> = None;
    let mut warn = |path: &[String], file: &std::path::Path, what: &str, suggestion: Option<&str>| {
        let hint = suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
        let line = format!("settings `{}.{}` (in {}) {what}{hint}", P::NAME, crate::unread::shown(path), file.display());
        // Masked here, whether or not the provider has registered its secrets with `log` yet
        // (an exit 78 warns before it could): a key name that holds a secret by mistake.
        let secrets = secrets.get_or_insert_with(|| config::secret_values(operator));
        log.warn(crate::secret::mask_all(&line, &secrets.iter().map(String::as_str).collect::<Vec<_>>()));
    };
    let not_read = format!("is not a setting of handler-{}; ignored", P::NAME);
    // Dropped from the files by operator_settings: named here whether or not `P` has a test mode.
    let test = [crate::rehearsal::TEST_SETTING.to_string()];
    if let Some(file) = files.origin(P::NAME, &test) {
        let reads_test = crate::unread::unread(&Map::from_iter([(test[0].clone(), Value::Bool(true))]), &readers::<P>()).is_empty();
        let what = if reads_test { "is set by the --test flag only, never by a settings file; ignored" } else { not_read.as_str() };
        warn(&test, file, what, None);
    }
    for unread in crate::unread::unread(operator, &readers::<P>()) {
        // A secret another handler reads (`token`) may have come from its file setting
        // (`token_file`), which config::secret_files replaced: name it as the file says.
        let mut path = unread.path.clone();
        let file = files.origin(P::NAME, &path).or_else(|| {
            let last = path.last_mut()?;
            last.push_str("_file");
            files.origin(P::NAME, &path)
        });
        if let Some(file) = file {
            let top = if let [key] = path.as_slice() { Some(key.as_str()) } else { None };
            match top.and_then(|key| crate::unread::ruby_replacement(P::NAME, key)) {
                Some(instead) => warn(&path, file, &format!("{not_read}: {instead}"), None),
                None => warn(&path, file, &not_read, unread.suggestion),
            }
        }
    }
    // A notification type no monitoring system sends is read, but never applies.
    let types = operator.get("notification_types").and_then(Value::as_object);
    let known = crate::event::nagios::NOTIFICATION_TYPES;
    for kind in types.into_iter().flat_map(|t| t.keys()).filter(|k| !known.iter().any(|t| t.eq_ignore_ascii_case(k))) {
        let path = ["notification_types".to_string(), kind.clone()];
        if let Some(file) = files.origin(P::NAME, &path) {
            warn(&path, file, "names no Nagios or Icinga notification type; it never applies", crate::unread::nearest(kind, &known));
        }
    }
    // An entry naming no check- or entity-level setting allows nothing.
    let settable = crate::trust::event_settings(P::SETTINGS);
    for (list, entries) in
        [("check_settings", common.check_settings.as_deref().unwrap_or_default()), ("entity_settings", &common.entity_settings)]
    {
        let path = [list.to_string()];
        let mut named: Vec<&str> = Vec::new();
        for entry in entries.iter().filter(|e| !settable.contains(&e.as_str())) {
            if named.contains(&entry.as_str()) {
                continue;
            }
            named.push(entry);
            // The file whose list holds it (lists from several files are united).
            let holds = |v: &Value| config::list_entries(v).is_some_and(|l| l.contains(entry));
            if let Some(file) = files.origin_where(P::NAME, &path, holds) {
                let what =
                    format!("names `{entry}`, which is not a check- or entity-level setting of handler-{}; it allows nothing", P::NAME);
                warn(&path, file, &what, crate::unread::nearest(entry, &settable));
            }
        }
    }
}

/// Everything that reads `P`'s settings section: [`Common`] and [`Provider::READERS`].
fn readers<P: Provider>() -> Vec<crate::unread::Reader> {
    std::iter::once(crate::unread::Reader::of::<Common>()).chain(P::READERS.iter().copied()).collect()
}

/// The overrides of `overrides` (an event's) that name a setting of `P`. The others are
/// dropped with one warning that counts them and names none: their names are written with the
/// event (by a check's definition, or on the monitored host itself), and what an event carries
/// never gets a log line of its own, nor one line per name it invents.
///
/// An object of the operator's own naming (PagerDuty's teams, [`crate::unread::Reader::Groups`])
/// is never a setting an event can carry: only the operator defines teams (an event chooses
/// one by `pager_team`), so an override shaped like one is counted with the unknown ones, not
/// named (its name is the event's). What is inside a known setting's value is not judged
/// here: a check's `recipients` whose object holds a key Twilio does not read is used, the key
/// ignored, as before the operator's files were checked item by item.
fn known_overrides<P: Provider>(overrides: Vec<crate::trust::Override>, log: &Logger) -> Vec<crate::trust::Override> {
    // Whether the event names a setting, not what is inside its value: a list's items
    // (Reader::Items, Twilio's recipient objects) are judged in the operator's files only.
    let readers: Vec<_> = readers::<P>()
        .into_iter()
        .filter(|r| !matches!(r, crate::unread::Reader::Groups(_) | crate::unread::Reader::Items { .. }))
        .collect();
    let (known, unknown): (Vec<_>, Vec<_>) = overrides.into_iter().partition(|o| {
        // A secret's file (`routing_key_file`) is a setting too, read by config::secret_files
        // in operator layers only; trust refuses it from an event by name.
        let one: Map<String, Value> = [(o.setting.clone(), o.value.clone())].into_iter().collect();
        o.setting.strip_suffix("_file").is_some_and(config::is_secret_setting) || crate::unread::unread(&one, &readers).is_empty()
    });
    if !unknown.is_empty() {
        let n = unknown.len();
        log.warn(format!(
            "{n} event override{} ignored: not a setting of handler-{} (names not shown: they come with the event; \
             compare the check's or entity's `{}.…` settings with README.md)",
            if n == 1 { "" } else { "s" },
            P::NAME,
            P::NAME
        ));
    }
    known
}

/// The merged settings of `P`: the operator's ([`operator_settings`]) < the overrides `event`
/// carries, as far as [`crate::trust`] lets them (entity, then check; an invalid one is logged
/// and dropped, never costing the page). Warnings about each override not used go to `log`.
pub(super) fn settings<P: Provider>(
    args: &CommonArgs,
    flags: &Map<String, Value>,
    event: Option<&Event>,
    log: &Logger,
) -> Result<Settings> {
    let operator = operator_settings::<P>(args, flags, log)?;
    let from_event = event.map(|e| crate::trust::overrides_of(e, P::NAME)).unwrap_or_default();
    let from_event = known_overrides::<P>(from_event, log);
    // Most events carry none: the operator's section serves as it is, not copied.
    if from_event.is_empty() {
        let common = operator.common.clone();
        return Ok(Settings { section: None, common, overrides: Map::new(), operator });
    }
    let (section, common) = match with_overrides::<P>(operator.section.clone(), &operator.common, from_event, true, log) {
        Ok(merged) => merged,
        Err(e) => {
            operator.warn_unread::<P>(log);
            return Err(e);
        }
    };
    let overrides = section.iter().filter(|(k, v)| operator.section.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(Settings { section: Some(section), common, overrides, operator })
}

/// The settings a spooled request is delivered with: the `operator`'s as this invocation read
/// them (`common`: their shared part, for what `entity_settings` and `check_settings` allow),
/// with the `overrides` its event carried.
///
/// The entry is a file in a directory every member of the `pagerpipe` group can write, so its
/// overrides are admitted by [`crate::trust`] again, as a check's at most: an entry planted or
/// rewritten by another member can never set an operator-only setting (`api_url`, `ca_file`,
/// `timeout` …) and so send this user's credentials, or its pages, to a server of its choosing.
/// A refused one is logged (by name, never its value) and the operator's setting is used.
pub(super) fn settings_with<P: Provider>(
    operator: Map<String, Value>,
    common: &Common,
    overrides: &Map<String, Value>,
    log: &Logger,
) -> Result<(Map<String, Value>, Common)> {
    let stored = overrides
        .iter()
        .map(|(k, v)| crate::trust::Override {
            origin: crate::trust::Origin::Check,
            place: "spool entry",
            setting: k.clone(),
            value: v.clone(),
        })
        .collect();
    with_overrides::<P>(operator, common, stored, false, log)
}

/// `operator` (its shared part `common`, for what `entity_settings` and `check_settings`
/// allow) with `overrides` laid over it as far as [`crate::trust`] lets them, each one that
/// would make the settings invalid for `P` (or, when the operator's alone are ready to deliver,
/// not ready: [`Provider::ready`]) logged and dropped; the section and its shared part.
/// `event`: for an event's invocation, where an override that makes the delivery not fit its
/// deadline ([`Provider::fits`]) is invalid too; not for a flush, which carries a long delivery
/// on over as many flushes as it takes. Errors (exit 78) only when the result is still invalid.
fn with_overrides<P: Provider>(
    operator: Map<String, Value>,
    common: &Common,
    overrides: Vec<crate::trust::Override>,
    event: bool,
    log: &Logger,
) -> Result<(Map<String, Value>, Common)> {
    // Nothing to lay over (most events): the operator's settings, typed and checked already.
    if overrides.is_empty() {
        return Ok((operator, common.clone()));
    }
    // An override that leaves the provider unable to deliver at all (a check's routing key of
    // the wrong length, Twilio `recipients: []` or `channels: []`, a Slack token with a space)
    // is invalid too, when the operator's settings alone could deliver: otherwise the event's
    // value cost the page (exit 78, blaming the operator's settings). Where they could not (an
    // operator who leaves the credentials to each check), overrides are laid over as given.
    let operator_ready = P::from_settings(&operator, common).is_ok_and(|p| p.ready().is_ok());
    let valid = |m: &Map<String, Value>| -> Result<()> {
        let common: Common = config::typed(P::NAME, m)?;
        common.validate(P::NAME)?;
        let provider = P::from_settings(m, &common)?;
        if operator_ready {
            provider.ready()?;
        }
        if event { provider.fits(common.timeout) } else { Ok(()) }
    };
    let allowed = crate::trust::Allowed::of(common);
    let section = crate::trust::apply(P::NAME, operator, allowed, overrides, P::SETTINGS, &valid, &mut |line| log.warn(line));
    let common: Common = config::typed(P::NAME, &section)?;
    common.validate(P::NAME)?;
    Ok((section, common))
}
