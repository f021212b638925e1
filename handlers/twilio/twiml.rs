//! TwiML for a page: `<Response>[<Pause length="N"/>]<Say …>message</Say>[<Dial><Conference>…</Conference></Dial>]</Response>`.
//!
//! Every piece of text that comes from an event (check output, host names, the incident key)
//! goes through quick-xml's `escape`, so output such as `</Say><Dial>+19005550100</Dial>` is
//! read out as text and can never become TwiML. Twilio refuses a `Twiml` parameter longer than
//! 4000 characters ([`MAX_CHARS`]); [`fitted`] shortens the check output (then, if it must, the
//! whole message) until the document fits.

use common::template::utf16_len;
use quick_xml::escape::escape;

/// Twilio's limit on the `Twiml` parameter of a Call create: 4000 characters, counted as UTF-16
/// code units ([`common::template::utf16_len`]: an emoji is two).
pub const MAX_CHARS: usize = 4000;

/// How the message is spoken: `<Say language=".." voice=".." loop="..">`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speech {
    /// BCP 47 language tag as Twilio knows it, e.g. `en-US`, `ja-JP`.
    pub language: String,
    /// Twilio voice name (`alice`, `Polly.Mizuki`, …); `None` leaves Twilio's default.
    pub voice: Option<String>,
    /// How many times the message is spoken (Twilio's `loop`, 1 or more).
    pub loops: u64,
    /// Seconds of silence before the first word (`<Pause length>`), so that the person who
    /// picks up has the phone at their ear; 0 for none.
    pub pause: u64,
}

/// Longest conference name put in the TwiML, in characters: 128. The name is the incident key,
/// which comes from host and check names of any length; Twilio's 4000 characters hold the whole
/// document, and [`fitted`] can only shorten the spoken text, so a key longer than the
/// document made every call refused (error 21205), the page lost.
pub const MAX_CONFERENCE_CHARS: usize = 128;

/// The conference name for incident `key`: the key itself when it has at most
/// [`MAX_CONFERENCE_CHARS`] characters, else its start and `~` plus a 16-hex-digit hash of the
/// whole key, so that every call of one incident joins one bridge and distinct long keys get
/// distinct bridges.
pub fn conference_name(key: &str) -> String {
    if key.chars().count() <= MAX_CONFERENCE_CHARS {
        return key.to_string();
    }
    let prefix: String = key.chars().take(MAX_CONFERENCE_CHARS - 17).collect();
    format!("{prefix}~{:016x}", common::state::file::fnv1a(key.as_bytes()))
}

/// The whole TwiML document speaking `text`, after `<Pause length="{pause}"/>` when
/// `speech.pause` is set; with `conference` it ends in
/// `<Dial><Conference>{conference}</Conference></Dial>` so that whoever answers joins one bridge.
pub fn document(text: &str, speech: &Speech, conference: Option<&str>) -> String {
    let mut out = String::from("<Response>");
    if speech.pause > 0 {
        out.push_str(&format!("<Pause length=\"{}\"/>", speech.pause));
    }
    out.push_str("<Say");
    out.push_str(&format!(" language=\"{}\"", escape(speech.language.as_str())));
    if let Some(v) = &speech.voice {
        out.push_str(&format!(" voice=\"{}\"", escape(v.as_str())));
    }
    if speech.loops != 1 {
        out.push_str(&format!(" loop=\"{}\"", speech.loops));
    }
    out.push('>');
    out.push_str(&escape(xml_chars(text).as_str()));
    out.push_str("</Say>");
    if let Some(name) = conference {
        out.push_str(&format!("<Dial><Conference>{}</Conference></Dial>", escape(xml_chars(name).as_str())));
    }
    out.push_str("</Response>");
    out
}

