//! Settings no part of the program reads: an operator's misspelled setting, found and named.
//!
//! Serde ignores a key that no field asks for, so `"twilio": {"check_setting": [...]}` (the
//! real name is `check_settings`) would leave every check-level setting open without a word,
//! and `"refersh": 3600` would keep the default refresh. A handler reads its section through
//! several [`Reader`]s ([`crate::config::Common`], its own settings struct, and for some
//! handlers names or objects read by hand, such as PagerDuty's teams, or the objects of a
//! list, such as Twilio's recipients); a key is unread when every one of them ignores it. The structs are asked themselves: `serde_ignored` reports the
//! paths serde skipped while deserializing, and each struct's field list (for the "did you
//! mean" suggestion) is the one its derive gives serde, so nothing here is a second list of
//! names that could drift from the structs.
//!
//! Only the operator's settings files are checked (flags and the environment can only name
//! settings that exist). Overrides an event carries (check annotations, entity annotations,
//! Nagios custom variables) are never looked at here: they are written on the monitored host,
//! and a host-written name never gets a log line of its own (DESIGN.md "Trust").

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::{Map, Value};

/// A setting's path in a section, outermost key first: `["ops", "routing_key"]`; an item of
/// a list is its index in brackets (`["recipients", "[1]", "phnoe"]`, see [`index`]).
pub type SettingPath = Vec<String>;

/// The path segment of a list's `i`th item (from 0): `[1]`.
pub fn index(i: usize) -> String {
    format!("[{i}]")
}

/// The index a path segment names, when it names a list's item (`[1]` → 1).
pub fn as_index(segment: &str) -> Option<usize> {
    let digits = segment.strip_prefix('[')?.strip_suffix(']')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One way a handler reads its settings section.
#[derive(Debug, Clone, Copy)]
pub enum Reader {
    /// A struct deserialized from the whole section ([`crate::config::typed`]); made with
    /// [`Reader::of`].
    Struct {
        /// The paths the struct ignores in a section (`[["refersh"]]`); `None` when the section
        /// does not deserialize (the error is reported where the struct is really read).
        ignored: fn(&Map<String, Value>) -> Option<Vec<SettingPath>>,
        /// The struct's setting names, as serde knows them (`loop`, not `loops`).
        fields: fn() -> &'static [&'static str],
    },
    /// Names read from the section by hand, each value whole (PagerDuty's `api_key` and
    /// `integration_key`, folded into `routing_key` before the struct is read).
    Names(&'static [&'static str]),
    /// Objects the operator names (PagerDuty's teams, `pagerduty.<team>.routing_key`): an
    /// object-valued key holding at least one of these names is read, and in it only these names.
    Groups(&'static [&'static str]),
    /// The object items of list setting `setting`, each read by a struct (Twilio's
    /// `recipients`, `{"name": …, "phone": …}`); made with [`Reader::items_of`]. Another reader
    /// reads the list whole (as a `Value`), so this one alone says which keys of an item are
    /// read; items that are not objects (a bare number) hold no key.
    Items {
        /// The list setting: `recipients`.
        setting: &'static str,
        /// The paths the item struct ignores in one item (`[["phnoe"]]`); `None` when the item
        /// does not deserialize.
        ignored: fn(&Map<String, Value>) -> Option<Vec<SettingPath>>,
        /// The item struct's key names, as serde knows them.
        fields: fn() -> &'static [&'static str],
    },
}

impl Reader {
    /// The reader of settings struct `T`.
    pub const fn of<T: DeserializeOwned>() -> Reader {
        Reader::Struct { ignored: ignored::<T>, fields: fields::<T> }
    }

    /// The reader of list setting `setting`'s object items, each read as struct `T`.
    pub const fn items_of<T: DeserializeOwned>(setting: &'static str) -> Reader {
        Reader::Items { setting, ignored: ignored::<T>, fields: fields::<T> }
    }

    /// Whether this reader ignores `path` of `section` (a key it never asks for, or one inside
    /// a key it ignores).
    fn ignores(&self, path: &[String], section: &Map<String, Value>, struct_ignored: Option<&[SettingPath]>) -> bool {
        let Some(top) = path.first() else { return false };
        match self {
            Reader::Struct { .. } => struct_ignored.is_some_and(|list| list.iter().any(|q| path.starts_with(q))),
            Reader::Names(names) => !names.contains(&top.as_str()),
            Reader::Groups(names) => match group(section.get(top), names) {
                false => true,
                true => path.get(1).is_some_and(|inner| !names.contains(&inner.as_str())),
            },
            // What is inside the list is judged item by item ([`items`]).
            Reader::Items { setting, .. } => top != setting,
        }
    }
}

