//! Settings: defaults < conf.d JSON < environment < flags < per-check overrides.
//!
//! Operators already keep Sensu settings as JSON files in `/etc/sensu/conf.d`; pagerpipe reads
//! the same files, merged the way Sensu merges them (objects deep-merged, arrays united, other
//! values replaced by the later file), and takes one section per handler (`pagerduty`, `twilio`,
//! `reactio`). The environment (read by clap through `env = …` on the secret flags) and flags
//! are laid over that section, then the per-check overrides the event carries. Each handler
//! then deserializes the merged section into its own typed settings; the [`de`] helpers accept
//! the string forms that Sensu Go annotations and environment variables give (`"30m"`,
//! `"warning,critical"`, `"true"`). Every error names the file or setting and exits 78.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::exit::{Code, Result};
use crate::files::NotReadable;

/// Default configuration directory, read when no `--config` is given and it exists.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/sensu/conf.d";

/// Setting names that hold credentials, in any section (`pagerduty.routing_key`,
/// `pagerduty.<team>.routing_key`, `twilio.auth_token`, …): never printed, and a settings file
/// holding one should be readable by the handler's user only.
pub const SECRET_SETTINGS: [&str; 9] = [
    "routing_key",
    "integration_key",
    "api_key",
    "auth_token",
    "api_key_secret",
    "password",
    "token",
    "announce_token",
    "announce_webhook",
];

/// Whether a setting named `name` holds a credential (see [`SECRET_SETTINGS`]).
pub fn is_secret_setting(name: &str) -> bool {
    SECRET_SETTINGS.contains(&name)
}

/// The values of `section`'s secret settings ([`is_secret_setting`]), also those in objects
/// further down (a PagerDuty team's `routing_key`, a Sensu 1.x check attribute's nested
/// object), each string of one given as a list or an object too, and the password of a
/// `state_store` URL: what a line about the section masks before the provider that knows its
/// secrets is built, and what an event's settings overrides carry for any handler
/// ([`crate::event::Event::credentials`]).
pub fn secret_values(section: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    secrets_in(section, &mut out, 0);
    out.extend(section.get("state_store").and_then(Value::as_str).map(crate::state::redis::secrets_of).unwrap_or_default());
    out
}

/// How deep [`secret_values`] looks into nested objects: further than any setting goes (a
/// team's object), bounded for a host-written event.
const SECRET_DEPTH: usize = 8;

/// Collect into `out` the strings held by `map`'s secret settings, at any depth up to
/// [`SECRET_DEPTH`]. A key counts as a secret setting by its last dotted part too
/// (`ops.routing_key`).
fn secrets_in(map: &Map<String, Value>, out: &mut Vec<String>, depth: usize) {
    if depth > SECRET_DEPTH {
        return;
    }
    for (k, v) in map {
        if is_secret_setting(k) || k.rsplit_once('.').is_some_and(|(_, last)| is_secret_setting(last)) {
            strings_in(v, out, depth);
        } else if let Value::Object(inner) = v {
            secrets_in(inner, out, depth + 1);
        }
    }
}

/// Collect into `out` every string in `v` (itself, or in a list or object, up to
/// [`SECRET_DEPTH`]).
fn strings_in(v: &Value, out: &mut Vec<String>, depth: usize) {
    match v {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Array(items) if depth < SECRET_DEPTH => items.iter().for_each(|i| strings_in(i, out, depth + 1)),
        Value::Object(o) if depth < SECRET_DEPTH => o.values().for_each(|i| strings_in(i, out, depth + 1)),
        _ => {}
    }
}

/// Largest settings file read (`--config`, or a `*.json` in a `--config` directory): 1 MiB,
/// far more than any handler's settings; a larger one is refused (exit 78).
pub const MAX_SETTINGS_FILE_BYTES: u64 = 1024 * 1024;

/// Largest secret file read through a `*_file` setting: 64 KiB.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// `map` (an operator's settings section, from files or from the environment and flags) with
/// every `<secret>_file` setting (`routing_key_file`, `auth_token_file`, `api_key_secret_file`,
/// `api_key_file`, `token_file`, also inside team objects such as `pagerduty.ops`) replaced by
/// `<secret>` holding the file's content, surrounding whitespace (the trailing newline)
/// removed — the form systemd credentials (`LoadCredential=`, `%d/routing_key`) and Docker
/// secrets (`/run/secrets/…`) take. Only operator layers go through this: [`crate::trust`]
/// never lets an event name a file to read.
///
/// Errors (exit 78) name the setting and the file, never its content: a file that cannot be
/// read, is empty, is larger than [`MAX_SECRET_FILE_BYTES`] or not UTF-8, or a `<secret>` set
/// beside its `<secret>_file` in the same place.
pub fn secret_files(section: &str, mut map: Map<String, Value>) -> Result<Map<String, Value>> {
    let names: Vec<String> = map.keys().cloned().collect();
    for name in names {
        if let Some(Value::Object(inner)) = map.get(&name) {
            let inner = secret_files(&format!("{section}.{name}"), inner.clone())?;
            map.insert(name.clone(), Value::Object(inner));
            continue;
        }
        let Some(stem) = name.strip_suffix("_file").filter(|s| is_secret_setting(s)) else { continue };
        let Some(value) = map.remove(&name) else { continue };
        let setting = format!("{section}.{name}");
        let Value::String(path) = value else {
            return Err(Code::Config.msg(format!("settings `{setting}` must be the path of a file holding the secret")));
        };
        if path.trim().is_empty() {
            continue;
        }
        if map.get(stem).is_some_and(|v| v.as_str().is_none_or(|s| !s.trim().is_empty())) {
            return Err(Code::Config.msg(format!("settings `{setting}` and `{section}.{stem}` are both set in the same place; keep one")));
        }
        let secret = read_secret_file(Path::new(path.trim()))
            .map_err(|why| Code::Config.msg(format!("settings `{setting}`: {} {why}", path.trim())))?;
        map.insert(stem.to_string(), Value::String(secret));
    }
    Ok(map)
}

