//! Summary, message and dedup-key templates.
//!
//! Operators write templates such as `{entity}/{check}: {output}` in settings. They need
//! placeholders and nothing more (no loops, no conditions), so this is a small placeholder
//! substitution, parsed once when settings load so that a typo is a configuration error (exit
//! 78) instead of a page with a literal `{entitty}` in it. `{{` and `}}` give literal braces.
//!
//! Placeholders: `{entity}`, `{check}`, `{output}` (trailing whitespace removed), `{status}`
//! (`ok`/`warning`/`critical`/`unknown`), `{status_code}`, `{occurrences}`, `{namespace}`,
//! `{command}`, `{label.NAME}` (empty when absent), `{incident_key}` (the monitoring system's own
//! incident key, [`Event::source_key`]: Zabbix `{TRIGGER.ID}-{HOST.NAME}`, else
//! `{entity}/{check}`; the default dedup key).

use std::borrow::Cow;

use crate::event::Event;
use crate::exit::{Code, Result};

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(Var),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
    Entity,
    Check,
    Output,
    Status,
    StatusCode,
    Occurrences,
    Namespace,
    Command,
    IncidentKey,
    Label(String),
}

/// The placeholder names accepted, for error messages.
pub const PLACEHOLDERS: &str =
    "{entity} {check} {output} {status} {status_code} {occurrences} {namespace} {command} {incident_key} {label.NAME}";

impl Template {
    /// Parse `source`. `setting` names the setting in the error (exit 78), e.g. `pagerduty.summary_template`.
    pub fn parse(setting: &str, source: &str) -> Result<Template> {
        let bad = |why: String| {
            Code::Config.msg(format!("settings `{setting}`: {why} in {}; placeholders are {PLACEHOLDERS}", crate::config::shown(source)))
        };
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(bad("unclosed `{`".into())),
                        }
                    }
                    let var = match name.trim() {
                        "entity" => Var::Entity,
                        "check" => Var::Check,
                        "output" => Var::Output,
                        "status" => Var::Status,
                        "status_code" => Var::StatusCode,
                        "occurrences" => Var::Occurrences,
                        "namespace" => Var::Namespace,
                        "command" => Var::Command,
                        "incident_key" => Var::IncidentKey,
                        n => match n.strip_prefix("label.") {
                            Some(l) if !l.is_empty() => Var::Label(l.to_string()),
                            _ if !crate::config::shown_whole(n) => {
                                return Err(bad(format!("unknown placeholder of {} characters", n.chars().count())));
                            }
                            _ => return Err(bad(format!("unknown placeholder {{{n}}}"))),
                        },
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(var));
                }
                '}' => return Err(bad("lone `}` (write `}}`)".into())),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(Template { source: source.to_string(), parts })
    }

    /// The template text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Render for `event`, at most [`MAX_RENDERED_BYTES`] (cut on a character boundary).
    pub fn render(&self, event: &Event) -> String {
        self.render_counting(event, &|v| Cow::Borrowed(v)).0
    }

    /// Render for `event` with each placeholder's value passed through `escape` (the
    /// template's own text as written), at most [`MAX_RENDERED_BYTES`]. For a link template:
    /// the values percent-encoded as URL components, so that a `?`, `#`, `&` or `/` in a
    /// check name stays in its place in the link and a host name cannot move the link to
    /// another site (`https://{entity}.grafana.example` with an entity `evil.example/x?`).
    pub fn render_escaped(&self, event: &Event, escape: &dyn Fn(&str) -> Cow<'_, str>) -> String {
        self.render_counting(event, escape).0
    }

    /// Render for `event`, `None` when the rendering says nothing of the event: it
    /// [`is_blank`], or the template has placeholders and every one of them rendered blank
    /// (`alert-{label.alert_id}` on an event without the label, `<p>{output}</p>` for a check
    /// that printed nothing). Such a text as a dedup key would make every such event one
    /// incident; as a summary, a call or a broadcast it tells nobody anything.
    pub fn render_telling(&self, event: &Event) -> Option<String> {
        let (text, placeholders, filled) = self.render_counting(event, &|v| Cow::Borrowed(v));
        (!is_blank(&text) && (placeholders == 0 || filled > 0)).then_some(text)
    }

    /// [`Template::render_telling`], else `fallback` rendered (a provider's default, which
    /// always names the event).
    pub fn render_or(&self, event: &Event, fallback: &Template) -> String {
        self.render_telling(event).unwrap_or_else(|| fallback.render(event))
    }

    /// A template of the project's own (a provider's default), parsed. A default that did not
    /// parse (a test checks each) would render as its own text, never fail a page.
    pub fn constant(source: &'static str) -> Template {
        Template::parse("default", source)
            .unwrap_or_else(|_| Template { source: source.to_string(), parts: vec![Part::Literal(source.to_string())] })
    }

    /// The rendering (each placeholder's value through `escape`), how many placeholders the
    /// template has, and how many of them rendered something visible.
    fn render_counting(&self, event: &Event, escape: &dyn Fn(&str) -> Cow<'_, str>) -> (String, usize, usize) {
        let (mut placeholders, mut filled) = (0, 0);
        let mut out = String::new();
        for part in &self.parts {
            let piece: Cow<'_, str> = match part {
                Part::Literal(s) => Cow::Borrowed(s),
                Part::Var(v) => match v {
                    Var::Entity => Cow::Borrowed(&event.entity),
                    Var::Check => Cow::Borrowed(&event.check),
                    Var::Output => Cow::Borrowed(event.output.trim_end()),
                    Var::Status => Cow::Borrowed(event.status_name()),
                    Var::StatusCode => Cow::Owned(event.status.to_string()),
                    Var::Occurrences => Cow::Owned(event.occurrences.to_string()),
                    Var::Namespace => Cow::Borrowed(event.namespace.as_deref().unwrap_or("")),
                    Var::Command => Cow::Borrowed(event.command.as_deref().unwrap_or("")),
                    Var::IncidentKey => Cow::Owned(event.source_key()),
                    Var::Label(l) => Cow::Borrowed(event.labels.get(l).map(String::as_str).unwrap_or("")),
                },
            };
            let piece = match part {
                Part::Literal(_) => piece,
                Part::Var(var) => {
                    // Free text the monitored host wrote, not a name: a name is left as it is,
                    // so that `db-0\u{0}1` never renders as another host's `db-01`.
                    let cleaned = match var {
                        Var::Output | Var::Label(_) => match printable(&piece) {
                            Cow::Owned(s) => Some(s),
                            Cow::Borrowed(_) => None,
                        },
                        _ => None,
                    };
                    let piece = cleaned.map_or(piece, Cow::Owned);
                    placeholders += 1;
                    filled += usize::from(!is_blank(&piece));
                    let escaped = match escape(&piece) {
                        Cow::Owned(s) => Some(s),
                        Cow::Borrowed(_) => None,
                    };
                    escaped.map_or(piece, Cow::Owned)
                }
            };
            let room = MAX_RENDERED_BYTES.saturating_sub(out.len());
            if piece.len() > room {
                let mut cut = room;
                while !piece.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push_str(&piece[..cut]);
                break;
            }
            out.push_str(&piece);
        }
        (out, placeholders, filled)
    }
}

