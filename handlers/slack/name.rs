//! War-room channel names: the `channel_template` rendered for an event, then made into a name
//! Slack accepts.
//!
//! Slack validates every name and rewrites nothing (`conversations.create`, spec §5.1): only
//! lowercase letters, digits, `-` and `_`, at most 80 characters, never only punctuation.
//! Event values (host and check names) are anything, so the rendered template is sanitized
//! here and can never produce an `invalid_name_*` error:
//!
//! - letters are lowercased; anything outside `[a-z0-9_-]` becomes `-`; runs of `-` collapse;
//!   `-` and `_` are trimmed from both ends;
//! - non-ASCII text (Japanese, Cyrillic, accented Latin…) is first transliterated to a readable
//!   ASCII form with `deunicode` (`ディスク` → `deisuku`), since whether Slack accepts non-ASCII
//!   letters is not documented (spec §9);
//! - whenever the name is not the rendered text itself (transliterated, or cut to fit 80
//!   characters) a short hash of the rendered text is appended (`-` + 6 hex digits), so that two
//!   incidents whose names differ only in the cut-off tail or in the original script still get
//!   distinct channels; a name with nothing readable left is `inc-` + the hash.

use common::event::Event;
use common::exit::Result;
use common::state::file::fnv1a;
use common::template::Template;

/// Longest channel name Slack accepts, in characters (spec §5.1).
pub const MAX_NAME: usize = 80;

/// The default `channel_template`.
pub const DEFAULT_TEMPLATE: &str = "inc-{date}-{entity}-{check}";

/// A parsed `channel_template`: the common template placeholders plus `{date}` (the day the
/// incident opened, `YYYYMMDD`, UTC).
#[derive(Debug, Clone)]
pub struct ChannelTemplate {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    Date,
    Text(Template),
}

impl ChannelTemplate {
    /// Parse `source`; errors (exit 78) name `setting`, as [`Template::parse`] does.
    pub fn parse(setting: &str, source: &str) -> Result<ChannelTemplate> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(tail) = rest.strip_prefix("{{") {
                text.push_str("{{");
                rest = tail;
            } else if let Some(tail) = rest.strip_prefix("{date}") {
                if !text.is_empty() {
                    pieces.push(Piece::Text(Template::parse(setting, &std::mem::take(&mut text))?));
                }
                pieces.push(Piece::Date);
                rest = tail;
            } else {
                let c = rest.chars().next().unwrap_or_default();
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(Template::parse(setting, &text)?));
        }
        Ok(ChannelTemplate { pieces })
    }

    /// The channel name for `event`, opened on `date` (`YYYYMMDD`): rendered, then
    /// [`sanitize`]d.
    pub fn name(&self, event: &Event, date: &str) -> String {
        let mut raw = String::new();
        for p in &self.pieces {
            match p {
                Piece::Date => raw.push_str(date),
                Piece::Text(t) => raw.push_str(&t.render(event)),
            }
        }
        sanitize(&raw)
    }
}

/// `YYYYMMDD` (UTC) of a Unix time.
pub fn date(unix_secs: u64) -> String {
    common::clock::rfc3339(unix_secs).chars().take(10).filter(|c| *c != '-').collect()
}

/// A valid Slack channel name for `raw` (see the module documentation).
pub fn sanitize(raw: &str) -> String {
    let ascii = if raw.is_ascii() { raw.to_string() } else { deunicode::deunicode(raw) };
    let mut name = String::with_capacity(ascii.len());
    for c in ascii.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' { c } else { '-' };
        if c == '-' && name.ends_with('-') {
            continue;
        }
        name.push(c);
    }
    let trimmed = name.trim_matches(|c| c == '-' || c == '_');
    let readable = trimmed.bytes().any(|b| b.is_ascii_alphanumeric());
    let hash = format!("{:06x}", fnv1a(raw.as_bytes()) & 0xff_ffff);
    if !readable {
        return format!("inc-{hash}");
    }
    if raw.is_ascii() && trimmed.len() <= MAX_NAME {
        // Only case, punctuation or spacing changed: readable as it is, no hash needed.
        return trimmed.to_string();
    }
    let body = cut(trimmed, MAX_NAME - hash.len() - 1);
    format!("{body}-{hash}")
}

/// `name` cut to at most `max` characters (ASCII), not ending in `-` or `_`.
fn cut(name: &str, max: usize) -> &str {
    let end = name.len().min(max);
    name[..end].trim_end_matches(['-', '_'])
}

/// `name` with `-N` appended (for `name_taken`), cut so that the result still fits
/// [`MAX_NAME`].
pub fn with_suffix(name: &str, n: u32) -> String {
    let suffix = format!("-{n}");
    format!("{}{suffix}", cut(name, MAX_NAME - suffix.len()))
}