/// Whether `value` is an object holding one of `names` (a team).
fn group(value: Option<&Value>, names: &[&str]) -> bool {
    value.and_then(Value::as_object).is_some_and(|o| names.iter().any(|n| o.contains_key(*n)))
}

/// A setting no reader reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    /// Its path in the section: `["check_setting"]`, `["ops", "routng_key"]`.
    pub path: SettingPath,
    /// The setting it is closest to, when one is close enough to be a misspelling of it
    /// (`check_settings`).
    pub suggestion: Option<&'static str>,
}

/// `path` as settings are named in messages, segments joined with `.` and a list's item as
/// its index in brackets (`recipients[1].phnoe`, as errors name it); a key that holds a `.`
/// itself is quoted (`"ops.routing_key"`, one flat key), so that it is not read as a team's
/// `ops.routing_key`.
pub fn shown(path: &[String]) -> String {
    let mut out = String::new();
    for (n, s) in path.iter().enumerate() {
        match as_index(s) {
            Some(_) => out.push_str(s),
            None if s.contains('.') => out.push_str(&format!("{}{s:?}", if n == 0 { "" } else { "." })),
            None => out.push_str(&format!("{}{s}", if n == 0 { "" } else { "." })),
        }
    }
    out
}

/// The settings of `section` that none of `readers` reads, in the section's key order; a key
/// inside an unread key is not named again. The keys of a list's object items that its
/// [`Reader::Items`] does not read follow the other unread settings, in item order.
pub fn unread(section: &Map<String, Value>, readers: &[Reader]) -> Vec<Unread> {
    let ignored: Vec<Option<Vec<SettingPath>>> = readers
        .iter()
        .map(|r| match r {
            Reader::Struct { ignored, .. } => ignored(section),
            _ => None,
        })
        .collect();
    // Every key, every key of an object one level down (a team's), and whatever deeper path a
    // struct reported.
    let mut candidates: Vec<SettingPath> = Vec::new();
    for (k, v) in section {
        candidates.push(vec![k.clone()]);
        if let Value::Object(inner) = v {
            candidates.extend(inner.keys().map(|i| vec![k.clone(), i.clone()]));
        }
    }
    for path in ignored.iter().flatten().flatten() {
        if !candidates.contains(path) {
            candidates.push(path.clone());
        }
    }
    let is_unread = |p: &[String]| readers.iter().zip(&ignored).all(|(r, i)| r.ignores(p, section, i.as_deref()));
    let mut out: Vec<Unread> = Vec::new();
    for path in candidates {
        if !is_unread(&path) || (1..path.len()).any(|n| is_unread(&path[..n])) {
            continue;
        }
        let names: Vec<&'static str> = match path.len() {
            1 => readers
                .iter()
                .flat_map(|r| match r {
                    Reader::Struct { fields, .. } => fields().to_vec(),
                    Reader::Names(names) => names.to_vec(),
                    Reader::Items { setting, .. } => vec![*setting],
                    Reader::Groups(_) => Vec::new(),
                })
                .collect(),
            2 => readers
                .iter()
                .filter_map(|r| match r {
                    Reader::Groups(n) if group(section.get(&path[0]), n) => Some(n.to_vec()),
                    _ => None,
                })
                .flatten()
                .collect(),
            _ => Vec::new(),
        };
        let suggestion = path.last().and_then(|name| nearest(name, &names));
        out.push(Unread { path, suggestion });
    }
    out.extend(readers.iter().flat_map(|r| items(section, r)));
    out
}

/// The keys of `section`'s list items that `reader` (a [`Reader::Items`]) does not read, by
/// item: `recipients[1].phnoe`. Empty for other readers, and when the setting is no list.
fn items(section: &Map<String, Value>, reader: &Reader) -> Vec<Unread> {
    let Reader::Items { setting, ignored, fields } = reader else { return Vec::new() };
    let Some(Value::Array(list)) = section.get(*setting) else { return Vec::new() };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let Value::Object(item) = item else { continue };
        let mut seen: Vec<SettingPath> = Vec::new();
        for inner in ignored(item).unwrap_or_default() {
            // Named once: a key, not each key inside it.
            if seen.iter().any(|s| inner.starts_with(s)) {
                continue;
            }
            seen.push(inner.clone());
            let suggestion = inner.last().and_then(|name| nearest(name, fields()));
            let path = [setting.to_string(), index(i)].into_iter().chain(inner).collect();
            out.push(Unread { path, suggestion });
        }
    }
    out
}