/// One warning per `<secret>_file` setting in `map` (also inside team objects) whose file users
/// other than the handler's can read (as [`exposure_warning`] judges a settings file), naming
/// the setting and the file; empty on non-Unix systems.
pub fn secret_file_warnings(section: &str, map: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in map {
        match value {
            Value::Object(inner) => out.extend(secret_file_warnings(&format!("{section}.{name}"), inner)),
            Value::String(path) if name.strip_suffix("_file").is_some_and(is_secret_setting) && !path.trim().is_empty() => {
                let path = Path::new(path.trim());
                if let Some(who) = readable_by_others(path) {
                    out.push(format!(
                        "secret file {} (settings `{section}.{name}`) is readable by {who}; run `chmod go-r {}`",
                        path.display(),
                        path.display()
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// The secrets `map` (an operator's settings section) holds, read as far as they can be: its
/// secret settings' values ([`secret_values`]), the content of each `<secret>_file` that can be
/// read ([`secret_files`]'s rules, an unreadable one passed over), and the password of an
/// `api_url` or `state_store` URL. For masking what is printed when the settings as a whole
/// cannot be used (exit 78), before any provider registered its own.
pub fn readable_secrets(map: &Map<String, Value>) -> Vec<String> {
    let mut out = secret_values(map);
    readable_secret_files(map, &mut out, 0);
    for url in ["api_url", "state_store"].iter().filter_map(|k| map.get(*k).and_then(Value::as_str)) {
        out.extend(crate::secret::url_password(url).map(str::to_string));
    }
    out
}

/// Into `out`, the content of every `<secret>_file` of `map` (at any depth up to
/// [`SECRET_DEPTH`]) that can be read.
fn readable_secret_files(map: &Map<String, Value>, out: &mut Vec<String>, depth: usize) {
    if depth > SECRET_DEPTH {
        return;
    }
    for (name, value) in map {
        match value {
            Value::Object(inner) => readable_secret_files(inner, out, depth + 1),
            Value::String(path) if name.strip_suffix("_file").is_some_and(is_secret_setting) && !path.trim().is_empty() => {
                out.extend(read_secret_file(Path::new(path.trim())).ok());
            }
            _ => {}
        }
    }
}

fn read_secret_file(path: &Path) -> std::result::Result<String, String> {
    let bytes = crate::files::read_configured(path, MAX_SECRET_FILE_BYTES).map_err(|why| match why {
        NotReadable::TooLarge(_) => format!("{why}; it should hold the secret alone"),
        NotReadable::NotRegular(_) => format!("{why}; give a regular file holding the secret"),
        NotReadable::Io(_) => format!("{why}; let the handler's user read it"),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| "is not UTF-8 text; it should hold the secret alone".to_string())?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err("is empty; put the secret in it".to_string());
    }
    Ok(secret.to_string())
}

/// The merged JSON of every configuration file that was read.
#[derive(Debug, Default, Clone)]
pub struct Files {
    /// The merged top-level object.
    pub merged: Map<String, Value>,
    /// The files read, in merge order.
    pub read: Vec<PathBuf>,
    /// Warnings found while loading, one line each (a file holding a secret that other users
    /// can read); the handler logs them and carries on.
    pub warnings: Vec<String>,
    /// Each file's own object, in merge order (beside [`Files::read`]), to say which file a
    /// setting comes from ([`Files::origin`]).
    objects: Vec<Map<String, Value>>,
}

impl Files {
    /// Load `paths` (files or directories, in the order given; a directory contributes its
    /// `*.json` files in name order). With no paths, [`DEFAULT_CONFIG_DIR`] is read when it
    /// exists. A leading UTF-8 byte order mark is skipped. Errors (exit 78): a path that does
    /// not exist, unreadable file, a path that is not a regular file (a FIFO, a device: refused
    /// without blocking; a directory's non-regular entries are skipped), a file larger than
    /// [`MAX_SETTINGS_FILE_BYTES`], invalid JSON, a file whose top level is not an object.
    pub fn load(paths: &[PathBuf]) -> Result<Files> {
        let mut files = Files::default();
        if paths.is_empty() {
            let default = Path::new(DEFAULT_CONFIG_DIR);
            if default.is_dir() {
                files.add_dir(default)?;
            }
            return Ok(files);
        }
        for path in paths {
            if path.is_dir() {
                files.add_dir(path)?;
            } else if path.exists() {
                files.add_file(path)?;
            } else {
                return Err(Code::Config.msg(format!("config: {} does not exist; fix the --config path", path.display())));
            }
        }
        Ok(files)
    }

    fn add_dir(&mut self, dir: &Path) -> Result<()> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Code::Config.msg(format!("config: cannot list {}: {e}; let the handler's user read it", dir.display())))?;
        let mut jsons: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        jsons.sort();
        for p in jsons {
            self.add_file(&p)?;
        }
        Ok(())
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = crate::files::read_configured(path, MAX_SETTINGS_FILE_BYTES).map_err(|why| match why {
            NotReadable::Io(e) => Code::Config.msg(format!("config: cannot read {}: {e}; let the handler's user read it", path.display())),
            why @ NotReadable::TooLarge(_) => {
                Code::Config.msg(format!("config: {} {why}; a settings file is far smaller: check the path", path.display()))
            }
            why @ NotReadable::NotRegular(_) => Code::Config.msg(format!("config: {} {why}; give a regular JSON file", path.display())),
        })?;
        // A leading UTF-8 byte order mark (some Windows editors write one) is not JSON.
        let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&text);
        let value: Value = serde_json::from_slice(text)
            .map_err(|e| Code::Config.msg(format!("config: {} is not valid JSON ({e}); fix the file", path.display())))?;
        let Value::Object(obj) = value else {
            return Err(Code::Config
                .msg(format!("config: {} must hold one JSON object such as {{\"pagerduty\": {{…}}}}; fix the file", path.display())));
        };
        if let Some(warning) = exposure_warning(path, &obj) {
            self.warnings.push(warning);
        }
        merge_maps(&mut self.merged, obj.clone());
        self.objects.push(obj);
        self.read.push(path.to_path_buf());
        Ok(())
    }

    /// The warnings found while loading (see [`Files::warnings`]), for the handler to log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The last file (the one whose value counts) that sets `path` inside section `section`,
    /// e.g. `("twilio", ["check_setting"])`; `None` when no file read sets it. A list's item
    /// (segment `[1]`, [`crate::unread::index`]) is the merged list's item, found in a file's
    /// list by its value: lists from several files are united, so the merged index is no
    /// file's (`("twilio", ["recipients", "[1]", "phnoe"])`).
    pub fn origin(&self, section: &str, path: &[String]) -> Option<&Path> {
        self.origin_where(section, path, |_| true)
    }

    /// [`Files::origin`] of a value at `path` that `holds` accepts: the last file whose value
    /// there does (the file whose `check_settings` list names an entry, when lists from
    /// several files were united).
    pub fn origin_where(&self, section: &str, path: &[String], holds: impl Fn(&Value) -> bool) -> Option<&Path> {
        let sets = |obj: &Map<String, Value>| {
            let mut at = obj.get(section);
            let mut merged = self.merged.get(section);
            for key in path {
                match crate::unread::as_index(key) {
                    Some(i) => {
                        let item = merged.and_then(Value::as_array).and_then(|l| l.get(i));
                        at = at.and_then(Value::as_array).and_then(|l| l.iter().find(|x| Some(*x) == item));
                        merged = item;
                    }
                    None => {
                        at = at.and_then(Value::as_object).and_then(|o| o.get(key));
                        merged = merged.and_then(Value::as_object).and_then(|o| o.get(key));
                    }
                }
            }
            at.is_some_and(&holds)
        };
        self.objects.iter().zip(&self.read).rev().find(|(obj, _)| sets(obj)).map(|(_, p)| p.as_path())
    }

    /// The named top-level section as an object (empty when absent or not an object).
    pub fn section(&self, name: &str) -> Map<String, Value> {
        match self.merged.get(name) {
            Some(Value::Object(o)) => o.clone(),
            _ => Map::new(),
        }
    }
}

/// The first secret setting (by name, see [`SECRET_SETTINGS`]) with a non-empty value anywhere
/// in `obj`, as its dotted path (`pagerduty.ops.routing_key`); a `state_store` URL holding a
/// password (`redis://:password@host`, [`crate::state::redis::secrets_of`]) counts too.
fn secret_path(obj: &Map<String, Value>) -> Option<String> {
    for (k, v) in obj {
        match v {
            Value::String(s) if is_secret_setting(k) && !s.trim().is_empty() => return Some(k.clone()),
            Value::String(s) if k == "state_store" && !crate::state::redis::secrets_of(s).is_empty() => {
                return Some(format!("{k}'s password"));
            }
            Value::Number(_) if is_secret_setting(k) => return Some(k.clone()),
            Value::Object(inner) => {
                if let Some(p) = secret_path(inner) {
                    return Some(format!("{k}.{p}"));
                }
            }
            _ => {}
        }
    }
    None
}

/// A warning when the settings file at `path` holds a secret and users other than the
/// handler's can read it: mode bit `o+r`, or `g+r` with a group other than the process's
/// effective group. (A file `root:sensu 0640` read by a handler running as `sensu` is the
/// usual safe layout and gives no warning.) `None` otherwise, and on non-Unix systems.
pub fn exposure_warning(path: &Path, obj: &Map<String, Value>) -> Option<String> {
    let setting = secret_path(obj)?;
    let who = readable_by_others(path)?;
    Some(format!(
        "settings file {} holds a secret ({setting}) and is readable by {who}; run `chmod go-r {}` (or keep the secret in the environment)",
        path.display(),
        path.display()
    ))
}

/// Who besides the handler's user can read `path`, when anyone can: `other users (mode 0644)`.
#[cfg(unix)]
fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.mode() & 0o777;
    if mode & 0o004 != 0 {
        return Some(format!("all users (mode {mode:04o})"));
    }
    if mode & 0o040 != 0 && effective_gid() != Some(meta.gid()) {
        let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
        return group_readers(crate::files::group_name(&groups, meta.gid()), meta.gid(), mode);
    }
    None
}

/// Who reads a file of mode `mode` through its group `gid`, named `name` in `/etc/group`:
/// `group sensu (gid 998, mode 0640)`, or `group 998 (mode 0640)` for a group without a name.
/// `None` for the group the packages create for the monitoring users
/// ([`crate::files::SHARED_GROUP`]): a settings file `root:pagerpipe 0640` is the documented
/// layout for a file several of them read (packaging/README.md), not an exposure.
fn group_readers(name: Option<&str>, gid: u32, mode: u32) -> Option<String> {
    match name {
        Some(crate::files::SHARED_GROUP) => None,
        Some(name) => Some(format!("group {name} (gid {gid}, mode {mode:04o})")),
        None => Some(format!("group {gid} (mode {mode:04o})")),
    }
}

/// The process's effective group id, from `/proc/self/status` (`Gid: real effective …`);
/// `None` where that file does not exist.
#[cfg(unix)]
fn effective_gid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Gid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Deep-merge `over` into `base` the way Sensu merges settings files: objects recursively,
/// arrays united (items of `over` not already in `base` are appended), anything else replaced.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => merge_maps(b, o),
        (Value::Array(b), Value::Array(o)) => {
            for item in o {
                if !b.contains(&item) {
                    b.push(item);
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// [`merge`] for two objects.
pub fn merge_maps(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (k, v) in over {
        match base.get_mut(&k) {
            Some(existing) => merge(existing, v),
            None => {
                base.insert(k, v);
            }
        }
    }
}

/// Lay `layers` over `base`, each replacing (not uniting) what it names: flags and per-check
/// overrides replace a list from a file rather than extending it. Objects still merge deeply.
pub fn overlay(mut base: Map<String, Value>, layers: impl IntoIterator<Item = Map<String, Value>>) -> Map<String, Value> {
    for layer in layers {
        for (k, v) in layer {
            match (base.get_mut(&k), v) {
                (Some(Value::Object(b)), Value::Object(o)) => {
                    let merged = overlay(std::mem::take(b), [o]);
                    *b = merged;
                }
                (_, v) => {
                    base.insert(k, v);
                }
            }
        }
    }
    base
}

/// Deserialize a merged settings section. Errors (exit 78) name `section.setting` and say
/// to fix it; for a secret setting ([`SECRET_SETTINGS`]) the value is never quoted (serde's
/// "invalid type: integer `…`" would print it).
pub fn typed<T: DeserializeOwned>(section: &str, map: &Map<String, Value>) -> Result<T> {
    serde_path_to_error::deserialize(map).map_err(|e| {
        let path = e.path().to_string();
        let last = e.path().iter().next_back().map(|s| s.to_string()).unwrap_or_default();
        let path = if path == "." { String::new() } else { format!(".{path}") };
        let why = if is_secret_setting(&last) {
            "has the wrong type; give it as a string (the value is not shown: it is a secret)".to_string()
        } else {
            redact_quoted(&e.inner().to_string())
        };
        // "settings `x.timeout` is too large: …" reads better than "…: is too large".
        let sep = if why.starts_with("is ") { " " } else { ": " };
        Code::Config.msg(format!(
            "settings `{section}{path}`{sep}{why}; fix it where it is set (settings file, flag, environment or per-check override)"
        ))
    })
}

/// `msg` (a deserializer's error) with every quoted value (`"…"` or `` `…` ``) longer than
/// [`MAX_SHOWN_CHARS`] replaced by its length: serde quotes the value it refused ("invalid
/// type: string \"…\""), and that value may be a secret pasted into the wrong setting.
pub fn redact_quoted(msg: &str) -> String {
    // What serde expected ("…, expected one of `network`, `shared-hardware`") is ours to show.
    let (msg, expected) = match msg.find(", expected") {
        Some(i) => msg.split_at(i),
        None => (msg, ""),
    };
    let mut out = String::with_capacity(msg.len() + expected.len());
    let mut rest = msg;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        let after = &rest[open + 1..];
        let Some(close) = after.find(quote) else { break };
        let inner = &after[..close];
        out.push_str(&rest[..open]);
        if !shown_whole(inner) {
            out.push_str(&format!("(a value of {} characters)", inner.chars().count()));
        } else {
            out.push(quote);
            out.push_str(inner);
            out.push(quote);
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out.push_str(expected);
    out
}

/// Settings every handler understands, read from its own section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Common {
    /// Overall deadline for one invocation (delivery and retries), humantime or seconds; 10 s
    /// ([`DEFAULT_TIMEOUT`]),
    /// within [`TIMEOUT_BOUNDS`].
    #[serde(deserialize_with = "de::timeout")]
    pub timeout: Duration,
    /// Statuses that raise a page: any of `info`, `warning`, `critical`, `unknown` (a list, or
    /// one comma-separated string); default `warning`, `critical`, `unknown`.
    #[serde(deserialize_with = "de::list_of")]
    pub severities: Vec<Severity>,
    /// How long repeated triggers for an open incident stay suppressed; default 30 min, within
    /// [`REFRESH_BOUNDS`].
    #[serde(deserialize_with = "de::refresh")]
    pub refresh: Duration,
    /// Minimum occurrences before an event is handled (sensu-plugin's `occurrences`); default 1,
    /// within [`OCCURRENCES_BOUNDS`].
    #[serde(deserialize_with = "de::occurrences")]
    pub occurrences: u64,
    /// Where the dedup state store lives; default `/var/lib/pagerpipe`.
    pub state_dir: Option<PathBuf>,
    /// Service base URL; each handler has its own default.
    pub api_url: Option<String>,
    /// Nagios/Icinga notification types → `trigger`, `acknowledge`, `resolve` or `skip`,
    /// overriding the built-in mapping, e.g. `{"CUSTOM": "trigger", "DOWNTIMESTART": "acknowledge"}`.
    pub notification_types: std::collections::BTreeMap<String, NotificationAction>,
    /// PEM file of CA certificates to trust instead of the bundled Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// Where undelivered requests are spooled; default `/var/spool/pagerpipe` (see [`crate::spool`]).
    pub spool_dir: Option<PathBuf>,
    /// Check-level settings ([`crate::trust`]) that Sensu Go *entity* annotations may set too,
    /// e.g. `["pager_team"]`; default none. Operator-level settings never come from an event.
    /// Read here only ([`de::list`]: entries trimmed, compared exactly), for
    /// [`crate::trust::Allowed`] and the warnings about entries naming no such setting.
    #[serde(deserialize_with = "de::list")]
    pub entity_settings: Vec<String>,
    /// The check-level settings ([`crate::trust`]) that checks may set, e.g.
    /// `["pager_team", "severities"]`; `None` (the default): all of them. For sites where check
    /// results can come from the monitored host itself (a Sensu 1.x client socket, a Sensu Go
    /// agent's API). Presentation settings are not narrowed by it. Read here only, as
    /// `entity_settings` is.
    #[serde(deserialize_with = "de::optional_list")]
    pub check_settings: Option<Vec<String>>,
    /// Spooled requests older than this move to `failed/` instead of being delivered; default
    /// 24 h, within [`SPOOL_MAX_AGE_BOUNDS`].
    #[serde(deserialize_with = "de::spool_max_age")]
    pub spool_max_age: Duration,
    /// Zabbix severity (`not_classified` … `disaster`) → the word the `severities` filter sees
    /// (`info`, `warning`, `critical`, `unknown`); a severity not named keeps its default
    /// ([`crate::event::zabbix::ZabbixSeverity::default_filter_word`]).
    pub zabbix_severities: std::collections::BTreeMap<crate::event::zabbix::ZabbixSeverity, String>,
    /// The incident ledger shared by several hosts: `redis://[user:password@]host:port/db` or
    /// `rediss://…` (TLS, trusting `ca_file`); default: the file store in `state_dir`.
    pub state_store: Option<String>,
}

/// A word the `severities` filter compares (and `zabbix_severities` maps to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational (Zabbix Not classified / Information by default).
    Info,
    /// Status 1.
    Warning,
    /// Status 2.
    Critical,
    /// Status 3 or more.
    Unknown,
    /// Status 0 (accepted for compatibility; an OK never triggers).
    Ok,
}

impl Severity {
    /// The lower-case word.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
            Severity::Unknown => "unknown",
            Severity::Ok => "ok",
        }
    }
}

/// What a Nagios/Icinga notification type is mapped to by `notification_types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationAction {
    /// Page as a problem (the severity filter still applies).
    Trigger,
    /// Acknowledge the incident.
    Acknowledge,
    /// Resolve the incident.
    Resolve,
    /// Do nothing (logged).
    Skip,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            timeout: DEFAULT_TIMEOUT,
            severities: vec![Severity::Warning, Severity::Critical, Severity::Unknown],
            refresh: Duration::from_secs(30 * 60),
            occurrences: 1,
            state_dir: None,
            api_url: None,
            ca_file: None,
            spool_dir: None,
            spool_max_age: crate::spool::DEFAULT_MAX_AGE,
            entity_settings: Vec::new(),
            check_settings: None,
            state_store: None,
            notification_types: std::collections::BTreeMap::new(),
            zabbix_severities: std::collections::BTreeMap::new(),
        }
    }
}

