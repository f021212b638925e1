//! Fuzz the Sensu event parser: `parse_json` with the format forced, as `--input` does.
#![no_main]

use common::event::{Format, parse_json};
use libfuzzer_sys::fuzz_target;

#[path = "common_checks.rs"]
mod common_checks;

fuzz_target!(|data: &[u8]| {
    common_checks::check(parse_json(data, Some(Format::Sensu)));
});