/// The name of `names` closest to `name` when it is close enough to be a misspelling of it:
/// at most one edit (insertion, deletion, substitution or swap of neighbours) per three
/// characters, at most three, ignoring case (on both sides: `DOWNTIMESTRT` is near
/// `DOWNTIMESTART`).
///
/// A name whose length differs from a candidate's by more than the edits allowed is not
/// compared with it (the distance is at least that difference): a name of any length costs
/// one pass over it, never a distance computed over its whole length.
pub fn nearest(name: &str, names: &[&'static str]) -> Option<&'static str> {
    let len = name.chars().count();
    let allowed = (len / 3).clamp(1, 3);
    let near = |n: &&&str| n.chars().count().abs_diff(len) <= allowed;
    if !names.iter().any(|n| near(&n)) {
        return None;
    }
    let lower = name.to_lowercase();
    names
        .iter()
        .filter(|n| **n != name && near(n))
        .map(|n| (strsim::damerau_levenshtein(&lower, &n.to_lowercase()), *n))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// What to do instead of a setting of the Ruby handlers that pagerpipe replaces
/// (sensu-plugins-pagerduty `bin/handler-pagerduty.rb`: its `proxy_*`, `description_prefix`,
/// `dynamic_description_prefix_key` and `dedup_rules`), for the warning about it: a settings
/// file carried over from that handler keeps working, and these are what it would otherwise
/// lose without a word of why. `handler` is the section (`pagerduty`), `setting` a top-level
/// key of it. README "Migrating from the Ruby handlers" says the same.
pub fn ruby_replacement(handler: &str, setting: &str) -> Option<&'static str> {
    if handler != "pagerduty" {
        return None;
    }
    Some(match setting {
        "proxy_host" | "proxy_port" | "proxy_username" | "proxy_password" => {
            "the Ruby handler's proxy: set `https_proxy=http://[user:password@]host:port` in the handler's environment instead"
        }
        "description_prefix" | "dynamic_description_prefix_key" => {
            "the Ruby handler's summary prefix: write it into `summary_template` instead, e.g. \"[prod] {entity}/{check}: {output}\""
        }
        "dedup_rules" => {
            "the Ruby handler's key rewriting is not applied: write the key as `dedup_key_template`, or resolve the alerts it opened by hand"
        }
        _ => return None,
    })
}

/// The paths struct `T` ignores when deserialized from `section`; `None` when it does not
/// deserialize.
fn ignored<T: DeserializeOwned>(section: &Map<String, Value>) -> Option<Vec<SettingPath>> {
    let mut out = Vec::new();
    serde_ignored::deserialize::<_, _, T>(section, |path| out.push(segments(&path))).ok()?;
    Some(out)
}

/// `path` as its map keys and list indexes, outermost first.
fn segments(path: &serde_ignored::Path<'_>) -> Vec<String> {
    use serde_ignored::Path;
    let mut out = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, .. } | Path::Map { parent, .. } => segments(parent),
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => return segments(parent),
    };
    match path {
        Path::Seq { index: i, .. } => out.push(index(*i)),
        Path::Map { key, .. } => out.push(key.clone()),
        _ => {}
    }
    out
}

