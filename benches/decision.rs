//! Decision-process benchmark; filled in with the engine.
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    c.bench_function("prefix_parse", |b| {
        b.iter(|| agent_bgp::core::Prefix::new("coding/typescript/lint"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