/// The longest document of at most [`MAX_CHARS`] characters, counted as spoken: its `<Say>`
/// text once for every `loop` ([`spoken_len`]). `render(n)` gives the spoken text with the check
/// output cut to `n` characters (`full` is the output's whole length); when even an empty output
/// is too long, the text itself is cut. Whitespace runs are spoken as one space.
///
/// Counted as spoken because the message is heard `loop` times before whoever answered joins
/// the bridge (`<Dial><Conference>`) or the call ends: 4000 characters of output spoken 10 times
/// (a `loop` an entity may set, around an output its host writes) kept a responder listening
/// for over half an hour before the bridge; now at most the time of 4000 characters, about four
/// minutes.
pub fn fitted(render: &dyn Fn(usize) -> String, full: usize, speech: &Speech, conference: Option<&str>) -> String {
    let build = |text: &str| document(&speakable(text), speech, conference);
    let fits = |doc: &String| spoken_len(doc, speech.loops) <= MAX_CHARS;
    // More than MAX_CHARS characters of output can never fit: search below that.
    let hi = full.min(MAX_CHARS);
    let doc = build(&render(hi));
    if fits(&doc) {
        return doc;
    }
    // Largest n that fits (escaping makes the cost per character vary, so search).
    if let Some(doc) = longest_fitting(hi, &|n| build(&render(n)), &fits) {
        return doc;
    }
    // The template or names alone are too long: cut the text itself, to the longest that fits
    // once escaped (searched, as above: `&`, `<`, `>`, quotes grow 4 to 6 times when escaped,
    // so a cut by the excess alone could leave nothing to speak, which Twilio refuses when the
    // call is answered, error 13520).
    let text = speakable(&render(0));
    let cut = |units: usize| build(&common::template::truncate_utf16(&text, units));
    longest_fitting(utf16_len(&text), &cut, &fits).unwrap_or_else(|| cut(0))
}

/// The length of `doc` ([`document`]) as spoken `loops` times, in UTF-16 code units: the whole
/// document, plus its `<Say>` text once more for every loop after the first.
pub fn spoken_len(doc: &str, loops: u64) -> usize {
    // The escaped text holds no `<`: it ends at the first `</Say>` after the tag's `>`.
    let said = doc
        .split_once("<Say")
        .and_then(|(_, rest)| rest.split_once('>'))
        .and_then(|(_, rest)| rest.split_once("</Say>"))
        .map_or(0, |(text, _)| utf16_len(text));
    let again = usize::try_from(loops.saturating_sub(1)).unwrap_or(usize::MAX);
    utf16_len(doc).saturating_add(said.saturating_mul(again))
}

