//! Throughput of the Postfix collector on a generated week of a small site's log
//! (`cargo bench -p mailflow-collector-postfix`): the line parser alone, then parsing and
//! correlating into events. `bench/postfix.sh` times the whole `mailflow run` against pflogsumm.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailflow_collector_postfix::{parse, syslog};
use mailflow_component::{CollectContext, Emitter};
use mailflow_config::Config;

fn log() -> Vec<u8> {
    let options = xtask::Options {
        end: "2026-11-29".parse().unwrap(),
        days: 7,
        messages_per_day: 3000,
        timezone: chrono_tz::Europe::Berlin,
        host: "mx1".into(),
        seed: 1,
        oddities: false,
    };
    let mut text = Vec::new();
    xtask::write_all(&options, &mut text).unwrap();
    text
}

fn postfix(c: &mut Criterion) {
    let text = log();
    let mut group = c.benchmark_group("postfix");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_function("parse lines", |b| {
        b.iter(|| {
            let mut relevant = 0u32;
            for line in text.split(|&b| b == b'\n') {
                let Ok(header) = syslog::parse(line) else { continue };
                if let Ok(Some(program)) = parse::program(header.program, &|n| n.starts_with(b"postfix")) {
                    relevant += u32::from(!matches!(
                        parse::record(program.daemon, header.message),
                        Ok(parse::Record::Irrelevant)
                    ));
                }
            }
            black_box(relevant)
        })
    });

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail.log"), &text).unwrap();
    let config = "[site]\ntimezone = \"Europe/Berlin\"\n[[collector]]\ntype = \"postfix\"\npaths = [\"mail.log\"]\nyear = 2026\n";
    let config = Config::parse(config, &dir.path().join("mailflow.toml"), &|_| None).unwrap();
    let collector = mailflow_collector_postfix::build(&config.collectors[0]).unwrap();
    let ctx = CollectContext {
        source: "mx1",
        site: &config.site,
        start: chrono::DateTime::UNIX_EPOCH,
        end: "2027-01-01T00:00:00Z".parse().unwrap(),
        report_start: chrono::DateTime::UNIX_EPOCH,
        resume: None,
    };
    group.bench_function("parse and correlate", |b| {
        b.iter(|| {
            let mut events = 0u32;
            let mut count = |_| events += 1;
            let mut out = Emitter::new(&mut count);
            collector.collect(&ctx, &mut out).unwrap();
            drop(out);
            black_box(events)
        })
    });
    group.finish();
}

criterion_group!(benches, postfix);
criterion_main!(benches);
