//! The messages handler-slack posts (Block Kit) and the war room's topic.
//!
//! One shape for every message, so that the thread reads as a timeline: a header naming what
//! happened and the incident (`plain_text`, ≤ 150 characters), a section with the status,
//! entity, check and occurrences (mrkdwn fields, each ≤ 2,000), the check output in a code
//! block (≤ 3,000 with its fences), and a context line with the incident key and, when
//! `link_template` is set, a link back to the monitoring system. `text` (≤ 4,000; what
//! notifications and screen readers show, spec §5.5) says the same in one line. Limits: spec §6.
//!
//! Every event value is escaped ([`crate::mrkdwn::escape_cut`]), and the check output cannot
//! close its code block, nor the incident key its inline code ([`crate::mrkdwn::in_code_block`],
//! [`crate::mrkdwn::in_inline_code`]); the header is `plain_text`,
//! which Slack does not parse for mentions, and is cut, not escaped. The fields and the context
//! line, which carry host-written names, are `verbatim` (Block Kit text object: no automatic
//! parsing of plain text, where "certain mentions will be automatically parsed" otherwise; the
//! link written as `<url|text>` still works). The only mention that can appear is the one the
//! operator asked for (`mention`), written after escaping.

use common::event::Event;
use common::template::truncate_chars;
use serde_json::{Value, json};

use crate::mrkdwn::{escape_cut, first_line, in_code_block, in_inline_code, topic_limit};

/// Longest `text` sent, in characters (Slack's recommendation, spec §5.5).
pub const MAX_TEXT: usize = 4000;
/// Longest header text (spec §6).
pub const MAX_HEADER: usize = 150;
/// Longest section text (spec §6).
pub const MAX_SECTION: usize = 3000;
/// Longest section field (spec §6).
pub const MAX_FIELD: usize = 2000;

/// What a message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The first alert of an incident (the thread's parent).
    Alert,
    /// A repeat after `refresh`: still failing.
    Repeat,
    /// The status changed (`from` is the previous status word).
    SeverityChange {
        /// The previous status word.
        from: &'static str,
    },
    /// Someone acknowledged it.
    Acknowledged,
    /// The check recovered.
    Recovered,
    /// `--test`.
    Test,
}

/// An operator-chosen mention added to the first alert of an incident (`mention` setting:
/// `none`, `here`, `channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mention {
    /// None (default): the responders are invited, which notifies them.
    #[default]
    None,
    /// `<!here>`: the active members of the channel.
    Here,
    /// `<!channel>`: every member of the channel.
    Channel,
}

impl Mention {
    fn markup(self) -> &'static str {
        match self {
            Mention::None => "",
            Mention::Here => "<!here> ",
            Mention::Channel => "<!channel> ",
        }
    }
}

fn status_word(status: &str) -> String {
    status.to_ascii_uppercase()
}

fn emoji(kind: Kind, status: &str) -> &'static str {
    match (kind, status) {
        (Kind::Recovered, _) | (_, "ok") => ":large_green_circle:",
        (Kind::Acknowledged, _) => ":eyes:",
        (Kind::Test, _) => ":white_check_mark:",
        (_, "critical") => ":red_circle:",
        (_, "warning") => ":large_yellow_circle:",
        _ => ":white_circle:",
    }
}

/// The headline of a message, without escaping: `CRITICAL web-01/check_disk`, `still
/// CRITICAL …`, `WARNING → CRITICAL …`, `acknowledged …`, `RECOVERED …`.
fn headline(kind: Kind, event: &Event) -> String {
    let status = status_word(event.status_name());
    let what = format!("{}/{}", event.entity, event.check);
    match kind {
        Kind::Alert => format!("{status} {what}"),
        Kind::Repeat => format!("still {status} {what}"),
        Kind::SeverityChange { from } => format!("{} → {status} {what}", status_word(from)),
        Kind::Acknowledged => format!("acknowledged {what}"),
        Kind::Recovered => format!("RECOVERED {what}"),
        Kind::Test => format!("test message from pagerpipe on {}", event.entity),
    }
}

