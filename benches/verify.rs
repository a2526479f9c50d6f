//! Route verification and codec benchmarks; filled in below.
fn main() {}