/// `text` without control characters other than tab, line feed and carriage return (C0, DEL,
/// C1: NUL, the ESC of coloured check output, a bell) and without the noncharacters U+FFFE and
/// U+FFFF. The check output and labels pass through it as a template renders
/// ([`Template::render`]; names do not: removing a character could make one host's name
/// another's), so that what the monitored host wrote reaches a page as text: an SMS `Body`
/// with a NUL may be cut short on its way to the phone, a Reactio incident with one may be
/// refused by its database and kept spooled until it expires, and none of them shows anything
/// a person could read.
pub fn printable(text: &str) -> Cow<'_, str> {
    let kept = |c: char| !(c.is_control() && !matches!(c, '\t' | '\n' | '\r') || matches!(c, '\u{fffe}' | '\u{ffff}'));
    if text.chars().all(kept) { Cow::Borrowed(text) } else { Cow::Owned(text.chars().filter(|&c| kept(c)).collect()) }
}

/// Whether `s` shows nothing: empty, or only whitespace, control characters and characters
/// that are invisible by design (soft hyphen, zero-width space and joiners, word joiner,
/// bidirectional marks and controls, variation selectors, the byte-order mark, Hangul fillers).
/// A value "set" to such text by a monitored host, or a template rendering it, must be taken
/// for blank: `str::trim` keeps them.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c,
                '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
                | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
                | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}')
    })
}

/// Longest rendering of a template, in bytes: 64 KiB. Far above what any use keeps
/// (PagerDuty's summary is 1 024 characters, a TwiML document 4 000, a Slack message 4 000),
/// and a bound on what a template can cost: a summary template is presentation, which a
/// monitored host's entity annotations may set, and one of 60 000 `{output}` placeholders
/// over a 16 KB check output rendered 960 MB (7 s and 1.9 GB of memory for one event).
pub const MAX_RENDERED_BYTES: usize = 64 * 1024;

