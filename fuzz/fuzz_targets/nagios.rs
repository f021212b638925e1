//! Fuzz the Nagios 4 / Icinga 2 source: arbitrary environment and `--field` pairs.
#![no_main]

use common::event::{Invocation, Source};
use libfuzzer_sys::{arbitrary, fuzz_target};

#[path = "common_checks.rs"]
mod common_checks;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    icinga: bool,
    env: Vec<(String, String)>,
    fields: Vec<(String, String)>,
}

fuzz_target!(|input: Input| {
    let inv = Invocation {
        // Environment names as Nagios gives them; half of the fuzzer's names get the prefix.
        env: input
            .env
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| (if i % 2 == 0 { format!("NAGIOS_{k}") } else { k }, v))
            .collect(),
        fields: input.fields,
        ..Invocation::default()
    };
    common_checks::check(inv.parse(if input.icinga { Source::Icinga } else { Source::Nagios }));
});