/// A `chat.postMessage` body (without `channel`/`thread_ts`): `text` and `blocks`.
///
/// `key` is the incident key; `link` a URL already made safe by [`crate::mrkdwn::link_url`];
/// `mention` is added to the text of [`Kind::Alert`] only.
pub fn body(kind: Kind, event: &Event, key: &str, link: Option<&str>, mention: Mention) -> Value {
    let emoji = emoji(kind, event.status_name());
    let head = headline(kind, event);
    // The output as text, as templates render it (`printable`: no NUL, no ESC of colours).
    let output = common::template::printable(&event.output);
    let output = output.trim_end();
    let mention = if kind == Kind::Alert { mention.markup() } else { "" };

    let summary = first_line(output);
    let text_head = format!("{mention}{emoji} {}", escape_cut(&head, MAX_TEXT / 2));
    let text = if summary.is_empty() || kind == Kind::Test {
        text_head
    } else {
        let room = MAX_TEXT.saturating_sub(text_head.chars().count() + 2);
        format!("{text_head}: {}", escape_cut(summary, room))
    };

    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate_chars(&format!("{emoji} {head}"), MAX_HEADER), "emoji": true},
    })];
    if kind != Kind::Test {
        let field = |label: &str, value: &str| {
            let label = format!("*{label}*\n");
            json!({"type": "mrkdwn", "text": format!("{label}{}", escape_cut(value, MAX_FIELD - label.chars().count())), "verbatim": true})
        };
        blocks.push(json!({
            "type": "section",
            "fields": [
                field("Status", event.status_name()),
                field("Entity", &event.entity),
                field("Check", &event.check),
                field("Occurrences", &event.occurrences.to_string()),
            ],
        }));
        let fenced = if output.is_empty() {
            "_(no output)_".to_string()
        } else {
            format!("```\n{}\n```", escape_cut(&in_code_block(output), MAX_SECTION - 8))
        };
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": fenced}}));
    }
    let mut context = format!("incident `{}`", escape_cut(&in_inline_code(key), 300));
    // The link whole or not at all (as in the topic): cut to the context's 3,000 characters
    // it was an unclosed `<https://…` that Slack shows as text, link lost. Room is kept for the
    // namespace part after it (` · namespace ` and up to 100 characters).
    const NAMESPACE_ROOM: usize = 120;
    let linked = link.map(|url| format!(" · <{url}|open in monitoring>"));
    if let Some(part) = linked.filter(|p| context.chars().count() + p.chars().count() + NAMESPACE_ROOM <= MAX_SECTION) {
        context.push_str(&part);
    }
    if let Some(ns) = event.namespace.as_deref().filter(|n| !n.is_empty()) {
        context.push_str(&format!(" · namespace {}", escape_cut(ns, 100)));
    }
    blocks.push(
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate_chars(&context, MAX_SECTION), "verbatim": true}]}),
    );
    json!({"text": text, "blocks": blocks, "unfurl_links": false, "unfurl_media": false})
}

/// The words [`topic`] names `event`'s incident with (`entity/check`, escaped), for
/// [`topic_names`].
pub fn topic_incident(event: &Event) -> String {
    escape_cut(&format!("{}/{}", event.entity, event.check), usize::MAX)
}

/// Whether `topic`, as [`topic`] wrote it (`STATUS entity/check: first line[ | link]`, cut to
/// Slack's limit), names the incident `incident` ([`topic_incident`]).
pub fn topic_names(topic: &str, incident: &str) -> bool {
    let Some((_, rest)) = topic.split_once(' ') else { return false };
    match rest.strip_prefix(incident) {
        Some(after) => after.is_empty() || after.starts_with(':') || after.starts_with(" | "),
        // Cut inside the incident's words (an entity and check of some 240 characters).
        None => rest.strip_suffix('…').is_some_and(|cut| cut.chars().count() >= 200 && incident.starts_with(cut)),
    }
}