impl Common {
    /// The credentials these settings carry in URLs, for the logger to mask: the password of
    /// the state store's URL and that of `api_url` (`https://relay:password@gateway`, which
    /// the HTTP client sends as Basic authentication), each as written and percent-decoded
    /// ([`crate::state::redis::secrets_of`]), and the user information with it as the URL
    /// writes it (`//relay:password@`): the logger leaves secrets shorter than 4 bytes alone
    /// ([`crate::secret::mask_all`]), and this masks such a password with what is around it.
    /// Empty when neither has one.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        for url in [&self.state_store, &self.api_url].into_iter().flatten() {
            secrets.extend(crate::state::redis::secrets_of(url));
            if crate::secret::url_password(url).is_some()
                && let Some(userinfo) = crate::secret::url_userinfo(url)
            {
                secrets.push(format!("//{userinfo}@"));
            }
        }
        secrets
    }

    /// Check values that deserialize but make no sense. Errors exit 78 and say which setting to fix.
    pub fn validate(&self, section: &str) -> Result<()> {
        const FIX: &str = "fix it where it is set (settings file, flag, environment or per-check override)";
        // Checked here rather than typed: serde_path_to_error cannot name an enum map key.
        for (z, word) in &self.zabbix_severities {
            if !matches!(word.as_str(), "info" | "warning" | "critical" | "unknown") {
                return Err(Code::Config.msg(format!(
                    "settings `{section}.zabbix_severities.{}`: {} is not one of info, warning, critical, unknown; {FIX}",
                    serde_json::to_value(z).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
                    shown(word)
                )));
            }
        }
        if let Some(url) = &self.api_url
            && let Err(why) = check_base_url(url)
        {
            return Err(Code::Config.msg(format!("settings `{section}.api_url`: {} {why}; {FIX}", shown(url))));
        }
        Ok(())
    }
}

