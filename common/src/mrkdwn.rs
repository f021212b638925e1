//! Slack's mrkdwn escaping, for every handler that writes to Slack (handler-slack's messages
//! and topics, handler-twilio's "who answered" announcements).
//!
//! `&`, `<` and `>` are Slack's control characters (docs.slack.dev "Formatting message text",
//! section "Escaping text"; handler-slack spec §6): `<!channel>`, `<!here>`, `<!everyone>`,
//! `<!subteam^ID>` notify many people, `<@U…>` mentions one, `<#C…>` links a channel,
//! `<https://x|label>` disguises a link. Text from a monitoring event goes through [`escape`]
//! or [`escape_cut`] (`&` → `&amp;` first, then `<` → `&lt;`, `>` → `&gt;`, and nothing else,
//! as Slack decodes only these), so that none of these can come from the monitored host.
//! Cutting escaped text never splits an entity: [`escape_cut`] escapes and counts in one pass
//! and stops before an entity that would not fit.

/// Escape `&`, `<`, `>` for mrkdwn and message `text` (handler-slack spec §6).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_the_three_control_characters() {
        assert_eq!(escape("<!channel> & <@U123> \"q\" 'a' ディスク"), "&lt;!channel&gt; &amp; &lt;@U123&gt; \"q\" 'a' ディスク");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        // As handler-twilio's announcements used it.
        assert_eq!(escape("<!channel> & <@U123> \"x\" 'y'"), "&lt;!channel&gt; &amp; &lt;@U123&gt; \"x\" 'y'");
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
}