/// The incident key for `event`: `template` when the operator set one, else the default
/// template `{incident_key}` ([`Event::source_key`]: the key the source provides, Zabbix
/// `{TRIGGER.ID}-{HOST.NAME}`, else `{entity}/{check}`, the Ruby handlers' key). Spelling the
/// default explicitly changes nothing. A template that says nothing of the event
/// ([`Template::render_telling`]: `{label.alert_id}` or `alert-{label.alert_id}` on an event
/// without the label) gives the default key too: such a key would make every such event one
/// incident, and PagerDuty's `dedup_key`, required for acknowledge and
/// resolve, would identify no alert (Events API v2).
pub fn incident_key(template: Option<&Template>, event: &Event) -> String {
    template.and_then(|t| t.render_telling(event)).unwrap_or_else(|| event.source_key())
}

/// The warning for a template `setting` (`pagerduty.summary_template`) that says nothing of an
/// event ([`Template::render_telling`]), whose `default` (`the default summary`) is used.
pub fn says_nothing(setting: &str, default: &str) -> String {
    format!("`{setting}` says nothing of this event (every placeholder in it is blank for it); {default} is used")
}

/// The default dedup key template, for every input format: `{incident_key}`.
pub const DEFAULT_KEY_TEMPLATE: &str = "{incident_key}";