/// The war room's topic: `CRITICAL web-01/check_disk: <first output line> | <link>`, escaped,
/// within Slack's 250 characters (240 with emoji, [`topic_limit`]); the link is kept whole or
/// left out.
pub fn topic(event: &Event, link: Option<&str>) -> String {
    let output = common::template::printable(&event.output);
    let summary = format!("{} {}/{}: {}", status_word(event.status_name()), event.entity, event.check, first_line(&output));
    let summary = summary.trim_end_matches([':', ' ']).to_string();
    let limit = topic_limit(&summary);
    match link.filter(|l| l.chars().count() + 3 + 20 <= limit) {
        Some(l) => {
            let room = limit - l.chars().count() - 3;
            format!("{} | {l}", escape_cut(&summary, room))
        }
        None => escape_cut(&summary, limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::event::parse_json;

    fn event(status: u32, output: &str) -> Event {
        let e =
            json!({"client": {"name": "web-01"}, "check": {"name": "check_disk", "status": status, "output": output}, "occurrences": 3});
        parse_json(e.to_string().as_bytes(), None).expect("event")
    }

    fn mrkdwn_texts(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("mrkdwn") {
                    out.push(o["text"].as_str().unwrap_or("").to_string());
                }
                o.values().for_each(|v| mrkdwn_texts(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| mrkdwn_texts(v, out)),
            _ => {}
        }
    }

    #[test]
    fn alert_has_header_fields_output_and_context() {
        let b = body(
            Kind::Alert,
            &event(2, "DISK CRITICAL - / 95%\nmore"),
            "web-01/check_disk",
            Some("https://sensu.example/e"),
            Mention::None,
        );
        assert_eq!(b["text"], ":red_circle: CRITICAL web-01/check_disk: DISK CRITICAL - / 95%");
        let blocks = b["blocks"].as_array().expect("blocks");
        assert_eq!(blocks[0]["text"]["text"], ":red_circle: CRITICAL web-01/check_disk");
        assert_eq!(blocks[1]["fields"][1]["text"], "*Entity*\nweb-01");
        assert_eq!(blocks[1]["fields"][3]["text"], "*Occurrences*\n3");
        assert_eq!(blocks[2]["text"]["text"], "```\nDISK CRITICAL - / 95%\nmore\n```");
        assert_eq!(blocks[3]["elements"][0]["text"], "incident `web-01/check_disk` · <https://sensu.example/e|open in monitoring>");
        // Host-written names: no automatic parsing of plain text (`@here` stays text).
        assert!(blocks[1]["fields"].as_array().expect("fields").iter().all(|f| f["verbatim"] == true));
        assert_eq!(blocks[3]["elements"][0]["verbatim"], true);
    }

    #[test]
    fn output_control_characters_are_left_out_of_text_blocks_and_topic() {
        let e = event(2, "\u{1b}[31mDISK\u{0} CRITICAL\u{1b}[0m\u{7}\nmore");
        let b = body(Kind::Alert, &e, "web-01/check_disk", None, Mention::None);
        assert_eq!(b["text"], ":red_circle: CRITICAL web-01/check_disk: [31mDISK CRITICAL[0m");
        assert_eq!(b["blocks"][2]["text"]["text"], "```\n[31mDISK CRITICAL[0m\nmore\n```");
        assert_eq!(topic(&e, None), "CRITICAL web-01/check_disk: [31mDISK CRITICAL[0m");
    }

    #[test]
    fn event_values_cannot_mention_anyone() {
        let hostile = "<!channel> wake up <@U123> <!subteam^S1|ops> & <https://evil|ok>";
        let mut e = event(2, hostile);
        e.entity = "<!here>".into();
        e.check = "<@U999>".into();
        let b = body(Kind::Alert, &e, "<!everyone>", None, Mention::None);
        let mut texts = vec![b["text"].as_str().unwrap_or("").to_string()];
        mrkdwn_texts(&b["blocks"], &mut texts);
        for t in &texts {
            assert!(!t.contains('<') && !t.contains('>'), "{t}");
            let without = t.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "");
            assert!(!without.contains('&'), "{t}");
        }
        // The mention the operator asked for is the only one.
        let b = body(Kind::Alert, &e, "k", None, Mention::Here);
        assert!(b["text"].as_str().unwrap_or("").starts_with("<!here> :red_circle: CRITICAL &lt;!here&gt;/&lt;@U999&gt;"), "{}", b["text"]);
        let b = body(Kind::Repeat, &e, "k", None, Mention::Here);
        assert!(!b["text"].as_str().unwrap_or("").contains("<!here>"));
    }

    #[test]
    fn limits_hold_for_huge_values() {
        let mut e = event(2, &"ディスク容量が不足しています & <x>\n".repeat(2000));
        e.check = "c".repeat(5000);
        e.entity = "e".repeat(3000);
        let b = body(Kind::Alert, &e, &"k".repeat(1000), None, Mention::Channel);
        assert!(b["text"].as_str().unwrap_or("").chars().count() <= MAX_TEXT);
        let blocks = b["blocks"].as_array().expect("blocks");
        assert!(blocks[0]["text"]["text"].as_str().unwrap_or("").chars().count() <= MAX_HEADER);
        for f in blocks[1]["fields"].as_array().expect("fields") {
            assert!(f["text"].as_str().unwrap_or("").chars().count() <= MAX_FIELD);
        }
        assert!(blocks[2]["text"]["text"].as_str().unwrap_or("").chars().count() <= MAX_SECTION);
        assert!(blocks[2]["text"]["text"].as_str().unwrap_or("").ends_with("…\n```"));
    }

    #[test]
    fn a_link_too_long_for_the_context_is_left_out_not_cut() {
        let long = format!("https://sensu.example/{}", "a".repeat(3000));
        let b = body(Kind::Alert, &event(2, "x"), "web-01/check_disk", Some(&long), Mention::None);
        let context = b["blocks"][3]["elements"][0]["text"].as_str().unwrap_or("");
        assert_eq!(context, "incident `web-01/check_disk`");
        let b = body(Kind::Alert, &event(2, "x"), "web-01/check_disk", Some("https://s.example/e"), Mention::None);
        assert!(b["blocks"][3]["elements"][0]["text"].as_str().unwrap_or("").ends_with("<https://s.example/e|open in monitoring>"));
    }

    #[test]
    fn headlines() {
        let e = event(2, "x");
        assert_eq!(headline(Kind::SeverityChange { from: "warning" }, &e), "WARNING → CRITICAL web-01/check_disk");
        assert_eq!(headline(Kind::Recovered, &event(0, "ok")), "RECOVERED web-01/check_disk");
        assert_eq!(
            body(Kind::Recovered, &event(0, "DISK OK"), "k", None, Mention::None)["text"],
            ":large_green_circle: RECOVERED web-01/check_disk: DISK OK"
        );
    }

    #[test]
    fn topic_fits_and_keeps_the_link_whole() {
        let e = event(2, "DISK CRITICAL & <b>\nsecond");
        assert_eq!(
            topic(&e, Some("https://s.example/e")),
            "CRITICAL web-01/check_disk: DISK CRITICAL &amp; &lt;b&gt; | https://s.example/e"
        );
        let long = event(2, &"x".repeat(1000));
        let t = topic(&long, Some("https://s.example/e"));
        assert_eq!(t.chars().count(), 250);
        assert!(t.ends_with("… | https://s.example/e"), "{t}");
        let emoji = event(2, &"🔥".repeat(300));
        assert!(topic(&emoji, None).chars().count() <= 240);
    }
}
