//! README.md's "Who may set what" table, read back against the trust tables.
//!
//! The README tells operators who may set each setting in a table of three rows (`operator
//! only`, `operator, check`, `operator, check, entity`); the code says the same in [`COMMON`]
//! and each handler's `Provider::SETTINGS`. Nothing else ties the two together, and a table
//! that says a setting is safer than it is misleads the operator deciding what to trust.
//! [`disagreements`] reads the table and says where it and one handler's table differ; each
//! handler's unit tests call it with its own `SETTINGS`. It lives here, not in a test file,
//! because the handlers are binaries: the library is the one place all four can call. The
//! binaries never call it, so none of it is linked into them.
//!
//! How the second cell of a row is read (the rules the README's wording follows):
//!
//! - a backticked lowercase name (`routing_key`) is a setting; other code (`*_file`,
//!   `--test`) is not;
//! - a capitalized word outside parentheses (`PagerDuty`, `Twilio`) names the handler the
//!   settings after it belong to, up to the next `;`; settings before any handler's name in a
//!   `;`-separated part are every handler's (`severities`, `refresh`); other words, such as
//!   the sub-label `links and markup:`, change nothing;
//! - backticked names in parentheses right after a setting are its other names
//!   (`routing_key` (`api_key`, `integration_key`)). An event's override is judged under the
//!   name it uses, before the handler folds the names together, so each is a setting of its
//!   own in `SETTINGS`, with the trust of the name it stands for: it is read as a setting of
//!   the same row. Prose in parentheses (`(a URL)`, `(Twilio, Slack)`) is skipped.

use super::{COMMON, Trust, event_settings, of};

/// One setting the table names.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// The row: who may set it at least.
    row: Trust,
    /// The handler's name as written (`PagerDuty`), or `None`: every handler's.
    handler: Option<String>,
    /// The setting.
    name: String,
    /// The setting it is another name of, when it was in parentheses after one.
    alias_of: Option<String>,
}

/// The first cell of the row for `trust`: `operator only`, `operator, check`,
/// `operator, check, entity`.
fn row_label(trust: Trust) -> String {
    match trust {
        Trust::Operator => format!("{} only", Trust::Operator.name()),
        Trust::Check => format!("{}, {}", Trust::Operator.name(), Trust::Check.name()),
        Trust::Entity => format!("{}, {}, {}", Trust::Operator.name(), Trust::Check.name(), Trust::Entity.name()),
    }
}

/// Where `handler`'s setting `name` gets its trust from (`own`: its `SETTINGS`), for a
/// message.
fn source(handler: &str, own: &[(&str, Trust)], name: &str) -> String {
    if name.ends_with("_file") {
        "every `*_file` setting is operator-only (trust::of)".to_string()
    } else if own.iter().any(|(n, _)| *n == name) {
        format!("{handler}'s SETTINGS gives it `{}`", of(own, name).name())
    } else if COMMON.iter().any(|(n, _)| *n == name) {
        format!("trust::COMMON gives it `{}`", of(own, name).name())
    } else {
        "no trust table names it, so it is operator-only".to_string()
    }
}