/// Cut `s` to at most `max` characters (Unicode scalar values; for a limit whose counting a
/// service does not state, [`truncate_utf16`] is the safe reading), on a character boundary,
/// ending with `…` when cut. Multi-byte text (Japanese) is never split
/// inside a character.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The length of `s` in UTF-16 code units: a character of the Basic Multilingual Plane is one,
/// one beyond it (an emoji, a rare CJK ideograph) two. Twilio's limits (`Body` 1 600, `Twiml`
/// 4 000 "characters") are counted so here: its docs do not say how, its error 21617 says
/// emoji and other non-GSM-7 characters reach the limit "sooner than expected", and UTF-16 is
/// never fewer than Unicode scalar values, so text within it is within either reading.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Cut `s` to at most `max` UTF-16 code units ([`utf16_len`]), on a character boundary, ending
/// with `…` (one unit) when cut.
pub fn truncate_utf16(s: &str, max: usize) -> String {
    if utf16_len(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    format!("{}…", prefix_utf16(s, max - 1))
}

/// The longest prefix of `s` of at most `max` UTF-16 code units ([`utf16_len`]), on a
/// character boundary.
pub fn prefix_utf16(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

/// Cut `s` in place to `max` characters (Unicode scalar values) when it is longer, ending it
/// with ` … [cut: N characters]` (N its length before); whether it was cut. For text kept or
/// logged whole up to a limit (a check output of megabytes, a key of hundreds of kilobytes).
pub fn cut_marked(s: &mut String, max: usize) -> bool {
    let Some((at, _)) = s.char_indices().nth(max) else { return false };
    let total = s.chars().count();
    s.truncate(at);
    s.push_str(&format!(" … [cut: {total} characters]"));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_json;

    fn event() -> Event {
        parse_json(
            br#"{"entity":{"metadata":{"name":"web-01","namespace":"prod","labels":{"team":"sre"}}},
                 "check":{"metadata":{"name":"check_disk"},"status":2,"output":"DISK 95%\n","occurrences":4}}"#,
            None,
        )
        .unwrap()
    }

    #[test]
    fn values_render_without_control_characters_but_keep_line_breaks_and_tabs() {
        let mut e = event();
        e.output = "DISK\u{0} \u{1b}[31mCRITICAL\u{1b}[0m\u{7}\r\n/\t95%\u{85}\u{fffe}".into();
        e.labels.insert("team".into(), "s\u{0}re".into());
        e.entity = "web-0\u{0}1".into();
        let t = Template::parse("t", "{output} ({label.team}) {entity}\u{1}").unwrap();
        // The template's own text is the operator's, kept as written; a name is kept too.
        assert_eq!(t.render(&e), "DISK [31mCRITICAL[0m\r\n/\t95% (sre) web-0\u{0}1\u{1}");
        assert_eq!(printable("plain text, é 🔥"), Cow::Borrowed("plain text, é 🔥"));
        // Only controls: a blank rendering, not a telling one.
        e.output = "\u{0}\u{0}".into();
        assert_eq!(Template::parse("t", "{output}").unwrap().render_telling(&e), None);
    }

    #[test]
    fn utf16_counts_a_character_beyond_the_basic_plane_as_two() {
        assert_eq!(utf16_len("disk é 満杯"), 9);
        assert_eq!(utf16_len("🔥🔥"), 4);
        assert_eq!(truncate_utf16("abc", 3), "abc");
        // An emoji is never split: two units or none.
        assert_eq!(truncate_utf16("a🔥🔥", 4), "a🔥…");
        assert_eq!(truncate_utf16("a🔥🔥", 3), "a…");
        assert_eq!(truncate_utf16("a🔥🔥", 5), "a🔥🔥");
        assert_eq!(truncate_utf16("🔥🔥🔥", 5), "🔥🔥…");
        assert_eq!(truncate_utf16("🔥", 0), "");
        let cut = truncate_utf16(&"🔥".repeat(1000), 1600);
        assert_eq!((utf16_len(&cut), cut.chars().count()), (1599, 800));
    }

    #[test]
    fn escaping_applies_to_the_placeholders_values_only() {
        let t = Template::parse("t", "https://x.example/{entity}?q={label.team}&s={status}{{}}").unwrap();
        fn upper(v: &str) -> Cow<'_, str> {
            if v == "sre" { Cow::Borrowed(v) } else { Cow::Owned(v.to_uppercase()) }
        }
        assert_eq!(t.render_escaped(&event(), &upper), "https://x.example/WEB-01?q=sre&s=CRITICAL{}");
        assert_eq!(t.render(&event()), "https://x.example/web-01?q=sre&s=critical{}");
    }

    #[test]
    fn a_rendering_stops_at_its_bound() {
        let mut e = event();
        e.output = "é".repeat(8_000);
        let t = Template::parse("t", &"{output}".repeat(5_000)).unwrap();
        let out = t.render(&e);
        assert!(out.len() <= MAX_RENDERED_BYTES && out.len() > MAX_RENDERED_BYTES - 4, "{}", out.len());
        assert!(out.chars().all(|c| c == 'é'), "cut on a character boundary");
        let t = Template::parse("t", &format!("{}{{status_code}}", "a".repeat(MAX_RENDERED_BYTES))).unwrap();
        assert_eq!(t.render(&e).len(), MAX_RENDERED_BYTES);
    }

    #[test]
    fn renders_placeholders() {
        let t =
            Template::parse("t", "{entity}/{check}: {output} [{status}/{status_code}] x{occurrences} {namespace} {label.team}{label.none}")
                .unwrap();
        assert_eq!(t.render(&event()), "web-01/check_disk: DISK 95% [critical/2] x4 prod sre");
    }

    #[test]
    fn a_rendering_that_says_nothing_of_the_event_is_told_apart() {
        let e = event();
        let t = |s: &str| Template::parse("t", s).unwrap();
        assert_eq!(t("alert-{label.team}").render_telling(&e).as_deref(), Some("alert-sre"));
        assert_eq!(t("Disk alert").render_telling(&e).as_deref(), Some("Disk alert"), "a literal names what the operator chose");
        for says_nothing in ["alert-{label.alert_id}", "<p>{label.x}</p>", "{label.x}/{label.y}", "", "  ", "{command}\u{200B}"] {
            assert_eq!(t(says_nothing).render_telling(&e), None, "{says_nothing:?}");
            assert_eq!(t(says_nothing).render_or(&e, &t("{entity}/{check}")), "web-01/check_disk");
        }
        assert_eq!(t("{label.x}-{entity}").render_telling(&e).as_deref(), Some("-web-01"), "one placeholder filled is enough");
        assert_eq!(incident_key(Some(&t("alert-{label.alert_id}")), &e), e.source_key());
        let mut quiet = e.clone();
        quiet.output = "\u{7}\u{0}\u{FEFF}\n".into();
        assert_eq!(t("{output}").render_telling(&quiet), None, "control and invisible characters say nothing");
        assert!(is_blank("\u{200B}\u{2060}\u{AD} \t") && !is_blank("\u{200B}x"));
    }

    #[test]
    fn literal_braces() {
        let t = Template::parse("t", "{{{entity}}}").unwrap();
        assert_eq!(t.render(&event()), "{web-01}");
    }

    #[test]
    fn unknown_or_broken_placeholders_are_config_errors() {
        for src in ["{entitty}", "{entity", "a } b", "{label.}"] {
            let err = Template::parse("pagerduty.summary_template", src).unwrap_err();
            assert_eq!(err.code, Code::Config, "{src}");
            assert!(err.to_string().contains("pagerduty.summary_template"));
        }
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        let jp = "ディスク容量が不足しています".repeat(100);
        let cut = truncate_chars(&jp, 1024);
        assert_eq!(cut.chars().count(), 1024);
        assert!(cut.ends_with('…'));
        assert!(jp.starts_with(cut.trim_end_matches('…')));
    }
}