/// `make(n)` for the largest `n` below `below` whose result `fits`, by bisection (`make`'s
/// size grows with `n`); `None` when not even `make(0)` fits.
fn longest_fitting(below: usize, make: &dyn Fn(usize) -> String, fits: &dyn Fn(&String) -> bool) -> Option<String> {
    let (mut lo, mut hi) = (0usize, below);
    let mut best = None;
    while lo < hi {
        let mid = (lo + hi) / 2;
        let doc = make(mid);
        if fits(&doc) {
            best = Some(doc);
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    best
}

/// `text` without the characters XML 1.0 does not allow (`Char`, XML 1.0 §2.2): C0 controls
/// other than tab, line feed and carriage return (NUL, the ESC of coloured check output …),
/// U+FFFE and U+FFFF. `escape` leaves them as they are, and one of them in a check output made
/// the whole `Twiml` a document Twilio cannot parse: the call was refused or spoke an
/// application error instead of the page.
pub fn xml_chars(text: &str) -> String {
    text.chars().filter(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)).collect()
}

/// `text` with whitespace runs (line breaks of multi-line check output) as single spaces.
pub fn speakable(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The default `message`, `resolve_message` and `test_message` templates for a `language`:
/// Japanese for `ja`/`ja-JP`, English for every other language (a TTS voice of another language
/// reads English text with its own accent: set `message` in that language; docs/twilio.md says
/// so). A template set in the settings always wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultMessages {
    /// Spoken (and texted) on a trigger.
    pub message: &'static str,
    /// Texted on a recovery (`notify_on_resolve`).
    pub resolve_message: &'static str,
    /// Spoken and texted by `--test`.
    pub test_message: &'static str,
}

/// [`DefaultMessages`] for the BCP 47 `language` tag (matched on its primary subtag, case-insensitively).
pub fn default_messages(language: &str) -> DefaultMessages {
    let primary = language.split('-').next().unwrap_or("").to_ascii_lowercase();
    match primary.as_str() {
        "ja" => DefaultMessages {
            message: "{entity} の {check} で障害です。状態は {status} です。{output}",
            resolve_message: "復旧: {entity} の {check} は {status} に戻りました。{output}",
            test_message: "pagerpipe からのテスト呼び出しです。{entity} に異常はありません。対応は不要です。",
        },
        _ => DefaultMessages {
            message: "{entity} {check} is {status}. {output}",
            resolve_message: "RESOLVED: {entity} {check} is {status}. {output}",
            test_message: "This is a test page from pagerpipe on {entity}. Nothing is wrong and no action is needed.",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech() -> Speech {
        Speech { language: "en-US".into(), voice: None, loops: 1, pause: 0 }
    }

    #[test]
    fn text_is_escaped_and_the_conference_is_appended() {
        let doc = document("a </Say><Dial>+19005550100</Dial> & \"b\"", &speech(), Some("web-01/<x>"));
        assert_eq!(
            doc,
            "<Response><Say language=\"en-US\">a &lt;/Say&gt;&lt;Dial&gt;+19005550100&lt;/Dial&gt; &amp; &quot;b&quot;</Say>\
             <Dial><Conference>web-01/&lt;x&gt;</Conference></Dial></Response>"
        );
        let s = Speech { language: "ja-JP".into(), voice: Some("Polly.Mizuki".into()), loops: 2, pause: 0 };
        assert_eq!(document("障害", &s, None), "<Response><Say language=\"ja-JP\" voice=\"Polly.Mizuki\" loop=\"2\">障害</Say></Response>");
        assert_eq!(
            document("a\u{0}b\u{1b}[31mc\u{fffe}", &speech(), Some("k\u{7}")),
            "<Response><Say language=\"en-US\">ab[31mc</Say><Dial><Conference>k</Conference></Dial></Response>"
        );
        let s = Speech { pause: 2, ..s };
        assert_eq!(
            document("x", &s, None),
            "<Response><Pause length=\"2\"/><Say language=\"ja-JP\" voice=\"Polly.Mizuki\" loop=\"2\">x</Say></Response>"
        );
    }

    #[test]
    fn long_output_is_cut_to_fit() {
        let output = "<&>".repeat(3000);
        let render = |n: usize| format!("web-01 check_disk is critical. {}", common::template::truncate_chars(&output, n));
        let doc = fitted(&render, 9000, &speech(), Some("web-01/check_disk"));
        let len = doc.chars().count();
        assert!(len <= MAX_CHARS && len > MAX_CHARS - 10, "{len}");
        assert!(doc.starts_with("<Response><Say language=\"en-US\">web-01 check_disk is critical. &lt;&amp;&gt;"), "{doc}");
        assert!(doc.ends_with("…</Say><Dial><Conference>web-01/check_disk</Conference></Dial></Response>"), "{doc}");
        // A template that is too long by itself is cut too.
        let huge = "x".repeat(5000);
        let doc = fitted(&|_| huge.clone(), 0, &speech(), None);
        let len = doc.chars().count();
        assert!(len <= MAX_CHARS && len > MAX_CHARS - 5, "{len}");
    }

    /// The message is heard `loop` times before the bridge: the whole of it, every loop, counts
    /// against the 4000 characters, so an entity's `loop: 10` around a long output cannot keep
    /// a responder out of the conference for half an hour.
    #[test]
    fn every_loop_of_the_message_counts_against_the_limit() {
        let output = "disk full ".repeat(600);
        let render = |n: usize| format!("web-01 check_disk is critical. {}", common::template::truncate_chars(&output, n));
        for loops in [1, 2, 10] {
            let s = Speech { loops, ..speech() };
            let doc = fitted(&render, 6000, &s, Some("web-01/check_disk"));
            let said = doc.split_once("\">").and_then(|(_, r)| r.split_once("</Say>")).map(|(t, _)| t.chars().count()).unwrap();
            let spoken = doc.chars().count() + said * (loops as usize - 1);
            assert_eq!(spoken_len(&doc, loops), spoken, "loop {loops}");
            assert!(spoken <= MAX_CHARS && spoken > MAX_CHARS - 10 * loops as usize, "loop {loops}: {spoken}");
            assert!(doc.ends_with("…</Say><Dial><Conference>web-01/check_disk</Conference></Dial></Response>"), "{doc}");
        }
        assert_eq!(spoken_len("<Response><Say language=\"en-US\" loop=\"3\">ab</Say></Response>", 3), 60 + 4);
    }

    #[test]
    fn whitespace_runs_are_spoken_as_one_space() {
        assert_eq!(speakable("DISK CRITICAL\n / 95%\t\n"), "DISK CRITICAL / 95%");
    }

    #[test]
    fn default_messages_follow_the_language() {
        assert!(default_messages("ja-JP").message.contains("障害"));
        assert_eq!(default_messages("JA"), default_messages("ja-JP"));
        assert_eq!(default_messages("en-US").message, "{entity} {check} is {status}. {output}");
        assert_eq!(default_messages("de-DE"), default_messages("en-GB"), "English unless a translation exists");
    }
}