/// Where `README.md`'s "Who may set what" table (the whole file: `readme`) and the trust
/// tables disagree for the handler `handler` (`pagerduty`, matched without case against the
/// table's `PagerDuty`), whose `Provider::SETTINGS` is `own`: one sentence each, empty when
/// they agree. A table that cannot be read is one sentence saying why.
///
/// Checked both ways: every setting the table lists for this handler, or for every handler,
/// has the trust of its row ([`of`]: `own`, else [`COMMON`], else operator-only); and every
/// setting an event may set ([`event_settings`]) is listed for this handler or every handler
/// in its row. The operator-only row need not be complete (a setting no table names is
/// operator-only), but what it lists must not be settable from an event.
pub fn disagreements(readme: &str, handler: &str, own: &[(&'static str, Trust)]) -> Vec<String> {
    let entries = match read(readme) {
        Ok(entries) => entries,
        Err(why) => return vec![format!("README.md \"Who may set what\": {why}")],
    };
    let mine = |e: &&Entry| e.handler.as_deref().is_none_or(|h| h.eq_ignore_ascii_case(handler));
    let mut out = Vec::new();
    for e in entries.iter().filter(mine) {
        if of(own, &e.name) != e.row {
            let who = e.handler.as_deref().map_or_else(|| "every handler's".to_string(), |h| format!("{h}'s"));
            let alias = e.alias_of.as_deref().map(|a| format!(" (another name of `{a}`)")).unwrap_or_default();
            out.push(format!(
                "README.md \"Who may set what\" lists {who} `{}`{alias} under \"{}\", but {}",
                e.name,
                row_label(e.row),
                source(handler, own, &e.name)
            ));
        }
    }
    for name in event_settings(own) {
        if !entries.iter().filter(mine).any(|e| e.name == name) {
            out.push(format!(
                "{handler} `{name}`: {}, but README.md \"Who may set what\" does not list it (in \"{}\", for {handler} or every handler)",
                source(handler, own, name),
                row_label(of(own, name))
            ));
        }
    }
    out
}

/// The settings the "Who may set what" table of `readme` names, row by row.
fn read(readme: &str) -> Result<Vec<Entry>, String> {
    let mut lines = readme.lines().skip_while(|l| l.trim() != "### Who may set what");
    if lines.next().is_none() {
        return Err("no such section".to_string());
    }
    // The first table of the section: its header, the delimiter row, then the rows.
    let table: Vec<&str> = lines
        .take_while(|l| !l.starts_with('#'))
        .skip_while(|l| !l.trim_start().starts_with('|'))
        .take_while(|l| l.trim_start().starts_with('|'))
        .skip(2)
        .collect();
    let mut entries = Vec::new();
    let mut seen = Vec::new();
    for line in table {
        let cells = cells(line);
        let [label, settings] = cells.as_slice() else {
            return Err(format!("a row of {} cells, not 2: {line}", cells.len()));
        };
        let label = label.split_whitespace().collect::<Vec<_>>().join(" ");
        let Some(row) = [Trust::Operator, Trust::Check, Trust::Entity].into_iter().find(|t| row_label(*t) == label) else {
            return Err(format!(
                "a row \"{label}\" that is none of \"{}\"",
                [Trust::Operator, Trust::Check, Trust::Entity].map(row_label).join("\", \"")
            ));
        };
        if seen.contains(&row) {
            return Err(format!("two rows \"{label}\""));
        }
        seen.push(row);
        entries.extend(settings_of(settings, row).map_err(|why| format!("row \"{label}\": {why}"))?);
    }
    if seen.len() != 3 {
        return Err(format!("{} of the 3 rows found", seen.len()));
    }
    Ok(entries)
}

/// The cells of a table row: split at each `|` not escaped as `\|`, outer pipes dropped.
fn cells(line: &str) -> Vec<&str> {
    let line = line.trim();
    let line = line.strip_prefix('|').unwrap_or(line);
    let line = line.strip_suffix('|').filter(|l| !l.ends_with('\\')).unwrap_or(line);
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            '|' if !escaped => {
                out.push(line[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        escaped = c == '\\' && !escaped;
    }
    out.push(line[start..].trim());
    out
}

/// Whether code `text` is a setting's name: lowercase letters, digits and `_`.
fn is_setting(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_lowercase()) && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The settings cell of the row for `row`, read by the rules in the module's opening.
fn settings_of(cell: &str, row: Trust) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    let mut handler: Option<String> = None;
    // The setting just read outside parentheses, which names in parentheses stand for.
    let mut last: Option<String> = None;
    let mut depth = 0usize;
    let mut chars = cell.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '`' => {
                let rest = &cell[i + 1..];
                let Some(len) = rest.find('`') else {
                    return Err(format!("a backtick not closed: {}", &cell[i..]));
                };
                let code = &rest[..len];
                while chars.next_if(|(j, _)| *j <= i + len + 1).is_some() {}
                if !is_setting(code) {
                    continue;
                }
                if depth == 0 {
                    out.push(Entry { row, handler: handler.clone(), name: code.to_string(), alias_of: None });
                    last = Some(code.to_string());
                } else if let Some(of) = &last {
                    out.push(Entry { row, handler: handler.clone(), name: code.to_string(), alias_of: Some(of.clone()) });
                } else {
                    return Err(format!("`{code}` in parentheses that follow no setting"));
                }
            }
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or_else(|| format!("a `)` not opened: {}", &cell[..=i]))?;
            }
            ';' if depth == 0 => (handler, last) = (None, None),
            c if c.is_alphabetic() => {
                let mut end = i + c.len_utf8();
                while let Some((j, w)) = chars.next_if(|(_, w)| w.is_alphanumeric()) {
                    end = j + w.len_utf8();
                }
                if depth == 0 {
                    last = None;
                    if c.is_uppercase() {
                        handler = Some(cell[i..end].to_string());
                    }
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("a `(` not closed in: {cell}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A README with the table `rows` (the lines after the delimiter row), between prose.
    fn readme(rows: &str) -> String {
        format!(
            "# x\n\n### Who may set what\n\nSettings come from three places.\n\n| who may set it | settings |\n|---|---|\n{rows}\n\n\
             - An override …\n\n### Next\n\n| operator only | `nothing_read_here` |\n"
        )
    }

    const ROWS: &str = "\
| operator only | `timeout`, `api_url`, `ca_file`, every `*_file`; Pager `webhook` (a URL); test mode (Pager, Chat) is the `--test` flag's alone: a settings file's `test` is ignored; any setting not listed here |
| operator, check | `severities`, `refresh`, `occurrences`; Pager `routing_key` (`api_key`, `integration_key`), `team`; Chat `token`, `api_key` (a recovery finds its incident by this); links and markup: Pager `client_url`, Chat `link_template` |
| operator, check, entity | Pager `summary_template`; Chat `text` |";

    const PAGER: &[(&str, Trust)] = &[
        ("routing_key", Trust::Check),
        ("api_key", Trust::Check),
        ("integration_key", Trust::Check),
        ("team", Trust::Check),
        ("client_url", Trust::Check),
        ("summary_template", Trust::Entity),
        ("webhook", Trust::Operator),
    ];

    #[test]
    fn reads_handlers_shared_settings_aliases_and_sub_labels() {
        let entries = read(&readme(ROWS)).unwrap();
        let of = |handler: Option<&str>, row: Trust| -> Vec<String> {
            entries.iter().filter(|e| e.row == row && e.handler.as_deref() == handler).map(|e| e.name.clone()).collect()
        };
        assert_eq!(of(None, Trust::Operator), ["timeout", "api_url", "ca_file", "test"]);
        assert_eq!(of(Some("Pager"), Trust::Operator), ["webhook"]);
        assert_eq!(of(None, Trust::Check), ["severities", "refresh", "occurrences"]);
        assert_eq!(of(Some("Pager"), Trust::Check), ["routing_key", "api_key", "integration_key", "team", "client_url"]);
        assert_eq!(of(Some("Chat"), Trust::Check), ["token", "api_key", "link_template"]);
        assert_eq!(of(Some("Chat"), Trust::Entity), ["text"]);
        let api_key = entries.iter().find(|e| e.name == "api_key").unwrap();
        assert_eq!(api_key.alias_of.as_deref(), Some("routing_key"));
        assert!(entries.iter().all(|e| e.name != "nothing_read_here"), "only the section's table");
    }

    #[test]
    fn agrees_with_the_handler_it_describes() {
        assert_eq!(disagreements(&readme(ROWS), "pager", PAGER), Vec::<String>::new());
    }

    #[test]
    fn a_setting_in_the_wrong_row_either_way_is_a_disagreement() {
        // The code lets an entity set what the README says only a check may.
        let own: Vec<_> = PAGER.iter().map(|&(n, t)| (n, if n == "team" { Trust::Entity } else { t })).collect();
        let found = disagreements(&readme(ROWS), "pager", &own);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("lists Pager's `team` under \"operator, check\", but pager's SETTINGS gives it `entity`"), "{found:#?}");
        // An alias the code leaves out is operator-only: the README may not call it check-level.
        let own: Vec<_> = PAGER.iter().copied().filter(|(n, _)| *n != "integration_key").collect();
        let found = disagreements(&readme(ROWS), "pager", &own);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("`integration_key` (another name of `routing_key`)") && found[0].contains("operator-only"), "{found:#?}");
        // The README lists an operator-only setting as check-level.
        let found = disagreements(&readme(&ROWS.replace("`team`;", "`team`, `webhook`;")), "pager", PAGER);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("Pager's `webhook` under \"operator, check\", but pager's SETTINGS gives it `operator`"), "{found:#?}");
    }

    #[test]
    fn an_event_setting_the_readme_leaves_out_is_a_disagreement() {
        let own: Vec<_> = PAGER.iter().copied().chain([("color", Trust::Entity)]).collect();
        let found = disagreements(&readme(ROWS), "pager", &own);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("pager `color`: pager's SETTINGS gives it `entity`, but README.md"), "{found:#?}");
        assert!(found[0].contains("(in \"operator, check, entity\", for pager or every handler)"), "{found:#?}");
        // A shared setting is every handler's: not listed, or listed for another handler only.
        let found = disagreements(&readme(&ROWS.replace("`severities`, ", "Chat `severities`; ")), "pager", PAGER);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("pager `severities`: trust::COMMON gives it `check`"), "{found:#?}");
    }

    #[test]
    fn a_table_that_cannot_be_read_says_why() {
        for (text, why) in [
            ("no table here".to_string(), "no such section"),
            (readme(&ROWS.replace("| operator, check, entity |", "| anyone |")), "a row \"anyone\" that is none of"),
            (readme(&ROWS.replace("`text` |", "`text` | more |")), "a row of 3 cells"),
            (readme(&ROWS.lines().take(2).collect::<Vec<_>>().join("\n")), "2 of the 3 rows found"),
            (readme(&ROWS.replace("Chat `text`", "Chat `text")), "a backtick not closed"),
            (readme(&ROWS.replace("`severities`, ", "(`severities`), ")), "in parentheses that follow no setting"),
        ] {
            let found = disagreements(&text, "pager", PAGER);
            assert!(found.len() == 1 && found[0].contains(why), "{why}: {found:#?}");
        }
    }

    /// The table the handlers' tests read names the handlers there are and nothing else, so
    /// that no handler's settings hide under a misspelt name.
    #[test]
    fn the_readme_names_the_four_handlers_and_agrees_on_the_shared_settings() {
        let readme = include_str!("../../../README.md");
        let entries = read(readme).unwrap();
        let mut handlers: Vec<&str> = entries.iter().filter_map(|e| e.handler.as_deref()).collect();
        handlers.sort_unstable();
        handlers.dedup();
        assert_eq!(handlers, ["PagerDuty", "Reactio", "Slack", "Twilio"]);
        // No handler's own table: the shared settings against trust::COMMON alone.
        assert_eq!(disagreements(readme, "none", &[]), Vec::<String>::new());
    }
}
