//! What every fuzz target checks once a parser has returned: a parsed event goes through the
//! code that runs next in a handler (filters, incident key, state-store file name, templates,
//! truncation) without a panic; a rejected one is exit 65 with one line that quotes little.

use common::config::Common;
use common::event::Event;
use common::exit::{Code, Result};
use common::template::{Template, truncate_chars};

/// Check the outcome of one parse.
pub fn check(parsed: Result<Event>) {
    match parsed {
        Ok(event) => downstream(&event),
        Err(failure) => {
            assert_eq!(failure.code, Code::DataErr, "{failure}");
            let line = failure.to_string();
            assert!(!line.contains('\n'), "error is more than one line: {line:?}");
            // Input is quoted at most 64 characters at a time; messages are short.
            assert!(line.chars().count() <= 600, "error line is {} characters", line.chars().count());
        }
    }
}

fn downstream(e: &Event) {
    let _ = e.status_name();
    let _ = e.previous_status();
    let _ = common::filter::decide(e, &Common::default());
    let _ = common::filter::refresh_for(e, &Common::default());
    let key = common::template::incident_key(None, e);
    let name = common::state::file::file_name_for(&key);
    assert!(name.len() <= 180, "state file name is {} bytes", name.len());
    assert!(!name.contains('/') && name != "." && name != "..", "unsafe file name {name:?}");
    let t = Template::parse("fuzz", "{entity}/{check}: {output} [{status}/{status_code}] {occurrences} {namespace} {command} {label.team}")
        .expect("template");
    let rendered = t.render(e);
    for max in [0, 1, 255, 1024] {
        let cut = truncate_chars(&rendered, max);
        assert!(cut.chars().count() <= max);
    }
}