/// A service base URL must be `http://` or `https://` with a host; anything else would only
/// fail at send time, be retried until the deadline and spooled, when no retry can help.
fn check_base_url(url: &str) -> std::result::Result<(), &'static str> {
    let uri: ureq::http::Uri = url.trim().parse().map_err(|_| "is not a URL such as https://events.pagerduty.com")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("is not an http:// or https:// URL");
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("has no host");
    }
    Ok(())
}

/// Largest duration any setting accepts: 10 years. Anything longer is refused (exit 78) before
/// it can reach an `Instant` or `SystemTime` addition, where it would overflow and abort.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// `timeout` when no setting gives one: 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds of `timeout` (the overall deadline of one invocation): 100 ms to 24 h.
pub const TIMEOUT_BOUNDS: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(24 * 60 * 60));
/// Bounds of `refresh`: 0 (every repeat pages) to 365 days.
pub const REFRESH_BOUNDS: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(365 * 24 * 60 * 60));
/// Bounds of `spool_max_age`: 1 min to 365 days.
pub const SPOOL_MAX_AGE_BOUNDS: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(365 * 24 * 60 * 60));
/// Bounds of `occurrences`: 0 (same as 1) to 1 000 000.
pub const OCCURRENCES_BOUNDS: (u64, u64) = (0, 1_000_000);

