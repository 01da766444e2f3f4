//! Scenario benchmarks; filled in by the benchmarks work (`make bench`).
fn main() {}
