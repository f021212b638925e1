//! The floor of any handler: a static Rust process that does nothing (bench/compare.sh
//! BENCH_FLOOR=1). Built like the handlers (static-pie, opt-level "s", panic=abort).
fn main() {}