/// Longest value quoted in a configuration error, in characters; a longer value is described
/// by its length only (it may be a secret pasted into the wrong setting).
pub const MAX_SHOWN_CHARS: usize = 12;

/// Whether `value` is short enough to be quoted whole in a message: at most
/// [`MAX_SHOWN_CHARS`] characters ([`shown`]).
pub fn shown_whole(value: &str) -> bool {
    value.chars().count() <= MAX_SHOWN_CHARS
}

/// `value` for a configuration error: quoted when it has at most [`MAX_SHOWN_CHARS`]
/// characters (escaped, so control characters are visible), else `a value of N characters`.
pub fn shown(value: &str) -> String {
    shown_within(value, MAX_SHOWN_CHARS)
}

/// [`shown`] with another limit: quoted when it has at most `max` characters (for settings
/// whose valid values are a little longer, such as phone numbers).
pub fn shown_within(value: &str, max: usize) -> String {
    let n = value.chars().count();
    if n <= max { format!("{value:?}") } else { format!("a value of {n} characters") }
}

/// A duration as humantime writes it (`100ms`, `2m 5s`), with whole days in days (`1day`,
/// `365days`, `40days 1h`) where humantime would use its own 30.44-day months and years
/// (`11months 30days 3h 50m 24s`). Either form parses back as the same duration. Every
/// duration in a log line or an error goes through this, so that it reads as settings are
/// written.
pub fn show_duration(d: Duration) -> String {
    const DAY: u64 = 24 * 60 * 60;
    let days = d.as_secs() / DAY;
    let rest = d - Duration::from_secs(days * DAY);
    let rest = (!rest.is_zero()).then(|| humantime::format_duration(rest).to_string());
    match (days, rest) {
        (0, None) => "0s".to_string(),
        (0, Some(rest)) => rest,
        (1, rest) => ["1day".to_string()].into_iter().chain(rest).collect::<Vec<_>>().join(" "),
        (n, rest) => [format!("{n}days")].into_iter().chain(rest).collect::<Vec<_>>().join(" "),
    }
}

/// The entries of a list setting's `value` (`check_settings` in one file), as [`de::list`]
/// reads them; `None` when it is no list of strings.
pub fn list_entries(value: &Value) -> Option<Vec<String>> {
    de::list(value.clone()).ok()
}

