//! Text for Slack: escaping for mrkdwn ([`common::mrkdwn`], shared with handler-twilio's
//! announcements), cutting to Slack's limits, links and summary lines.
//!
//! Every value taken from a monitoring event (check output, host and check names, labels) goes
//! through [`escape_cut`], so that no mention, channel link or disguised link can come from the
//! monitored host. Mentions the handler adds on purpose (the `mention` setting) are written
//! after escaping.
//!
//! Limits count characters (Unicode scalar values); whether Slack counts UTF-16 units instead
//! is not documented (spec §9), so the topic keeps a margin when a character outside the BMP is
//! present. Cutting escaped text never splits an entity ([`escape_cut`]).

pub use common::mrkdwn::escape_cut;

/// Longest topic Slack accepts, in characters (spec §5.2, `too_long`).
pub const MAX_TOPIC: usize = 250;

/// Margin kept under [`MAX_TOPIC`] when the text holds a character outside the Basic
/// Multilingual Plane (emoji), in case Slack counts UTF-16 units (spec §5.2).
pub const TOPIC_NON_BMP_MAX: usize = 240;

/// The character limit for a topic made of `text`.
pub fn topic_limit(text: &str) -> usize {
    if text.chars().any(|c| u32::from(c) > 0xFFFF) { TOPIC_NON_BMP_MAX } else { MAX_TOPIC }
}

/// `s` for the inside of a code block (```` ```…``` ````): a zero-width space after every
/// backtick that another follows, so that a run of three in a check output (```` ``` ````)
/// cannot close the block and have the rest of the output read as mrkdwn (`*RESOLVED*`,
/// `> quote`, lists) looking like the handler's own words. Slack has no escape for a
/// backtick; the output still reads the same.
pub fn in_code_block(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '`' && chars.peek() == Some(&'`') {
            out.push('\u{200b}');
        }
    }
    out
}

/// `s` for the inside of inline code (`` `…` ``): a backtick, which would end it, as the
/// look-alike U+02CB (modifier letter grave accent).
pub fn in_inline_code(s: &str) -> String {
    s.replace('`', "\u{2cb}")
}

/// The first line of `s` that is not blank, trimmed (a check output's summary line).
pub fn first_line(s: &str) -> &str {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}

/// A URL for a mrkdwn link `<url|label>`: only `http://` and `https://` URLs (anything else is
/// `None`); characters that would end the link or the label (`|`, `<`, `>`, whitespace, `"`,
/// controls, non-ASCII) are percent-encoded, then `&` is escaped as Slack requires inside
/// links.
pub fn link_url(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || url.len() <= "http://".len() {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    for b in url.bytes() {
        match b {
            b'&' => out.push_str("&amp;"),
            b'|' | b'<' | b'>' | b'"' | b' ' | b'`' | b'{' | b'}' | b'\\' | b'^' => out.push_str(&format!("%{b:02X}")),
            b if b.is_ascii_graphic() => out.push(char::from(b)),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_limit_keeps_a_margin_for_emoji() {
        assert_eq!(topic_limit("disk full"), 250);
        assert_eq!(topic_limit("disk full 🔥"), 240);
    }

    #[test]
    fn links_are_http_only_and_cannot_break_out() {
        assert_eq!(
            link_url("https://sensu.example.com/events/web-01/check?x=1&y=2").as_deref(),
            Some("https://sensu.example.com/events/web-01/check?x=1&amp;y=2")
        );
        assert_eq!(link_url("https://x.example/a|<!channel>").as_deref(), Some("https://x.example/a%7C%3C!channel%3E"));
        assert_eq!(link_url("https://x.example/ディスク").as_deref(), Some("https://x.example/%E3%83%87%E3%82%A3%E3%82%B9%E3%82%AF"));
        assert_eq!(link_url("javascript:alert(1)"), None);
        assert_eq!(link_url("web-01/check"), None);
    }

    #[test]
    fn code_cannot_be_closed_by_the_text_inside() {
        assert_eq!(in_code_block("a ``` *b*"), "a `\u{200b}`\u{200b}` *b*");
        assert!(!in_code_block("````` x ``").contains("``"));
        assert_eq!(in_code_block("one ` tick"), "one ` tick");
        assert_eq!(in_inline_code("web`01"), "web\u{2cb}01");
    }

    #[test]
    fn first_line_skips_blank_lines() {
        assert_eq!(first_line("\n  DISK CRITICAL - / 95%\nmore"), "DISK CRITICAL - / 95%");
        assert_eq!(first_line(""), "");
    }
}
