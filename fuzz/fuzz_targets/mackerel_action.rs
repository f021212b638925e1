//! Fuzz the mackerel-agent check-action source: arbitrary environment, `--check`, `--entity`.
#![no_main]

use common::event::{Invocation, Source};
use libfuzzer_sys::{arbitrary, fuzz_target};

#[path = "common_checks.rs"]
mod common_checks;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    status: String,
    previous: Option<String>,
    message: Option<String>,
    env: Vec<(String, String)>,
    check: Option<String>,
    entity: Option<String>,
}

fuzz_target!(|input: Input| {
    let mut env: std::collections::BTreeMap<String, String> = input.env.into_iter().collect();
    env.insert("MACKEREL_STATUS".into(), input.status);
    if let Some(p) = input.previous {
        env.insert("MACKEREL_PREVIOUS_STATUS".into(), p);
    }
    if let Some(m) = input.message {
        env.insert("MACKEREL_CHECK_MESSAGE".into(), m);
    }
    let inv = Invocation { env, check: input.check, entity: input.entity, ..Invocation::default() };
    common_checks::check(inv.parse(Source::Mackerel));
});
