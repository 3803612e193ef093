//! Throughput of the Exchange collector (`cargo bench -p mailflow-collector-exchange-server`):
//! a generated week of a busy server's logs (`tests/generate`: protocol logs of both sides and
//! message tracking logs with every kind of row), about 100 MB, read as one text the way
//! `collect_text` does, protocol logs first.

#[path = "../tests/generate/mod.rs"]
mod generate;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailflow_component::Emitter;

fn log() -> Vec<u8> {
    let week = generate::week(generate::Version::E2019, 42, 1_795_737_600_000_000, 7, 2000);
    let mut text = String::new();
    let (protocol, tracking): (Vec<_>, Vec<_>) = week.files.iter().partition(|(name, _)| !name.contains("MSGTRK"));
    for (_, rows) in protocol.into_iter().chain(tracking) {
        text.push_str(&generate::Week::text(rows));
    }
    text.into_bytes()
}

fn exchange(c: &mut Criterion) {
    let text = log();
    assert!(text.len() > 50_000_000, "{} bytes", text.len());
    let mut group = c.benchmark_group("exchange");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_function("collect_text", |b| {
        b.iter(|| {
            let mut events = 0u32;
            let mut count = |_| events += 1;
            let mut out = Emitter::new(&mut count);
            mailflow_collector_exchange_server::collect_text(&text, &mut out);
            assert_eq!(out.into_stats().skipped, 0);
            black_box(events)
        })
    });
    group.finish();
}

criterion_group!(benches, exchange);
criterion_main!(benches);
