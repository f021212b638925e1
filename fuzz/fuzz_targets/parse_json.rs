//! Fuzz the stdin entry: the size-capped reader, then format detection and the parser it picks.
#![no_main]

use common::event::{parse_json, read_capped};
use libfuzzer_sys::fuzz_target;

#[path = "common_checks.rs"]
mod common_checks;

fuzz_target!(|data: &[u8]| {
    match read_capped(data) {
        Ok(bytes) => common_checks::check(parse_json(&bytes, None)),
        Err(failure) => assert_eq!(failure.code, common::exit::Code::DataErr),
    }
});