/// `name` with a random suffix of 8 hex digits (`-3f9a0c1e`), cut to fit [`MAX_NAME`]: the
/// name tried when the numbered ones are all taken. Random, so that nobody can take it first:
/// channel names come from host and check names, which the monitored hosts choose, and
/// several hosts can make one name (`web.01`, `Web-01`, `web-01`). The bits come from the
/// standard library's per-process random hash keys (`RandomState`, seeded by the OS).
pub fn with_random_suffix(name: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(name.as_bytes());
    let suffix = format!("-{:08x}", h.finish() & 0xffff_ffff);
    format!("{}{suffix}", cut(name, MAX_NAME - suffix.len()))
}

/// The suffix number to try after `previous`, when `previous` is `base` (→ 2) or
/// `base` with a suffix `-N` ([`with_suffix`], → N + 1); `None` when it is another name.
pub fn suffix_after(base: &str, previous: &str) -> Option<u32> {
    if previous == base {
        return Some(2);
    }
    let (stem, n) = previous.rsplit_once('-')?;
    let n: u32 = n.parse().ok().filter(|n| *n >= 2)?;
    (with_suffix(base, n) == previous && stem.len() <= base.len()).then_some(n + 1)
}

/// Whether `name` follows Slack's rules (for the tests).
#[cfg(test)]
pub fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.bytes().any(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::event::parse_json;

    fn event(entity: &str, check: &str) -> Event {
        let e = serde_json::json!({"client": {"name": entity}, "check": {"name": check, "status": 2, "output": "x"}});
        parse_json(e.to_string().as_bytes(), None).expect("event")
    }

    #[test]
    fn default_template_gives_the_readable_name() {
        let t = ChannelTemplate::parse("slack.channel_template", DEFAULT_TEMPLATE).expect("template");
        assert_eq!(t.name(&event("web-01", "check_disk"), "20261201"), "inc-20261201-web-01-check_disk");
        assert_eq!(t.name(&event("Web01.Example.COM", "Check HTTP!"), "20261201"), "inc-20261201-web01-example-com-check-http");
        assert_eq!(date(1_796_083_200), "20261201");
    }

    #[test]
    fn japanese_becomes_readable_ascii_with_a_hash() {
        let t = ChannelTemplate::parse("t", DEFAULT_TEMPLATE).expect("template");
        let a = t.name(&event("web-01", "ディスク容量"), "20261201");
        let b = t.name(&event("web-01", "ディスク残量"), "20261201");
        assert!(is_valid(&a) && is_valid(&b), "{a} {b}");
        assert!(a.starts_with("inc-20261201-web-01-deisuku"), "{a}");
        assert_ne!(a, b);
        let only_symbols = sanitize("☃☃☃");
        assert!(is_valid(&only_symbols), "{only_symbols}");
    }

    #[test]
    fn long_names_are_cut_to_80_and_stay_distinct() {
        let long_a = format!("{}a", "x".repeat(199));
        let long_b = format!("{}b", "x".repeat(199));
        let (a, b) = (sanitize(&long_a), sanitize(&long_b));
        assert_eq!(a.len(), MAX_NAME);
        assert!(is_valid(&a) && is_valid(&b));
        assert_ne!(a, b);
        assert_eq!(with_suffix(&a, 2).len(), MAX_NAME);
        assert!(with_suffix(&a, 2).ends_with("-2"));
        assert_eq!(with_suffix("inc-web", 3), "inc-web-3");
        assert_eq!(suffix_after("inc-web", "inc-web"), Some(2));
        assert_eq!(suffix_after("inc-web", "inc-web-4"), Some(5));
        assert_eq!(suffix_after("inc-web", "inc-db-4"), None);
        assert_eq!(suffix_after("inc-web", "inc-web-x"), None);
        assert_eq!(suffix_after(&a, &with_suffix(&a, 3)), Some(4));
    }

    #[test]
    fn nothing_invalid_comes_out() {
        for raw in
            ["", "---", "__", "<!channel>", "a b\tc\nd", "ÄÖÜ straße", "🔥🔥", "x".repeat(300).as_str(), "-_-a-_-", "日本語のチェック名"]
        {
            let n = sanitize(raw);
            assert!(is_valid(&n), "{raw:?} → {n:?}");
        }
        assert_eq!(sanitize("ÄÖÜ straße").split('-').next(), Some("aou"));
    }

    #[test]
    fn a_random_suffix_fits_and_differs() {
        let long = "x".repeat(100);
        for base in ["inc-20261201-web-01-check_disk", long.as_str()] {
            let (a, b) = (with_random_suffix(base), with_random_suffix(base));
            assert!(is_valid(&a) && a.len() <= MAX_NAME, "{a}");
            assert_ne!(a, b, "random, not derived from the name");
        }
    }

    #[test]
    fn literal_braces_and_placeholder_errors() {
        let t = ChannelTemplate::parse("t", "{{date}}-{entity}").expect("template");
        assert_eq!(t.name(&event("h", "c"), "20260101"), "date-h");
        assert!(ChannelTemplate::parse("slack.channel_template", "inc-{day}").is_err());
    }
}
