//! Throughput of the collector on a generated 100,000-row message trace detail, in UTF-8 and in
//! UTF-16LE (`cargo bench -p mailflow-collector-m365-csv`); criterion reports rows per second.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailflow_component::{CollectContext, Emitter};
use mailflow_config::Config;

const ROWS: usize = 100_000;
const HEADER: &str = "date_time_utc,client_ip,client_hostname,server_ip,server_hostname,source_context,connector_id,\
source,event_id,internal_message_id,message_id,network_message_id,recipient_address,recipient_status,total_bytes,\
recipient_count,related_recipient_address,reference,message_subject,sender_address,return_path,message_info,\
directionality,tenant_id,original_client_ip,original_server_ip,custom_data";

/// Four rows per message, inbound and outbound in turn, each message's rows apart.
fn detail() -> String {
    let mut text = format!("{HEADER}\n");
    for i in 0..ROWS {
        let (n, step) = (i / 4 + (i % 4) * 7, i % 4);
        let time = format!("2026-11-30T{:02}:{:02}:{:02}.{:03}Z", n / 3600 % 24, n / 60 % 60, n % 60, step);
        let id = format!("{n:08x}-1c2b-4d5e-8f90-08de2f{n:06x}");
        let row = match (n % 2, step) {
            (0, 0 | 1) => format!(
                "{time},198.51.100.{},mail.fabrikam.example,,,,,SMTP,RECEIVE,{n},<{n}@fabrikam.example>,{id},\
                 user{n}@contoso.example,,{},1,,,Invoice {n},bob@fabrikam.example,bob@fabrikam.example,,Incoming,\
                 tenant,198.51.100.{},,S:InboundConnectorData=Name=From Fabrikam;ConnectorType=Partner;\
                 S:tlsversion=SP_PROT_TLS1_2_SERVER",
                n % 250,
                2000 + n,
                n % 250
            ),
            (0, _) => format!(
                "{time},,,,,,,STOREDRIVER,DELIVER,{n},<{n}@fabrikam.example>,{id},user{n}@contoso.example,,{},1,,,\
                 Invoice {n},bob@fabrikam.example,bob@fabrikam.example,,Incoming,tenant,,,",
                2000 + n
            ),
            (_, 0 | 1) => format!(
                "{time},10.0.0.5,,,,,,STOREDRIVER,RECEIVE,{n},<{n}@contoso.example>,{id},a{n}@tailspin.example,,{},\
                 1,,,Order {n},alice@contoso.example,alice@contoso.example,,Originating,tenant,10.0.0.5,,",
                3000 + n
            ),
            _ => format!(
                "{time},,,203.0.113.{},mx.tailspin.example,,To_DefaultOpportunisticTLS,SMTP,SEND,{n},\
                 <{n}@contoso.example>,{id},a{n}@tailspin.example,250 2.6.0 Queued,{},1,,,Order {n},\
                 alice@contoso.example,alice@contoso.example,,Originating,tenant,,,S:tlsversion=SP_PROT_TLS1_3_CLIENT",
                n % 250,
                3000 + n
            ),
        };
        writeln!(text, "{row}").unwrap();
    }
    text
}

fn m365_csv(c: &mut Criterion) {
    let text = detail();
    let dir = tempfile::tempdir().unwrap();
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    std::fs::write(dir.path().join("utf8.csv"), &text).unwrap();
    std::fs::write(dir.path().join("utf16.csv"), &utf16).unwrap();

    let mut group = c.benchmark_group("m365_csv detail");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    for file in ["utf8.csv", "utf16.csv"] {
        let config = format!("[[collector]]\ntype = \"m365_csv\"\npaths = [\"{file}\"]\n");
        let config = Config::parse(&config, &dir.path().join("mailflow.toml"), &|_| None).unwrap();
        let collector = mailflow_collector_m365_csv::build(&config.collectors[0]).unwrap();
        let ctx = CollectContext {
            source: "m365",
            site: &config.site,
            start: chrono::DateTime::UNIX_EPOCH,
            end: "2027-01-01T00:00:00Z".parse().unwrap(),
            report_start: chrono::DateTime::UNIX_EPOCH,
            resume: None,
        };
        group.bench_function(file, |b| {
            b.iter(|| {
                let mut events = 0u32;
                let mut count = |_| events += 1;
                let mut out = Emitter::new(&mut count);
                collector.collect(&ctx, &mut out).unwrap();
                let stats = out.into_stats();
                assert!(stats.skipped == 0 && stats.errors.is_empty(), "{stats:?}");
                black_box(events)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, m365_csv);
criterion_main!(benches);