/// Lenient deserializers for values that may arrive as strings (annotations, environment).
pub mod de {
    use std::time::Duration;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// A duration: a humantime string (`"10s"`, `"30m"`, `"1h 30m"`) or a number of seconds,
    /// at most [`super::MAX_DURATION`] (so that no later addition to an `Instant` or a
    /// `SystemTime` can overflow). Settings with tighter bounds use [`duration_within`].
    pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        duration_within(d, Duration::ZERO, super::MAX_DURATION)
    }

    /// A duration (as [`duration`]) between `min` and `max` inclusive. Out of range, or too
    /// large to represent at all (`18446744073709551615s`, `500000000000y`), the error says
    /// the bounds and never quotes the value.
    pub fn duration_within<'de, D: Deserializer<'de>>(d: D, min: Duration, max: Duration) -> Result<Duration, D::Error> {
        let range = || format!("give a duration between {} and {}", super::show_duration(min), super::show_duration(max));
        let too_large = || D::Error::custom(format!("is too large: {}", range()));
        let value = match Value::deserialize(d)? {
            Value::Number(n) => match n.as_f64() {
                Some(s) if s.is_finite() && s >= 0.0 => Duration::try_from_secs_f64(s).map_err(|_| too_large())?,
                Some(s) if s.is_finite() => return Err(D::Error::custom(format!("is negative: {}", range()))),
                _ => return Err(too_large()),
            },
            Value::String(s) => match parse_duration(&s) {
                Ok(d) => d,
                Err(DurationError::TooLarge) => return Err(too_large()),
                Err(DurationError::Invalid(why)) => return Err(D::Error::custom(why)),
            },
            other => {
                return Err(D::Error::custom(format!(
                    "expected a duration such as \"30s\", found {}",
                    crate::event::field::type_name(&other)
                )));
            }
        };
        if value > max {
            return Err(too_large());
        }
        if value < min {
            return Err(D::Error::custom(format!("is too small: {}", range())));
        }
        Ok(value)
    }

    /// `timeout`, within [`super::TIMEOUT_BOUNDS`].
    pub fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        duration_within(d, super::TIMEOUT_BOUNDS.0, super::TIMEOUT_BOUNDS.1)
    }

    /// `refresh`, within [`super::REFRESH_BOUNDS`].
    pub fn refresh<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        duration_within(d, super::REFRESH_BOUNDS.0, super::REFRESH_BOUNDS.1)
    }

    /// `spool_max_age`, within [`super::SPOOL_MAX_AGE_BOUNDS`].
    pub fn spool_max_age<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        duration_within(d, super::SPOOL_MAX_AGE_BOUNDS.0, super::SPOOL_MAX_AGE_BOUNDS.1)
    }

    /// `occurrences`, within [`super::OCCURRENCES_BOUNDS`].
    pub fn occurrences<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        uint_within(d, super::OCCURRENCES_BOUNDS.0, super::OCCURRENCES_BOUNDS.1)
    }

    /// Why a duration did not parse.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum DurationError {
        /// It does not fit in a `Duration` (or overflows while parsing).
        TooLarge,
        /// Not a duration at all; the text says what is expected (without quoting long input).
        Invalid(String),
    }

    /// Parse `"10s"`, `"1h 30m"`, or a bare number of seconds (`"90"`), without a bound.
    pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
        let t = s.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t.parse::<u64>().map(Duration::from_secs).map_err(|_| DurationError::TooLarge);
        }
        humantime::parse_duration(t).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => DurationError::TooLarge,
            e => DurationError::Invalid(format!("{} is not a duration such as \"30s\" or \"5m\": {e}", super::shown(s))),
        })
    }

    /// A whole number between `min` and `max` inclusive, or a string holding one. Out of
    /// range, the error gives the bounds without quoting the value.
    pub fn uint_within<'de, D: Deserializer<'de>>(d: D, min: u64, max: u64) -> Result<u64, D::Error> {
        let n = uint(d)?;
        if !(min..=max).contains(&n) {
            return Err(D::Error::custom(format!("is out of range: give a whole number between {min} and {max}")));
        }
        Ok(n)
    }

    /// A list of `T` (an enum such as [`super::Severity`]): a JSON array, or one comma-separated
    /// string (`"warning,critical"`), each item trimmed and deserialized as `T` (so an unknown
    /// word is refused with the words expected). An empty item of an array is such a word
    /// (`[""]` names no severity, and is refused rather than read as an empty list); a
    /// comma-separated string's empty items (`"warning,"`) are dropped, as [`list`] drops them.
    pub fn list_of<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
        let items = match Value::deserialize(d)? {
            Value::Array(items) => strings(items)?,
            other => list(other).map_err(D::Error::custom)?,
        };
        items.iter().map(|item| serde_json::from_value::<T>(Value::String(item.trim().to_string())).map_err(D::Error::custom)).collect()
    }

    /// The items of a JSON array, each a string as it is (else an error naming the type found).
    fn strings<E: Error>(items: Vec<Value>) -> Result<Vec<String>, E> {
        items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(E::custom(format!("list items must be strings, found {}", crate::event::field::type_name(&other)))),
            })
            .collect()
    }

    /// An optional `T` (an enum): absent, `null` or an empty string is `None`; anything else
    /// must deserialize as `T` (an unknown word is refused with the words expected).
    pub fn optional_of<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => serde_json::from_value(Value::String(s.trim().to_string())).map(Some).map_err(D::Error::custom),
            other => serde_json::from_value(other).map(Some).map_err(D::Error::custom),
        }
    }

    /// [`list`], or `None` when the setting is `null`.
    pub fn optional_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            other => list(other).map(Some).map_err(D::Error::custom),
        }
    }

    /// A list of strings: a JSON array, or one comma-separated string (`"warning,critical"`).
    /// One rule for both forms: every entry is trimmed and empty entries are dropped
    /// (`[" pager_team", ""]` is `["pager_team"]`); case is kept.
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let entries = match Value::deserialize(d)? {
            Value::String(s) => s.split(',').map(String::from).collect::<Vec<_>>(),
            Value::Array(items) => strings(items)?,
            other => return Err(D::Error::custom(format!("expected a list of strings, found {}", crate::event::field::type_name(&other)))),
        };
        Ok(entries.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).map(String::from).collect())
    }

    /// A non-negative integer, or a string holding one.
    pub fn uint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let not = || D::Error::custom("is not a whole number from 0 to 18446744073709551615");
        match Value::deserialize(d)? {
            Value::Number(n) => n.as_u64().ok_or_else(not),
            Value::String(s) => s.trim().parse().map_err(|_| not()),
            other => Err(D::Error::custom(format!("expected a whole number, found {}", crate::event::field::type_name(&other)))),
        }
    }

    /// A boolean, or the strings `"true"`/`"false"`.
    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(b),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
            other => Err(D::Error::custom(format!("expected true or false, found {}", crate::event::field::type_name(&other)))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_group_that_can_read_a_secret_is_named() {
        assert_eq!(group_readers(Some("sensu"), 998, 0o640).as_deref(), Some("group sensu (gid 998, mode 0640)"));
        assert_eq!(group_readers(None, 4242, 0o640).as_deref(), Some("group 4242 (mode 0640)"));
        assert_eq!(group_readers(Some(crate::files::SHARED_GROUP), 997, 0o640), None);
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn durations_are_shown_as_they_are_written() {
        let days = |n: u64| Duration::from_secs(n * 24 * 60 * 60);
        for (d, shown) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(100), "100ms"),
            (Duration::from_secs(125), "2m 5s"),
            (days(1), "1day"),
            (days(365), "365days"),
            (MAX_DURATION, "3650days"),
            (days(1) + Duration::from_secs(1), "1day 1s"),
            // Never humantime's 30.44-day months (`1month 9days 13h 30m 36s`).
            (days(40) + Duration::from_secs(3600), "40days 1h"),
            (days(400) + Duration::from_millis(1500), "400days 1s 500ms"),
        ] {
            assert_eq!(show_duration(d), shown);
            assert_eq!(humantime::parse_duration(shown).unwrap(), d, "{shown} parses back");
        }
    }

    #[test]
    fn lists_of_names_are_trimmed_one_way() {
        // A stray space or an empty entry, in an array or a comma-separated string.
        for given in [json!([" occurrences ", "", "pager_team"]), json!(" occurrences , ,pager_team")] {
            let c: Common = typed("x", &obj(json!({"check_settings": given.clone(), "entity_settings": given}))).unwrap();
            assert_eq!(c.check_settings.as_deref(), Some(&["occurrences".to_string(), "pager_team".to_string()][..]));
            assert_eq!(c.entity_settings, ["occurrences", "pager_team"]);
        }
        let c: Common = typed("x", &obj(json!({"check_settings": []}))).unwrap();
        assert_eq!(c.check_settings, Some(vec![]), "an empty list: none");
        let c: Common = typed("x", &obj(json!({"check_settings": null}))).unwrap();
        assert_eq!(c.check_settings, None, "null: all");
        // A list of words is not a list of names: an empty word in an array is refused, as it
        // always was, rather than read as no severity at all.
        let err = typed::<Common>("x", &obj(json!({"severities": [""]}))).unwrap_err();
        assert!(err.to_string().contains("settings `x.severities`"), "{err}");
        let c: Common = typed("x", &obj(json!({"severities": [" critical "]}))).unwrap();
        assert_eq!(c.severities, [Severity::Critical]);
        let c: Common = typed("x", &obj(json!({"severities": "critical,"}))).unwrap();
        assert_eq!(c.severities, [Severity::Critical]);
    }

    #[test]
    fn directory_files_merge_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("20-b.json"), r#"{"pagerduty":{"routing_key":"B","tags":["y"]}}"#).unwrap();
        std::fs::write(dir.path().join("10-a.json"), r#"{"pagerduty":{"routing_key":"A","timeout":5,"tags":["x","y"]}}"#).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not json").unwrap();
        let files = Files::load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(files.read.len(), 2);
        assert_eq!(Value::Object(files.section("pagerduty")), json!({"routing_key": "B", "timeout": 5, "tags": ["x", "y"]}));
    }

    #[test]
    fn the_origin_of_a_setting_is_the_last_file_setting_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("10-a.json"), r#"{"twilio":{"refersh":1,"ops":{"x":1}}}"#).unwrap();
        std::fs::write(dir.path().join("20-b.json"), r#"{"twilio":{"refersh":2},"pagerduty":{"ops":{"x":1}}}"#).unwrap();
        let files = Files::load(&[dir.path().to_path_buf()]).unwrap();
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(files.origin("twilio", &path(&["refersh"])), Some(dir.path().join("20-b.json").as_path()));
        assert_eq!(files.origin("twilio", &path(&["ops", "x"])), Some(dir.path().join("10-a.json").as_path()));
        assert_eq!(files.origin("twilio", &path(&["timeout"])), None);
        // A list's item is found by its value: the merged list's second item is 30-c.json's first.
        std::fs::write(dir.path().join("30-c.json"), r#"{"twilio":{"recipients":[{"phone":"+2","phnoe":"x"}]}}"#).unwrap();
        std::fs::write(dir.path().join("25-d.json"), r#"{"twilio":{"recipients":["+1"]}}"#).unwrap();
        let files = Files::load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(files.origin("twilio", &path(&["recipients", "[1]", "phnoe"])), Some(dir.path().join("30-c.json").as_path()));
        assert_eq!(files.origin("twilio", &path(&["recipients", "[0]", "phnoe"])), None);
        assert_eq!(files.origin("twilio", &path(&["recipients", "[2]"])), None);
    }

    #[test]
    fn later_paths_win_and_missing_paths_fail() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(&a, r#"{"pagerduty":{"routing_key":"A"}}"#).unwrap();
        std::fs::write(&b, r#"{"pagerduty":{"routing_key":"B"}}"#).unwrap();
        let files = Files::load(&[b.clone(), a.clone()]).unwrap();
        assert_eq!(files.section("pagerduty")["routing_key"], "A");
        let err = Files::load(&[dir.path().join("nope.json")]).unwrap_err();
        assert_eq!(err.code, Code::Config);
        assert!(err.to_string().contains("nope.json does not exist"));
    }

    #[test]
    fn invalid_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"pagerduty\": ").unwrap();
        let err = Files::load(&[bad]).unwrap_err();
        assert_eq!(err.code, Code::Config);
        assert!(err.to_string().contains("bad.json is not valid JSON"), "{err}");
    }

    #[test]
    fn overlay_order_flags_then_event() {
        let files = obj(json!({"severities": ["warning", "critical"], "timeout": "5s", "nested": {"a": 1, "b": 1}}));
        let flags = obj(json!({"timeout": "7s"}));
        let event = obj(json!({"severities": "critical", "nested": {"b": 2}}));
        let merged = overlay(files, [flags, event]);
        assert_eq!(Value::Object(merged.clone()), json!({"severities": "critical", "timeout": "7s", "nested": {"a": 1, "b": 2}}));
        let c: Common = typed("pagerduty", &merged).unwrap();
        assert_eq!(c.severities, vec![Severity::Critical]);
        assert_eq!(c.timeout, Duration::from_secs(7));
    }

    #[test]
    fn defaults_and_lenient_forms() {
        let c: Common = typed("x", &Map::new()).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.refresh, Duration::from_secs(1800));
        assert_eq!(c.severities, vec![Severity::Warning, Severity::Critical, Severity::Unknown]);
        let c: Common = typed("x", &obj(json!({"refresh": 90, "occurrences": "3", "timeout": "1m 30s"}))).unwrap();
        assert_eq!(c.refresh, Duration::from_secs(90));
        assert_eq!(c.occurrences, 3);
        assert_eq!(c.timeout, Duration::from_secs(90));
    }

    #[test]
    fn secret_values_are_found_at_any_depth_and_in_lists() {
        let section = obj(json!({
            "token": "xoxb-top",
            "severities": "critical",
            "ops": {"routing_key": "team-key", "name": "ops"},
            "deep": {"deeper": {"api_key": "deep-key"}},
            "auth_token": ["listed-1", {"x": "listed-2"}, 7],
            "ops.api_key_secret": "dotted",
            "password": "",
        }));
        let mut found = secret_values(&section);
        found.sort();
        assert_eq!(found, ["deep-key", "dotted", "listed-1", "listed-2", "team-key", "xoxb-top"]);
    }

    #[test]
    fn secrets_are_not_quoted_in_type_errors() {
        #[derive(Debug, Deserialize)]
        struct S {
            #[allow(dead_code)]
            routing_key: String,
        }
        let err = typed::<S>("pagerduty", &obj(json!({"routing_key": 12345678901234567890u64}))).unwrap_err();
        assert_eq!(err.code, Code::Config);
        let msg = err.to_string();
        assert!(msg.contains("settings `pagerduty.routing_key`") && msg.contains("give it as a string"), "{msg}");
        assert!(!msg.contains("12345678901234567890"), "{msg}");
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_in_a_file_others_can_read_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pagerduty.json");
        std::fs::write(&secret, r#"{"pagerduty":{"ops":{"routing_key":"0123456789abcdef0123456789abcdef"}}}"#).unwrap();
        let plain = dir.path().join("other.json");
        std::fs::write(&plain, r#"{"pagerduty":{"timeout":"5s","routing_key":""}}"#).unwrap();
        let set_mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        set_mode(&plain, 0o644);

        set_mode(&secret, 0o644);
        let files = Files::load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(files.warnings().len(), 1, "{:?}", files.warnings());
        let w = &files.warnings()[0];
        assert!(w.contains(&secret.display().to_string()) && w.contains("pagerduty.ops.routing_key") && w.contains("0644"), "{w}");
        assert!(!w.contains("0123456789abcdef"), "the warning never quotes the secret: {w}");
        assert!(!w.contains('\n'));

        set_mode(&secret, 0o600);
        assert!(Files::load(&[dir.path().to_path_buf()]).unwrap().warnings().is_empty());
        // Group-readable by the handler's own group is the usual `root:sensu 0640` layout.
        set_mode(&secret, 0o640);
        assert!(Files::load(std::slice::from_ref(&secret)).unwrap().warnings().is_empty());
    }

    #[test]
    fn secret_files_are_read_in_operator_layers() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("routing_key");
        std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
        let p = key.display().to_string();
        let m = secret_files("pagerduty", obj(json!({"routing_key_file": p, "ops": {"api_key_file": p}, "x_file": "kept"}))).unwrap();
        assert_eq!(m["routing_key"], "0123456789abcdef0123456789abcdef");
        assert_eq!(m["ops"]["api_key"], "0123456789abcdef0123456789abcdef");
        assert_eq!(m.get("routing_key_file"), None);
        assert_eq!(m["x_file"], "kept", "not a secret's file");
        let both = secret_files("pagerduty", obj(json!({"routing_key_file": p, "routing_key": "abc"}))).unwrap_err();
        assert!(both.to_string().contains("both set"), "{both}");
        let missing = secret_files("twilio", obj(json!({"auth_token_file": "/nonexistent/token"}))).unwrap_err();
        assert_eq!(missing.code, Code::Config);
        assert!(missing.to_string().contains("settings `twilio.auth_token_file`: /nonexistent/token cannot be read"), "{missing}");
        std::fs::write(&key, " \n").unwrap();
        let empty = secret_files("pagerduty", obj(json!({"routing_key_file": p}))).unwrap_err();
        assert!(empty.to_string().contains("is empty"), "{empty}");
    }

    #[test]
    fn long_values_are_not_quoted_in_errors() {
        let pasted = "0123456789abcdef0123456789abcdef";
        let err = typed::<Common>("pagerduty", &obj(json!({"severities": {"a": pasted}}))).unwrap_err().to_string();
        assert!(!err.contains(pasted), "{err}");
        let c: Common = typed("pagerduty", &obj(json!({"api_url": pasted}))).unwrap();
        let err = c.validate("pagerduty").unwrap_err().to_string();
        assert!(!err.contains(pasted) && err.contains("a value of 32 characters"), "{err}");
        assert_eq!(
            redact_quoted("invalid type: string \"0123456789abcdef\", expected `u64`"),
            "invalid type: string (a value of 16 characters), expected `u64`"
        );
        assert_eq!(
            redact_quoted("unknown variant `0123456789abcdef`, expected one of `shared-hardware`"),
            "unknown variant (a value of 16 characters), expected one of `shared-hardware`"
        );
    }

    #[test]
    fn api_url_must_be_http_with_a_host() {
        for good in ["https://events.pagerduty.com", "http://127.0.0.1:8080", "https://example.reactio.jp/"] {
            let c: Common = typed("x", &obj(json!({"api_url": good}))).unwrap();
            c.validate("x").unwrap();
        }
        for bad in ["ht!tp://x", "events.pagerduty.com", "ftp://host", "https://", ""] {
            let c: Common = typed("pagerduty", &obj(json!({"api_url": bad}))).unwrap();
            let err = c.validate("pagerduty").unwrap_err();
            assert_eq!(err.code, Code::Config, "{bad}");
            assert!(err.to_string().contains("settings `pagerduty.api_url`"), "{err}");
        }
    }

    #[test]
    fn type_errors_name_the_setting() {
        let err = typed::<Common>("pagerduty", &obj(json!({"timeout": "soon"}))).unwrap_err();
        assert_eq!(err.code, Code::Config);
        assert!(err.to_string().contains("settings `pagerduty.timeout`"), "{err}");
        let err = typed::<Common>("pagerduty", &obj(json!({"severities": ["fatal"]}))).unwrap_err();
        assert!(err.to_string().contains("settings `pagerduty.severities`") && err.to_string().contains("fatal"), "{err}");
        let err = typed::<Common>("pagerduty", &obj(json!({"severities": "warning, critical, sever"}))).unwrap_err();
        assert!(err.to_string().contains("expected one of"), "{err}");
    }
}