/// The field names struct `T` gives serde (`deserialize_struct`'s `fields`), asked of it with
/// a deserializer that only listens; empty for a type that is not a struct.
fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Listen<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Listen<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only the field names were asked for"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Listen(&mut names));
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap failing is the test failing
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    #[allow(dead_code)]
    struct Own {
        routing_key: Option<String>,
        #[serde(rename = "loop")]
        loops: u64,
        severity_map: std::collections::BTreeMap<String, String>,
        recipients: Value,
    }

    const KEYS: [&str; 2] = ["routing_key", "api_key"];
    const READERS: [Reader; 4] = [Reader::of::<crate::config::Common>(), Reader::of::<Own>(), Reader::Names(&KEYS), Reader::Groups(&KEYS)];

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn named(section: Value) -> Vec<(String, Option<&'static str>)> {
        unread(&obj(section), &READERS).into_iter().map(|u| (shown(&u.path), u.suggestion)).collect()
    }

    #[test]
    fn every_reader_must_ignore_a_key_for_it_to_be_unread() {
        let none = named(json!({
            "refresh": "1h", "check_settings": ["severities"], "loop": 2, "api_key": "k",
            "severity_map": {"critical": "error", "anything": "x"}, "recipients": {"a": {"b": 1}},
            "ops": {"routing_key": "t", "api_key": "u"},
        }));
        assert_eq!(none, vec![]);
        assert_eq!(
            named(json!({"refersh": 3600, "check_setting": ["severities"], "Timeout": "5s", "zzz": 1})),
            vec![
                ("Timeout".to_string(), Some("timeout")),
                ("check_setting".to_string(), Some("check_settings")),
                ("refersh".to_string(), Some("refresh")),
                ("zzz".to_string(), None),
            ]
        );
    }

    #[test]
    fn a_team_is_an_object_with_a_key_and_only_its_keys_are_read() {
        assert_eq!(
            named(json!({"ops": {"routing_key": "t", "routng_key": "u"}})),
            vec![("ops.routng_key".to_string(), Some("routing_key"))]
        );
        // No key in it: not a team; named once, not again for each key inside.
        assert_eq!(named(json!({"severty_map": {"critical": "error"}})), vec![("severty_map".to_string(), Some("severity_map"))]);
    }

    #[test]
    fn a_lists_object_items_are_read_by_their_own_reader() {
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        #[allow(dead_code)]
        struct Person {
            name: Value,
            phone: Value,
        }
        let readers = [Reader::of::<Own>(), Reader::items_of::<Person>("recipients")];
        let section = obj(json!({
            "recipients": ["+1", {"name": "a", "phone": "+2"}, {"Name": {"x": 1}, "phnoe": "+3", "sms": true}],
            "recipent": 1,
        }));
        let got: Vec<_> = unread(&section, &readers).into_iter().map(|u| (shown(&u.path), u.suggestion)).collect();
        assert_eq!(
            got,
            vec![
                ("recipent".to_string(), Some("recipients")),
                ("recipients[2].Name".to_string(), Some("name")),
                ("recipients[2].phnoe".to_string(), Some("phone")),
                ("recipients[2].sms".to_string(), None),
            ]
        );
        // Not a list (a comma-separated string, from the environment): nothing inside to judge.
        assert_eq!(unread(&obj(json!({"recipients": "+1, +2"})), &readers), vec![]);
    }

    #[test]
    fn paths_are_shown_as_errors_name_them() {
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(shown(&path(&["recipients", &index(1), "phnoe"])), "recipients[1].phnoe");
        assert_eq!(shown(&path(&["ops", "routng_key"])), "ops.routng_key");
        assert_eq!(shown(&path(&["ops.routing_key"])), "\"ops.routing_key\"");
        assert_eq!(shown(&path(&["x", "a.b"])), "x.\"a.b\"");
        assert_eq!((as_index("[12]"), as_index("[]"), as_index("[1a]"), as_index("1")), (Some(12), None, None, None));
    }

    #[test]
    fn field_names_come_from_the_struct() {
        assert_eq!(fields::<Own>(), ["routing_key", "loop", "severity_map", "recipients"]);
        assert!(fields::<crate::config::Common>().contains(&"check_settings"));
        assert_eq!(fields::<String>(), [] as [&str; 0]);
    }

    #[test]
    fn suggestions_are_near_misses_only() {
        let names = ["check_settings", "refresh", "timeout", "auth_token", "api_url"];
        assert_eq!(nearest("auth_tokne", &names), Some("auth_token"));
        assert_eq!(nearest("REFRESH", &names), Some("refresh"));
        assert_eq!(nearest("colour", &names), None);
        assert_eq!(nearest("api", &names), None);
        // Lengths further apart than the edits allowed are never compared: a host could make a
        // name of any length (the red team's 900 000 characters took 12 s when they were).
        assert_eq!(nearest("refreshes", &names), Some("refresh"));
        assert_eq!(nearest("refreshesss", &names), None);
        assert_eq!(nearest(&"q".repeat(900_000), &names), None);
        assert_eq!(nearest("DowntimeStrt", &["DOWNTIMESTART", "CUSTOM"]), Some("DOWNTIMESTART"));
    }
}
