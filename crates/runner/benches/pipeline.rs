//! Throughput of the whole collect stage: reading canonical events, resolving connectors and
//! rolling up, on a generated week of mail (`cargo bench -p mailflow-runner`).
//!
//! Also reports the rollup merge alone, which bounds how cheaply partial results combine.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailflow_config::Config;
use mailflow_core::{Direction, MessageEvent, ReportRange, Rollup, TlsVersion};
use mailflow_runner::Pipeline;

const EVENTS: usize = 200_000;

fn events_file(dir: &std::path::Path) -> u64 {
    let versions = [TlsVersion::Tls1_3, TlsVersion::Tls1_2, TlsVersion::Tls1_2, TlsVersion::None, TlsVersion::Tls1_0];
    let mut text = String::with_capacity(EVENTS * 300);
    for i in 0..EVENTS {
        let direction = if i % 2 == 0 { "outbound" } else { "inbound" };
        let version = serde_json::to_string(&versions[i % versions.len()]).unwrap();
        let _ = writeln!(
            text,
            r#"{{"time":"2026-11-{:02}T{:02}:{:02}:00Z","direction":"{direction}","tls":{{"version":{version},"cipher":"ECDHE-RSA-AES256-GCM-SHA384","trust":"trusted"}},"peer":{{"host":"mx{}.partner{}.example","ip":"192.0.2.{}","port":25}},"transport":"smtp","sender":"user{}@corp.example","recipients":2,"recipient_domains":["partner{}.example"],"size":{},"status":"delivered","message_id":"<{i}@corp.example>","queue_id":"4Bx2Lk0qz{i}"}}"#,
            16 + i % 14,
            i % 24,
            i % 60,
            i % 3,
            i % 40,
            i % 250,
            i % 500,
            i % 40,
            2000 + i % 50_000,
        );
    }
    std::fs::write(dir.join("events.jsonl"), &text).unwrap();
    text.len() as u64
}

fn collect(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = events_file(dir.path());
    let mut config = String::from("[site]\ntimezone = \"Europe/Berlin\"\n");
    for p in 0..40 {
        let _ = write!(
            config,
            "[[connector]]\nname = \"Partner {p}\"\ndirection = \"outbound\"\nrelay = [\"*.partner{p}.example\"]\n"
        );
    }
    config.push_str("[[collector]]\ntype = \"events\"\npaths = [\"events.jsonl\"]\n");
    let pipeline =
        Pipeline::build(Config::parse(&config, &dir.path().join("mailflow.toml"), &|_| None).unwrap()).unwrap();
    let range =
        ReportRange::new("2026-11-23".parse().unwrap(), "2026-11-29".parse().unwrap(), chrono_tz::Tz::UTC).unwrap();

    let mut group = c.benchmark_group("collect");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("events_jsonl_200k_40_connectors", |b| {
        b.iter(|| black_box(pipeline.collect(&range, None)));
    });
    group.finish();
}

fn merge(c: &mut Criterion) {
    let base: chrono::NaiveDate = "2026-11-01".parse().unwrap();
    let part = |seed: u64| {
        let mut r = Rollup::new();
        for i in 0..10_000u64 {
            let e = MessageEvent::new("2026-11-01T00:00:00Z".parse().unwrap(), Direction::Outbound);
            r.add(base + chrono::Days::new((i + seed) % 30), "mx1", &format!("c{}", i % 50), &e);
        }
        r
    };
    let (a, b) = (part(0), part(7));
    c.bench_function("rollup_merge_1500_rows", |bench| {
        bench.iter(|| {
            let mut x = a.clone();
            x.merge(black_box(b.clone()));
            x
        })
    });
}

criterion_group!(benches, collect, merge);
criterion_main!(benches);
