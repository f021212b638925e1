//! Text for Slack: escaping for mrkdwn, and cutting to Slack's limits on a character boundary.
//!
//! `&`, `<` and `>` are Slack's control characters (spec §6, docs.slack.dev
//! "Formatting message text", section "Escaping text"): `<!channel>`, `<!here>`,
//! `<!everyone>`, `<!subteam^ID>` notify many people, `<@U…>` mentions one, `<#C…>` links a
//! channel, `<https://x|label>` disguises a link. Every value taken from a monitoring event
//! (check output, host and check names, labels) goes through [`escape`] (`&` → `&amp;` first,
//! then `<` → `&lt;`, `>` → `&gt;`, and nothing else), so that none of these can come from the
//! monitored host. Mentions the handler adds on purpose (the `mention` setting) are written
//! after escaping.
//!
//! Limits count characters (Unicode scalar values); whether Slack counts UTF-16 units instead
//! is not documented (spec §9), so the topic keeps a margin when a character outside the BMP is
//! present. Cutting escaped text never splits an entity: [`escape_cut`] escapes and counts in
//! one pass and stops before an entity that would not fit.

/// Escape `&`, `<`, `>` for mrkdwn and message `text` (spec §6).
#[cfg(test)]
pub fn escape(s: &str) -> String {
    escape_cut(s, usize::MAX)
}

/// [`escape`], cut so that the result has at most `max` characters, ending with `…` when cut.
/// An entity is never split (a cut `&amp;` would leave a bare `&`).
pub fn escape_cut(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(4)));
    let mut len = 0usize;
    let total: usize = s.chars().map(|c| entity(c).map_or(1, str::len)).sum();
    let budget = if total <= max { max } else { max.saturating_sub(1) };
    for c in s.chars() {
        let piece_len = entity(c).map_or(1, str::len);
        if len + piece_len > budget {
            out.push('…');
            return out;
        }
        match entity(c) {
            Some(e) => out.push_str(e),
            None => out.push(c),
        }
        len += piece_len;
    }
    out
}

fn entity(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    }
}

/// Longest topic Slack accepts, in characters (spec §5.2, `too_long`).
pub const MAX_TOPIC: usize = 250;

/// Margin kept under [`MAX_TOPIC`] when the text holds a character outside the Basic
/// Multilingual Plane (emoji), in case Slack counts UTF-16 units (spec §5.2).
pub const TOPIC_NON_BMP_MAX: usize = 240;

/// The character limit for a topic made of `text`.
pub fn topic_limit(text: &str) -> usize {
    if text.chars().any(|c| u32::from(c) > 0xFFFF) { TOPIC_NON_BMP_MAX } else { MAX_TOPIC }
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
    fn escapes_only_the_three_control_characters() {
        assert_eq!(escape("<!channel> & <@U123> \"q\" 'a' ディスク"), "&lt;!channel&gt; &amp; &lt;@U123&gt; \"q\" 'a' ディスク");
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn cutting_never_splits_an_entity_or_a_character() {
        assert_eq!(escape_cut("abc", 3), "abc");
        assert_eq!(escape_cut("abcd", 3), "ab…");
        // "a&bc" escapes to "a&amp;bc" (8). At 7 the entity fits before the `…`.
        assert_eq!(escape_cut("a&bc", 7), "a&amp;…");
        // At 6 it would not: it is left out whole, never split.
        assert_eq!(escape_cut("a&bc", 6), "a…");
        assert_eq!(escape_cut("a&b", 7), "a&amp;b");
        let jp = "ディスク容量が不足しています".repeat(300);
        let cut = escape_cut(&jp, 2990);
        assert_eq!(cut.chars().count(), 2990);
        assert!(cut.ends_with('…'));
        for n in 0..40 {
            let s = escape_cut("<&>".repeat(10).as_str(), n);
            assert!(s.chars().count() <= n.max(1), "{n}: {s}");
            let without = s.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "");
            assert!(!without.contains(['&', '<', '>']), "{n}: {s}");
        }
    }

    #[test]
    fn topic_limit_keeps_a_margin_for_emoji() {
        assert_eq!(topic_limit("disk full"), 250);
        assert_eq!(topic_limit("disk full 🔥"), 240);
    }

    #[test]
    fn links_are_http_only_and_cannot_break_out() {
        assert_eq!(link_url("https://sensu.example.com/events/web-01/check?x=1&y=2").as_deref(), Some("https://sensu.example.com/events/web-01/check?x=1&amp;y=2"));
        assert_eq!(link_url("https://x.example/a|<!channel>").as_deref(), Some("https://x.example/a%7C%3C!channel%3E"));
        assert_eq!(link_url("https://x.example/ディスク").as_deref(), Some("https://x.example/%E3%83%87%E3%82%A3%E3%82%B9%E3%82%AF"));
        assert_eq!(link_url("javascript:alert(1)"), None);
        assert_eq!(link_url("web-01/check"), None);
    }

    #[test]
    fn first_line_skips_blank_lines() {
        assert_eq!(first_line("\n  DISK CRITICAL - / 95%\nmore"), "DISK CRITICAL - / 95%");
        assert_eq!(first_line(""), "");
    }
}
