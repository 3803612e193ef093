//! What a plugin costs over reading the same events in-process: the example plugin (built in
//! release) against the `events` collector, on one file of 200,000 canonical events
//! (`cargo bench -p mailflow-collector-plugin`); criterion reports events per second.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailflow_component::{CollectContext, Collector, Emitter};
use mailflow_config::Config;

const EVENTS: usize = 200_000;

fn events() -> String {
    let mut text = String::new();
    for i in 0..EVENTS {
        let (direction, version) = if i % 3 == 0 { ("outbound", "tls1_2") } else { ("inbound", "tls1_3") };
        writeln!(
            text,
            r#"{{"time":"2026-12-0{}T{:02}:{:02}:{:02}Z","direction":"{direction}","tls":{{"version":"{version}","cipher":"TLS_AES_256_GCM_SHA384"}},"peer":{{"host":"mx{}.example.net","ip":"198.51.100.{}"}},"recipients":1,"size":{},"queue_id":"4Q{i:08X}"}}"#,
            1 + i % 7,
            i / 3600 % 24,
            i / 60 % 60,
            i % 60,
            i % 40,
            i % 250,
            2000 + i % 50_000
        )
        .unwrap();
    }
    text
}

fn plugin_host(c: &mut Criterion) {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugins");
    let plugin = mailflow_testkit::build_cdylibs(&["mailflow-plugin-example-jsonl"], "release", &target).remove(0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, events()).unwrap();

    let mut group = c.benchmark_group("200k events");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    let configs = [
        ("events collector", format!("[[collector]]\ntype = \"events\"\npaths = [{file:?}]\n")),
        (
            "plugin example-jsonl",
            format!("[[collector]]\ntype = \"plugin\"\npath = {plugin:?}\nsettings = {{ paths = [{file:?}] }}\n"),
        ),
    ];
    for (name, text) in configs {
        let config = Config::parse(&text, &dir.path().join("mailflow.toml"), &|_| None).unwrap();
        let build = if name.starts_with("plugin") {
            mailflow_collector_plugin::build
        } else {
            mailflow_collector_events::build
        };
        let collector: Box<dyn Collector> = build(&config.collectors[0]).unwrap();
        let ctx = CollectContext {
            source: "bench",
            site: &config.site,
            start: chrono::DateTime::UNIX_EPOCH,
            end: "2027-01-01T00:00:00Z".parse().unwrap(),
            report_start: chrono::DateTime::UNIX_EPOCH,
            resume: None,
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut events = 0usize;
                let mut count = |_| events += 1;
                let mut out = Emitter::new(&mut count);
                collector.collect(&ctx, &mut out).unwrap();
                let stats = out.into_stats();
                assert!(stats.skipped == 0 && stats.errors.is_empty(), "{stats:?}");
                assert_eq!(events, EVENTS);
                black_box(events)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, plugin_host);
criterion_main!(benches);
