//! Fuzz the Zabbix alert-script source: arbitrary `SENDTO SUBJECT MESSAGE` arguments.
#![no_main]

use common::event::{Invocation, Source, zabbix};
use libfuzzer_sys::{arbitrary, fuzz_target};

#[path = "common_checks.rs"]
mod common_checks;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    args: Vec<String>,
    message: String,
}

fuzz_target!(|input: Input| {
    let _ = zabbix::parse_message(&input.message);
    // Usually three arguments, as Zabbix passes them; sometimes the fuzzer's own count.
    let args = if input.args.len() == 2 {
        let mut a = input.args;
        a.push(input.message);
        a
    } else {
        input.args
    };
    let inv = Invocation { args, ..Invocation::default() };
    common_checks::check(inv.parse(Source::Zabbix));
});
